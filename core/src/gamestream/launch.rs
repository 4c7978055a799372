//! What a client asks for in `/launch` and `/resume` (core/GAMESTREAM.md §4.8), from the
//! query's parameters: bounded, and a clear error for each thing missing or out of range.

use crate::channels::Channels;
use crate::mode::Mode;

/// The session key a launch or resume hands the host (`rikey`, `rikeyid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionKey {
    pub key: [u8; 16],
    /// A signed 32-bit integer; some clients send it unsigned.
    pub key_id: i32,
}

/// `/launch`: which app, at which mode, under which key.
#[derive(Clone, Debug, PartialEq)]
pub struct LaunchRequest {
    pub app_id: u32,
    pub mode: Mode,
    pub key: SessionKey,
    /// ≥ 1: the client speaks encrypted RTSP.
    pub corever: u32,
    /// From `surroundAudioInfo` (`channel mask << 16 | count`): 2, 6 or 8 channels, else
    /// stereo.
    pub audio_channels: Channels,
}

/// `/resume`: the running session, under a new key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeRequest {
    pub key: SessionKey,
    pub corever: u32,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    #[error("appid must be a number")]
    AppId,
    #[error("mode must be WIDTHxHEIGHTxFPS, 16–8192 pixels and 1–480 Hz")]
    Mode,
    #[error("rikey (32 hex digits) and rikeyid (a 32-bit integer) are required")]
    Key,
}

/// Parses `/launch`; `param` looks a query parameter up.
pub fn launch<'a>(param: impl Fn(&str) -> Option<&'a str>) -> Result<LaunchRequest, LaunchError> {
    let app_id = param("appid").and_then(|id| id.parse().ok()).ok_or(LaunchError::AppId)?;
    let mode = param("mode").and_then(mode).ok_or(LaunchError::Mode)?;
    let ResumeRequest { key, corever } = resume(&param)?;
    let surround: u32 = param("surroundAudioInfo").and_then(|v| v.parse().ok()).unwrap_or(0);
    let audio_channels = Channels::from_count(surround & 0xffff).unwrap_or(Channels::Stereo);
    Ok(LaunchRequest { app_id, mode, key, corever, audio_channels })
}

/// Parses `/resume`.
pub fn resume<'a>(param: impl Fn(&str) -> Option<&'a str>) -> Result<ResumeRequest, LaunchError> {
    let key = param("rikey").and_then(hex16).ok_or(LaunchError::Key)?;
    let id = param("rikeyid").ok_or(LaunchError::Key)?;
    let key_id = id.parse::<i32>().ok().or_else(|| id.parse::<u32>().ok().map(|u| u as i32)).ok_or(LaunchError::Key)?;
    let corever = param("corever").and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(ResumeRequest { key: SessionKey { key, key_id }, corever })
}

/// `WxHxFPS`, within what a session can render.
pub fn mode(mode: &str) -> Option<Mode> {
    let mut it = mode.split('x').map(|v| v.parse::<u32>().ok());
    let (Some(Some(w)), Some(Some(h)), Some(Some(fps)), None) = (it.next(), it.next(), it.next(), it.next()) else { return None };
    if !((16..=8192).contains(&w) && (16..=8192).contains(&h) && (1..=480).contains(&fps)) {
        return None;
    }
    Mode::at_fps(w, h, fps).ok()
}

/// Sixteen bytes from 32 hex digits.
fn hex16(text: &str) -> Option<[u8; 16]> {
    let digits = text.as_bytes();
    if digits.len() != 32 {
        return None;
    }
    let mut out = [0; 16];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn modes() {
        assert_eq!(mode("1280x720x60"), Some(Mode::at_fps(1280, 720, 60).unwrap()));
        for bad in ["1280x720", "1280x720x60x1", "0x720x60", "99999x720x60", "1280x720x0", "x", ""] {
            assert_eq!(mode(bad), None, "{bad}");
        }
    }

    #[test]
    fn launch_and_resume() {
        let q = query(&[
            ("appid", "2"),
            ("mode", "1920x1080x60"),
            ("rikey", "00112233445566778899aabbccddeeff"),
            ("rikeyid", "-2082761329"),
            ("corever", "1"),
            ("surroundAudioInfo", "196610"),
        ]);
        let l = launch(|k| q.get(k).map(String::as_str)).unwrap();
        assert_eq!((l.app_id, l.key.key_id, l.corever, l.audio_channels), (2, -2082761329, 1, Channels::Stereo));
        assert_eq!(l.key.key[15], 0xff);
        let q = query(&[("rikey", "00112233445566778899aabbccddeeff"), ("rikeyid", "4000000000")]);
        assert_eq!(resume(|k| q.get(k).map(String::as_str)).unwrap().key.key_id, 4000000000u32 as i32);
        let q = query(&[("rikey", "0011"), ("rikeyid", "1")]);
        assert_eq!(resume(|k| q.get(k).map(String::as_str)), Err(LaunchError::Key));
        let q = query(&[("appid", "1"), ("mode", "1x1x1"), ("rikey", "00112233445566778899aabbccddeeff"), ("rikeyid", "1")]);
        assert_eq!(launch(|k| q.get(k).map(String::as_str)), Err(LaunchError::Mode));
        let q = query(&[("mode", "1280x720x60")]);
        assert_eq!(launch(|k| q.get(k).map(String::as_str)), Err(LaunchError::AppId));
    }
}

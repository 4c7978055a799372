//! Picking the encoder: GPU encoders when present (NVENC, then VAAPI), software otherwise,
//! or what `--encoder` forces; with one line saying what was found and why.

use super::{Backend, Codec, EncodeError, EncoderConfig, FfmpegEncoder, VideoEncoder};

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    Auto,
    Only(Backend),
}

impl std::str::FromStr for Choice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Self::Auto,
            "software" | "x264" | "cpu" => Self::Only(Backend::Software),
            "nvenc" => Self::Only(Backend::Nvenc),
            "vaapi" => Self::Only(Backend::Vaapi),
            _ => return Err(format!("unknown encoder {s:?}: expected auto, software, nvenc or vaapi")),
        })
    }
}

pub use punktfunk_frame::gpu::{nvidia_driver, render_node, render_node_of};

/// Whether the backend's driver is there at all, before trying to open it.
fn precheck(backend: Backend) -> Result<(), String> {
    match backend {
        Backend::Software => Ok(()),
        Backend::Nvenc => nvidia_driver(),
        Backend::Vaapi => render_node().map(|_| ()).ok_or_else(|| "no DRM render node in /dev/dri".into()),
    }
}

/// Opens the encoder `choice` asks for. Returns it with a one-line report, e.g.
/// `video encoder: libx264 (software); nvenc: no NVIDIA driver …; vaapi: no DRM render node`.
pub fn open(choice: Choice, config: EncoderConfig) -> Result<(Box<dyn VideoEncoder>, String), EncodeError> {
    let order: &[Backend] = match choice {
        Choice::Auto => &[Backend::Nvenc, Backend::Vaapi, Backend::Software],
        Choice::Only(Backend::Nvenc) => &[Backend::Nvenc],
        Choice::Only(Backend::Vaapi) => &[Backend::Vaapi],
        Choice::Only(Backend::Software) => &[Backend::Software],
    };
    let mut skipped = Vec::new();
    let mut last_err = None;
    for &backend in order {
        let attempt = precheck(backend).map_err(EncodeError::Probe).and_then(|()| FfmpegEncoder::new(backend, config));
        match attempt {
            Ok(enc) => {
                let why = if choice == Choice::Auto { "best available" } else { "forced by --encoder" };
                let mut line = format!("video encoder: {} ({why})", enc.name());
                for (b, e) in &skipped {
                    line.push_str(&format!("; {b:?} unavailable: {e}"));
                }
                return Ok((Box::new(enc), line));
            }
            Err(e) => {
                skipped.push((backend, e.to_string()));
                last_err = Some(e);
            }
        }
    }
    Err(last_err.unwrap_or(EncodeError::Unavailable("any encoder")))
}

/// Whether `choice` may pick a hardware encoder whose driver is present: the host then
/// offers HEVC (software HEVC is too slow for real-time streams at common sizes).
pub fn hardware_available(choice: Choice) -> bool {
    [Backend::Nvenc, Backend::Vaapi].into_iter().any(|b| allowed(choice, b) && precheck(b).is_ok())
}

/// What the encoders `choice` allows can do on this machine, for the daemon's offers.
pub fn probe(choice: Choice) -> punktfunk_core::ipc::EncoderProbe {
    punktfunk_core::ipc::EncoderProbe {
        hardware: hardware_available(choice),
        hardware_av1: hardware_encodes(choice, Codec::Av1),
        // Few VAAPI drivers encode 4:4:4 (`FfmpegEncoder::new` refuses it there).
        yuv444: choice != Choice::Only(Backend::Vaapi),
        gpu: None,
    }
}

/// Whether a hardware encoder `choice` allows opens for `codec`: a small one is opened and
/// dropped. For AV1, which needs a recent GPU (and FFmpeg 6), a driver alone does not say.
pub fn hardware_encodes(choice: Choice, codec: Codec) -> bool {
    [Backend::Nvenc, Backend::Vaapi].into_iter().any(|b| {
        allowed(choice, b) && precheck(b).is_ok() && FfmpegEncoder::new(b, EncoderConfig::new(codec, 256, 144, 30_000, 1_000_000)).is_ok()
    })
}

fn allowed(choice: Choice, backend: Backend) -> bool {
    choice == Choice::Auto || choice == Choice::Only(backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_no_drm_device_has_no_render_node() {
        assert_eq!(render_node_of(std::path::Path::new("/dev/null")), None);
        assert_eq!(render_node_of(std::path::Path::new("/nonexistent")), None);
    }

    #[test]
    fn parses_the_encoder_flag() {
        assert_eq!("auto".parse(), Ok(Choice::Auto));
        assert_eq!("nvenc".parse(), Ok(Choice::Only(Backend::Nvenc)));
        assert!("quicksync".parse::<Choice>().unwrap_err().contains("expected auto"));
    }

    #[test]
    fn auto_falls_back_to_software_with_the_reasons_on_one_line() {
        let (enc, line) = open(Choice::Auto, EncoderConfig::new(Codec::H264, 320, 240, 60_000, 1_000_000)).unwrap();
        println!("{line}");
        assert!(line.starts_with("video encoder: "));
        if precheck(Backend::Nvenc).is_err() && precheck(Backend::Vaapi).is_err() {
            // This machine (and CI) has no GPU: software, and why.
            assert_eq!(enc.backend(), Backend::Software);
            assert!(line.contains("Nvenc unavailable: ") && line.contains("Vaapi unavailable: "), "{line}");
        }
    }

    #[test]
    fn a_forced_missing_gpu_encoder_is_an_error_not_a_silent_fallback() {
        if precheck(Backend::Nvenc).is_err() {
            let e = open(Choice::Only(Backend::Nvenc), EncoderConfig::new(Codec::H264, 320, 240, 60_000, 1_000_000)).err().unwrap();
            assert!(e.to_string().contains("libcuda"), "{e}");
        }
    }
}

//! Picking the encoder: GPU encoders when present (NVENC, then VAAPI), software otherwise,
//! or what `--encoder` forces; with one line saying what was found and why.

use super::{Backend, Codec, EncodeError, EncoderConfig, FfmpegEncoder, VideoEncoder, X264Encoder};

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

/// An encoder `open` found, with what it says about the choice.
pub struct Opened {
    pub encoder: Box<dyn VideoEncoder>,
    /// One line for the log, e.g. `video encoder: libx264 (best available); Nvenc
    /// unavailable: no NVIDIA driver …; Vaapi unavailable: no DRM render node`.
    pub report: String,
    /// Why a GPU encoder whose driver is there did not open (its sessions exhausted, the
    /// mode too large for it), when the stream fell back to another: the user should know.
    pub fell_back: Option<String>,
}

/// Opens the encoder `choice` asks for: the first of its backends that opens.
pub fn open(choice: Choice, config: EncoderConfig) -> Result<Opened, EncodeError> {
    open_first(choice, |backend| {
        precheck(backend).map_err(Attempt::Absent)?;
        match backend {
            Backend::Software => software(config),
            gpu => FfmpegEncoder::new(gpu, config).map(|e| Box::new(e) as Box<dyn VideoEncoder>),
        }
        .map_err(Attempt::Failed)
    })
}

/// The CPU encoder for `config`: libx264 itself for 8-bit H.264 (it takes reference
/// invalidation), FFmpeg's libx265 and libaom otherwise.
pub fn software(config: EncoderConfig) -> Result<Box<dyn VideoEncoder>, EncodeError> {
    if config.codec == Codec::H264 && !config.format.ten_bit {
        return X264Encoder::new(config).map(|e| Box::new(e) as Box<dyn VideoEncoder>);
    }
    FfmpegEncoder::new(Backend::Software, config).map(|e| Box::new(e) as Box<dyn VideoEncoder>)
}

/// Why a backend gave no encoder.
enum Attempt {
    /// Its driver or device is not there.
    Absent(String),
    /// It is there, but did not open.
    Failed(EncodeError),
}

fn open_first(choice: Choice, try_open: impl Fn(Backend) -> Result<Box<dyn VideoEncoder>, Attempt>) -> Result<Opened, EncodeError> {
    let order: &[Backend] = match choice {
        Choice::Auto => &[Backend::Nvenc, Backend::Vaapi, Backend::Software],
        Choice::Only(Backend::Nvenc) => &[Backend::Nvenc],
        Choice::Only(Backend::Vaapi) => &[Backend::Vaapi],
        Choice::Only(Backend::Software) => &[Backend::Software],
    };
    let (mut skipped, mut failed) = (Vec::new(), Vec::new());
    let mut last_err = None;
    for &backend in order {
        match try_open(backend) {
            Ok(encoder) => {
                let why = if choice == Choice::Auto { "best available" } else { "forced by --encoder" };
                let mut report = format!("video encoder: {} ({why})", encoder.name());
                for (b, e) in &skipped {
                    report.push_str(&format!("; {b:?} unavailable: {e}"));
                }
                let fell_back = (!failed.is_empty()).then(|| failed.join("; "));
                if let Some(why) = &fell_back {
                    tracing::warn!("{why}: encoding with {} instead", encoder.name());
                }
                return Ok(Opened { encoder, report, fell_back });
            }
            Err(Attempt::Absent(e)) => {
                skipped.push((backend, e.clone()));
                last_err = Some(EncodeError::Probe(e));
            }
            Err(Attempt::Failed(e)) => {
                skipped.push((backend, e.to_string()));
                failed.push(format!("{backend:?} did not open ({e})"));
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
        let Opened { encoder: enc, report: line, fell_back } =
            open(Choice::Auto, EncoderConfig::new(Codec::H264, 320, 240, 60_000, 1_000_000)).unwrap();
        println!("{line}");
        assert!(line.starts_with("video encoder: "));
        if precheck(Backend::Nvenc).is_err() && precheck(Backend::Vaapi).is_err() {
            // This machine (and CI) has no GPU: software, and why.
            assert_eq!(enc.backend(), Backend::Software);
            assert!(line.contains("Nvenc unavailable: ") && line.contains("Vaapi unavailable: "), "{line}");
            // No driver is no fallback the user must hear of.
            assert_eq!(fell_back, None);
        }
    }

    #[test]
    fn a_gpu_encoder_that_is_there_but_does_not_open_is_a_fallback_that_says_why() {
        // NVENC's answer when a consumer card's encoder sessions are all taken.
        let exhausted = "OpenEncodeSessionEx failed: incompatible client key (21)";
        let opened = open_first(Choice::Auto, |backend| match backend {
            Backend::Nvenc => Err(Attempt::Failed(EncodeError::Probe(exhausted.into()))),
            Backend::Vaapi => Err(Attempt::Absent("no DRM render node in /dev/dri".into())),
            Backend::Software => software(EncoderConfig::new(Codec::H264, 320, 240, 60_000, 1_000_000)).map_err(Attempt::Failed),
        })
        .unwrap();
        assert_eq!(opened.encoder.backend(), Backend::Software);
        assert_eq!(opened.fell_back.as_deref(), Some(format!("Nvenc did not open ({exhausted})").as_str()));
        // Forced, the same failure is the stream's error, not a quiet software stream.
        let forced = open_first(Choice::Only(Backend::Nvenc), |_| Err(Attempt::Failed(EncodeError::Probe(exhausted.into()))));
        assert_eq!(forced.err().map(|e| e.to_string()).as_deref(), Some(exhausted));
    }

    #[test]
    fn a_forced_missing_gpu_encoder_is_an_error_not_a_silent_fallback() {
        if precheck(Backend::Nvenc).is_err() {
            let Err(e) = open(Choice::Only(Backend::Nvenc), EncoderConfig::new(Codec::H264, 320, 240, 60_000, 1_000_000)) else {
                panic!("NVENC opened without a driver")
            };
            assert!(e.to_string().contains("libcuda"), "{e}");
        }
    }
}

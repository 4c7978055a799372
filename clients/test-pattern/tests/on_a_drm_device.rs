//! The GPU path on a real DRM device: GLES opened through GBM on the node
//! `PUNKTFUNK_DRM_NODE` names, a GPU client's dmabufs composited, frames converted on the GPU
//! and drawn into dmabuf surfaces. No GPU here: `.ci/drm-vm` runs these (`--ignored`) in a
//! virtual machine whose virtio-gpu device Mesa renders on (llvmpipe behind a real DRM node,
//! GBM and dmabufs), and a machine with a GPU runs them as they are.

use punktfunk_compositor::{Config, ConvertChoice, EngineChoice, Frame, Outcome, Pixels, control_channel, run};
use punktfunk_streamer::convert::{Colour, Layout};
use punktfunk_streamer::gpu::{DRM_FORMAT_GR88, DRM_FORMAT_R8, DmabufPlane, GpuSurfaces};
use punktfunk_streamer::{PixelFormat, SinkWithWants};
use punktfunk_test_pattern::decode;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};

const NEEDS: &str = "needs a DRM device named by PUNKTFUNK_DRM_NODE (.ci/drm-vm runs it)";

fn node() -> PathBuf {
    std::env::var_os("PUNKTFUNK_DRM_NODE").map(PathBuf::from).expect(NEEDS)
}

/// The band colour the pattern is drawn with, and whether a frame's pixel is it (within what
/// NV12's rounding and 4:2:0 averaging leave).
const BAND: (u8, u8, u8) = (0xff, 0x80, 0x00);

fn is_band((r, g, b): (u8, u8, u8)) -> bool {
    r.abs_diff(BAND.0).max(g.abs_diff(BAND.1)).max(b.abs_diff(BAND.2)) <= 4
}

/// A 640x360 session on the DRM node running `command`, its frames as `wants` or drawn into
/// `surfaces`; `look` turns each frame into what the test checks.
fn session<T: Send + 'static>(
    command: Vec<String>,
    wants: PixelFormat,
    surfaces: Option<Arc<GpuSurfaces>>,
    look: impl Fn(&Frame) -> T + Send + 'static,
) -> (Outcome, Vec<T>) {
    let mut config = Config::new("640x360@30".parse().unwrap());
    config.command = command.into_iter().map(Into::into).collect();
    (config.renderer, config.convert, config.gpu, config.xwayland) = (EngineChoice::Gles, ConvertChoice::Gpu, Some(node()), false);
    // Composited, always: a fullscreen client's buffer would otherwise pass GLES by.
    (config.show_cursor, config.direct) = (false, false);
    let (_control, control_rx) = control_channel();
    let (tx, rx) = mpsc::channel();
    let sink = move |f: Frame| {
        let _ = tx.send(look(&f));
        Ok(())
    };
    let outcome = run(config, SinkWithWants { format: wants, surfaces, sink }, Some(control_rx)).unwrap();
    (outcome, rx.try_iter().collect())
}

fn pattern(frames: u32) -> Vec<String> {
    let bin = env!("CARGO_BIN_EXE_punktfunk-test-pattern");
    [bin, "--color", "ff8000", "--frames", &frames.to_string()].map(String::from).to_vec()
}

/// GLES on the DRM node converts frames to NV12 on the GPU: the pattern's counter and band
/// colour decode from them, counters in order.
#[test]
#[ignore = "needs a DRM device named by PUNKTFUNK_DRM_NODE (.ci/drm-vm runs it)"]
fn gles_on_a_drm_node_converts_frames_on_the_gpu() {
    let wants = PixelFormat::Yuv { layout: Layout::Nv12, colour: Colour::default() };
    let (outcome, seen) =
        session(pattern(40), wants, None, |f| (f.format, decode(f.width, |x, y| f.rgb_at(x, y)), f.rgb_at(f.width / 2, f.height - 10)));
    assert_eq!((outcome.renderer, outcome.exit_code), ("gles", Some(0)));
    let decoded: Vec<_> = seen.iter().filter_map(|(format, pattern, band)| pattern.map(|p| (*format, p.0, *band))).collect();
    // The first frame comes before the sink has said what it wants.
    let converted = decoded.iter().filter(|(format, ..)| *format == wants).count();
    assert!(converted >= 10 && converted + 1 >= decoded.len(), "{converted} of {} frames decoded from NV12", seen.len());
    assert!(decoded.windows(2).all(|w| w[1].1 > w[0].1), "counters go up");
    assert!(decoded.iter().all(|(.., band)| is_band(*band)), "band colour: {:?}", decoded.iter().map(|d| d.2).collect::<Vec<_>>());
    assert!(outcome.converted >= decoded.len() as u64);
}

/// A GPU client (weston-simple-dmabuf-egl: it renders with EGL into GBM buffers and hands
/// them over through linux-dmabuf only) is imported and composited: its square reaches the
/// frames, in colour.
#[test]
#[ignore = "needs a DRM device named by PUNKTFUNK_DRM_NODE (.ci/drm-vm runs it)"]
fn a_gpu_clients_dmabufs_are_composited() {
    let node = node().display().to_string();
    let command = ["timeout", "25", "weston-simple-dmabuf-egl", "-d", &node].map(String::from).to_vec();
    // Sampled pixels that are lit, and that are strongly coloured (the square is a gradient).
    let (_, seen) = session(command, PixelFormat::Bgrx8888, None, |f| {
        let (mut lit, mut coloured) = (0, 0);
        for y in (0..f.height).step_by(8) {
            for x in (0..f.width).step_by(8) {
                let (r, g, b) = f.rgb_at(x, y);
                lit += usize::from(r.max(g).max(b) > 40);
                coloured += usize::from(r.max(g).max(b) - r.min(g).min(b) > 100);
            }
        }
        (lit, coloured)
    });
    // A 128x128 square (in a 256x256 window) on black, sampled every 8th pixel: 256 of the
    // frame's 3600 points.
    let best = seen.iter().copied().max().unwrap_or_default();
    assert!((200..400).contains(&best.0) && best.1 > 100, "the client's square: {best:?} of {} frames", seen.len());
}

/// Frames drawn straight into dmabuf surfaces (as into a VAAPI encoder's, here NV12 planes
/// allocated through GBM on the same device): each frame is a loan of one, and the surface
/// holds the pattern, read back through a mapping.
#[test]
#[ignore = "needs a DRM device named by PUNKTFUNK_DRM_NODE (.ci/drm-vm runs it)"]
fn frames_are_drawn_into_dmabuf_surfaces() {
    let (width, height) = (640u32, 360u32);
    let colour = Colour::default();
    let file = std::fs::OpenOptions::new().read(true).write(true).open(node()).unwrap();
    let gbm = gbm::Device::new(file).unwrap();
    // Each plane allocated as 32-bit pixels of its rows' bytes (virtio-gpu's buffers come in
    // 32 bits a pixel only), then described as the R8 or GR88 plane it holds.
    let plane = |fourcc: u32, (w, h): (u32, u32), bytes: u32| {
        let bo = gbm
            .create_buffer_object::<()>(
                w * bytes / 4,
                h,
                gbm::Format::Argb8888,
                gbm::BufferObjectFlags::RENDERING | gbm::BufferObjectFlags::LINEAR,
            )
            .unwrap();
        DmabufPlane {
            fd: bo.fd().unwrap(),
            fourcc,
            modifier: u64::from(bo.modifier()),
            offset: bo.offset(0),
            pitch: bo.stride(),
            width: w,
            height: h,
        }
    };
    let surfaces =
        (0..3).map(|_| vec![plane(DRM_FORMAT_R8, (width, height), 1), plane(DRM_FORMAT_GR88, (width / 2, height / 2), 2)]).collect();
    let surfaces = GpuSurfaces::new(render_node_device(), width, height, colour, surfaces);
    let wants = PixelFormat::Yuv { layout: Layout::Nv12, colour };
    // The sink keeps the last two frames' surfaces, as an encoder with frames in flight
    // does: the third is drawn into meanwhile.
    let held = parking_lot::Mutex::new(std::collections::VecDeque::new());
    let (outcome, seen) = session(pattern(40), wants, Some(surfaces), move |f| {
        let Pixels::Gpu(loan) = &f.pixels else { return None };
        let mut held = held.lock();
        held.push_back(loan.clone());
        if held.len() > 2 {
            held.pop_front();
        }
        let planes = &loan.surfaces().surfaces[loan.index()];
        let map = |p: &DmabufPlane| unsafe { memmap2::Mmap::map(&p.fd) }.unwrap();
        let (luma, chroma) = (map(&planes[0]), map(&planes[1]));
        let rgb_at = |x: u32, y: u32| {
            let c = (y / 2 * planes[1].pitch + x / 2 * 2) as usize;
            let yuv = [luma[(y * planes[0].pitch + x) as usize], chroma[c], chroma[c + 1]].map(f64::from);
            colour.to_rgb(8, yuv)
        };
        Some((loan.index(), decode(f.width, rgb_at), rgb_at(f.width / 2, f.height - 10)))
    });
    assert_eq!(outcome.exit_code, Some(0));
    let drawn: Vec<_> = seen.into_iter().flatten().collect();
    let decoded: Vec<_> = drawn.iter().filter_map(|(i, p, band)| p.map(|p| (*i, p.0, *band))).collect();
    assert!(decoded.len() >= 10, "{} of {} frames drawn into surfaces decoded", decoded.len(), drawn.len());
    assert!(decoded.windows(2).all(|w| w[1].1 > w[0].1), "counters go up");
    assert!(decoded.iter().all(|(.., band)| is_band(*band)), "band colour: {:?}", decoded.iter().map(|d| d.2).collect::<Vec<_>>());
    let used: std::collections::BTreeSet<usize> = decoded.iter().map(|d| d.0).collect();
    assert_eq!(used.len(), 3, "surfaces are taken in turn: {used:?}");
    assert!(outcome.zero_copy >= decoded.len() as u64, "{} frames drawn into surfaces", outcome.zero_copy);
}

/// The device number of the node's GPU's render node (what the compositor checks surfaces
/// against).
fn render_node_device() -> u64 {
    let render = punktfunk_streamer::encode::select::render_node_of(&node()).expect("the DRM device has a render node");
    std::fs::metadata(render).unwrap().rdev()
}

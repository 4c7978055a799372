//! The compositor driven in-process by Wayland clients over socket pairs (`fixture`): what
//! reaches a frame, when, and what clients are told, without timers or sleeps.

mod client;
mod fixture;

use fixture::Fixture;

const RED: (u8, u8, u8) = (0xd0, 0x20, 0x20);
const BLUE: (u8, u8, u8) = (0x30, 0x80, 0xff);
const BLACK: (u8, u8, u8) = (0, 0, 0);

/// A client with its window open and configured.
fn windowed(f: &mut Fixture) -> usize {
    let id = f.add_client();
    f.client(id).open_window();
    f.roundtrip(id);
    id
}

#[test]
fn a_window_is_told_the_outputs_size_and_shown_in_the_next_frame() {
    let mut f = Fixture::new("320x240@60");
    assert_eq!(f.render().map(|s| s.centre), Some(BLACK), "an empty output renders black");
    let id = windowed(&mut f);
    let seen = &f.client(id).seen;
    assert_eq!((seen.size, seen.fullscreen, seen.configures), ((320, 240), true, 1));
    f.client(id).draw(RED, (0, 0));
    f.roundtrip(id);
    let frame = f.render().expect("a frame once the window drew");
    assert_eq!((frame.width, frame.height, frame.centre, frame.corner), (320, 240, RED, RED));
}

#[test]
fn an_unchanged_scene_renders_no_frame() {
    let mut f = Fixture::new("320x240@60");
    let id = windowed(&mut f);
    f.client(id).draw(RED, (0, 0));
    f.roundtrip(id);
    assert!(f.render().is_some());
    assert_eq!(f.render(), None, "nothing changed");
    f.client(id).draw(BLUE, (0, 0));
    f.roundtrip(id);
    assert_eq!(f.render().map(|s| s.centre), Some(BLUE), "a new buffer is a new frame");
}

#[test]
fn a_mode_change_reconfigures_the_window_and_resizes_frames() {
    let mut f = Fixture::new("320x240@60");
    let id = windowed(&mut f);
    f.client(id).draw(RED, (0, 0));
    f.roundtrip(id);
    f.render().expect("the first frame");
    f.set_mode("640x480@30");
    f.roundtrip(id);
    assert_eq!((f.client(id).seen.size, f.client(id).seen.configures), ((640, 480), 2));
    f.client(id).draw(BLUE, (0, 0));
    f.roundtrip(id);
    let frame = f.render().expect("a frame at the new mode");
    assert_eq!((frame.width, frame.height, frame.centre), (640, 480, BLUE));
}

#[test]
fn the_newest_window_is_on_top_and_the_older_shows_when_it_closes() {
    let mut f = Fixture::new("320x240@60");
    let old = windowed(&mut f);
    f.client(old).draw(RED, (0, 0));
    let new = windowed(&mut f);
    f.client(new).draw(BLUE, (0, 0));
    f.roundtrip(old);
    f.roundtrip(new);
    assert_eq!(f.render().map(|s| s.centre), Some(BLUE));
    f.client(new).close_window();
    f.roundtrip(new);
    assert_eq!(f.render().map(|s| s.centre), Some(RED));
}

#[test]
fn a_crashed_clients_window_leaves_the_frame() {
    let mut f = Fixture::new("320x240@60");
    let id = windowed(&mut f);
    f.client(id).draw(RED, (0, 0));
    f.roundtrip(id);
    assert_eq!(f.render().map(|s| s.centre), Some(RED));
    f.kill_client(id);
    assert_eq!(f.render().map(|s| s.centre), Some(BLACK));
}

#[test]
fn frame_callbacks_come_with_the_refresh_not_with_the_commit() {
    let mut f = Fixture::new("320x240@60");
    let id = windowed(&mut f);
    f.client(id).draw(RED, (0, 0));
    f.roundtrip(id);
    assert_eq!(f.client(id).seen.frames_done, 0, "a commit alone is not a refresh");
    f.render().expect("a frame");
    f.send_frame_callbacks();
    f.roundtrip(id);
    assert_eq!(f.client(id).seen.frames_done, 1);
}

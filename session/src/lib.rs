//! punktfunk-session: the host daemon behind the `punktfunk` binary. It owns the control
//! plane (tokio): configuration, paired clients, the app catalog, the GameStream front end
//! (HTTP/HTTPS pairing and launch, RTSP, the ENet control stream) and stream sessions,
//! each a stream process (`punktfunk-stream`) that does the per-frame work (ARCHITECTURE.md
//! §1), and the private PipeWire they play into where none runs ([`pipewire`]). [`native`] serves
//! punktfunk/1 clients (QUIC control) from the same sessions; [`console`] is the web console.

pub mod admission;
pub mod api;
pub mod catalog;
pub mod config;
pub mod console;
pub mod doctor;
pub mod gamepad;
pub mod gamestream;
pub mod host;
pub mod input_view;
pub mod interfaces;
pub mod local_peer;
pub mod login;
pub mod login_path;
pub mod mdns;
pub mod native;
pub mod notify;
pub mod panics;
pub mod pin;
pub mod pipewire;
pub mod store;
pub mod stream;

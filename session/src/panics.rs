//! One policy for a panic anywhere in the daemon: report it and abort the process. A thread
//! that died while the others serve on (the control stream gone, pairing stuck) is worse than
//! no daemon: the service manager restarts a whole one (the unit's `Restart=on-failure`),
//! and the stream processes stop when the daemon's socket closes.

/// Installs the policy; `serve` calls it first.
pub fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        tracing::error!("{info}: aborting, to be restarted whole");
        std::process::abort();
    }));
}

/// A fault injected at `place` when `PUNKTFUNK_FAULT` names it, in debug builds only: tests
/// panic real daemon threads to check the policy. Release builds ignore the variable.
pub fn inject_fault(place: &str) {
    if cfg!(debug_assertions) && std::env::var("PUNKTFUNK_FAULT").is_ok_and(|p| p == place) {
        panic!("fault injected at {place}");
    }
}

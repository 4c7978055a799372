//! Pairing requests on the host's own desktop: a device waiting for its PIN shows as a
//! notification (org.freedesktop.Notifications on the user's session bus), whose action
//! opens the web console where the PIN goes; it goes away once the device stops waiting.
//! Hosts without a desktop (no session bus, no notification server) skip this quietly.

use crate::host::Host;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[zbus::proxy(
    interface = "org.freedesktop.Notifications",
    default_service = "org.freedesktop.Notifications",
    default_path = "/org/freedesktop/Notifications"
)]
trait Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: &str,
        replaces_id: u32,
        app_icon: &str,
        summary: &str,
        body: &str,
        actions: &[&str],
        hints: HashMap<&str, zbus::zvariant::Value<'_>>,
        expire_timeout: i32,
    ) -> zbus::Result<u32>;

    fn close_notification(&self, id: u32) -> zbus::Result<()>;

    #[zbus(signal)]
    fn action_invoked(&self, id: u32, action_key: String) -> zbus::Result<()>;
}

/// How often the desk is looked at: a notification shows within this of the request.
const TICK: Duration = Duration::from_millis(250);
/// A notification server that does not answer in this long is given up on for this call.
const CALL_LIMIT: Duration = Duration::from_secs(5);
/// The action that opens the console.
const ENTER_PIN: &str = "enter-pin";

/// Shows each device waiting for a PIN as a notification until it stops waiting; runs
/// for the daemon's life.
pub async fn show_pairing_requests(host: Arc<Host>) {
    let proxy = match connect().await {
        Ok(p) => p,
        Err(e) => return tracing::info!("pairing requests are not shown on the desktop: {e}"),
    };
    let mut invoked = match proxy.receive_action_invoked().await {
        Ok(s) => s,
        Err(e) => return tracing::info!("pairing requests are not shown on the desktop: {e}"),
    };
    // Device → its notification's id.
    let mut shown: HashMap<String, u32> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let waiting = host.pins.waiting();
                let gone: Vec<String> = shown.keys().filter(|d| !waiting.contains(d)).cloned().collect();
                for device in gone {
                    if let Some(id) = shown.remove(&device).filter(|id| *id != 0) {
                        let _ = tokio::time::timeout(CALL_LIMIT, proxy.close_notification(id)).await;
                    }
                }
                let new: Vec<String> = waiting.into_iter().filter(|d| !shown.contains_key(d)).collect();
                for device in new {
                    // A failed notification is not tried again for this request (id 0:
                    // nothing to close).
                    let id = match tokio::time::timeout(CALL_LIMIT, notify(&proxy, &host, &device)).await {
                        Ok(Ok(id)) => id,
                        Ok(Err(e)) => {
                            tracing::debug!("notification for {device}: {e}");
                            0
                        }
                        Err(_) => {
                            tracing::debug!("notification for {device}: the notification server did not answer");
                            0
                        }
                    };
                    shown.insert(device, id);
                }
            }
            Some(signal) = invoked.next() => {
                let Ok(args) = signal.args() else { continue };
                if args.action_key == ENTER_PIN && shown.values().any(|id| *id == args.id) {
                    open_console(host.config.console_port);
                }
            }
        }
    }
}

async fn connect() -> zbus::Result<NotificationsProxy<'static>> {
    let bus = tokio::time::timeout(CALL_LIMIT, zbus::Connection::session())
        .await
        .map_err(|_| zbus::Error::Failure("the session bus did not answer".into()))??;
    NotificationsProxy::new(&bus).await
}

async fn notify(proxy: &NotificationsProxy<'_>, host: &Host, device: &str) -> zbus::Result<u32> {
    let body = format!("{device} asks to pair with {}. Enter the PIN it shows.", host.name);
    // Without a console the PIN goes in on the command line: no action then.
    let actions: &[&str] = if host.config.console_port != 0 { &[ENTER_PIN, "Enter PIN"] } else { &[] };
    let body = if actions.is_empty() { format!("{body} (punktfunk pair PIN)") } else { body };
    let hints = HashMap::from([("urgency", zbus::zvariant::Value::U8(2)), ("category", zbus::zvariant::Value::from("device"))]);
    // 0: it stays until the device stops waiting (then it is closed).
    proxy.notify("punktfunk", 0, "video-display", "Pair a device?", &body, actions, hints, 0).await
}

/// Opens the console in the desktop's browser.
fn open_console(port: u16) {
    let url = format!("https://localhost:{port}/");
    match tokio::process::Command::new("xdg-open").arg(&url).kill_on_drop(false).spawn() {
        Ok(mut child) => {
            tokio::spawn(async move { child.wait().await });
        }
        Err(e) => tracing::warn!("opening {url}: xdg-open: {e}"),
    }
}

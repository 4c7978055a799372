//! A pad's device nodes in its session's input view ([`crate::input_view`]): its evdev and
//! joystick nodes shown to its session, a DualSense's hidraw node masked in every other
//! session's, all taken back when the pad goes. Found in sysfs: a uinput pad's under its
//! own device, a DualSense's (made by the kernel's driver once it binds) by the `uniq` its
//! devices share.

use crate::input_view::{self, InputView};
use std::path::Path;
use std::sync::Arc;

/// Where a pad's nodes are placed, undone on drop.
pub struct Placed {
    view: Option<Arc<InputView>>,
    shown: Vec<String>,
    hidraw: Vec<String>,
}

impl Placed {
    pub fn new(view: Option<Arc<InputView>>) -> Self {
        Self { view, shown: Vec::new(), hidraw: Vec::new() }
    }

    /// Places the nodes of `names` not placed yet.
    pub fn place(&mut self, names: Vec<String>) {
        for name in names {
            if self.shown.contains(&name) || self.hidraw.contains(&name) {
                continue;
            }
            if name.starts_with("hidraw") {
                input_view::claim_hidraw(&name, self.view.as_ref());
                self.hidraw.push(name);
            } else if let Some(view) = &self.view {
                match view.show(&name) {
                    Ok(()) => self.shown.push(name),
                    Err(e) => tracing::warn!("showing /dev/input/{name} to its session: {e}"),
                }
            }
        }
    }

    /// Evdev nodes placed so far, and whether a hidraw one is.
    pub fn found(&self) -> (usize, bool) {
        (self.shown.iter().filter(|n| n.starts_with("event")).count(), !self.hidraw.is_empty())
    }
}

impl Drop for Placed {
    fn drop(&mut self) {
        if let Some(view) = &self.view {
            for name in &self.shown {
                let _ = view.hide(name);
            }
        }
        for name in &self.hidraw {
            input_view::release_hidraw(name, self.view.as_ref());
        }
    }
}

/// The event and joystick nodes of the input device at `syspath` (`…/inputN`).
pub fn of_input(syspath: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(syspath) else { return Vec::new() };
    let names = entries.flatten().filter_map(|e| e.file_name().into_string().ok());
    names.filter(|n| n.starts_with("event") || n.starts_with("js")).collect()
}

/// The nodes of the devices whose `uniq` is `uniq` under `sys` (/sys): the input devices'
/// event and joystick nodes, and the hidraw nodes.
pub fn of_uniq(sys: &Path, uniq: &str) -> Vec<String> {
    let mut nodes = Vec::new();
    let class = |name: &str| std::fs::read_dir(sys.join("class").join(name)).into_iter().flatten().flatten();
    for input in class("input").filter(|e| e.file_name().to_string_lossy().starts_with("input")) {
        if std::fs::read_to_string(input.path().join("uniq")).is_ok_and(|u| u.trim() == uniq) {
            nodes.extend(of_input(&input.path()));
        }
    }
    for hidraw in class("hidraw") {
        let uevent = std::fs::read_to_string(hidraw.path().join("device/uevent")).unwrap_or_default();
        if uevent.lines().any(|l| l.strip_prefix("HID_UNIQ=").is_some_and(|u| u == uniq)) {
            nodes.extend(hidraw.file_name().into_string());
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_found_by_uniq_as_sysfs_lays_them_out() {
        let sys = std::env::temp_dir().join(format!("pf-sysfs-{}", std::process::id()));
        let dir = |p: &str| std::fs::create_dir_all(sys.join(p)).unwrap();
        let file = |p: &str, text: &str| std::fs::write(sys.join(p), text).unwrap();
        for (input, uniq, nodes) in [
            ("input7", "02:70:66:01:02:03", &["event5", "js0"][..]),
            ("input8", "02:70:66:01:02:03", &["event6"]),
            ("input9", "other", &["event7"]),
        ] {
            dir(&format!("class/input/{input}"));
            file(&format!("class/input/{input}/uniq"), &format!("{uniq}\n"));
            for node in nodes {
                dir(&format!("class/input/{input}/{node}"));
            }
        }
        dir("class/input/event5");
        dir("class/hidraw/hidraw2/device");
        file("class/hidraw/hidraw2/device/uevent", "DRIVER=playstation\nHID_UNIQ=02:70:66:01:02:03\n");
        dir("class/hidraw/hidraw3/device");
        file("class/hidraw/hidraw3/device/uevent", "HID_UNIQ=other\n");
        let mut found = of_uniq(&sys, "02:70:66:01:02:03");
        found.sort();
        assert_eq!(found, ["event5", "event6", "hidraw2", "js0"]);
        let _ = std::fs::remove_dir_all(&sys);
    }
}

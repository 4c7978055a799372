//! The console's pages: small HTML shells rendered here (the host name escaped), the
//! script and styles embedded in the binary.

pub const SCRIPT: &str = include_str!("assets/console.js");
pub const STYLE: &str = include_str!("assets/console.css");

// XML's escaping is HTML's too (text and quoted attribute values).
use crate::gamestream::xml::escape;

/// A page: `head` added to its head, `nav` to its header bar.
fn shell(name: &str, head: &str, nav: &str, body: &str) -> String {
    let name = escape(name);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{head}\
         <title>{name} · punktfunk</title><link rel=\"stylesheet\" href=\"/console.css\"></head>\
         <body><header><h1>{name}</h1>{nav}</header><main>{body}</main></body></html>\n"
    )
}

fn notice(message: Option<&str>) -> String {
    message.map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m))).unwrap_or_default()
}

pub fn login(name: &str, message: Option<&str>) -> String {
    let body = format!(
        "<section class=\"narrow\"><h2>Log in</h2>{}<form method=\"post\" action=\"/login\">\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required autofocus></label>\
         <button type=\"submit\">Log in</button></form></section>",
        notice(message)
    );
    shell(name, "", "", &body)
}

pub fn setup(name: &str, message: Option<&str>) -> String {
    let body = format!(
        "<section class=\"narrow\"><h2>Set the console's password</h2>\
         <p>Anyone on your network who knows it can pair devices and manage this host.</p>{}\
         <form method=\"post\" action=\"/setup\">\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"new-password\" minlength=\"{min}\" required autofocus></label>\
         <label>Again <input type=\"password\" name=\"again\" autocomplete=\"new-password\" minlength=\"{min}\" required></label>\
         <button type=\"submit\">Set password</button></form></section>",
        notice(message),
        min = super::auth::MIN_PASSWORD
    );
    shell(name, "", "", &body)
}

pub fn no_password(name: &str) -> String {
    let body = "<section class=\"narrow\"><h2>No password yet</h2><p>The console has no password yet. Set one on the \
                host: open this page there, or run <code>punktfunk console-password</code>.</p></section>";
    shell(name, "", "", body)
}

/// The console itself; its script fills it from the API.
pub fn console(name: &str, csrf: &str) -> String {
    let head = format!("<meta name=\"csrf-token\" content=\"{}\"><script src=\"/console.js\" defer></script>", escape(csrf));
    let nav = "<form class=\"logout\" method=\"post\" action=\"/logout\"><button type=\"submit\">Log out</button></form>";
    let body = "<section id=\"pairing\"><h2>Pair a device</h2>\
        <p class=\"hint\" id=\"no-waiting\">No device is asking to pair. Start pairing on the device: it shows a PIN to enter here.</p>\
        <ul id=\"waiting\"></ul><p id=\"pair-result\" role=\"status\"></p></section>\
        <section id=\"sessions\"><h2>Streaming now</h2><p class=\"hint\" id=\"no-sessions\">Nothing is streaming.</p>\
        <p class=\"legend\"><span class=\"kbps\">bit rate</span> <span class=\"fps\">frame rate</span> \
        <span class=\"latency\">host latency</span> <span class=\"fec\">FEC parity</span> <span class=\"repair\">FEC repairs</span> <span class=\"loss\">frames lost</span> \
        over the last minute</p>\
        <div id=\"session-list\"></div></section>\
        <section id=\"clients\"><h2>Paired devices</h2><p class=\"hint\" id=\"no-clients\">No device is paired yet.</p>\
        <ul id=\"client-list\"></ul></section>\
        <section id=\"apps\"><h2>Apps</h2><ul id=\"app-list\"></ul></section>\
        <section id=\"health\"><h2>Host health <button type=\"button\" id=\"recheck\">Check again</button></h2>\
        <ul id=\"check-list\"></ul></section>\
        <section id=\"log\"><h2>Log</h2><pre id=\"log-lines\" tabindex=\"0\"></pre></section>";
    shell(name, &head, nav, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_host_name_stays_text() {
        let page = login("<script>alert(1)</script>\"'", Some("<b>"));
        assert!(!page.contains("<script>alert") && !page.contains("<b>"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&apos;"));
    }
}

//! The XML bodies GameStream clients read: `<root status_code="…">` with flat children.

pub struct Xml {
    status: u32,
    message: Option<String>,
    body: String,
}

impl Xml {
    pub fn ok() -> Self {
        Self { status: 200, message: None, body: String::new() }
    }

    /// An error travels in `status_code` with HTTP 200 (clients treat HTTP errors as fatal).
    pub fn error(status: u32, message: &str) -> Self {
        Self { status, message: Some(message.to_owned()), body: String::new() }
    }

    /// A `status_message` attribute on the root (shown by some clients).
    pub fn message(mut self, message: &str) -> Self {
        self.message = Some(message.to_owned());
        self
    }

    pub fn el(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.body += &format!("<{name}>{}</{name}>", escape(&value.to_string()));
        self
    }

    /// A nested element from already-built children.
    pub fn raw(mut self, xml: &str) -> Self {
        self.body += xml;
        self
    }

    /// The children alone, to nest them in another element.
    pub fn body(&self) -> &str {
        &self.body
    }

    pub fn render(&self) -> String {
        let message = self.message.as_deref().map(|m| format!(" status_message=\"{}\"", escape(m))).unwrap_or_default();
        format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<root status_code=\"{}\"{message}>{}</root>", self.status, self.body)
    }
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_escapes() {
        let x = Xml::ok().el("AppTitle", "Tom & <Jerry>").render();
        assert!(x.ends_with("<root status_code=\"200\"><AppTitle>Tom &amp; &lt;Jerry&gt;</AppTitle></root>"));
        assert!(Xml::error(401, "not \"paired\"").render().contains("status_code=\"401\" status_message=\"not &quot;paired&quot;\""));
    }
}

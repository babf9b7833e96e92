//! A tiny W3C WebDriver client over chromedriver's HTTP API (Debian's `chromium` and
//! `chromium-driver`; no browser is downloaded). Headless, sandbox off (containers), no network
//! beyond 127.0.0.1, a fresh profile per session.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::daemon::free_port;
use super::poll;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

/// `chromedriver` and `chromium`, or `None` (a failure with `CI=true`).
pub fn browser() -> Option<Browser> {
    let present = |b: &str| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !present("chromedriver") || !present("chromium") {
        assert!(
            !ferry_testbed::in_ci(),
            "chromium or chromium-driver is not installed"
        );
        eprintln!("SKIP: chromium or chromium-driver is not installed");
        return None;
    }
    let port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = poll(Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        (request(port, "GET", "/status", &[], b"").0 == 200).then_some(())
    });
    assert!(ready.is_some(), "chromedriver did not start");
    let profile = tempfile::tempdir().unwrap();
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.path().display())])
    .collect::<Vec<_>>();
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
    }}});
    let mut b = Browser {
        driver,
        port,
        session: String::new(),
        _profile: profile,
    };
    let v = b.call("POST", "/session", Some(caps));
    b.session = v["sessionId"].as_str().expect("session id").to_string();
    Some(b)
}

impl Browser {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|(status, v)| panic!("{method} {path}: {status} {v}"))
    }

    /// The `value` of a 200 answer, else the status and the answer.
    fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (u16, Value)> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers = [("Content-Type", "application/json")];
        let (status, text) = request(self.port, method, path, &headers, body.as_bytes());
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: {status} {text}"));
        if status == 200 {
            Ok(v["value"].clone())
        } else {
            Err((status, v))
        }
    }

    /// The text of `css` now (`None`: absent, or replaced by a live update meanwhile).
    fn text_now(&self, css: &str) -> Option<String> {
        let el = self.find(css)?;
        let v = self
            .try_call("GET", &self.s(&format!("/element/{el}/text")), None)
            .ok()?;
        v.as_str().map(str::to_string)
    }

    fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({"url": url})));
    }

    /// The element matching `css` now, if any.
    pub fn find(&self, css: &str) -> Option<String> {
        let v = self.call(
            "POST",
            &self.s("/elements"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()?.first()?[ELEMENT].as_str().map(str::to_string)
    }

    /// Waits (bounded) for an element matching `css`.
    pub fn wait(&self, css: &str) -> String {
        poll(Duration::from_secs(30), || self.find(css))
            .unwrap_or_else(|| panic!("no {css} in:\n{}", self.source()))
    }

    pub fn text(&self, css: &str) -> String {
        poll(Duration::from_secs(30), || self.text_now(css))
            .unwrap_or_else(|| panic!("no {css} in:\n{}", self.source()))
    }

    /// Waits (bounded) until the text of `css` contains `needle`; returns it.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        poll(Duration::from_secs(60), || {
            let t = self.text_now(css)?;
            t.contains(needle).then_some(t)
        })
        .unwrap_or_else(|| panic!("{css} never showed {needle:?}:\n{}", self.source()))
    }

    pub fn click(&self, css: &str) {
        let el = self.wait(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{el}/click")),
            Some(json!({})),
        );
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let el = self.wait(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{el}/value")),
            Some(json!({"text": text})),
        );
    }

    pub fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": js, "args": []})),
        )
    }

    pub fn source(&self) -> String {
        self.call("GET", &self.s("/source"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let b64 = self.call("GET", &self.s("/screenshot"), None);
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("base64 PNG")
    }
}

/// One HTTP/1.1 exchange that reads exactly `Content-Length` bytes (chromedriver keeps the
/// connection open, so reading to the end would wait for a timeout).
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let (head_end, len) = loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "{method} {path}: connection closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, len);
        }
    };
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "{method} {path}: body cut short");
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned(),
    )
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Closes the browser; a failure here must not hide the test's own.
            let (port, path) = (self.port, format!("/session/{}", self.session));
            let _ = std::panic::catch_unwind(|| request(port, "DELETE", &path, &[], b""));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

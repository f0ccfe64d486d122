//! Headless Chromium driven over the DevTools protocol (CDP) with the
//! WebSocket client the tests already use: navigate, evaluate JavaScript,
//! take a screenshot. Debian's `chromium` is installed by
//! `scripts/brokers.sh install`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const CHROMIUM: &str = "/usr/bin/chromium";

/// A headless browser with one page; killed on drop.
pub struct Browser {
    _child: Child,
    _profile: tempfile::TempDir,
    page: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Browser {
    /// Starts Chromium, or `None` (the test skips) when it is not installed
    /// and this is not CI.
    pub async fn launch() -> Option<Self> {
        if !Path::new(CHROMIUM).exists() {
            let message = "chromium is not installed; run `scripts/brokers.sh install`";
            assert!(!tickcast_testkit::in_ci(), "CI=true and {message}");
            eprintln!("skipping: {message}");
            return None;
        }
        let profile = tempfile::tempdir().expect("profile directory");
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1280,800",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");
        let port = devtools_port(&mut child).await;
        let page_url = page_target(port).await;
        let (page, _) = tokio_tungstenite::connect_async(page_url.as_str())
            .await
            .expect("connect to the page's DevTools socket");
        Some(Self {
            _child: child,
            _profile: profile,
            page,
            next_id: 0,
        })
    }

    /// Sends one CDP command and returns its `result`.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({"id": id, "method": method, "params": params});
        self.page
            .send(Message::text(command.to_string()))
            .await
            .expect("send a CDP command");
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.page.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .expect("DevTools socket open")
                .expect("DevTools message");
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).expect("CDP JSON");
            if value["id"] == id {
                assert!(value["error"].is_null(), "{method}: {}", value["error"]);
                return value["result"].clone();
            }
        }
    }

    /// Opens `url` and waits until the document has loaded.
    pub async fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for("document.readyState === 'complete'").await;
    }

    /// Evaluates `expression` in the page; its value as JSON.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression}: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Polls `condition` (a JavaScript boolean expression) until true.
    pub async fn wait_for(&mut self, condition: &str) {
        for _ in 0..300 {
            if self.eval(condition).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for `{condition}`");
    }

    /// Saves a PNG of the page to `path`.
    pub async fn screenshot(&mut self, path: &Path) {
        let result = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let data = result["data"].as_str().expect("screenshot data");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64 PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot directory");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }
}

/// Reads Chromium's stderr until it names its DevTools port.
async fn devtools_port(child: &mut Child) -> u16 {
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let find = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                let port = rest.split('/').next().and_then(|p| p.parse().ok());
                if let Some(port) = port {
                    return port;
                }
            }
        }
        panic!("chromium exited without a DevTools address");
    };
    let port = tokio::time::timeout(Duration::from_secs(30), find)
        .await
        .expect("chromium starts");
    // Keep draining stderr so Chromium never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    port
}

/// The DevTools WebSocket URL of the first page.
async fn page_target(port: u16) -> String {
    let addr = format!("127.0.0.1:{port}").parse().expect("address");
    let answer = super::request(addr, "GET", "/json/list", &[], Vec::new()).await;
    let targets = answer.json();
    targets
        .as_array()
        .and_then(|t| t.iter().find(|t| t["type"] == "page"))
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .expect("a page target")
        .to_owned()
}

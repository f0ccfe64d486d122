//! The demo page in headless Chromium: open it, subscribe with a filter
//! over WebSocket and over SSE, and see published events appear; then cut
//! its connections and see the JavaScript client it runs on resume without
//! a gap or a repeat. Each run leaves a screenshot under target/ for a
//! person to look at.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::browser::Browser;
use common::{test_config, TestServer};
use serde_json::json;

fn screenshot_path(name: &str) -> PathBuf {
    // Tests run with the package directory as working directory.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/screenshots")
        .join(name)
}

async fn publish(server: &TestServer, symbol: &str, confidence: f64) {
    let body = json!({"source": "TickStockPL", "pattern": "BreakoutBO", "symbol": symbol,
                      "confidence": confidence, "tier": "daily"});
    let answer = server.post("/api/publish", body.to_string()).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
}

async fn subscribe_and_watch(transport: &str) {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let server = TestServer::start(test_config()).await;
    browser
        .navigate(&format!("http://{}/", server.addr()))
        .await;
    assert_eq!(
        browser.eval("document.title").await,
        json!("tickcast — live events")
    );

    // Fill the form: this transport, AAPL only, confidence 0.7 and up.
    browser
        .eval(&format!(
            "document.querySelector('input[name=transport][value={transport}]').checked = true;
             document.getElementById('symbols').value = 'aapl';
             document.getElementById('min_confidence').value = '0.7';
             document.querySelector('#filter button[type=submit]').click(); true"
        ))
        .await;
    browser
        .wait_for("document.getElementById('state').className === 'open'")
        .await;
    // Wait until the server holds the subscription before publishing.
    for _ in 0..100 {
        if server.stats().await["subscriptions"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    publish(&server, "AAPL", 0.95).await;
    publish(&server, "MSFT", 0.95).await; // another symbol: not shown
    publish(&server, "AAPL", 0.5).await; // below 0.7: not shown
    publish(&server, "AAPL", 0.75).await;
    browser
        .wait_for("document.querySelectorAll('#events tr').length >= 2")
        .await;
    let rows = browser
        .eval("[...document.querySelectorAll('#events tr')].map(r => r.innerText)")
        .await;
    let rows: Vec<String> = serde_json::from_value(rows).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // Newest first, with its priority badge.
    assert!(rows[0].contains("AAPL") && rows[0].contains("0.75") && rows[0].contains("medium"));
    assert!(
        rows[1].contains("AAPL") && rows[1].contains("critical"),
        "{rows:?}"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('total').textContent")
            .await,
        json!("2")
    );
    browser
        .screenshot(&screenshot_path(&format!("demo-{transport}.png")))
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_shows_filtered_events_over_websocket() {
    subscribe_and_watch("ws").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_shows_filtered_events_over_sse() {
    subscribe_and_watch("sse").await;
}

/// A TCP proxy between the browser and the server whose connections the
/// test cuts, as a failing network would, and which can refuse new ones.
struct Proxy {
    addr: SocketAddr,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    refusing: Arc<AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let connections = Arc::new(Mutex::new(Vec::new()));
        let refusing = Arc::new(AtomicBool::new(false));
        let accept = tokio::spawn({
            let connections = connections.clone();
            let refusing = refusing.clone();
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if refusing.load(Ordering::SeqCst) {
                        continue; // dropped: closed at once
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    connections
                        .lock()
                        .expect("proxy connections")
                        .push(task.abort_handle());
                }
            }
        });
        Self {
            addr,
            connections,
            refusing,
            accept,
        }
    }

    /// Closes every connection in both directions, mid-stream.
    fn cut(&self) {
        for task in self
            .connections
            .lock()
            .expect("proxy connections")
            .drain(..)
        {
            task.abort();
        }
    }

    fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The rows of the events table, newest first.
async fn rows(browser: &mut Browser) -> Vec<String> {
    let rows = browser
        .eval("[...document.querySelectorAll('#events tr')].map(r => r.innerText)")
        .await;
    serde_json::from_value(rows).expect("rows as strings")
}

async fn resume_after_a_cut(transport: &str) {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let server = TestServer::start(test_config()).await;
    let proxy = Proxy::start(server.addr()).await;
    // The page comes through the proxy too, so every connection it opens does.
    browser.navigate(&format!("http://{}/", proxy.addr)).await;
    browser
        .eval(&format!(
            "document.querySelector('input[name=transport][value={transport}]').checked = true;
             document.getElementById('symbols').value = 'AAPL';
             document.querySelector('#filter button[type=submit]').click(); true"
        ))
        .await;
    browser
        .wait_for("document.getElementById('state').className === 'open'")
        .await;
    for _ in 0..100 {
        if server.stats().await["subscriptions"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    publish(&server, "AAPL", 0.91).await;
    publish(&server, "AAPL", 0.92).await;
    browser
        .wait_for("document.getElementById('total').textContent === '2'")
        .await;

    // Cut, and publish while the page cannot reconnect: only a resume
    // brings these.
    proxy.refuse(true);
    proxy.cut();
    browser
        .wait_for("document.getElementById('state').className === 'retrying'")
        .await;
    publish(&server, "AAPL", 0.93).await;
    publish(&server, "MSFT", 0.99).await; // not subscribed
    publish(&server, "AAPL", 0.94).await;
    publish(&server, "AAPL", 0.95).await;
    proxy.refuse(false);
    browser
        .wait_for("document.getElementById('total').textContent === '5'")
        .await;
    browser
        .wait_for("document.getElementById('state').className === 'open'")
        .await;
    // Live again on the new connection; a repeat of anything would arrive
    // before this one.
    publish(&server, "AAPL", 0.96).await;
    browser
        .wait_for("document.getElementById('total').textContent === '6'")
        .await;

    let rows = rows(&mut browser).await;
    let notices: Vec<&String> = rows.iter().filter(|r| r.contains("resumed")).collect();
    assert_eq!(notices.len(), 1, "one resume notice expected: {rows:?}");
    assert!(
        notices[0].contains("3 missed event(s) replayed"),
        "{rows:?}"
    );
    // Six events, each once, newest first: confidences 0.96 down to 0.91.
    let events: Vec<&String> = rows.iter().filter(|r| r.contains("AAPL")).collect();
    let confidences: Vec<&str> = ["0.96", "0.95", "0.94", "0.93", "0.92", "0.91"].to_vec();
    assert_eq!(events.len(), confidences.len(), "{rows:?}");
    for (row, confidence) in events.iter().zip(confidences) {
        assert!(
            row.contains(confidence),
            "{confidence} expected in {row}: {rows:?}"
        );
    }
    assert!(!rows.iter().any(|r| r.contains("MSFT")), "{rows:?}");
    browser
        .screenshot(&screenshot_path(&format!("demo-{transport}-resumed.png")))
        .await;
    drop(proxy);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_resumes_without_gap_or_repeat_after_a_cut_over_websocket() {
    resume_after_a_cut("ws").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_resumes_without_gap_or_repeat_after_a_cut_over_sse() {
    resume_after_a_cut("sse").await;
}

#[tokio::test]
async fn the_client_modules_are_served_as_javascript_to_any_origin() {
    let server = TestServer::start(test_config()).await;
    let answer = server.get("/client/tickcast.js").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    // Module scripts are fetched with CORS: other origins' pages import it too.
    assert_eq!(answer.headers["access-control-allow-origin"], "*");
    assert!(answer.text().contains("export class TickcastClient"));
    for path in ["/client/nope.js", "/client/", "/client/tickcast.d.ts"] {
        assert_eq!(server.get(path).await.status, 404, "{path}");
    }
    server.stop().await;
}

/// Serves `page` to every request on an ephemeral port: a web page of an
/// origin other than the server's.
async fn serve_page(page: String) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the page server");
    let addr = listener.local_addr().expect("page server address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let page = page.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = socket.read(&mut head).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

/// The README's five lines, as written there, in a page of another origin
/// that imports the client from the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_snippet_subscribes_from_another_origin() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let server = TestServer::start(test_config()).await;
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let snippet = readme
        .split("```html\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an html block in README.md")
        .replace("127.0.0.1:8080", &server.addr().to_string());
    let page = format!(
        "<!doctype html><script>window.logged = []; \
         console.log = (...args) => window.logged.push(args);</script>{snippet}"
    );
    let origin = serve_page(page).await;
    let url = format!("http://{origin}/");
    browser.navigate(&url).await;
    for _ in 0..100 {
        if server.stats().await["subscriptions"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    publish(&server, "MSFT", 0.9).await;
    publish(&server, "AAPL", 0.9).await;
    browser.wait_for("window.logged.length === 1").await;
    assert_eq!(
        browser.eval("window.logged[0][0].symbol").await,
        json!("AAPL")
    );
    server.stop().await;
}

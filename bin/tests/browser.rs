//! The demo page in headless Chromium: open it, subscribe with a filter
//! over WebSocket and over SSE, and see published events appear. Each run
//! leaves a screenshot under target/ for a person to look at.

mod common;

use std::path::PathBuf;

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

//! Graceful shutdown of the real server: it stops accepting, closes client
//! connections with 1001 after their queued frames, and finishes even with
//! idle keep-alive HTTP connections open.

mod common;

use common::{test_config, Client, TestServer, STEP};
use tickcast_core::broadcast::Outbound;
use tickcast_core::model::Filter;
use tickcast_core::protocol::CloseCode;

const EVENT: &str = r#"{"pattern":"Doji","symbol":"AAPL","confidence":0.7,"tier":"daily"}"#;

#[tokio::test]
async fn shutdown_flushes_connections_then_closes_them_and_the_listener() {
    let server = TestServer::start(test_config()).await;
    let addr = server.addr();
    let hub = server.server.hub().clone();

    // A client connection of the hub (what /ws will hold) ...
    let mut conn = hub.connect(None, hub.default_limits()).expect("connect");
    let filter: Filter = serde_json::from_str(r#"{"symbols":["AAPL"]}"#).unwrap();
    conn.handle
        .subscribe("s1", filter, None)
        .expect("subscribe");
    // ... and an idle keep-alive HTTP connection.
    let mut http = Client::connect(addr).await;
    let answer = http.send("POST", "/api/publish", &[], EVENT.into()).await;
    assert_eq!(answer.status, 202, "{}", answer.text());

    let stop = tokio::spawn(server.stop());

    // The queued event still arrives, then the close with 1001.
    let frames = tokio::time::timeout(STEP, async {
        let mut frames = Vec::new();
        while let Some(frame) = conn.frames.recv().await {
            let close = matches!(frame, Outbound::Close(_));
            frames.push(frame);
            if close {
                break;
            }
        }
        frames
    })
    .await
    .expect("frames in time");
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, Outbound::Event(_) | Outbound::Batch(_))),
        "{frames:?}"
    );
    assert!(
        matches!(frames.last(), Some(Outbound::Close(CloseCode::GoingAway))),
        "{frames:?}"
    );
    drop(conn);

    tokio::time::timeout(STEP, stop)
        .await
        .expect("shutdown in time")
        .expect("stop task");
    assert!(hub.is_shut_down());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn publishing_after_shutdown_is_refused() {
    let server = TestServer::start(test_config()).await;
    let hub = server.server.hub().clone();
    server.stop().await;
    assert!(hub.is_shut_down());
    assert!(hub.connect(None, hub.default_limits()).is_err());
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    let first = TestServer::start(test_config()).await;
    let mut config = test_config();
    config.listen = first.addr().to_string();
    let error = tickcast::serve(config, std::future::pending())
        .await
        .expect_err("the port is taken");
    assert!(
        error.to_string().contains(&first.addr().to_string()),
        "{error}"
    );
    first.stop().await;
}

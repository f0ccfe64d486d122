//! The tier-pattern API through real WebSocket clients: users connect with
//! a JWT and get the feed and alerts of their preferences without
//! subscribing themselves.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{json, Value};
use tickcast_core::auth::Authenticator;
use tickcast_core::model::Tier;
use tickcast_core::session::SessionConfig;
use tickcast_core::HubConfig;
use tickcast_patterns::{
    PatternAlertEvent, TierPatternEvent, TierPatternHub, UserPreferences, PATTERN_SUBSCRIPTION,
};
use tickcast_testkit::ws::next_json;
use tickcast_transport_ws::{ws_route, WsConfig};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use warp::Filter;

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SECRET: &[u8] = b"patterns-secret";

async fn serve(patterns: &TierPatternHub) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = WsConfig::default().with_session(
        SessionConfig::default().with_auth(Some(Arc::new(Authenticator::hs256(SECRET)))),
    );
    let routes = ws_route(patterns.hub().clone(), config)
        .map(warp::Reply::into_response)
        .boxed();
    tokio::spawn(tickcast_transport_ws::serve(
        listener,
        routes,
        std::future::pending(),
    ));
    addr
}

/// Connects as `user` and reads its welcome and the server-side
/// subscriptions; returns their ids.
async fn connect(addr: SocketAddr, user: &str) -> (Client, Vec<String>) {
    let url = format!(
        "ws://{addr}/ws?token={}",
        tickcast_testkit::jwt::user_token(SECRET, user)
    );
    let (mut client, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(next_json(&mut client).await["user"], user);
    let mut subscribed = Vec::new();
    for _ in 0..2 {
        let frame = next_json(&mut client).await;
        assert_eq!(frame["type"], "subscribed", "{frame}");
        subscribed.push(frame["id"].as_str().unwrap().to_owned());
    }
    subscribed.sort();
    (client, subscribed)
}

/// The events of the next `event` or `batch` frame.
async fn next_events(client: &mut Client) -> Vec<Value> {
    loop {
        let frame = next_json(client).await;
        match frame["type"].as_str() {
            Some("event") => return vec![frame],
            Some("batch") => return frame["events"].as_array().cloned().unwrap_or_default(),
            _ => {}
        }
    }
}

/// The next `n` events, whatever frames carry them.
async fn next_n_events(client: &mut Client, n: usize) -> Vec<Value> {
    let mut events = Vec::new();
    while events.len() < n {
        events.extend(next_events(client).await);
    }
    assert_eq!(events.len(), n, "{events:?}");
    events
}

async fn next_event(client: &mut Client) -> Value {
    next_n_events(client, 1).await.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_get_the_feed_and_alerts_of_their_preferences_over_websocket() {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    let patterns = TierPatternHub::builder().config(config).build();
    patterns
        .subscribe_user(
            "alice",
            UserPreferences {
                symbols: vec!["AAPL".into()],
                ..UserPreferences::daily()
            },
        )
        .unwrap();
    patterns
        .subscribe_user("bob", UserPreferences::high_confidence())
        .unwrap();
    let addr = serve(&patterns).await;
    let (mut alice, subs) = connect(addr, "alice").await;
    assert_eq!(subs, ["tier-alerts", "tier-patterns"]);
    let (mut bob, _) = connect(addr, "bob").await;

    // Alice: daily AAPL at >= 0.6. Bob: anything at >= 0.8 and high+.
    patterns
        .publish_pattern(TierPatternEvent::new("Doji", "AAPL", Tier::Intraday, 0.95))
        .unwrap();
    patterns
        .publish_pattern(TierPatternEvent::new(
            "BreakoutBO",
            "AAPL",
            Tier::Daily,
            0.7,
        ))
        .unwrap();
    patterns
        .publish_alert(PatternAlertEvent::new(
            "alice",
            TierPatternEvent::new("BreakoutBO", "AAPL", Tier::Daily, 0.9),
            "breakout confirmed",
        ))
        .unwrap();

    // In offset order: the critical alert takes the pattern before it
    // along.
    let two = next_n_events(&mut alice, 2).await;
    let [pattern, alert] = [two[0].clone(), two[1].clone()];
    assert_eq!(pattern["subs"], json!([PATTERN_SUBSCRIPTION]));
    assert_eq!(pattern["data"]["tier"], "daily");
    assert!(pattern["data"]["market_session"].is_string());
    assert_eq!(alert["event_type"], "pattern_alert");
    assert_eq!(alert["priority"], "critical");
    assert_eq!(alert["data"]["message"], "breakout confirmed");

    let only = next_event(&mut bob).await;
    assert_eq!(
        only["data"]["pattern"], "Doji",
        "bob's first is the 0.95 one"
    );
    // Bob never sees Alice's alert: the next thing he gets is the next
    // high-confidence pattern.
    patterns
        .publish_pattern(TierPatternEvent::new("GapUp", "MSFT", Tier::Combo, 0.85))
        .unwrap();
    assert_eq!(next_event(&mut bob).await["data"]["pattern"], "GapUp");
    assert_eq!(patterns.stats().alerts, 1);
}

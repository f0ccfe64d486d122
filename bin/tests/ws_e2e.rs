//! The whole server end to end: the fixtures published through
//! `POST /api/publish` reach WebSocket clients with different filters and
//! users, each exactly the events an independent reading of the filter
//! rules says, once, in order within each priority, with the right `subs`.

mod common;
#[path = "../../core/tests/common/oracle.rs"]
mod oracle;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::TestServer;
use tickcast_testkit::ws::next_json;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SECRET: &str = "e2e-secret";

fn token(user: &str) -> String {
    tickcast_testkit::jwt::user_token(SECRET.as_bytes(), user)
}

struct Client {
    user: String,
    subs: Vec<(&'static str, Value)>,
    ws: Ws,
}

async fn client(
    addr: std::net::SocketAddr,
    user: &str,
    subs: Vec<(&'static str, Value)>,
) -> Client {
    let url = format!("ws://{addr}/ws?token={}", token(user));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connects");
    assert_eq!(next_json(&mut ws).await["user"], user);
    for (id, filter) in &subs {
        let op = json!({"op":"subscribe","id":id,"filter":filter});
        ws.send(Message::text(op.to_string())).await.unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    }
    Client {
        user: user.to_owned(),
        subs,
        ws,
    }
}

/// Events of a frame (`event` or `batch`) as (offset, priority, subs).
fn events_of(frame: &Value) -> Vec<(String, String, Vec<String>)> {
    let one = |e: &Value| {
        let subs = e["subs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        (
            e["offset"].as_str().unwrap().to_owned(),
            e["priority"].as_str().unwrap().to_owned(),
            subs,
        )
    };
    match frame["type"].as_str() {
        Some("event") => vec![one(frame)],
        Some("batch") => frame["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(one)
            .collect(),
        other => panic!("unexpected frame {other:?}: {frame}"),
    }
}

fn offset_key(offset: &str) -> (u64, u64) {
    let (a, b) = offset.split_once('-').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_through_the_http_api_reach_exactly_the_matching_clients() {
    let mut config = common::test_config();
    config.delivery.rate_limit_per_user = 0;
    config.delivery.queue_capacity = 10_000;
    config.auth.jwt_secret = Some(SECRET.to_owned());
    // With auth on, publishing needs a credential or an explicit choice.
    config.api.allow_anonymous_publish = true;
    let server = TestServer::start(config).await;
    let addr = server.addr();
    let specs: Vec<(&str, Vec<(&'static str, Value)>)> = vec![
        (
            "user-4",
            vec![
                ("a", json!({"symbols":["aapl","MSFT"]})),
                ("b", json!({"tiers":["daily"],"min_confidence":0.8})),
            ],
        ),
        (
            "watcher",
            vec![(
                "c",
                json!({"event_types":["system_health","backtest_progress","backtest_result"]}),
            )],
        ),
        (
            "user-40",
            vec![
                (
                    "d",
                    json!({"patterns":["BreakoutBO"],"market_regimes":["bull"]}),
                ),
                ("e", json!({"min_priority":"high"})),
            ],
        ),
        ("everything", vec![("f", json!({}))]),
        (
            "user-4",
            vec![(
                "g",
                json!({"tiers":["intraday"],"symbols":["MSFT","NVDA"],"min_priority":"medium"}),
            )],
        ),
    ];
    let mut clients = Vec::new();
    for (user, subs) in specs {
        clients.push(client(addr, user, subs).await);
    }

    // Publish runs of same-channel events as arrays, so the channel gives
    // the event type as TickStockPL's does.
    let fixtures = tickcast_testkit::good_events();
    let mut expected: Vec<BTreeMap<String, Vec<String>>> = vec![BTreeMap::new(); clients.len()];
    let mut start = 0;
    while start < fixtures.len() {
        let channel = fixtures[start].channel.clone();
        let mut end = start;
        while end < fixtures.len() && fixtures[end].channel == channel && end - start < 500 {
            end += 1;
        }
        let items: Vec<&[u8]> = fixtures[start..end]
            .iter()
            .map(|f| f.raw.as_slice())
            .collect();
        let body = format!(
            "[{}]",
            items
                .iter()
                .map(|b| String::from_utf8_lossy(b))
                .collect::<Vec<_>>()
                .join(",")
        );
        let answer = server
            .post(&format!("/api/publish?channel={channel}"), body)
            .await;
        assert_eq!(answer.status, 202, "{}", answer.text());
        let offsets = answer.json()["offsets"].as_array().unwrap().clone();
        for (fixture, offset) in fixtures[start..end].iter().zip(offsets) {
            let d = oracle::dims(&fixture.body, &fixture.channel);
            for (i, c) in clients.iter().enumerate() {
                let private_ok = d.user.is_none() || d.user.as_deref() == Some(c.user.as_str());
                let subs: Vec<String> = c
                    .subs
                    .iter()
                    .filter(|(_, f)| oracle::wants(f, &d))
                    .map(|(id, _)| id.to_string())
                    .collect();
                if private_ok && !subs.is_empty() {
                    expected[i].insert(offset.as_str().unwrap().to_owned(), subs);
                }
            }
        }
        start = end;
    }

    for (i, c) in clients.iter_mut().enumerate() {
        let want = &expected[i];
        assert!(!want.is_empty(), "client {i} expects something");
        let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut last_by_priority: HashMap<String, (u64, u64)> = HashMap::new();
        while got.len() < want.len() {
            for (offset, priority, subs) in events_of(&next_json(&mut c.ws).await) {
                let key = offset_key(&offset);
                if let Some(prev) = last_by_priority.insert(priority.clone(), key) {
                    assert!(prev < key, "client {i}: {priority} events out of order");
                }
                assert!(
                    got.insert(offset.clone(), subs).is_none(),
                    "client {i}: {offset} twice"
                );
            }
        }
        assert_eq!(&got, want, "client {i} ({})", c.user);
        // And nothing more.
        let extra = tokio::time::timeout(Duration::from_millis(300), c.ws.next()).await;
        assert!(
            extra.is_err(),
            "client {i}: unexpected extra frame {extra:?}"
        );
    }
    let stats = server.stats().await;
    assert_eq!(stats["published"], 5000);
    server.stop().await;
}

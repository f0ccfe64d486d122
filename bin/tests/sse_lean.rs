//! `GET /sse` as the first request of a connection is served outside hyper
//! (the lean path): through real sockets against the real server, its
//! head is read under the same limits, deadline and pending-connection
//! bounds as any request, every refusal is the JSON error the filter gives,
//! bytes after the head do not disturb the stream, and everything else
//! still reaches hyper.

mod common;

use std::time::Duration;

use common::{raw_exchange, raw_json, request, test_config, TestServer, STEP};
use serde_json::{json, Value};
use tickcast::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "lean-sse-secret";
const AAPL: &str = r#"{"pattern":"Doji","symbol":"AAPL","confidence":0.7,"tier":"daily"}"#;

fn auth_config() -> Config {
    let mut config = test_config();
    config.auth.jwt_secret = Some(SECRET.to_owned());
    config.api.allow_anonymous_publish = true;
    config
}

fn token(expires_in_s: u64) -> String {
    let exp = tickcast_testkit::jwt::now_s() + expires_in_s;
    tickcast_testkit::jwt::hs256(SECRET.as_bytes(), &json!({"sub": "u1", "exp": exp}))
}

/// Reads from `stream` until `needle` has been read (fails after
/// [`STEP`]); returns everything read.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    tokio::time::timeout(STEP, async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(
                n > 0,
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in {}", String::from_utf8_lossy(&seen)));
    String::from_utf8_lossy(&seen).into_owned()
}

/// Reads until the server closes `stream`; returns what it read.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    tokio::time::timeout(STEP, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection");
    String::from_utf8_lossy(&seen).into_owned()
}

/// A stream whose token expires within two seconds, read to its end (the
/// `close` event and the last chunk), on `stream` where `request` was
/// written after whatever came before.
async fn stream_until_expiry(stream: &mut TcpStream, request: &str) {
    stream.write_all(request.as_bytes()).await.unwrap();
    let seen = read_until(stream, "\r\n0\r\n\r\n").await;
    assert!(
        seen.contains("event: close\ndata: {\"code\":4002"),
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_request_for_sse_is_not_served_by_hyper() {
    let server = TestServer::start(auth_config()).await;
    let addr = server.addr();
    let sse = format!("GET /sse?token={} HTTP/1.1\r\nhost: t\r\n\r\n", token(1));
    let health = "GET /health HTTP/1.1\r\nhost: t\r\n\r\n";

    // Behind a first request, /sse is hyper's (the filter): once its stream
    // ends, hyper keeps the connection and answers the next request.
    let mut through_hyper = TcpStream::connect(addr).await.unwrap();
    through_hyper.write_all(health.as_bytes()).await.unwrap();
    read_until(&mut through_hyper, "\"status\":\"ok\"").await;
    stream_until_expiry(&mut through_hyper, &sse).await;
    through_hyper.write_all(health.as_bytes()).await.unwrap();
    read_until(&mut through_hyper, "\"status\":\"ok\"").await;

    // As the first request it is the lean path's: the connection closes
    // with the stream, and the next request is never answered.
    let mut lean = TcpStream::connect(addr).await.unwrap();
    stream_until_expiry(&mut lean, &sse).await;
    let _ = lean.write_all(health.as_bytes()).await;
    let after = read_to_close(&mut lean).await;
    assert!(after.is_empty(), "{after}");
    server.stop().await;
}

#[tokio::test]
async fn unreadable_sse_heads_get_the_same_answers_as_any_other() {
    let server = TestServer::start(test_config()).await;
    let addr = server.addr();
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    let heads = [
        (
            format!("?{} HTTP/1.1\r\nhost: t\r\n\r\n", "a".repeat(70_000)),
            "uri_too_long",
        ),
        (
            format!(" HTTP/1.1\r\nhost: t\r\n{many}\r\n"),
            "headers_too_large",
        ),
        (
            format!(
                " HTTP/1.1\r\nhost: t\r\nx-big: {}\r\n\r\n",
                "b".repeat(600_000)
            ),
            "headers_too_large",
        ),
        (" HTTP/2.0\r\nhost: t\r\n\r\n".to_owned(), "bad_request"),
        (
            " HTTP/1.1\r\nno colon here\r\n\r\n".to_owned(),
            "bad_request",
        ),
    ];
    for (rest, code) in heads {
        let lean = raw_exchange(addr, format!("GET /sse{rest}").as_bytes()).await;
        let hyper = raw_exchange(addr, format!("GET /health{rest}").as_bytes()).await;
        assert_eq!(raw_json(&lean)["error"], code, "{lean:.300}");
        assert_eq!(lean, hyper);
    }
    assert_eq!(server.stats().await["connections"], 0);
    server.stop().await;
}

#[tokio::test]
async fn a_slow_sse_head_is_closed_at_the_header_deadline() {
    let mut config = test_config();
    config.http.header_timeout_ms = 300;
    let server = TestServer::start(config).await;
    let mut slow = TcpStream::connect(server.addr()).await.unwrap();
    slow.write_all(b"GET /sse?symbols=AAPL HTTP/1.1\r\nhost: t\r\n")
        .await
        .unwrap();
    let mut trickling = TcpStream::connect(server.addr()).await.unwrap();
    trickling.write_all(b"GET /ss").await.unwrap();
    assert_eq!(read_to_close(&mut slow).await, "");
    assert_eq!(read_to_close(&mut trickling).await, "");
    assert_eq!(server.stats().await["connections"], 0);
    server.stop().await;
}

#[tokio::test]
async fn sse_heads_take_their_place_among_the_waiting_connections() {
    let mut config = test_config();
    config.http.max_pending_connections = Some(2);
    // Long enough that only eviction can close them here.
    config.http.header_timeout_ms = 600_000;
    let server = TestServer::start(config).await;
    let addr = server.addr();
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let mut partial = TcpStream::connect(addr).await.unwrap();
        partial
            .write_all(b"GET /sse HTTP/1.1\r\nhost: t\r\n")
            .await
            .unwrap();
        waiting.push(partial);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Only a connection that has waited past the eviction age may go.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _newcomer = TcpStream::connect(addr).await.unwrap();
    let mut first = waiting.remove(0);
    assert_eq!(read_to_close(&mut first).await, "");
    // A whole head is served at once, however full the queue.
    let answer = raw_exchange(
        addr,
        b"GET /sse?bogus=1 HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    server.stop().await;
}

#[tokio::test]
async fn every_refusal_is_its_status_and_json_error() {
    let mut config = auth_config();
    config.http.allowed_origins = vec!["https://app.example".to_owned()];
    config.limits.max_connections_per_user = 1;
    let server = TestServer::start(config).await;
    let addr = server.addr();
    let good = token(600);
    let get = |path: String, headers: Vec<(&'static str, String)>| async move {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        request(addr, "GET", &path, &headers, Vec::new()).await
    };
    // Path, headers, status, error code.
    type Case = (String, Vec<(&'static str, String)>, u16, &'static str);
    let cases: Vec<Case> = vec![
        (
            format!("/sse?bogus=1&token={good}"),
            vec![],
            400,
            "bad_request",
        ),
        (
            format!("/sse?token={good}"),
            vec![("last-event-id", "yesterday".to_owned())],
            400,
            "bad_request",
        ),
        ("/sse".to_owned(), vec![], 401, "unauthorized"),
        ("/sse?token=garbage".to_owned(), vec![], 401, "unauthorized"),
        (
            format!("/sse?token={good}"),
            vec![("origin", "https://evil.example".to_owned())],
            403,
            "forbidden",
        ),
    ];
    for (path, headers, status, code) in cases {
        let answer = get(path.clone(), headers).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.text());
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let body: Value = answer.json();
        assert_eq!(body["error"], code, "{path}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        if status == 401 {
            assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        }
    }
    // The user's one connection is taken: 429.
    let mut first = TcpStream::connect(addr).await.unwrap();
    let open = format!("GET /sse?token={good} HTTP/1.1\r\nhost: t\r\n\r\n");
    first.write_all(open.as_bytes()).await.unwrap();
    read_until(&mut first, "event: subscribed").await;
    let answer = get(format!("/sse?token={good}"), vec![]).await;
    assert_eq!(answer.status, 429, "{}", answer.text());
    assert_eq!(answer.json()["error"], "limit_exceeded");

    drop(first);

    // While the server drains, new streams get 503 (a hub connection of
    // the test's own keeps the drain going).
    let hub = server.server.hub().clone();
    let held = hub.connect(None, hub.default_limits()).expect("connect");
    let stop = tokio::spawn(server.stop());
    tokio::time::timeout(STEP, async {
        while !hub.is_shut_down() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("shutdown starts");
    // Auth comes before the hub: a token is needed to see the 503.
    let answer = get("/sse".to_owned(), vec![]).await;
    assert_eq!(answer.status, 401);
    let answer = get(format!("/sse?token={good}"), vec![]).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert_eq!(answer.json()["error"], "shutting_down");
    drop(held);
    tokio::time::timeout(STEP, stop).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_bytes_after_the_head_do_not_disturb_the_stream() {
    let mut config = test_config();
    config.api.allow_anonymous_publish = true;
    let server = TestServer::start(config).await;
    let addr = server.addr();
    let mut sse = TcpStream::connect(addr).await.unwrap();
    sse.write_all(
        b"GET /sse?symbols=AAPL HTTP/1.1\r\nhost: t\r\n\r\nGET /health HTTP/1.1\r\nhost: t\r\n\r\n",
    )
    .await
    .unwrap();
    read_until(&mut sse, "event: subscribed").await;
    sse.write_all(b"GET /api/stats HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let answer = request(addr, "POST", "/api/publish", &[], AAPL.into()).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let seen = read_until(&mut sse, "event: pattern_detected").await;
    assert!(!seen.contains("HTTP/1.1 200"), "{seen}");
    assert!(!seen.contains("\"status\":\"ok\""), "{seen}");

    // An error on a keep-alive connection: hyper answers what follows.
    let answer = raw_exchange(
        addr,
        b"GET /sse?bogus=1 HTTP/1.1\r\nhost: t\r\n\r\nGET /health HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
    )
    .await;
    let (first, second) = answer.split_once("HTTP/1.1 200 OK").expect(&answer);
    assert!(first.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{first}");
    assert!(first.contains("unknown query parameter"), "{first}");
    assert!(second.contains("\"status\":\"ok\""), "{second}");
    server.stop().await;
}

#[tokio::test]
async fn other_first_requests_still_reach_hyper() {
    let server = TestServer::start(test_config()).await;
    let addr = server.addr();
    // /sse/ and an absolute URI are hyper's: the filter answers them.
    for target in ["/sse/?bogus=1", "http://t/sse?bogus=1"] {
        let head = format!("GET {target} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n");
        let answer = raw_exchange(addr, head.as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(raw_json(&answer)["message"]
            .as_str()
            .unwrap()
            .contains("unknown query parameter"));
    }
    // HTTP/2 with prior knowledge: hyper's SETTINGS frame answers the
    // preface.
    let mut h2 = TcpStream::connect(addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut frame = [0u8; 9];
    tokio::time::timeout(STEP, h2.read_exact(&mut frame))
        .await
        .expect("an answer in time")
        .unwrap();
    assert_eq!(frame[3], 0x04, "a SETTINGS frame: {frame:?}");
    assert_eq!(server.get("/health").await.status, 200);
    server.stop().await;
}

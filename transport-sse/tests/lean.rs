//! What only the lean path does, through real sockets: reading the request
//! head itself (limits, deadline, bad heads), answering with the filter's
//! exact status lines and headers, owning the socket (bytes after the head,
//! the write deadline, the end of the stream), HTTP/1.0 and keep-alive.
//! The behaviour both paths share is tested both ways in `sse.rs`.

mod client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tickcast_core::auth::{AllowedOrigins, Authenticator};
use tickcast_core::model::Event;
use tickcast_core::{Hub, HubConfig};
use tickcast_transport_sse::{sse_route, FirstBytes, LeanSse, Served, SseConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use client::{lean_server, send_raw, PATIENCE};

const SECRET: &[u8] = b"lean-test-secret";
const AAPL: &str = r#"{"symbol":"AAPL","pattern":"Doji","tier":"daily","confidence":0.8}"#;

fn hub() -> Hub {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    Hub::new(config)
}

fn event(body: &str) -> Event {
    Event::from_json(Bytes::copy_from_slice(body.as_bytes()), None, 1 << 20).unwrap()
}

async fn lean(hub: &Hub, config: SseConfig) -> SocketAddr {
    lean_server(LeanSse::new(hub.clone(), config)).await
}

/// Writes `request` on a new connection and reads until the server closes
/// it: the whole answer, as text.
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Splits a whole answer into its head (with the `date` value blanked) and
/// its body.
fn split_answer(answer: &str) -> (String, &str) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let head = head
        .lines()
        .map(|l| match l.strip_prefix("date: ") {
            Some(_) => "date: <now>",
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    (head, body)
}

/// Reads one answer head from `stream`, up to the blank line.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
    })
    .await
    .expect("a head in time");
    String::from_utf8(head).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_the_filters_byte_for_byte_but_the_date() {
    let mut config = SseConfig::default()
        .with_allowed_origins(AllowedOrigins::parse(["https://app.example"]).unwrap());
    config.session.auth = Some(Arc::new(Authenticator::hs256(SECRET)));
    let claims = json!({"sub": "u1", "exp": u64::MAX >> 2});
    let token = tickcast_testkit::jwt::hs256(SECRET, &claims);

    let filter_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let filter = filter_listener.local_addr().unwrap();
    let route = sse_route(hub(), config.clone());
    tokio::spawn(warp::serve(route).incoming(filter_listener).run());
    let lean = lean(&hub(), config).await;

    let streams = [
        format!("GET /sse?symbols=AAPL&token={token} HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n\r\n"),
        format!("GET /sse?token={token} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        format!("GET /sse?token={token} HTTP/1.0\r\nHost: t\r\n\r\n"),
    ];
    for request in &streams {
        let mut by_filter = TcpStream::connect(filter).await.unwrap();
        let mut by_lean = TcpStream::connect(lean).await.unwrap();
        by_filter.write_all(request.as_bytes()).await.unwrap();
        by_lean.write_all(request.as_bytes()).await.unwrap();
        let (expected, _) = split_answer(&read_head(&mut by_filter).await);
        let (head, _) = split_answer(&read_head(&mut by_lean).await);
        assert!(head.contains(" 200 OK"), "{head}");
        assert_eq!(head, expected, "{request}");
    }
    let refusals = [
        "GET /sse HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\nConnection: close\r\n\r\n",
        "GET /sse HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\nConnection: close\r\n\r\n",
        "GET /sse?bogus=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "GET /sse?symbols=%FF HTTP/1.0\r\nHost: t\r\n\r\n",
    ];
    for request in refusals {
        let expected = exchange(filter, request.as_bytes()).await;
        let answer = exchange(lean, request.as_bytes()).await;
        assert_eq!(split_answer(&answer), split_answer(&expected), "{request}");
        let body: Value = serde_json::from_str(split_answer(&answer).1).unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn heads_over_the_limits_or_unparsable_get_json_errors_and_a_close() {
    let hub = hub();
    let addr = lean(&hub, SseConfig::default()).await;
    let long_uri = format!(
        "GET /sse?{} HTTP/1.1\r\nHost: t\r\n\r\n",
        "a".repeat(70_000)
    );
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    let many_headers = format!("GET /sse HTTP/1.1\r\nHost: t\r\n{many}\r\n");
    let huge_header = format!(
        "GET /sse HTTP/1.1\r\nHost: t\r\nx-big: {}\r\n\r\n",
        "b".repeat(600_000)
    );
    let cases = [
        (long_uri.into_bytes(), 414),
        (many_headers.into_bytes(), 431),
        (huge_header.into_bytes(), 431),
        (b"GET /sse HTTP/2.0\r\nHost: t\r\n\r\n".to_vec(), 400),
        (b"GET /sse HTTP/1.1\r\nno colon\r\n\r\n".to_vec(), 400),
        (b"GET /sse?a b HTTP/1.1\r\n\r\n".to_vec(), 400),
    ];
    for (request, status) in cases {
        let answer = exchange(addr, &request).await;
        let (head, body) = split_answer(&answer);
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{status}: {head:.200}"
        );
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: application/json\r\n"),
            "{head}"
        );
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"], "bad_request", "{body}");
    }
    assert_eq!(hub.connection_count(), 0);
}

#[tokio::test]
async fn a_head_that_does_not_arrive_in_time_is_closed_without_an_answer() {
    let hub = hub();
    let lean = LeanSse::new(hub.clone(), SseConfig::default())
        .with_head_timeout(Duration::from_millis(300));
    let addr = lean_server(lean).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /sse?symbols=AAPL HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(PATIENCE, slow.read_to_end(&mut seen))
        .await
        .expect("closed at the deadline")
        .unwrap();
    assert!(seen.is_empty(), "{}", String::from_utf8_lossy(&seen));
    assert_eq!(hub.connection_count(), 0);
    // One that finishes its head in time is served.
    let mut sse = send_raw(addr, b"GET /sse HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(sse.status, 200);
    sse.expect("welcome").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_after_the_head_are_dropped_and_do_not_disturb_the_stream() {
    let hub = hub();
    let addr = lean(&hub, SseConfig::default()).await;
    // A keep-alive client pipelining its next request with the first.
    let mut sse = send_raw(
        addr,
        b"GET /sse?symbols=AAPL HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.header("transfer-encoding"), Some("chunked"));
    sse.expect("welcome").await;
    sse.expect("subscribed").await;
    sse.socket()
        .write_all(b"GET /other HTTP/1.1\r\n\r\n\x00\x01garbage")
        .await
        .unwrap();
    for _ in 0..3 {
        let offset = hub.publish(event(AAPL)).unwrap();
        let block = sse.expect("pattern_detected").await;
        assert_eq!(block.id, Some(offset.to_string()));
    }
    assert_eq!(hub.connection_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_sending_is_closed_past_the_bound() {
    let hub = hub();
    let addr = lean(&hub, SseConfig::default()).await;
    let mut sse = send_raw(addr, b"GET /sse HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(sse.status, 200);
    sse.expect("welcome").await;
    // 64 KiB may follow the head; this is more.
    let flood = vec![b'x'; 80 * 1024];
    let _ = sse.socket().write_all(&flood).await;
    sse.until_closed().await;
    tokio::time::timeout(PATIENCE, async {
        while hub.connection_count() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the hub connection is released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_freed_within_the_write_deadline() {
    let hub = hub();
    let mut config = SseConfig::default();
    config.session.write_timeout = Duration::from_millis(300);
    let addr = lean(&hub, config).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let mut client = socket.connect(addr).await.unwrap();
    client
        .write_all(b"GET /sse HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let pad = "x".repeat(16 * 1024);
    let big = format!(r#"{{"symbol":"AAPL","pattern":"Doji","pad":"{pad}"}}"#);
    tokio::time::timeout(PATIENCE, async {
        while hub.stats().subscriptions == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while hub.connection_count() > 0 {
            for _ in 0..20 {
                hub.publish(event(&big)).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a client that never reads is let go");
    assert_eq!(hub.stats().delivery.write_timeouts, 1);
    // The socket is closed too: what the kernel holds, then the end.
    let drained = tokio::time::timeout(PATIENCE, async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the server kept the socket open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_closes_when_the_stream_ends() {
    let hub = hub();
    let addr = lean(&hub, SseConfig::default()).await;
    let mut sse = send_raw(addr, b"GET /sse HTTP/1.1\r\nHost: t\r\n\r\n").await;
    sse.expect("welcome").await;
    sse.expect("subscribed").await;
    hub.shutdown();
    assert_eq!(sse.expect("close").await.json()["code"], 1001);
    assert!(sse.block().await.is_none(), "the last chunk");
    // hyper would keep the connection for another request; the lean path
    // closes it.
    let _ = sse
        .socket()
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    assert!(sse.until_closed().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http10_stream_ends_with_the_connection() {
    let hub = hub();
    let addr = lean(&hub, SseConfig::default()).await;
    let sse = send_raw(addr, b"GET /sse?symbols=AAPL HTTP/1.0\r\n\r\n").await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.header("transfer-encoding"), None);
    assert_eq!(sse.header("content-length"), None);
    tokio::time::timeout(PATIENCE, async {
        while hub.stats().subscriptions == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let offset = hub.publish(event(AAPL)).unwrap();
    hub.shutdown();
    let body = String::from_utf8(sse.until_closed().await).unwrap();
    assert!(body.starts_with("event: welcome\n"), "{body}");
    assert!(body.contains(&format!("id: {offset}\nevent: pattern_detected\n")));
    let (_, last) = body.trim_end().rsplit_once("\n\n").unwrap();
    assert!(
        last.starts_with("event: close\ndata: {\"code\":1001,"),
        "{body}"
    );
}

/// Accepts one connection on `listener` and serves it with `lean`.
async fn serve_one(listener: &TcpListener, lean: &LeanSse) -> Served<TcpStream> {
    let (mut socket, _) = listener.accept().await.unwrap();
    let first = FirstBytes::read(&mut socket).await.unwrap();
    assert!(first.is_sse());
    let head = lean.read_head(&mut socket, &first).await.unwrap();
    lean.serve(socket, head).await
}

#[tokio::test]
async fn an_error_on_a_keep_alive_connection_hands_it_back_with_what_followed() {
    let lean = LeanSse::new(hub(), SseConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let next = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n";

    let mut client = TcpStream::connect(addr).await.unwrap();
    let mut request = b"GET /sse?bogus=1 HTTP/1.1\r\nHost: t\r\n\r\n".to_vec();
    request.extend_from_slice(next);
    client.write_all(&request).await.unwrap();
    match serve_one(&listener, &lean).await {
        Served::KeepAlive { leftover, .. } => assert_eq!(&leftover[..], next),
        Served::Closed => panic!("closed a keep-alive connection"),
    }
    let head = read_head(&mut client).await;
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert!(!head.contains("connection:"), "{head}");

    // Asked to close, or with a body to skip: answered, then closed.
    for request in [
        &b"GET /sse?bogus=1 HTTP/1.1\r\nConnection: close\r\n\r\n"[..],
        b"GET /sse?bogus=1 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
        b"GET /sse?bogus=1 HTTP/1.0\r\n\r\n",
    ] {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(request).await.unwrap();
        assert!(matches!(serve_one(&listener, &lean).await, Served::Closed));
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.contains(" 400 Bad Request\r\n"), "{answer}");
    }
    // HTTP/1.0 asking for keep-alive is kept, and told so.
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET /sse?bogus=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    assert!(matches!(
        serve_one(&listener, &lean).await,
        Served::KeepAlive { .. }
    ));
    let head = read_head(&mut client).await;
    assert!(head.starts_with("HTTP/1.0 400 Bad Request\r\n"), "{head}");
    assert!(head.contains("\r\nconnection: keep-alive\r\n"), "{head}");
}

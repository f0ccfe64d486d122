//! Clients that stop reading, through real sockets: whatever the socket
//! does, the write deadline (`http.write_timeout_ms`) lets them go, with
//! their hub connection, queue and file descriptor.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{request, test_config, TestServer, STEP};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A server that gives up on a socket after 300 ms without progress.
async fn server() -> TestServer {
    let mut config = test_config();
    config.http.write_timeout_ms = 300;
    TestServer::start(config).await
}

/// A connection with a tiny receive buffer, as a client that never reads
/// would look: the server's writes stall after a few kilobytes.
async fn tiny_window(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    socket.connect(addr).await.unwrap()
}

/// A masked client text frame (mask key zero: the payload as is).
fn client_text(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![0x81, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

/// Publishes 16 KB events until the server holds no connection; fails
/// after [`STEP`] (the write deadline never fired).
async fn publish_until_released(server: &TestServer) {
    let pad = "x".repeat(16 * 1024);
    let event = format!(
        r#"{{"pattern":"Doji","symbol":"AAPL","confidence":0.7,"tier":"daily","pad":"{pad}"}}"#
    );
    let body = format!("[{}]", vec![event; 50].join(","));
    let released = tokio::time::timeout(STEP, async {
        loop {
            let answer = request(
                server.addr(),
                "POST",
                "/api/publish",
                &[],
                body.clone().into(),
            )
            .await;
            assert_eq!(answer.status, 202, "{}", answer.text());
            if server.stats().await["connections"] == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        released.is_ok(),
        "a client that never reads is still connected"
    );
}

/// Reads what the kernel still holds for `stream`, then end of file (or a
/// reset): the server closed its side.
async fn assert_closed(mut stream: TcpStream) {
    let closed = tokio::time::timeout(STEP, async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept the socket open");
}

/// Once `client` is subscribed, publishes until the server drops it, and
/// checks that the write deadline did.
async fn flood_until_dropped(server: TestServer, client: TcpStream) {
    tokio::time::timeout(STEP, async {
        while server.stats().await["subscriptions"] != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the client subscribes");

    publish_until_released(&server).await;
    assert_closed(client).await;
    assert_eq!(server.stats().await["delivery"]["write_timeouts"], 1);
    server.stop().await;
}

#[tokio::test]
async fn a_websocket_client_that_never_reads_is_dropped_at_the_write_deadline() {
    let server = server().await;
    let mut ws = tiny_window(server.addr()).await;
    let head = "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    ws.write_all(head.as_bytes()).await.unwrap();
    ws.write_all(&client_text(br#"{"op":"subscribe","id":"s1","filter":{}}"#))
        .await
        .unwrap();
    flood_until_dropped(server, ws).await;
}

#[tokio::test]
async fn an_sse_client_that_never_reads_is_dropped_at_the_write_deadline() {
    let server = server().await;
    let mut sse = tiny_window(server.addr()).await;
    sse.write_all(b"GET /sse HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    flood_until_dropped(server, sse).await;
}

use std::io::Cursor;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket};

use super::*;
use crate::floor::handshake::read_upgrade_async;
use crate::floor::wire::text_frame;

/// A server frame of `opcode` (unmasked), final or not.
fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = text_frame(payload);
    frame[0] = if fin { 0x80 } else { 0 } | opcode;
    frame
}

/// A client frame as the server reads it: opcode and unmasked payload.
async fn read_client_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(head[1] & 0x80, 0x80, "client frames are masked");
    let len = usize::from(head[1] & 0x7F);
    assert!(len < 126, "short frames only here");
    let mut mask = [0u8; 4];
    stream.read_exact(&mut mask).await.unwrap();
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.unwrap();
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    (head[0] & 0x0F, payload)
}

/// A listener whose one connection gets the floor's upgrade answer, then
/// is handed to `serve`; and a client connected to it.
async fn pair<F, Fut>(serve: F) -> (WsClient, tokio::task::JoinHandle<()>)
where
    F: FnOnce(TcpStream, Vec<u8>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let upgrade = read_upgrade_async(&mut stream).await.unwrap();
        serve(stream, upgrade.response).await;
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let client = WsClient::connect(stream, &addr.to_string(), "/floor?conn=7", "p.v1", 64)
        .await
        .unwrap();
    (client, server)
}

/// Every text until the connection ends, and why it ended.
async fn read_all(client: &mut WsClient) -> (Vec<String>, String) {
    let mut texts = Vec::new();
    loop {
        if let Err(reason) = client.drain(|t| {
            texts.push(t.to_owned());
            true
        }) {
            return (texts, reason);
        }
        if let Err(reason) = client.fill().await {
            return (texts, reason);
        }
    }
}

#[tokio::test]
async fn frames_in_pieces_fragments_pings_and_the_close_reason() {
    let big = "b".repeat(70_000);
    let sent = big.clone();
    let (mut client, server) = pair(move |mut stream, answer| async move {
        // The first frame in the same write as the answer.
        let mut first = answer;
        first.extend_from_slice(&text_frame(b"hello"));
        stream.write_all(&first).await.unwrap();
        let mut rest = text_frame(b"one");
        rest.extend_from_slice(&text_frame(sent.as_bytes()));
        rest.extend_from_slice(&server_frame(true, OP_PING, b"p"));
        rest.extend_from_slice(&server_frame(false, OP_TEXT, "fr\u{e9}".as_bytes()));
        rest.extend_from_slice(&server_frame(true, OP_PONG, b""));
        rest.extend_from_slice(&server_frame(true, OP_CONTINUATION, b"ag"));
        rest.extend_from_slice(&server_frame(true, OP_BINARY, b"\xff\x00"));
        rest.extend_from_slice(&text_frame(b"two"));
        // Awkward boundaries: inside headers, lengths and payloads.
        for chunk in rest.chunks(7_001) {
            stream.write_all(chunk).await.unwrap();
            tokio::task::yield_now().await;
        }
        let (opcode, payload) = read_client_frame(&mut stream).await;
        assert_eq!((opcode, payload.as_slice()), (OP_PONG, &b"p"[..]));
        let mut close = vec![0x03, 0xE9];
        close.extend_from_slice(b"bye");
        stream
            .write_all(&server_frame(true, OP_CLOSE, &close))
            .await
            .unwrap();
    })
    .await;
    let (texts, reason) = read_all(&mut client).await;
    assert_eq!(texts, ["hello", "one", big.as_str(), "fr\u{e9}ag", "two"]);
    assert_eq!(reason, "closed by the server: 1001 bye");
    // The busy connection's buffer grew; once closed it stays closed.
    assert!(client.buf.capacity() > 70_000);
    assert_eq!(client.fill().await.unwrap_err(), reason);
    server.await.unwrap();
}

#[tokio::test]
async fn many_small_writes_all_arrive_and_an_early_stop_keeps_the_rest() {
    let (mut client, server) = pair(|mut stream, answer| async move {
        stream.write_all(&answer).await.unwrap();
        for i in 0..2_000u32 {
            let text = format!("n{i}");
            stream
                .write_all(&text_frame(text.as_bytes()))
                .await
                .unwrap();
        }
    })
    .await;
    let first = client.next_text().await.unwrap();
    assert_eq!(first, "n0");
    let (texts, reason) = read_all(&mut client).await;
    let expected: Vec<String> = (1..2_000).map(|i| format!("n{i}")).collect();
    assert_eq!(texts, expected);
    assert_eq!(reason, "connection closed");
    server.await.unwrap();
}

#[tokio::test]
async fn close_sends_a_close_frame_and_waits_for_the_answer() {
    let (mut client, server) = pair(|mut stream, answer| async move {
        stream.write_all(&answer).await.unwrap();
        let (opcode, payload) = read_client_frame(&mut stream).await;
        assert_eq!((opcode, payload.as_slice()), (OP_CLOSE, &[0x03, 0xE8][..]));
        stream
            .write_all(&server_frame(true, OP_CLOSE, &payload))
            .await
            .unwrap();
        // The client does not wait for the end of the stream.
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    })
    .await;
    client.close().await;
    drop(client);
    server.await.unwrap();
}

#[tokio::test]
async fn a_refused_upgrade_says_what_the_server_answered() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let _ = read_upgrade_async(&mut stream).await;
        let answer = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
        stream.write_all(answer.as_bytes()).await.unwrap();
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let error = WsClient::connect(stream, "h", "/floor?conn=1", "p", 1024)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        "handshake: HTTP error: HTTP/1.1 503 Service Unavailable"
    );
    server.await.unwrap();
}

#[test]
fn answers_must_accept_the_key_and_the_subprotocol() {
    let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: K\r\nSec-WebSocket-Protocol: p\r\n\r\n";
    assert_eq!(check_answer(ok.as_bytes(), "K", "p"), Ok(()));
    assert!(check_answer(ok.as_bytes(), "other", "p")
        .unwrap_err()
        .contains("Accept"));
    assert!(check_answer(ok.as_bytes(), "K", "q")
        .unwrap_err()
        .contains("subprotocol"));
    let no_upgrade = ok.replace("Upgrade: websocket\r\n", "");
    assert!(check_answer(no_upgrade.as_bytes(), "K", "p").is_err());
}

#[test]
fn headers_refuse_what_a_server_must_not_send() {
    assert_eq!(parse_header(&[]), Ok(None));
    assert_eq!(parse_header(&[0x81]), Ok(None));
    assert_eq!(parse_header(&[0x81, 126, 1]), Ok(None));
    assert_eq!(parse_header(&[0x81, 127, 0, 0, 0]), Ok(None));
    assert_eq!(
        parse_header(&[0x81, 126, 1, 0]),
        Ok(Some(Header {
            fin: true,
            opcode: OP_TEXT,
            len: 4,
            payload: 256
        }))
    );
    // Masked, reserved bits, a long or fragmented control frame, huge.
    assert!(parse_header(&[0x81, 0x85]).is_err());
    assert!(parse_header(&[0xC1, 5]).is_err());
    assert!(parse_header(&[0x89, 126, 0, 126]).is_err());
    assert!(parse_header(&[0x09, 0]).is_err());
    let huge = [0x81, 127, 0xFF, 0, 0, 0, 0, 0, 0, 0];
    assert!(parse_header(&huge).is_err());
}

/// The frames the client writes are what a WebSocket server reads.
#[test]
fn client_frames_read_back_on_a_server() {
    for len in [0, 5, 125, 126, 65_535, 65_536] {
        let text = "t".repeat(len);
        let mut frame = Vec::new();
        client_frame(&mut frame, OP_TEXT, text.as_bytes());
        let mut server = WebSocket::from_raw_socket(Cursor::new(frame), Role::Server, None);
        match server.read() {
            Ok(tokio_tungstenite::tungstenite::Message::Text(read)) => {
                assert_eq!(read.as_str(), text, "{len}")
            }
            other => panic!("{len}: {other:?}"),
        }
    }
}

//! Heap bytes per idle SSE stream on the lean path, counted by a global
//! allocator wrapper (an investigation aid: run with
//! `cargo run --release -p tickcast-transport-sse --example sse_heap_per_connection`).
//!
//! Opens 1,000 streams (`GET /sse?symbols=AAPL`) to a [`LeanSse`] accept
//! loop in this process, reads each to its `subscribed` event, and prints
//! the heap they hold, server and client side together, less what as many
//! bare socket pairs cost, and the hub's part alone.

use std::time::Duration;
use tickcast_testkit::heap::{self, Counting};

use tickcast_core::{Hub, HubConfig};
use tickcast_transport_sse::{FirstBytes, LeanSse, SseConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[tokio::main]
async fn main() {
    let n: isize = 1000;
    {
        let probe = Hub::new(HubConfig::immediate());
        let filter: tickcast_core::model::Filter =
            serde_json::from_str(r#"{"symbols":["AAPL"]}"#).unwrap();
        let mut conns = Vec::new();
        for _ in 0..10 {
            conns.push(probe.connect(None, probe.default_limits()).unwrap());
        }
        let before = heap::live();
        for _ in 0..n {
            let c = probe.connect(None, probe.default_limits()).unwrap();
            c.handle.subscribe("sse", filter.clone(), None).unwrap();
            conns.push(c);
        }
        for c in &mut conns {
            while c.frames.try_recv().is_some() {}
        }
        println!(
            "hub connection + subscription (drained): {} B",
            (heap::live() - before) / n
        );
    }

    let hub = Hub::new(HubConfig::immediate());
    let lean = LeanSse::new(hub.clone(), SseConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let lean = lean.clone();
            tokio::spawn(async move {
                let Ok(first) = FirstBytes::read(&mut socket).await else {
                    return;
                };
                lean.serve_connection(socket, &first).await;
            });
        }
    });

    let mut clients = Vec::new();
    // Warm up (first-use allocations of the runtime and the hub).
    for _ in 0..10 {
        clients.push(open(addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = heap::live();
    for _ in 0..n {
        clients.push(open(addr).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = heap::live();
    // The same number of bare socket pairs (accepted and held, nothing
    // served): what the sockets alone cost, client and server side.
    let bare = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare_addr = bare.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while held.len() < 1000 {
            held.push(bare.accept().await.unwrap().0);
        }
        held
    });
    let b0 = heap::live();
    let mut pairs = Vec::new();
    for _ in 0..n {
        pairs.push(TcpStream::connect(bare_addr).await.unwrap());
    }
    let held = held.await.unwrap();
    let b1 = heap::live();
    let per_stream = (after - before) / n;
    let per_pair = (b1 - b0) / n;
    println!(
        "heap per stream, client socket included: {per_stream} B; a bare socket pair: {per_pair} B; \
         so the stream's own: {} B ({} streams)",
        per_stream - per_pair,
        hub.connection_count()
    );
    drop((pairs, held));

    // The state of one connection's task (its future, allocated with the
    // task; the reader task is spawned by the session).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    client
        .write_all(b"GET /sse HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let lean = LeanSse::new(hub.clone(), SseConfig::default());
    let first = FirstBytes::read(&mut server).await.unwrap();
    let task = lean.serve_connection(server, &first);
    println!(
        "a lean connection task's future: {} B",
        std::mem::size_of_val(&task)
    );
}

/// Opens a stream and reads it up to `subscribed`; the client then stays
/// silent.
async fn open(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /sse?symbols=AAPL HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("event: subscribed") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "the stream ended");
        seen.extend_from_slice(&buf[..n]);
    }
    tcp
}

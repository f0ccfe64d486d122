//! Heap bytes per idle WebSocket connection on the lean path, counted by a
//! global allocator wrapper (an investigation aid: run with
//! `cargo run --release -p tickcast-transport-ws --example ws_heap_per_connection`).

use tickcast_testkit::heap::{self, Counting};

use tickcast_core::{Hub, HubConfig};
use tickcast_transport_ws::{ws_route, WsConfig};
use warp::Filter;

#[global_allocator]
static GLOBAL: Counting = Counting;

#[tokio::main]
async fn main() {
    let hub = Hub::new(HubConfig::immediate());
    {
        let probe = Hub::new(HubConfig::immediate());
        let mut conns = Vec::new();
        let filter: tickcast_core::model::Filter =
            serde_json::from_str(r#"{"symbols":["AAPL"]}"#).unwrap();
        for _ in 0..10 {
            conns.push(probe.connect(None, probe.default_limits()).unwrap());
        }
        let before = heap::live();
        for _ in 0..1000 {
            let c = probe.connect(None, probe.default_limits()).unwrap();
            c.handle.subscribe("s1", filter.clone(), None).unwrap();
            conns.push(c);
        }
        let after = heap::live();
        println!(
            "hub connection + subscription: {} B",
            (after - before) / 1000
        );
        for c in &mut conns {
            while c.frames.try_recv().is_some() {}
        }
        let drained = heap::live();
        println!(
            "after the writer drained welcome+subscribed: {} B",
            (drained - before) / 1000
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = ws_route(hub.clone(), WsConfig::default())
        .map(warp::Reply::into_response)
        .boxed();
    tokio::spawn(tickcast_transport_ws::serve(
        listener,
        routes,
        std::future::pending(),
    ));
    let n = 1000;
    let mut clients = Vec::new();
    // Warm up (first-use allocations of the runtime and the hub).
    for _ in 0..10 {
        clients.push(open(addr).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let before = heap::live();
    let sizes_before = heap::by_size();
    let mut server_side = Vec::new();
    for _ in 0..n {
        server_side.push(open(addr).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let after = heap::live();
    let sizes_after = heap::by_size();
    // The clients live in this process too: measure one client alone.
    let c0 = heap::live();
    let extra = open_client_only(addr).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let c1 = heap::live();
    println!(
        "heap per connection (server + client): {} B; one more connection: {} B; connections {}",
        (after - before) / n as isize,
        c1 - c0,
        hub.connection_count()
    );
    println!("live allocations per connection, by size:");
    heap::print_growth(&sizes_before, &sizes_after, n as isize);
    drop(extra);
    drop(server_side);
    drop(clients);
}

type Client = tokio::net::TcpStream;

/// A raw client: handshake and one masked subscribe frame, then silence
/// (its heap is a socket registration, next to nothing).
async fn open(addr: std::net::SocketAddr) -> Client {
    use tokio::io::AsyncWriteExt;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    tcp.write_all(head.as_bytes()).await.unwrap();
    let op = br#"{"op":"subscribe","id":"s1","filter":{"symbols":["AAPL"]}}"#;
    let mut frame = vec![0x81, 0x80 | op.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(op);
    tcp.write_all(&frame).await.unwrap();
    tcp
}

async fn open_client_only(addr: std::net::SocketAddr) -> Client {
    open(addr).await
}

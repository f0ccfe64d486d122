//! Heap bytes per idle Socket.IO connection on the lean WebSocket path,
//! counted by a global allocator wrapper (an investigation aid: run with
//! `cargo run --release -p tickcast-transport-socketio --example socketio_heap_per_connection`).
//! Compare with `tickcast-transport-ws`'s `ws_heap_per_connection`.

use std::convert::Infallible;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tickcast_core::{Hub, HubConfig};
use tickcast_testkit::heap::{self, Counting};
use tickcast_transport_socketio::{prepare_upgrade, socketio_route, SocketIoConfig};
use tokio::io::AsyncWriteExt;
use warp::Filter;

#[global_allocator]
static GLOBAL: Counting = Counting;

#[tokio::main]
async fn main() {
    let hub = Hub::new(HubConfig::immediate());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = socketio_route(hub.clone(), SocketIoConfig::default()).boxed();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let routes = routes.clone();
            let service = hyper::service::service_fn(
                move |mut request: warp::http::Request<hyper::body::Incoming>| {
                    prepare_upgrade(&mut request);
                    let mut warp_service = warp::service(routes.clone());
                    async move {
                        let response =
                            tower_service::Service::call(&mut warp_service, request).await;
                        Ok::<_, Infallible>(response.unwrap())
                    }
                },
            );
            tokio::spawn(async move {
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let n = 1000;
    let mut clients = Vec::new();
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
    println!(
        "heap per connection (server + raw client): {} B; connections {}",
        (after - before) / n as isize,
        hub.connection_count()
    );
    println!("live allocations per connection, by size:");
    heap::print_growth(&sizes_before, &sizes_after, n as isize);
    drop(server_side);
    drop(clients);
}

/// A raw client: the upgrade, CONNECT and one subscribe, then silence.
async fn open(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head =
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\
                Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                Sec-WebSocket-Version: 13\r\n\r\n";
    tcp.write_all(head.as_bytes()).await.unwrap();
    for packet in [
        &b"40"[..],
        br#"421["subscribe",{"id":"s1","filter":{"symbols":["AAPL"]}}]"#,
    ] {
        let mut frame = vec![0x81, 0x80 | packet.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(packet);
        tcp.write_all(&frame).await.unwrap();
    }
    tcp
}

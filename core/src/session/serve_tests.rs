//! The session loop against fake sinks, on paused time: every deadline
//! fires whatever the socket does.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{stream, Sink};

use super::*;
use crate::broadcast::Outbound;
use crate::model::Event;
use crate::session::open;
use crate::{Hub, HubConfig};

/// Writes each item as a short description.
struct TextCodec;

impl WireCodec for TextCodec {
    type Item = String;

    fn encode(&mut self, out: Outbound, items: &mut Vec<String>) -> usize {
        let text = match out {
            Outbound::Event(f) => format!("event {}", f.offset()),
            Outbound::Batch(fs) => format!("batch {}", fs.len()),
            Outbound::Message(m) => String::from_utf8_lossy(&m.to_json()).into_owned(),
            Outbound::Close(code) => format!("close {}", code.code()),
        };
        let size = text.len();
        items.push(text);
        size
    }

    fn ping(&mut self) -> String {
        "ping".to_owned()
    }
}

/// A sink that takes everything while `open`, and nothing after.
#[derive(Clone, Default)]
struct Socket {
    written: Arc<Mutex<Vec<String>>>,
    stuck: Arc<AtomicBool>,
}

impl Socket {
    fn written(&self) -> Vec<String> {
        self.written.lock().unwrap().clone()
    }
}

impl Sink<String> for Socket {
    type Error = std::io::Error;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.stuck.load(Ordering::Relaxed) {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }
    fn start_send(self: Pin<&mut Self>, item: String) -> Result<(), Self::Error> {
        self.written.lock().unwrap().push(item);
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_ready(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_ready(cx)
    }
}

type Silent = stream::Pending<Inbound>;

fn event() -> Event {
    let body = r#"{"pattern":"Doji","symbol":"AAPL","confidence":0.7,"tier":"daily"}"#;
    Event::from_json(Bytes::from_static(body.as_bytes()), None, 1 << 20).unwrap()
}

fn config() -> SessionConfig {
    SessionConfig {
        ping_interval: Duration::from_secs(1),
        idle_timeout: Some(Duration::from_secs(5)),
        write_timeout: Duration::from_secs(2),
        ..SessionConfig::default()
    }
}

fn transport(socket: &Socket, inbound: Option<Silent>) -> Transport<TextCodec, Socket, Silent> {
    Transport {
        codec: TextCodec,
        sink: socket.clone(),
        inbound,
        abort: None,
    }
}

/// A session on `socket` whose client subscribed to everything.
fn spawn_subscribed(
    hub: &Hub,
    config: &SessionConfig,
    socket: &Socket,
) -> tokio::task::JoinHandle<SessionEnd> {
    let opened = open(hub, config, None).unwrap();
    opened
        .connection
        .handle
        .subscribe("s1", Default::default(), None)
        .unwrap();
    tokio::spawn(serve(
        opened,
        transport(socket, Some(stream::pending())),
        config,
    ))
}

#[tokio::test(start_paused = true)]
async fn a_socket_that_takes_nothing_is_dropped_at_the_write_deadline() {
    let hub = Hub::new(HubConfig::immediate());
    let config = config();
    let opened = open(&hub, &config, None).unwrap();
    let socket = Socket::default();
    socket.stuck.store(true, Ordering::Relaxed);
    let abort = SocketAbort::new();
    let mut transport = transport(&socket, Some(stream::pending()));
    transport.abort = Some(abort.clone());
    let end = serve(opened, transport, &config).await;
    assert_eq!(end, SessionEnd::WriteTimeout);
    assert!(abort.is_aborted());
    assert_eq!(hub.stats().delivery.write_timeouts, 1);
    assert_eq!(hub.connection_count(), 0);
    assert!(socket.written().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_slow_consumer_stuck_mid_write_is_freed_within_the_deadline() {
    let mut hub_config = HubConfig::immediate();
    hub_config.queue.capacity = 4;
    let hub = Hub::new(hub_config);
    let config = config();
    let socket = Socket::default();
    let session = spawn_subscribed(&hub, &config, &socket);
    tokio::task::yield_now().await;
    socket.stuck.store(true, Ordering::Relaxed);
    for _ in 0..64 {
        hub.publish(event()).unwrap();
        tokio::task::yield_now().await;
    }
    let end = session.await.unwrap();
    assert_eq!(end, SessionEnd::WriteTimeout);
    assert_eq!(hub.connection_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_closed_idle_and_pinged_before() {
    let hub = Hub::new(HubConfig::immediate());
    let config = config();
    let opened = open(&hub, &config, None).unwrap();
    let socket = Socket::default();
    let end = serve(opened, transport(&socket, Some(stream::pending())), &config).await;
    assert_eq!(end, SessionEnd::Closed);
    let written = socket.written();
    assert!(written[0].contains("welcome"), "{written:?}");
    assert!(written.iter().filter(|w| *w == "ping").count() >= 3);
    assert_eq!(written.last().map(String::as_str), Some("close 1000"));
}

#[tokio::test(start_paused = true)]
async fn idle_is_counted_while_a_write_is_pending() {
    let hub = Hub::new(HubConfig::immediate());
    let mut config = config();
    config.write_timeout = Duration::from_secs(3600);
    let opened = open(&hub, &config, None).unwrap();
    let handle_closed = opened.connection.handle.hub().clone();
    let socket = Socket::default();
    socket.stuck.store(true, Ordering::Relaxed);
    let session = tokio::spawn({
        let transport = transport(&socket, Some(stream::pending()));
        let config = config.clone();
        async move { serve(opened, transport, &config).await }
    });
    // The welcome is stuck; the idle timeout still closes the queue, and
    // the close goes out once the socket takes data again.
    tokio::time::sleep(Duration::from_secs(7)).await;
    socket.stuck.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(session.await.unwrap(), SessionEnd::Closed);
    assert_eq!(
        socket.written().last().map(String::as_str),
        Some("close 1000")
    );
    assert_eq!(handle_closed.connection_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_closes_4002_and_a_stream_without_inbound_is_never_idle() {
    let hub = Hub::new(HubConfig::immediate());
    let verifier = crate::auth::verifier::fixed::FixedTokens::default().with(
        "t",
        "u1",
        Duration::from_secs(30),
        None,
    );
    let config = SessionConfig {
        auth: Some(std::sync::Arc::new(verifier)),
        ..config()
    };
    let opened = open(&hub, &config, Some("t")).unwrap();
    let socket = Socket::default();
    // No inbound (SSE): silent for 30 s, never idle; the token ends it.
    let end = serve(opened, transport(&socket, None), &config).await;
    assert_eq!(end, SessionEnd::Closed);
    let written = socket.written();
    assert!(
        written[written.len() - 2].contains("token_expired"),
        "{written:?}"
    );
    assert_eq!(written.last().map(String::as_str), Some("close 4002"));
}

#[tokio::test(start_paused = true)]
async fn a_batch_waits_its_window_on_the_session_timer_then_goes_out() {
    let mut hub_config = HubConfig::immediate();
    hub_config.queue.batch_window = Duration::from_millis(100);
    let hub = Hub::new(hub_config);
    let config = config();
    let socket = Socket::default();
    let session = spawn_subscribed(&hub, &config, &socket);
    tokio::task::yield_now().await;
    hub.publish(event()).unwrap();
    hub.publish(event()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let is_event = |w: &String| w.starts_with("event") || w.starts_with("batch");
    assert!(
        !socket.written().iter().any(is_event),
        "sent before the window"
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    let written = socket.written();
    assert_eq!(
        written.iter().filter(|w| is_event(w)).collect::<Vec<_>>(),
        ["batch 2"],
        "{written:?}"
    );
    // The window does not disturb the keep-alive.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(socket.written().iter().any(|w| w == "ping"));
    session.abort();
}

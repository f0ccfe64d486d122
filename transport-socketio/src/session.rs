//! One Socket.IO connection, whatever carries its Engine.IO packets: waits
//! for the client's CONNECT, admits it (core's `open`: token, limits),
//! recovers its previous session if it asks and may, answers the CONNECT,
//! then runs core's session until the connection ends, and leaves the
//! session for recovery.

use std::sync::Arc;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::Value;
use tickcast_core::model::{Offset, UserId};
use tickcast_core::session::{self, Opened, SessionEnd, Transport};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::codec::SioCodec;
use crate::packet::{connect_error_packet, connect_ok_packet, parse_sio, EngineIn, Out, SioKind};
use crate::recovery::{Saved, Serving};
use crate::state::Shared;
use crate::{inbound, new_id, Endpoint};

/// What a CONNECT to `/` carries: socket.io-client's `auth`, plus the
/// `pid` and `offset` it adds to recover a session.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ConnectRequest {
    pub token: Option<String>,
    pub pid: Option<String>,
    pub offset: Option<String>,
}

impl ConnectRequest {
    /// Reads the CONNECT's JSON data (empty, or an object; anything else
    /// carries nothing).
    pub(crate) fn parse(data: &str) -> Self {
        let Ok(Value::Object(auth)) = serde_json::from_str::<Value>(data) else {
            return Self::default();
        };
        let text = |key: &str| auth.get(key).and_then(Value::as_str).map(str::to_owned);
        Self {
            token: text("token"),
            pid: text("pid"),
            offset: text("offset"),
        }
    }
}

/// What the client said before its CONNECT to `/`.
enum Waited {
    Connect(ConnectRequest),
    /// Gone, silent past the deadline, or said goodbye.
    Gone,
    /// Sent something the protocol does not take (binary).
    Unsupported,
}

/// Serves one Engine.IO connection whose open packet is sent: `sink`
/// takes what the server writes, `packets` is what the client sends;
/// `handshake_token` is the token of the request that opened it (query or
/// `Authorization`), used when the CONNECT's `auth` has none. Once the
/// client is connected, its session runs in the task returned (`None`:
/// the connection ended before).
pub(crate) async fn run<K, S>(
    endpoint: Arc<Endpoint>,
    mut sink: K,
    mut packets: S,
    handshake_token: Option<String>,
) -> Option<JoinHandle<SessionEnd>>
where
    K: Sink<Out> + Unpin + Send + 'static,
    K::Error: Send,
    S: Stream<Item = EngineIn> + Unpin + Send + 'static,
{
    let request = match wait_connect(&endpoint, &mut sink, &mut packets).await {
        Waited::Connect(request) => request,
        Waited::Gone => {
            end(&endpoint, &mut sink, Out::Close(1000, "")).await;
            return None;
        }
        Waited::Unsupported => {
            end(
                &endpoint,
                &mut sink,
                Out::Close(1003, "binary packets are not supported"),
            )
            .await;
            return None;
        }
    };
    let token = request.token.clone().or(handshake_token);
    let mut opened = match session::open(&endpoint.hub, &endpoint.session, token.as_deref()) {
        Ok(opened) => opened,
        Err(e) => {
            let refusal = connect_error_packet("/", &e.to_string(), Some(e.error_code().as_str()));
            let code = e.close_code();
            let write = async {
                sink.feed(Out::Packet(refusal)).await?;
                sink.feed(Out::Close(code.code(), code.reason())).await?;
                sink.close().await
            };
            let _ = tokio::time::timeout(endpoint.session.write_timeout, write).await;
            return None;
        }
    };
    let shared = Arc::new(Shared::default());
    let pid = recover(&endpoint, &request, &mut opened, &shared).await;
    let answer = connect_ok_packet(&new_id(), pid.as_deref());
    let written = tokio::time::timeout(
        endpoint.session.write_timeout,
        sink.send(Out::Packet(answer)),
    )
    .await;
    if !matches!(written, Ok(Ok(()))) {
        if let Some(pid) = pid {
            save(&endpoint, pid, &opened, &shared);
        }
        return None;
    }
    let user = opened.connection.handle.user().cloned();
    let serving = pid
        .as_deref()
        .map(|pid| endpoint.recovery.serving(pid, user.clone()));
    let max_frame_bytes = endpoint.session.max_frame_bytes;
    let reader = shared.clone();
    // A client back on another connection ends this one: its reading stops.
    let signals = serving.as_ref().map(|s| s.signals.clone());
    let kicked = Box::pin(async move {
        match signals {
            Some(signals) => signals.kick.notified().await,
            None => std::future::pending().await,
        }
    });
    let inbound = packets
        .map(move |packet| inbound::map(&reader, max_frame_bytes, packet))
        .take_until(kicked);
    let on_end = Ended {
        endpoint: endpoint.clone(),
        pid,
        user,
        shared: shared.clone(),
        serving,
    };
    let transport = Transport {
        codec: SioCodec::with_end(shared, on_end),
        sink,
        inbound: Some(inbound),
        abort: None,
    };
    // A task of its own, holding only the session: what the handshake held
    // is freed.
    Some(tokio::spawn(session::serve(
        opened,
        transport,
        &endpoint.session,
    )))
}

/// What a served session's end does (run when its codec is dropped): the
/// session is left for recovery unless the client said goodbye, and a
/// reconnecting client waiting for it is told.
struct Ended {
    endpoint: Arc<Endpoint>,
    pid: Option<String>,
    user: Option<UserId>,
    shared: Arc<Shared>,
    serving: Option<Serving>,
}

impl Drop for Ended {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            if !self.shared.said_goodbye() {
                let saved = Saved {
                    user: self.user.take(),
                    subscriptions: self.shared.subscriptions(),
                };
                self.endpoint.recovery.save(pid, saved);
            }
        }
        if let Some(serving) = self.serving.take() {
            self.endpoint.recovery.ended(serving);
        }
    }
}

/// Leaves a session that never started serving for recovery, as it was.
fn save(endpoint: &Endpoint, pid: String, opened: &Opened, shared: &Shared) {
    let saved = Saved {
        user: opened.connection.handle.user().cloned(),
        subscriptions: shared.subscriptions(),
    };
    endpoint.recovery.save(pid, saved);
}

/// Reads until the client's CONNECT to `/`, answering CONNECTs to other
/// namespaces with CONNECT_ERROR, within the connect deadline.
async fn wait_connect<K, S>(endpoint: &Endpoint, sink: &mut K, packets: &mut S) -> Waited
where
    K: Sink<Out> + Unpin,
    S: Stream<Item = EngineIn> + Unpin,
{
    let deadline = Instant::now() + endpoint.connect_timeout();
    loop {
        let Ok(Some(packet)) = tokio::time::timeout_at(deadline, packets.next()).await else {
            return Waited::Gone;
        };
        let text = match packet {
            EngineIn::Text(text) => text,
            EngineIn::Binary => return Waited::Unsupported,
            EngineIn::Closed | EngineIn::Failed(_) => return Waited::Gone,
        };
        let Ok(text) = std::str::from_utf8(&text) else {
            return Waited::Gone;
        };
        if text == "1" {
            return Waited::Gone;
        }
        let Some(packet) = text.strip_prefix('4').and_then(parse_sio) else {
            continue;
        };
        match packet.kind {
            SioKind::Connect if packet.nsp == "/" => {
                return Waited::Connect(ConnectRequest::parse(packet.data))
            }
            SioKind::Connect => {
                let refusal = connect_error_packet(packet.nsp, "Invalid namespace", None);
                let sent = tokio::time::timeout_at(deadline, sink.send(Out::Packet(refusal))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    return Waited::Gone;
                }
            }
            SioKind::BinaryEvent | SioKind::BinaryAck => return Waited::Unsupported,
            _ => {}
        }
    }
}

/// Restores the saved session the client asks for, when it is the same
/// user's and the history holds every event after its offset; returns the
/// connection's `pid` (`None` with recovery off): the old one when
/// recovered, a new one otherwise.
async fn recover(
    endpoint: &Endpoint,
    request: &ConnectRequest,
    opened: &mut Opened,
    shared: &Shared,
) -> Option<String> {
    if !endpoint.recovery.enabled() {
        return None;
    }
    let handle = &opened.connection.handle;
    let (Some(pid), Some(offset)) = (&request.pid, &request.offset) else {
        return Some(new_id());
    };
    let user = handle.user().map(|u| &**u);
    // Its old connection may still be served: the client saw it die first.
    endpoint
        .recovery
        .take_over(pid, user, endpoint.session.write_timeout)
        .await;
    let Some(saved) = endpoint.recovery.take(pid, user) else {
        return Some(new_id());
    };
    let offset = offset.parse::<Offset>().ok();
    let Some(offset) = offset.filter(|o| endpoint.hub.can_replay(*o)) else {
        return Some(new_id());
    };
    for (id, filter) in saved.subscriptions {
        match handle.subscribe(&id, filter.clone(), Some(offset)) {
            Ok(_) => shared.restored(&id, filter),
            Err(e) => handle.send(e.to_message(&id)),
        }
    }
    Some(pid.clone())
}

/// Ends a connection that never got to the session: `last`, then the
/// transport's close, within the write deadline.
async fn end<K>(endpoint: &Endpoint, sink: &mut K, last: Out)
where
    K: Sink<Out> + Unpin,
{
    let write = async {
        sink.feed(last).await?;
        sink.close().await
    };
    let _ = tokio::time::timeout(endpoint.session.write_timeout, write).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_data_carries_token_pid_and_offset() {
        assert_eq!(ConnectRequest::parse(""), ConnectRequest::default());
        assert_eq!(ConnectRequest::parse("[1]"), ConnectRequest::default());
        let r = ConnectRequest::parse(r#"{"token":"t","pid":"p","offset":"1-2","x":3}"#);
        assert_eq!(
            r,
            ConnectRequest {
                token: Some("t".into()),
                pid: Some("p".into()),
                offset: Some("1-2".into())
            }
        );
        assert_eq!(ConnectRequest::parse(r#"{"token":5}"#).token, None);
    }
}

//! What the client sends once connected, as core's [`Inbound`] items.
//!
//! - Engine.IO `3` (pong), `6` (noop) and anything that only shows the
//!   client is there: [`Inbound::Alive`]. `1` (close) and a Socket.IO
//!   DISCONNECT of `/`: the client left on purpose ([`Inbound::Closed`]).
//! - `42<ack>["subscribe",{id,filter,since?}]` and `"unsubscribe"`: core's
//!   native operation (`{"op":"subscribe",...}`) as [`Inbound::Text`],
//!   the ack recorded in [`Shared`] for the codec to answer with core's
//!   message.
//! - Anything core would not see (an unknown event, arguments that are not
//!   an object with an `id`, a CONNECT to another namespace, a packet over
//!   the frame limit): answered here with an `error` (the ack, when the
//!   client waits on one), queued in [`Shared`] and written through
//!   [`Inbound::Ping`], which makes the session ask the codec's `pong`.
//! - Binary packets: [`Inbound::Unsupported`] (the connection is closed).

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};
use tickcast_core::model::Filter;
use tickcast_core::protocol::{CloseCode, ErrorCode, ServerMessage};
use tickcast_core::session::Inbound;

use crate::packet::{
    ack_packet, connect_error_packet, event_packet, parse_sio, EngineIn, Packet, SioKind,
};
use crate::state::Shared;

/// Maps one client packet onto the session.
pub(crate) fn map(shared: &Arc<Shared>, max_frame_bytes: usize, packet: EngineIn) -> Inbound {
    let text = match packet {
        EngineIn::Text(text) => text,
        EngineIn::Binary => return Inbound::Unsupported,
        EngineIn::Closed => return Inbound::Closed,
        EngineIn::Failed(code) => {
            return Inbound::Failed(code.map(|c| {
                if c == 1009 {
                    CloseCode::TooBig
                } else {
                    CloseCode::InvalidUtf8
                }
            }))
        }
    };
    let Ok(text) = std::str::from_utf8(&text) else {
        return Inbound::Failed(Some(CloseCode::InvalidUtf8));
    };
    match text.as_bytes().first() {
        Some(b'4') => message(shared, max_frame_bytes, &text[1..]),
        Some(b'1') => {
            shared.goodbye();
            Inbound::Closed
        }
        Some(b'b') => Inbound::Unsupported,
        // Pongs, noops, a stray upgrade or probe: the client is there.
        _ => Inbound::Alive,
    }
}

/// A Socket.IO packet.
fn message(shared: &Arc<Shared>, max_frame_bytes: usize, text: &str) -> Inbound {
    let Some(packet) = parse_sio(text) else {
        return refuse_ack(shared, None, "not a Socket.IO packet".into());
    };
    match packet.kind {
        SioKind::BinaryEvent | SioKind::BinaryAck => Inbound::Unsupported,
        SioKind::Disconnect if packet.nsp == "/" => {
            shared.goodbye();
            Inbound::Closed
        }
        SioKind::Connect if packet.nsp != "/" => reply(
            shared,
            connect_error_packet(packet.nsp, "Invalid namespace", None),
        ),
        SioKind::Event if packet.nsp == "/" => {
            if text.len() > max_frame_bytes {
                let error = ServerMessage::error(
                    ErrorCode::FrameTooLarge,
                    format!("packets are limited to {max_frame_bytes} bytes"),
                    None,
                );
                return answer(shared, packet.ack, &error);
            }
            event(shared, packet.ack, packet.data)
        }
        // Acks (the server asks for none), a second CONNECT, packets for
        // other namespaces: nothing to do.
        _ => Inbound::Alive,
    }
}

/// `["subscribe", {..}]` / `["unsubscribe", {..}]`.
fn event(shared: &Arc<Shared>, ack: Option<u64>, data: &str) -> Inbound {
    let args: Vec<Value> = match serde_json::from_str(data) {
        Ok(args) => args,
        Err(e) => return refuse_ack(shared, ack, format!("bad event: {e}")),
    };
    let mut args = args.into_iter();
    let name = match args.next() {
        Some(Value::String(name)) => name,
        _ => return refuse_ack(shared, ack, "an event needs a name".into()),
    };
    if name != "subscribe" && name != "unsubscribe" {
        let shown: String = name.chars().take(64).collect();
        return refuse_ack(shared, ack, format!("unknown event {shown:?}"));
    }
    let Some(Value::Object(mut op)) = args.next() else {
        return refuse_ack(
            shared,
            ack,
            format!("{name} takes an object: {{\"id\":..}}"),
        );
    };
    let Some(id) = op.get("id").and_then(Value::as_str).map(str::to_owned) else {
        return refuse_ack(shared, ack, format!("{name} needs a string \"id\""));
    };
    let filter = if name == "subscribe" {
        // Core judges the filter; a valid one is kept for recovery.
        Some(
            op.get("filter")
                .cloned()
                .map_or(Ok(Filter::default()), serde_json::from_value)
                .unwrap_or_default(),
        )
    } else {
        None
    };
    if !shared.expect(&id, ack, filter) {
        let error = ServerMessage::error(
            ErrorCode::LimitExceeded,
            "too many requests waiting for an answer",
            Some(id),
        );
        return answer(shared, ack, &error);
    }
    let mut native = Map::with_capacity(op.len() + 1);
    native.insert("op".into(), Value::String(name));
    native.append(&mut op);
    Inbound::Text(Bytes::from(Value::Object(native).to_string()))
}

/// A `bad_request` error for a request core never sees.
fn refuse_ack(shared: &Arc<Shared>, ack: Option<u64>, why: String) -> Inbound {
    answer(
        shared,
        ack,
        &ServerMessage::error(ErrorCode::BadRequest, why, None),
    )
}

/// Sends `message` as the ack, or as an event when nobody waits on one.
fn answer(shared: &Arc<Shared>, ack: Option<u64>, message: &ServerMessage) -> Inbound {
    let json = message.to_json();
    let packet = match ack {
        Some(ack) => ack_packet(ack, &json),
        None => event_packet("error", &json),
    };
    reply(shared, packet)
}

/// Queues `packet` for the writer and asks for it to be written; a client
/// that lets replies pile up unread is a slow consumer.
fn reply(shared: &Arc<Shared>, packet: Packet) -> Inbound {
    if shared.reply(packet) {
        Inbound::Ping(Bytes::new())
    } else {
        Inbound::Failed(Some(CloseCode::SlowConsumer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> EngineIn {
        EngineIn::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn subscribe_becomes_the_native_op_and_waits_for_its_ack() {
        let shared = Arc::new(Shared::default());
        let out = map(
            &shared,
            1 << 16,
            text(r#"423["subscribe",{"id":"s1","filter":{"symbols":["AAPL"]},"since":"1-2"}]"#),
        );
        let Inbound::Text(op) = out else {
            panic!("{out:?}")
        };
        let op: Value = serde_json::from_slice(&op).unwrap();
        assert_eq!(op["op"], "subscribe");
        assert_eq!(op["id"], "s1");
        assert_eq!(op["since"], "1-2");
        assert_eq!(op["filter"]["symbols"][0], "AAPL");
        assert_eq!(shared.answered("s1", true), crate::state::Answer::Ack(3));
        assert_eq!(shared.subscriptions()[0].1.list("symbols"), ["AAPL"]);
    }

    #[test]
    fn what_core_never_sees_is_answered_here() {
        let shared = Arc::new(Shared::default());
        for bad in [
            r#"425["dance",{}]"#,
            r#"425["subscribe","s1"]"#,
            r#"425["subscribe",{"filter":{}}]"#,
            r#"425not json"#,
        ] {
            assert_eq!(
                map(&shared, 1 << 16, text(bad)),
                Inbound::Ping(Bytes::new()),
                "{bad}"
            );
            let replies = shared.take_replies();
            let reply = String::from_utf8(replies[0].to_bytes().to_vec()).unwrap();
            assert!(
                reply.starts_with(r#"435[{"type":"error","code":"bad_request""#),
                "{reply}"
            );
        }
        assert_eq!(
            map(&shared, 8, text(r#"42["subscribe",{"id":"s1"}]"#)),
            Inbound::Ping(Bytes::new())
        );
        let reply = shared.take_replies()[0].to_bytes();
        assert!(reply.starts_with(br#"42["error",{"type":"error","code":"frame_too_large""#));
        assert_eq!(
            map(&shared, 1 << 16, text("40/admin,")),
            Inbound::Ping(Bytes::new())
        );
        assert_eq!(
            shared.take_replies()[0].to_bytes(),
            &br#"44/admin,{"message":"Invalid namespace"}"#[..]
        );
    }

    #[test]
    fn engine_packets_and_goodbyes() {
        let shared = Arc::new(Shared::default());
        assert_eq!(map(&shared, 64, text("3")), Inbound::Alive);
        assert_eq!(map(&shared, 64, text("6")), Inbound::Alive);
        assert_eq!(map(&shared, 64, EngineIn::Binary), Inbound::Unsupported);
        assert_eq!(map(&shared, 64, text(r#"451-["x"]"#)), Inbound::Unsupported);
        assert!(!shared.said_goodbye());
        assert_eq!(map(&shared, 64, text("41")), Inbound::Closed);
        assert!(shared.said_goodbye());
    }
}

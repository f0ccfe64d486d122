//! Engine.IO v4 and Socket.IO v5 packets: what the server writes
//! ([`Packet`], [`Out`]) and how a client's text packet is read
//! ([`EngineIn`], [`SioPacket`]).
//!
//! An Engine.IO packet is a type digit and its data: `0` open, `1` close,
//! `2` ping, `3` pong, `4` message, `5` upgrade, `6` noop. A Socket.IO
//! packet is the data of a `4` message: a type digit (`0` CONNECT, `1`
//! DISCONNECT, `2` EVENT, `3` ACK, `4` CONNECT_ERROR, `5`/`6` binary),
//! an optional namespace (`/admin,`), an optional ack id, then JSON.

use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;

/// The record separator between packets of a polling payload.
pub(crate) const SEPARATOR: u8 = 0x1e;

/// Bytes a packet keeps inline before it spills to the heap: an event's
/// head (`42["pattern_detected",`) and its resume tail.
type Inline = SmallVec<[u8; 48]>;

/// One Engine.IO packet the server sends, as text in three parts: a head
/// and a tail of its own around a body that may be shared between
/// connections (an event's bytes, encoded once by core).
#[derive(Debug, Clone, Default)]
pub(crate) struct Packet {
    head: Inline,
    body: Bytes,
    tail: Inline,
}

impl Packet {
    /// A packet whose whole text is `text`.
    pub(crate) fn whole(text: impl Into<Bytes>) -> Self {
        Self {
            head: Inline::new(),
            body: text.into(),
            tail: Inline::new(),
        }
    }

    /// A packet of a static text (`2`, `3probe`, `6`).
    pub(crate) fn fixed(text: &'static str) -> Self {
        Self::whole(Bytes::from_static(text.as_bytes()))
    }

    /// `head`, the shared `body`, `tail`.
    pub(crate) fn parts_of(head: &[u8], body: Bytes, tail: &[u8]) -> Self {
        Self {
            head: Inline::from_slice(head),
            body,
            tail: Inline::from_slice(tail),
        }
    }

    /// The text, in order.
    pub(crate) fn parts(&self) -> [&[u8]; 3] {
        [&self.head, &self.body, &self.tail]
    }

    /// Length of the text.
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.body.len() + self.tail.len()
    }

    /// Appends the text to `out`.
    pub(crate) fn write_to(&self, out: &mut BytesMut) {
        for part in self.parts() {
            out.put_slice(part);
        }
    }

    /// The text in one buffer.
    pub(crate) fn to_bytes(&self) -> Bytes {
        if self.head.is_empty() && self.tail.is_empty() {
            return self.body.clone();
        }
        let mut out = BytesMut::with_capacity(self.len());
        self.write_to(&mut out);
        out.freeze()
    }
}

/// What the session's sink takes.
#[derive(Debug, Clone)]
pub(crate) enum Out {
    /// One packet.
    Packet(Packet),
    /// Several packets, in order (the replies the reader queued).
    Many(Vec<Packet>),
    /// The end of the connection: a WebSocket close with this code and
    /// reason; on polling, an Engine.IO `1` close packet.
    Close(u16, &'static str),
}

impl Out {
    /// About how many bytes this writes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Packet(p) => p.len(),
            Self::Many(ps) => ps.iter().map(Packet::len).sum(),
            Self::Close(..) => 4,
        }
    }
}

/// What a transport read from the client, before Socket.IO decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EngineIn {
    /// One Engine.IO packet's text.
    Text(Bytes),
    /// A binary frame or a base64 (`b`) packet: not supported.
    Binary,
    /// The client closed the transport.
    Closed,
    /// Reading failed; `Some(code)` when a close is owed (1009: too large).
    Failed(Option<u16>),
}

/// The Engine.IO open packet: `0{"sid":..,"upgrades":[..],"pingInterval":..,"pingTimeout":..,"maxPayload":..}`.
pub(crate) fn open_packet(
    sid: &str,
    upgrades: bool,
    ping_interval_ms: u128,
    ping_timeout_ms: u128,
    max_payload: usize,
) -> Packet {
    let upgrades: &[&str] = if upgrades { &["websocket"] } else { &[] };
    let json = serde_json::json!({
        "sid": sid,
        "upgrades": upgrades,
        "pingInterval": u64::try_from(ping_interval_ms).unwrap_or(u64::MAX),
        "pingTimeout": u64::try_from(ping_timeout_ms).unwrap_or(u64::MAX),
        "maxPayload": max_payload,
    });
    Packet::whole(format!("0{json}"))
}

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SioKind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

/// One Socket.IO packet a client sent (the data of an Engine.IO `4`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SioPacket<'a> {
    pub kind: SioKind,
    /// `/` unless the packet names another namespace.
    pub nsp: &'a str,
    /// The acknowledgement id the client waits on.
    pub ack: Option<u64>,
    /// The JSON payload (possibly empty).
    pub data: &'a str,
}

/// Reads a Socket.IO packet; `None` when it is not one.
pub(crate) fn parse_sio(text: &str) -> Option<SioPacket<'_>> {
    let mut chars = text.char_indices();
    let (_, kind) = chars.next()?;
    let kind = match kind {
        '0' => SioKind::Connect,
        '1' => SioKind::Disconnect,
        '2' => SioKind::Event,
        '3' => SioKind::Ack,
        '4' => SioKind::ConnectError,
        '5' => SioKind::BinaryEvent,
        '6' => SioKind::BinaryAck,
        _ => return None,
    };
    let mut rest = &text[1..];
    if matches!(kind, SioKind::BinaryEvent | SioKind::BinaryAck) {
        // `<attachments>-`: binary payloads are not supported, but the
        // packet still parses so that it can be refused by kind.
        let dash = rest.find('-')?;
        rest = &rest[dash + 1..];
    }
    let mut nsp = "/";
    if rest.starts_with('/') {
        match rest.find(',') {
            Some(comma) => {
                nsp = &rest[..comma];
                rest = &rest[comma + 1..];
            }
            None => {
                nsp = rest;
                rest = "";
            }
        }
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack = if digits > 0 {
        // An id too large for u64 is not a packet socket.io-client sends.
        Some(rest[..digits].parse::<u64>().ok()?)
    } else {
        None
    };
    Some(SioPacket {
        kind,
        nsp,
        ack,
        data: &rest[digits..],
    })
}

/// `42["<name>",<json>]`: an event with one argument.
pub(crate) fn event_packet(name: &str, json: &[u8]) -> Packet {
    let mut out = BytesMut::with_capacity(json.len() + name.len() + 8);
    out.put_slice(b"42[");
    put_json_string(&mut out, name);
    out.put_u8(b',');
    out.put_slice(json);
    out.put_u8(b']');
    Packet::whole(out.freeze())
}

/// `43<ack>[<json>]`: the acknowledgement of a client's event.
pub(crate) fn ack_packet(ack: u64, json: &[u8]) -> Packet {
    let mut out = BytesMut::with_capacity(json.len() + 24);
    out.put_slice(b"43");
    out.put_slice(itoa::Buffer::new().format(ack).as_bytes());
    out.put_u8(b'[');
    out.put_slice(json);
    out.put_u8(b']');
    Packet::whole(out.freeze())
}

/// `44[/nsp,]{"message":..,"data":{"code":..}}`: a refused CONNECT.
pub(crate) fn connect_error_packet(nsp: &str, message: &str, code: Option<&str>) -> Packet {
    let mut json = serde_json::json!({ "message": message });
    if let Some(code) = code {
        json["data"] = serde_json::json!({ "code": code });
    }
    let prefix = if nsp == "/" {
        String::new()
    } else {
        format!("{nsp},")
    };
    Packet::whole(format!("44{prefix}{json}"))
}

/// `40{"sid":..,"pid":..}`: an accepted CONNECT.
pub(crate) fn connect_ok_packet(sid: &str, pid: Option<&str>) -> Packet {
    let json = match pid {
        Some(pid) => serde_json::json!({ "sid": sid, "pid": pid }),
        None => serde_json::json!({ "sid": sid }),
    };
    Packet::whole(format!("40{json}"))
}

/// `value` as a JSON string.
pub(crate) fn put_json_string(out: &mut impl Extend<u8>, value: &str) {
    let plain = value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        // Event types and offsets: nothing to escape, nothing to allocate.
        out.extend(std::iter::once(b'"'));
        out.extend(value.bytes());
        out.extend(std::iter::once(b'"'));
    } else {
        // Serializing a `str` cannot fail.
        out.extend(serde_json::to_vec(value).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_io_packets_parse_with_and_without_namespace_and_ack() {
        let p = parse_sio(r#"212["subscribe",{"id":"s1"}]"#).unwrap();
        assert_eq!(
            (p.kind, p.nsp, p.ack, p.data),
            (
                SioKind::Event,
                "/",
                Some(12),
                r#"["subscribe",{"id":"s1"}]"#
            )
        );
        let p = parse_sio(r#"0/admin,{"token":"x"}"#).unwrap();
        assert_eq!(
            (p.kind, p.nsp, p.data),
            (SioKind::Connect, "/admin", r#"{"token":"x"}"#)
        );
        let p = parse_sio("0").unwrap();
        assert_eq!(
            (p.kind, p.nsp, p.ack, p.data),
            (SioKind::Connect, "/", None, "")
        );
        let p = parse_sio("1/admin").unwrap();
        assert_eq!((p.kind, p.nsp), (SioKind::Disconnect, "/admin"));
        let p = parse_sio(r#"51-["x",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(p.kind, SioKind::BinaryEvent);
        assert_eq!(parse_sio("9"), None);
        assert_eq!(parse_sio(""), None);
        assert_eq!(parse_sio("299999999999999999999999[]"), None);
    }

    #[test]
    fn server_packets_have_the_protocol_shape() {
        assert_eq!(
            event_packet("dropped", br#"{"count":1}"#).to_bytes(),
            &br#"42["dropped",{"count":1}]"#[..]
        );
        assert_eq!(ack_packet(7, b"{}").to_bytes(), &b"437[{}]"[..]);
        assert_eq!(
            connect_error_packet("/admin", "Invalid namespace", None).to_bytes(),
            &br#"44/admin,{"message":"Invalid namespace"}"#[..]
        );
        let refused = connect_error_packet("/", "no token", Some("unauthorized")).to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&refused[2..]).unwrap();
        assert_eq!(json["data"]["code"], "unauthorized");
        let open = open_packet("abc", true, 25_000, 20_000, 1000).to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&open[1..]).unwrap();
        assert_eq!(json["upgrades"], serde_json::json!(["websocket"]));
        assert_eq!(json["pingInterval"], 25_000);
    }
}

//! The engine's outbound items as `text/event-stream` text.
//!
//! - An event: `id: <resume>`, `event: <event_type>`, `data: <the event
//!   object>`; the object is the frame core encoded once for the event
//!   (`{"type":"event","offset":..,"subs":[..],..,"data":{..}}`) with the
//!   connection's `"resume"` offset at its end, what a WebSocket client
//!   gets in an `event` frame. The `id:` is that resume offset, not the
//!   event's: the `Last-Event-ID` a browser sends back is then always a
//!   safe point to resume from.
//! - A batch: each of its events as above, all in one write, each with the
//!   resume offset that holds once it is received.
//! - A protocol message: a named event without `id:` (so it never moves
//!   the client's `Last-Event-ID`), named after its `type` (`welcome`,
//!   `subscribed`, `dropped`, `error`, ...), except that the `history_gone`
//!   error is named `history_gone`; its data is the message's JSON.
//! - A close: `event: close` with `{"code":..,"reason":".."}`; the stream
//!   ends after it.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};
use tickcast_core::broadcast::{EventFrame, Outbound, ResumeTail};
use tickcast_core::protocol::{CloseCode, ErrorCode, ServerMessage};

/// The comment written every ping interval.
pub(crate) const PING: &[u8] = b": ping\n\n";

/// Appends the text of `out` to `buf`; true when it was the close (the
/// stream ends after it).
pub(crate) fn write(buf: &mut BytesMut, out: &Outbound) -> bool {
    match out {
        Outbound::Event(frame) => write_event(buf, frame),
        Outbound::Batch(frames) => frames.iter().for_each(|f| write_event(buf, f)),
        Outbound::Message(message) => {
            write_named(buf, message_name(message), &message.to_json());
        }
        Outbound::Close(code) => {
            write_close(buf, *code);
            return true;
        }
    }
    false
}

/// Bytes `out` will take, roughly (for buffer sizing).
pub(crate) fn size_hint(out: &Outbound) -> usize {
    const FIELDS: usize = 96;
    match out {
        Outbound::Event(frame) => frame.encoded_len() + FIELDS,
        Outbound::Batch(frames) => frames.iter().map(|f| f.encoded_len() + FIELDS).sum(),
        Outbound::Message(_) | Outbound::Close(_) => 2 * FIELDS,
    }
}

fn write_event(buf: &mut BytesMut, frame: &EventFrame) {
    // Formatting into a `BytesMut` cannot fail.
    let _ = write!(buf, "id: {}\nevent: ", frame.resume);
    put_field_value(buf, frame.event_type().as_bytes());
    buf.put_u8(b'\n');
    let tail = ResumeTail::new(frame.resume);
    let [object, subs, resume] = frame.parts(&tail);
    // Only the body, inside the object, can hold line breaks.
    put_data(buf, object, &[subs, resume]);
    buf.put_u8(b'\n');
}

fn write_named(buf: &mut BytesMut, name: &str, json: &[u8]) {
    buf.put_slice(b"event: ");
    buf.put_slice(name.as_bytes());
    buf.put_u8(b'\n');
    put_data(buf, json, &[]);
    buf.put_u8(b'\n');
}

fn write_close(buf: &mut BytesMut, code: CloseCode) {
    let json = serde_json::json!({"code": code.code(), "reason": code.reason()});
    write_named(buf, "close", json.to_string().as_bytes());
}

/// The SSE event name of a protocol message.
fn message_name(message: &ServerMessage) -> &'static str {
    match message {
        ServerMessage::Welcome { .. } => "welcome",
        ServerMessage::Subscribed { .. } => "subscribed",
        ServerMessage::Unsubscribed { .. } => "unsubscribed",
        ServerMessage::Dropped { .. } => "dropped",
        ServerMessage::Pong { .. } => "pong",
        ServerMessage::Error {
            code: ErrorCode::HistoryGone,
            ..
        } => "history_gone",
        ServerMessage::Error { .. } => "error",
    }
}

fn is_line_break(b: &u8) -> bool {
    *b == b'\n' || *b == b'\r'
}

/// `data: <line>` for each line of `data` followed by the `tails` (which
/// have no line break). JSON has line breaks only as whitespace between tokens
/// (a pretty-printed body), so splitting there and letting the client
/// join the lines with `\n` keeps the object.
fn put_data(buf: &mut BytesMut, data: &[u8], tails: &[&[u8]]) {
    if !data.iter().any(is_line_break) {
        buf.put_slice(b"data: ");
        buf.put_slice(data);
        tails.iter().for_each(|tail| buf.put_slice(tail));
        buf.put_u8(b'\n');
        return;
    }
    let mut rest = data;
    loop {
        let end = rest.iter().position(is_line_break).unwrap_or(rest.len());
        buf.put_slice(b"data: ");
        buf.put_slice(&rest[..end]);
        if end == rest.len() {
            tails.iter().for_each(|tail| buf.put_slice(tail));
            buf.put_u8(b'\n');
            return;
        }
        buf.put_u8(b'\n');
        // CRLF is one line break; a lone CR or LF is one too.
        let skip = if rest[end..].starts_with(b"\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
}

/// A one-line field value: line breaks (possible in a published
/// `event_type`) would end the field early, so they become `_`.
fn put_field_value(buf: &mut BytesMut, value: &[u8]) {
    if !value.iter().any(is_line_break) {
        buf.put_slice(value);
        return;
    }
    buf.extend(
        value
            .iter()
            .map(|b| if is_line_break(b) { b'_' } else { *b }),
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use tickcast_core::broadcast::PreparedEvent;
    use tickcast_core::model::{Event, Offset, SubId};

    use super::*;

    fn frame(body: &str, offset: Offset) -> EventFrame {
        let event = Event::from_json(Bytes::copy_from_slice(body.as_bytes()), None, 1 << 20)
            .expect("a valid event");
        let prepared = Arc::new(PreparedEvent::new(event, offset));
        let subs: Vec<SubId> = vec!["sse".into()];
        EventFrame::new(prepared, &subs)
    }

    fn text(out: &Outbound) -> (String, bool) {
        let mut buf = BytesMut::new();
        let closed = write(&mut buf, out);
        (String::from_utf8(buf.to_vec()).unwrap(), closed)
    }

    fn json(f: &EventFrame) -> String {
        String::from_utf8(f.to_json().to_vec()).unwrap()
    }

    #[test]
    fn an_event_carries_the_websocket_event_object_and_its_resume_as_id() {
        let mut f = frame(
            r#"{"symbol":"AAPL","pattern":"Doji","confidence":0.85}"#,
            Offset::new(9, 4),
        );
        f.resume = Offset::new(9, 2);
        let ws = json(&f);
        assert!(ws.ends_with(r#","resume":"9-2"}"#), "{ws}");
        let (sse, closed) = text(&Outbound::Event(f));
        assert!(!closed);
        assert_eq!(
            sse,
            format!("id: 9-2\nevent: pattern_detected\ndata: {ws}\n\n")
        );
    }

    #[test]
    fn a_batch_is_its_events_in_one_piece() {
        let a = frame(r#"{"symbol":"A","pattern":"P"}"#, Offset::new(1, 1));
        let b = frame(r#"{"event_type":"system_health"}"#, Offset::new(1, 2));
        let (sse, _) = text(&Outbound::Batch(vec![a.clone(), b.clone()]));
        let expected = format!(
            "id: 1-1\nevent: pattern_detected\ndata: {}\n\nid: 1-2\nevent: system_health\ndata: {}\n\n",
            json(&a),
            json(&b)
        );
        assert_eq!(sse, expected);
    }

    #[test]
    fn multi_line_bodies_become_several_data_lines() {
        let f = frame(
            "{\"symbol\":\"A\",\r\n\"pattern\":\"P\",\r\"x\":\n1}",
            Offset::new(1, 1),
        );
        let (sse, _) = text(&Outbound::Event(f.clone()));
        let data: Vec<&str> = sse
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .collect();
        assert_eq!(data.len(), 4);
        let joined = data.join("\n");
        let ws: serde_json::Value = serde_json::from_slice(&f.to_json()).unwrap();
        let sse: serde_json::Value = serde_json::from_str(&joined).unwrap();
        assert_eq!(ws, sse);
    }

    #[test]
    fn event_types_stay_on_one_line() {
        let f = frame(r#"{"event_type":"a\nb"}"#, Offset::new(1, 1));
        let (sse, _) = text(&Outbound::Event(f));
        assert!(sse.contains("\nevent: a_b\n"), "{sse}");
    }

    #[test]
    fn messages_are_named_events_without_ids() {
        let gone = ServerMessage::error(ErrorCode::HistoryGone, "too old", Some("sse".into()));
        let (sse, _) = text(&Outbound::Message(gone));
        assert_eq!(
            sse,
            "event: history_gone\ndata: {\"type\":\"error\",\"code\":\"history_gone\",\"message\":\"too old\",\"id\":\"sse\"}\n\n"
        );
        let dropped = ServerMessage::Dropped {
            count: 2,
            since: Offset::new(3, 4),
        };
        let (sse, _) = text(&Outbound::Message(dropped));
        assert_eq!(
            sse,
            "event: dropped\ndata: {\"type\":\"dropped\",\"count\":2,\"since\":\"3-4\"}\n\n"
        );
    }

    #[test]
    fn close_is_the_last_event() {
        let (sse, closed) = text(&Outbound::Close(CloseCode::SlowConsumer));
        assert!(closed);
        assert_eq!(
            sse,
            "event: close\ndata: {\"code\":4008,\"reason\":\"slow consumer\"}\n\n"
        );
    }
}

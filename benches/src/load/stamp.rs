//! How the generator marks each event it publishes: `load_seq` (which
//! event, for the delivery check) and `load_sent_ns` (when, for latency),
//! spliced into the event's JSON template.

use std::io::Write as _;

use bytes::Bytes;

/// Events on their way from the pacer to a sender: templates to stamp as
/// events `first_seq`, `first_seq + 1`, ...
pub(crate) struct Batch {
    pub(crate) first_seq: u32,
    pub(crate) templates: Vec<Bytes>,
}

/// The request body: each template with `"load_seq":N,"load_sent_ns":T,`
/// put first, in an array (or alone when `single`).
pub(crate) fn stamped(batch: &Batch, sent_ns: u64, single: bool) -> Vec<u8> {
    let size: usize = batch.templates.iter().map(|t| t.len() + 48).sum();
    let mut body = Vec::with_capacity(size + 2);
    let array = !(single && batch.templates.len() == 1);
    if array {
        body.push(b'[');
    }
    for (i, template) in batch.templates.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let seq = batch.first_seq + i as u32;
        let _ = write!(body, r#"{{"load_seq":{seq},"load_sent_ns":{sent_ns},"#);
        // Templates are JSON objects with fields: drop their `{`.
        body.extend_from_slice(&template[1..]);
    }
    if array {
        body.push(b']');
    }
    body
}

/// One template stamped as event `seq`, a single object (what one event
/// of a request carries).
pub(crate) fn stamp_one(seq: u32, template: &Bytes, sent_ns: u64) -> Vec<u8> {
    let one = Batch {
        first_seq: seq,
        templates: vec![template.clone()],
    };
    stamped(&one, sent_ns, true)
}

//! How the generator marks each event it publishes: `load_seq` (which
//! event, for the delivery check) and `load_sent_ns` (when, for latency),
//! spliced into the event's JSON template.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

/// Events on their way from the pacer to a sender: templates to stamp as
/// events `first_seq`, `first_seq + 1`, ... A range of the phase's
/// templates, shared: handing a batch over allocates nothing.
pub(crate) struct Batch {
    pub(crate) first_seq: u32,
    all: Arc<[Bytes]>,
    range: Range<usize>,
}

impl Batch {
    /// `templates`, as events `first_seq..`.
    #[cfg(test)]
    pub(crate) fn new(first_seq: u32, templates: Vec<Bytes>) -> Self {
        let range = 0..templates.len();
        Self {
            first_seq,
            all: templates.into(),
            range,
        }
    }

    /// Templates `range` of `all`, which are events `range` (the phase's
    /// templates are in `load_seq` order).
    pub(crate) fn of(all: &Arc<[Bytes]>, range: Range<usize>) -> Self {
        Self {
            first_seq: range.start as u32,
            all: all.clone(),
            range,
        }
    }

    /// The batch's templates.
    pub(crate) fn templates(&self) -> &[Bytes] {
        self.all.get(self.range.clone()).unwrap_or_default()
    }
}

/// The request body: each template with `"load_seq":N,"load_sent_ns":T,`
/// put first, in an array (or alone when `single`).
pub(crate) fn stamped(batch: &Batch, sent_ns: u64, single: bool) -> Vec<u8> {
    let templates = batch.templates();
    let size: usize = templates.iter().map(|t| t.len() + 48).sum();
    let mut body = Vec::with_capacity(size + 2);
    let array = !(single && templates.len() == 1);
    if array {
        body.push(b'[');
    }
    for (i, template) in templates.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        write_stamp(&mut body, batch.first_seq + i as u32, sent_ns);
        // Templates are JSON objects with fields: drop their `{`.
        body.extend_from_slice(&template[1..]);
    }
    if array {
        body.push(b']');
    }
    body
}

/// Appends the stamp that opens an event's body:
/// `{"load_seq":N,"load_sent_ns":T,` (the template's own `{` is left
/// out).
pub(crate) fn write_stamp(out: &mut Vec<u8>, seq: u32, sent_ns: u64) {
    // By hand: `write!` was a twentieth of a sender's CPU.
    out.extend_from_slice(br#"{"load_seq":"#);
    push_number(out, u64::from(seq));
    out.extend_from_slice(br#","load_sent_ns":"#);
    push_number(out, sent_ns);
    out.push(b',');
}

/// Appends `n` in decimal.
pub(crate) fn push_number(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// One template stamped as event `seq`, a single object (what one event
/// of a request carries).
pub(crate) fn stamp_one(seq: u32, template: &Bytes, sent_ns: u64) -> Vec<u8> {
    let body = template.get(1..).unwrap_or_default();
    let mut one = Vec::with_capacity(body.len() + 48);
    write_stamp(&mut one, seq, sent_ns);
    one.extend_from_slice(body);
    one
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_stamps_are_written_as_decimal() {
        let mut out = Vec::new();
        for n in [0, 7, 10, 12_345, u64::MAX] {
            out.clear();
            push_number(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        out.clear();
        write_stamp(&mut out, 42, 1_700_000_000_000_000_001);
        assert_eq!(
            out,
            br#"{"load_seq":42,"load_sent_ns":1700000000000000001,"#
        );
    }
}

//! [`subs_field`]: the `subs` field of an `event` frame.

use bytes::Bytes;

use crate::model::SubId;

/// The field of a frame matching no subscription (a broadcast).
const NO_SUBS: &[u8] = br#","subs":[]"#;

/// `,"subs":[<ids>]`: the `subs` field of the frames for a recipient whose
/// matching subscriptions are `subs`, as it follows an event's `data`.
pub fn subs_field(subs: &[SubId]) -> Bytes {
    if subs.is_empty() {
        return Bytes::from_static(NO_SUBS);
    }
    let ids: usize = subs.iter().map(|id| id.len() + 3).sum();
    let mut out = Vec::with_capacity(NO_SUBS.len() + ids);
    out.extend_from_slice(&NO_SUBS[..NO_SUBS.len() - 1]);
    for (i, id) in subs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Sub ids are client strings: escape them properly. Writing into
        // a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut out, &**id);
    }
    out.push(b']');
    out.into()
}

/// The length of [`subs_field`]`(subs)`, counted without building it.
pub(crate) fn subs_field_len(subs: &[SubId]) -> usize {
    let ids = subs
        .iter()
        .fold(0usize, |sum, id| sum.saturating_add(json_len(&**id)));
    // The field's name and brackets, the commas between ids.
    (NO_SUBS.len() + subs.len().saturating_sub(1)).saturating_add(ids)
}

/// The length of `value` as JSON, counted without building the text.
pub(crate) fn json_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Only a failing writer or a non-string map key can make serde_json
    // fail; this writer never fails and these types have neither.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_is_json_and_its_length_is_counted_exactly() {
        let cases: [&[SubId]; 3] = [
            &[],
            &["s1".into()],
            &["s1".into(), "a\"b\\c\n\u{1}é".into(), "".into()],
        ];
        for subs in cases {
            let field = subs_field(subs);
            assert_eq!(subs_field_len(subs), field.len(), "{subs:?}");
            let object = [b"{\"a\":1".as_slice(), &field, b"}"].concat();
            let v: serde_json::Value = serde_json::from_slice(&object).unwrap();
            let ids: Vec<&str> = subs.iter().map(|s| &**s).collect();
            assert_eq!(v["subs"], serde_json::json!(ids));
        }
    }
}

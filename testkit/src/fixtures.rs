//! The fixtures of `testdata/fixtures/` (see its README): TickStockPL
//! events an ingest must accept, and malformed bodies it must reject.
//! They are committed with the code, so a fresh clone tests the same data
//! as every other checkout.
//!
//! The fixtures are part of the contract: a missing or malformed fixture
//! file fails the test (panics with its path), it never skips it.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// File of the good events, in [`fixtures_dir`].
pub const GOOD_EVENTS_FILE: &str = "tickstockpl_events.jsonl";
/// File of the bad events, in [`fixtures_dir`].
pub const BAD_EVENTS_FILE: &str = "bad_events.jsonl";

/// The fixtures directory, `testdata/fixtures/` of the workspace.
///
/// Located from this crate's manifest rather than the working directory,
/// because cargo runs each crate's tests from that crate's own directory.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("testdata").join("fixtures")
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    let testkit = Path::new(env!("CARGO_MANIFEST_DIR"));
    testkit.parent().unwrap_or(testkit).to_path_buf()
}

/// One line of `tickstockpl_events.jsonl`: an event as TickStockPL
/// publishes it.
#[derive(Debug, Clone, PartialEq)]
pub struct GoodEvent {
    /// The Redis channel (or routing key) it is published on.
    pub channel: String,
    /// The published JSON.
    pub body: Value,
    /// [`body`](Self::body) serialized: the bytes to publish.
    pub raw: Vec<u8>,
}

impl GoodEvent {
    /// Private events (those with a `user_id`) reach only their user's
    /// connections, not an anonymous client.
    pub fn is_private(&self) -> bool {
        self.body.get("user_id").is_some()
    }
}

/// Every good event, in file order (5,000 of them).
pub fn good_events() -> Vec<GoodEvent> {
    read_lines(GOOD_EVENTS_FILE, |line| {
        let body = line.get("body").ok_or("no `body`")?.clone();
        Ok(GoodEvent {
            channel: string_field(line, "channel")?,
            raw: serde_json::to_vec(&body).map_err(|e| e.to_string())?,
            body,
        })
    })
}

/// One line of `bad_events.jsonl`: a body an ingest must reject (and count)
/// without stopping.
#[derive(Debug, Clone, PartialEq)]
pub struct BadEvent {
    /// The channel it is published on.
    pub channel: String,
    /// The bytes to publish: the fixture's `raw` text as latin-1 when every
    /// character is below 256 (so the lone 0xFF stays invalid UTF-8), else
    /// as UTF-8.
    pub raw: Vec<u8>,
    /// What is wrong with it, in words (the fixture's `why`).
    pub why: String,
}

impl BadEvent {
    /// The rejection reason code (`DecodeError::reason` of tickcast-core)
    /// this fixture must get, from its [`why`](Self::why).
    ///
    /// # Panics
    ///
    /// On a `why` not known here, so a new fixture line gets its
    /// expectation written down.
    pub fn expected_reason(&self) -> &'static str {
        match self.why.as_str() {
            "not JSON" | "empty body" => "not_json",
            "pattern event without symbol" | "pattern event without pattern" => "missing_field",
            "confidence out of range" => "confidence_out_of_range",
            "confidence not a number" => "wrong_type",
            "unknown tier" => "unknown_tier",
            "unknown priority" => "unknown_priority",
            "array, not an object" => "not_an_object",
            "symbol too long" => "too_long",
            "invalid UTF-8 byte" => "not_utf8",
            "oversized body (> 1 MiB)" => "too_large",
            "deeply nested JSON" => "too_deep",
            other => panic!("{BAD_EVENTS_FILE}: no expected reason for {other:?}; add it here"),
        }
    }
}

/// Every bad event, in file order.
pub fn bad_events() -> Vec<BadEvent> {
    read_lines(BAD_EVENTS_FILE, |line| {
        let text = string_field(line, "raw")?;
        let raw = if text.chars().all(|c| u32::from(c) < 256) {
            text.chars().map(|c| u32::from(c) as u8).collect()
        } else {
            text.into_bytes()
        };
        Ok(BadEvent {
            channel: string_field(line, "channel")?,
            raw,
            why: string_field(line, "why")?,
        })
    })
}

/// Parses each non-blank line of fixture `name` as JSON and maps it with
/// `parse`; panics with the path (and line) on any failure.
fn read_lines<T>(name: &str, parse: impl Fn(&Value) -> Result<T, String>) -> Vec<T> {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| e.to_string())
                .and_then(|v| parse(&v))
                .unwrap_or_else(|e| panic!("fixture {}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// The string `field` of a fixture line.
fn string_field(line: &Value, field: &str) -> Result<String, String> {
    line.get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no string `{field}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clone holds everything its tests read: the fixtures resolve to a
    /// directory inside the workspace, never beside it.
    #[test]
    fn fixtures_live_inside_the_workspace() {
        let root = workspace_root().canonicalize().unwrap();
        let dir = fixtures_dir().canonicalize().unwrap();
        assert!(
            dir.starts_with(&root),
            "{} is outside the workspace {}",
            dir.display(),
            root.display()
        );
        for name in [GOOD_EVENTS_FILE, BAD_EVENTS_FILE, "README.md"] {
            assert!(
                dir.join(name).is_file(),
                "{name} missing in {}",
                dir.display()
            );
        }
    }

    #[test]
    fn good_events_keep_their_body() {
        let events = good_events();
        assert_eq!(events.len(), 5000);
        for event in events.iter().take(50) {
            let reparsed: Value = serde_json::from_slice(&event.raw).unwrap();
            assert_eq!(reparsed, event.body);
        }
        assert!(events.iter().any(GoodEvent::is_private));
    }

    #[test]
    fn every_bad_event_has_an_expected_reason() {
        let bad = bad_events();
        assert!(bad.len() >= 13);
        for event in &bad {
            event.expected_reason();
        }
        // The lone 0xFF arrives as one byte, not as UTF-8 "ÿ".
        let utf8 = bad.iter().find(|e| e.why == "invalid UTF-8 byte").unwrap();
        assert_eq!(utf8.raw, b"\xff{}");
    }
}

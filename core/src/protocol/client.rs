//! Client -> server operations.

use serde::Deserialize;

use super::server::ErrorCode;
use crate::model::{Filter, Offset};

/// One operation sent by a client (a WebSocket text frame).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientOp {
    /// Adds or replaces subscription `id`.
    Subscribe {
        /// Client-chosen id, echoed in `subs`.
        id: String,
        /// What to receive.
        #[serde(default)]
        filter: Filter,
        /// Replay matching history after this offset first.
        #[serde(default)]
        since: Option<Offset>,
    },
    /// Removes subscription `id`.
    Unsubscribe {
        /// The subscription.
        id: String,
    },
    /// Asks for a `pong` with the same `ts`.
    Ping {
        /// Opaque client value.
        #[serde(default)]
        ts: Option<serde_json::Value>,
    },
}

/// A frame that is not a valid operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    /// `bad_request` for malformed frames and filters.
    pub code: ErrorCode,
    /// What was wrong, for the client.
    pub message: String,
    /// The subscription id, when the frame named one.
    pub id: Option<String>,
}

impl ClientOp {
    /// Parses one text frame. Every failure is a [`ProtocolError`] that the
    /// transport answers with an `error` frame, keeping the connection.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        serde_json::from_str(text).map_err(|e| ProtocolError {
            code: ErrorCode::BadRequest,
            message: e.to_string(),
            id: id_of(text),
        })
    }
}

/// The `id` of a frame that failed to parse as a whole, so the error can
/// name the subscription it concerns.
fn id_of(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    serde_json::from_str::<IdOnly>(text).ok()?.id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_ops() {
        let op = ClientOp::parse(
            r#"{"op":"subscribe","id":"s1","filter":{"symbols":["AAPL"]},"since":"5-7"}"#,
        )
        .unwrap();
        match op {
            ClientOp::Subscribe { id, filter, since } => {
                assert_eq!(id, "s1");
                assert_eq!(filter.list("symbols"), ["AAPL"]);
                assert_eq!(since, Some(Offset::new(5, 7)));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            ClientOp::parse(r#"{"op":"unsubscribe","id":"s1"}"#).unwrap(),
            ClientOp::Unsubscribe { id: "s1".into() }
        );
        assert!(matches!(
            ClientOp::parse(r#"{"op":"ping","ts":123}"#).unwrap(),
            ClientOp::Ping { ts: Some(_) }
        ));
    }

    #[test]
    fn bad_frames_are_bad_requests_naming_the_id() {
        for bad in [
            "not json",
            r#"{"op":"dance"}"#,
            r#"{"op":"subscribe"}"#,
            r#"{"op":"subscribe","id":"s9","since":"yesterday"}"#,
        ] {
            let err = ClientOp::parse(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadRequest, "{bad}");
        }
        // A filter that is not a JSON object of lists, numbers and words;
        // what its keys mean is the schema's to judge, at subscribe.
        let err = ClientOp::parse(r#"{"op":"subscribe","id":"s9","filter":{"x":{}}}"#).unwrap_err();
        assert_eq!(err.id.as_deref(), Some("s9"));
    }
}

//! Server -> client messages other than events, error codes and close codes.

use bytes::Bytes;
use serde::Serialize;

use crate::model::Offset;

/// Machine-readable error codes of `error` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, unknown op, bad filter.
    BadRequest,
    /// Unsubscribe of an id the connection does not hold.
    UnknownSubscription,
    /// `since` is older than the history (the subscription continues live).
    HistoryGone,
    /// A frame over `max_frame_bytes`.
    FrameTooLarge,
    /// The filter asks for tiers the token does not grant.
    Forbidden,
    /// A limit (subscriptions per connection, connections per user) is hit.
    LimitExceeded,
    /// The connection could not keep up and is being closed (4008).
    SlowConsumer,
    /// Missing or invalid token (4001).
    Unauthorized,
    /// The token expired (4002).
    TokenExpired,
    /// The server is shutting down and takes no new connection (1001).
    ShuttingDown,
    /// The server is still loading its history and takes no connection
    /// yet (1013); try again shortly.
    Starting,
}

impl ErrorCode {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownSubscription => "unknown_subscription",
            Self::HistoryGone => "history_gone",
            Self::FrameTooLarge => "frame_too_large",
            Self::Forbidden => "forbidden",
            Self::LimitExceeded => "limit_exceeded",
            Self::SlowConsumer => "slow_consumer",
            Self::Unauthorized => "unauthorized",
            Self::TokenExpired => "token_expired",
            Self::ShuttingDown => "shutting_down",
            Self::Starting => "starting",
        }
    }
}

/// Why the server closes a connection; the WebSocket close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the peer was silent for longer than the idle timeout.
    Idle,
    /// 1001: the server is shutting down.
    GoingAway,
    /// 1003: the client sent a binary frame.
    Unsupported,
    /// 1007: a text frame that is not UTF-8 (RFC 6455 section 8.1).
    InvalidUtf8,
    /// 1009: a frame too large to skip.
    TooBig,
    /// 1013: try again later (the node is loading its history).
    TryAgainLater,
    /// 4001: missing or invalid token.
    Unauthorized,
    /// 4002: the token expired.
    TokenExpired,
    /// 4008: the client does not read fast enough.
    SlowConsumer,
    /// 4009: a limit was exceeded.
    LimitExceeded,
}

impl CloseCode {
    /// The numeric close code.
    pub fn code(self) -> u16 {
        match self {
            Self::Idle => 1000,
            Self::GoingAway => 1001,
            Self::Unsupported => 1003,
            Self::InvalidUtf8 => 1007,
            Self::TooBig => 1009,
            Self::TryAgainLater => 1013,
            Self::Unauthorized => 4001,
            Self::TokenExpired => 4002,
            Self::SlowConsumer => 4008,
            Self::LimitExceeded => 4009,
        }
    }

    /// The close reason text.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Idle => "idle timeout",
            Self::GoingAway => "server shutting down",
            Self::Unsupported => "binary frames are not supported",
            Self::InvalidUtf8 => "invalid utf-8",
            Self::TooBig => "frame too large",
            Self::TryAgainLater => "try again later",
            Self::Unauthorized => "unauthorized",
            Self::TokenExpired => "token expired",
            Self::SlowConsumer => "slow consumer",
            Self::LimitExceeded => "limit exceeded",
        }
    }
}

/// A server message that is not an event (those are pre-encoded frames).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMessage {
    /// First frame of a connection.
    Welcome {
        /// Connection id (`c-17`).
        conn: String,
        /// User id, `null` when anonymous.
        user: Option<String>,
        /// Latest offset of the history, for a later `since`.
        offset: Option<Offset>,
        /// `tickcast/<version>`.
        server: &'static str,
    },
    /// A subscribe succeeded; `recovered` events are replayed next.
    Subscribed {
        /// The subscription.
        id: String,
        /// How many history events follow.
        recovered: usize,
    },
    /// An unsubscribe succeeded.
    Unsubscribed {
        /// The subscription.
        id: String,
    },
    /// Events were dropped (rate limit or slow consumer); resume with
    /// `since` to get them back.
    Dropped {
        /// How many.
        count: u64,
        /// Resume point: the offset just before the first dropped event.
        since: Offset,
    },
    /// Answer to `ping`.
    Pong {
        /// The client's `ts`.
        #[serde(skip_serializing_if = "Option::is_none")]
        ts: Option<serde_json::Value>,
    },
    /// Something went wrong; the connection stays unless a close follows.
    Error {
        /// Machine-readable code.
        code: ErrorCode,
        /// Human-readable explanation.
        message: String,
        /// The subscription concerned, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
}

impl ServerMessage {
    /// An `error` message.
    pub fn error(code: ErrorCode, message: impl Into<String>, id: Option<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
            id,
        }
    }

    /// The JSON text of this message.
    pub fn to_json(&self) -> Bytes {
        // Serializing these plain enums cannot fail.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_documented_shape() {
        let cases = [
            (
                ServerMessage::Subscribed {
                    id: "s1".into(),
                    recovered: 0,
                },
                r#"{"type":"subscribed","id":"s1","recovered":0}"#,
            ),
            (
                ServerMessage::Dropped {
                    count: 3,
                    since: Offset::new(1, 2),
                },
                r#"{"type":"dropped","count":3,"since":"1-2"}"#,
            ),
            (
                ServerMessage::error(ErrorCode::HistoryGone, "too old", Some("s1".into())),
                r#"{"type":"error","code":"history_gone","message":"too old","id":"s1"}"#,
            ),
            (
                ServerMessage::Pong {
                    ts: Some(123.into()),
                },
                r#"{"type":"pong","ts":123}"#,
            ),
        ];
        for (msg, json) in cases {
            assert_eq!(msg.to_json(), json.as_bytes());
        }
    }
}

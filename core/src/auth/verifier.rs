//! [`TokenVerifier`]: the seam between a session and whatever says who a
//! client is.
//!
//! A session hands the token its client presented (see
//! [`presented_token`](super::presented_token)) to the verifier of its
//! [`SessionConfig`](crate::session::SessionConfig) and gets an
//! [`Identity`] back: the user, when the credential expires (the session
//! closes then) and the tiers the user may receive. The JWT
//! `Authenticator` (cargo feature `jwt`) is one
//! implementation; an embedder with API keys, opaque session tokens or a
//! call to its own auth service writes another.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::model::UserId;

/// Who a valid token says the client is.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The user id (a JWT's `sub`).
    pub user: UserId,
    /// When the credential expires (a JWT's `exp`); the session closes
    /// with `token_expired` (4002) then.
    pub expires_at: SystemTime,
    /// The token's other claims. The schema's entitlement claim among them
    /// (TickStock's `tiers`) narrows what the user receives.
    pub claims: Map<String, Value>,
}

impl Identity {
    /// The values listed under `claim`: `None` when the token has no such
    /// claim (or `null`), refused unless it is a list of strings.
    pub fn claim_values(&self, claim: &str) -> Result<Option<Vec<String>>, AuthError> {
        let bad = || AuthError::Invalid(format!("`{claim}` must be a list of strings"));
        match self.claims.get(claim) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(bad()),
        }
    }

    /// Time left before expiry (zero when already expired).
    pub fn time_left(&self) -> Duration {
        self.expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("a token is required")]
    Missing,
    /// The token expired.
    #[error("token expired")]
    Expired,
    /// Bad signature, bad format or bad claims.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The configured key cannot be used.
    #[error("unusable key: {0}")]
    BadKey(String),
}

/// Checks the token a client presented and says who it is.
///
/// Called once per connection, on the transport's accepting task, before
/// the client is registered with the hub: keep it fast and do not block
/// (a verifier that must ask a remote service should cache). The token is
/// client data: refuse what does not parse with [`AuthError::Invalid`],
/// never panic on it.
pub trait TokenVerifier: std::fmt::Debug + Send + Sync + 'static {
    /// Who `token` names, or why it is refused. [`AuthError::Expired`]
    /// closes with `token_expired` (4002), any other error with
    /// `unauthorized` (4001).
    fn verify(&self, token: &str) -> Result<Identity, AuthError>;
}

/// A verifier for the session tests that runs without the `jwt` feature:
/// a fixed table of tokens.
#[cfg(test)]
pub(crate) mod fixed {
    use super::*;

    /// Accepts exactly the tokens it was given.
    #[derive(Debug, Default)]
    pub(crate) struct FixedTokens(Vec<(String, Identity)>);

    impl FixedTokens {
        /// Accepts `token` as `user`, valid for `ttl`, with a `tiers`
        /// claim listing `tiers` when given.
        pub(crate) fn with(
            mut self,
            token: &str,
            user: &str,
            ttl: Duration,
            tiers: Option<Vec<&str>>,
        ) -> Self {
            let mut claims = Map::new();
            if let Some(tiers) = tiers {
                claims.insert("tiers".into(), Value::from(tiers));
            }
            let identity = Identity {
                user: user.into(),
                expires_at: SystemTime::now() + ttl,
                claims,
            };
            self.0.push((token.to_owned(), identity));
            self
        }
    }

    impl TokenVerifier for FixedTokens {
        fn verify(&self, token: &str) -> Result<Identity, AuthError> {
            self.0
                .iter()
                .find(|(known, _)| known == token)
                .map(|(_, identity)| identity.clone())
                .ok_or_else(|| AuthError::Invalid("unknown token".into()))
        }
    }
}

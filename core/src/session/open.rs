//! Identify -> limits -> connect: how every transport admits a client.

use super::SessionConfig;
use crate::auth::{AuthError, Identity};
use crate::hub::ConnectError;
use crate::protocol::{CloseCode, ErrorCode, ServerMessage};
use crate::{Connection, Hub};

/// A client the hub accepted.
#[derive(Debug)]
pub struct Opened {
    /// Its hub connection (welcome already queued).
    pub connection: Connection,
    /// Who it is; `None` when auth is off.
    pub identity: Option<Identity>,
}

/// Why a client was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Auth is on and the token is missing, invalid or expired.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The hub refused the connection (user limit, shutdown, history
    /// still loading).
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

impl OpenError {
    /// The close code a socket transport ends with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::Auth(AuthError::Expired) => CloseCode::TokenExpired,
            Self::Auth(_) => CloseCode::Unauthorized,
            Self::Connect(e) => e.close_code(),
        }
    }

    /// The protocol error code.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::Auth(AuthError::Expired) => ErrorCode::TokenExpired,
            Self::Auth(_) => ErrorCode::Unauthorized,
            Self::Connect(ConnectError::TooManyConnections) => ErrorCode::LimitExceeded,
            Self::Connect(ConnectError::ShuttingDown) => ErrorCode::ShuttingDown,
            Self::Connect(ConnectError::Starting) => ErrorCode::Starting,
        }
    }

    /// The `error` message sent before the close.
    pub fn to_message(&self) -> ServerMessage {
        ServerMessage::error(self.error_code(), self.to_string(), None)
    }
}

/// The client's identity: anonymous when auth is off, else the verified
/// token's.
pub(crate) fn identify(
    config: &SessionConfig,
    token: Option<&str>,
) -> Result<Option<Identity>, AuthError> {
    let Some(auth) = &config.auth else {
        return Ok(None);
    };
    let token = token.ok_or(AuthError::Missing)?;
    auth.verify(token).map(Some)
}

/// Identifies the client by `token`, applies the configured limits (the
/// token's entitlement claim, TickStock's `tiers`, narrowing them) and
/// registers it with `hub`.
pub fn open(hub: &Hub, config: &SessionConfig, token: Option<&str>) -> Result<Opened, OpenError> {
    let identity = identify(config, token)?;
    let mut limits = config
        .limits
        .clone()
        .unwrap_or_else(|| hub.default_limits());
    if let Some(identity) = &identity {
        limits.entitled = entitlement(hub, identity)?.or(limits.entitled);
    }
    let user = identity.as_ref().map(|i| i.user.clone());
    let connection = hub.connect(user, limits)?;
    Ok(Opened {
        connection,
        identity,
    })
}

/// The entitlement bits the token's claim grants; `None` when the schema
/// has no entitlement or the token no such claim. A value outside the
/// dimension's vocabulary refuses the token.
fn entitlement(hub: &Hub, identity: &Identity) -> Result<Option<u64>, AuthError> {
    let schema = &hub.config().schema;
    let Some(ent) = schema.entitlement() else {
        return Ok(None);
    };
    match identity.claim_values(&ent.claim)? {
        None => Ok(None),
        Some(values) => schema
            .entitled(&values)
            .map_err(|e| AuthError::Invalid(format!("`{}`: {e}", ent.claim))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::auth::verifier::fixed::FixedTokens;
    use crate::HubConfig;

    fn with_auth(verifier: FixedTokens) -> SessionConfig {
        SessionConfig {
            auth: Some(Arc::new(verifier)),
            ..SessionConfig::default()
        }
    }

    #[test]
    fn anonymous_when_auth_is_off() {
        let config = SessionConfig::default();
        assert_eq!(identify(&config, Some("whatever")), Ok(None));
        let hub = Hub::new(HubConfig::immediate());
        let opened = open(&hub, &config, None).unwrap();
        assert_eq!(opened.connection.handle.user(), None);
    }

    #[test]
    fn a_missing_token_is_refused_with_4001() {
        let config = with_auth(FixedTokens::default());
        let hub = Hub::new(HubConfig::immediate());
        let err = open(&hub, &config, None).unwrap_err();
        assert_eq!(err, OpenError::Auth(AuthError::Missing));
        assert_eq!(err.close_code(), CloseCode::Unauthorized);
        assert_eq!(err.error_code(), ErrorCode::Unauthorized);
        let unknown = open(&hub, &config, Some("nobody")).unwrap_err();
        assert_eq!(unknown.close_code(), CloseCode::Unauthorized);
    }

    #[test]
    fn the_verified_user_owns_the_connection_and_its_tiers_narrow_the_limits() {
        let verifier = FixedTokens::default()
            .with("t1", "u1", Duration::from_secs(60), Some(vec!["daily"]))
            .with(
                "weekly",
                "u2",
                Duration::from_secs(60),
                Some(vec!["weekly"]),
            );
        let config = with_auth(verifier);
        let hub = Hub::new(HubConfig::immediate());
        let opened = open(&hub, &config, Some("t1")).unwrap();
        assert_eq!(opened.connection.handle.user().map(|u| &**u), Some("u1"));
        let tier = hub.config().schema.entitled(&["daily".into()]).unwrap();
        assert_eq!(opened.connection.handle.limits().entitled, tier);
        // A tier the schema does not know refuses the token.
        let refused = open(&hub, &config, Some("weekly")).unwrap_err();
        assert_eq!(refused.close_code(), CloseCode::Unauthorized);
    }

    #[test]
    fn a_full_user_is_refused_with_4009() {
        let err = OpenError::Connect(ConnectError::TooManyConnections);
        assert_eq!(err.close_code(), CloseCode::LimitExceeded);
        assert_eq!(err.error_code(), ErrorCode::LimitExceeded);
    }
}

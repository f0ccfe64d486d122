//! Tokens for tests of authenticated transports.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// `claims` signed with HS256 and `secret`.
pub fn hs256(secret: &[u8], claims: &Value) -> String {
    use jsonwebtoken::{encode, EncodingKey, Header};
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing of JSON claims cannot fail")
}

/// A token for `user` valid for ten minutes.
pub fn user_token(secret: &[u8], user: &str) -> String {
    hs256(secret, &json!({"sub": user, "exp": now_s() + 600}))
}

/// Seconds since the Unix epoch.
pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

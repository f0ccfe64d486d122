//! [`Authenticator`]: JWT verification shared by every transport, the
//! [`TokenVerifier`] of cargo feature `jwt`.
//!
//! `sub` is the user id; `exp` is required and enforced at connect time
//! (transports also close the connection when it passes); `nbf`, when
//! present, must have passed; every other claim is kept in
//! [`Identity::claims`] (the schema's entitlement claim, e.g. `tiers`, is
//! read from there). Both times allow [`CLOCK_LEEWAY_SECS`] of clock skew.
//!
//! Every claim is client data: a time that does not fit
//! [`SystemTime`](std::time::SystemTime) is refused as
//! [`AuthError::Invalid`], never computed with.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::verifier::{AuthError, Identity, TokenVerifier};
use serde_json::{Map, Value};

/// Clock skew tolerated on `exp` and `nbf`, in seconds: a token is accepted
/// until `exp + leeway` and from `nbf - leeway`. Zero: issuers and this
/// server are expected to run NTP, and a token that is expired by the
/// server's clock is refused at once.
pub const CLOCK_LEEWAY_SECS: u64 = 0;

/// The claims tickcast reads. jsonwebtoken checks `exp` and `nbf` against
/// the clock but skips a malformed `nbf`; declaring both here refuses a
/// token whose times are not integer seconds.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    /// Read for its type only: jsonwebtoken compares it with the clock.
    #[serde(default, rename = "nbf")]
    _nbf: Option<u64>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// Verifies tokens with one key: an HS256 secret or an RS256/ES256 public
/// key.
#[derive(Clone)]
pub struct Authenticator {
    key: Arc<DecodingKey>,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::with(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    /// RS256 or ES256 with a PEM public key (the algorithm follows the key).
    pub fn from_public_key_pem(pem: &[u8]) -> Result<Self, AuthError> {
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(Self::with(key, Algorithm::RS256));
        }
        DecodingKey::from_ec_pem(pem)
            .map(|key| Self::with(key, Algorithm::ES256))
            .map_err(|e| AuthError::BadKey(e.to_string()))
    }

    fn with(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.leeway = CLOCK_LEEWAY_SECS;
        validation.validate_nbf = true;
        Self {
            key: Arc::new(key),
            validation,
        }
    }

    /// Checks `token` and returns who it names.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let data =
            decode::<Claims>(token, &self.key, &self.validation).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                    AuthError::Invalid("the token is not valid yet (`nbf`)".into())
                }
                _ => AuthError::Invalid(e.to_string()),
            })?;
        let claims = data.claims;
        if claims.sub.is_empty() || claims.sub.chars().count() > crate::model::MAX_NAME_CHARS {
            return Err(AuthError::Invalid(
                "`sub` must be 1 to 128 characters".into(),
            ));
        }
        // `UNIX_EPOCH + Duration` panics past the platform's SystemTime
        // range (2^63 s on Unix); a signed token may still say so.
        let expires_at = UNIX_EPOCH
            .checked_add(Duration::from_secs(claims.exp))
            .ok_or_else(|| AuthError::Invalid("`exp` is out of range".into()))?;
        Ok(Identity {
            user: claims.sub.into(),
            expires_at,
            claims: claims.rest,
        })
    }
}

impl TokenVerifier for Authenticator {
    fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        Authenticator::verify(self, token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;
    use std::time::SystemTime;

    fn token(claims: serde_json::Value, secret: &[u8]) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn accepts_valid_tokens_and_reads_entitlements() {
        let auth = Authenticator::hs256(b"secret");
        let id = auth
            .verify(&token(
                json!({"sub":"u1","exp":now()+60,"tiers":["daily"]}),
                b"secret",
            ))
            .unwrap();
        assert_eq!(&*id.user, "u1");
        assert_eq!(id.claim_values("tiers"), Ok(Some(vec!["daily".to_owned()])));
        assert!(id.time_left() > Duration::from_secs(30));
    }

    /// A throwaway P-256 key pair, made for this test with openssl.
    const EC_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgRxpY7VwzsulbiklU
LiXppWJuHBR8TX77v8STbK7LvjOhRANCAAQDMM5anrDGluY3m9dx9yl2wNzjDpnp
ICgbRUzhoDvbaLxAXOtD7e2qzSIc9wq3vHjiY26PDbky+vldZG1rWy8V
-----END PRIVATE KEY-----
";
    const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAzDOWp6wxpbmN5vXcfcpdsDc4w6Z
6SAoG0VM4aA722i8QFzrQ+3tqs0iHPcKt7x44mNujw25Mvr5XWRta1svFQ==
-----END PUBLIC KEY-----
";

    #[test]
    fn verifies_es256_tokens_with_a_public_key() {
        let auth = Authenticator::from_public_key_pem(EC_PUBLIC.as_bytes()).unwrap();
        let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
        let claims = json!({"sub":"u2","exp":now()+60});
        let signed = encode(&Header::new(Algorithm::ES256), &claims, &key).unwrap();
        assert_eq!(&*auth.verify(&signed).unwrap().user, "u2");
        // An HS256 token is not accepted by an ES256 verifier.
        assert!(auth.verify(&token(claims, b"secret")).is_err());
    }

    #[test]
    fn refuses_times_beyond_system_time_instead_of_panicking() {
        let auth = Authenticator::hs256(b"secret");
        for exp in [1u64 << 63, u64::MAX, (1 << 63) + 12345] {
            let huge = token(json!({"sub":"u1","exp":exp}), b"secret");
            assert!(
                matches!(auth.verify(&huge), Err(AuthError::Invalid(_))),
                "exp {exp}"
            );
        }
        // Far but representable: accepted, with a time left that does not
        // overflow either.
        let far = token(json!({"sub":"u1","exp":1u64 << 40}), b"secret");
        assert!(auth.verify(&far).unwrap().time_left() > Duration::from_secs(1 << 39));
        let huge_nbf = token(json!({"sub":"u1","exp":now()+60,"nbf":u64::MAX}), b"secret");
        assert!(matches!(auth.verify(&huge_nbf), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn validates_nbf_with_the_same_leeway_as_exp() {
        let auth = Authenticator::hs256(b"secret");
        let leeway = CLOCK_LEEWAY_SECS;
        let early = token(
            json!({"sub":"u1","exp":now()+600,"nbf":now()+leeway+120}),
            b"secret",
        );
        let err = auth.verify(&early).unwrap_err();
        assert!(
            matches!(&err, AuthError::Invalid(m) if m.contains("nbf")),
            "{err}"
        );
        let started = token(json!({"sub":"u1","exp":now()+600,"nbf":now()-5}), b"secret");
        assert_eq!(&*auth.verify(&started).unwrap().user, "u1");
        // Malformed times are refused, not skipped.
        for nbf in [json!("soon"), json!(-1), json!(1.5), json!(null)] {
            let bad = token(json!({"sub":"u1","exp":now()+600,"nbf":nbf}), b"secret");
            let verdict = auth.verify(&bad);
            if nbf.is_null() {
                assert!(verdict.is_ok(), "null nbf means absent");
            } else {
                assert!(matches!(verdict, Err(AuthError::Invalid(_))), "nbf {nbf}");
            }
        }
        for exp in [json!(-1), json!("later"), json!(1e30)] {
            let bad = token(json!({"sub":"u1","exp":exp}), b"secret");
            assert!(auth.verify(&bad).is_err(), "exp {exp}");
        }
    }

    #[test]
    fn refuses_bad_signatures_expiry_and_claims() {
        let auth = Authenticator::hs256(b"secret");
        let wrong = token(json!({"sub":"u1","exp":now()+60}), b"other");
        assert!(matches!(auth.verify(&wrong), Err(AuthError::Invalid(_))));
        let expired = token(json!({"sub":"u1","exp":now()-5}), b"secret");
        assert_eq!(auth.verify(&expired), Err(AuthError::Expired));
        let no_exp = token(json!({"sub":"u1"}), b"secret");
        assert!(auth.verify(&no_exp).is_err());
        assert!(auth.verify("garbage").is_err());
        assert!(Authenticator::from_public_key_pem(b"not a key").is_err());
    }
}

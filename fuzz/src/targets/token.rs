//! Target `token`: JWTs through [`Authenticator::verify`] (HS256), the
//! check every transport and the HTTP API run on a client's token.
//!
//! Input: `<header JSON>\n<claims JSON>`, or just the claims (the header is
//! then `{"alg":"HS256","typ":"JWT"}`); both are base64url-encoded as they
//! are and the token is signed with the verifier's key, so arbitrary claim
//! bytes get past the signature check. An input starting with `raw:` is a
//! token as is (not signed here).
//!
//! Properties: `verify` returns, never panics, and its identity's
//! `time_left` does not either; a token is accepted only with a signed
//! header naming HS256, a string `sub` of 1 to 128 characters equal to the
//! identity's user, an `exp` that is a number not more than an hour past,
//! no `nbf` more than an hour ahead, and `tiers` as the identity says.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::{Result, Unstructured};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::value::RawValue;
use serde_json::Value;
use tickcast_core::auth::Authenticator;

use crate::gen::{self, Field};
use crate::Target;

/// The target.
pub const TARGET: Target = Target {
    name: "token",
    about: "Authenticator::verify on HS256-signed tokens with arbitrary header and claims",
    run,
    generate,
    built_seeds: Vec::new,
    dictionary: &[
        "\"exp\":",
        "\"nbf\":",
        "\"sub\":",
        "\"tiers\":",
        "\"alg\":",
        "\"HS256\"",
        "\"none\"",
        "9223372036854775808",
        "18446744073709551615",
        "1e400",
        "\n",
        "raw:",
    ],
};

/// The verifier's secret.
const SECRET: &[u8] = b"tickcast-fuzz-secret";
/// The header tokens get when the input has none.
const DEFAULT_HEADER: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;
/// Leeway the properties allow around now, far more than any clock skew
/// setting: the properties hold whatever leeway the verifier uses.
const SLACK_S: f64 = 3600.0;

/// Runs one input.
pub fn run(data: &[u8]) {
    let auth = Authenticator::hs256(SECRET);
    let (token, parts) = match data.strip_prefix(b"raw:") {
        Some(raw) => (String::from_utf8_lossy(raw).into_owned(), None),
        None => {
            let (header, claims) = match data.iter().position(|&b| b == b'\n') {
                Some(at) => (&data[..at], &data[at + 1..]),
                None => (DEFAULT_HEADER, data),
            };
            (sign(header, claims), Some((header, claims)))
        }
    };
    let Ok(identity) = auth.verify(&token) else {
        return;
    };
    // Accepted: the token must be one this input signed, and valid.
    let Some((header, claims)) = parts else {
        panic!("accepted a token the verifier's key did not sign: {token:?}");
    };
    let _ = identity.time_left();
    // Read lossily: serde_json skips the strings of fields it ignores
    // without checking their UTF-8, so a verifier built on it does too.
    // Raw values here too: a header field the verifier ignores may hold
    // `1e400` (seen: `"crit":[1e400]`).
    let header = String::from_utf8_lossy(header);
    let header: BTreeMap<String, &RawValue> = match serde_json::from_str(&header) {
        Ok(header) => header,
        Err(e) => panic!("accepted a header that is not a JSON object: {e}"),
    };
    let alg = header
        .get("alg")
        .and_then(|alg| serde_json::from_str::<String>(alg.get()).ok());
    assert_eq!(alg.as_deref(), Some("HS256"), "accepted alg {alg:?}");
    // Raw values: claims the verifier does not read may hold numbers no
    // `Value` can (`1e400`) and still be valid JSON.
    let claims = String::from_utf8_lossy(claims);
    let claims: BTreeMap<String, &RawValue> = match serde_json::from_str(&claims) {
        Ok(claims) => claims,
        Err(e) => panic!("accepted claims that are not a JSON object: {e}"),
    };
    let claim = |name: &str| {
        claims
            .get(name)
            .map(|raw| raw.get())
            .filter(|raw| *raw != "null")
    };
    let sub: String = claim("sub")
        .and_then(|raw| serde_json::from_str(raw).ok())
        .unwrap_or_default();
    assert_eq!(&*identity.user, sub, "user is not `sub`");
    assert!((1..=128).contains(&sub.chars().count()), "sub {sub:?}");
    let now = now_s();
    let Some(exp) = claim("exp").and_then(numeric_date) else {
        panic!("accepted `exp` {:?}", claim("exp"));
    };
    assert!(exp + SLACK_S > now, "accepted exp {exp}, now {now}");
    if let Some(nbf) = claim("nbf") {
        // RFC 7519: a NumericDate, which may have a fraction. One that
        // is not a number cannot be honoured, so it cannot be accepted.
        let Some(nbf) = numeric_date(nbf) else {
            panic!("accepted `nbf` {nbf}, not a NumericDate");
        };
        assert!(nbf - SLACK_S < now, "accepted nbf {nbf}, now {now}");
    }
    // Every other claim is kept as sent, for the schema's entitlement.
    let kept = identity.claims.get("tiers").filter(|v| !v.is_null());
    let sent = claim("tiers").and_then(|raw| serde_json::from_str::<Value>(raw).ok());
    assert_eq!(kept, sent.as_ref().filter(|v| !v.is_null()), "tiers");
}

/// A JSON number as seconds since the epoch.
fn numeric_date(raw: &str) -> Option<f64> {
    serde_json::from_str::<f64>(raw)
        .ok()
        .filter(|n| n.is_finite())
}

/// `header.claims.signature` with both parts base64url-encoded as given.
fn sign(header: &[u8], claims: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = EncodingKey::from_secret(SECRET);
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap_or_default();
    format!("{message}.{signature}")
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// Claims with times around now and at the edges of `u64`/`i64`/`f64`,
/// odd `sub`s and `tiers`, and headers naming other algorithms or
/// carrying extra fields.
pub fn generate(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let now = now_s() as u64;
    let time = |u: &mut Unstructured<'_>| -> Result<Field> {
        Ok(match u.int_in_range(0..=4)? {
            0 | 1 => {
                let offset =
                    *u.choose(&[-7200i64, -3601, -61, -1, 0, 1, 59, 61, 600, 3601, 7200])?;
                Field::Json(Value::from(now.saturating_add_signed(offset)))
            }
            2 => Field::Json(Value::from(
                now as f64 + f64::from(u.int_in_range(-100..=100)?) + 0.5,
            )),
            _ => gen::numeric_field(u)?,
        })
    };
    let mut claims = Vec::new();
    if u.ratio(15, 16)? {
        claims.push(("sub".to_owned(), gen::string_field(u)?));
    }
    if u.ratio(15, 16)? {
        claims.push(("exp".to_owned(), time(u)?));
    }
    if u.ratio(1, 3)? {
        claims.push(("nbf".to_owned(), time(u)?));
    }
    if u.ratio(1, 4)? {
        claims.push(("iat".to_owned(), time(u)?));
    }
    if u.ratio(1, 3)? {
        let tiers = match u.int_in_range(0..=3)? {
            0 => Value::Array(vec![]),
            1 => serde_json::json!(["daily", "combo"]),
            2 => Value::Array(vec![Value::from(gen::string(u)?)]),
            _ => gen::value(u, 3)?,
        };
        claims.push(("tiers".to_owned(), Field::Json(tiers)));
    }
    if u.ratio(1, 6)? {
        claims.push(("x".to_owned(), Field::Raw(gen::nested(u, "0")?)));
    }
    if u.ratio(1, 8)? {
        claims.push((gen::string(u)?, Field::Json(gen::value(u, 3)?)));
    }
    let claims = gen::object_text(&claims);
    let header = match u.int_in_range(0..=7)? {
        0 => r#"{"alg":"none","typ":"JWT"}"#.to_owned(),
        1 => r#"{"alg":"HS512","typ":"JWT"}"#.to_owned(),
        2 => r#"{"alg":"RS256"}"#.to_owned(),
        3 => format!(
            r#"{{"alg":"HS256","kid":{},"crit":["exp"]}}"#,
            gen::value(u, 2)?
        ),
        4 => r#"{"alg":"HS256"}"#.to_owned(),
        _ => return Ok(claims.into_bytes()),
    };
    Ok(format!("{header}\n{claims}").into_bytes())
}

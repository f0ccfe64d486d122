//! [`Keys`]: every key of [`Config`] and whether its values are text,
//! derived from the config types rather than listed by hand.
//!
//! [`populated`] is the default configuration with every optional key set;
//! serializing it shows every key, and its string leaves are the keys whose
//! values stay text in the environment (`TICKCAST_API__KEY=12345` is the
//! string "12345", not a number). The tests check it against the fields
//! serde knows, so a new key cannot be missed silently.

use std::collections::BTreeMap;
use std::path::PathBuf;

use figment::value::Value;

use super::{AmqpIngest, Config, RedisIngest};

/// What a key holds, as far as reading it from text is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// A table of further keys (`ingest.amqp`).
    Table,
    /// A string: the text is the value, whatever it looks like.
    Text,
    /// A number, boolean, list or enum-like value parsed from the text.
    Parsed,
}

/// Every key of the configuration, dotted (`ingest.amqp.queue`), with its
/// kind.
#[derive(Debug, Clone)]
pub(crate) struct Keys(BTreeMap<String, KeyKind>);

impl Keys {
    /// The keys of [`Config`], read off [`populated`].
    pub(crate) fn of_config() -> Result<Self, Box<figment::Error>> {
        let mut keys = BTreeMap::new();
        collect("", &Value::serialize(populated())?, &mut keys);
        Ok(Self(keys))
    }

    /// The kind of `key`, or `None` when it is no key of the configuration.
    pub(crate) fn kind(&self, key: &str) -> Option<KeyKind> {
        self.0.get(key).copied()
    }

    /// Every key and its kind, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, KeyKind)> {
        self.0.iter().map(|(key, kind)| (key.as_str(), *kind))
    }

    /// The key (not table) spelled most like `key`, for "did you mean".
    pub(crate) fn closest(&self, key: &str) -> Option<&str> {
        self.iter()
            .filter(|(_, kind)| *kind != KeyKind::Table)
            .map(|(candidate, _)| {
                let score = strsim::normalized_damerau_levenshtein(key, candidate);
                (candidate, score)
            })
            // On a tie the first in order wins, so the answer is stable.
            .fold(
                None,
                |best: Option<(&str, f64)>, (candidate, score)| match best {
                    Some((_, top)) if top >= score => best,
                    _ => Some((candidate, score)),
                },
            )
            .map(|(candidate, _)| candidate)
    }
}

/// Records every key below `value` (a table), prefixed with `prefix`.
fn collect(prefix: &str, value: &Value, keys: &mut BTreeMap<String, KeyKind>) {
    let Value::Dict(_, dict) = value else {
        return;
    };
    for (name, value) in dict {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let kind = match value {
            Value::Dict(..) => KeyKind::Table,
            Value::String(..) => KeyKind::Text,
            _ => KeyKind::Parsed,
        };
        keys.insert(key.clone(), kind);
        collect(&key, value, keys);
    }
}

/// [`Config::default`] with every optional key set, so that serializing it
/// shows every key with a value of its type.
///
/// A new `Option` field (or one skipped when serialized for another
/// reason) must be set here; `config::tests` fails, naming it, until it is.
/// Fields that always serialize need nothing.
pub(crate) fn populated() -> Config {
    let mut config = Config::default();
    config.delivery.replay_capacity = Some(0);
    config.auth.jwt_secret = Some(String::new());
    config.auth.jwt_public_key_file = Some(PathBuf::new());
    config.api.key = Some(String::new());
    config.http.max_pending_connections = Some(0);
    config.ingest.redis = Some(RedisIngest {
        stream_block_ms: Some(0),
        ..RedisIngest::default()
    });
    config.ingest.amqp = Some(AmqpIngest {
        queue: Some(String::new()),
        ..AmqpIngest::default()
    });
    config.schema = Some(tickcast_core::model::schema::tickstock::declaration());
    config
}

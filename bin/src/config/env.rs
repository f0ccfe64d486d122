//! Configuration layers made of `key = value` pairs: `TICKCAST_*`
//! environment variables and command-line flags.
//!
//! figment's own `Env` provider parses every value as a TOML-like literal,
//! so `TICKCAST_API__KEY=12345` would become a number and fail to be a
//! string; here the keys that are strings keep their text as it is, and the
//! others are parsed (numbers, booleans, `[a, b]` lists, `{k = v}` tables).
//! Errors name the variable or flag, not figment's internal key.

use std::ffi::OsString;

use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};

/// Prefix of the configuration's environment variables.
pub const ENV_PREFIX: &str = "TICKCAST_";

/// Separator of nested keys in a variable name
/// (`TICKCAST_DELIVERY__BATCH_WINDOW_MS`).
pub const ENV_SEPARATOR: &str = "__";

/// `TICKCAST_*` variables that are not configuration keys: the test
/// fixtures directory. Every other `TICKCAST_*` variable must name a key.
pub const ENV_IGNORED: &[&str] = &["TICKCAST_FIXTURES"];

/// Name of the environment layer in errors.
const ENV_LAYER: &str = "environment variable";
/// Name of the flags layer in errors.
const FLAG_LAYER: &str = "command-line flag";

/// Keys whose values are strings even when they look like numbers or
/// booleans.
const STRING_KEYS: &[&str] = &[
    "listen",
    "node_id",
    "log_format",
    "auth.jwt_secret",
    "auth.jwt_public_key_file",
    "api.key",
    "ingest.redis.url",
    "ingest.redis.mode",
    "ingest.redis.stream",
    "ingest.amqp.url",
    "ingest.amqp.exchange",
];

/// One configuration layer of dotted keys and values.
pub(crate) struct KeyValues {
    /// Shown in errors: "environment variable", "command-line flag".
    name: &'static str,
    /// Turns a key path back into what the user wrote.
    spell: fn(&[&str]) -> String,
    /// Key path and value, in order (a later one wins).
    entries: Vec<(Vec<String>, Value)>,
    /// Variables that could not be read (not UTF-8).
    unreadable: Vec<String>,
}

impl KeyValues {
    /// The `TICKCAST_*` variables among `vars`.
    pub(crate) fn from_env(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        let mut layer = Self {
            name: ENV_LAYER,
            spell: env_name,
            entries: Vec::new(),
            unreadable: Vec::new(),
        };
        for (name, value) in vars {
            let Some(name) = name.to_str() else { continue };
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if ENV_IGNORED.contains(&name) {
                continue;
            }
            let Some(value) = value.to_str() else {
                layer.unreadable.push(name.to_owned());
                continue;
            };
            let path: Vec<String> = rest
                .split(ENV_SEPARATOR)
                .map(str::to_ascii_lowercase)
                .collect();
            let value = typed_value(&path.join("."), value);
            layer.entries.push((path, value));
        }
        layer
    }

    /// True for the metadata name of a layer of this kind.
    pub(crate) fn is_layer(name: &str) -> bool {
        name == ENV_LAYER || name == FLAG_LAYER
    }

    /// Command-line flags (`--listen` for key `listen`), already typed.
    pub(crate) fn from_flags(flags: Vec<(&'static str, Value)>) -> Self {
        Self {
            name: FLAG_LAYER,
            spell: flag_name,
            entries: flags
                .into_iter()
                .map(|(key, value)| (key.split('.').map(str::to_owned).collect(), value))
                .collect(),
            unreadable: Vec::new(),
        }
    }
}

/// The text of a string key, else the value parsed as figment does.
fn typed_value(key: &str, text: &str) -> Value {
    if STRING_KEYS.contains(&key) {
        return Value::from(text.to_owned());
    }
    match text.parse::<Value>() {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

fn env_name(path: &[&str]) -> String {
    let upper: Vec<String> = path.iter().map(|k| k.to_ascii_uppercase()).collect();
    format!("{ENV_PREFIX}{}", upper.join(ENV_SEPARATOR))
}

fn flag_name(path: &[&str]) -> String {
    format!("--{}", path.join(".").replace('_', "-"))
}

/// Inserts `value` at `path`, creating or extending tables on the way.
fn insert(dict: &mut Dict, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        dict.insert(first.clone(), value);
        return;
    }
    let entry = dict
        .entry(first.clone())
        .or_insert_with(|| Value::from(Dict::new()));
    if !matches!(entry, Value::Dict(..)) {
        // `A=1` and `A__B=2`: the table wins, as the more specific one.
        *entry = Value::from(Dict::new());
    }
    if let Value::Dict(_, inner) = entry {
        insert(inner, rest, value);
    }
}

impl Provider for KeyValues {
    fn metadata(&self) -> Metadata {
        let spell = self.spell;
        Metadata::named(self.name)
            .interpolater(move |_profile: &Profile, path: &[&str]| spell(path))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        if let Some(name) = self.unreadable.first() {
            return Err(Error::from(format!(
                "environment variable {name} is not valid UTF-8"
            )));
        }
        let mut dict = Dict::new();
        for (path, value) in &self.entries {
            insert(&mut dict, path, value.clone());
        }
        Ok(Profile::Default.collect(dict))
    }
}

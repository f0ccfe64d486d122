//! Configuration layers made of `key = value` pairs: `TICKCAST_*`
//! environment variables and command-line flags.
//!
//! figment's own `Env` provider parses every value as a TOML-like literal,
//! so `TICKCAST_API__KEY=12345` would become a number and fail to be a
//! string; here the keys that are strings ([`KeyKind::Text`], derived from
//! the config types) keep their text as it is, and the others are parsed
//! (numbers, booleans, `[a, b]` lists, `{k = v}` tables). Errors name the
//! variable or flag, not figment's internal key.
//!
//! A `TICKCAST_*` variable that names no key is left out with a warning
//! rather than an error: deployment tools set such variables for their own
//! use (`TICKCAST_BIN`, `TICKCAST_VERSION`), and they must not stop the
//! server. A key the file or the flags do not know stays an error.

use std::ffi::OsString;

use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};

use super::keys::{KeyKind, Keys};
use super::warning::ConfigWarning;

/// Prefix of the configuration's environment variables.
pub const ENV_PREFIX: &str = "TICKCAST_";

/// Separator of nested keys in a variable name
/// (`TICKCAST_DELIVERY__BATCH_WINDOW_MS`).
pub const ENV_SEPARATOR: &str = "__";

/// Name of the environment layer in errors.
const ENV_LAYER: &str = "environment variable";
/// Name of the flags layer in errors.
const FLAG_LAYER: &str = "command-line flag";

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
    /// The `TICKCAST_*` variables among `vars` that name one of `keys`,
    /// and a warning for each one that does not.
    pub(crate) fn from_env(
        vars: impl IntoIterator<Item = (OsString, OsString)>,
        keys: &Keys,
    ) -> (Self, Vec<ConfigWarning>) {
        let mut layer = Self {
            name: ENV_LAYER,
            spell: env_name,
            entries: Vec::new(),
            unreadable: Vec::new(),
        };
        let mut warnings = Vec::new();
        for (name, value) in vars {
            let name = name.to_string_lossy();
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest
                .split(ENV_SEPARATOR)
                .map(str::to_ascii_lowercase)
                .collect();
            let key = path.join(".");
            // A name that is not UTF-8 has a replacement character in it,
            // so it names no key either.
            let Some(kind) = keys.kind(&key) else {
                let closest_key = keys.closest(&key);
                warnings.push(ConfigWarning::UnknownVariable {
                    variable: name.into_owned(),
                    closest_variable: closest_key
                        .map(|k| env_name(&k.split('.').collect::<Vec<_>>())),
                    closest_key: closest_key.map(str::to_owned),
                });
                continue;
            };
            let Some(value) = value.to_str() else {
                layer.unreadable.push(name.into_owned());
                continue;
            };
            layer.entries.push((path, typed_value(kind, value)));
        }
        (layer, warnings)
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
fn typed_value(kind: KeyKind, text: &str) -> Value {
    if kind == KeyKind::Text {
        return Value::from(text.to_owned());
    }
    match text.parse::<Value>() {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

/// The environment variable of the key at `path`
/// (`TICKCAST_INGEST__AMQP__QUEUE`).
pub(crate) fn env_name(path: &[&str]) -> String {
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

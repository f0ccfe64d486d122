//! [`load`]: the layers of the configuration, merged and validated, and
//! the [`ConfigWarning`]s about what was left out on the way.

use std::ffi::OsString;
use std::fmt;
use std::path::Path;

use figment::providers::{Format, Toml};
use figment::value::Value;
use figment::Figment;

use super::env::KeyValues;
use super::keys::Keys;
use super::warning::ConfigWarning;
use super::{Config, InvalidKey, LogFormat};

/// Values given as command-line flags: the top layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--node-id`.
    pub node_id: Option<String>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
}

impl Overrides {
    fn into_layer(self) -> KeyValues {
        let mut flags = Vec::new();
        if let Some(listen) = self.listen {
            flags.push(("listen", Value::from(listen)));
        }
        if let Some(node_id) = self.node_id {
            flags.push(("node_id", Value::from(node_id)));
        }
        if let Some(format) = self.log_format {
            let name = match format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            };
            flags.push(("log_format", Value::from(name.to_owned())));
        }
        KeyValues::from_flags(flags)
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer could not be read, or a key is unknown or of the wrong type.
    #[error("cannot load the configuration:\n{}", LoadErrors(.0))]
    Load(Box<figment::Error>),
    /// Keys have values outside what they accept.
    #[error("invalid configuration:\n{}", InvalidKeys(.0))]
    Invalid(Vec<InvalidKey>),
}

/// A valid configuration, and what was left out of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The configuration to run with.
    pub config: Config,
    /// To log once logging is set up (its format is part of `config`).
    pub warnings: Vec<ConfigWarning>,
}

/// Loads the configuration: defaults < `file` (TOML; must exist when given)
/// < the `TICKCAST_*` variables among `env` < `flags`, then validates it.
///
/// `env` is normally `std::env::vars_os()`; tests pass their own.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (OsString, OsString)>,
    flags: Overrides,
) -> Result<Loaded, ConfigError> {
    let keys = Keys::of_config().map_err(ConfigError::Load)?;
    let (env, warnings) = KeyValues::from_env(env, &keys);
    let mut figment = Figment::new();
    if let Some(file) = file {
        figment = figment.merge(Toml::file_exact(file));
    }
    let config: Config = figment
        .merge(env)
        .merge(flags.into_layer())
        .extract()
        .map_err(|e| ConfigError::Load(Box::new(e)))?;
    config.validate().map_err(ConfigError::Invalid)?;
    let mut warnings = warnings;
    warnings.extend(config.lingering_queue());
    Ok(Loaded { config, warnings })
}

/// One line per figment error, naming the key as the user wrote it.
struct LoadErrors<'a>(&'a figment::Error);

impl fmt::Display for LoadErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in self.0.clone() {
            writeln!(f, "  - {}", describe(&error))?;
        }
        Ok(())
    }
}

/// `key: problem (source)`, where key is the dotted key, environment
/// variable or flag, and an unknown field is named in full.
fn describe(error: &figment::Error) -> String {
    let mut path = error.path.clone();
    let problem = match &error.kind {
        figment::error::Kind::UnknownField(field, expected) => {
            if path.last() != Some(field) {
                path.push(field.clone());
            }
            format!("unknown key; expected one of: {}", expected.join(", "))
        }
        kind => kind.to_string().trim().to_owned(),
    };
    // Our own layers spell keys as the user wrote them (variable, flag);
    // figment's file layers would prefix the profile name.
    let key = match &error.metadata {
        Some(md) if KeyValues::is_layer(&md.name) && !path.is_empty() => {
            md.interpolate(&figment::Profile::Default, &path)
        }
        _ => path.join("."),
    };
    let source = error.metadata.as_ref().map(|md| match &md.source {
        Some(source) => format!("{} {source}", md.name),
        None => md.name.to_string(),
    });
    match (key.is_empty(), source) {
        (true, Some(source)) => format!("{problem} (in {source})"),
        (true, None) => problem,
        (false, Some(source)) => format!("`{key}`: {problem} (in {source})"),
        (false, None) => format!("`{key}`: {problem}"),
    }
}

struct InvalidKeys<'a>(&'a [InvalidKey]);

impl fmt::Display for InvalidKeys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for invalid in self.0 {
            writeln!(f, "  - {invalid}")?;
        }
        Ok(())
    }
}

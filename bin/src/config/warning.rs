//! [`ConfigWarning`]: what the configuration's sources held that was left
//! out. Its own module because the environment layer makes them and the
//! loader hands them on.

use std::fmt;

/// Something the configuration's sources hold that was left out: the
/// server runs, and says so in its log (and `check-config` on stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigWarning {
    /// A `TICKCAST_*` environment variable that names no configuration
    /// key. Deployment tools set such variables for themselves, so it is
    /// ignored rather than refused; a typo of a key shows up here.
    UnknownVariable {
        /// The variable, as set (`TICKCAST_DELIVERY__BATCH_WINDOW`).
        variable: String,
        /// The dotted key spelled most like it (`delivery.batch_window_ms`).
        closest_key: Option<String>,
        /// That key's own variable (`TICKCAST_DELIVERY__BATCH_WINDOW_MS`).
        closest_variable: Option<String>,
    },
    /// The AMQP queue is named after the hostname (`node_id` left at its
    /// default) and never expires (`ingest.amqp.queue_expires_s = 0`):
    /// every container that is replaced leaves a queue behind that keeps
    /// collecting events.
    LingeringQueue {
        /// The queue this node declares.
        queue: String,
    },
}

impl ConfigWarning {
    /// Logs it at warn level, with its parts as fields for log shippers.
    pub fn log(&self) {
        match self {
            Self::UnknownVariable {
                variable,
                closest_key,
                ..
            } => tracing::warn!(
                variable = %variable,
                closest_key = closest_key.as_deref().unwrap_or(""),
                "{self}"
            ),
            Self::LingeringQueue { queue } => tracing::warn!(queue = %queue, "{self}"),
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownVariable {
                variable,
                closest_key,
                closest_variable,
            } => {
                write!(
                    f,
                    "environment variable {variable} is not a configuration key; ignored"
                )?;
                if let (Some(key), Some(key_variable)) = (closest_key, closest_variable) {
                    write!(f, " (closest key: `{key}`, {key_variable})")?;
                }
                Ok(())
            }
            Self::LingeringQueue { queue } => write!(
                f,
                "AMQP queue {queue} is named after the hostname (node_id unset) and never \
                 expires (ingest.amqp.queue_expires_s = 0): a replaced container leaves it \
                 behind, collecting events; set a stable TICKCAST_NODE_ID per replica, or \
                 let the queue expire"
            ),
        }
    }
}

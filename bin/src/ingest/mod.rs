//! Broker ingest: the sources of `[ingest.redis]` and `[ingest.amqp]`,
//! started beside the server, and the broker `POST /api/publish` goes
//! through when one is configured.
//!
//! [`brokers`] is the one place that lists the brokers the binary knows
//! and which of them are built in (cargo features `redis`, `amqp`);
//! starting them, warning about one configured but not built, and the
//! hub's offset mode all go over that list.
//!
//! Each source runs in a task of its own
//! ([`run_source`](tickcast_core::ingest::run_source)): it acknowledges
//! a message only after the hub accepted it, and shows in `/ready` as
//! disconnected until it has reached its broker.

#[cfg(feature = "amqp")]
mod amqp;
#[cfg(feature = "redis")]
mod redis;

use std::sync::Arc;

use tickcast_core::hub::OffsetMode;
use tickcast_core::ingest::{BrokerPublisher, IngestSource};
use tickcast_core::{Hub, HubConfig};
use tokio::task::JoinHandle;

use crate::config::{Config, RedisMode};

/// A broker section the broker's crate cannot use, or a source the hub
/// cannot take.
#[derive(Debug, thiserror::Error)]
#[error("[{section}]: {reason}")]
pub struct IngestError {
    section: &'static str,
    reason: String,
}

// Used by the broker modules only: unused in a binary without brokers.
#[cfg_attr(not(any(feature = "redis", feature = "amqp")), allow(dead_code))]
impl IngestError {
    /// `section` (`ingest.redis`) is not configured.
    fn absent(section: &'static str) -> Self {
        Self::new(section, "not configured")
    }

    /// `reason` about `section` (`ingest.redis`).
    fn new(section: &'static str, reason: impl std::fmt::Display) -> Self {
        Self {
            section,
            reason: reason.to_string(),
        }
    }
}

/// A broker the binary knows.
pub struct Broker {
    /// Its cargo feature, and its source's name in stats and `/ready`.
    pub name: &'static str,
    /// Its configuration section.
    pub section: &'static str,
    /// The product, for people.
    pub product: &'static str,
    /// The section's URL, when the section is configured.
    pub configured: fn(&Config) -> Option<&str>,
    /// Whether, as configured, its messages carry the offsets the hub
    /// takes ([`OffsetMode::External`]).
    pub gives_offsets: fn(&Config) -> bool,
    /// Starts its source and makes its publisher; `None` when this binary
    /// was built without its feature.
    pub start: Option<StartFn>,
}

/// Starts a broker's source into the hub: its task, and its publisher.
pub type StartFn = fn(&Config, &Hub) -> Result<Started, IngestError>;

/// Every broker, in the order `POST /api/publish` prefers them.
pub fn brokers() -> [Broker; 2] {
    #[cfg(feature = "redis")]
    let redis: Option<StartFn> = Some(redis::start);
    #[cfg(not(feature = "redis"))]
    let redis: Option<StartFn> = None;
    #[cfg(feature = "amqp")]
    let amqp: Option<StartFn> = Some(amqp::start);
    #[cfg(not(feature = "amqp"))]
    let amqp: Option<StartFn> = None;
    [
        Broker {
            name: "redis",
            section: "ingest.redis",
            product: "Redis",
            configured: |config| config.ingest.redis.as_ref().map(|s| s.url.as_str()),
            gives_offsets: |config| {
                let section = config.ingest.redis.as_ref();
                section.is_some_and(|s| s.mode == RedisMode::Streams)
            },
            start: redis,
        },
        Broker {
            name: "amqp",
            section: "ingest.amqp",
            product: "RabbitMQ",
            configured: |config| config.ingest.amqp.as_ref().map(|s| s.url.as_str()),
            gives_offsets: |_| false,
            start: amqp,
        },
    ]
}

/// The hub configuration of `config`: offsets come from the ingest only
/// when a broker that gives them is configured and built in; otherwise the
/// node numbers events itself (and has no history to wait for).
pub fn hub_config(config: &Config) -> HubConfig {
    let mut hub_config = config.hub_config();
    let external = brokers()
        .iter()
        .any(|broker| broker.start.is_some() && (broker.gives_offsets)(config));
    if !external {
        hub_config.offsets = OffsetMode::Node;
        hub_config.await_history = false;
    }
    hub_config
}

/// A broker's running source task and its publisher.
pub type Started = (JoinHandle<()>, Arc<dyn BrokerPublisher>);

/// Runs `source` into `hub` on a task of its own, once both it and the
/// publisher were made of `section`'s settings; refused when its offsets do
/// not fit the hub's offset mode.
#[cfg_attr(not(any(feature = "redis", feature = "amqp")), allow(dead_code))]
fn start<S, P, E>(
    section: &'static str,
    hub: &Hub,
    source: Result<S, E>,
    publisher: Result<P, E>,
) -> Result<Started, IngestError>
where
    S: IngestSource + 'static,
    P: BrokerPublisher + 'static,
    E: std::fmt::Display,
{
    let invalid = |error: E| IngestError::new(section, error);
    let publisher = publisher.map_err(invalid)?;
    let run = tickcast_core::ingest::run_source(hub.clone(), source.map_err(invalid)?)
        .map_err(|mismatch| IngestError::new(section, mismatch))?;
    Ok((tokio::spawn(run), Arc::new(publisher)))
}

/// The running broker sources and the publisher of the HTTP API.
#[derive(Default)]
pub struct Brokers {
    /// Where `POST /api/publish` goes: the first configured broker of
    /// [`brokers`] (Redis, then AMQP), else `None` (straight to the hub).
    pub publisher: Option<Arc<dyn BrokerPublisher>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Brokers {
    /// Starts a source for each configured broker that is built in, and
    /// warns about each that is configured but not built. Fails on settings
    /// a broker crate refuses (a URL it cannot use).
    pub fn start(config: &Config, hub: &Hub) -> Result<Self, IngestError> {
        let mut running = Self::default();
        for broker in brokers() {
            let Some(url) = (broker.configured)(config) else {
                continue;
            };
            let Some(start) = broker.start else {
                not_built(hub, &broker, url);
                continue;
            };
            let (task, publisher) = start(config, hub)?;
            running.tasks.push(task);
            running.publisher.get_or_insert(publisher);
        }
        Ok(running)
    }

    /// Stops the sources. Messages they had not handed to the hub stay
    /// unacknowledged at the broker, which redelivers them to the next run.
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Says loudly that a configured broker is not consumed, and registers it
/// as a disconnected source (so `/ready` answers 503 rather than pretend).
fn not_built(hub: &Hub, broker: &Broker, url: &str) {
    let Broker {
        name,
        section,
        product,
        ..
    } = broker;
    tracing::warn!(
        "[{section}] is configured ({url}), but this binary was built without the `{name}` \
         feature: nothing is consumed from {product}, POST /api/publish goes straight to this \
         node, and /ready reports the source disconnected"
    );
    hub.register_source(name).set_connected(false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AmqpIngest, RedisIngest};

    #[test]
    fn offsets_come_from_a_built_broker_that_gives_them() {
        let mut config = Config::default();
        assert_eq!(hub_config(&config).offsets, OffsetMode::Node);
        config.ingest.amqp = Some(AmqpIngest::default());
        assert_eq!(hub_config(&config).offsets, OffsetMode::Node);
        config.ingest.amqp = None;
        config.ingest.redis = Some(RedisIngest {
            mode: RedisMode::Streams,
            ..RedisIngest::default()
        });
        let streams = hub_config(&config);
        let built = cfg!(feature = "redis");
        assert_eq!(streams.offsets == OffsetMode::External, built);
        assert_eq!(streams.await_history, built);
    }

    #[test]
    fn every_broker_is_listed_once_with_its_feature() {
        let names: Vec<_> = brokers().iter().map(|b| b.name).collect();
        assert_eq!(names, ["redis", "amqp"]);
        for broker in brokers() {
            assert_eq!(broker.section, format!("ingest.{}", broker.name));
        }
        let built = brokers().map(|b| b.start.is_some());
        assert_eq!(built, [cfg!(feature = "redis"), cfg!(feature = "amqp")]);
    }
}

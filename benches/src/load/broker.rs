//! `--via redis|amqp`: the publisher writes into the broker the server
//! consumes, through the same publishers the server uses for
//! `POST /api/publish` (tickcast-ingest-redis, tickcast-ingest-amqp).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tickcast_core::ingest::BrokerPublisher;
use tickcast_ingest_amqp::{AmqpConfig, AmqpPublisher};
use tickcast_ingest_redis::{RedisConfig, RedisMode, RedisPublisher};

use super::scenario::Via;

/// Where the broker is and how to publish into it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BrokerTarget {
    /// Broker URL; the server's default for the broker when unset.
    pub url: Option<String>,
    /// Redis: XADD to this stream (the server in `mode = "streams"`)
    /// instead of PUBLISH.
    pub redis_stream: Option<String>,
    /// AMQP: the topic exchange (the server's `ingest.amqp.exchange`).
    pub amqp_exchange: Option<String>,
}

impl BrokerTarget {
    /// The publisher for `via`; `None` for HTTP.
    pub fn publisher(&self, via: Via) -> Result<Option<Arc<dyn BrokerPublisher>>, String> {
        Ok(match via {
            Via::Http => None,
            Via::Redis => Some(Arc::new(self.redis()?)),
            Via::Amqp => Some(Arc::new(self.amqp()?)),
        })
    }

    fn redis(&self) -> Result<RedisPublisher, String> {
        let defaults = RedisConfig::default();
        let config = RedisConfig {
            url: self.url.clone().unwrap_or(defaults.url.clone()),
            mode: match self.redis_stream {
                Some(_) => RedisMode::Streams,
                None => RedisMode::PubSub,
            },
            stream: self.redis_stream.clone().unwrap_or(defaults.stream.clone()),
            ..defaults
        };
        RedisPublisher::new(&config).map_err(|e| e.to_string())
    }

    fn amqp(&self) -> Result<AmqpPublisher, String> {
        let defaults = AmqpConfig::default();
        let config = AmqpConfig {
            url: self.url.clone().unwrap_or(defaults.url.clone()),
            exchange: self
                .amqp_exchange
                .clone()
                .unwrap_or(defaults.exchange.clone()),
            ..defaults
        };
        AmqpPublisher::new(&config).map_err(|e| e.to_string())
    }
}

//! `--via redis|amqp`: the publisher writes into the broker the server
//! consumes, through the same publishers the server uses for
//! `POST /api/publish` (tickcast-ingest-redis, tickcast-ingest-amqp);
//! into a Redis stream over plain TCP, with the same commands written by
//! the generator's own lean pipelines instead ([`xadd`](super::xadd)).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tickcast_core::ingest::BrokerPublisher;
use tickcast_ingest_amqp::{AmqpConfig, AmqpPublisher};
use tickcast_ingest_redis::{RedisConfig, RedisMode, RedisPublisher};

use super::scenario::Via;
use super::xadd::XaddTarget;

/// How the senders reach the broker.
#[derive(Clone)]
pub enum Broker {
    /// Through the publisher the server itself uses.
    Publisher(Arc<dyn BrokerPublisher>),
    /// A Redis stream, through the generator's own XADD pipelines.
    Xadd(Arc<XaddTarget>),
}

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
    /// The way into the broker for `via`; `None` for HTTP.
    pub fn publisher(&self, via: Via) -> Result<Option<Broker>, String> {
        Ok(match via {
            Via::Http => None,
            Via::Redis => Some(self.redis()?),
            Via::Amqp => Some(Broker::Publisher(Arc::new(self.amqp()?))),
        })
    }

    /// A stream over plain TCP: XADD pipelines of the generator's own,
    /// with the server publisher's settings (trimming, timeout); else the
    /// server's publisher.
    fn redis(&self) -> Result<Broker, String> {
        let config = self.redis_config();
        let publisher = RedisPublisher::new(&config).map_err(|e| e.to_string())?;
        if config.mode == RedisMode::Streams && config.stream_shards == 1 {
            let target = XaddTarget::for_url(
                &config.url,
                &config.stream,
                config.stream_maxlen,
                config.command_timeout,
            )?;
            if let Some(target) = target {
                return Ok(Broker::Xadd(Arc::new(target)));
            }
        }
        Ok(Broker::Publisher(Arc::new(publisher)))
    }

    fn redis_config(&self) -> RedisConfig {
        let defaults = RedisConfig::default();
        RedisConfig {
            url: self.url.clone().unwrap_or(defaults.url.clone()),
            mode: match self.redis_stream {
                Some(_) => RedisMode::Streams,
                None => RedisMode::PubSub,
            },
            stream: self.redis_stream.clone().unwrap_or(defaults.stream.clone()),
            ..defaults
        }
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

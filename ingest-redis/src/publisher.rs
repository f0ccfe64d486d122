//! [`RedisPublisher`]: `POST /api/publish` into Redis, so that every node
//! delivers the event.

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, ServerErrorKind, Value};
use tickcast_core::ingest::{BrokerError, BrokerPublisher, Outgoing};
use tickcast_core::model::Offset;

use crate::config::{ConfigError, RedisConfig, RedisMode};
use crate::streams::{BODY_FIELD, CHANNEL_FIELD, ID_FIELD};

/// Reconnect attempts inside one publish before it fails as unavailable:
/// a caller waiting on HTTP wants an answer, and the manager keeps
/// reconnecting in the background anyway.
const PUBLISH_RETRIES: usize = 1;

/// Publishes raw event bodies the way the source reads them: PUBLISH to
/// the channel (pub/sub mode; a PUBLISH no subscriber received fails as
/// [`BrokerError::NoReceiver`]) or XADD `stream MAXLEN ~ <n> * channel <c>
/// body <b> [id <key>]`
/// (Streams mode, trimming to `MAXLEN ~ stream_maxlen`, returning the entry
/// id as offset). Cheap to clone; one
/// multiplexed connection that reconnects by itself.
#[derive(Clone)]
pub struct RedisPublisher {
    conn: ConnectionManager,
    mode: RedisMode,
    stream: String,
    maxlen: Option<u64>,
}

impl std::fmt::Debug for RedisPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPublisher")
            .field("mode", &self.mode)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl RedisPublisher {
    /// A publisher for `config` (its url, mode, stream, command timeout
    /// and reconnect delays). It connects on the first publish, so a
    /// server that is down now only fails publishes, as
    /// [`BrokerError::Unavailable`]. Fails only on a URL that does not
    /// parse.
    pub fn new(config: &RedisConfig) -> Result<Self, ConfigError> {
        let client = config.client()?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.command_timeout))
            .set_response_timeout(Some(config.command_timeout))
            .set_min_delay(config.reconnect_min)
            .set_max_delay(config.reconnect_max)
            .set_number_of_retries(PUBLISH_RETRIES);
        let conn =
            client
                .get_connection_manager_lazy(manager)
                .map_err(|e| ConfigError::InvalidUrl {
                    url: config.url.clone(),
                    reason: e.to_string(),
                })?;
        Ok(Self {
            conn,
            mode: config.mode,
            stream: config.stream.clone(),
            maxlen: config.stream_maxlen,
        })
    }

    /// The command that publishes one body; in Streams mode with its
    /// idempotency key as field `id` (pub/sub has no place for one).
    fn command(&self, channel: &str, body: &[u8], key: Option<&str>) -> redis::Cmd {
        match self.mode {
            RedisMode::PubSub => redis::cmd("PUBLISH").arg(channel).arg(body).take(),
            RedisMode::Streams => {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(&self.stream);
                if let Some(maxlen) = self.maxlen {
                    cmd.arg("MAXLEN").arg("~").arg(maxlen);
                }
                cmd.arg("*")
                    .arg(CHANNEL_FIELD)
                    .arg(channel)
                    .arg(BODY_FIELD)
                    .arg(body);
                if let Some(key) = key {
                    cmd.arg(ID_FIELD).arg(key);
                }
                cmd
            }
        }
    }

    /// The offset in a command's reply: the entry id of an XADD, nothing
    /// for a PUBLISH, whose reply counts the subscribers that received the
    /// message: 0 means no node will deliver it
    /// ([`BrokerError::NoReceiver`]).
    fn offset(&self, channel: &str, reply: Value) -> Result<Option<Offset>, BrokerError> {
        if self.mode == RedisMode::PubSub {
            let receivers: i64 = redis::from_redis_value(reply).map_err(|e| {
                BrokerError::Refused(format!("PUBLISH answered no receiver count: {e}"))
            })?;
            if receivers <= 0 {
                return Err(BrokerError::NoReceiver(format!(
                    "PUBLISH on {channel:?} reached no subscriber: no node is subscribed to it \
                     right now (nodes resubscribe within seconds after a Redis restart); \
                     nothing was delivered, publishing again is safe"
                )));
            }
            return Ok(None);
        }
        let id: String = redis::from_redis_value(reply)
            .map_err(|e| BrokerError::Refused(format!("XADD answered no entry id: {e}")))?;
        id.parse()
            .map(Some)
            .map_err(|e| BrokerError::Refused(format!("XADD answered {id:?}: {e}")))
    }
}

#[async_trait]
impl BrokerPublisher for RedisPublisher {
    fn name(&self) -> &str {
        crate::SOURCE_NAME
    }

    async fn publish(&self, channel: &str, body: Bytes) -> Result<Option<Offset>, BrokerError> {
        let mut conn = self.conn.clone();
        let reply: Value = self
            .command(channel, &body, None)
            .query_async(&mut conn)
            .await
            .map_err(broker_error)?;
        self.offset(channel, reply)
    }

    async fn publish_all(
        &self,
        items: Vec<(String, Bytes)>,
    ) -> Vec<Result<Option<Offset>, BrokerError>> {
        self.publish_keyed(Outgoing::unkeyed(items)).await
    }

    /// Streams mode only: a stream entry has room for the key.
    fn carries_keys(&self) -> bool {
        self.mode == RedisMode::Streams
    }

    /// One pipeline, one round trip; each item gets its own result (a
    /// refused item does not fail the others), and all fail alike when the
    /// connection does.
    async fn publish_keyed(
        &self,
        items: Vec<Outgoing>,
    ) -> Vec<Result<Option<Offset>, BrokerError>> {
        if items.is_empty() {
            return Vec::new();
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for item in &items {
            pipe.add_command(self.command(&item.channel, &item.body, item.key.as_deref()));
        }
        let mut conn = self.conn.clone();
        match pipe
            .query_async::<Vec<redis::RedisResult<Value>>>(&mut conn)
            .await
        {
            Ok(replies) => replies
                .into_iter()
                .zip(&items)
                .map(|(reply, item)| {
                    reply
                        .map_err(broker_error)
                        .and_then(|v| self.offset(&item.channel, v))
                })
                .collect(),
            Err(error) => {
                let error = broker_error(error);
                items.iter().map(|_| Err(error.clone())).collect()
            }
        }
    }
}

/// Unavailable when the connection is the problem (down, timed out, the
/// server loading or read-only during a failover): retrying later may
/// work. Refused when the server rejected this command.
fn broker_error(error: RedisError) -> BrokerError {
    let transient = error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
            )
        );
    if transient {
        BrokerError::Unavailable(error.to_string())
    } else {
        BrokerError::Refused(error.to_string())
    }
}

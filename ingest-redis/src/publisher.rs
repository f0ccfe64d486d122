//! [`RedisPublisher`]: `POST /api/publish` into Redis, so that every node
//! delivers the event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{ErrorKind, RedisError, ServerErrorKind, Value};
use tickcast_core::ingest::{BrokerError, BrokerPublisher, Outgoing};
use tickcast_core::model::Offset;
use tokio::sync::OnceCell;

use crate::config::{ConfigError, RedisConfig, RedisMode};
use crate::streams::{StreamShard, BODY_FIELD, CHANNEL_FIELD, ID_FIELD};

/// Reconnect attempts inside one publish before it fails as unavailable:
/// a caller waiting on HTTP wants an answer, and the manager keeps
/// reconnecting in the background anyway.
const PUBLISH_RETRIES: usize = 1;

/// In a cluster, attempts of one command inside the cluster client: a
/// redirect (MOVED while the slot map changes, a node reconnecting) takes
/// one; the whole publish stays bounded by `command_timeout`.
const CLUSTER_RETRIES: u32 = 3;

/// Publishes raw event bodies the way the source reads them: PUBLISH to
/// the channel (pub/sub mode; a PUBLISH no subscriber received fails as
/// [`BrokerError::NoReceiver`]) or XADD `stream MAXLEN ~ <n> * channel <c>
/// body <b> [id <key>]`
/// (Streams mode, trimming to `MAXLEN ~ stream_maxlen`, returning the entry
/// id as offset). Cheap to clone; one
/// multiplexed connection that reconnects by itself.
///
/// In a cluster (`config.cluster`): SPUBLISH instead of PUBLISH (its reply
/// counts the subscribers of the channel's shard, which is where every
/// node subscribes), and every command goes to the master of its key or
/// channel over a cluster connection. With `stream_shards > 1`, each
/// publish call XADDs to the next shard key in turn (all items of one
/// call to the same key, so they keep their order) and answers offsets
/// spread by shard, as the source computes them.
#[derive(Clone)]
pub struct RedisPublisher {
    conn: Conn,
    mode: RedisMode,
    /// The settings the keys come from.
    config: Arc<RedisConfig>,
    maxlen: Option<u64>,
    /// The shard key the next call writes to (round robin).
    next_shard: Arc<AtomicUsize>,
}

/// The connection: to one server, or to a cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(Arc<ClusterLink>),
}

/// A cluster connection made on the first publish (so a cluster that is
/// down at start only fails publishes), and kept: it follows the slot map
/// and reconnects nodes by itself.
struct ClusterLink {
    client: ClusterClient,
    conn: OnceCell<ClusterConnection>,
    timeout: Duration,
}

impl ClusterLink {
    async fn conn(&self) -> Result<ClusterConnection, BrokerError> {
        let connect = async {
            match tokio::time::timeout(self.timeout, self.client.get_async_connection()).await {
                Ok(result) => result.map_err(broker_error),
                Err(_) => Err(BrokerError::Unavailable(format!(
                    "no connection to the redis cluster within {:?}",
                    self.timeout
                ))),
            }
        };
        self.conn.get_or_try_init(|| connect).await.cloned()
    }

    /// `query` within the publish timeout: the cluster client's retries
    /// and redirects must not keep an HTTP caller waiting longer.
    async fn bounded<T>(
        &self,
        query: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> redis::RedisResult<T> {
        match tokio::time::timeout(self.timeout, query).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from((
                ErrorKind::Io,
                "the redis cluster did not answer in time",
            ))),
        }
    }
}

impl std::fmt::Debug for RedisPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPublisher")
            .field("mode", &self.mode)
            .field("stream", &self.config.stream)
            .field("cluster", &self.config.cluster)
            .finish_non_exhaustive()
    }
}

impl RedisPublisher {
    /// A publisher for `config` (its url, mode, stream, command timeout
    /// and reconnect delays). It connects on the first publish, so a
    /// server that is down now only fails publishes, as
    /// [`BrokerError::Unavailable`]. Fails only on what
    /// [`RedisConfig::check`] refuses.
    pub fn new(config: &RedisConfig) -> Result<Self, ConfigError> {
        config.check()?;
        let conn = match config.is_cluster() {
            true => Conn::Cluster(Arc::new(ClusterLink {
                client: ClusterClientBuilder::new(config.seeds()?)
                    .connection_timeout(config.command_timeout)
                    .response_timeout(config.command_timeout)
                    .retries(CLUSTER_RETRIES)
                    .build()
                    .map_err(|e| ConfigError::InvalidUrl {
                        url: config.cluster.join(","),
                        reason: e.to_string(),
                    })?,
                conn: OnceCell::new(),
                timeout: config.command_timeout,
            })),
            false => Conn::Single(Self::manager(config)?),
        };
        Ok(Self {
            conn,
            mode: config.mode,
            config: Arc::new(config.clone()),
            maxlen: config.stream_maxlen,
            next_shard: Arc::default(),
        })
    }

    /// The reconnecting connection to the one server at `config.url`.
    fn manager(config: &RedisConfig) -> Result<ConnectionManager, ConfigError> {
        let client = config.client()?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.command_timeout))
            .set_response_timeout(Some(config.command_timeout))
            .set_min_delay(config.reconnect_min)
            .set_max_delay(config.reconnect_max)
            .set_number_of_retries(PUBLISH_RETRIES);
        client
            .get_connection_manager_lazy(manager)
            .map_err(|e| ConfigError::InvalidUrl {
                url: config.url.clone(),
                reason: e.to_string(),
            })
    }

    /// The shard the next call writes to.
    fn take_shard(&self) -> usize {
        match self.config.stream_shards {
            0 | 1 => 0,
            n => self.next_shard.fetch_add(1, Ordering::Relaxed) % n,
        }
    }

    /// The command that publishes one body; in Streams mode to shard
    /// `shard`'s key, with its idempotency key as field `id` (pub/sub has
    /// no place for one).
    fn command(&self, channel: &str, body: &[u8], key: Option<&str>, shard: usize) -> redis::Cmd {
        match self.mode {
            RedisMode::PubSub => {
                let publish = match self.conn {
                    Conn::Single(_) => "PUBLISH",
                    Conn::Cluster(_) => "SPUBLISH",
                };
                redis::cmd(publish).arg(channel).arg(body).take()
            }
            RedisMode::Streams => {
                let stream = self.config.shard_key(shard);
                // Sized up front: growing the buffers arg by arg cost a
                // tenth of a publisher's CPU at 100,000 events/s.
                let data = 64 + stream.len() + channel.len() + body.len();
                let data = data + key.map_or(0, str::len);
                let mut cmd = redis::Cmd::with_capacity(12, data);
                cmd.arg("XADD").arg(stream);
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
    fn offset(
        &self,
        channel: &str,
        reply: Value,
        shard: usize,
    ) -> Result<Option<Offset>, BrokerError> {
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
        let parsed: Offset = id
            .parse()
            .map_err(|e| BrokerError::Refused(format!("XADD answered {id:?}: {e}")))?;
        StreamShard::new(shard, self.config.stream_shards)
            .offset_of(parsed)
            .map(Some)
            .ok_or_else(|| BrokerError::Refused(format!("XADD answered {id:?}: no offset")))
    }

    /// Runs `pipe` on the connection (in a cluster: on the master of its
    /// commands' slot, which all share).
    async fn run(
        &self,
        pipe: &redis::Pipeline,
    ) -> redis::RedisResult<Vec<redis::RedisResult<Value>>> {
        match &self.conn {
            Conn::Single(conn) => pipe.query_async(&mut conn.clone()).await,
            Conn::Cluster(link) => {
                let mut conn = link.conn().await.map_err(|e| {
                    RedisError::from((ErrorKind::Io, "no cluster connection", e.to_string()))
                })?;
                link.bounded(pipe.query_async(&mut conn)).await
            }
        }
    }

    /// The items of one slot (in a cluster, one channel or one stream
    /// key) in one pipeline: one result per item.
    async fn publish_group(
        &self,
        items: &[&Outgoing],
        shard: usize,
    ) -> Vec<Result<Option<Offset>, BrokerError>> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for item in items {
            pipe.add_command(self.command(&item.channel, &item.body, item.key.as_deref(), shard));
        }
        match self.run(&pipe).await {
            Ok(replies) => replies
                .into_iter()
                .zip(items)
                .map(|(reply, item)| {
                    reply
                        .map_err(broker_error)
                        .and_then(|v| self.offset(&item.channel, v, shard))
                })
                .collect(),
            Err(error) => {
                let error = broker_error(error);
                items.iter().map(|_| Err(error.clone())).collect()
            }
        }
    }
}

#[async_trait]
impl BrokerPublisher for RedisPublisher {
    fn name(&self) -> &str {
        crate::SOURCE_NAME
    }

    async fn publish(&self, channel: &str, body: Bytes) -> Result<Option<Offset>, BrokerError> {
        let shard = self.take_shard();
        let command = self.command(channel, &body, None, shard);
        let reply: Value = match &self.conn {
            Conn::Single(conn) => command.query_async(&mut conn.clone()).await,
            Conn::Cluster(link) => {
                let mut conn = link.conn().await?;
                link.bounded(command.query_async(&mut conn)).await
            }
        }
        .map_err(broker_error)?;
        self.offset(channel, reply, shard)
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
    /// connection does. In a cluster, pub/sub items go in one pipeline per
    /// channel (a pipeline reaches one slot), all sent at once.
    async fn publish_keyed(
        &self,
        items: Vec<Outgoing>,
    ) -> Vec<Result<Option<Offset>, BrokerError>> {
        if items.is_empty() {
            return Vec::new();
        }
        let shard = self.take_shard();
        let by_channel = matches!(self.conn, Conn::Cluster(_)) && self.mode == RedisMode::PubSub;
        if !by_channel {
            let all: Vec<&Outgoing> = items.iter().collect();
            return self.publish_group(&all, shard).await;
        }
        let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            groups.entry(item.channel.as_str()).or_default().push(i);
        }
        let sends = groups.into_values().map(|indices| async {
            let group: Vec<&Outgoing> = indices.iter().map(|&i| &items[i]).collect();
            let results = self.publish_group(&group, shard).await;
            indices.into_iter().zip(results)
        });
        let mut results: Vec<Option<Result<Option<Offset>, BrokerError>>> =
            items.iter().map(|_| None).collect();
        for group in futures_util::future::join_all(sends).await {
            for (i, result) in group {
                results[i] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(BrokerError::Refused("not sent".to_owned()))))
            .collect()
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
                    // The slot moved (a failover, resharding) and the
                    // client's redirects ran out: not executed.
                    | ServerErrorKind::Moved
                    | ServerErrorKind::Ask
            )
        );
    if transient {
        BrokerError::Unavailable(error.to_string())
    } else {
        BrokerError::Refused(error.to_string())
    }
}

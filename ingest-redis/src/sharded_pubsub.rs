//! Pub/sub in a Redis Cluster: [`ShardedPubSub`] SSUBSCRIBEs to each
//! channel on the master that owns the channel's slot, so a channel's
//! messages travel only inside its shard (a plain PUBLISH in a cluster is
//! copied to every node over the cluster bus).
//!
//! One [`ClusterConnection`](redis::cluster_async::ClusterConnection) per
//! session, RESP3, its pushes on a channel of the session. Any node of it
//! dropping (a master killed or restarted) or the server dropping a
//! subscription itself (its slot moved to another master: Redis sends
//! `sunsubscribe`) ends the session, and [`RedisSource`](crate::RedisSource)
//! reconnects with its usual backoff: a fresh slot map, every channel
//! subscribed again where it now lives. Like single-server pub/sub, what is
//! published while the node is not subscribed is lost for this node (and a
//! publish no node received answers `no_receiver`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Msg, ProtocolVersion, PushInfo, PushKind};
use tickcast_core::ingest::{BodyDecoder, Incoming, IngestItem};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::{interval_at, Interval, MissedTickBehavior};

use crate::config::RedisConfig;
use crate::link::{bounded, LinkError};

/// The shortest keepalive period (a zero one would ping without pause).
const MIN_KEEPALIVE: Duration = Duration::from_secs(1);

/// Retries of one command inside the cluster client before it fails: the
/// session ends on a failure and the source's backoff takes over, so the
/// client's own retries would only hide an outage for longer.
const CLIENT_RETRIES: u32 = 1;

/// One subscribed session.
struct Session {
    conn: ClusterConnection,
    pushes: UnboundedReceiver<PushInfo>,
    keepalive: Interval,
    last_message: Instant,
}

/// The state of a sharded pub/sub consumer, kept across sessions.
pub(crate) struct ShardedPubSub {
    config: RedisConfig,
    pub(crate) decoder: BodyDecoder,
    seeds: Vec<redis::ConnectionInfo>,
    session: Option<Session>,
}

impl ShardedPubSub {
    /// A consumer of `config.channels` (plain names: checked by
    /// [`RedisConfig::check`]) in the cluster of `seeds`.
    pub(crate) fn new(seeds: Vec<redis::ConnectionInfo>, config: RedisConfig) -> Self {
        if config.channels.is_empty() {
            tracing::warn!("redis pub/sub source has no channels: it will receive nothing");
        }
        Self {
            decoder: BodyDecoder::new(config.max_body_bytes),
            config,
            seeds,
            session: None,
        }
    }

    /// Connects to the cluster and SSUBSCRIBEs to every channel, one at a
    /// time: SSUBSCRIBE takes several channels only when they share a
    /// slot.
    pub(crate) async fn connect(&mut self) -> Result<(), LinkError> {
        self.session = None;
        let timeout = self.config.command_timeout;
        let (sender, pushes) = unbounded_channel();
        let client = ClusterClientBuilder::new(self.seeds.clone())
            .use_protocol(ProtocolVersion::RESP3)
            .push_sender(sender)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(CLIENT_RETRIES)
            .build()?;
        let mut conn = bounded("connect", timeout, client.get_async_connection()).await?;
        for channel in &self.config.channels {
            bounded("SSUBSCRIBE", timeout, conn.ssubscribe(channel)).await?;
        }
        let period = self.config.keepalive.max(MIN_KEEPALIVE);
        let mut keepalive = interval_at(tokio::time::Instant::now() + period, period);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        self.session = Some(Session {
            conn,
            pushes,
            keepalive,
            last_message: Instant::now(),
        });
        Ok(())
    }

    /// Closes the session's connections.
    pub(crate) fn disconnect(&mut self) {
        self.session = None;
    }

    /// The next message; an error ends the session.
    pub(crate) async fn next_item(&mut self) -> Result<IngestItem, LinkError> {
        let timeout = self.config.command_timeout;
        let session = self.session.as_mut().ok_or(LinkError::Closed)?;
        loop {
            tokio::select! {
                push = session.pushes.recv() => {
                    let push = push.ok_or(LinkError::Closed)?;
                    if let Some(item) = item_of(push, &self.decoder)? {
                        session.last_message = Instant::now();
                        return Ok(item);
                    }
                }
                _ = session.keepalive.tick() => {
                    if session.last_message.elapsed() >= session.keepalive.period() {
                        // PING goes to every master: each holds some of
                        // the subscriptions.
                        let ping = redis::cmd("PING");
                        let pong = ping.query_async::<redis::Value>(&mut session.conn);
                        bounded("PING", timeout, pong).await?;
                    }
                }
            }
        }
    }
}

/// What a push means for the session: a message (`Some`), nothing
/// (subscription confirmations, pongs), or its end.
fn item_of(push: PushInfo, decoder: &BodyDecoder) -> Result<Option<IngestItem>, LinkError> {
    match push.kind {
        PushKind::SMessage => Ok(Msg::from_push_info(push).map(|message| {
            let body = Bytes::copy_from_slice(message.get_payload_bytes());
            IngestItem::Message(Incoming {
                decoded: decoder.decode(body, Some(message.get_channel_name())),
                offset: None,
                acker: None,
            })
        })),
        PushKind::Disconnection => Err(LinkError::Topology(
            "a cluster node closed its connection".to_owned(),
        )),
        // The source never unsubscribes: the server dropped the channel
        // because its slot moved to another master.
        PushKind::SUnsubscribe => Err(LinkError::Topology(format!(
            "the cluster moved shard channel {:?} to another node",
            push.data.first().map(channel_text).unwrap_or_default()
        ))),
        _ => Ok(None),
    }
}

fn channel_text(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn push(kind: PushKind, data: &[&str]) -> PushInfo {
        PushInfo {
            kind,
            data: data
                .iter()
                .map(|d| Value::BulkString(d.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn a_shard_message_is_an_event_of_its_channel() {
        let body = r#"{"pattern":"Doji","symbol":"AAPL"}"#;
        let item = item_of(
            push(PushKind::SMessage, &["tickstock.events.patterns", body]),
            &BodyDecoder::new(1 << 20),
        );
        let Ok(Some(IngestItem::Message(incoming))) = item else {
            panic!("not a message");
        };
        assert_eq!(incoming.decoded.unwrap().event_type(), "pattern_detected");
        assert!(incoming.offset.is_none());
    }

    #[test]
    fn a_dropped_node_or_a_moved_channel_ends_the_session() {
        assert!(item_of(
            push(PushKind::Disconnection, &[]),
            &BodyDecoder::new(1 << 20)
        )
        .is_err());
        let moved = item_of(
            push(PushKind::SUnsubscribe, &["a.b", "0"]),
            &BodyDecoder::new(1 << 20),
        );
        assert!(matches!(moved, Err(LinkError::Topology(why)) if why.contains("a.b")));
        assert!(matches!(
            item_of(
                push(PushKind::SSubscribe, &["a.b", "1"]),
                &BodyDecoder::new(1 << 20)
            ),
            Ok(None)
        ));
    }
}

//! [`ShardedConsumer`]: a stream spread over several keys (and, in a
//! cluster, over the masters that own them), read by one
//! [`StreamConsumer`] per key and handed to the hub in one offset order.
//!
//! The hub takes offsets only in increasing order, and a client resuming
//! from an offset (on this node or any other) must get exactly the events
//! after it. So an entry is released only when no shard can still produce
//! a smaller one ([`Merge`]): each shard's reads tell a *floor* for what it
//! has not delivered yet. A live read is pipelined after a `TIME` on the
//! shard's reader connection; when it comes back with fewer than COUNT
//! entries the shard was caught up, and whatever it gets later is stamped
//! at or after that clock; when its BLOCK runs out with nothing, at or
//! after that clock plus BLOCK. A shard with nothing to deliver therefore
//! holds the others back until its blocking read returns: at most BLOCK,
//! plus the clock skew between masters.
//!
//! Reads run concurrently, one per shard with nothing queued in the merge,
//! as futures owning their shard's consumer; a read in flight survives a
//! cancelled `next_item` and is collected by the next `connect`. A failure
//! of any shard ends the session for all: unreleased entries are pending at
//! their servers and every shard re-reads its pending entries next
//! session (the hub recognises the ones it already had by offset).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tickcast_core::ingest::{IngestItem, SourceCounters};
use tickcast_core::model::Offset;

use super::ack::AckQueue;
use super::entry::Entry;
use super::lag::{LagSink, ShardLags};
use super::merge::Merge;
use super::shard::Shard;
use super::{Batch, StreamConsumer};
use crate::cluster::Topology;
use crate::config::{ConfigError, RedisConfig};
use crate::link::LinkError;

/// A shard's read in flight, giving the shard's consumer back.
type Read = BoxFuture<'static, (usize, StreamConsumer, Result<Batch, LinkError>)>;

/// The state of a sharded streams consumer, kept across sessions.
pub(crate) struct ShardedConsumer {
    config: RedisConfig,
    /// Cluster seeds; `None`: every shard on the server at `config.url`.
    seeds: Option<Vec<redis::ConnectionInfo>>,
    /// Each shard's consumer; `None` while its read is in flight.
    shards: Vec<Option<StreamConsumer>>,
    /// Each shard's ack queue (its entries' ackers fill it).
    acks: Vec<Arc<AckQueue>>,
    reads: FuturesUnordered<Read>,
    merge: Merge<Entry>,
    /// Every shard's first entries (backfill and pending after the node
    /// started) have been released: later sessions only re-read pending.
    backfilled: bool,
    /// Per shard: its first batch of this session is still to come
    /// (`true`), or how many of its entries the merge still holds.
    first: Vec<(bool, usize)>,
}

impl ShardedConsumer {
    /// A consumer of the `config.stream_shards` keys of `config.stream`,
    /// in the cluster of `config.cluster` if it names one.
    pub(crate) fn new(config: RedisConfig) -> Result<Self, ConfigError> {
        let count = config.stream_shards.max(1);
        let seeds = match config.is_cluster() {
            true => Some(config.seeds()?),
            false => None,
        };
        // Until the first session finds the masters, every shard points at
        // the first seed (or the only server).
        let placeholder = match &seeds {
            Some(seeds) => {
                redis::Client::open(seeds[0].clone()).map_err(|e| ConfigError::InvalidUrl {
                    url: config.cluster[0].clone(),
                    reason: e.to_string(),
                })?
            }
            None => config.client()?,
        };
        let shards: Vec<StreamConsumer> = (0..count)
            .map(|i| {
                let shard_config = RedisConfig {
                    stream: config.shard_key(i),
                    ..config.clone()
                };
                StreamConsumer::for_shard(placeholder.clone(), shard_config, Shard::new(i, count))
            })
            .collect();
        Ok(Self {
            acks: shards.iter().map(|s| s.acks().clone()).collect(),
            shards: shards.into_iter().map(Some).collect(),
            reads: FuturesUnordered::new(),
            merge: Merge::new(count),
            backfilled: false,
            first: vec![(false, 0); count],
            seeds,
            config,
        })
    }

    /// Reports the sum of the shards' lags into `counters`.
    pub(crate) fn report_lag(&mut self, counters: Arc<SourceCounters>) {
        let lags = Arc::new(ShardLags::new(counters, self.shards.len()));
        for (i, shard) in self.shards.iter_mut().enumerate() {
            if let Some(shard) = shard {
                shard.report_lag_to(LagSink::Shard(lags.clone(), i));
            }
        }
    }

    /// Starts a session: finds each shard's master (in a cluster) and
    /// connects every shard (see [`StreamConsumer::connect`]).
    pub(crate) async fn connect(&mut self) -> Result<(), LinkError> {
        self.disconnect();
        // Reads of the last session still in flight give their consumers
        // back; what they read is pending at the server, read again below.
        while let Some((i, shard, _)) = self.reads.next().await {
            self.shards[i] = Some(shard);
        }
        let mut topology = match &self.seeds {
            Some(seeds) => Some(Topology::discover(seeds, self.config.command_timeout).await?),
            None => None,
        };
        let backfilled = self.backfilled;
        for (i, slot) in self.shards.iter_mut().enumerate() {
            let shard = slot.as_mut().ok_or(LinkError::Closed)?;
            if let Some(topology) = &mut topology {
                shard.set_client(topology.master_of(&self.config.shard_key(i)).await?);
            }
            shard.set_backfilled(backfilled);
            shard.connect().await?;
        }
        self.first = vec![(!backfilled, 0); self.shards.len()];
        Ok(())
    }

    /// Ends the session. Entries not released are pending at their
    /// servers: the next session reads them again.
    pub(crate) fn disconnect(&mut self) {
        self.merge.clear();
        for shard in self.shards.iter_mut().flatten() {
            shard.disconnect();
        }
    }

    /// The next item in offset order; an error of any shard ends the
    /// session.
    pub(crate) async fn next_item(&mut self) -> Result<IngestItem, LinkError> {
        loop {
            while let Some((i, entry)) = self.merge.pop() {
                self.released(i);
                if let Some(item) = entry.into_item(self.config.max_body_bytes, &self.acks[i]) {
                    return Ok(item);
                }
            }
            let starving: Vec<usize> = self.merge.starving().collect();
            for i in starving {
                if let Some(mut shard) = self.shards[i].take() {
                    self.reads.push(Box::pin(async move {
                        let batch = shard.next_batch().await;
                        (i, shard, batch)
                    }));
                }
            }
            let (i, shard, batch) = self.reads.next().await.ok_or(LinkError::Closed)?;
            self.shards[i] = Some(shard);
            let batch = batch?;
            if let Some((awaited, left)) = self.first.get_mut(i) {
                if *awaited {
                    *awaited = false;
                    *left = batch.entries.len();
                }
            }
            self.merge.push(i, keyed(batch.entries), batch.floor);
        }
    }

    /// Counts one released entry of shard `i` against its first batch;
    /// once every shard's first batch is out, later sessions skip
    /// backfill.
    fn released(&mut self, i: usize) {
        if self.backfilled {
            return;
        }
        if let Some((_, left)) = self.first.get_mut(i) {
            *left = left.saturating_sub(1);
        }
        if self
            .first
            .iter()
            .all(|(awaited, left)| !awaited && *left == 0)
        {
            self.backfilled = true;
        }
    }
}

/// Entries with the offsets the merge orders them by. An entry without one
/// (an id Redis never produces) keeps its place after the entry before it.
fn keyed(entries: Vec<Entry>) -> Vec<(Offset, Entry)> {
    let mut last = Offset::new(0, 0);
    entries
        .into_iter()
        .map(|entry| {
            if let Some(offset) = entry.offset() {
                last = offset;
            }
            (last, entry)
        })
        .collect()
}

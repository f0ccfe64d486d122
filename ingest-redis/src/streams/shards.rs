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
//! after that clock plus BLOCK. A shard with nothing to deliver would
//! therefore hold the others back until its blocking read returns (at most
//! BLOCK and Redis's timer tick); so while it does, a [`probe`] on its
//! control connection asks for a floor at once.
//!
//! Reads run concurrently, one per shard with nothing queued in the merge,
//! as futures owning their shard's consumer; a read in flight survives a
//! cancelled `next_item` and is collected by the next `connect`. A failure
//! of any shard ends the session for all: every shard's group goes back
//! to its cursor next session, so unreleased entries are read again (the
//! hub recognises the ones it already had by offset).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use redis::aio::MultiplexedConnection;
use tickcast_core::ingest::{BodyDecoder, IngestItem, SourceCounters};
use tickcast_core::model::Offset;

use super::cursor::Cursor;
use super::entry::Entry;
use super::group::group_info;
use super::lag::{LagSink, ShardLags};
use super::merge::Merge;
use super::probe::probe;
use super::shard::Shard;
use super::{Batch, StreamConsumer};
use crate::cluster::Topology;
use crate::config::{ConfigError, RedisConfig};
use crate::link::LinkError;

/// What a future in flight comes back with.
enum Done {
    /// Shard `.0`'s read, giving its consumer back (boxed: a consumer is
    /// large, a probe's answer small).
    Read(usize, Box<StreamConsumer>, Result<Batch, LinkError>),
    /// A probe of shard `.1` in session `.0`: a floor, if it found one.
    Probe(u64, usize, Option<Offset>),
}

/// A read or a probe in flight.
type Work = BoxFuture<'static, Done>;

/// What the sharded consumer knows of one shard in this session, for its
/// probes.
#[derive(Default)]
struct Probing {
    /// The shard's control connection.
    control: Option<MultiplexedConnection>,
    /// The read in flight is a live one.
    live: bool,
    /// The newest stream id received from the shard this session.
    received: Offset,
    /// A probe is in flight.
    running: bool,
    /// The merge's head the last probes were for, and how many were sent
    /// for it. A probe in the head's own millisecond finds a floor not
    /// above it (an entry may still come in that millisecond), so it is
    /// asked again a millisecond later, up to [`PROBES_PER_HEAD`] times
    /// (beyond that the shard's clock lags: its read will tell).
    asked_for: Option<(Offset, u32)>,
    /// The last probe found nothing on its way (a floor, however low):
    /// asking again may help. After one that found something on its way,
    /// the read brings it.
    clear: bool,
}

/// Probes sent for one head of the merge.
const PROBES_PER_HEAD: u32 = 8;

/// The state of a sharded streams consumer, kept across sessions.
pub(crate) struct ShardedConsumer {
    config: RedisConfig,
    /// Decodes entry bodies (with the hub's schema once attached).
    pub(crate) decoder: BodyDecoder,
    /// Cluster seeds; `None`: every shard on the server at `config.url`.
    seeds: Option<Vec<redis::ConnectionInfo>>,
    /// Each shard's consumer; `None` while its read is in flight.
    shards: Vec<Option<StreamConsumer>>,
    /// Each shard's cursor (its entries' ackers move it).
    cursors: Vec<Arc<Cursor>>,
    work: FuturesUnordered<Work>,
    merge: Merge<Entry>,
    probing: Vec<Probing>,
    /// Counts sessions, so a probe of an ended one is ignored.
    session: u64,
    /// Every shard's first entries (backfill after the node started) have
    /// been released: later sessions load none.
    backfilled: bool,
    /// `backfilled` has just turned true: `Connected` is owed (see
    /// `RedisSource`: ready once the reloaded history is in the hub).
    connected_owed: bool,
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
            decoder: BodyDecoder::new(config.max_body_bytes),
            cursors: shards.iter().map(|s| s.cursor().clone()).collect(),
            shards: shards.into_iter().map(Some).collect(),
            work: FuturesUnordered::new(),
            merge: Merge::new(count),
            probing: (0..count).map(|_| Probing::default()).collect(),
            session: 0,
            backfilled: false,
            connected_owed: false,
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
        // back; what they read is read again (`connect` puts each group
        // back at its cursor).
        while let Some(done) = self.work.next().await {
            if let Done::Read(i, shard, _) = done {
                self.shards[i] = Some(*shard);
            }
        }
        self.session = self.session.wrapping_add(1);
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
            let mut control = shard.control().ok_or(LinkError::Closed)?;
            // The group is at the node's cursor now: what the live reads
            // of this session are handed comes after it.
            let key = self.config.shard_key(i);
            let delivered = group_info(&mut control, &key, &self.config.group)
                .await?
                .and_then(|g| g.last_delivered_id.parse().ok())
                .unwrap_or_default();
            self.probing[i] = Probing {
                control: Some(control),
                received: delivered,
                ..Probing::default()
            };
        }
        self.first = vec![(!backfilled, 0); self.shards.len()];
        Ok(())
    }

    /// Ends the session. Entries not released are read again next
    /// session (each group goes back to its cursor).
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
            if std::mem::take(&mut self.connected_owed) {
                return Ok(IngestItem::Connected);
            }
            while let Some((i, entry)) = self.merge.pop() {
                self.released(i);
                if let Some(item) = entry.into_item(&self.decoder, &self.cursors[i]) {
                    return Ok(item);
                }
                if self.connected_owed {
                    break;
                }
            }
            if self.connected_owed {
                continue;
            }
            let starving: Vec<usize> = self.merge.starving().collect();
            for &i in &starving {
                if let Some(shard) = self.shards[i].take() {
                    self.probing[i].live = shard.reads_live();
                    let mut shard = Box::new(shard);
                    self.work.push(Box::pin(async move {
                        let batch = shard.next_batch().await;
                        Done::Read(i, shard, batch)
                    }));
                }
            }
            if let Some(head) = self.merge.head() {
                for i in starving {
                    self.probe(i, head);
                }
            }
            match self.work.next().await.ok_or(LinkError::Closed)? {
                Done::Read(i, shard, batch) => {
                    self.shards[i] = Some(*shard);
                    self.take(i, batch?);
                }
                Done::Probe(session, i, floor) => {
                    if session == self.session {
                        self.probing[i].running = false;
                        self.probing[i].clear = floor.is_some();
                        if floor.is_some() {
                            self.merge.push(i, Vec::new(), floor);
                        }
                    }
                }
            }
        }
    }

    /// Adds a read of shard `i` to the merge.
    fn take(&mut self, i: usize, batch: Batch) {
        if let Some((awaited, left)) = self.first.get_mut(i) {
            if *awaited {
                *awaited = false;
                *left = batch.entries.len();
            }
        }
        let newest = batch
            .entries
            .iter()
            .filter_map(|e| e.raw.id.parse::<Offset>().ok())
            .max();
        if let Some(newest) = newest {
            let received = &mut self.probing[i].received;
            *received = (*received).max(newest);
        }
        self.merge.push(i, keyed(batch.entries), batch.floor);
        // Every first batch may have come empty.
        self.check_first_out();
    }

    /// Probes shard `i` if the merge's `head` waits on it while its live
    /// read is in flight (see [`probe`]): once for a new head, again a
    /// millisecond later while the last probe found nothing on its way
    /// (up to [`PROBES_PER_HEAD`]).
    fn probe(&mut self, i: usize, head: Offset) {
        let waiting = self.shards[i].is_none() && self.merge.holds_back(i, head);
        let state = &mut self.probing[i];
        if !waiting || !state.live || state.running {
            return;
        }
        let sent = match state.asked_for {
            Some((asked, sent)) if asked == head => sent,
            _ => 0,
        };
        if sent >= PROBES_PER_HEAD || (sent > 0 && !state.clear) {
            return;
        }
        let Some(control) = state.control.clone() else {
            return;
        };
        state.running = true;
        state.asked_for = Some((head, sent + 1));
        let (session, received) = (self.session, state.received);
        let key = self.config.shard_key(i);
        let group = self.config.group.clone();
        let pause = std::time::Duration::from_millis(u64::from(sent.min(1)));
        self.work.push(Box::pin(async move {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            Done::Probe(session, i, probe(control, key, group, received).await)
        }));
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
        self.check_first_out();
    }

    /// Marks the first entries done once every shard's first batch is
    /// out, owing `Connected` then.
    fn check_first_out(&mut self) {
        if self.backfilled {
            return;
        }
        if self
            .first
            .iter()
            .all(|(awaited, left)| !awaited && *left == 0)
        {
            self.backfilled = true;
            self.connected_owed = true;
        }
    }

    /// Still handing out the entries reloaded at the node's start:
    /// `Connected` comes after them.
    pub(crate) fn is_reloading(&self) -> bool {
        !self.backfilled
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

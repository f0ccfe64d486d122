//! Streams mode: [`StreamConsumer`] reads one stream as its node's own
//! consumer group.
//!
//! A session (one connection's lifetime) goes:
//! 1. write the cursor left over from the last session ([`cursor`]);
//! 2. make sure the group exists ([`group::ensure_group`]);
//! 3. put the group at the node's cursor ([`start::place`]): what was read
//!    but never accepted by the hub (a crash, a broken connection) is read
//!    again;
//! 4. first session of this node only: hand out backfill, the entries up
//!    to that place, for the hub's history ([`start::backfill`]);
//! 5. read new entries (`XREADGROUP ... BLOCK ... NOACK ... >`), writing
//!    the cursor before each read.
//!
//! Two connections: `reader` may sit in a blocking XREADGROUP, so cursor
//! writes between reads, group management and lag queries go over
//! `control`, which never waits behind it.
//!
//! A sharded stream (`stream_shards > 1`, or any stream in a cluster) is
//! read by [`ShardedConsumer`]: one `StreamConsumer` per shard key, on the
//! shard's master, each handing its reads over as batches
//! ([`StreamConsumer::next_batch`]) to a [`merge::Merge`] that puts them
//! in one offset order.

mod cursor;
mod entry;
mod group;
mod lag;
mod merge;
mod probe;
mod raw;
mod reads;
mod shard;
mod shards;
mod start;
mod wire;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use tickcast_core::ingest::{BodyDecoder, IngestItem, SourceCounters};

use tickcast_core::model::Offset;

use self::cursor::Cursor;
use self::entry::{Delivery, Entry};
use self::group::{ensure_group, group_info, is_no_group, GroupStart};
use self::lag::LagSink;
use self::reads::commit_and_read_new;
use self::shard::Shard;
use self::wire::WireReader;
use crate::config::RedisConfig;
use crate::connect::multiplexed;
use crate::link::LinkError;

pub use self::cursor::cursor_key;
pub(crate) use self::raw::{BODY_FIELD, CHANNEL_FIELD, ID_FIELD};
pub(crate) use self::shard::Shard as StreamShard;
pub(crate) use self::shards::ShardedConsumer;

/// How often at most the stream is trimmed and the group's lag asked for.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The two connections of one session.
struct Connections {
    /// Blocking reads of new entries (and the acks riding with them).
    reader: WireReader,
    /// Everything else; never blocked.
    control: MultiplexedConnection,
}

/// The state of a streams consumer, kept across sessions.
pub(crate) struct StreamConsumer {
    client: redis::Client,
    config: RedisConfig,
    /// Decodes entry bodies (with the hub's schema once attached).
    pub(crate) decoder: BodyDecoder,
    conns: Option<Connections>,
    /// Entries read and not yet handed out.
    queue: VecDeque<Entry>,
    /// The newest entry id the hub accepted (its entries' ackers move it).
    cursor: Arc<Cursor>,
    /// Where the cursor is written ([`cursor_key`]).
    cursor_key: String,
    /// The group has been created or found once: from then on a missing
    /// group means it vanished, and it is recreated from the beginning.
    group_seen: bool,
    /// Backfill is loaded once per node start, not per reconnect: after a
    /// reconnect the hub already has it. Set once the first entries are
    /// all handed out; a session that breaks before loads them again (what
    /// the hub already has it recognises by offset).
    backfilled: bool,
    /// A `>` read was sent and its reply not yet queued. Still set at the
    /// next read means the caller dropped `next()` mid-read (a `select!`):
    /// the group has moved past entries nobody got, and the reader's
    /// connection may still hold their reply, so a new session starts.
    reading: bool,
    /// The start entries loaded by `connect` are still to be handed out as
    /// one batch (`next_batch`), even when there are none: a sharded
    /// consumer counts them before it reports `Connected`.
    start_pending: bool,
    /// Where to report the group's lag, if anywhere.
    lag: Option<LagSink>,
    upkept: Option<Instant>,
    /// The shard this consumer reads (`Shard::SOLE` unsharded): it makes
    /// the entries' offsets, and a sharded read asks the clock too.
    shard: Shard,
}

/// One read of a shard, for the merge.
pub(crate) struct Batch {
    /// The entries, in id order.
    pub(crate) entries: Vec<Entry>,
    /// Every entry of the shard not read yet has an offset at or above
    /// this, when the read could tell (see `shards`).
    pub(crate) floor: Option<Offset>,
}

impl StreamConsumer {
    /// A consumer of `config.stream`; connects on [`connect`](Self::connect).
    pub(crate) fn new(client: redis::Client, config: RedisConfig) -> Self {
        Self {
            client,
            decoder: BodyDecoder::new(config.max_body_bytes),
            cursor_key: cursor_key(&config.stream, &config.group),
            config,
            conns: None,
            queue: VecDeque::new(),
            cursor: Arc::default(),
            group_seen: false,
            backfilled: false,
            reading: false,
            start_pending: false,
            lag: None,
            upkept: None,
            shard: Shard::SOLE,
        }
    }

    /// Still handing out the entries reloaded at the node's start (its
    /// first session): `Connected` comes after them.
    pub(crate) fn is_reloading(&self) -> bool {
        !self.backfilled
    }

    /// A consumer of one shard: `config.stream` is the shard's key,
    /// `client` its master.
    pub(crate) fn for_shard(client: redis::Client, config: RedisConfig, shard: Shard) -> Self {
        let mut consumer = Self::new(client, config);
        consumer.shard = shard;
        consumer
    }

    /// Reports the group's lag (Redis 7: entries not yet delivered to it)
    /// into `counters`.
    pub(crate) fn report_lag(&mut self, counters: Arc<SourceCounters>) {
        self.lag = Some(LagSink::Whole(counters));
    }

    /// Reports the lag into `sink` (a shard's part of the sum).
    pub(crate) fn report_lag_to(&mut self, sink: LagSink) {
        self.lag = Some(sink);
    }

    /// The server to connect to from the next session on (a shard's
    /// master moved).
    pub(crate) fn set_client(&mut self, client: redis::Client) {
        self.client = client;
    }

    /// Whether the next session skips backfill: a sharded consumer decides
    /// it for all its shards, once the merge has released every first
    /// entry.
    pub(crate) fn set_backfilled(&mut self, done: bool) {
        self.backfilled = done;
    }

    /// The cursor its entries' ackers move.
    pub(crate) fn cursor(&self) -> &Arc<Cursor> {
        &self.cursor
    }

    /// The session's control connection (never blocked), for a sharded
    /// consumer's probes while a read is in flight.
    pub(crate) fn control(&self) -> Option<MultiplexedConnection> {
        self.conns.as_ref().map(|c| c.control.clone())
    }

    /// The next read is a live one (`>`), not the entries queued at
    /// connect.
    pub(crate) fn reads_live(&self) -> bool {
        self.queue.is_empty()
    }

    /// Starts a session (see the module docs).
    pub(crate) async fn connect(&mut self) -> Result<(), LinkError> {
        self.disconnect();
        let timeout = self.config.command_timeout;
        let reader = WireReader::open(
            self.client.get_connection_info(),
            timeout,
            self.config.block + timeout,
            self.config.max_read_bytes(),
        )
        .await?;
        let mut control = multiplexed(&self.client, timeout, timeout).await?;
        self.cursor.flush(&mut control, &self.cursor_key).await?;
        self.ensure_group(&mut control).await?;
        let place = self.place(&mut control).await?;
        if !self.backfilled {
            let shard = self.shard;
            self.queue = start::backfill(&mut control, &self.config, place)
                .await?
                .into_iter()
                .map(|entry| entry.in_shard(shard))
                .collect();
            self.start_pending = true;
        }
        self.reading = false;
        self.conns = Some(Connections { reader, control });
        Ok(())
    }

    /// Ends the session. Entries read but not handed out are dropped: the
    /// next session puts the group back at the cursor and reads them
    /// again.
    pub(crate) fn disconnect(&mut self) {
        self.queue.clear();
        self.start_pending = false;
        self.conns = None;
    }

    /// The next item of this session; an error ends the session.
    pub(crate) async fn next_item(&mut self) -> Result<IngestItem, LinkError> {
        loop {
            if self.cursor.unwritten() >= self.config.count() {
                self.flush_cursor().await?;
            }
            if let Some(entry) = self.queue.pop_front() {
                match entry.into_item(&self.decoder, &self.cursor) {
                    Some(item) => return Ok(item),
                    None => continue,
                }
            }
            if !self.backfilled {
                // The start entries are all out: from now on the hub has
                // the reloaded history (see `RedisSource`).
                self.backfilled = true;
                return Ok(IngestItem::Connected);
            }
            self.upkeep();
            self.read().await?;
        }
    }

    /// The entries queued at connect (backfill and pending), or else the
    /// next read's, with the floor the read tells (for the merge of a
    /// sharded stream). Writes the cursor first when it moved by a read
    /// batch's worth.
    pub(crate) async fn next_batch(&mut self) -> Result<Batch, LinkError> {
        if self.cursor.unwritten() >= self.config.count() {
            self.flush_cursor().await?;
        }
        let start = std::mem::take(&mut self.start_pending);
        let floor = match self.queue.is_empty() && !start {
            true => {
                self.upkeep();
                self.read().await?
            }
            false => None,
        };
        Ok(Batch {
            entries: self.queue.drain(..).collect(),
            floor,
        })
    }

    /// Reads the next batch into the queue (possibly none: BLOCK ran out).
    /// For a shard of a sharded stream, a live read also answers a floor
    /// for the shard's entries not read yet, from the master's clock
    /// (`TIME`) just before the read: entries added after a read that
    /// found the shard caught up have ids at or above that clock (auto ids
    /// are `max(now, last + 1)`), and after a read whose BLOCK ran out
    /// (nothing came for `block`) at or above that clock plus `block`.
    async fn read(&mut self) -> Result<Option<Offset>, LinkError> {
        if self.reading {
            self.connect().await?;
            return Ok(None);
        }
        let conns = self.conns.as_mut().ok_or(LinkError::Closed)?;
        self.reading = true;
        let commit = self.cursor.take();
        let clock = self.shard != Shard::SOLE;
        let read = commit_and_read_new(
            &mut conns.reader,
            &self.config,
            commit.as_deref().map(|id| (self.cursor_key.as_str(), id)),
            clock,
        )
        .await;
        self.reading = false;
        let (entries, time) = match read {
            Ok(read) => read,
            Err(error) => {
                // Written again on the next read or connection.
                if commit.is_some() {
                    self.cursor.unwritten_again();
                }
                return match error {
                    LinkError::Redis(error) if is_no_group(&error) => {
                        self.recreate_group().await?;
                        Ok(None)
                    }
                    error => Err(error),
                };
            }
        };
        let floor = time.and_then(|ms| self.floor(ms, entries.len()));
        let shard = self.shard;
        self.queue.extend(
            entries
                .into_iter()
                .map(|e| Entry::new(e, Delivery::Live).in_shard(shard)),
        );
        Ok(floor)
    }

    /// The group vanished under a running node (Redis restarted without
    /// its data, or the stream was deleted): created again from the
    /// stream's start, then put at this run's cursor, so entries added
    /// meanwhile are not skipped and those the hub had are not read again.
    async fn recreate_group(&mut self) -> Result<(), LinkError> {
        tracing::warn!(
            stream = self.config.stream,
            group = self.config.group,
            "consumer group vanished (server restarted without data?); recreating it"
        );
        let mut control = self.control().ok_or(LinkError::Closed)?;
        self.group_seen = true;
        ensure_group(
            &mut control,
            &self.config.stream,
            &self.config.group,
            GroupStart::Beginning,
        )
        .await?;
        self.place(&mut control).await?;
        Ok(())
    }

    /// The floor after a live read of `read` entries that began at the
    /// master's `now_ms`: that clock if the read found the shard caught up
    /// (fewer than COUNT), that clock plus BLOCK if nothing came at all
    /// (BLOCK ran out), nothing more than its last entry otherwise.
    fn floor(&self, now_ms: u64, read: usize) -> Option<Offset> {
        let block_ms = u64::try_from(self.config.block.as_millis()).unwrap_or(u64::MAX);
        match read {
            0 => Some(Offset::new(now_ms.saturating_add(block_ms.max(1)), 0)),
            n if n < self.config.count() => Some(Offset::new(now_ms, 0)),
            _ => None,
        }
    }

    /// Creates the group if needed: from `$` the first time this node
    /// meets it, from `0` once it has vanished (see [`GroupStart`]).
    async fn ensure_group(&mut self, control: &mut MultiplexedConnection) -> Result<(), LinkError> {
        let start = match self.group_seen {
            false => GroupStart::Latest,
            true => GroupStart::Beginning,
        };
        ensure_group(control, &self.config.stream, &self.config.group, start).await?;
        self.group_seen = true;
        Ok(())
    }

    /// Puts the group at the cursor (see [`start::place`]). A cursor that
    /// has not moved in this run starts at that place, and is written with
    /// the first read (in its pipeline, before Redis runs the read): a
    /// crash or a lost connection before the hub accepted anything must
    /// come back here, not to wherever the group's reads have got to.
    async fn place(
        &mut self,
        control: &mut MultiplexedConnection,
    ) -> Result<Option<Offset>, LinkError> {
        let accepted = self.cursor.accepted();
        let place = start::place(control, &self.config, accepted, &self.cursor_key).await?;
        if let Some(place) = place {
            self.cursor.advance(place.to_string());
        }
        Ok(place)
    }

    async fn flush_cursor(&mut self) -> Result<(), LinkError> {
        let conns = self.conns.as_mut().ok_or(LinkError::Closed)?;
        self.cursor
            .flush(&mut conns.control, &self.cursor_key)
            .await?;
        Ok(())
    }

    /// Once per [`UPKEEP_INTERVAL`], on a task of its own (off the read
    /// path; a failure only leaves things as they are, and the reads
    /// notice a broken connection themselves): trims the stream to about
    /// `stream_maxlen` entries (`XTRIM ~`, so entries producers XADDed
    /// without MAXLEN are bounded too), and updates the lag counter
    /// (XINFO GROUPS, which answers every node's group).
    fn upkeep(&mut self) {
        let Some(conns) = &self.conns else {
            return;
        };
        let trim = self.config.stream_maxlen;
        if trim.is_none() && self.lag.is_none() {
            return;
        }
        if self.upkept.is_some_and(|at| at.elapsed() < UPKEEP_INTERVAL) {
            return;
        }
        self.upkept = Some(Instant::now());
        let counters = self.lag.clone();
        let mut control = conns.control.clone();
        let (stream, group) = (self.config.stream.clone(), self.config.group.clone());
        tokio::spawn(async move {
            if let Some(maxlen) = trim {
                let trimmed: redis::RedisResult<u64> = redis::cmd("XTRIM")
                    .arg(&stream)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(maxlen)
                    .query_async(&mut control)
                    .await;
                if let Err(error) = trimmed {
                    tracing::debug!(stream, "XTRIM failed: {error}");
                }
            }
            let Some(counters) = counters else {
                return;
            };
            match group_info(&mut control, &stream, &group).await {
                Ok(info) => {
                    if let Some(lag) = info.and_then(|g| g.lag) {
                        counters.set(lag as u64);
                    }
                }
                Err(error) => tracing::debug!(stream, "lag query failed: {error}"),
            }
        });
    }
}

impl Drop for StreamConsumer {
    fn drop(&mut self) {
        if let Some(conns) = self.conns.take() {
            self.cursor
                .flush_detached(conns.control, self.cursor_key.clone());
        }
    }
}

//! Streams mode: [`StreamConsumer`] reads one stream as its node's own
//! consumer group.
//!
//! A session (one connection's lifetime) goes:
//! 1. send the acks left over from the last session;
//! 2. make sure the group exists ([`group::ensure_group`]);
//! 3. first session of this node only: hand out backfill merged with this
//!    consumer's pending entries ([`start::first_entries`]); every later
//!    session re-reads its pending entries (`XREADGROUP ... 0`), which
//!    covers what was read but not acknowledged before the connection
//!    broke;
//! 4. read new entries (`XREADGROUP ... BLOCK ... >`), acknowledging the
//!    previous batch before each read.
//!
//! Two connections: `reader` may sit in a blocking XREADGROUP, so acks,
//! group management and lag queries go over `control`, which never waits
//! behind it.

mod ack;
mod entry;
mod group;
mod reads;
mod start;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use tickcast_core::ingest::{IngestItem, SourceCounters};

use self::ack::AckQueue;
use self::entry::{Delivery, Entry};
use self::group::{ensure_group, group_info, is_no_group, GroupStart};
use self::reads::{ack_and_read_new, read_group};
use crate::config::RedisConfig;
use crate::connect::multiplexed;
use crate::link::LinkError;

pub(crate) use self::entry::{BODY_FIELD, CHANNEL_FIELD, ID_FIELD};

/// How often at most the stream is trimmed and the group's lag asked for.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The two connections of one session.
struct Connections {
    /// Blocking reads of new entries.
    reader: MultiplexedConnection,
    /// Everything else; never blocked.
    control: MultiplexedConnection,
}

/// What the next read from Redis asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// This consumer's pending entries after the id.
    Pending(String),
    /// New entries (`>`).
    Live,
}

/// The state of a streams consumer, kept across sessions.
pub(crate) struct StreamConsumer {
    client: redis::Client,
    config: RedisConfig,
    conns: Option<Connections>,
    /// Entries read and not yet handed out.
    queue: VecDeque<Entry>,
    phase: Phase,
    /// XACKs waiting to be sent.
    acks: Arc<AckQueue>,
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
    /// the entries Redis delivered are pending, so they are re-read.
    reading: bool,
    /// Where to report the group's lag, if anywhere.
    lag: Option<Arc<SourceCounters>>,
    upkept: Option<Instant>,
}

impl StreamConsumer {
    /// A consumer of `config.stream`; connects on [`connect`](Self::connect).
    pub(crate) fn new(client: redis::Client, config: RedisConfig) -> Self {
        Self {
            client,
            config,
            conns: None,
            queue: VecDeque::new(),
            phase: Phase::Live,
            acks: Arc::default(),
            group_seen: false,
            backfilled: false,
            reading: false,
            lag: None,
            upkept: None,
        }
    }

    /// Still handing out the entries reloaded at the node's start (its
    /// first session): `Connected` comes after them.
    pub(crate) fn is_reloading(&self) -> bool {
        !self.backfilled
    }

    /// Reports the group's lag (Redis 7: entries not yet delivered to it)
    /// into `counters`.
    pub(crate) fn report_lag(&mut self, counters: Arc<SourceCounters>) {
        self.lag = Some(counters);
    }

    /// Starts a session (see the module docs).
    pub(crate) async fn connect(&mut self) -> Result<(), LinkError> {
        self.disconnect();
        let timeout = self.config.command_timeout;
        let reader = multiplexed(&self.client, timeout, self.config.block + timeout).await?;
        let mut control = multiplexed(&self.client, timeout, timeout).await?;
        self.acks
            .flush(&mut control, &self.config.stream, &self.config.group)
            .await?;
        self.ensure_group(&mut control).await?;
        if self.backfilled {
            self.phase = Phase::Pending("0".to_owned());
        } else {
            self.queue = start::first_entries(&mut control, &self.config)
                .await?
                .into();
            self.phase = Phase::Live;
        }
        self.reading = false;
        self.conns = Some(Connections { reader, control });
        Ok(())
    }

    /// Ends the session. Entries read but not handed out are dropped: they
    /// are pending at the server and the next session re-reads them.
    pub(crate) fn disconnect(&mut self) {
        self.queue.clear();
        self.conns = None;
    }

    /// The next item of this session; an error ends the session.
    pub(crate) async fn next_item(&mut self) -> Result<IngestItem, LinkError> {
        loop {
            if self.acks.len() >= self.config.count() {
                self.flush_acks().await?;
            }
            if let Some(entry) = self.queue.pop_front() {
                match entry.into_item(self.config.max_body_bytes, &self.acks) {
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

    /// Reads the next batch into the queue (possibly none: BLOCK ran out).
    async fn read(&mut self) -> Result<(), LinkError> {
        if self.phase == Phase::Live && self.reading {
            self.phase = Phase::Pending("0".to_owned());
        }
        let conns = self.conns.as_mut().ok_or(LinkError::Closed)?;
        let result = match &self.phase {
            Phase::Pending(after) => {
                self.acks
                    .flush(&mut conns.control, &self.config.stream, &self.config.group)
                    .await?;
                read_group(&mut conns.control, &self.config, after).await
            }
            Phase::Live => {
                self.reading = true;
                let acks = self.acks.take();
                let read = ack_and_read_new(&mut conns.reader, &self.config, &acks).await;
                if read.is_err() {
                    // Sent again on the next connection (an XACK that did
                    // get through is harmless to repeat).
                    self.acks.put_back(acks);
                }
                read
            }
        };
        self.reading = false;
        let entries = match result {
            Ok(entries) => entries,
            Err(error) if is_no_group(&error) => {
                tracing::warn!(
                    stream = self.config.stream,
                    group = self.config.group,
                    "consumer group vanished (server restarted without data?); recreating it"
                );
                let conns = self.conns.as_mut().ok_or(LinkError::Closed)?;
                self.group_seen = true;
                ensure_group(
                    &mut conns.control,
                    &self.config.stream,
                    &self.config.group,
                    GroupStart::Beginning,
                )
                .await?;
                self.phase = Phase::Pending("0".to_owned());
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        };
        if let Phase::Pending(after) = &mut self.phase {
            match entries.last() {
                Some(last) => *after = last.id.clone(),
                None => self.phase = Phase::Live,
            }
        }
        self.queue
            .extend(entries.into_iter().map(|e| Entry::new(e, Delivery::Live)));
        Ok(())
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

    async fn flush_acks(&mut self) -> Result<(), LinkError> {
        let conns = self.conns.as_mut().ok_or(LinkError::Closed)?;
        self.acks
            .flush(&mut conns.control, &self.config.stream, &self.config.group)
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
                        counters.set_lag(lag as u64);
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
            self.acks.flush_detached(
                conns.control,
                self.config.stream.clone(),
                self.config.group.clone(),
            );
        }
    }
}

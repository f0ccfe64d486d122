//! What a stream consumer hands out first after the node started: the
//! group's history for the hub's history ring, with this consumer's
//! pending entries (read before, never acknowledged) in their place.

use std::collections::HashSet;

use redis::aio::MultiplexedConnection;

use super::entry::{Delivery, Entry};
use super::group::group_info;
use super::raw::RawEntry;
use super::reads::{read_all_pending, read_before};
use crate::config::RedisConfig;

/// The entries to hand out before live reads, oldest first: this
/// consumer's pending entries as live messages, and up to
/// `config.backfill` entries the group had consumed up to its
/// last-delivered id as backfill.
///
/// They are merged by id because the hub takes offsets only in increasing
/// order: a pending entry published after the backfill that follows it
/// would be refused as stale, and one published before the backfill that
/// precedes it would make that backfill stale. Merged, each lands where it
/// belongs: backfill in the history, pending entries live (the previous
/// run may have crashed before handing them to its hub).
pub(crate) async fn first_entries(
    conn: &mut MultiplexedConnection,
    config: &RedisConfig,
) -> redis::RedisResult<Vec<Entry>> {
    let pending = read_all_pending(conn, config).await?;
    let backfill = match config.backfill {
        0 => Vec::new(),
        limit => consumed(conn, config, limit, &pending).await?,
    };
    let mut entries: Vec<Entry> = pending
        .into_iter()
        .map(|raw| Entry::new(raw, Delivery::Live))
        .chain(
            backfill
                .into_iter()
                .map(|raw| Entry::new(raw, Delivery::Backfill)),
        )
        .collect();
    entries.sort_by_key(Entry::offset);
    tracing::info!(
        stream = config.stream,
        group = config.group,
        entries = entries.len(),
        "loaded backfill and pending entries"
    );
    Ok(entries)
}

/// Up to `limit` entries at or before the group's last-delivered id,
/// without the `pending` ones.
async fn consumed(
    conn: &mut MultiplexedConnection,
    config: &RedisConfig,
    limit: usize,
    pending: &[RawEntry],
) -> redis::RedisResult<Vec<RawEntry>> {
    let Some(group) = group_info(conn, &config.stream, &config.group).await? else {
        return Ok(Vec::new());
    };
    let Ok(last) = group.last_delivered_id.parse() else {
        return Ok(Vec::new());
    };
    let skip: HashSet<String> = pending.iter().map(|e| e.id.clone()).collect();
    read_before(conn, &config.stream, last, limit, config.count(), &skip).await
}

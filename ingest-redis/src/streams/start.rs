//! Where a stream consumer's session starts: [`place`] puts the node's
//! group at the node's cursor, and on the node's first session
//! [`backfill`] loads the entries up to it for the hub's history.

use redis::aio::MultiplexedConnection;
use redis::streams::StreamPendingReply;
use redis::AsyncCommands;
use tickcast_core::model::Offset;

use super::entry::{Delivery, Entry};
use super::group::group_info;
use super::reads::read_before;
use crate::config::RedisConfig;

/// Puts this node's group where its live reads go on from, and returns
/// that id (`None`: the group is gone; the next read says so).
///
/// The place is this run's cursor (`accepted`), else the cursor written in
/// Redis under `key`, else the group's last-delivered id (a group just
/// created, or one whose node never wrote a cursor). It is never after a
/// pending entry: pending entries were recorded by earlier versions of
/// tickcast, which read without NOACK and acknowledged each entry; they
/// are read again, and the pending list is dropped (`XGROUP
/// DELCONSUMER`). When the place differs
/// from the group's last-delivered id (entries were read but never
/// accepted: a crash, a broken connection), `XGROUP SETID` moves the group
/// to it.
pub(crate) async fn place(
    conn: &mut MultiplexedConnection,
    config: &RedisConfig,
    accepted: Option<String>,
    key: &str,
) -> redis::RedisResult<Option<Offset>> {
    let Some(group) = group_info(conn, &config.stream, &config.group).await? else {
        return Ok(None);
    };
    let delivered = group.last_delivered_id.parse::<Offset>().ok();
    let cursor = match accepted {
        Some(id) => Some(id),
        None => conn.get::<_, Option<String>>(key).await?,
    };
    let cursor = cursor.and_then(|id| match id.parse::<Offset>() {
        Ok(offset) => Some(offset),
        Err(_) => {
            tracing::warn!(key, id, "cursor is not a stream id; ignoring it");
            None
        }
    });
    let mut place = cursor.or(delivered);
    let pending: StreamPendingReply = conn.xpending(&config.stream, &config.group).await?;
    let legacy = match &pending {
        StreamPendingReply::Data(data) => data.start_id.parse::<Offset>().ok(),
        _ => None,
    };
    if let Some(first) = legacy {
        place = Some(place.map_or(first.predecessor(), |p| p.min(first.predecessor())));
    }
    if let Some(to) = place.filter(|to| Some(*to) != delivered) {
        let _: () = conn
            .xgroup_setid(&config.stream, &config.group, to.to_string())
            .await?;
        tracing::info!(
            stream = config.stream,
            group = config.group,
            from = group.last_delivered_id,
            to = %to,
            "moved the group back to the node's cursor"
        );
    }
    if let StreamPendingReply::Data(data) = pending {
        for consumer in data.consumers {
            let _: usize = conn
                .xgroup_delconsumer(&config.stream, &config.group, &consumer.name)
                .await?;
        }
        tracing::info!(
            stream = config.stream,
            group = config.group,
            entries = data.count,
            "dropped the pending list of an earlier version; its entries are read again"
        );
    }
    Ok(place)
}

/// Up to `config.backfill` entries at or before `place`, oldest first, as
/// backfill: the history a restarted node reloads so that clients can
/// resume across the restart.
pub(crate) async fn backfill(
    conn: &mut MultiplexedConnection,
    config: &RedisConfig,
    place: Option<Offset>,
) -> redis::RedisResult<Vec<Entry>> {
    let (Some(place), limit) = (place, config.backfill) else {
        return Ok(Vec::new());
    };
    if limit == 0 {
        return Ok(Vec::new());
    }
    let entries: Vec<Entry> = read_before(conn, &config.stream, place, limit, config.count())
        .await?
        .into_iter()
        .map(|raw| Entry::new(raw, Delivery::Backfill))
        .collect();
    tracing::info!(
        stream = config.stream,
        group = config.group,
        entries = entries.len(),
        "loaded backfill"
    );
    Ok(entries)
}

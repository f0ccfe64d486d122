//! The reads a stream consumer makes: its group's entries (new or
//! pending) and, for backfill, the entries before a given id.

use std::collections::HashSet;

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use tickcast_core::model::Offset;

use crate::config::RedisConfig;

/// XREADGROUP GROUP `group` `consumer` COUNT `count` [BLOCK ms] STREAMS
/// `stream` `after`. `after` is `>` for entries never delivered to the
/// group, or an id for this consumer's pending entries after that id (no
/// BLOCK then: Redis answers at once).
pub(crate) async fn read_group(
    conn: &mut MultiplexedConnection,
    config: &RedisConfig,
    after: &str,
) -> redis::RedisResult<Vec<StreamId>> {
    let mut options = StreamReadOptions::default()
        .group(&config.group, &config.consumer)
        .count(config.count());
    if after == ">" {
        let block_ms = config.block.as_millis().clamp(1, usize::MAX as u128) as usize;
        options = options.block(block_ms);
    }
    let reply: Option<StreamReadReply> = conn
        .xread_options(&[config.stream.as_str()], &[after], &options)
        .await?;
    Ok(reply
        .map(|reply| reply.keys.into_iter().flat_map(|key| key.ids).collect())
        .unwrap_or_default())
}

/// XACK of `acks` (if any) and a blocking `XREADGROUP ... >` in one
/// pipeline: one round trip per batch instead of two. Redis runs the XACK
/// before the read blocks.
pub(crate) async fn ack_and_read_new(
    conn: &mut MultiplexedConnection,
    config: &RedisConfig,
    acks: &[String],
) -> redis::RedisResult<Vec<StreamId>> {
    let block_ms = config.block.as_millis().clamp(1, usize::MAX as u128) as usize;
    let mut pipe = redis::pipe();
    if !acks.is_empty() {
        pipe.cmd("XACK")
            .arg(&config.stream)
            .arg(&config.group)
            .arg(acks)
            .ignore();
    }
    pipe.cmd("XREADGROUP")
        .arg("GROUP")
        .arg(&config.group)
        .arg(&config.consumer)
        .arg("COUNT")
        .arg(config.count())
        .arg("BLOCK")
        .arg(block_ms)
        .arg("STREAMS")
        .arg(&config.stream)
        .arg(">");
    let (reply,): (Option<StreamReadReply>,) = pipe.query_async(conn).await?;
    Ok(reply
        .map(|reply| reply.keys.into_iter().flat_map(|key| key.ids).collect())
        .unwrap_or_default())
}

/// This consumer's pending entries, all of them, oldest first.
pub(crate) async fn read_all_pending(
    conn: &mut MultiplexedConnection,
    config: &RedisConfig,
) -> redis::RedisResult<Vec<StreamId>> {
    let mut pending = Vec::new();
    let mut after = "0".to_owned();
    loop {
        let page = read_group(conn, config, &after).await?;
        let Some(last) = page.last() else {
            return Ok(pending);
        };
        after = last.id.clone();
        pending.extend(page);
    }
}

/// Up to `limit` entries at or before `last` (inclusive), oldest first,
/// leaving out the ids in `skip`. Read backwards in pages of `page`
/// because only the newest `limit` are wanted.
pub(crate) async fn read_before(
    conn: &mut MultiplexedConnection,
    stream: &str,
    last: Offset,
    limit: usize,
    page: usize,
    skip: &HashSet<String>,
) -> redis::RedisResult<Vec<StreamId>> {
    let mut window = Vec::new();
    let mut end = Some(last);
    let mut seen = 0;
    while let Some(until) = end.filter(|_| seen < limit) {
        let want = page.min(limit - seen);
        let reply: StreamRangeReply = conn
            .xrevrange_count(stream, until.to_string(), "-", want)
            .await?;
        let got = reply.ids.len();
        seen += got;
        // The next page ends just before the oldest entry of this one
        // (`predecessor` rather than the `(id` syntax, which Redis only
        // knows since 6.2).
        end = reply
            .ids
            .last()
            .and_then(|oldest| oldest.id.parse::<Offset>().ok())
            .filter(|oldest| *oldest > Offset::new(0, 0) && got == want)
            .map(Offset::predecessor);
        window.extend(reply.ids.into_iter().filter(|e| !skip.contains(&e.id)));
    }
    window.reverse();
    Ok(window)
}

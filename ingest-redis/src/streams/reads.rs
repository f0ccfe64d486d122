//! The reads a stream consumer makes: its group's entries (new or
//! pending) and, for backfill, the entries before a given id.

use std::collections::HashSet;

use redis::aio::MultiplexedConnection;
use redis::Value;
use tickcast_core::model::Offset;

use redis_protocol::resp2::types::BytesFrame;

use super::raw::{entries_of_range, entries_of_read, RawEntry, Reply};
use super::wire::{check, WireReader};
use crate::config::RedisConfig;
use crate::link::LinkError;

/// XREADGROUP GROUP `group` `consumer` COUNT `count` [BLOCK ms] STREAMS
/// `stream` `after`. `after` is `>` for entries never delivered to the
/// group, or an id for this consumer's pending entries after that id (no
/// BLOCK then: Redis answers at once).
pub(crate) async fn read_group(
    conn: &mut MultiplexedConnection,
    config: &RedisConfig,
    after: &str,
) -> redis::RedisResult<Vec<RawEntry>> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(&config.group)
        .arg(&config.consumer)
        .arg("COUNT")
        .arg(config.count());
    if after == ">" {
        cmd.arg("BLOCK").arg(block_ms(config));
    }
    cmd.arg("STREAMS").arg(&config.stream).arg(after);
    let reply: Value = cmd.query_async(conn).await?;
    entries_of_read(reply)
}

/// BLOCK's argument: at least 1 ms (0 would block forever).
fn block_ms(config: &RedisConfig) -> usize {
    config.block.as_millis().clamp(1, usize::MAX as u128) as usize
}

/// XACK of `acks` (if any) and a blocking `XREADGROUP ... >` in one
/// pipeline on the consumer's [`WireReader`]: one round trip per batch
/// instead of two. Redis runs the XACK before the read blocks. With
/// `clock`, a `TIME` goes just before the read, and its answer (the
/// master's clock in ms) comes back too: a sharded stream's floor (see
/// `shards`); and an `XLEN` just after it, so a read that waited on a key
/// the cluster moved away meanwhile (the read runs out empty, but entries
/// went to the key's new master) fails with the redirect instead of
/// vouching for a floor.
pub(crate) async fn ack_and_read_new(
    conn: &mut WireReader,
    config: &RedisConfig,
    acks: &[String],
    clock: bool,
) -> Result<(Vec<RawEntry>, Option<u64>), LinkError> {
    let mut pipe = redis::pipe();
    if !acks.is_empty() {
        pipe.cmd("XACK")
            .arg(&config.stream)
            .arg(&config.group)
            .arg(acks);
    }
    if clock {
        pipe.cmd("TIME");
    }
    pipe.cmd("XREADGROUP")
        .arg("GROUP")
        .arg(&config.group)
        .arg(&config.consumer)
        .arg("COUNT")
        .arg(config.count())
        .arg("BLOCK")
        .arg(block_ms(config))
        .arg("STREAMS")
        .arg(&config.stream)
        .arg(">");
    if clock {
        pipe.cmd("XLEN").arg(&config.stream);
    }
    let mut replies = conn.query(&pipe).await?.into_iter();
    if !acks.is_empty() {
        next_reply(&mut replies)?;
    }
    let time = match clock {
        true => Some(millis_of(next_reply(&mut replies)?)?),
        false => None,
    };
    let entries = entries_of_read(next_reply(&mut replies)?)?;
    if clock {
        next_reply(&mut replies)?;
    }
    Ok((entries, time))
}

/// The next reply of a pipeline, an error reply as an error.
fn next_reply(replies: &mut impl Iterator<Item = BytesFrame>) -> redis::RedisResult<BytesFrame> {
    let reply = replies.next().ok_or_else(|| {
        redis::RedisError::from((redis::ErrorKind::Parse, "a pipeline reply is missing"))
    })?;
    check(reply)
}

/// A `TIME` reply (`[seconds, microseconds]`) in milliseconds.
pub(crate) fn millis_of<R: Reply>(reply: R) -> redis::RedisResult<u64> {
    let number = |part: Option<&R>| {
        part.and_then(Reply::text)
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(|t| t.parse::<u64>().ok())
    };
    let parts = reply.into_items().unwrap_or_default();
    match (number(parts.first()), number(parts.get(1))) {
        (Some(seconds), Some(micros)) => {
            Ok(seconds.saturating_mul(1000).saturating_add(micros / 1000))
        }
        _ => Err(redis::RedisError::from((
            redis::ErrorKind::Parse,
            "TIME reply is not [seconds, microseconds]",
        ))),
    }
}

/// This consumer's pending entries, all of them, oldest first.
pub(crate) async fn read_all_pending(
    conn: &mut MultiplexedConnection,
    config: &RedisConfig,
) -> redis::RedisResult<Vec<RawEntry>> {
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
) -> redis::RedisResult<Vec<RawEntry>> {
    let mut window = Vec::new();
    let mut end = Some(last);
    let mut seen = 0;
    while let Some(until) = end.filter(|_| seen < limit) {
        let want = page.min(limit - seen);
        let reply: Value = redis::cmd("XREVRANGE")
            .arg(stream)
            .arg(until.to_string())
            .arg("-")
            .arg("COUNT")
            .arg(want)
            .query_async(conn)
            .await?;
        let page = entries_of_range(reply)?;
        let got = page.len();
        seen += got;
        // The next page ends just before the oldest entry of this one
        // (`predecessor` rather than the `(id` syntax, which Redis only
        // knows since 6.2).
        end = page
            .last()
            .and_then(|oldest| oldest.id.parse::<Offset>().ok())
            .filter(|oldest| *oldest > Offset::new(0, 0) && got == want)
            .map(Offset::predecessor);
        window.extend(page.into_iter().filter(|e| !skip.contains(&e.id)));
    }
    window.reverse();
    Ok(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_is_read_in_milliseconds() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let time = Value::Array(vec![bulk("1700000000"), bulk("123456")]);
        assert_eq!(millis_of(time).unwrap(), 1_700_000_000_123);
        assert!(millis_of(Value::Nil).is_err());
    }
}

//! The reads a stream consumer makes: its group's new entries and, for
//! backfill, the entries before a given id.

use redis::aio::MultiplexedConnection;
use redis::Value;
use tickcast_core::model::Offset;

use redis_protocol::resp2::types::BytesFrame;

use super::raw::{entries_of_range, entries_of_read, RawEntry, Reply};
use super::wire::{check, WireReader};
use crate::config::RedisConfig;
use crate::link::LinkError;

/// BLOCK's argument: at least 1 ms (0 would block forever).
fn block_ms(config: &RedisConfig) -> usize {
    config.block.as_millis().clamp(1, usize::MAX as u128) as usize
}

/// The write of the cursor (`commit`: its key and id, if it moved) and a
/// blocking `XREADGROUP ...
/// NOACK ... >` in one pipeline on the consumer's [`WireReader`]: one
/// round trip per batch. NOACK keeps Redis from recording a pending entry
/// per entry read; the cursor is what a restart goes on from (see
/// `cursor`). With `clock`, a `TIME` goes just before the read, and its
/// answer (the master's clock in ms) comes back too: a sharded stream's
/// floor (see `shards`); and an `XLEN` just after it, so a read that
/// waited on a key the cluster moved away meanwhile (the read runs out
/// empty, but entries went to the key's new master) fails with the
/// redirect instead of vouching for a floor.
pub(crate) async fn commit_and_read_new(
    conn: &mut WireReader,
    config: &RedisConfig,
    commit: Option<(&str, &str)>,
    clock: bool,
) -> Result<(Vec<RawEntry>, Option<u64>), LinkError> {
    let mut pipe = redis::pipe();
    if let Some((key, id)) = commit {
        pipe.cmd("SET").arg(key).arg(id);
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
        .arg("NOACK")
        .arg("STREAMS")
        .arg(&config.stream)
        .arg(">");
    if clock {
        pipe.cmd("XLEN").arg(&config.stream);
    }
    let mut replies = conn.query(&pipe).await?.into_iter();
    if commit.is_some() {
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

/// Up to `limit` entries at or before `last` (inclusive), oldest first.
/// Read backwards in pages of `page` because only the newest `limit` are
/// wanted.
pub(crate) async fn read_before(
    conn: &mut MultiplexedConnection,
    stream: &str,
    last: Offset,
    limit: usize,
    page: usize,
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
        window.extend(page);
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

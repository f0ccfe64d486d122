//! The reads a stream consumer makes: its group's entries (new or
//! pending) and, for backfill, the entries before a given id.

use std::collections::{HashMap, HashSet};

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, Value};
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
/// before the read blocks. With `clock`, a `TIME` goes just before the
/// read, and its answer (the master's clock in ms) comes back too: a
/// sharded stream's floor (see `shards`); and an `XLEN` just after it, so
/// a read that waited on a key the cluster moved away meanwhile (the read
/// runs out empty, but entries went to the key's new master) fails with
/// the redirect instead of vouching for a floor.
pub(crate) async fn ack_and_read_new(
    conn: &mut MultiplexedConnection,
    config: &RedisConfig,
    acks: &[String],
    clock: bool,
) -> redis::RedisResult<(Vec<StreamId>, Option<u64>)> {
    let block_ms = config.block.as_millis().clamp(1, usize::MAX as u128) as usize;
    let mut pipe = redis::pipe();
    if !acks.is_empty() {
        pipe.cmd("XACK")
            .arg(&config.stream)
            .arg(&config.group)
            .arg(acks)
            .ignore();
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
        .arg(block_ms)
        .arg("STREAMS")
        .arg(&config.stream)
        .arg(">");
    if clock {
        pipe.cmd("XLEN").arg(&config.stream).ignore();
    }
    // Owned values, taken apart by hand: converting the pipeline's reply
    // to `StreamReadReply` would copy every entry (bodies included).
    let mut replies: Vec<Value> = pipe.query_async(conn).await?;
    let entries = match replies.pop() {
        Some(reply) => entries_of(reply)?,
        None => Vec::new(),
    };
    let time = match (clock, replies.pop()) {
        (true, Some(time)) => Some(millis_of(time)?),
        _ => None,
    };
    Ok((entries, time))
}

/// A `TIME` reply (`[seconds, microseconds]`) in milliseconds.
pub(crate) fn millis_of(reply: Value) -> redis::RedisResult<u64> {
    let (seconds, micros): (u64, u64) = redis::from_redis_value(reply)?;
    Ok(seconds.saturating_mul(1000).saturating_add(micros / 1000))
}

/// The entries of an XREADGROUP reply, moved out of it: `nil` (BLOCK ran
/// out), or per stream (an array of `[key, entries]` pairs in RESP2, a map
/// in RESP3) `[id, [field, value, ...]]` each (fields `nil` for a pending
/// entry deleted from the stream).
fn entries_of(reply: Value) -> redis::RedisResult<Vec<StreamId>> {
    let streams: Vec<Value> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|stream| match stream {
                Value::Array(mut pair) if pair.len() == 2 => pair.pop(),
                _ => None,
            })
            .collect(),
        Value::Map(streams) => streams.into_iter().map(|(_, entries)| entries).collect(),
        other => return Err(unexpected("XREADGROUP reply", &other)),
    };
    let mut out = Vec::new();
    for entries in streams {
        let Value::Array(entries) = entries else {
            return Err(unexpected("XREADGROUP entries", &entries));
        };
        out.reserve(entries.len());
        for entry in entries {
            out.push(entry_of(entry)?);
        }
    }
    Ok(out)
}

fn entry_of(entry: Value) -> redis::RedisResult<StreamId> {
    let Value::Array(parts) = entry else {
        return Err(unexpected("stream entry", &entry));
    };
    let mut parts = parts.into_iter();
    let id = match parts.next() {
        Some(Value::BulkString(id)) => String::from_utf8(id).map_err(|_| {
            redis::RedisError::from((redis::ErrorKind::Parse, "entry id is not UTF-8"))
        })?,
        Some(Value::SimpleString(id)) => id,
        other => return Err(unexpected("stream entry id", &other.unwrap_or(Value::Nil))),
    };
    let mut map = HashMap::new();
    if let Some(Value::Array(fields)) = parts.next() {
        map.reserve(fields.len() / 2);
        let mut fields = fields.into_iter();
        while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
            let name = match name {
                Value::BulkString(name) => String::from_utf8_lossy(&name).into_owned(),
                Value::SimpleString(name) => name,
                _ => continue,
            };
            map.insert(name, value);
        }
    }
    Ok(StreamId {
        id,
        map,
        ..StreamId::default()
    })
}

fn unexpected(what: &str, got: &Value) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Parse,
        "unexpected reply",
        format!("{what}: {:.200}", format!("{got:?}")),
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn entries_are_moved_out_of_both_reply_shapes() {
        let entries = Value::Array(vec![
            Value::Array(vec![
                bulk("5-1"),
                Value::Array(vec![bulk("channel"), bulk("c"), bulk("body"), bulk("{}")]),
            ]),
            // A pending entry deleted from the stream.
            Value::Array(vec![bulk("5-2"), Value::Nil]),
        ]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("s"), entries.clone()])]);
        let resp3 = Value::Map(vec![(bulk("s"), entries)]);
        for reply in [resp2, resp3] {
            let got = entries_of(reply).unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].id, "5-1");
            assert_eq!(got[0].map.get("body"), Some(&bulk("{}")));
            assert_eq!(got[0].map.get("channel"), Some(&bulk("c")));
            assert_eq!(got[1].id, "5-2");
            assert!(got[1].map.is_empty());
        }
        assert!(entries_of(Value::Nil).unwrap().is_empty());
        let time = Value::Array(vec![bulk("1700000000"), bulk("123456")]);
        assert_eq!(millis_of(time).unwrap(), 1_700_000_000_123);
        assert!(entries_of(Value::Int(1)).is_err());
        assert!(entries_of(Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Int(3)
        ])]))
        .is_err());
    }
}

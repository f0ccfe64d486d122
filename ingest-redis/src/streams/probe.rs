//! Probes: a floor for an idle shard without waiting for its blocking
//! read to run out.
//!
//! While a shard's blocking read waits, the merge may hold another shard's
//! entry back on it. A probe asks the shard's master, on the control
//! connection, `TIME` then `XINFO GROUPS`: if this node's group has no lag
//! (every entry added so far was delivered to it) and its last-delivered
//! id is the newest id this node has received from the shard (so the
//! waiting read has been handed nothing), then nothing of the shard is on
//! its way, and whatever comes later is stamped at or after the clock
//! `TIME` read. An entry added between `TIME` and `XINFO` shows as lag or
//! as a newer last-delivered id, and the probe gives nothing.

use redis::aio::MultiplexedConnection;
use redis::streams::StreamInfoGroupsReply;
use redis::Value;
use tickcast_core::model::Offset;

use super::reads::millis_of;

/// The floor a probe of `key` finds for `group`, which has received up to
/// stream id `received` this session; `None` when it cannot tell (the
/// read has something on its way, the server knows no lag, or the probe
/// failed: the read itself will tell).
pub(crate) async fn probe(
    mut control: MultiplexedConnection,
    key: String,
    group: String,
    received: Offset,
) -> Option<Offset> {
    let mut pipe = redis::pipe();
    pipe.cmd("TIME").cmd("XINFO").arg("GROUPS").arg(&key);
    let (time, groups): (Value, StreamInfoGroupsReply) = match pipe.query_async(&mut control).await
    {
        Ok(reply) => reply,
        Err(error) => {
            tracing::debug!(stream = key, "shard probe failed: {error}");
            return None;
        }
    };
    floor_of(millis_of(time).ok()?, groups, &group, received)
}

/// The floor from a probe's answers (see the module docs).
fn floor_of(
    now_ms: u64,
    groups: StreamInfoGroupsReply,
    group: &str,
    received: Offset,
) -> Option<Offset> {
    let ours = groups.groups.into_iter().find(|g| g.name == group)?;
    if ours.lag != Some(0) {
        return None;
    }
    let delivered: Offset = ours.last_delivered_id.parse().ok()?;
    (delivered == received).then_some(Offset::new(now_ms, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::streams::StreamInfoGroup;

    fn groups(last: &str, lag: Option<usize>) -> StreamInfoGroupsReply {
        StreamInfoGroupsReply {
            groups: vec![
                StreamInfoGroup {
                    name: "other".into(),
                    last_delivered_id: "99-0".into(),
                    lag: Some(0),
                    ..StreamInfoGroup::default()
                },
                StreamInfoGroup {
                    name: "ours".into(),
                    last_delivered_id: last.into(),
                    lag,
                    ..StreamInfoGroup::default()
                },
            ],
        }
    }

    #[test]
    fn a_caught_up_group_with_nothing_in_flight_gives_the_clock() {
        let floor = floor_of(500, groups("7-1", Some(0)), "ours", Offset::new(7, 1));
        assert_eq!(floor, Some(Offset::new(500, 0)));
    }

    #[test]
    fn anything_on_its_way_or_unknown_gives_nothing() {
        // Delivered to the waiting read, reply not here yet.
        assert_eq!(
            floor_of(500, groups("7-2", Some(0)), "ours", Offset::new(7, 1)),
            None
        );
        // Added, not delivered yet.
        assert_eq!(
            floor_of(500, groups("7-1", Some(1)), "ours", Offset::new(7, 1)),
            None
        );
        // Redis cannot tell the lag.
        assert_eq!(
            floor_of(500, groups("7-1", None), "ours", Offset::new(7, 1)),
            None
        );
        // The group is gone.
        assert_eq!(
            floor_of(500, groups("7-1", Some(0)), "gone", Offset::new(7, 1)),
            None
        );
    }
}

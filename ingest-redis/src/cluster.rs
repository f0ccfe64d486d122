//! Where keys live in a Redis Cluster: [`Topology`] asks a seed node for
//! the slot map (`CLUSTER SLOTS`) and a key's slot (`CLUSTER KEYSLOT`), so
//! a stream shard is read over connections of its own to the master that
//! owns it (blocking reads must not share a connection with anything).

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{ConnectionAddr, ConnectionInfo, Value};

use crate::connect::multiplexed;
use crate::link::LinkError;

/// One slot range and its master's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotRange {
    pub(crate) first: u16,
    pub(crate) last: u16,
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// The slot map of one session, and a connection to the seed that gave
/// it.
pub(crate) struct Topology {
    seed: ConnectionInfo,
    conn: MultiplexedConnection,
    ranges: Vec<SlotRange>,
}

impl Topology {
    /// The slot map from the first seed that answers; the last failure if
    /// none does.
    pub(crate) async fn discover(
        seeds: &[ConnectionInfo],
        timeout: Duration,
    ) -> Result<Self, LinkError> {
        let mut last = LinkError::Topology("no seed nodes".to_owned());
        for seed in seeds {
            match Self::ask(seed, timeout).await {
                Ok(topology) => return Ok(topology),
                Err(error) => {
                    tracing::debug!(seed = %seed.addr(), "cluster seed did not answer: {error}");
                    last = error;
                }
            }
        }
        Err(last)
    }

    async fn ask(seed: &ConnectionInfo, timeout: Duration) -> Result<Self, LinkError> {
        let client = redis::Client::open(seed.clone())?;
        let mut conn = multiplexed(&client, timeout, timeout).await?;
        let reply: Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await?;
        let ranges = parse_slots(reply)?;
        Ok(Self {
            seed: seed.clone(),
            conn,
            ranges,
        })
    }

    /// A client for the master that owns `key`'s slot, with the seed's
    /// settings (credentials, protocol).
    pub(crate) async fn master_of(&mut self, key: &str) -> Result<redis::Client, LinkError> {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut self.conn)
            .await?;
        let range = self
            .ranges
            .iter()
            .find(|r| r.first <= slot && slot <= r.last)
            .ok_or_else(|| LinkError::Topology(format!("no master serves slot {slot} ({key})")))?;
        let host = match range.host.as_str() {
            // Redis answers an empty or "?" endpoint when it does not know
            // one: the node is the seed's host then.
            "" | "?" => match self.seed.addr() {
                ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. } => host.clone(),
                other => return Err(LinkError::Topology(format!("seed {other} is not TCP"))),
            },
            host => host.to_owned(),
        };
        let info = self
            .seed
            .clone()
            .set_addr(ConnectionAddr::Tcp(host, range.port));
        Ok(redis::Client::open(info)?)
    }
}

/// The ranges of a `CLUSTER SLOTS` reply: per range `[first, last,
/// [host, port, id, ...], replicas...]`.
fn parse_slots(reply: Value) -> Result<Vec<SlotRange>, LinkError> {
    let bad = |what: &str| LinkError::Topology(format!("unexpected CLUSTER SLOTS reply: {what}"));
    let Value::Array(ranges) = reply else {
        return Err(bad("not an array"));
    };
    ranges
        .into_iter()
        .map(|range| {
            let Value::Array(parts) = range else {
                return Err(bad("a range is not an array"));
            };
            let mut parts = parts.into_iter();
            let first = slot_number(parts.next()).ok_or_else(|| bad("first slot"))?;
            let last = slot_number(parts.next()).ok_or_else(|| bad("last slot"))?;
            let Some(Value::Array(master)) = parts.next() else {
                return Err(bad("no master"));
            };
            let mut master = master.into_iter();
            let host = match master.next() {
                Some(Value::BulkString(host)) => String::from_utf8_lossy(&host).into_owned(),
                Some(Value::SimpleString(host)) => host,
                Some(Value::Nil) | None => String::new(),
                Some(_) => return Err(bad("master host")),
            };
            let port = match master.next() {
                Some(Value::Int(port)) => u16::try_from(port).ok(),
                _ => None,
            }
            .ok_or_else(|| bad("master port"))?;
            Ok(SlotRange {
                first,
                last,
                host,
                port,
            })
        })
        .collect()
}

fn slot_number(value: Option<Value>) -> Option<u16> {
    match value? {
        Value::Int(n) => u16::try_from(n).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn slot_ranges_are_read_with_their_masters() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                Value::Array(vec![bulk("127.0.0.1"), Value::Int(7100), bulk("id1")]),
                Value::Array(vec![bulk("127.0.0.1"), Value::Int(7200), bulk("id4")]),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                Value::Array(vec![
                    bulk(""),
                    Value::Int(7101),
                    bulk("id2"),
                    Value::Map(vec![]),
                ]),
            ]),
        ]);
        let ranges = parse_slots(reply).unwrap();
        assert_eq!(
            ranges,
            [
                SlotRange {
                    first: 0,
                    last: 5460,
                    host: "127.0.0.1".into(),
                    port: 7100
                },
                SlotRange {
                    first: 5461,
                    last: 16383,
                    host: String::new(),
                    port: 7101
                },
            ]
        );
        assert!(parse_slots(Value::Int(1)).is_err());
        assert!(parse_slots(Value::Array(vec![Value::Array(vec![Value::Int(0)])])).is_err());
        let bad_port = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(1),
            Value::Array(vec![bulk("h"), Value::Int(70_000)]),
        ])]);
        assert!(parse_slots(bad_port).is_err());
    }
}

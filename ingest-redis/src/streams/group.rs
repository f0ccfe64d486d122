//! The node's consumer group: creating it and asking where it stands.

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamInfoGroup, StreamInfoGroupsReply};
use redis::AsyncCommands;

/// Where a newly created group starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupStart {
    /// `$`: after the stream's last entry. A node seen for the first time
    /// delivers only what is published from now on; what came before
    /// reaches its history through backfill, not live delivery.
    Latest,
    /// `0`: from the stream's first entry. Used when the group vanished
    /// under a running node (the server restarted without data, or the
    /// stream was deleted): every entry now in the stream was added after
    /// that, possibly before the group was recreated, and `$` would skip
    /// those. Entries the node had already seen are recognised by offset.
    Beginning,
}

impl GroupStart {
    fn id(self) -> &'static str {
        match self {
            Self::Latest => "$",
            Self::Beginning => "0",
        }
    }
}

/// XGROUP CREATE `stream` `group` `start` MKSTREAM; a group that already
/// exists (BUSYGROUP) is left as it is. Returns whether it was created.
pub(crate) async fn ensure_group(
    conn: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
    start: GroupStart,
) -> redis::RedisResult<bool> {
    match conn.xgroup_create_mkstream(stream, group, start.id()).await {
        Ok(()) => {
            tracing::info!(stream, group, start = start.id(), "created consumer group");
            Ok(true)
        }
        Err(error) if error.code() == Some("BUSYGROUP") => Ok(false),
        Err(error) => Err(error),
    }
}

/// XINFO GROUPS, reduced to this node's group (`None` if it is gone).
pub(crate) async fn group_info(
    conn: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
) -> redis::RedisResult<Option<StreamInfoGroup>> {
    let reply: StreamInfoGroupsReply = conn.xinfo_groups(stream).await?;
    Ok(reply.groups.into_iter().find(|g| g.name == group))
}

/// True for the error of a read from a group that does not exist.
pub(crate) fn is_no_group(error: &redis::RedisError) -> bool {
    error.code() == Some("NOGROUP")
}

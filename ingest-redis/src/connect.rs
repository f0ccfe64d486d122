//! Opening connections with the timeouts the source relies on.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;

use crate::link::LinkError;

/// A multiplexed connection whose connect attempt is bounded by `connect`
/// and each command by `response`. A reader blocked in XREADGROUP needs a
/// `response` longer than its BLOCK, or every quiet read would look like
/// a lost connection.
pub(crate) async fn multiplexed(
    client: &redis::Client,
    connect: Duration,
    response: Duration,
) -> Result<MultiplexedConnection, LinkError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect))
        .set_response_timeout(Some(response));
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

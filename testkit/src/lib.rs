//! Test support for tests that need real brokers.
//!
//! The shared brokers come from `scripts/brokers.sh start` (which `.ci/run`
//! runs); [`redis_url`] and [`amqp_url`] find them. Where one is not
//! running, a test is skipped with a message saying how to start it, except
//! when `CI=true`: then it fails, so CI never passes without the brokers.
//!
//! Fault tests that kill a broker get a private one of their own
//! ([`RedisServer`], [`RedisCluster`], [`RabbitNode`]), so other tests keep
//! theirs. The shared Redis Cluster (`scripts/brokers.sh cluster start`)
//! is found through [`redis_cluster_urls`].
//!
//! [`fixtures`] reads the fixture files committed under
//! `testdata/fixtures/` ([`good_events`], [`bad_events`]).

pub mod fixtures;
pub mod heap;
pub mod http;
pub mod io;
pub mod jwt;
mod rabbit;
mod redis;
mod redis_cluster;
pub mod sse;
pub mod ws;

pub use fixtures::{bad_events, fixtures_dir, good_events, BadEvent, GoodEvent};
pub use rabbit::RabbitNode;
pub use redis::RedisServer;
pub use redis_cluster::{redis_cluster_urls, RedisCluster, CLUSTER_URLS_VAR};

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Default URL of the shared Redis of `scripts/brokers.sh`.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6390";
/// Default URL of the shared RabbitMQ of `scripts/brokers.sh`.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5682/%2f";

/// The shared Redis (`TESTKIT_REDIS_URL`, default
/// [`DEFAULT_REDIS_URL`]) if it answers; see the crate docs for what
/// happens when it does not.
pub fn redis_url() -> Option<String> {
    shared("TESTKIT_REDIS_URL", DEFAULT_REDIS_URL, "Redis")
}

/// The shared RabbitMQ (`TESTKIT_AMQP_URL`, default
/// [`DEFAULT_AMQP_URL`]) if it answers; see the crate docs.
pub fn amqp_url() -> Option<String> {
    shared("TESTKIT_AMQP_URL", DEFAULT_AMQP_URL, "RabbitMQ")
}

/// True when running under CI (`CI=true`), where a missing broker fails.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips the test (returns) unless the given broker URL is available.
///
/// ```ignore
/// let Some(url) = tickcast_testkit::redis_url() else { return };
/// ```
fn shared(var: &str, default: &str, broker: &str) -> Option<String> {
    let url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let Some(addr) = host_port(&url) else {
        panic!("{var}={url}: cannot find host:port in it");
    };
    if reachable(&addr) {
        return Some(url);
    }
    let message = format!(
        "{broker} is not running at {addr} ({var}); start it with `scripts/brokers.sh start`"
    );
    if in_ci() {
        panic!("CI=true and {message}");
    }
    eprintln!("skipping: {message}");
    None
}

/// `host:port` of a `scheme://[user:pass@]host:port[/...]` URL.
fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit('@').next()?;
    host_port.contains(':').then(|| host_port.to_owned())
}

fn reachable(addr: &str) -> bool {
    use std::net::ToSocketAddrs;
    let Ok(mut addrs) = addr.to_socket_addrs() else {
        return false;
    };
    addrs.any(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener
        .local_addr()
        .map(|a: SocketAddr| a.port())
        .expect("local address")
}

/// Waits up to `timeout` for `addr` to accept connections.
fn wait_for(addr: &str, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if reachable(addr) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_of_broker_urls() {
        assert_eq!(
            host_port("redis://127.0.0.1:6390").as_deref(),
            Some("127.0.0.1:6390")
        );
        assert_eq!(
            host_port(DEFAULT_AMQP_URL).as_deref(),
            Some("127.0.0.1:5682")
        );
        assert_eq!(host_port("redis://localhost"), None);
    }
}

//! [`Group`]: nodes of one ingest mode ([`Mode`]) sharing a broker, with
//! broker names (stream key, channel, exchange, queues) unique to one
//! test, so tests sharing the brokers of `scripts/brokers.sh` never see
//! each other's events.

use super::nodes::Node;

/// The ingest mode nodes run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redis pub/sub: node offsets.
    PubSub,
    /// Redis Streams: stream ids as offsets, the same on every node.
    Streams,
    /// RabbitMQ, a queue per node: node offsets.
    Amqp,
}

impl Mode {
    /// The shared broker of this mode, or `None` (the test skips; under
    /// `CI=true` this fails instead).
    pub fn shared_broker(self) -> Option<String> {
        match self {
            Mode::PubSub | Mode::Streams => tickcast_testkit::redis_url(),
            Mode::Amqp => tickcast_testkit::amqp_url(),
        }
    }
}

/// A name no other test run uses: `<prefix>-<pid>-<ns>`.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// One group of nodes sharing a broker: the broker's URL, the names unique
/// to the group (stream, channel or exchange), and the variables each
/// node gets.
#[derive(Debug, Clone)]
pub struct Group {
    /// The ingest mode.
    pub mode: Mode,
    /// The broker's URL.
    pub url: String,
    /// The prefix of this group's broker names.
    pub tag: String,
    /// Variables every node gets besides the mode's (batch window, ...).
    pub extra: Vec<(String, String)>,
}

impl Group {
    /// A group of `mode` on the broker at `url`, its names made from
    /// `prefix`.
    pub fn new(mode: Mode, url: &str, prefix: &str) -> Self {
        Self {
            mode,
            url: url.to_owned(),
            tag: unique(&format!("tickcast-test.{prefix}")),
            extra: Vec::new(),
        }
    }

    /// Adds `TICKCAST_<key>=value` for every node.
    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.extra
            .push((format!("TICKCAST_{key}"), value.to_string()));
        self
    }

    /// The pub/sub channel of this group (also the publish `?channel=`);
    /// AMQP and Streams use the default channel within their own exchange
    /// or stream.
    pub fn channel(&self) -> Option<String> {
        (self.mode == Mode::PubSub).then(|| self.tag.clone())
    }

    /// The AMQP queue of node `name`.
    pub fn queue(&self, name: &str) -> String {
        format!("{}.{name}", self.tag)
    }

    /// Every variable node `name` of this group starts with.
    pub fn env(&self, name: &str) -> Vec<(String, String)> {
        let var = |k: &str, v: &str| (format!("TICKCAST_{k}"), v.to_owned());
        let mut env = match self.mode {
            Mode::PubSub => vec![
                var("INGEST__REDIS__URL", &self.url),
                var("INGEST__REDIS__MODE", "pubsub"),
                var("INGEST__REDIS__CHANNELS", &self.tag),
            ],
            Mode::Streams => vec![
                var("INGEST__REDIS__URL", &self.url),
                var("INGEST__REDIS__MODE", "streams"),
                var("INGEST__REDIS__STREAM", &self.tag),
            ],
            Mode::Amqp => vec![
                var("INGEST__AMQP__URL", &self.url),
                var("INGEST__AMQP__EXCHANGE", &self.tag),
                var("INGEST__AMQP__QUEUE", &self.queue(name)),
                var(
                    "INGEST__AMQP__DEAD_LETTER_EXCHANGE",
                    &format!("{}.dlx", self.tag),
                ),
                // Queues left on the shared broker by this test go away
                // by themselves (tests that need another value set it).
                var("INGEST__AMQP__QUEUE_EXPIRES_S", "30"),
            ],
        };
        env.extend(self.extra.iter().cloned());
        env
    }

    /// Starts node `name` of this group and waits until it is ready.
    pub async fn start(&self, name: &str) -> Node {
        let node = Node::start(name, &self.env(name)).await;
        node.wait_ready().await;
        node
    }

    /// Starts `n` nodes (`<prefix>-0`, ...), all ready.
    pub async fn start_nodes(&self, n: usize) -> Vec<Node> {
        let names: Vec<String> = (0..n).map(|i| format!("{}-{i}", self.tag)).collect();
        let started = futures_util::future::join_all(names.iter().map(|name| self.start(name)));
        started.await
    }

    /// `/api/publish` of this group (with `?channel=` in pub/sub mode).
    pub fn publish_path(&self) -> String {
        match self.channel() {
            Some(channel) => format!("/api/publish?channel={channel}"),
            None => "/api/publish".to_owned(),
        }
    }
}

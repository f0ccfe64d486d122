//! Connecting and declaring: everything a fresh connection needs before
//! it consumes or publishes. Run again after every reconnect, because a
//! restarted broker may have lost non-durable parts (and declaring what
//! exists is a no-op).

use std::future::Future;
use std::time::Duration;

use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};

use crate::config::{Checked, Overflow, QueueLimits};

/// A step of setting up a connection failed; the text names the step.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum SetupError {
    /// Connecting, or declaring, took longer than `connect_timeout`.
    #[error("no answer from the broker within {0:?}")]
    Timeout(Duration),
    /// The broker or the network refused a step.
    #[error("{step}: {source}")]
    Broker {
        /// What was being done (`connect`, `declare queue q`, ...).
        step: String,
        /// lapin's error.
        source: lapin::Error,
    },
}

/// Attaches the step's name to a lapin result.
trait Step<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, SetupError>;
}

impl<T> Step<T> for lapin::Result<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, SetupError> {
        self.map_err(|source| SetupError::Broker {
            step: step(),
            source,
        })
    }
}

/// Runs a setup future within `limit`.
pub(crate) async fn within<T>(
    limit: Duration,
    setup: impl Future<Output = Result<T, SetupError>>,
) -> Result<T, SetupError> {
    tokio::time::timeout(limit, setup)
        .await
        .unwrap_or(Err(SetupError::Timeout(limit)))
}

/// Opens a connection named `name` (shown by `rabbitmqctl list_connections`)
/// and one channel on it.
pub(crate) async fn open(names: &Checked, name: &str) -> Result<(Connection, Channel), SetupError> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    let connection = Connection::connect_uri(names.uri.clone(), properties)
        .await
        .step(|| "connect".to_owned())?;
    let channel = connection
        .create_channel()
        .await
        .step(|| "open a channel".to_owned())?;
    Ok((connection, channel))
}

/// Declares the topic exchange events are published to (durable).
pub(crate) async fn declare_exchange(channel: &Channel, names: &Checked) -> Result<(), SetupError> {
    declare_topic(channel, &names.exchange).await
}

/// The consumer's whole topology: exchange, dead-letter exchange and its
/// queue, the node's queue and its bindings; then qos and a consumer with
/// manual acks.
pub(crate) async fn consume(
    channel: &Channel,
    names: &Checked,
    durable: bool,
    prefetch: u16,
) -> Result<Consumer, SetupError> {
    declare_exchange(channel, names).await?;
    declare_dead_letters(channel, names).await?;
    declare_queue(channel, names, durable).await?;
    for key in &names.routing_keys {
        bind(channel, &names.queue, &names.exchange, key).await?;
    }
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .step(|| format!("basic.qos {prefetch}"))?;
    // no_ack = false (the default): the broker keeps each message until
    // run_source acked it, so a crash loses nothing.
    channel
        .basic_consume(
            names.queue.clone(),
            ShortString::default(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .step(|| format!("consume from queue {}", names.queue))
}

/// Puts a fresh publishing channel into confirm mode.
pub(crate) async fn confirm(channel: &Channel) -> Result<(), SetupError> {
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .step(|| "confirm.select".to_owned())
}

async fn declare_topic(channel: &Channel, exchange: &ShortString) -> Result<(), SetupError> {
    let options = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            exchange.clone(),
            ExchangeKind::Topic,
            options,
            FieldTable::default(),
        )
        .await
        .step(|| format!("declare topic exchange {exchange}"))
}

/// The dead-letter exchange and `<queue>.dead`, bound with the node's queue
/// name: the node's queue dead-letters with that routing key, so each
/// node's rejects reach only its own dead queue even when nodes share the
/// exchange.
async fn declare_dead_letters(channel: &Channel, names: &Checked) -> Result<(), SetupError> {
    declare_topic(channel, &names.dead_letter_exchange).await?;
    // Bounded like the node's queue, but dropping its own oldest for good
    // (it has no dead-letter exchange): drop-head overflow of the node's
    // queue lands here.
    let mut arguments = FieldTable::default();
    bound(&mut arguments, &names.limits, Overflow::DropHead);
    channel
        .queue_declare(
            names.dead_queue.clone(),
            QueueDeclareOptions::durable(),
            arguments,
        )
        .await
        .step(|| format!("declare queue {}", names.dead_queue))?;
    bind(
        channel,
        &names.dead_queue,
        &names.dead_letter_exchange,
        &names.queue,
    )
    .await
}

/// The node's queue: dead-lettering to the node's `.dead` queue, and the
/// configured expiry and length bound. Its arguments are part of its
/// identity: a queue of the same name declared earlier with other arguments
/// makes the broker refuse this (PRECONDITION_FAILED); delete it or choose
/// another name.
async fn declare_queue(
    channel: &Channel,
    names: &Checked,
    durable: bool,
) -> Result<(), SetupError> {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(names.dead_letter_exchange.as_str().into()),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(names.queue.as_str().into()),
    );
    bound(&mut arguments, &names.limits, names.limits.overflow);
    let options = QueueDeclareOptions {
        durable,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(names.queue.clone(), options, arguments)
        .await
        .step(|| format!("declare queue {}", names.queue))?;
    Ok(())
}

/// Renews the lease of `<queue>.dead`: nobody consumes it, so without a
/// declaration now and then its `x-expires` would delete it (and the dead
/// letters in it) under a live node. A passive declare counts as one.
pub(crate) async fn renew_dead_queue(channel: &Channel, names: &Checked) -> Result<(), SetupError> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(names.dead_queue.clone(), passive, FieldTable::default())
        .await
        .step(|| format!("renew queue {}", names.dead_queue))?;
    Ok(())
}

/// `x-expires`, `x-max-length` and `x-overflow` of a queue.
fn bound(arguments: &mut FieldTable, limits: &QueueLimits, overflow: Overflow) {
    if let Some(ms) = limits.expires_ms {
        arguments.insert("x-expires".into(), AMQPValue::LongLongInt(i64::from(ms)));
    }
    if let Some(max) = limits.max_length {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(max));
        arguments.insert(
            "x-overflow".into(),
            AMQPValue::LongString(overflow.as_str().into()),
        );
    }
}

async fn bind(
    channel: &Channel,
    queue: &ShortString,
    exchange: &ShortString,
    key: &ShortString,
) -> Result<(), SetupError> {
    channel
        .queue_bind(
            queue.clone(),
            exchange.clone(),
            key.clone(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .step(|| format!("bind queue {queue} to {exchange} with key '{key}'"))
}

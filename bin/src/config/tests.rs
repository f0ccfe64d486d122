//! Layering, unknown keys and variables, the key catalogue, validation and
//! the hub conversion.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tickcast_core::hub::OffsetMode;
use tickcast_core::model::Priority;
use tickcast_core::routing::{RoutingRule, RoutingRules, Strategy};
use tickcast_core::HubConfig;

use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use figment::Figment;

use super::keys::{populated, KeyKind, Keys};
use super::*;

/// A TOML file that lives as long as the test.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tickcast-config-test-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tickcast.toml");
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn env(vars: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    vars.iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
}

fn load_with(
    file: Option<&Path>,
    vars: &[(&str, &str)],
    flags: Overrides,
) -> Result<Config, ConfigError> {
    load(file, env(vars), flags).map(|loaded| loaded.config)
}

/// The configuration the environment `vars` give, and its warnings.
fn load_env(vars: &[(&str, &str)]) -> Loaded {
    load(None, env(vars), Overrides::default()).unwrap()
}

fn error_text(result: Result<Config, ConfigError>) -> String {
    match result {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn defaults_are_the_documented_ones() {
    let config = load_with(None, &[], Overrides::default()).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.listen, "127.0.0.1:8080");
    assert!(!config.node_id.is_empty());
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(config.delivery.batch_window_ms, 100);
    assert_eq!(config.delivery.max_batch, 50);
    assert_eq!(config.delivery.max_batch_bytes, 65536);
    assert_eq!(config.delivery.queue_capacity, 4096);
    assert_eq!(config.delivery.queue_capacity_bytes, 16 << 20);
    assert_eq!(config.delivery.message_capacity, 4096);
    assert_eq!(config.delivery.message_capacity_bytes, 256 << 10);
    assert_eq!(config.delivery.replay_capacity, None);
    assert_eq!(config.delivery.replay_capacity_bytes, 64 << 20);
    assert_eq!(config.delivery.rate_limit_per_user, 100);
    assert_eq!(config.limits.max_frame_bytes, 65536);
    assert_eq!(config.limits.max_subscriptions_per_connection, 64);
    assert_eq!(config.limits.max_connections_per_user, 16);
    assert_eq!(config.limits.max_publish_bytes, 1_048_576);
    assert_eq!(config.history.capacity, 100_000);
    assert_eq!(config.history.max_age_s, 3600);
    assert_eq!(config.routing.cache_capacity, 10_000);
    assert_eq!(config.routing.cache_ttl_s, 300);
    assert!(config.routing.rules.0.is_empty());
    assert_eq!(config.auth, AuthSection::default());
    assert_eq!(config.api.key, None);
    assert_eq!(config.ingest, IngestSection::default());
    assert_eq!(config.ingest.dedup_capacity, 100_000);
    assert_eq!(config.ingest.dedup_window_s, 600);
    let redis = RedisIngest::default();
    assert_eq!(redis.stream_maxlen, 1_000_000);
    let amqp = AmqpIngest::default();
    assert_eq!(amqp.queue_expires_s, 3600);
    assert_eq!(amqp.queue_max_length, 1_000_000);
    assert_eq!(amqp.queue_overflow, AmqpOverflow::DropHead);
    let sio = &config.socketio;
    assert_eq!(sio.ping_interval_ms, 25_000);
    assert_eq!(sio.ping_timeout_ms, 20_000);
    assert_eq!(sio.max_payload_bytes, 65_536);
    assert_eq!(sio.recovery_window_s, 120);
    assert_eq!(sio.recovery_capacity, 10_000);
    assert_eq!(sio.max_polling_sessions, 10_000);
}

#[test]
fn socketio_keys_load_and_validate() {
    let config = load_env(&[
        ("TICKCAST_SOCKETIO__PING_INTERVAL_MS", "5000"),
        ("TICKCAST_SOCKETIO__RECOVERY_WINDOW_S", "0"),
    ])
    .config;
    assert_eq!(config.socketio.ping_interval_ms, 5000);
    assert_eq!(config.socketio.recovery_window_s, 0);
    assert!(config.validate().is_ok());
    let file = TempFile::new(
        "socketio",
        r#"
        [limits]
        max_frame_bytes = 1024
        [socketio]
        ping_interval_ms = 0
        ping_timeout_ms = 0
        max_payload_bytes = 16385
        max_polling_sessions = 0
        "#,
    );
    let text = error_text(load_with(Some(file.path()), &[], Overrides::default()));
    for key in [
        "`socketio.ping_interval_ms`",
        "`socketio.ping_timeout_ms`",
        "`socketio.max_payload_bytes`",
        "`socketio.max_polling_sessions`",
    ] {
        assert!(text.contains(key), "{key} not in {text}");
    }
    assert!(text.contains("16384"), "{text}");
}

/// `[ingest.redis] cluster` seeds and `stream_shards` load from a file and
/// the environment; a glob channel in cluster pub/sub, a non-`redis://`
/// seed, zero shards and a braced sharded stream are refused by key.
#[test]
fn redis_cluster_and_shards_load_and_validate() {
    let file = TempFile::new(
        "cluster",
        r#"
        [ingest.redis]
        cluster = ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]
        mode = "streams"
        stream_shards = 4
        "#,
    );
    let config = load_with(Some(file.path()), &[], Overrides::default()).unwrap();
    let redis = config.ingest.redis.unwrap();
    assert_eq!(redis.cluster.len(), 2);
    assert_eq!(redis.stream_shards, 4);
    assert_eq!(redis.stream_block_ms, None);

    let config = load_env(&[
        ("TICKCAST_INGEST__REDIS__CLUSTER", "redis://10.0.0.1:7000"),
        ("TICKCAST_INGEST__REDIS__CHANNELS", "[a.b, c.d]"),
    ])
    .config;
    let redis = config.ingest.redis.unwrap();
    assert_eq!(redis.cluster, ["redis://10.0.0.1:7000"]);
    assert_eq!(redis.stream_shards, 1, "one key unless asked");

    let file = TempFile::new(
        "cluster-bad",
        r#"
        [ingest.redis]
        cluster = ["redis://10.0.0.1:7000", "unix:///tmp/r.sock"]
        channels = ["tickstock.events.patterns", "tickstock.*"]
        "#,
    );
    let text = error_text(load_with(Some(file.path()), &[], Overrides::default()));
    assert!(text.contains("`ingest.redis.cluster`"), "{text}");
    assert!(text.contains("`ingest.redis.channels`"), "{text}");
    assert!(text.contains("glob pattern"), "{text}");

    let file = TempFile::new(
        "shards-bad",
        r#"
        [ingest.redis]
        mode = "streams"
        stream = "events{x}"
        stream_shards = 2
        stream_block_ms = 0
        "#,
    );
    let text = error_text(load_with(Some(file.path()), &[], Overrides::default()));
    assert!(text.contains("`ingest.redis.stream`"), "{text}");
    assert!(text.contains("`ingest.redis.stream_block_ms`"), "{text}");
    let file = TempFile::new(
        "shards-zero",
        "[ingest.redis]\nmode = \"streams\"\nstream_shards = 0\n",
    );
    let text = error_text(load_with(Some(file.path()), &[], Overrides::default()));
    assert!(text.contains("`ingest.redis.stream_shards`"), "{text}");
}

#[test]
fn broker_bounds_and_the_dedup_window_load_and_validate() {
    let file = TempFile::new(
        "bounds",
        r#"
        [history]
        capacity = 500
        [ingest]
        dedup_capacity = 7
        dedup_window_s = 30
        [ingest.redis]
        mode = "streams"
        stream_maxlen = 500
        "#,
    );
    let config = load_with(Some(file.path()), &[], Overrides::default()).unwrap();
    let hub = config.hub_config();
    assert_eq!(hub.dedup.capacity, 7);
    assert_eq!(hub.dedup.max_age, Duration::from_secs(30));
    assert_eq!(config.ingest.redis.unwrap().stream_maxlen, 500);

    let config = load_env(&[
        ("TICKCAST_INGEST__AMQP__QUEUE_OVERFLOW", "reject-publish"),
        ("TICKCAST_INGEST__AMQP__QUEUE_EXPIRES_S", "0"),
        ("TICKCAST_INGEST__AMQP__QUEUE_MAX_LENGTH", "10"),
    ])
    .config;
    let amqp = config.ingest.amqp.unwrap();
    assert_eq!(amqp.queue_overflow, AmqpOverflow::RejectPublish);
    assert_eq!(amqp.queue_expires_s, 0);
    assert_eq!(amqp.queue_max_length, 10);

    // A stream trimmed below the history a restarted node reloads, a
    // window of 0 s and an expiry RabbitMQ cannot take are refused.
    let file = TempFile::new(
        "bounds-bad",
        r#"
        [history]
        capacity = 500
        [ingest]
        dedup_window_s = 0
        [ingest.redis]
        mode = "streams"
        stream_maxlen = 499
        [ingest.amqp]
        queue_expires_s = 5000000
        "#,
    );
    // A hostname-named queue that never expires is worth a warning.
    let loaded = load_env(&[("TICKCAST_INGEST__AMQP__QUEUE_EXPIRES_S", "0")]);
    assert!(
        matches!(&loaded.warnings[..], [ConfigWarning::LingeringQueue { queue }] if queue.starts_with("tickcast.")),
        "{:?}",
        loaded.warnings
    );
    let loaded = load_env(&[
        ("TICKCAST_INGEST__AMQP__QUEUE_EXPIRES_S", "0"),
        ("TICKCAST_NODE_ID", "replica-1"),
    ]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(load_env(&[("TICKCAST_INGEST__AMQP__URL", "amqp://h/%2f")])
        .warnings
        .is_empty());

    let text = error_text(load_with(Some(file.path()), &[], Overrides::default()));
    for key in [
        "`ingest.dedup_window_s`",
        "`ingest.redis.stream_maxlen`",
        "`ingest.amqp.queue_expires_s`",
    ] {
        assert!(text.contains(key), "{key} not in {text}");
    }
}

#[test]
fn default_config_gives_the_default_hub_config() {
    assert_eq!(Config::default().hub_config(), HubConfig::default());
}

#[test]
fn hub_config_follows_every_engine_key() {
    let file = TempFile::new(
        "hub",
        r#"
        [delivery]
        batch_window_ms = 0
        max_batch = 7
        max_batch_bytes = 1000
        queue_capacity = 9
        queue_capacity_bytes = 10
        message_capacity = 11
        message_capacity_bytes = 12
        replay_capacity = 13
        replay_capacity_bytes = 14
        rate_limit_per_user = 0
        [limits]
        max_subscriptions_per_connection = 3
        max_connections_per_user = 2
        [history]
        capacity = 0
        max_age_s = 60
        [routing]
        cache_capacity = 0
        cache_ttl_s = 5
        [ingest.redis]
        mode = "streams"
        "#,
    );
    let hub = load_with(Some(file.path()), &[], Overrides::default())
        .unwrap()
        .hub_config();
    assert_eq!(hub.queue.batch_window, Duration::ZERO);
    assert_eq!(hub.queue.max_batch, 7);
    assert_eq!(hub.queue.max_batch_bytes, 1000);
    assert_eq!(hub.queue.capacity, 9);
    assert_eq!(hub.queue.capacity_bytes, 10);
    assert_eq!(hub.queue.message_capacity, 11);
    assert_eq!(hub.queue.message_capacity_bytes, 12);
    assert_eq!(hub.queue.replay_capacity, 13);
    assert_eq!(hub.queue.replay_capacity_bytes, 14);
    assert_eq!(hub.rate_limit_per_user, 0);
    assert_eq!(hub.limits.max_subscriptions_per_connection, 3);
    assert_eq!(hub.limits.max_connections_per_user, 2);
    assert_eq!(hub.history.capacity, 0);
    assert_eq!(hub.history.max_age, Duration::from_secs(60));
    assert_eq!(hub.cache.capacity, 0);
    assert_eq!(hub.cache.ttl, Duration::from_secs(5));
    assert_eq!(hub.offsets, OffsetMode::External);
}

#[test]
fn file_then_env_then_flags() {
    let file = TempFile::new(
        "layers",
        r#"
        listen = "127.0.0.1:1000"
        node_id = "from-file"
        [delivery]
        batch_window_ms = 5
        max_batch = 11
        "#,
    );
    let flags = || Overrides {
        listen: Some("127.0.0.1:3000".into()),
        ..Overrides::default()
    };

    let only_file = load_with(Some(file.path()), &[], Overrides::default()).unwrap();
    assert_eq!(only_file.listen, "127.0.0.1:1000");
    assert_eq!(only_file.node_id, "from-file");
    assert_eq!(only_file.delivery.batch_window_ms, 5);

    let vars = [
        ("TICKCAST_LISTEN", "127.0.0.1:2000"),
        ("TICKCAST_DELIVERY__BATCH_WINDOW_MS", "0"),
        ("OTHER_VAR", "ignored"),
    ];
    let with_env = load_with(Some(file.path()), &vars, Overrides::default()).unwrap();
    assert_eq!(with_env.listen, "127.0.0.1:2000");
    assert_eq!(with_env.delivery.batch_window_ms, 0);
    // Keys the environment does not set keep the file's values.
    assert_eq!(with_env.delivery.max_batch, 11);
    assert_eq!(with_env.node_id, "from-file");

    let with_flags = load_with(Some(file.path()), &vars, flags()).unwrap();
    assert_eq!(with_flags.listen, "127.0.0.1:3000");
    assert_eq!(with_flags.delivery.batch_window_ms, 0);
}

#[test]
fn env_keeps_string_keys_as_text() {
    let vars = [
        ("TICKCAST_API__KEY", "12345"),
        ("TICKCAST_NODE_ID", "7"),
        ("TICKCAST_AUTH__JWT_SECRET", "true"),
        ("TICKCAST_INGEST__AMQP__QUEUE", "12345"),
        ("TICKCAST_INGEST__AMQP__DEAD_LETTER_EXCHANGE", "0.5"),
    ];
    let config = load_with(None, &vars, Overrides::default()).unwrap();
    assert_eq!(config.api.key.as_deref(), Some("12345"));
    assert_eq!(config.node_id, "7");
    assert_eq!(config.auth.jwt_secret.as_deref(), Some("true"));
    let amqp = config.ingest.amqp.unwrap();
    assert_eq!(amqp.queue.as_deref(), Some("12345"));
    assert_eq!(amqp.dead_letter_exchange, "0.5");
}

/// Every string key takes text that looks like a number: the value may
/// then be invalid (a `listen` of "12345", a `log_format` no variant
/// has), but it arrives as a string, never as a number of the wrong type.
#[test]
fn env_takes_digits_for_every_string_key() {
    let keys = Keys::of_config().unwrap();
    let text: Vec<&str> = keys
        .iter()
        .filter(|(_, kind)| *kind == KeyKind::Text)
        .map(|(key, _)| key)
        .collect();
    for key in [
        "listen",
        "api.key",
        "ingest.amqp.queue",
        "ingest.redis.stream",
    ] {
        assert!(text.contains(&key), "{key} is not a string key: {text:?}");
    }
    for key in text {
        let path: Vec<&str> = key.split('.').collect();
        let variable = env::env_name(&path);
        match load(None, env(&[(&variable, "12345")]), Overrides::default()) {
            Ok(loaded) => assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings),
            Err(ConfigError::Invalid(_)) => {}
            Err(error) => {
                let text = error.to_string();
                assert!(!text.contains("invalid type"), "{variable}=12345: {text}");
            }
        }
    }
}

#[test]
fn env_switches_a_broker_on_and_takes_lists() {
    let vars = [
        ("TICKCAST_INGEST__AMQP__ROUTING_KEYS", "tickstock.#"),
        ("TICKCAST_INGEST__REDIS__CHANNELS", "[a.b, c.d]"),
        ("TICKCAST_INGEST__AMQP__PREFETCH", "10"),
    ];
    let config = load_with(None, &vars, Overrides::default()).unwrap();
    let amqp = config.ingest.amqp.unwrap();
    assert_eq!(amqp.routing_keys, vec!["tickstock.#"]);
    assert_eq!(amqp.prefetch, 10);
    assert_eq!(amqp.exchange, "tickstock.events");
    let redis = config.ingest.redis.unwrap();
    assert_eq!(redis.channels, vec!["a.b", "c.d"]);
    assert_eq!(redis.mode, RedisMode::PubSub);
}

/// Deployment tools set `TICKCAST_*` variables of their own: they are
/// left out with a warning naming them and the closest key, and the
/// configuration loads.
#[test]
fn unknown_variables_are_warnings_naming_the_closest_key() {
    let loaded = load_env(&[
        ("TICKCAST_BIN", "/usr/local/bin/tickcast"),
        ("TICKCAST_DELIVERY__BATCH_WINDOW", "0"),
        ("TICKCAST_INGEST__AMQP__QUEU", "q"),
        ("TICKCAST_LISTEN__PORT", "1"),
        ("TICKCAST_", "x"),
        ("TICKCAST_NODE_ID", "a"),
    ]);
    assert_eq!(loaded.config.node_id, "a");
    assert_eq!(loaded.config.delivery.batch_window_ms, 100);
    assert_eq!(
        loaded.config.ingest.amqp, None,
        "the typo switches nothing on"
    );
    let closest: Vec<(&str, Option<&str>)> = loaded
        .warnings
        .iter()
        .filter_map(|w| match w {
            ConfigWarning::UnknownVariable {
                variable,
                closest_key,
                ..
            } => Some((variable.as_str(), closest_key.as_deref())),
            ConfigWarning::LingeringQueue { .. } => None,
        })
        .collect();
    assert_eq!(closest.len(), 5, "{closest:?}");
    assert!(closest.iter().all(|(_, key)| key.is_some()), "{closest:?}");
    assert!(closest.contains(&(
        "TICKCAST_DELIVERY__BATCH_WINDOW",
        Some("delivery.batch_window_ms")
    )));
    assert!(closest.contains(&("TICKCAST_INGEST__AMQP__QUEU", Some("ingest.amqp.queue"))));
    assert!(closest
        .iter()
        .any(|(variable, _)| *variable == "TICKCAST_BIN"));

    let text = loaded.warnings[1].to_string();
    assert!(text.contains("TICKCAST_DELIVERY__BATCH_WINDOW "), "{text}");
    assert!(text.contains("`delivery.batch_window_ms`"), "{text}");
    assert!(
        text.contains("TICKCAST_DELIVERY__BATCH_WINDOW_MS"),
        "{text}"
    );
}

#[test]
fn an_unknown_variable_that_is_not_utf8_is_a_warning_too() {
    use std::os::unix::ffi::OsStringExt;
    let vars = vec![
        (
            OsString::from_vec(b"TICKCAST_\xffX".to_vec()),
            OsString::from("1"),
        ),
        (
            OsString::from("TICKCAST_BUILD"),
            OsString::from_vec(b"\xff".to_vec()),
        ),
    ];
    let loaded = load(None, vars, Overrides::default()).unwrap();
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);

    // A known key with a value that is not UTF-8 is still an error.
    let vars = vec![(
        OsString::from("TICKCAST_API__KEY"),
        OsString::from_vec(b"\xff".to_vec()),
    )];
    let text = error_text(load(None, vars, Overrides::default()).map(|l| l.config));
    assert!(text.contains("TICKCAST_API__KEY"), "{text}");
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let file = TempFile::new("unknown-top", "lisen = \"127.0.0.1:1\"\n");
    let text = error_text(load_with(Some(file.path()), &[], Overrides::default()));
    assert!(text.contains("`lisen`"), "{text}");
    assert!(text.contains("unknown key"), "{text}");
    assert!(text.contains("tickcast.toml"), "{text}");

    let file = TempFile::new("unknown-nested", "[delivery]\nbatch_window = 5\n");
    let text = error_text(load_with(Some(file.path()), &[], Overrides::default()));
    assert!(text.contains("`delivery.batch_window`"), "{text}");

    let file = TempFile::new("unknown-table", "[deliveries]\nmax_batch = 5\n");
    let text = error_text(load_with(Some(file.path()), &[], Overrides::default()));
    assert!(text.contains("`deliveries`"), "{text}");

    let file = TempFile::new("unknown-rule", "[[routing.rules]]\nevent_type = [\"x\"]\n");
    let text = error_text(load_with(Some(file.path()), &[], Overrides::default()));
    assert!(text.contains("event_type"), "{text}");

    // A table given whole through the environment is checked like a file's.
    let vars = [("TICKCAST_DELIVERY", "{batch_window = 0}")];
    let text = error_text(load_with(None, &vars, Overrides::default()));
    assert!(text.contains("`TICKCAST_DELIVERY__BATCH_WINDOW`"), "{text}");
    assert!(text.contains("environment variable"), "{text}");
}

#[test]
fn wrong_types_name_the_key() {
    let file = TempFile::new("types", "[delivery]\nmax_batch = -1\n");
    let text = error_text(load_with(Some(file.path()), &[], Overrides::default()));
    assert!(text.contains("`delivery.max_batch`"), "{text}");

    let vars = [("TICKCAST_HISTORY__CAPACITY", "lots")];
    let text = error_text(load_with(None, &vars, Overrides::default()));
    assert!(text.contains("`TICKCAST_HISTORY__CAPACITY`"), "{text}");

    let file = TempFile::new("enum", "log_format = \"xml\"\n");
    let text = error_text(load_with(Some(file.path()), &[], Overrides::default()));
    assert!(text.contains("`log_format`"), "{text}");
}

#[test]
fn a_missing_config_file_is_an_error() {
    let missing = std::env::temp_dir().join("tickcast-no-such-dir/tickcast.toml");
    let text = error_text(load_with(Some(&missing), &[], Overrides::default()));
    assert!(text.contains("tickcast-no-such-dir"), "{text}");
}

#[test]
fn the_replay_bound_follows_the_history_unless_set() {
    let file = TempFile::new("replay", "[history]\ncapacity = 250000\n");
    let config = load_with(Some(file.path()), &[], Overrides::default()).unwrap();
    assert_eq!(config.hub_config().queue.replay_capacity, 250_000);
    let file = TempFile::new("no-history", "[history]\ncapacity = 0\n");
    let config = load_with(Some(file.path()), &[], Overrides::default()).unwrap();
    assert_eq!(config.hub_config().queue.replay_capacity, 1);
    let config = load_env(&[("TICKCAST_DELIVERY__REPLAY_CAPACITY", "7")]).config;
    assert_eq!(config.hub_config().queue.replay_capacity, 7);
}

#[test]
fn invalid_values_name_their_key() {
    let file = TempFile::new(
        "invalid",
        r#"
        listen = "localhost"
        [delivery]
        max_batch = 0
        queue_capacity = 0
        queue_capacity_bytes = 0
        message_capacity = 0
        message_capacity_bytes = 0
        replay_capacity = 0
        replay_capacity_bytes = 0
        batch_window_ms = 600000
        [limits]
        max_publish_bytes = 0
        [history]
        max_age_s = 0
        [api]
        key = "has space"
        [ingest.redis]
        url = "http://x"
        mode = "streams"
        stream = ""
        [ingest.amqp]
        routing_keys = []
        prefetch = 0
        "#,
    );
    let text = error_text(load_with(Some(file.path()), &[], Overrides::default()));
    for key in [
        "`listen`",
        "`delivery.max_batch`",
        "`delivery.queue_capacity`",
        "`delivery.queue_capacity_bytes`",
        "`delivery.message_capacity`",
        "`delivery.message_capacity_bytes`",
        "`delivery.replay_capacity`",
        "`delivery.replay_capacity_bytes`",
        "`delivery.batch_window_ms`",
        "`limits.max_publish_bytes`",
        "`history.max_age_s`",
        "`api.key`",
        "`ingest.redis.url`",
        "`ingest.redis.stream`",
        "`ingest.amqp.routing_keys`",
        "`ingest.amqp.prefetch`",
    ] {
        assert!(text.contains(key), "{key} not in {text}");
    }
}

#[test]
fn auth_takes_one_kind_of_key() {
    let file = TempFile::new(
        "auth",
        "[auth]\njwt_secret = \"s\"\njwt_public_key_file = \"/no/such/key.pem\"\n",
    );
    let text = error_text(load_with(Some(file.path()), &[], Overrides::default()));
    assert!(text.contains("`auth.jwt_public_key_file`"), "{text}");
    assert!(text.contains("not both"), "{text}");
}

#[test]
fn tickstock_rules_parse_from_toml() {
    let file = TempFile::new(
        "rules",
        r#"
        [[routing.rules]]
        event_types = ["system_health"]
        strategy = "broadcast_all"

        [[routing.rules]]
        priorities = ["critical"]
        strategy = "priority_first"
        "#,
    );
    let config = load_with(Some(file.path()), &[], Overrides::default()).unwrap();
    assert_eq!(config.routing.rules, RoutingRules::tickstock());
    assert_eq!(
        config.routing.rules.0[1],
        RoutingRule::new(Strategy::PriorityFirst).with_priorities(vec![Priority::Critical])
    );
}

#[test]
fn printed_config_loads_back_to_the_same() {
    let mut config = Config::default();
    config.routing.rules = RoutingRules::tickstock();
    config.api.key = Some("k".into());
    config.ingest.redis = Some(RedisIngest::default());
    config.ingest.amqp = Some(AmqpIngest::default());
    let text = config.to_toml().unwrap();
    let file = TempFile::new("roundtrip", &text);
    let loaded = load_with(Some(file.path()), &[], Overrides::default()).unwrap();
    assert_eq!(loaded, config, "{text}");
}

/// The key catalogue comes from [`populated`]; serde's own list of each
/// table's fields (what `deny_unknown_fields` answers to an unknown one)
/// must all be in it, or a key added to the types (an `Option` left `None`
/// in `populated`) would be unknown to the environment.
#[test]
fn the_key_catalogue_has_every_field_serde_knows() {
    let keys = Keys::of_config().unwrap();
    let sample = Value::serialize(populated()).unwrap();
    let mut tables = vec![String::new()];
    tables.extend(
        keys.iter()
            .filter(|(_, kind)| *kind == KeyKind::Table)
            .map(|(key, _)| key.to_owned()),
    );
    assert!(tables.len() > 5, "{tables:?}");
    for table in tables {
        let mut probe = sample.clone();
        let path: Vec<&str> = table.split('.').filter(|n| !n.is_empty()).collect();
        insert_at(&mut probe, &path, "zz_not_a_key", Value::from(1));
        let error = Figment::from(Serialized::defaults(probe))
            .extract::<Config>()
            .unwrap_err();
        let expected = error
            .into_iter()
            .find_map(|e| match e.kind {
                figment::error::Kind::UnknownField(_, expected) => Some(expected),
                _ => None,
            })
            .unwrap_or_else(|| panic!("table `{table}` does not refuse unknown fields"));
        for field in expected {
            let key = if table.is_empty() {
                (*field).to_owned()
            } else {
                format!("{table}.{field}")
            };
            assert!(
                keys.kind(&key).is_some(),
                "`{key}` is a field of the config types but not in keys::populated(): \
                 set it there (to Some) so the environment knows it"
            );
        }
    }
}

/// Inserts `name = value` into the table at `path` of `value`.
fn insert_at(table: &mut Value, path: &[&str], name: &str, value: Value) {
    let Value::Dict(_, dict) = table else {
        panic!("not a table: {table:?}");
    };
    match path.split_first() {
        None => {
            dict.insert(name.to_owned(), value);
        }
        Some((first, rest)) => insert_at(dict.get_mut(*first).unwrap(), rest, name, value),
    }
}

/// The populated sample is a configuration like any other (though not a
/// valid one: both JWT keys are set): it loads back from its TOML
/// unchanged, so its keys are the ones a file takes.
#[test]
fn the_populated_sample_round_trips() {
    let sample = populated();
    let text = sample.to_toml().unwrap();
    let file = TempFile::new("populated", &text);
    let loaded: Config = Figment::from(Toml::file_exact(file.path()))
        .extract()
        .unwrap();
    assert_eq!(loaded, sample, "{text}");
}

#[test]
fn redaction_hides_secrets_only() {
    let mut config = Config::default();
    config.api.key = Some("k".into());
    config.auth.jwt_secret = Some("s".into());
    let shown = config.redacted();
    assert_eq!(shown.api.key.as_deref(), Some(REDACTED));
    assert_eq!(shown.auth.jwt_secret.as_deref(), Some(REDACTED));
    assert_eq!(shown.listen, config.listen);
    assert_eq!(Config::default().redacted(), Config::default());
}

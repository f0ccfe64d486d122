//! Streams mode against the shared Redis: offsets are the stream ids,
//! nothing is lost or delivered twice across restarts, history resumes
//! across a restart, entries read but never accepted (a crash) are read
//! again, and an earlier version's pending entries too.

mod common;

use common::*;
use tickcast_core::hub::OffsetMode;
use tickcast_core::model::Offset;
use tickcast_testkit::fixtures::{bad_events, GoodEvent};

/// Good fixtures interleaved with every bad one (and an entry without a
/// body), through XADD: each good event arrives with its entry id as
/// offset, each bad one is counted under its reason, and the node's
/// cursor ends on the last entry, with nothing pending (reads are NOACK).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_arrive_with_their_ids_and_bad_ones_are_counted() {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let (stream, group) = (unique("stream"), unique("group"));
    let hub = hub(OffsetMode::External);
    let mut conn = client(&hub, None);
    let task = start(&hub, streams_config(&url, &stream, &group)).await;

    let good = first_good_events(300);
    let bad = bad_events();
    let mut redis = redis_conn(&url).await;
    let mut ids = Vec::new();
    for (i, event) in good.iter().enumerate() {
        ids.push(xadd(&mut redis, &stream, &event.channel, &event.raw).await);
        if let Some(bad) = bad.get(i) {
            xadd(&mut redis, &stream, &bad.channel, &bad.raw).await;
        }
    }
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("channel")
        .arg("tickstock.events.patterns")
        .query_async(&mut redis)
        .await
        .unwrap();

    let public: Vec<(Offset, &GoodEvent)> = ids
        .iter()
        .copied()
        .zip(&good)
        .filter(|(_, g)| !g.is_private())
        .collect();
    let events = by_offset(collect(&mut conn.frames, public.len()).await);
    assert_eq!(events.len(), public.len(), "no event twice");
    assert_eq!(
        offsets(&events),
        public.iter().map(|(id, _)| *id).collect::<Vec<_>>()
    );
    for (seen, (_, sent)) in events.iter().zip(&public) {
        assert_eq!(seen["data"], sent.body);
    }
    wait_until("every entry counted", || {
        let s = stats(&hub);
        s.accepted + s.rejected_total == (good.len() + bad.len() + 1) as u64
    })
    .await;
    let stats = stats(&hub);
    assert_eq!(stats.accepted, good.len() as u64);
    let reasons = bad.iter().map(|b| b.expected_reason()).chain(["not_json"]);
    assert_eq!(rejected(&stats), reason_counts(reasons));
    wait_until_async("the cursor is on the last entry", || {
        let (mut redis, stream, group) = (redis.clone(), stream.clone(), group.clone());
        async move { caught_up(&mut redis, &stream, &group).await }
    })
    .await;
    assert_eq!(pending(&mut redis, &stream, &group).await, 0);
    stop(task).await;
    cleanup(&mut redis, &stream).await;
}

/// Entries added while no source runs are all delivered by the next one
/// (same group), and none of the earlier ones again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_added_while_stopped_arrive_once_after_restart() {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let (stream, group) = (unique("stream"), unique("group"));
    let hub = hub(OffsetMode::External);
    let mut conn = client(&hub, None);
    let mut redis = redis_conn(&url).await;
    let good: Vec<GoodEvent> = first_good_events(200)
        .into_iter()
        .filter(|g| !g.is_private())
        .take(50)
        .collect();

    let task = start(&hub, streams_config(&url, &stream, &group)).await;
    let mut ids = Vec::new();
    for event in &good[..20] {
        ids.push(xadd(&mut redis, &stream, &event.channel, &event.raw).await);
    }
    let first = collect(&mut conn.frames, 20).await;
    stop(task).await;

    for event in &good[20..] {
        ids.push(xadd(&mut redis, &stream, &event.channel, &event.raw).await);
    }
    let task = start(&hub, streams_config(&url, &stream, &group)).await;
    let second = collect(&mut conn.frames, 30).await;

    let mut all = first;
    all.extend(second);
    let all = by_offset(all);
    assert_eq!(offsets(&all), ids, "each entry exactly once");
    for (seen, sent) in all.iter().zip(&good) {
        assert_eq!(seen["data"], sent.body);
    }
    stop(task).await;
    cleanup(&mut redis, &stream).await;
}

/// A node restart (new hub, same group): backfill puts what the group had
/// consumed into the new hub's history, so a client resumes with the
/// offset it had from the old node; backfill is never delivered live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_lets_clients_resume_across_a_restart() {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let (stream, group) = (unique("stream"), unique("group"));
    let mut redis = redis_conn(&url).await;
    let good: Vec<GoodEvent> = first_good_events(200)
        .into_iter()
        .filter(|g| !g.is_private())
        .take(30)
        .collect();

    let old_hub = hub(OffsetMode::External);
    let mut old_client = client(&old_hub, None);
    let task = start(&old_hub, streams_config(&url, &stream, &group)).await;
    let mut ids = Vec::new();
    for event in &good[..20] {
        ids.push(xadd(&mut redis, &stream, &event.channel, &event.raw).await);
    }
    let seen = by_offset(collect(&mut old_client.frames, 20).await);
    let resume_from = offsets(&seen)[9];
    // A source stopped in the middle of a batch has not written the
    // cursor past it (it goes out with each read), and the next node
    // delivers that batch live again: at least once. Here the old node
    // finished its work.
    wait_until_async("old node's cursor on the last entry", || {
        let (mut redis, stream, group) = (redis.clone(), stream.clone(), group.clone());
        async move { caught_up(&mut redis, &stream, &group).await }
    })
    .await;
    stop(task).await;
    old_hub.shutdown();

    for event in &good[20..] {
        ids.push(xadd(&mut redis, &stream, &event.channel, &event.raw).await);
    }
    let new_hub = hub(OffsetMode::External);
    let mut live_client = client(&new_hub, None);
    let task = start(&new_hub, streams_config(&url, &stream, &group)).await;
    let live = by_offset(collect(&mut live_client.frames, 10).await);
    assert_eq!(offsets(&live), ids[20..], "only the new entries live");

    let mut resumed = client(&new_hub, Some(resume_from));
    let replay = by_offset(collect(&mut resumed.frames, 20).await);
    assert_eq!(offsets(&replay), ids[10..], "resumed after the old offset");
    for (seen, sent) in replay.iter().zip(&good[10..]) {
        assert_eq!(seen["data"], sent.body);
    }
    stop(task).await;
    cleanup(&mut redis, &stream).await;
}

/// A restarted node's source reports `Connected` only after the history
/// it reloads is handed out: that is when `/ready` turns 200 and, with
/// `HubConfig::await_history`, when clients are let in, so no resume meets
/// a half-loaded history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_source_is_connected_once_its_history_is_out() {
    use tickcast_core::ingest::{IngestItem, IngestSource};
    use tickcast_ingest_redis::RedisSource;
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let (stream, group) = (unique("stream"), unique("group"));
    let mut redis = redis_conn(&url).await;
    let good: Vec<GoodEvent> = first_good_events(30);

    let old_hub = hub(OffsetMode::External);
    let mut old_client = client(&old_hub, None);
    let task = start(&old_hub, streams_config(&url, &stream, &group)).await;
    for event in &good[..10] {
        xadd(&mut redis, &stream, &event.channel, &event.raw).await;
    }
    let public = good[..10].iter().filter(|g| !g.is_private()).count();
    collect(&mut old_client.frames, public).await;
    wait_until_async("old node's cursor on the last entry", || {
        let (mut redis, stream, group) = (redis.clone(), stream.clone(), group.clone());
        async move { caught_up(&mut redis, &stream, &group).await }
    })
    .await;
    stop(task).await;

    let mut source = RedisSource::new(streams_config(&url, &stream, &group)).unwrap();
    let mut backfilled = 0;
    loop {
        let item = tokio::time::timeout(std::time::Duration::from_secs(10), source.next())
            .await
            .expect("the source yields")
            .expect("the source goes on");
        match item {
            IngestItem::Backfill(_) => backfilled += 1,
            IngestItem::Connected => break,
            IngestItem::Message(_) => panic!("nothing was pending or new"),
            IngestItem::Disconnected(why) => panic!("disconnected: {why}"),
        }
    }
    assert_eq!(backfilled, 10, "the whole history came before `Connected`");
    drop(source);
    cleanup(&mut redis, &stream).await;
}

/// A read given up while it waits (a `select!` that dropped `next()`)
/// loses nothing: Redis hands the next entry to that read, which nobody
/// polls any more, and the source reads it again. The same holds for a
/// crash before the hub accepted anything: the node's place is written
/// before its first read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_given_up_while_it_waits_loses_nothing() {
    use std::time::Duration;
    use tickcast_core::ingest::{IngestItem, IngestSource};
    use tickcast_ingest_redis::RedisSource;
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let (stream, group) = (unique("stream"), unique("group"));
    let mut redis = redis_conn(&url).await;
    let mut config = streams_config(&url, &stream, &group);
    config.block = Duration::from_secs(5);
    let mut source = RedisSource::new(config).unwrap();
    let connected = tokio::time::timeout(Duration::from_secs(10), source.next())
        .await
        .expect("the source yields");
    assert!(matches!(connected, Some(IngestItem::Connected)));

    let waiting = tokio::time::timeout(Duration::from_millis(300), source.next()).await;
    assert!(waiting.is_err(), "nothing to read yet: the read waits");
    let event = &first_good_events(1)[0];
    let id = xadd(&mut redis, &stream, &event.channel, &event.raw).await;
    // Redis hands the entry to the read it still has blocked.
    wait_until_async("the group moved past the entry", || {
        let (mut redis, stream, group) = (redis.clone(), stream.clone(), group.clone());
        async move { last_delivered(&mut redis, &stream, &group).await == id.to_string() }
    })
    .await;

    let item = tokio::time::timeout(Duration::from_secs(10), source.next())
        .await
        .expect("the source yields");
    match item {
        Some(IngestItem::Message(incoming)) => assert_eq!(incoming.offset, Some(id)),
        _ => panic!("expected the entry"),
    }
    drop(source);
    cleanup(&mut redis, &stream).await;
}

/// An upgrade: an earlier version of tickcast (which read without NOACK
/// and acknowledged each entry) read six entries and acknowledged three.
/// The next source delivers the three pending ones live, after the
/// acknowledged ones as backfill, and drops the pending list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_versions_pending_entries_are_read_again_in_order() {
    an_interrupted_run_is_taken_up(EarlierRun::PendingList).await;
}

/// A crash between read and hand-off: the group was handed six entries
/// (its last-delivered id is the sixth) but the node's cursor says its hub
/// took only three. The next source puts the group back at the cursor and
/// delivers the other three live, in their place after the three as
/// backfill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_read_but_never_accepted_are_read_again() {
    an_interrupted_run_is_taken_up(EarlierRun::Cursor).await;
}

/// How a run that read six entries and had three accepted left its
/// group.
enum EarlierRun {
    /// Read without NOACK, the three XACKed (an earlier version).
    PendingList,
    /// Read with NOACK, the cursor on the third.
    Cursor,
}

/// The next source after `earlier`: the last three and three new entries
/// live, the first three as backfill, nothing pending, the cursor on the
/// last entry.
async fn an_interrupted_run_is_taken_up(earlier: EarlierRun) {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let (stream, group) = (unique("stream"), unique("group"));
    let mut redis = redis_conn(&url).await;
    let good: Vec<GoodEvent> = first_good_events(200)
        .into_iter()
        .filter(|g| !g.is_private())
        .take(9)
        .collect();
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg(&group)
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for event in &good[..6] {
        ids.push(xadd(&mut redis, &stream, &event.channel, &event.raw).await);
    }
    let mut read = redis::cmd("XREADGROUP");
    read.arg("GROUP")
        .arg(&group)
        .arg("c1")
        .arg("COUNT")
        .arg(100);
    if matches!(earlier, EarlierRun::Cursor) {
        read.arg("NOACK");
    }
    let _: redis::Value = read
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut redis)
        .await
        .unwrap();
    let _: () = match earlier {
        EarlierRun::PendingList => {
            let acked: Vec<String> = ids[..3].iter().map(Offset::to_string).collect();
            let _: usize = redis::cmd("XACK")
                .arg(&stream)
                .arg(&group)
                .arg(&acked)
                .query_async(&mut redis)
                .await
                .unwrap();
        }
        EarlierRun::Cursor => redis::cmd("SET")
            .arg(tickcast_ingest_redis::cursor_key(&stream, &group))
            .arg(ids[2].to_string())
            .query_async(&mut redis)
            .await
            .unwrap(),
    };

    let hub = hub(OffsetMode::External);
    let mut live_client = client(&hub, None);
    let task = start(&hub, streams_config(&url, &stream, &group)).await;
    for event in &good[6..] {
        ids.push(xadd(&mut redis, &stream, &event.channel, &event.raw).await);
    }
    let live = by_offset(collect(&mut live_client.frames, 6).await);
    assert_eq!(offsets(&live), ids[3..], "unaccepted and new entries live");
    let mut resumed = client(&hub, Some(ids[0]));
    let replay = by_offset(collect(&mut resumed.frames, 8).await);
    assert_eq!(
        offsets(&replay),
        ids[1..],
        "backfill and live in one history"
    );
    assert_eq!(pending(&mut redis, &stream, &group).await, 0);
    wait_until_async("the cursor is on the last entry", || {
        let (mut redis, stream, group) = (redis.clone(), stream.clone(), group.clone());
        async move { caught_up(&mut redis, &stream, &group).await }
    })
    .await;
    stop(task).await;
    cleanup(&mut redis, &stream).await;
}

/// Each node is its own group: two sources on one stream both get every
/// entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_group_sees_every_entry() {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let stream = unique("stream");
    let mut redis = redis_conn(&url).await;
    let (hub_a, hub_b) = (hub(OffsetMode::External), hub(OffsetMode::External));
    let (mut client_a, mut client_b) = (client(&hub_a, None), client(&hub_b, None));
    let task_a = start(&hub_a, streams_config(&url, &stream, &unique("node-a"))).await;
    let task_b = start(&hub_b, streams_config(&url, &stream, &unique("node-b"))).await;
    let good: Vec<GoodEvent> = first_good_events(100)
        .into_iter()
        .filter(|g| !g.is_private())
        .take(10)
        .collect();
    let mut ids = Vec::new();
    for event in &good {
        ids.push(xadd(&mut redis, &stream, &event.channel, &event.raw).await);
    }
    assert_eq!(
        offsets(&by_offset(collect(&mut client_a.frames, 10).await)),
        ids
    );
    assert_eq!(
        offsets(&by_offset(collect(&mut client_b.frames, 10).await)),
        ids
    );
    stop(task_a).await;
    stop(task_b).await;
    cleanup(&mut redis, &stream).await;
}

async fn cleanup(redis: &mut redis::aio::MultiplexedConnection, stream: &str) {
    let _: usize = redis::cmd("DEL")
        .arg(stream)
        .query_async(redis)
        .await
        .unwrap();
}

/// The stream (and with it the group) deleted under a running source: the
/// group is recreated from the beginning and new entries keep coming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_stream_is_recreated_and_reading_goes_on() {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let (stream, group) = (unique("stream"), unique("group"));
    let hub = hub(OffsetMode::External);
    let mut conn = client(&hub, None);
    let mut redis = redis_conn(&url).await;
    let task = start(&hub, streams_config(&url, &stream, &group)).await;
    let good: Vec<GoodEvent> = first_good_events(100)
        .into_iter()
        .filter(|g| !g.is_private())
        .take(10)
        .collect();
    let mut ids = Vec::new();
    for event in &good[..5] {
        ids.push(xadd(&mut redis, &stream, &event.channel, &event.raw).await);
    }
    let mut seen = collect(&mut conn.frames, 5).await;
    cleanup(&mut redis, &stream).await;
    for event in &good[5..] {
        ids.push(xadd(&mut redis, &stream, &event.channel, &event.raw).await);
    }
    seen.extend(collect(&mut conn.frames, 5).await);
    assert_eq!(offsets(&by_offset(seen)), ids);
    stop(task).await;
    cleanup(&mut redis, &stream).await;
}

/// A producer that XADDs without MAXLEN does not grow the stream without
/// bound: a consuming node trims it to about `stream_maxlen` (issue 14).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consuming_node_trims_the_stream() {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let stream = unique("trimmed");
    let mut redis = redis_conn(&url).await;
    let hub = hub(OffsetMode::External);
    let mut conn = client(&hub, None);
    let config = tickcast_ingest_redis::RedisConfig {
        stream_maxlen: Some(200),
        ..streams_config(&url, &stream, &unique("node"))
    };
    let task = start(&hub, config).await;
    let body = br#"{"pattern":"Doji","symbol":"AAPL"}"#;
    for _ in 0..1000 {
        xadd(&mut redis, &stream, "tickstock.events.patterns", body).await;
    }
    assert_eq!(collect(&mut conn.frames, 1000).await.len(), 1000);
    // Once a second at most: another entry after a second makes sure a
    // trim runs after the last of them.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    xadd(&mut redis, &stream, "tickstock.events.patterns", body).await;
    wait_until_async("the stream trimmed", || {
        let url = url.clone();
        let stream = stream.clone();
        async move {
            let mut redis = redis_conn(&url).await;
            let len: u64 = redis::cmd("XLEN")
                .arg(&stream)
                .query_async(&mut redis)
                .await
                .unwrap();
            // `~` trims whole nodes of 100 entries: never below the bound.
            (200..=300).contains(&len)
        }
    })
    .await;
    stop(task).await;
    cleanup(&mut redis, &stream).await;
}

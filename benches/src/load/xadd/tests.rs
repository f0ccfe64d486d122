use redis::AsyncCommands;
use tickcast_testkit::RedisServer;

use super::*;
use crate::events::PatternDetection;

const TIMEOUT: Duration = Duration::from_secs(5);

fn target(url: &str, stream: &str) -> XaddTarget {
    XaddTarget::for_url(url, stream, Some(1_000), TIMEOUT)
        .unwrap()
        .expect("a TCP URL")
}

fn templates() -> Vec<Bytes> {
    ["AAA", "BBB", "CCC"]
        .iter()
        .map(|s| Bytes::from(PatternDetection::new(s, "Doji").to_json()))
        .collect()
}

async fn client(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The entries are what the server's publisher writes: `channel` and
/// `body` fields, the body stamped; each event gets its own result.
#[tokio::test]
async fn a_batch_becomes_stamped_stream_entries() {
    let redis = RedisServer::start();
    let target = target(&redis.url(), "events");
    let mut conn = XaddConn::open(&target).await.unwrap();
    let (templates, mut results) = (templates(), Vec::new());
    conn.publish(&target, "ch.a", 40, &templates, 77, &mut results)
        .await
        .unwrap();
    assert_eq!(results, vec![Ok(()), Ok(()), Ok(())]);
    // The connection is reused, for another channel too.
    conn.publish(&target, "ch.b", 43, &templates[..1], 78, &mut results)
        .await
        .unwrap();
    assert_eq!(results, vec![Ok(())]);

    let mut check = client(&redis.url()).await;
    let entries: redis::streams::StreamRangeReply = check.xrange_all("events").await.unwrap();
    assert_eq!(entries.ids.len(), 4);
    for (i, entry) in entries.ids.iter().enumerate() {
        let channel: String = entry.get("channel").unwrap();
        let body: String = entry.get("body").unwrap();
        assert_eq!(entry.map.len(), 2, "channel and body only");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let (seq, sent, symbol, ch) = match i {
            3 => (43, 78, "AAA", "ch.b"),
            _ => (40 + i, 77, ["AAA", "BBB", "CCC"][i], "ch.a"),
        };
        assert_eq!(channel, ch);
        assert_eq!(body["load_seq"], seq);
        assert_eq!(body["load_sent_ns"], sent);
        assert_eq!(body["symbol"], symbol);
    }
}

/// A refused XADD fails its own event only, and the connection stays
/// usable.
#[tokio::test]
async fn a_refused_event_fails_alone() {
    let redis = RedisServer::start();
    let mut check = client(&redis.url()).await;
    let () = check.set("taken", "a string").await.unwrap();
    let taken = target(&redis.url(), "taken");
    let mut conn = XaddConn::open(&taken).await.unwrap();
    let mut results = Vec::new();
    conn.publish(&taken, "ch", 0, &templates()[..2], 1, &mut results)
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert!(results
        .iter()
        .all(|r| r.as_ref().unwrap_err().starts_with("WRONGTYPE")));
    let free = target(&redis.url(), "free");
    conn.publish(&free, "ch", 2, &templates()[..1], 1, &mut results)
        .await
        .unwrap();
    assert_eq!(results, vec![Ok(())]);
}

/// The URL's password and database are used; a wrong password fails the
/// connection with Redis's answer.
#[tokio::test]
async fn logs_in_and_selects_the_database() {
    let redis = RedisServer::start();
    let mut admin = client(&redis.url()).await;
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("s3cret")
        .query_async(&mut admin)
        .await
        .unwrap();
    let port = redis.url().rsplit(':').next().unwrap().to_owned();
    let url = format!("redis://:s3cret@127.0.0.1:{port}/3");
    let target = target(&url, "db3");
    let mut conn = XaddConn::open(&target).await.unwrap();
    let mut results = Vec::new();
    conn.publish(&target, "ch", 0, &templates()[..1], 1, &mut results)
        .await
        .unwrap();
    assert_eq!(results, vec![Ok(())]);
    let mut check = client(&url).await;
    let len: usize = check.xlen("db3").await.unwrap();
    assert_eq!(len, 1);

    let wrong = self::target(&format!("redis://:nope@127.0.0.1:{port}"), "x");
    let error = XaddConn::open(&wrong).await.unwrap_err();
    assert!(error.starts_with("AUTH: WRONGPASS"), "{error}");
}

#[test]
fn only_plain_tcp_urls_are_taken() {
    let t = target("redis://u:p@h:7/2", "s");
    assert_eq!(t.addr, "h:7");
    assert_eq!(t.auth, Some((Some("u".to_owned()), "p".to_owned())));
    assert_eq!(t.db, 2);
    assert_eq!(
        XaddTarget::for_url("redis+unix:///tmp/r.sock", "s", None, TIMEOUT),
        Ok(None)
    );
    assert!(XaddTarget::for_url("not a url", "s", None, TIMEOUT).is_err());
    assert_eq!(
        t.prefix("c"),
        b"*10\r\n$4\r\nXADD\r\n$1\r\ns\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$4\r\n1000\r\n$1\r\n*\r\n$7\r\nchannel\r\n$1\r\nc\r\n$4\r\nbody\r\n"
    );
}

#[test]
fn replies_are_ids_errors_or_ok() {
    let id = |s: &str| Ok(Reply::Id(s.to_owned()));
    assert_eq!(parse_reply(b""), Ok(None));
    assert_eq!(parse_reply(b"$5\r\n1-2"), Ok(None));
    assert_eq!(parse_reply(b"$3\r\n1-2\r\n+"), Ok(Some((id("1-2"), 9))));
    assert_eq!(parse_reply(b"+OK\r\n"), Ok(Some((Ok(Reply::Ok), 5))));
    assert_eq!(
        parse_reply(b"-ERR no\r\n"),
        Ok(Some((Err("ERR no".to_owned()), 9)))
    );
    for bad in [
        &b":1\r\n"[..],
        b"*1\r\n",
        b"$x\r\n",
        b"$-1\r\n",
        b"$1\r\nab\r\n",
        b"+QUEUED\r\n",
    ] {
        assert!(
            parse_reply(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(check_id(&Reply::Id("1700000000000-0".into())), Ok(()));
    assert!(check_id(&Reply::Id("1700000000000".into())).is_err());
    assert!(check_id(&Reply::Ok).is_err());
}

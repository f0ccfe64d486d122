//! A TickStock web app embedding tickcast: TickStockPL keeps publishing
//! pattern detections to Redis as it does today; this service consumes
//! them into a [`TierPatternHub`], gives each user a feed from their
//! preferences (presets here), serves it over WebSocket next to its own
//! routes, and publishes market state and alerts of its own.
//!
//! ```sh
//! scripts/brokers.sh start    # or any Redis; pass its URL
//! cargo run -p tickcast-patterns --example tickstock_app -- redis://127.0.0.1:6390 127.0.0.1:8083
//! cargo run -p tickcast-transport-ws --example subscribe -- ws://127.0.0.1:8083/ws '{}'
//! redis-cli -p 6390 PUBLISH tickstock.events.patterns \
//!   '{"source":"TickStockPL","pattern":"BreakoutBO","symbol":"AAPL","confidence":0.93,"tier":"daily"}'
//! curl 127.0.0.1:8083/patterns/stats
//! ```
//!
//! Preferences belong to users: a connection made with a JWT whose `sub`
//! is `alice` (set `WsConfig::session.auth`) gets alice's feed and
//! alerts without subscribing itself. Anonymous connections, as in the
//! commands above, subscribe with filters of their own.

use std::time::Duration;

use tickcast_core::ingest::run_source;
use tickcast_core::model::MarketRegime;
use tickcast_core::HubConfig;
use tickcast_ingest_redis::{RedisConfig, RedisSource};
use tickcast_patterns::{
    HealthStatus, MarketStateEvent, SystemHealthEvent, TierPatternHub, UserPreferences,
};
use tickcast_transport_ws::{ws_route, WsConfig};
use warp::Filter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let redis_url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let addr: std::net::SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:8083").parse()?;

    let patterns = TierPatternHub::builder()
        .config(HubConfig::default())
        .build();
    // Preferences would come from the app's user database.
    patterns.subscribe_user("alice", UserPreferences::swing_trading())?;
    patterns.subscribe_user("bob", UserPreferences::intraday_scalping())?;
    patterns.subscribe_user("carol", UserPreferences::risk_monitoring())?;

    // TickStockPL's Redis channels feed the hub below the pattern API.
    let source = RedisSource::new(RedisConfig {
        url: redis_url.clone(),
        ..RedisConfig::default()
    })?;
    tokio::spawn(run_source(patterns.hub().clone(), source)?);
    // Market-hours-only feeds open and close on time.
    tokio::spawn(patterns.clone().run_session_watch(Duration::from_secs(30)));
    // The app's own publishing: market state every minute.
    let publisher = patterns.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let _ = publisher.publish_market_state(MarketStateEvent::new(MarketRegime::Neutral));
            let _ = publisher.publish_health(SystemHealthEvent::new(
                "tickstock_app",
                HealthStatus::Ok,
                "running",
            ));
        }
    });

    let stats = {
        let patterns = patterns.clone();
        warp::path!("patterns" / "stats").map(move || warp::reply::json(&patterns.stats()))
    };
    let health = {
        let patterns = patterns.clone();
        warp::path!("patterns" / "health").map(move || warp::reply::json(&patterns.health()))
    };
    let routes = ws_route(patterns.hub().clone(), WsConfig::default())
        .or(stats)
        .or(health);
    println!("consuming {redis_url}; serving ws://{addr}/ws, http://{addr}/patterns/stats");
    warp::serve(routes).run(addr).await;
    Ok(())
}

//! The filter rules of docs/protocol.md read literally over the published
//! JSON, without the crate's model: the independent oracle the end-to-end
//! tests compare deliveries with. Shared by core's and the server's tests.
#![allow(dead_code)]

use serde_json::Value;

/// The event's dimensions read straight from the JSON, without the crate.
pub struct Dims {
    pub event_type: String,
    pub symbol: Option<String>,
    pub pattern: Option<String>,
    pub tier: Option<String>,
    pub regime: Option<String>,
    pub confidence: Option<f64>,
    pub priority: u8,
    pub user: Option<String>,
}

pub fn dims(body: &Value, channel: &str) -> Dims {
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let confidence = body.get("confidence").and_then(Value::as_f64);
    let rank = |p: &str| {
        ["low", "medium", "high", "critical"]
            .iter()
            .position(|x| *x == p)
            .unwrap() as u8
    };
    let priority = match s("priority") {
        Some(p) => rank(&p),
        None => match confidence {
            Some(c) if c >= 0.9 => 3,
            Some(c) if c >= 0.8 => 2,
            Some(c) if c >= 0.6 => 1,
            Some(_) => 0,
            None => 1,
        },
    };
    let by_channel = match channel {
        "tickstock.events.backtesting.progress" => "backtest_progress",
        "tickstock.events.backtesting.results" => "backtest_result",
        "tickstock.health.status" => "system_health",
        _ => "pattern_detected",
    };
    Dims {
        event_type: s("event_type").unwrap_or_else(|| by_channel.to_owned()),
        symbol: s("symbol").map(|x| x.to_uppercase()),
        pattern: s("pattern").or_else(|| s("pattern_name")),
        tier: s("tier"),
        regime: s("market_regime"),
        confidence,
        priority,
        user: s("user_id"),
    }
}

/// The filter rules of docs/protocol.md, read literally.
pub fn wants(f: &Value, d: &Dims) -> bool {
    let list = |k: &str, v: &Option<String>, upper: bool| match f.get(k).and_then(Value::as_array) {
        None => true,
        Some(a) if a.is_empty() => true,
        Some(a) => v.as_ref().is_some_and(|v| {
            a.iter().any(|x| {
                let x = x.as_str().unwrap();
                if upper {
                    x.to_uppercase() == *v
                } else {
                    x == v
                }
            })
        }),
    };
    let min_conf = f.get("min_confidence").and_then(Value::as_f64);
    let min_prio = f.get("min_priority").and_then(Value::as_str).map(|p| {
        ["low", "medium", "high", "critical"]
            .iter()
            .position(|x| *x == p)
            .unwrap() as u8
    });
    list("event_types", &Some(d.event_type.clone()), false)
        && list("tiers", &d.tier, false)
        && list("symbols", &d.symbol, true)
        && list("patterns", &d.pattern, false)
        && list("market_regimes", &d.regime, false)
        && min_conf.is_none_or(|m| d.confidence.is_some_and(|c| c >= m))
        && min_prio.is_none_or(|m| d.priority >= m)
}

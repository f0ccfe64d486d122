//! Routing strategies and the rules that choose one per event.

use serde::{Deserialize, Serialize};

use crate::model::{Event, Priority, Tier};

/// How an event's recipients are chosen and handed to the broadcaster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The index decides who gets the event (the default).
    #[default]
    ContentBased,
    /// Every connection with any subscription gets it; filters are not
    /// consulted and frames carry `"subs":[]`.
    BroadcastAll,
    /// Content-based, and the event jumps every queue: flushed ahead of
    /// pending batches and exempt from rate limits.
    PriorityFirst,
    /// Content-based, with the fan-out split across the broadcaster's
    /// worker shards so one huge audience does not stall other events.
    LoadBalanced,
}

impl Strategy {
    /// Wire/config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContentBased => "content_based",
            Self::BroadcastAll => "broadcast_all",
            Self::PriorityFirst => "priority_first",
            Self::LoadBalanced => "load_balanced",
        }
    }
}

/// One routing rule: when an event matches every non-empty list, it gets
/// `strategy`. Empty lists match anything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RoutingRule {
    /// Event types the rule applies to.
    pub event_types: Vec<String>,
    /// Tiers the rule applies to.
    pub tiers: Vec<Tier>,
    /// Priorities the rule applies to.
    pub priorities: Vec<Priority>,
    /// The strategy the matching events get.
    pub strategy: Strategy,
}

setters!(RoutingRule {
    with_event_types => event_types: Vec<String>,
    with_tiers => tiers: Vec<Tier>,
    with_priorities => priorities: Vec<Priority>,
    with_strategy => strategy: Strategy,
});

impl RoutingRule {
    /// A rule giving `strategy` to every event; narrow it with the
    /// `with_*` setters.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            ..Self::default()
        }
    }

    fn applies_to(&self, event: &Event) -> bool {
        (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event.event_type()))
            && (self.tiers.is_empty()
                || (event.text("tier").and_then(|t| t.parse::<Tier>().ok()))
                    .is_some_and(|t| self.tiers.contains(&t)))
            && (self.priorities.is_empty() || self.priorities.contains(&event.priority()))
    }
}

/// Ordered rules; the first that applies wins, else `content_based`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoutingRules(pub Vec<RoutingRule>);

impl RoutingRules {
    /// TickStock's rules: health to everyone, critical events first.
    pub fn tickstock() -> Self {
        Self(vec![
            RoutingRule {
                event_types: vec!["system_health".into()],
                strategy: Strategy::BroadcastAll,
                ..RoutingRule::default()
            },
            RoutingRule {
                priorities: vec![Priority::Critical],
                strategy: Strategy::PriorityFirst,
                ..RoutingRule::default()
            },
        ])
    }

    /// The strategy for `event`.
    pub fn strategy_for(&self, event: &Event) -> Strategy {
        self.0
            .iter()
            .find(|r| r.applies_to(event))
            .map_or(Strategy::ContentBased, |r| r.strategy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn event(json: &str, channel: &str) -> Event {
        Event::from_json(
            Bytes::copy_from_slice(json.as_bytes()),
            Some(channel),
            1 << 20,
        )
        .unwrap()
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = RoutingRules::tickstock();
        let health = event(
            r#"{"status":"ok","priority":"critical"}"#,
            "tickstock.health.status",
        );
        assert_eq!(rules.strategy_for(&health), Strategy::BroadcastAll);
        let hot = event(
            r#"{"symbol":"A","pattern":"P","confidence":0.95}"#,
            "tickstock.events.patterns",
        );
        assert_eq!(rules.strategy_for(&hot), Strategy::PriorityFirst);
        let cold = event(
            r#"{"symbol":"A","pattern":"P","confidence":0.5}"#,
            "tickstock.events.patterns",
        );
        assert_eq!(rules.strategy_for(&cold), Strategy::ContentBased);
        assert_eq!(
            RoutingRules::default().strategy_for(&health),
            Strategy::ContentBased
        );
    }

    #[test]
    fn rules_parse_from_config() {
        let rules: RoutingRules =
            serde_json::from_str(r#"[{"tiers":["daily"],"strategy":"load_balanced"}]"#).unwrap();
        let daily = event(r#"{"symbol":"A","pattern":"P","tier":"daily"}"#, "x");
        assert_eq!(rules.strategy_for(&daily), Strategy::LoadBalanced);
    }
}

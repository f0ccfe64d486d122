//! The TickStockPL channels (Redis channel or AMQP routing key) and the event
//! type each one implies when a body does not name its own.

/// Event type of pattern detections, also the default when nothing names one.
pub const PATTERN_DETECTED: &str = "pattern_detected";

/// The channels TickStockPL publishes on, with the event type each implies.
pub const KNOWN_CHANNELS: [(&str, &str); 4] = [
    ("tickstock.events.patterns", PATTERN_DETECTED),
    ("tickstock.events.backtesting.progress", "backtest_progress"),
    ("tickstock.events.backtesting.results", "backtest_result"),
    ("tickstock.health.status", "system_health"),
];

/// The event type a known channel implies, or `None` for any other channel.
pub fn event_type_for_channel(channel: &str) -> Option<&'static str> {
    KNOWN_CHANNELS
        .iter()
        .find(|(name, _)| *name == channel)
        .map(|(_, event_type)| *event_type)
}

/// The channel TickStockPL uses for an event type, when it has one; the
/// inverse of [`event_type_for_channel`], used to publish through a broker.
pub fn channel_for_event_type(event_type: &str) -> Option<&'static str> {
    KNOWN_CHANNELS
        .iter()
        .find(|(_, t)| *t == event_type)
        .map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_four_channels_both_ways() {
        assert_eq!(
            event_type_for_channel("tickstock.health.status"),
            Some("system_health")
        );
        assert_eq!(
            event_type_for_channel("tickstock.events.patterns"),
            Some(PATTERN_DETECTED)
        );
        assert_eq!(event_type_for_channel("other"), None);
        for (channel, event_type) in KNOWN_CHANNELS {
            assert_eq!(channel_for_event_type(event_type), Some(channel));
        }
    }
}

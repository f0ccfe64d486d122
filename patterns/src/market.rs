//! [`MarketSession`]: where the US equity trading day stands, in
//! US/Eastern time with daylight saving (IANA `America/New_York`).

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::America::New_York;
use serde::{Deserialize, Serialize};

/// The part of the trading day an instant falls in. Weekends are closed;
/// exchange holidays are not modelled (they count as their weekday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketSession {
    /// 04:00 to 09:30 Eastern.
    PreMarket,
    /// 09:30 to 16:00 Eastern: market hours.
    Regular,
    /// 16:00 to 20:00 Eastern.
    AfterHours,
    /// 20:00 to 04:00 Eastern, and weekends.
    Closed,
}

impl MarketSession {
    /// The session at `now`.
    pub fn at(now: DateTime<Utc>) -> Self {
        let local = now.with_timezone(&New_York);
        if matches!(local.weekday(), Weekday::Sat | Weekday::Sun) {
            return Self::Closed;
        }
        let minute = local.time().hour() * 60 + local.time().minute();
        match minute {
            m if m < 4 * 60 => Self::Closed,
            m if m < 9 * 60 + 30 => Self::PreMarket,
            m if m < 16 * 60 => Self::Regular,
            m if m < 20 * 60 => Self::AfterHours,
            _ => Self::Closed,
        }
    }

    /// True in the regular session (market hours).
    pub fn is_open(self) -> bool {
        self == Self::Regular
    }

    /// The name used in event JSON (`pre_market`, `regular`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreMarket => "pre_market",
            Self::Regular => "regular",
            Self::AfterHours => "after_hours",
            Self::Closed => "closed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn sessions_of_a_winter_weekday_in_eastern_standard_time() {
        // Tue 2026-01-13; EST = UTC-5.
        assert_eq!(
            MarketSession::at(utc(2026, 1, 13, 8, 59)),
            MarketSession::Closed
        );
        assert_eq!(
            MarketSession::at(utc(2026, 1, 13, 9, 0)),
            MarketSession::PreMarket
        );
        assert_eq!(
            MarketSession::at(utc(2026, 1, 13, 14, 29)),
            MarketSession::PreMarket
        );
        assert_eq!(
            MarketSession::at(utc(2026, 1, 13, 14, 30)),
            MarketSession::Regular
        );
        assert_eq!(
            MarketSession::at(utc(2026, 1, 13, 20, 59)),
            MarketSession::Regular
        );
        assert_eq!(
            MarketSession::at(utc(2026, 1, 13, 21, 0)),
            MarketSession::AfterHours
        );
        assert_eq!(
            MarketSession::at(utc(2026, 1, 14, 0, 59)),
            MarketSession::AfterHours
        );
        assert_eq!(
            MarketSession::at(utc(2026, 1, 14, 1, 0)),
            MarketSession::Closed
        );
    }

    #[test]
    fn sessions_of_a_summer_weekday_in_eastern_daylight_time() {
        // Wed 2026-07-15; EDT = UTC-4.
        assert_eq!(
            MarketSession::at(utc(2026, 7, 15, 13, 29)),
            MarketSession::PreMarket
        );
        assert_eq!(
            MarketSession::at(utc(2026, 7, 15, 13, 30)),
            MarketSession::Regular
        );
        assert_eq!(
            MarketSession::at(utc(2026, 7, 15, 19, 59)),
            MarketSession::Regular
        );
        assert_eq!(
            MarketSession::at(utc(2026, 7, 15, 20, 0)),
            MarketSession::AfterHours
        );
    }

    #[test]
    fn around_the_daylight_saving_changes() {
        // 2026: DST starts Sun 8 March, ends Sun 1 November.
        // Fri 6 March 14:30 UTC = 09:30 EST: open.
        assert_eq!(
            MarketSession::at(utc(2026, 3, 6, 14, 30)),
            MarketSession::Regular
        );
        // Mon 9 March 13:30 UTC = 09:30 EDT: open; 14:30 UTC the hour
        // later is still regular, and 13:29 is pre-market.
        assert_eq!(
            MarketSession::at(utc(2026, 3, 9, 13, 29)),
            MarketSession::PreMarket
        );
        assert_eq!(
            MarketSession::at(utc(2026, 3, 9, 13, 30)),
            MarketSession::Regular
        );
        assert_eq!(
            MarketSession::at(utc(2026, 3, 9, 20, 0)),
            MarketSession::AfterHours
        );
        // Fri 30 October (EDT): 20:00 UTC = 16:00, after hours.
        assert_eq!(
            MarketSession::at(utc(2026, 10, 30, 20, 0)),
            MarketSession::AfterHours
        );
        // Mon 2 November (EST again): 20:00 UTC = 15:00, still regular.
        assert_eq!(
            MarketSession::at(utc(2026, 11, 2, 20, 0)),
            MarketSession::Regular
        );
        assert_eq!(
            MarketSession::at(utc(2026, 11, 2, 14, 29)),
            MarketSession::PreMarket
        );
    }

    #[test]
    fn weekends_are_closed_all_day() {
        // Sat 2026-01-17 at Eastern noon, Sun 2026-01-18 at Eastern noon.
        assert_eq!(
            MarketSession::at(utc(2026, 1, 17, 17, 0)),
            MarketSession::Closed
        );
        assert_eq!(
            MarketSession::at(utc(2026, 1, 18, 17, 0)),
            MarketSession::Closed
        );
        // Friday evening after hours is a weekday in Eastern time even
        // though it is already Saturday in UTC.
        assert_eq!(
            MarketSession::at(utc(2026, 1, 17, 0, 30)),
            MarketSession::AfterHours
        );
        assert!(!MarketSession::Closed.is_open());
        assert_eq!(MarketSession::PreMarket.as_str(), "pre_market");
    }
}

//! [`RateLimiter`]: the per-user delivery quota, shared by all of a user's
//! connections: events per second (the hub's `rate_limit_per_user`) and,
//! optionally, events per hour (set per user, e.g. by the tier-pattern
//! API's `max_events_per_hour` preference).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use parking_lot::RwLock;

/// A user's quotas. Critical events bypass it (the queue never asks).
pub struct RateLimiter {
    per_second: Option<DefaultDirectRateLimiter>,
    /// Changed at run time, hence behind a lock (read on every check;
    /// uncontended in practice).
    per_hour: RwLock<Option<DefaultDirectRateLimiter>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("per_second", &self.per_second.is_some())
            .field("per_hour", &self.per_hour.read().is_some())
            .finish()
    }
}

impl RateLimiter {
    /// A limiter of `per_second` events per second (`None`: no such
    /// limit) and optionally `per_hour` events per hour.
    pub fn new(per_second: Option<NonZeroU32>, per_hour: Option<NonZeroU32>) -> Self {
        Self {
            per_second: per_second.map(|n| DefaultDirectRateLimiter::direct(Quota::per_second(n))),
            per_hour: RwLock::new(per_hour.map(hourly)),
        }
    }

    /// Replaces the hourly quota (`None` removes it); the hour starts anew.
    pub fn set_per_hour(&self, per_hour: Option<NonZeroU32>) {
        *self.per_hour.write() = per_hour.map(hourly);
    }

    /// Takes one event's worth of quota, or says how long to wait for it.
    ///
    /// The hourly quota is asked first: an event refused by it does not use
    /// up a per-second cell.
    pub fn check(&self) -> Result<(), Duration> {
        if let Some(hour) = self.per_hour.read().as_ref() {
            hour.check().map_err(wait)?;
        }
        if let Some(second) = &self.per_second {
            second.check().map_err(wait)?;
        }
        Ok(())
    }
}

/// `n` per hour, as a burst of up to `n` refilled evenly over the hour.
fn hourly(n: NonZeroU32) -> DefaultDirectRateLimiter {
    let quota = Quota::with_period(Duration::from_secs(3600) / n.get())
        .unwrap_or_else(|| Quota::per_second(n))
        .allow_burst(n);
    DefaultDirectRateLimiter::direct(quota)
}

fn wait(not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>) -> Duration {
    not_until.wait_time_from(DefaultClock::default().now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u32) -> Option<NonZeroU32> {
        NonZeroU32::new(v)
    }

    #[test]
    fn the_hourly_quota_caps_a_burst_and_can_be_changed() {
        let limiter = RateLimiter::new(None, n(3));
        assert!((0..3).all(|_| limiter.check().is_ok()));
        let wait = limiter.check().unwrap_err();
        assert!(
            wait > Duration::from_secs(60),
            "refills over the hour: {wait:?}"
        );
        limiter.set_per_hour(None);
        assert!(limiter.check().is_ok());
        limiter.set_per_hour(n(1));
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_err());
    }

    #[test]
    fn a_refusal_by_the_hour_keeps_the_second() {
        let limiter = RateLimiter::new(n(2), n(1));
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_err(), "the hour is used up");
        limiter.set_per_hour(None);
        assert!(limiter.check().is_ok(), "the refusal took no second cell");
        assert!(limiter.check().is_err(), "two per second");
    }
}

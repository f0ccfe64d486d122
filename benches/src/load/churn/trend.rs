//! Whether a sampled quantity (the server's RSS, its open files) stays
//! flat: the least-squares slope of the samples after warm-up, and the
//! growth it implies over their span, against a tolerance.

use serde::Serialize;

/// One reading of the server during churn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the churn started.
    pub t_s: f64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// Open file descriptors (/proc/PID/fd).
    pub fds: u64,
}

/// The shape of a quantity after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Trend {
    /// Samples judged.
    pub samples: usize,
    /// First sample after warm-up.
    pub first: f64,
    /// Last sample.
    pub last: f64,
    /// Largest sample after warm-up.
    pub max: f64,
    /// Least-squares slope, per minute.
    pub slope_per_min: f64,
    /// What the slope adds over the judged span.
    pub growth: f64,
    /// Largest growth still called flat.
    pub tolerance: f64,
    /// `growth <= tolerance`.
    pub flat: bool,
}

/// The trend of `points` (seconds, value) from `warmup_s` on; flat when
/// the slope adds at most `tolerance(first)` over the span. `None` with
/// fewer than two points after warm-up.
pub fn trend(
    points: &[(f64, f64)],
    warmup_s: f64,
    tolerance: impl Fn(f64) -> f64,
) -> Option<Trend> {
    let judged: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(t, _)| *t >= warmup_s)
        .collect();
    let (&(t0, first), &(t1, last)) = (judged.first()?, judged.last()?);
    if judged.len() < 2 || t1 <= t0 {
        return None;
    }
    let n = judged.len() as f64;
    let mean_t = judged.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_v = judged.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut cov, mut var) = (0.0, 0.0);
    for (t, v) in &judged {
        cov += (t - mean_t) * (v - mean_v);
        var += (t - mean_t) * (t - mean_t);
    }
    let slope = cov / var;
    let growth = slope * (t1 - t0);
    let tolerance = tolerance(first);
    Some(Trend {
        samples: judged.len(),
        first,
        last,
        max: judged.iter().map(|p| p.1).fold(f64::MIN, f64::max),
        slope_per_min: slope * 60.0,
        growth,
        tolerance,
        flat: growth <= tolerance,
    })
}

/// RSS: flat within 5 % of the first sample or 4 MiB, whichever is more
/// (the allocator keeps some of what churn frees).
pub fn rss_tolerance_kib(first_kib: f64) -> f64 {
    (first_kib * 0.05).max(4096.0)
}

/// Open files: flat within 5 % of the first sample or 16 (the connections
/// in flight at the moment of a sample vary a little).
pub fn fds_tolerance(first: f64) -> f64 {
    (first * 0.05).max(16.0)
}

/// The RSS and fd trends of `samples`.
pub fn trends(samples: &[Sample], warmup_s: f64) -> (Option<Trend>, Option<Trend>) {
    let rss: Vec<_> = samples.iter().map(|s| (s.t_s, s.rss_kib as f64)).collect();
    let fds: Vec<_> = samples.iter().map(|s| (s.t_s, s.fds as f64)).collect();
    (
        trend(&rss, warmup_s, rss_tolerance_kib),
        trend(&fds, warmup_s, fds_tolerance),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_series_is_flat_and_a_leak_is_not() {
        // Warm-up climbs to 100, then it wobbles around 100.
        let steady: Vec<(f64, f64)> = (0..20)
            .map(|i| {
                let t = i as f64 * 5.0;
                let v = if t < 30.0 {
                    t * 3.0
                } else {
                    100.0 + [1.0, -1.0][i % 2]
                };
                (t, v)
            })
            .collect();
        let flat = trend(&steady, 30.0, |_| 5.0).unwrap();
        assert!(flat.flat, "{flat:?}");
        assert_eq!(flat.samples, 14);
        assert_eq!((flat.first, flat.max), (101.0, 101.0));
        assert_eq!(flat.last, 99.0);
        assert!(flat.slope_per_min.abs() < 1.0);

        // +1 per second after warm-up: 60 per minute.
        let leak: Vec<(f64, f64)> = (0..20)
            .map(|i| (i as f64 * 5.0, 100.0 + i as f64 * 5.0))
            .collect();
        let growing = trend(&leak, 30.0, |_| 5.0).unwrap();
        assert!(!growing.flat);
        assert!((growing.slope_per_min - 60.0).abs() < 1e-9);
        assert!((growing.growth - 65.0).abs() < 1e-9);
        assert_eq!(growing.last, 195.0);
    }

    #[test]
    fn too_few_samples_after_warm_up_give_no_verdict() {
        assert_eq!(trend(&[(0.0, 1.0), (10.0, 2.0)], 5.0, |_| 1.0), None);
        assert_eq!(trend(&[], 0.0, |_| 1.0), None);
        assert_eq!(trend(&[(3.0, 1.0), (3.0, 2.0)], 0.0, |_| 1.0), None);
    }

    #[test]
    fn tolerances_have_floors() {
        assert_eq!(rss_tolerance_kib(1000.0), 4096.0);
        assert_eq!(rss_tolerance_kib(200_000.0), 10_000.0);
        assert_eq!(fds_tolerance(100.0), 16.0);
        assert_eq!(fds_tolerance(2000.0), 100.0);
        let samples = [
            Sample {
                t_s: 0.0,
                rss_kib: 10,
                fds: 5,
            },
            Sample {
                t_s: 1.0,
                rss_kib: 10,
                fds: 5,
            },
        ];
        let (rss, fds) = trends(&samples, 0.0);
        assert!(rss.unwrap().flat && fds.unwrap().flat);
    }
}

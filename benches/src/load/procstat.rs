//! Resident memory and CPU time of a process, from /proc (Linux).

use std::time::Instant;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// Resident set size (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// User + system CPU time, seconds.
    pub cpu_s: f64,
}

/// Reads process `pid` (`None` if it is gone or /proc is not there).
pub fn sample(pid: u32) -> Option<Sample> {
    Some(Sample {
        at: Instant::now(),
        rss_kib: rss_kib(pid)?,
        cpu_s: cpu_seconds(pid)?,
    })
}

/// `VmRSS` of /proc/PID/status, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// Open file descriptors of process `pid` (entries of /proc/PID/fd).
pub fn open_fds(pid: u32) -> Option<u64> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(entries.count() as u64)
}

/// utime + stime of /proc/PID/stat, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // fields from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')': state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// CPU used between two samples, in percent of one core.
pub fn cpu_percent(from: &Sample, to: &Sample) -> f64 {
    let wall = to.at.duration_since(from.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    100.0 * (to.cpu_s - from.cpu_s) / wall
}

/// CPU used between two samples per one of `count` things (deliveries),
/// in µs; `None` for none.
pub fn cpu_us_per(from: &Sample, to: &Sample, count: u64) -> Option<f64> {
    (count > 0).then(|| (to.cpu_s - from.cpu_s).max(0.0) * 1e6 / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let a = sample(me).expect("/proc is there");
        assert!(a.rss_kib > 0);
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = sample(me).unwrap();
        assert!(b.cpu_s >= a.cpu_s);
        assert!(cpu_percent(&a, &b) >= 0.0);
        assert!(sample(u32::MAX).is_none());
        assert!(open_fds(me).is_some_and(|n| n > 0));
        assert!(open_fds(u32::MAX).is_none());
    }

    #[test]
    fn cpu_per_delivery_divides_the_cpu_used() {
        let at = Instant::now();
        let from = Sample {
            at,
            rss_kib: 0,
            cpu_s: 10.0,
        };
        let to = Sample {
            cpu_s: 10.5,
            ..from
        };
        assert_eq!(cpu_us_per(&from, &to, 100_000), Some(5.0));
        assert_eq!(cpu_us_per(&from, &to, 0), None);
        assert_eq!(cpu_us_per(&to, &from, 10), Some(0.0));
    }
}

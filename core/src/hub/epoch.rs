//! The epoch of a node run: the `major` of every offset the hub numbers
//! itself ([`OffsetMode::Node`](super::OffsetMode::Node)).
//!
//! Offsets of different runs (of this node or of any other) must never
//! compare as the same history: a client resuming with another run's offset
//! has to get `history_gone`, and it does whenever the two epochs differ
//! (the other run's offsets then lie wholly below this run's floor
//! `<epoch>-0` or above its latest offset). The start time alone does not
//! make epochs differ: two nodes started in the same millisecond would
//! share it. So an epoch is `<start ms><6-digit nonce>` in decimal, e.g.
//! `1732460000123` `048213` → `1732460000123048213`:
//!
//! - still readable: the leading digits are the start time in ms, and a
//!   later start has a larger epoch (within a millisecond the nonce
//!   decides);
//! - within one process, epochs strictly increase, whatever the clock says
//!   (two hubs of one process never share one);
//! - across processes, two runs share an epoch only if they start in the
//!   same millisecond *and* draw the same nonce out of 10^6 (random per
//!   run, seeded from the OS).
//!
//! `u64` holds start times up to year 2554 this way.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Nonces per millisecond: the epoch's last six decimal digits.
pub const NONCE_SPAN: u64 = 1_000_000;

/// The largest epoch issued in this process (0: none yet).
static LAST_ISSUED: AtomicU64 = AtomicU64::new(0);

/// A fresh epoch for a run started at `started_at`: unique in this process,
/// and across processes unless the millisecond and a random nonce both
/// match (see the module docs).
pub(crate) fn new_epoch(started_at: SystemTime) -> u64 {
    issue(compose(millis(started_at), random_nonce()))
}

/// The epoch `<ms><nonce>` (nonce taken modulo [`NONCE_SPAN`]), saturating
/// at `u64::MAX` for times past year 2554.
pub fn compose(ms: u64, nonce: u64) -> u64 {
    ms.saturating_mul(NONCE_SPAN)
        .saturating_add(nonce % NONCE_SPAN)
}

/// The start time (ms since the Unix epoch) an epoch was composed from.
pub fn start_ms(epoch: u64) -> u64 {
    epoch / NONCE_SPAN
}

/// `candidate`, or the next epoch above every one issued in this process
/// when `candidate` is not above them all.
fn issue(candidate: u64) -> u64 {
    let mut last = LAST_ISSUED.load(Ordering::Relaxed);
    loop {
        let next = candidate.max(last.saturating_add(1));
        match LAST_ISSUED.compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// Milliseconds since the Unix epoch; a clock before 1970 counts as 0.
fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A nonce drawn from the standard library's per-process random hash keys
/// (seeded by the OS), mixed with the process id and the precise time, so
/// processes started together (containers: all pid 1) still differ.
fn random_nonce() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.finish() % NONCE_SPAN
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn epochs_read_as_start_time_then_nonce() {
        let epoch = compose(1_732_460_000_123, 48_213);
        assert_eq!(epoch, 1_732_460_000_123_048_213);
        assert_eq!(start_ms(epoch), 1_732_460_000_123);
        assert_eq!(compose(1, NONCE_SPAN + 7), 1_000_007);
        assert_eq!(compose(u64::MAX, 5), u64::MAX);
    }

    #[test]
    fn one_process_never_issues_an_epoch_twice() {
        let at = UNIX_EPOCH + Duration::from_millis(1_732_460_000_123);
        let epochs: Vec<u64> = (0..1000).map(|_| new_epoch(at)).collect();
        for pair in epochs.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        // Even an epoch candidate equal to one already issued moves on.
        let again = issue(epochs[0]);
        assert!(again > epochs[999]);
    }

    #[test]
    fn a_later_start_has_a_larger_epoch() {
        let early = compose(1_000, NONCE_SPAN - 1);
        let late = compose(1_001, 0);
        assert!(early < late);
    }
}

//! [`Shared`]: the live counters of a run, and the latency histograms.
//!
//! Counters are atomics bumped once per frame, not per event. Latencies go
//! into one HdrHistogram per worker thread (a thread-local handle to a
//! mutex only that thread locks, except once a second when the progress
//! line merges them), so receiving never contends on a shared histogram.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

/// Highest latency the histograms hold, in µs (one hour); longer ones are
/// clamped to it.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Phases of a run, for the progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Opening connections and subscribing.
    Ramp = 0,
    /// Drawing the events and working out their recipients.
    Prepare = 1,
    /// Publishing events.
    Publish = 2,
    /// Waiting for in-flight deliveries.
    Grace = 3,
    /// Closing connections, counting.
    Done = 4,
}

impl Phase {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ramp => "ramp",
            Self::Prepare => "prepare",
            Self::Publish => "publish",
            Self::Grace => "grace",
            Self::Done => "done",
        }
    }
}

/// Counters of one run, shared by every task.
#[derive(Debug)]
pub struct Shared {
    run_id: u64,
    started: Instant,
    phase: AtomicU8,
    /// Connections that got their welcome and all subscription answers.
    pub established: AtomicU64,
    /// Connections that failed to get there.
    pub failed: AtomicU64,
    /// Connections closed before the end of the run (by the server or an
    /// error), after they were established.
    pub closed_early: AtomicU64,
    /// Subscriptions acknowledged.
    pub subscribed: AtomicU64,
    /// Subscriptions refused with an `error` frame.
    pub refused: AtomicU64,
    /// Events accepted by the server (`accepted` of the publish answers).
    pub published: AtomicU64,
    /// Deliveries expected of the events drawn so far.
    pub expected: AtomicU64,
    /// Deliveries of this run's events, each (connection, event) once.
    pub received: AtomicU64,
    /// Deliveries of an event the connection had already received.
    pub duplicates: AtomicU64,
    /// Events without the generator's stamps (another producer's).
    pub foreign: AtomicU64,
    /// `dropped` notices.
    pub dropped_notices: AtomicU64,
    /// Sum of the notices' `count`s.
    pub dropped_events: AtomicU64,
    /// `error` frames after the subscriptions.
    pub error_frames: AtomicU64,
    /// Frames that did not parse.
    pub bad_frames: AtomicU64,
    /// Text frames received.
    pub frames: AtomicU64,
    /// Of them, `event` and `batch` frames.
    pub event_frames: AtomicU64,
    /// Their bytes (the JSON text, without the WebSocket header).
    pub event_bytes: AtomicU64,
    /// Time of the latest delivery, µs after `started`.
    last_delivery_us: AtomicU64,
    locals: Mutex<Vec<LocalHistogram>>,
    merged: Mutex<Histogram<u64>>,
}

static RUNS: AtomicU64 = AtomicU64::new(1);

/// One thread's latencies.
type LocalHistogram = Arc<Mutex<Histogram<u64>>>;

/// Runs a thread keeps a histogram handle for: a churn run's connections
/// record into a `Shared` of their own on the same threads as the stable
/// ones, so a thread alternates between two runs.
const LOCAL_RUNS: usize = 4;

thread_local! {
    /// This thread's histograms, with the runs they record for (latest
    /// last).
    static LOCAL: RefCell<Vec<(u64, LocalHistogram)>> = const { RefCell::new(Vec::new()) };
}

/// A latency histogram in µs, 3 significant digits, up to an hour.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Now, in ns since the Unix epoch (the clock of `load_sent_ns`).
pub fn epoch_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Shared {
    /// Counters of a new run.
    pub fn new() -> Self {
        Self {
            run_id: RUNS.fetch_add(1, Ordering::Relaxed),
            started: Instant::now(),
            phase: AtomicU8::new(Phase::Ramp as u8),
            established: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            closed_early: AtomicU64::new(0),
            subscribed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            published: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            dropped_notices: AtomicU64::new(0),
            dropped_events: AtomicU64::new(0),
            error_frames: AtomicU64::new(0),
            bad_frames: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            event_frames: AtomicU64::new(0),
            event_bytes: AtomicU64::new(0),
            last_delivery_us: AtomicU64::new(0),
            locals: Mutex::new(Vec::new()),
            merged: Mutex::new(new_histogram()),
        }
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Ramp,
            1 => Phase::Prepare,
            2 => Phase::Publish,
            3 => Phase::Grace,
            _ => Phase::Done,
        }
    }

    /// Enters `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Records deliveries that just arrived: `record` puts their
    /// latencies into this thread's histogram and returns how many of them
    /// were first deliveries.
    pub fn delivered(&self, record: impl FnOnce(&mut Histogram<u64>) -> u64) {
        let new = LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            let histogram = match local.iter().find(|(run, _)| *run == self.run_id) {
                Some((_, h)) => h.clone(),
                None => {
                    let h = Arc::new(Mutex::new(new_histogram()));
                    self.locals.lock().push(h.clone());
                    if local.len() >= LOCAL_RUNS {
                        local.remove(0);
                    }
                    local.push((self.run_id, h.clone()));
                    h
                }
            };
            let mut histogram = histogram.lock();
            record(&mut histogram)
        });
        if new > 0 {
            self.received.fetch_add(new, Ordering::Relaxed);
            let now = self.started.elapsed().as_micros() as u64;
            self.last_delivery_us.store(now, Ordering::Relaxed);
        }
    }

    /// Time of the latest delivery, µs after the start of the run.
    pub fn last_delivery_us(&self) -> u64 {
        self.last_delivery_us.load(Ordering::Relaxed)
    }

    /// Moves what the threads recorded since the last call into the run's
    /// histogram and returns it (the interval's latencies).
    pub fn merge_latencies(&self) -> Histogram<u64> {
        let mut interval = new_histogram();
        for local in self.locals.lock().iter() {
            let mut local = local.lock();
            interval.add(&*local).expect("same bounds");
            local.reset();
        }
        self.merged.lock().add(&interval).expect("same bounds");
        interval
    }

    /// Every latency of the run so far.
    pub fn latencies(&self) -> Histogram<u64> {
        self.merge_latencies();
        self.merged.lock().clone()
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

/// Records one latency, `now_ns - sent_ns`, in µs (at least 1, at most an
/// hour).
pub fn record_latency(histogram: &mut Histogram<u64>, now_ns: u64, sent_ns: u64) {
    let us = (now_ns.saturating_sub(sent_ns) / 1_000).clamp(1, MAX_LATENCY_US);
    histogram.record(us).expect("clamped into bounds");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread recording for two runs in turn (stable and churning
    /// connections) keeps one histogram per run, not one per switch.
    #[test]
    fn alternating_runs_keep_one_histogram_each() {
        let (stable, churn) = (Shared::new(), Shared::new());
        for i in 0..100u64 {
            let run = if i % 2 == 0 { &stable } else { &churn };
            run.delivered(|h| {
                h.record(10 + i).unwrap();
                1
            });
        }
        assert_eq!(stable.locals.lock().len(), 1);
        assert_eq!(churn.locals.lock().len(), 1);
        assert_eq!(Shared::get(&stable.received), 50);
        assert_eq!(stable.latencies().len(), 50);
        assert_eq!(churn.latencies().len(), 50);
    }
}

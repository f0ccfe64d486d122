//! The stable-Rust fuzz engine: runs one [`Target`] on its seeds, then on
//! havoc mutations of them ([`crate::mutate`]), structure-aware inputs
//! ([`Target::generate`]) and plain random bytes, until a deadline.
//!
//! Each input runs under [`std::panic::catch_unwind`]. A panic hook counts
//! panics on *every* thread, so a panic that a runtime swallows (a Tokio
//! task, a `spawn_blocking` closure) still fails the input that caused it.
//! For each distinct panic (by its location) the shortest input seen is
//! kept in the crash directory.
//!
//! It is not coverage-guided (that needs nightly: cargo-fuzz); it makes
//! up for it with seeds that already reach deep and generators that know
//! the formats.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::{mutate, Target};

/// How long and how to run a target.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stop after this long (the seeds always all run first).
    pub duration: Duration,
    /// Stop after this many inputs, if set.
    pub max_inputs: Option<u64>,
    /// Seed of the random generator: the same seed, corpus and build run
    /// the same inputs.
    pub rng_seed: u64,
    /// Longest mutated or generated input, in bytes (seeds are run whole).
    pub max_len: usize,
    /// Where panicking inputs are written (`<dir>/<target>/crash-<hash>`).
    pub crash_dir: PathBuf,
}

/// Where an input came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// A corpus file or fixture seed, as is.
    Seed,
    /// A seed after havoc edits.
    Mutated,
    /// Built by the target's structure-aware generator.
    Generated,
    /// A generated input after havoc edits.
    GeneratedMutated,
    /// Random bytes.
    Random,
}

/// One distinct panic: where it happened and the shortest input for it.
#[derive(Debug, Clone)]
pub struct Crash {
    /// The panic message, starting with `panicked at <file>:<line>:<col>:`.
    pub message: String,
    /// How many inputs panicked there.
    pub count: u64,
    /// The shortest of them.
    pub input: Vec<u8>,
    /// Where it was saved (`None` if writing failed; the error is in
    /// `message`).
    pub saved: Option<PathBuf>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The target's name.
    pub target: &'static str,
    /// Inputs run, by origin.
    pub inputs: BTreeMap<Origin, u64>,
    /// Distinct panics, by location.
    pub crashes: BTreeMap<String, Crash>,
    /// The slowest single input and how long it took.
    pub slowest: Duration,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Report {
    /// Inputs run in all.
    pub fn total_inputs(&self) -> u64 {
        self.inputs.values().sum()
    }

    /// Inputs that panicked.
    pub fn panicking_inputs(&self) -> u64 {
        self.crashes.values().map(|c| c.count).sum()
    }
}

/// Panics seen by the hook while an input runs, on any thread.
static PANICS: AtomicU64 = AtomicU64::new(0);
/// The message of the latest of them.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);
/// True while [`run_one`] runs an input.
static IN_INPUT: AtomicBool = AtomicBool::new(false);

/// Wraps the panic hook: while an input runs, a panic is recorded instead
/// of printed (a fuzz run panics on purpose thousands of times); any other
/// panic (a missing fixture file, a bug of the harness) goes to the
/// previous hook and prints as usual.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_INPUT.load(Ordering::SeqCst) {
                return previous(info);
            }
            let message = info.to_string();
            if let Ok(mut last) = LAST_PANIC.lock() {
                *last = Some(message);
            }
            PANICS.fetch_add(1, Ordering::SeqCst);
        }));
    });
}

/// Runs `input` through `target`: `Err` with the panic message when it (or
/// a thread it started) panicked.
pub fn run_one(target: &Target, input: &[u8]) -> Result<(), String> {
    install_panic_hook();
    let before = PANICS.load(Ordering::SeqCst);
    IN_INPUT.store(true, Ordering::SeqCst);
    let result = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    IN_INPUT.store(false, Ordering::SeqCst);
    let panicked = PANICS.load(Ordering::SeqCst) != before;
    if result.is_ok() && !panicked {
        return Ok(());
    }
    let message = LAST_PANIC
        .lock()
        .ok()
        .and_then(|mut last| last.take())
        .unwrap_or_else(|| "panicked (no message)".to_owned());
    Err(message)
}

/// Fuzzes `target` from `seeds` as `options` say.
pub fn fuzz(target: &'static Target, seeds: &[Vec<u8>], options: &Options) -> Report {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(options.rng_seed);
    let mut report = Report {
        target: target.name,
        inputs: BTreeMap::new(),
        crashes: BTreeMap::new(),
        slowest: Duration::ZERO,
        elapsed: Duration::ZERO,
    };
    let deadline = started + options.duration;
    let budget = options.max_inputs.unwrap_or(u64::MAX);
    // Seeds over the length limit run once as they are but are not
    // mutated: copying a 1 MiB body per input would starve the rest.
    let pool: Vec<Vec<u8>> = seeds
        .iter()
        .filter(|s| s.len() <= options.max_len)
        .cloned()
        .collect();
    let mut next_seed = 0;
    let mut scratch = Vec::new();
    while report.total_inputs() < budget {
        let (origin, input) = if next_seed < seeds.len() {
            next_seed += 1;
            (Origin::Seed, seeds[next_seed - 1].clone())
        } else if Instant::now() >= deadline {
            break;
        } else {
            next_input(target, &pool, options.max_len, &mut rng, &mut scratch)
        };
        let one = Instant::now();
        let outcome = run_one(target, &input);
        report.slowest = report.slowest.max(one.elapsed());
        *report.inputs.entry(origin).or_default() += 1;
        if let Err(message) = outcome {
            record(&mut report, &options.crash_dir, message, input);
        }
    }
    report.elapsed = started.elapsed();
    report
}

/// The next non-seed input and where it came from.
fn next_input(
    target: &Target,
    seeds: &[Vec<u8>],
    max_len: usize,
    rng: &mut StdRng,
    scratch: &mut Vec<u8>,
) -> (Origin, Vec<u8>) {
    let roll = rng.random_range(0..100);
    if roll < 50 && !seeds.is_empty() {
        let mut input = seeds.choose(rng).cloned().unwrap_or_default();
        let other = seeds.choose(rng).map_or(&[][..], Vec::as_slice);
        mutate::havoc(rng, &mut input, target.dictionary, other, max_len);
        return (Origin::Mutated, input);
    }
    if roll < 90 {
        let mut input = generate(target, rng, scratch);
        if roll >= 80 {
            let other = seeds.choose(rng).map_or(&[][..], Vec::as_slice);
            mutate::havoc(rng, &mut input, target.dictionary, other, max_len);
            return (Origin::GeneratedMutated, input);
        }
        // Generated inputs keep their size: the generators bound it, and
        // some are large on purpose (deep nesting, bodies over the limit).
        return (Origin::Generated, input);
    }
    let len = rng.random_range(0..=256.min(max_len));
    (Origin::Random, (0..len).map(|_| rng.random()).collect())
}

/// One input from the target's generator, fed with fresh random bytes.
fn generate(target: &Target, rng: &mut StdRng, scratch: &mut Vec<u8>) -> Vec<u8> {
    scratch.clear();
    let len = rng.random_range(16..=4096);
    scratch.extend((0..len).map(|_| rng.random::<u8>()));
    let mut u = Unstructured::new(scratch);
    (target.generate)(&mut u).unwrap_or_default()
}

/// Counts a panicking input and keeps the shortest one per location.
fn record(report: &mut Report, crash_dir: &Path, message: String, input: Vec<u8>) {
    let location = message.lines().next().unwrap_or_default().to_owned();
    let crash = report.crashes.entry(location).or_insert_with(|| Crash {
        message: message.clone(),
        count: 0,
        input: Vec::new(),
        saved: None,
    });
    crash.count += 1;
    if crash.count > 1 && input.len() >= crash.input.len() {
        return;
    }
    crash.message = message;
    let dir = crash_dir.join(report.target);
    let path = dir.join(format!("crash-{:016x}", fnv1a(&input)));
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &input)) {
        Ok(()) => {
            if let Some(old) = crash.saved.replace(path) {
                let _ = std::fs::remove_file(old);
            }
        }
        Err(e) => {
            crash.message = format!(
                "{}\n(could not save it to {}: {e})",
                crash.message,
                path.display()
            );
        }
    }
    crash.input = input;
}

/// FNV-1a: a stable name for a crash file.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panics_on_bang(data: &[u8]) {
        assert!(!data.contains(&b'!'), "found a bang");
    }

    fn panics_in_a_thread(data: &[u8]) {
        if data.first() == Some(&b'!') {
            // Joined and ignored, as a runtime would swallow it.
            let _ = std::thread::spawn(|| panic!("in a thread")).join();
        }
    }

    fn generate_bang(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
        Ok(if u.arbitrary::<bool>()? {
            b"a!".to_vec()
        } else {
            b"ok".to_vec()
        })
    }

    static BANG: Target = Target {
        name: "engine_test_bang",
        about: "",
        run: panics_on_bang,
        generate: generate_bang,
        built_seeds: Vec::new,
        dictionary: &["!"],
    };

    static THREAD: Target = Target {
        name: "engine_test_thread",
        about: "",
        run: panics_in_a_thread,
        generate: generate_bang,
        built_seeds: Vec::new,
        dictionary: &[],
    };

    /// The panic counter is global: tests that panic on purpose take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn options(dir: &Path) -> Options {
        Options {
            duration: Duration::from_secs(60),
            max_inputs: Some(2_000),
            rng_seed: 1,
            max_len: 64,
            crash_dir: dir.to_owned(),
        }
    }

    #[test]
    fn finds_saves_and_minimizes_a_panic() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = std::env::temp_dir().join(format!("tickcast-fuzz-engine-{}", std::process::id()));
        let seeds = vec![b"hello world, no bang here".to_vec()];
        let report = fuzz(&BANG, &seeds, &options(&dir));
        assert_eq!(report.total_inputs(), 2_000);
        assert_eq!(report.inputs[&Origin::Seed], 1);
        assert_eq!(report.crashes.len(), 1, "{:?}", report.crashes.keys());
        let crash = report.crashes.values().next().unwrap();
        assert!(crash.message.contains("found a bang"), "{}", crash.message);
        assert!(crash.count > 1);
        let saved = std::fs::read(crash.saved.as_ref().unwrap()).unwrap();
        assert_eq!(saved, crash.input);
        assert!(saved.contains(&b'!'));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_panic_outside_an_input_is_not_taken_for_one() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        install_panic_hook();
        let before = PANICS.load(Ordering::SeqCst);
        assert!(panic::catch_unwind(|| panic!("harness bug")).is_err());
        assert_eq!(PANICS.load(Ordering::SeqCst), before);
        assert!(run_one(&THREAD, b"fine").is_ok());
    }

    #[test]
    fn a_panic_in_another_thread_fails_the_input() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        assert!(run_one(&THREAD, b"fine").is_ok());
        let message = run_one(&THREAD, b"!").unwrap_err();
        assert!(message.contains("in a thread"), "{message}");
        assert!(run_one(&THREAD, b"fine again").is_ok());
    }
}

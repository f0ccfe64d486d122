//! `tickcast-fuzz`: runs the fuzz targets on stable Rust for a bounded
//! time (what CI runs), reproduces a saved crash, or writes the seed
//! corpora out for libFuzzer. See docs/fuzzing.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use tickcast_fuzz::engine::{self, Options, Origin, Report};
use tickcast_fuzz::{corpus, targets, Target};

#[derive(Parser)]
#[command(about = "Fuzz tickcast's parsers of untrusted input (stable Rust)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lists the targets.
    List,
    /// Fuzzes targets for a bounded time; exits 1 if any input panicked.
    Run {
        /// Seconds per target (the seeds always all run).
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Stop a target after this many inputs.
        #[arg(long)]
        inputs: Option<u64>,
        /// Random seed (default: from the clock; printed, so a run can be
        /// repeated).
        #[arg(long)]
        seed: Option<u64>,
        /// Longest mutated input in bytes.
        #[arg(long, default_value_t = 64 * 1024)]
        max_len: usize,
        /// Corpus directory (`<dir>/<target>/`).
        #[arg(long, default_value_os_t = corpus::default_dir())]
        corpus: PathBuf,
        /// Where panicking inputs are saved (`<dir>/<target>/crash-*`).
        #[arg(long, default_value = "target/fuzz-crashes")]
        crashes: PathBuf,
        /// Target names, or `all`.
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Runs saved inputs through a target with the default panic hook, so
    /// a panic prints its message (and, with RUST_BACKTRACE=1, its stack).
    Repro {
        /// The target.
        target: String,
        /// Input files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Writes every seed (corpus files and fixture seeds) to
    /// `<dir>/<target>/`, the layout cargo-fuzz reads.
    ExportCorpus {
        /// Output directory.
        dir: PathBuf,
        /// Corpus directory to read.
        #[arg(long, default_value_os_t = corpus::default_dir())]
        corpus: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tickcast-fuzz: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::List => {
            for target in &targets::ALL {
                println!("{:<12} {}", target.name, target.about);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            seconds,
            inputs,
            seed,
            max_len,
            corpus,
            crashes,
            targets,
        } => {
            let chosen = select(&targets)?;
            let rng_seed = seed.unwrap_or_else(clock_seed);
            println!(
                "tickcast-fuzz: {} target(s), {seconds} s each, rng seed {rng_seed} (repeat with --seed {rng_seed})",
                chosen.len()
            );
            let mut failed = 0;
            let mut total = 0;
            for target in chosen {
                let seeds = corpus::seeds(target, &corpus)
                    .with_context(|| format!("seeds of {}", target.name))?;
                let options = Options {
                    duration: Duration::from_secs(seconds),
                    max_inputs: inputs,
                    rng_seed,
                    max_len,
                    crash_dir: crashes.clone(),
                };
                let report = engine::fuzz(target, &seeds, &options);
                print_report(&report);
                total += report.total_inputs();
                failed += usize::from(!report.crashes.is_empty());
            }
            println!(
                "tickcast-fuzz: {total} inputs, {failed} target(s) with panics{}",
                if failed > 0 {
                    format!("; inputs saved under {}", crashes.display())
                } else {
                    String::new()
                }
            );
            Ok(if failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Repro { target, files } => {
            let target = find(&target)?;
            let mut failed = false;
            for file in files {
                let input = std::fs::read(&file).with_context(|| file.display().to_string())?;
                let run = std::panic::catch_unwind(|| (target.run)(&input));
                match run {
                    Ok(()) => println!("{}: ok", file.display()),
                    Err(_) => {
                        failed = true;
                        println!("{}: panicked (message above)", file.display());
                    }
                }
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::ExportCorpus { dir, corpus } => {
            for target in &targets::ALL {
                let seeds = corpus::seeds(target, &corpus)?;
                let written = corpus::export(&seeds, &dir.join(target.name))?;
                println!("{}: {written} seeds", target.name);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_report(report: &Report) {
    let count = |origin| report.inputs.get(&origin).copied().unwrap_or(0);
    println!(
        "{:<12} {:>9} inputs in {:.1} s (seeds {}, mutated {}, generated {}, generated+mutated {}, random {}); slowest input {:.1} ms; {} panics",
        report.target,
        report.total_inputs(),
        report.elapsed.as_secs_f64(),
        count(Origin::Seed),
        count(Origin::Mutated),
        count(Origin::Generated),
        count(Origin::GeneratedMutated),
        count(Origin::Random),
        report.slowest.as_secs_f64() * 1e3,
        report.panicking_inputs(),
    );
    for crash in report.crashes.values() {
        let saved = crash
            .saved
            .as_ref()
            .map_or_else(|| "not saved".to_owned(), |p| p.display().to_string());
        println!(
            "  {} input(s) panicked; shortest ({} bytes): {saved}",
            crash.count,
            crash.input.len()
        );
        for line in crash.message.lines().take(6) {
            let line: String = line.chars().take(200).collect();
            println!("    {line}");
        }
    }
}

fn select(names: &[String]) -> Result<Vec<&'static Target>> {
    if names.iter().any(|n| n == "all") {
        return Ok(targets::ALL.iter().collect());
    }
    names.iter().map(|n| find(n)).collect()
}

fn find(name: &str) -> Result<&'static Target> {
    match tickcast_fuzz::target(name) {
        Some(target) => Ok(target),
        None => bail!(
            "no target {name:?}; targets: {}",
            targets::ALL.map(|t| t.name).join(", ")
        ),
    }
}

fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
}

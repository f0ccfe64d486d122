//! `tickcast-load`: the end-to-end load generator's command line. The
//! work is in `tickcast_benches::load`; `--help` lists every flag.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;
use tickcast_benches::load::cli::{Args, Mode};
use tickcast_benches::load::scenario::{Scenario, BUILT_IN};
use tickcast_benches::load::{self, floor};

/// The generator runs beside the server it measures: glibc's malloc was a
/// fifth of its CPU at 100,000 events/s, taken from the server's cores.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list_scenarios {
        for (name, _) in BUILT_IN {
            let description = Scenario::load(name)
                .map(|(_, s)| s.description.trim().to_owned())
                .unwrap_or_else(|e| e.to_string());
            println!("{name:<16} {description}");
        }
        return ExitCode::SUCCESS;
    }
    let mut options = match args.options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("tickcast-load: {e}");
            return ExitCode::from(2);
        }
    };
    if args.show_scenario {
        print!("{}", options.scenario.to_toml());
        return ExitCode::SUCCESS;
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    options.threads = threads;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tickcast-load: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match args.mode {
        Mode::Floor if !args.dry_run => {
            let settings = args.floor_settings();
            runtime
                .block_on(floor::compare(options, &settings))
                .map(|report| finish(&report, report.ok, report.table(), args.json.as_deref()))
        }
        _ => runtime
            .block_on(load::run(options))
            .map(|report| finish(&report, report.ok, report.table(), args.json.as_deref())),
    };
    // Do not wait for connection tasks still closing.
    runtime.shutdown_background();
    outcome.unwrap_or_else(|e| {
        eprintln!("tickcast-load: {e}");
        ExitCode::from(2)
    })
}

/// Prints `table`, writes `report` to `json` if asked, and gives the exit
/// status: 0 when `ok`.
fn finish(report: &impl Serialize, ok: bool, table: String, json: Option<&Path>) -> ExitCode {
    print!("{table}");
    if let Some(path) = json {
        let json = serde_json::to_string_pretty(report).expect("reports serialize");
        if let Err(e) = std::fs::write(path, json + "\n") {
            eprintln!("tickcast-load: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

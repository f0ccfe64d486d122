//! `tickcast-load`: the end-to-end load generator's command line. The
//! work is in `tickcast_benches::load`; `--help` lists every flag.

use std::process::ExitCode;

use clap::Parser;
use tickcast_benches::load::cli::Args;
use tickcast_benches::load::scenario::{Scenario, BUILT_IN};
use tickcast_benches::load::{self};

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
    let report = match runtime.block_on(load::run(options)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("tickcast-load: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).expect("reports serialize");
        if let Err(e) = std::fs::write(path, json + "\n") {
            eprintln!("tickcast-load: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    // Do not wait for connection tasks still closing.
    runtime.shutdown_background();
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

//! `tickcast-floor`: the floor server `tickcast-load floor` starts beside
//! tickcast (see `tickcast_benches::floor`). Listens, prints
//! `listening ADDR`, writes what its standard input says until it ends,
//! prints `done writes=N errors=N skipped=N`.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::ExitCode;

use clap::Parser;
use tickcast_benches::floor::handshake::deepen_backlog;
use tickcast_benches::floor::{plain, tasks, Variant};

/// tickcast-floor: the physical floor of one-event-per-write fan-out.
///
/// Started by `tickcast-load floor`, which sends it, on standard input,
/// the frames to write and their recipients.
#[derive(Debug, Parser)]
#[command(name = "tickcast-floor", version)]
struct Args {
    /// How to write: plain (a loop of blocking writes per core) or
    /// tasks (one tokio writer task per connection).
    #[arg(long, value_enum, default_value = "plain")]
    variant: Variant,

    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,

    /// Writer loops of the plain variant, worker threads of the tasks
    /// variant (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // As many sockets as the hard limit allows, like tickcast-load.
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
    let listener = match TcpListener::bind(&args.listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("tickcast-floor: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(2);
        }
    };
    if let Err(e) = deepen_backlog(&listener) {
        eprintln!("tickcast-floor: cannot raise the listen backlog: {e}");
    }
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("tickcast-floor: {e}");
            return ExitCode::from(2);
        }
    };
    println!("listening {addr}");
    let _ = std::io::stdout().flush();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let served = match args.variant {
        Variant::Plain => plain::serve(listener, std::io::stdin(), threads),
        Variant::Tasks => tasks::serve(listener, std::io::stdin(), threads),
    };
    match served {
        Ok(tally) => {
            println!("{tally}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tickcast-floor: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `tickcast-floor`: the physical floor of one-event-per-write fan-out on
//! this machine, for `tickcast-load floor` to measure beside tickcast.
//!
//! The simplest server that does what tickcast does per delivery: accept N
//! loopback connections after a minimal WebSocket handshake
//! ([`handshake`]), and for each delivery write one server WebSocket frame
//! to one socket with one system call. The generator sends, on standard
//! input, each publish request's frames and their recipients
//! ([`control`]): the same frames tickcast would send for those events
//! (same JSON, same `subs` lists, same sizes) to the same connections; the
//! clients read and check every frame as they do tickcast's.
//!
//! Two ways to write ([`Variant`]):
//!
//! - [`plain`]: blocking sockets, a plain loop of `write`s (one loop per
//!   core, each over its share of the connections): the floor;
//! - [`tasks`]: one tokio writer task per connection, woken once per
//!   delivery: the "plain tokio fan-out" reference.
//!
//! The process prints `listening ADDR` once it listens and, when its input
//! ends, `done writes=N errors=N skipped=N` ([`Tally`]).

pub mod control;
pub mod handshake;
pub mod plain;
pub mod tasks;
pub mod wire;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// How the floor server writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Plain loops of blocking writes, one per core.
    Plain,
    /// One tokio writer task per connection.
    Tasks,
}

impl Variant {
    /// The flag value (`plain`, `tasks`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Tasks => "tasks",
        }
    }
}

/// What the floor server did with the deliveries it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Frames written.
    pub writes: u64,
    /// Writes that failed (the connection is dropped).
    pub errors: u64,
    /// Deliveries to a connection that never came or was dropped.
    pub skipped: u64,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "done writes={} errors={} skipped={}",
            self.writes, self.errors, self.skipped
        )
    }
}

impl FromStr for Tally {
    type Err = String;

    /// Parses the `done ...` line of [`Display`](fmt::Display).
    fn from_str(line: &str) -> Result<Self, String> {
        let rest = line
            .trim()
            .strip_prefix("done ")
            .ok_or_else(|| format!("not a tally: {line:?}"))?;
        let mut tally = Self::default();
        for field in rest.split_whitespace() {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| format!("bad field {field:?}"))?;
            let value: u64 = value
                .parse()
                .map_err(|_| format!("bad number in {field:?}"))?;
            match key {
                "writes" => tally.writes = value,
                "errors" => tally.errors = value,
                "skipped" => tally.skipped = value,
                _ => return Err(format!("unknown field {key:?}")),
            }
        }
        Ok(tally)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_line_round_trips() {
        let tally = Tally {
            writes: 51_000,
            errors: 1,
            skipped: 2,
        };
        let line = tally.to_string();
        assert_eq!(line, "done writes=51000 errors=1 skipped=2");
        assert_eq!(line.parse::<Tally>(), Ok(tally));
        assert!("listening 127.0.0.1:1".parse::<Tally>().is_err());
        assert!("done writes=x".parse::<Tally>().is_err());
    }
}

//! [`FloorLink`]: the floor server as a child process of the generator.
//! Its own process so that its CPU is read from /proc like tickcast's, and
//! so that its sockets count against its own open-file limit (10,000
//! client sockets and 10,000 server sockets would not fit in one process
//! here).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

use crate::floor::{Tally, Variant};

/// How long the child may take to listen, and to finish once its input
/// ends.
const START_TIMEOUT: Duration = Duration::from_secs(10);
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

/// A running floor server.
pub struct FloorLink {
    /// How it writes.
    pub variant: Variant,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its pid.
    pub pid: u32,
    stdin: Mutex<Option<ChildStdin>>,
    rest: Mutex<Option<(Child, Lines<BufReader<ChildStdout>>)>>,
}

impl fmt::Debug for FloorLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FloorLink")
            .field("variant", &self.variant)
            .field("addr", &self.addr)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// `tickcast-floor` next to the running executable (both are binaries of
/// tickcast-benches, built to the same directory).
pub fn default_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("tickcast-floor")))
        .unwrap_or_else(|| PathBuf::from("tickcast-floor"))
}

impl FloorLink {
    /// Starts `bin` as a `variant` floor server (`threads` writer loops
    /// or workers; its default, one per core, when `None`) and waits until
    /// it listens.
    pub async fn spawn(
        bin: &Path,
        variant: Variant,
        threads: Option<usize>,
    ) -> Result<Self, String> {
        let mut command = Command::new(bin);
        command.arg("--variant").arg(variant.name());
        if let Some(threads) = threads {
            command.arg("--threads").arg(threads.to_string());
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {}: {e} (build it with `cargo build --release -p tickcast-benches \
                     --bin tickcast-floor`, or give --floor-bin)",
                    bin.display()
                )
            })?;
        let pid = child.id().ok_or("the floor server exited at once")?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .map_err(|_| "the floor server did not start listening in 10 s".to_owned())?
            .map_err(|e| format!("reading the floor server: {e}"))?
            .ok_or("the floor server exited before listening")?;
        let addr = parse_listening(&first)?;
        Ok(Self {
            variant,
            addr,
            pid,
            stdin: Mutex::new(Some(stdin)),
            rest: Mutex::new(Some((child, lines))),
        })
    }

    /// Sends one control message.
    pub async fn send(&self, message: &[u8]) -> Result<(), String> {
        let mut stdin = self.stdin.lock().await;
        let stdin = stdin.as_mut().ok_or("the floor server's input is closed")?;
        stdin
            .write_all(message)
            .await
            .map_err(|e| format!("floor server: {e}"))
    }

    /// Ends its input and returns what it did.
    pub async fn finish(&self) -> Result<Tally, String> {
        drop(self.stdin.lock().await.take());
        let (mut child, mut lines) = self.rest.lock().await.take().ok_or("already finished")?;
        let tally = tokio::time::timeout(FINISH_TIMEOUT, async {
            while let Some(line) = lines
                .next_line()
                .await
                .map_err(|e| format!("reading the floor server: {e}"))?
            {
                if line.starts_with("done ") {
                    return line.parse::<Tally>();
                }
            }
            Err("the floor server exited without its tally".to_owned())
        })
        .await
        .unwrap_or_else(|_| Err("the floor server did not finish in 60 s".to_owned()));
        if tokio::time::timeout(START_TIMEOUT, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
        tally
    }
}

/// The address of the `listening ADDR` line.
fn parse_listening(line: &str) -> Result<SocketAddr, String> {
    line.strip_prefix("listening ")
        .and_then(|addr| addr.trim().parse().ok())
        .ok_or_else(|| format!("unexpected first line from the floor server: {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address() {
        assert_eq!(
            parse_listening("listening 127.0.0.1:4242"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 4242)))
        );
        assert!(parse_listening("error").is_err());
        assert!(default_bin().ends_with("tickcast-floor"));
    }
}

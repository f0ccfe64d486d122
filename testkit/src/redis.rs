//! [`RedisServer`]: a private redis-server a test may kill and restart.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// A redis-server of one test, on its own port and directory; killed on
/// drop.
pub struct RedisServer {
    port: u16,
    dir: TempDir,
    child: Option<Child>,
    durable: bool,
}

impl RedisServer {
    /// Starts one on a free port; panics (with why) when it cannot. It
    /// keeps no data: a restart starts empty.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts one that keeps its data on disk the way a production one
    /// would (append-only file, fsynced before each reply), so a SIGKILL
    /// loses nothing it answered.
    pub fn start_durable() -> Self {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut server = Self {
            port: super::free_port(),
            dir,
            child: None,
            durable,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL: what a crash looks like).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (killing it first if it runs).
    /// Data survives only for a [`start_durable`](Self::start_durable) one.
    pub fn restart(&mut self) {
        self.kill();
        let child = spawn(self.port, self.dir.path(), self.durable);
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        assert!(
            super::wait_for(&addr, Duration::from_secs(10)),
            "redis-server did not start on {addr}"
        );
    }
}

fn spawn(port: u16, dir: &Path, durable: bool) -> Child {
    let persistence: &[&str] = match durable {
        true => &["--appendonly", "yes", "--appendfsync", "always"],
        false => &["--appendonly", "no"],
    };
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(persistence)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (install it with `scripts/brokers.sh install`)")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

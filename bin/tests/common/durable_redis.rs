//! [`DurableRedis`]: a private redis-server that survives a SIGKILL with
//! everything it answered.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::nodes::START;

/// A redis-server of one test that keeps its data on disk the way a
/// production one would (append-only file, fsynced before each reply), so
/// a SIGKILL loses nothing it answered: what a broker restart must not
/// lose is then up to tickcast. Killed on drop.
pub struct DurableRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl DurableRedis {
    /// Starts one on a free port.
    pub fn start() -> Self {
        let mut redis = Self {
            port: tickcast_testkit::free_port(),
            dir: tempfile::tempdir().expect("temporary directory"),
            child: None,
        };
        redis.restart();
        redis
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: what a crash looks like.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts it on the same port and directory; it loads its
    /// append-only file.
    pub fn restart(&mut self) {
        self.kill();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (install it with `scripts/brokers.sh install`)");
        self.child = Some(child);
        let deadline = Instant::now() + START;
        while Instant::now() < deadline {
            let pong = std::process::Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "ping"])
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"PONG"));
            if pong {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }
}

impl Drop for DurableRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

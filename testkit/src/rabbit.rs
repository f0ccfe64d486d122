//! [`RabbitNode`]: a private RabbitMQ node a test may stop and restart.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

const RABBIT_BIN: &str = "/usr/lib/rabbitmq/bin";

/// A RabbitMQ node of one test: own port, node name, Mnesia directory
/// (durable queues survive a restart); stopped on drop.
pub struct RabbitNode {
    port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl RabbitNode {
    /// Starts one on a free port and waits until it serves (several
    /// seconds); panics with the log's path when it cannot.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut node = Self {
            port: super::free_port(),
            dir,
            child: None,
        };
        node.boot();
        node
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Stops the node (its connections drop; durable data stays), and
    /// waits until its Erlang VM is gone, so that a restart does not meet
    /// the old node still holding its name or port.
    pub fn stop(&mut self) {
        let vm = std::fs::read_to_string(self.path("rabbitmq.pid")).ok();
        let _ = self.ctl(&["stop"]);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pid) = vm.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            let proc = PathBuf::from("/proc").join(pid);
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while proc.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // A stale pid file would make `rabbitmqctl wait` watch a dead VM.
        let _ = std::fs::remove_file(self.path("rabbitmq.pid"));
    }

    /// Stops it and starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.boot();
    }

    fn boot(&mut self) {
        let child = self
            .command("rabbitmq-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rabbitmq-server (install it with `scripts/brokers.sh install`)");
        self.child = Some(child);
        let pid_file = self.path("rabbitmq.pid");
        let pid_file = pid_file.to_string_lossy().into_owned();
        let waited = self.ctl(&["wait", "--timeout", "90", &pid_file]);
        let addr = format!("127.0.0.1:{}", self.port);
        assert!(
            waited && super::wait_for(&addr, Duration::from_secs(30)),
            "rabbitmq-server did not start on {addr}; the end of its logs:\n{}",
            self.log_tail()
        );
    }

    /// The last lines of every log file (the directory is removed with the
    /// node, so a failure must show them).
    fn log_tail(&self) -> String {
        let Ok(entries) = std::fs::read_dir(self.path("log")) else {
            return "(no logs)".to_owned();
        };
        let mut out = String::new();
        for entry in entries.flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            out.push_str(&format!("== {}\n{tail}\n", entry.path().display()));
        }
        out
    }

    fn ctl(&self, args: &[&str]) -> bool {
        self.command("rabbitmqctl")
            .args(["-n", &self.node_name()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn node_name(&self) -> String {
        format!("tickcast-test-{}@localhost", self.port)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A command with the environment that isolates this node.
    fn command(&self, program: &str) -> Command {
        for sub in ["home", "mnesia", "log"] {
            let _ = std::fs::create_dir_all(self.path(sub));
        }
        let _ = std::fs::write(self.path("enabled_plugins"), "");
        let _ = std::fs::write(
            self.path("rabbitmq.conf"),
            format!(
                "loopback_users.guest = true\nlisteners.tcp.default = {}\n",
                self.port
            ),
        );
        let mut command = Command::new(format!("{RABBIT_BIN}/{program}"));
        command
            .env("HOME", self.path("home"))
            .env("RABBITMQ_NODENAME", self.node_name())
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port(self.port).to_string())
            .env("RABBITMQ_MNESIA_BASE", self.path("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.path("log"))
            .env("RABBITMQ_PID_FILE", self.path("rabbitmq.pid"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.path("enabled_plugins"),
            )
            .env("RABBITMQ_CONFIG_FILE", self.path("rabbitmq"));
        command
    }
}

/// The Erlang distribution port: must differ per node on one machine.
fn dist_port(port: u16) -> u16 {
    // Ephemeral ports are above 32768; keep the sum below 65536.
    if port > 45_000 {
        port - 20_000
    } else {
        port + 20_000
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        self.stop();
    }
}

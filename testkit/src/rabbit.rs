//! [`RabbitNode`]: a private RabbitMQ node a test may stop and restart.
//!
//! Everything the node writes stays in its temporary directory, including
//! the crash dump its Erlang VM writes when it dies: by default that lands
//! in the VM's working directory, which for a test is the crate's source
//! directory, and from there into commits.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const RABBIT_BIN: &str = "/usr/lib/rabbitmq/bin";

/// File name of the Erlang VM's crash dump, in the node's directory.
const CRASH_DUMP: &str = "erl_crash.dump";

/// A RabbitMQ node of one test: own AMQP port, Erlang distribution port,
/// node name and Mnesia directory (durable queues survive a restart);
/// stopped on drop.
pub struct RabbitNode {
    port: u16,
    /// Picked afresh at every boot: clients never need it (tools find the
    /// node through epmd), and a port free at the first boot may be taken
    /// by the time of a restart.
    dist_port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl RabbitNode {
    /// Starts one on a free port and waits until it serves (several
    /// seconds); panics with the end of its logs when it cannot.
    pub fn start() -> Self {
        let mut node = Self::new();
        node.boot();
        node
    }

    /// A node not started yet, with its directory and AMQP port.
    fn new() -> Self {
        Self {
            port: super::free_port(),
            dist_port: 0,
            dir: tempfile::tempdir().expect("temporary directory"),
            child: None,
        }
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
            let deadline = Instant::now() + Duration::from_secs(30);
            while proc.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // A stale pid file would make `rabbitmqctl wait` watch a dead VM.
        let _ = std::fs::remove_file(self.path("rabbitmq.pid"));
    }

    /// Stops it and starts it again on the same AMQP port.
    pub fn restart(&mut self) {
        self.stop();
        self.boot();
    }

    /// SIGKILLs the node's Erlang VM (no clean shutdown: what a crash or
    /// an OOM kill does) and starts it again on the same AMQP port; durable
    /// queues keep what was on disk.
    pub fn crash_and_restart(&mut self) {
        let vm = std::fs::read_to_string(self.path("rabbitmq.pid")).ok();
        let vm = vm.as_deref().map(str::trim).filter(|p| !p.is_empty());
        if let Some(pid) = vm {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        // Reaped here if the VM is the child itself (else it would linger
        // as a zombie in /proc).
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pid) = vm {
            let proc = PathBuf::from("/proc").join(pid);
            let deadline = Instant::now() + Duration::from_secs(30);
            while proc.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_file(self.path("rabbitmq.pid"));
        self.boot();
    }

    fn boot(&mut self) {
        let dist_port = free_port_other_than(self.port);
        if let Err(why) = self.boot_on(dist_port) {
            panic!("{why}");
        }
    }

    /// Starts the node with distribution port `dist_port` and waits until
    /// it serves; on failure, says why with the end of its logs.
    fn boot_on(&mut self, dist_port: u16) -> Result<(), String> {
        self.dist_port = dist_port;
        let mut server = self
            .command("rabbitmq-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rabbitmq-server (install it with `scripts/brokers.sh install`)");
        let pid_file = self.path("rabbitmq.pid").to_string_lossy().into_owned();
        let mut wait = self
            .ctl_command(&["wait", "--timeout", "90", &pid_file])
            .spawn()
            .expect("rabbitmqctl");
        // `rabbitmqctl wait` alone would wait its whole timeout for a VM
        // that died at boot, so watch the server too.
        let waited = loop {
            if let Ok(Some(status)) = server.try_wait() {
                let _ = wait.kill();
                let _ = wait.wait();
                break Err(format!("rabbitmq-server exited ({status})"));
            }
            match wait.try_wait() {
                Ok(Some(status)) if status.success() => break Ok(()),
                Ok(Some(status)) => break Err(format!("rabbitmqctl wait failed ({status})")),
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => break Err(format!("rabbitmqctl wait: {e}")),
            }
        };
        self.child = Some(server);
        let addr = format!("127.0.0.1:{}", self.port);
        let served = waited.and_then(|()| {
            if super::wait_for(&addr, Duration::from_secs(30)) {
                Ok(())
            } else {
                Err("its AMQP port does not accept connections".to_owned())
            }
        });
        served.map_err(|why| {
            format!(
                "rabbitmq-server did not start on {addr} (distribution port {dist_port}): \
                 {why}{}; the end of its logs:\n{}",
                self.crash_slogan()
                    .map(|s| format!("; crash dump: {s}"))
                    .unwrap_or_default(),
                self.log_tail()
            )
        })
    }

    /// The `Slogan:` line of the node's crash dump (why the VM died), if
    /// it wrote one.
    fn crash_slogan(&self) -> Option<String> {
        let dump = std::fs::read(self.path(CRASH_DUMP)).ok()?;
        // The slogan is on the first lines; the rest is heap and tables.
        let head = String::from_utf8_lossy(&dump[..dump.len().min(64 * 1024)]).into_owned();
        head.lines()
            .find_map(|line| line.strip_prefix("Slogan: "))
            .map(str::to_owned)
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
        self.ctl_command(args).status().is_ok_and(|s| s.success())
    }

    fn ctl_command(&self, args: &[&str]) -> Command {
        let mut command = self.command("rabbitmqctl");
        command
            .args(["-n", &self.node_name()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    fn node_name(&self) -> String {
        format!("tickcast-test-{}@localhost", self.port)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A command with the environment that isolates this node (the CLI
    /// tools are Erlang VMs too, so they get the same crash dump path).
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
            .current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("ERL_CRASH_DUMP", self.path(CRASH_DUMP))
            .env("RABBITMQ_NODENAME", self.node_name())
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
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

/// A loopback port nobody listens on right now, other than `taken`.
///
/// The OS picks it, as for the AMQP port: a port derived from another one
/// (the AMQP port + 20000, RabbitMQ's default) can be any other process's
/// ephemeral port, or another test node's AMQP port.
fn free_port_other_than(taken: u16) -> u16 {
    // While `taken` is bound by nobody (between a stop and a boot) the OS
    // may offer it; holding each offer keeps it from offering it twice.
    let mut held = Vec::new();
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local address").port();
        if port != taken {
            return port;
        }
        held.push(listener);
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_distribution_port_is_free_and_not_the_amqp_port() {
        let amqp = super::super::free_port();
        for _ in 0..100 {
            let dist = free_port_other_than(amqp);
            assert_ne!(dist, amqp);
            TcpListener::bind(("127.0.0.1", dist)).unwrap();
        }
    }

    /// A VM that dies at boot (here: its distribution port is taken)
    /// writes its crash dump into the node's directory, not into the
    /// working directory (this crate's sources), and the failure says why.
    #[test]
    fn a_node_that_dies_at_boot_dumps_into_its_own_directory() {
        if crate::amqp_url().is_none() {
            return; // no RabbitMQ installed and running here
        }
        let cwd_dump = std::env::current_dir().unwrap().join(CRASH_DUMP);
        let modified = || std::fs::metadata(&cwd_dump).and_then(|m| m.modified()).ok();
        let before = modified();

        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut node = RabbitNode::new();
        let why = node
            .boot_on(taken.local_addr().unwrap().port())
            .unwrap_err();
        node.stop();

        assert!(why.contains("dist_port_already_used"), "{why}");
        assert!(node.path(CRASH_DUMP).is_file(), "{why}");
        assert_eq!(
            modified(),
            before,
            "a crash dump was written to {}",
            cwd_dump.display()
        );
    }
}

//! The `tickcast` binary's command line: `check-config`, `--help`, and the
//! layering of file, environment and flags as the real process sees them.

use std::path::PathBuf;
use std::process::{Command, Output};

fn tickcast() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tickcast"));
    // Only what each test sets: no TICKCAST_* from the caller's environment.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TICKCAST_") {
            command.env_remove(name);
        }
    }
    command
}

fn run(command: &mut Command) -> (Output, String, String) {
    let output = command.output().expect("run tickcast");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

/// A scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tickcast-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn check_config_prints_the_effective_config() {
    let dir = scratch("effective");
    let file = dir.join("tickcast.toml");
    std::fs::write(
        &file,
        r#"
listen = "127.0.0.1:1000"
node_id = "node-a"
[delivery]
batch_window_ms = 5
max_batch = 11
[api]
key = "super-secret"
[[routing.rules]]
event_types = ["system_health"]
strategy = "broadcast_all"
"#,
    )
    .unwrap();
    let (output, stdout, stderr) = run(tickcast()
        .args(["check-config", "--config"])
        .arg(&file)
        .args(["--listen", "127.0.0.1:3000"])
        .env("TICKCAST_LISTEN", "127.0.0.1:2000")
        .env("TICKCAST_DELIVERY__BATCH_WINDOW_MS", "0"));
    assert!(output.status.success(), "{stderr}");
    let printed: toml::Value = toml::from_str(&stdout).expect("prints TOML");
    assert_eq!(
        printed["listen"].as_str(),
        Some("127.0.0.1:3000"),
        "flag wins"
    );
    assert_eq!(printed["node_id"].as_str(), Some("node-a"));
    assert_eq!(
        printed["delivery"]["batch_window_ms"].as_integer(),
        Some(0),
        "env beats file"
    );
    assert_eq!(printed["delivery"]["max_batch"].as_integer(), Some(11));
    assert_eq!(
        printed["delivery"]["queue_capacity"].as_integer(),
        Some(4096),
        "defaults filled in"
    );
    assert_eq!(
        printed["limits"]["max_publish_bytes"].as_integer(),
        Some(1_048_576)
    );
    assert_eq!(
        printed["routing"]["rules"][0]["strategy"].as_str(),
        Some("broadcast_all")
    );
    assert_eq!(printed["api"]["key"].as_str(), Some("<redacted>"));
    assert!(!stdout.contains("super-secret"));

    let (output, stdout, _) = run(tickcast()
        .args(["--config"])
        .arg(&file)
        .args(["check-config", "--show-secrets"]));
    assert!(output.status.success());
    assert!(stdout.contains("super-secret"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_config_fails_naming_the_key() {
    let dir = scratch("invalid");
    let file = dir.join("tickcast.toml");
    std::fs::write(&file, "[delivery]\nmax_batch = 0\nbogus = 1\n").unwrap();
    let (output, stdout, stderr) = run(tickcast().arg("check-config").arg("-c").arg(&file));
    assert!(!output.status.success());
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("`delivery.bogus`"), "{stderr}");

    std::fs::write(&file, "[delivery]\nmax_batch = 0\n").unwrap();
    let (output, _, stderr) = run(tickcast().arg("check-config").arg("-c").arg(&file));
    assert!(!output.status.success());
    assert!(stderr.contains("`delivery.max_batch`"), "{stderr}");

    let (output, _, stderr) = run(tickcast().args(["check-config", "--listen", "nowhere"]));
    assert!(!output.status.success());
    assert!(stderr.contains("`listen`"), "{stderr}");

    let (output, _, stderr) =
        run(tickcast().args(["check-config", "-c", "/no/such/tickcast.toml"]));
    assert!(!output.status.success());
    assert!(stderr.contains("/no/such/tickcast.toml"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A `TICKCAST_*` variable that is no key (deployment tools set their own)
/// is a warning naming it and the closest key, not a refusal to start.
#[test]
fn check_config_warns_about_unknown_variables() {
    let (output, stdout, stderr) = run(tickcast()
        .arg("check-config")
        .env("TICKCAST_BIN", "/usr/local/bin/tickcast")
        .env("TICKCAST_LIMITS__MAX_PUBLISH_BYTE", "5"));
    assert!(output.status.success(), "{stderr}");
    let printed: toml::Value = toml::from_str(&stdout).expect("prints TOML");
    assert_eq!(
        printed["limits"]["max_publish_bytes"].as_integer(),
        Some(1_048_576),
        "the misspelt variable sets nothing"
    );
    let warning = stderr
        .lines()
        .find(|line| line.contains("TICKCAST_LIMITS__MAX_PUBLISH_BYTE "))
        .unwrap_or_else(|| panic!("no warning in {stderr}"));
    assert!(warning.contains("warning"), "{warning}");
    assert!(warning.contains("`limits.max_publish_bytes`"), "{warning}");
    assert!(stderr.contains("TICKCAST_BIN "), "{stderr}");
}

#[test]
fn help_documents_every_flag() {
    let (output, stdout, _) = run(tickcast().arg("--help"));
    assert!(output.status.success());
    for flag in [
        "--config",
        "--listen",
        "--node-id",
        "--log-format",
        "check-config",
        "TICKCAST_",
        "RUST_LOG",
    ] {
        assert!(stdout.contains(flag), "{flag} missing from:\n{stdout}");
    }
    let (output, stdout, _) = run(tickcast().args(["check-config", "--help"]));
    assert!(output.status.success());
    assert!(stdout.contains("--show-secrets"), "{stdout}");
}

/// Kills the child process if a test fails before it stopped it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn the_server_process_stops_on_sigterm() {
    let mut child = KillOnDrop(
        tickcast()
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .env("RUST_LOG", "info")
            // Not a key: logged as a warning, and the server starts.
            .env("TICKCAST_BIN", "/usr/local/bin/tickcast")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start tickcast"),
    );
    let child = &mut child.0;
    // Wait for the listening line, then ask it to stop.
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let mut before = Vec::new();
    let listening = loop {
        let line = lines
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("no listening log line after {before:?}"));
        if line.contains("listening") {
            break line;
        }
        before.push(line);
    };
    let warning = before
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|log| log["variable"] == "TICKCAST_BIN")
        .unwrap_or_else(|| panic!("no warning about TICKCAST_BIN in {before:?}"));
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert!(
        warning["closest_key"]
            .as_str()
            .is_some_and(|k| !k.is_empty()),
        "{warning}"
    );
    let log: serde_json::Value = serde_json::from_str(&listening).expect("JSON log line");
    assert!(
        log["addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{log}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tickcast did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("shutdown complete")),
        "{rest:?}"
    );
}

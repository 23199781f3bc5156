//! The real `wabridge` binary as a child process, for the tests that need a process of its own
//! (killed, restarted, several at once, or read through its log): one way to start it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::helpers::*;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the real binary on the test database `db` (see [`database_url`]) and waits until it is
/// ready. Leases last 3 s, so that work of a killed process is taken over quickly.
pub async fn start_bridge(db: &Path, port: u16) -> Child {
    start_bridge_with(db, port, &[]).await
}

/// [`start_bridge`] with more environment variables.
pub async fn start_bridge_with(db: &Path, port: u16, env: &[(&str, &str)]) -> Child {
    spawn_ready(bridge_command(db, port, env).stderr(Stdio::inherit()), port).await
}

/// [`start_bridge_with`], logging JSON into the file `log` (`RUST_LOG` from `env`, else `warn`).
pub async fn start_bridge_logging_to(
    db: &Path,
    port: u16,
    env: &[(&str, &str)],
    log: &Path,
) -> Child {
    let mut command = bridge_command(db, port, env);
    command
        .args(["--log-format", "json"])
        .stderr(std::fs::File::create(log).unwrap());
    spawn_ready(&mut command, port).await
}

/// `wabridge serve` with the suite's keys, local targets allowed, a short retry schedule and a
/// short lease; `env` comes last, so it overrides any of them.
fn bridge_command(db: &Path, port: u16, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wabridge"));
    command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &database_url(db),
        ])
        .env("WABRIDGE_LEASE", "3s")
        .env("WABRIDGE_API_KEY", ADMIN_KEY)
        .env("WABRIDGE_INGEST_KEY", INGEST_KEY)
        .env("WABRIDGE_ALLOW_TARGETS", "127.0.0.1/32")
        .env(
            "WABRIDGE_RETRY_SCHEDULE",
            "0,100ms,200ms,300ms,500ms,1s,1s,1s,1s,1s",
        )
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Spawns `command` and waits until `/readyz` on `port` answers 200.
async fn spawn_ready(command: &mut Command, port: u16) -> Child {
    let child = command.spawn().expect("the wabridge binary starts");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            && r.status() == 200
        {
            return child;
        }
        assert!(Instant::now() < deadline, "wabridge did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! Sampling profiles of the bridge process with `perf record -e cpu-clock` (a software clock, so
//! it works where hardware counters are not exposed), attached to the child by pid.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A profile, flat: the share of samples per symbol, per area and per thread.
#[derive(Debug, Default, Clone)]
pub struct Profile {
    pub symbols: Vec<(f64, String)>,
    pub areas: Vec<(String, f64)>,
    pub threads: Vec<(f64, String)>,
    /// fsync + fdatasync calls, and the milliseconds spent in them (perf trace).
    pub fsyncs: Option<(u64, f64)>,
}

pub struct Recording {
    child: Child,
    trace: Option<Child>,
    file: PathBuf,
    trace_file: PathBuf,
}

/// Does `perf record -e cpu-clock` work here?
pub fn available() -> bool {
    let out = std::env::temp_dir().join("wabridge-bench-perf-check.data");
    let ok = std::process::Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock", "-o"])
        .arg(&out)
        .args(["--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let _ = std::fs::remove_file(out);
    ok
}

pub async fn start(pid: u32, file: &Path) -> Option<Recording> {
    let child = Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock", "-F", "999", "-p"])
        .arg(pid.to_string())
        .arg("-o")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    // Counts and times fsync calls: the cost of durable commits.
    let trace_file = file.with_extension("fsync.txt");
    let trace = Command::new("perf")
        .args(["trace", "-s", "-e", "fsync,fdatasync", "-p"])
        .arg(pid.to_string())
        .arg("-o")
        .arg(&trace_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok();
    // perf needs a moment to attach to every thread.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Some(Recording {
        child,
        trace,
        file: file.to_owned(),
        trace_file,
    })
}

async fn interrupt(child: &mut Child) -> bool {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
    }
    if tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        return false;
    }
    true
}

/// Sums the `fsync`/`fdatasync` rows of every thread in a `perf trace -s` summary.
fn fsync_summary(path: &Path) -> Option<(u64, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut calls = 0u64;
    let mut msec = 0.0f64;
    let mut seen = false;
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 4 && (f[0] == "fsync" || f[0] == "fdatasync") {
            calls += f[1].parse::<u64>().ok()?;
            msec += f[3].parse::<f64>().ok()?;
            seen = true;
        }
    }
    seen.then_some((calls, msec)).or(Some((0, 0.0)))
}

/// A recording that has stopped, not yet read (reading it costs CPU).
pub struct Recorded {
    file: PathBuf,
    fsyncs: Option<(u64, f64)>,
}

impl Recording {
    /// Stops the recording (SIGINT, as perf expects) and reads the report.
    pub async fn finish(self) -> Option<Profile> {
        self.stop().await?.read()
    }

    /// Stops the recording; `Recorded::read` reads it later.
    pub async fn stop(mut self) -> Option<Recorded> {
        let fsyncs = match self.trace.as_mut() {
            Some(t) => {
                if interrupt(t).await {
                    fsync_summary(&self.trace_file)
                } else {
                    None
                }
            }
            None => None,
        };
        if !interrupt(&mut self.child).await {
            return None;
        }
        Some(Recorded {
            file: self.file,
            fsyncs,
        })
    }
}

impl Recorded {
    pub fn read(self) -> Option<Profile> {
        let fsyncs = self.fsyncs;
        let symbols = report(&self.file, "sym");
        let threads = group_threads(report(&self.file, "pid"));
        let mut areas: Vec<(String, f64)> = Vec::new();
        for (share, sym) in report_all(&self.file) {
            let area = area_of(&sym);
            match areas.iter_mut().find(|(a, _)| a == area) {
                Some((_, s)) => *s += share,
                None => areas.push((area.to_owned(), share)),
            }
        }
        areas.sort_by(|a, b| b.1.total_cmp(&a.1));
        Some(Profile {
            fsyncs,
            symbols: symbols.into_iter().take(20).collect(),
            areas,
            threads,
        })
    }
}

/// `tid:name` rows grouped as in the /proc breakdown: tokio workers, the SQLite writer (the
/// lowest-numbered connection thread: the write pool opens first), SQLite readers.
fn group_threads(rows: Vec<(f64, String)>) -> Vec<(f64, String)> {
    let parse = |r: &str| -> (u32, String) {
        let r = r.trim();
        match r.split_once(':') {
            Some((tid, name)) => (tid.trim().parse().unwrap_or(0), name.trim().to_owned()),
            None => (0, r.to_owned()),
        }
    };
    let writer = rows
        .iter()
        .map(|(_, r)| parse(r))
        .filter(|(_, n)| n.starts_with("sqlx-sqlite"))
        .map(|(t, _)| t)
        .min();
    let mut out: Vec<(f64, String)> = Vec::new();
    for (share, row) in &rows {
        let (tid, name) = parse(row);
        let group = if name.starts_with("tokio-r") {
            "tokio workers".to_owned()
        } else if name == "sqlite-writer" {
            "writer task".to_owned()
        } else if name.starts_with("sqlx-sqlite") {
            if Some(tid) == writer {
                "SQLite writer".to_owned()
            } else {
                "SQLite readers".to_owned()
            }
        } else {
            name
        };
        match out.iter_mut().find(|(_, g)| *g == group) {
            Some((s, _)) => *s += share,
            None => out.push((*share, group)),
        }
    }
    out.sort_by(|a, b| b.0.total_cmp(&a.0));
    out
}

fn perf_report(file: &Path, sort: &str, limit: &str) -> String {
    let out = std::process::Command::new("perf")
        .args(["report", "--stdio", "--no-children", "-g", "none"])
        .args(["--percent-limit", limit, "--sort", sort, "-i"])
        .arg(file)
        .stderr(Stdio::null())
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// `(share %, name)` rows of `perf report --sort <sort>`.
fn report(file: &Path, sort: &str) -> Vec<(f64, String)> {
    parse(&perf_report(file, sort, "0.5"))
}

/// Every symbol (for the per-area sums).
fn report_all(file: &Path) -> Vec<(f64, String)> {
    parse(&perf_report(file, "dso,sym", "0"))
}

fn parse(text: &str) -> Vec<(f64, String)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let l = l.trim();
            let (pct, rest) = l.split_once('%')?;
            let share: f64 = pct.trim().parse().ok()?;
            Some((share, rest.trim().to_owned()))
        })
        .collect()
}

/// A coarse area for a `dso [x] symbol` row. SQLite is compiled into the binary (bundled), so
/// C symbols of the wabridge binary without a Rust path are SQLite's (or ring's assembly).
fn area_of(row: &str) -> &'static str {
    let r = row;
    let sym = r.split_once("] ").map_or(r, |(_, s)| s);
    let rust = sym.contains("::");
    if r.contains("[k]") {
        "kernel (syscalls: network, fsync, futex, scheduling)"
    } else if r.contains("sqlite3") || r.contains("sqlx") {
        "SQLite + sqlx (store)"
    } else if !rust
        && (sym.contains("ring_core")
            || sym.contains("block_data_order")
            || sym.contains("sha256")
            || sym.contains("aes_"))
    {
        "hashing, signing, ids"
    } else if !rust && r.trim_start().starts_with("wabridge") {
        "SQLite + sqlx (store)"
    } else if r.contains("malloc")
        || r.contains("free")
        || r.contains("realloc")
        || r.contains("memcpy")
        || r.contains("memmove")
        || r.contains("memset")
        || r.contains("memcmp")
        || r.contains("unlink_chunk")
    {
        "allocator + mem* (libc)"
    } else if r.contains("serde_json") || r.contains("serde::") {
        "JSON (serde_json)"
    } else if r.contains("jsonschema") || r.contains("regex") || r.contains("referencing") {
        "JSON Schema validation"
    } else if r.contains("sha2")
        || r.contains("hmac")
        || r.contains("base64")
        || r.contains("ring::")
        || r.contains("uuid")
    {
        "hashing, signing, ids"
    } else if r.contains("hyper")
        || r.contains("reqwest")
        || r.contains("axum")
        || r.contains("tower")
        || r.contains("http::")
        || r.contains("h2::")
    {
        "HTTP (hyper, reqwest, axum)"
    } else if r.contains("tokio") || r.contains("mio") || r.contains("pthread") {
        "tokio runtime, threads"
    } else if r.contains("tracing") || r.contains("metrics") {
        "tracing + metrics"
    } else if r.contains("wabridge") {
        "wabridge's own code"
    } else {
        "other"
    }
}

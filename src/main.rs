//! `wabridge`: thin entry point. Parses the command line, sets up logging, runs.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wabridge::app::{Application, shutdown_signal};
use wabridge::cli::{Cli, Command, SchemasCommand, SecretsCommand};
use wabridge::config::LogFormat;
use wabridge::store::KeyRole;

fn init_tracing(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            init_tracing(args.log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("wabridge: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("wabridge: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Validate { file, sources } => {
            match wabridge::cli::validate_file(&file, &sources.sources) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("wabridge validate: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Schemas {
            command:
                SchemasCommand::Export {
                    dir,
                    public_url,
                    sources,
                },
        } => match wabridge::cli::export_schemas(&dir, public_url.as_deref(), &sources.sources) {
            Ok(n) => {
                println!("wrote {n} schema files to {}", dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("wabridge schemas export: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Secrets {
            command: SecretsCommand::NewKey,
        } => match wabridge::secret::at_rest::AtRestKey::generate() {
            Ok(key) => {
                println!("{key}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("wabridge secrets new-key: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Secrets {
            command: SecretsCommand::Rotate { database, keys },
        } => match rotate(&database.database_url, &keys) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wabridge secrets rotate: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn rotate(database_url: &str, keys: &wabridge::cli::SecretKeyArgs) -> anyhow::Result<()> {
    init_tracing(LogFormat::Human);
    let at_rest = keys.at_rest()?;
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let report = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(wabridge::cli::rotate_secrets(database_url, at_rest.clone()))?;
    let written = match at_rest.current_key_id() {
        Some(id) => format!("encrypted under key id {id}"),
        None => "in plaintext (no WABRIDGE_SECRET_KEY)".to_owned(),
    };
    println!(
        "{} of {} registrations rewritten; all are now stored {written}",
        report.rewritten, report.registrations
    );
    Ok(())
}

async fn serve(args: wabridge::cli::ServeArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    // The database and its WAL hold webhook secrets and header values: nothing this process
    // creates is readable by other users (files 0600, directories 0700).
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let app = Application::build(config).await?;
    if !app.generated_keys().is_empty() {
        // Shown once on the terminal, never logged: only their hashes are stored.
        println!(
            "wabridge generated keys on first start. They are shown only now; only their hashes are stored:"
        );
        for k in app.generated_keys() {
            let what = match k.role {
                KeyRole::Admin => "admin  (X-API-Key for /v1/webhooks)",
                KeyRole::Ingest => "ingest (X-API-Key for /v1/ingest)  ",
            };
            println!("  {what}: {}", k.key);
        }
        println!("Set WABRIDGE_API_KEY / WABRIDGE_INGEST_KEY to choose your own.");
    }
    app.run_until(shutdown_signal()).await
}

/// jemalloc, not glibc's malloc: in the benchmark's profiles glibc's `malloc` and `free` had
/// 16–19% of the bridge's CPU samples, much of it merging and splitting free chunks
/// (`malloc_consolidate`, `unlink_chunk`). With jemalloc the CPU per delivery fell 8–15% and the
/// peak RSS stayed within a few MiB (docs/benchmarks.md, Analysis, step 31). SQLite's own
/// allocations still use the C library's `malloc`.
#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

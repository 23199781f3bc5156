//! The command line: `serve`, `validate` and `schemas export`. Flags have matching environment
//! variables (`WABRIDGE_*`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::catalog::{Catalog, parse_specs, served_files};
use crate::config::{Config, LogFormat, parse_duration, split_list};
use crate::defaults;
use crate::delivery::net_policy::NetPolicy;
use crate::delivery::retry::RetrySchedule;
use crate::registration::parse_registration;
use crate::secret::at_rest::{AtRest, AtRestKey};
use crate::store::ResealReport;

#[derive(Parser)]
#[command(
    name = "wabridge",
    version,
    about = "A stable trigger contract between WhatsApp gateway engines and automation tools"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the bridge: API, ingest and delivery engine.
    Serve(Box<ServeArgs>),
    /// Check a registration body (a JSON file, or - for stdin) against the contract, offline.
    Validate {
        /// Path of the JSON file, or - for standard input.
        file: PathBuf,
        #[command(flatten)]
        sources: SourcesArg,
    },
    /// Work with the published JSON Schemas.
    Schemas {
        #[command(subcommand)]
        command: SchemasCommand,
    },
    /// Secrets at rest: make a key, or rewrite the stored secrets under the current key.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Print a new random key for WABRIDGE_SECRET_KEY (32 bytes, base64).
    NewKey,
    /// Rewrite every registration's secret and header values under WABRIDGE_SECRET_KEY, reading
    /// them with it or with a WABRIDGE_SECRET_KEY_PREVIOUS; without WABRIDGE_SECRET_KEY, store
    /// them in plaintext again. Safe while bridges run, if they have both keys (see
    /// docs/reliability.md).
    Rotate {
        #[command(flatten)]
        database: DatabaseArg,
        #[command(flatten)]
        keys: SecretKeyArgs,
    },
}

/// The database, shared by `serve` and `secrets rotate`.
#[derive(clap::Args)]
pub struct DatabaseArg {
    /// Database URL: sqlite://<file> (created if missing) or postgres://user:password@host/db
    /// (several instances may share one PostgreSQL database; see docs/deployment.md).
    #[arg(long, env = "WABRIDGE_DATABASE_URL", default_value = defaults::DATABASE_URL)]
    pub database_url: String,
}

/// The engines feeding the bridge, shared by `serve`, `validate` and `schemas export`.
#[derive(clap::Args)]
pub struct SourcesArg {
    /// The engines that feed this bridge, comma-separated: `engine` (its current line) or
    /// `engine@version` (e.g. openwa, openwa@0.4.3). Events none of them emits are reserved
    /// here: registrations for them are refused with an explanation.
    #[arg(long, env = "WABRIDGE_SOURCES", default_value = crate::catalog::DEFAULT_SOURCES)]
    pub sources: String,
}

/// The keys of secrets at rest, shared by `serve` and `secrets rotate`.
#[derive(clap::Args)]
pub struct SecretKeyArgs {
    /// Key that encrypts webhook secrets and custom header values in the database: 32 random
    /// bytes in base64 (`wabridge secrets new-key`). Without it they are stored in plaintext.
    #[arg(
        long,
        env = "WABRIDGE_SECRET_KEY",
        hide_env_values = true,
        value_name = "BASE64"
    )]
    pub secret_key: Option<String>,
    /// Earlier keys, comma-separated: still read, never written, while `wabridge secrets rotate`
    /// rewrites what they encrypted.
    #[arg(
        long,
        env = "WABRIDGE_SECRET_KEY_PREVIOUS",
        hide_env_values = true,
        value_name = "BASE64,..."
    )]
    pub secret_key_previous: Option<String>,
}

impl SecretKeyArgs {
    /// The parsed keys. A key that is set but not 32 bytes of base64 is an error (never a
    /// silent fallback to plaintext); the message never shows a key.
    pub fn at_rest(&self) -> anyhow::Result<AtRest> {
        let current = self
            .secret_key
            .as_deref()
            .map(AtRestKey::parse)
            .transpose()
            .context("WABRIDGE_SECRET_KEY / --secret-key")?;
        let previous = self
            .secret_key_previous
            .as_deref()
            .map(split_list)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, k)| {
                AtRestKey::parse(k).with_context(|| {
                    format!(
                        "WABRIDGE_SECRET_KEY_PREVIOUS / --secret-key-previous (key {} of the list)",
                        i + 1
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(AtRest::new(current, previous))
    }
}

/// `wabridge secrets rotate`: every registration's secrets rewritten as `at_rest` writes them.
pub async fn rotate_secrets(database_url: &str, at_rest: AtRest) -> anyhow::Result<ResealReport> {
    if let Some(file) = crate::store::missing_sqlite_file(database_url) {
        anyhow::bail!("there is no database at {}", file.display());
    }
    let store = crate::store::connect_with(database_url, at_rest)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                crate::store::redact_url(database_url)
            )
        })?;
    Ok(store.reseal_secrets(true).await?)
}

#[derive(Subcommand)]
pub enum SchemasCommand {
    /// Write every served schema file into DIR.
    Export {
        dir: PathBuf,
        /// Base URL for the `$id`s (default: the default listen address).
        #[arg(long, env = "WABRIDGE_PUBLIC_URL")]
        public_url: Option<String>,
        #[command(flatten)]
        sources: SourcesArg,
    },
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "WABRIDGE_LISTEN", default_value = defaults::LISTEN)]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArg,
    /// Public base URL of this bridge (used in schema $ids); default http://<listen>.
    #[arg(long, env = "WABRIDGE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Admin API keys, comma-separated. Without any, one is generated on first start.
    #[arg(
        long,
        env = "WABRIDGE_API_KEY",
        hide_env_values = true,
        value_name = "KEYS"
    )]
    pub api_key: Option<String>,
    /// Ingest keys for engines, comma-separated. Without any, one is generated on first start.
    #[arg(
        long,
        env = "WABRIDGE_INGEST_KEY",
        hide_env_values = true,
        value_name = "KEYS"
    )]
    pub ingest_key: Option<String>,
    /// Let admin keys ingest too.
    #[arg(long, env = "WABRIDGE_ADMIN_CAN_INGEST", default_value_t = false)]
    pub admin_can_ingest: bool,
    /// Secret OpenWA signs its deliveries to /v1/ingest/openwa with.
    #[arg(long, env = "WABRIDGE_OPENWA_SECRET", hide_env_values = true)]
    pub openwa_secret: Option<String>,
    /// Key Evolution API signs its webhook JWTs with (the `jwt_key` webhook header); required
    /// on /v1/ingest/evolution when set, else the ingest key is.
    #[arg(long, env = "WABRIDGE_EVOLUTION_JWT_KEY", hide_env_values = true)]
    pub evolution_jwt_key: Option<String>,
    /// Key WAHA signs its webhooks with (`hmac.key` / WHATSAPP_HOOK_HMAC_KEY); with it,
    /// /v1/ingest/waha requires a valid X-Webhook-Hmac, without it the ingest key.
    #[arg(long, env = "WABRIDGE_WAHA_HMAC_KEY", hide_env_values = true)]
    pub waha_hmac_key: Option<String>,
    /// WAHA's base URL (e.g. http://waha:3000), to fetch QR codes on SCAN_QR_CODE.
    #[arg(long, env = "WABRIDGE_WAHA_URL")]
    pub waha_url: Option<String>,
    /// WAHA's API key (sent as X-Api-Key when fetching QR codes).
    #[arg(long, env = "WABRIDGE_WAHA_API_KEY", hide_env_values = true)]
    pub waha_api_key: Option<String>,
    #[command(flatten)]
    pub sources: SourcesArg,
    /// Private delivery targets to allow: CIDRs and host names, comma-separated
    /// (e.g. 127.0.0.1/32,10.0.0.0/8,n8n.internal).
    #[arg(long, env = "WABRIDGE_ALLOW_TARGETS", default_value = defaults::ALLOW_TARGETS)]
    pub allow_targets: String,
    /// Delay before each attempt, comma-separated (ms, s, m, h).
    #[arg(long, env = "WABRIDGE_RETRY_SCHEDULE", default_value = defaults::RETRY_SCHEDULE)]
    pub retry_schedule: String,
    /// Timeout of one delivery attempt.
    #[arg(long, env = "WABRIDGE_ATTEMPT_TIMEOUT", default_value = defaults::ATTEMPT_TIMEOUT, value_parser = parse_duration)]
    pub attempt_timeout: Duration,
    /// Deliveries in flight at once, in total.
    #[arg(long, env = "WABRIDGE_MAX_IN_FLIGHT", default_value_t = defaults::MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Deliveries in flight at once to one registration.
    #[arg(long, env = "WABRIDGE_PER_WEBHOOK_IN_FLIGHT", default_value_t = defaults::PER_WEBHOOK_IN_FLIGHT)]
    pub per_webhook_in_flight: usize,
    /// How long shutdown waits for in-flight deliveries.
    #[arg(long, env = "WABRIDGE_SHUTDOWN_GRACE", default_value = defaults::SHUTDOWN_GRACE, value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// How long a client may take to send a request head; also how long an idle keep-alive
    /// connection is kept.
    #[arg(long, env = "WABRIDGE_HEADER_TIMEOUT", default_value = defaults::HEADER_TIMEOUT, value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// How long a client may take to send a request body.
    #[arg(long, env = "WABRIDGE_BODY_TIMEOUT", default_value = defaults::BODY_TIMEOUT, value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Connections served at once; further ones wait in the accept queue.
    #[arg(long, env = "WABRIDGE_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// How long a claimed delivery stays leased without renewal, i.e. how soon another
    /// instance takes over the work of one that died (default: attempt timeout + 60s; at least 2s).
    #[arg(long, env = "WABRIDGE_LEASE", value_parser = parse_duration)]
    pub lease: Option<Duration>,
    /// How long delivered deliveries (and their attempts) are kept after delivery; an event goes
    /// with its last delivery. Units: ms, s, m, h, d.
    #[arg(long, env = "WABRIDGE_RETENTION_DELIVERED", default_value = defaults::RETENTION_DELIVERED, value_parser = parse_duration)]
    pub retention_delivered: Duration,
    /// How long dead letters (and their attempts) are kept after they died (redrive works
    /// until then).
    #[arg(long, env = "WABRIDGE_RETENTION_DEAD", default_value = defaults::RETENTION_DEAD, value_parser = parse_duration)]
    pub retention_dead: Duration,
    /// Log format.
    #[arg(long, env = "WABRIDGE_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub secret_keys: SecretKeyArgs,
}

impl ServeArgs {
    pub fn into_config(self) -> anyhow::Result<Config> {
        let allow_targets: NetPolicy = self
            .allow_targets
            .parse()
            .context("WABRIDGE_ALLOW_TARGETS / --allow-targets")?;
        let retry_schedule: RetrySchedule = self
            .retry_schedule
            .parse()
            .context("WABRIDGE_RETRY_SCHEDULE / --retry-schedule")?;
        let mut c = Config::new(self.listen, self.database.database_url);
        c.public_url = self.public_url.map(|u| u.trim_end_matches('/').to_owned());
        c.api_keys = self.api_key.as_deref().map(split_list).unwrap_or_default();
        c.ingest_keys = self
            .ingest_key
            .as_deref()
            .map(split_list)
            .unwrap_or_default();
        c.admin_can_ingest = self.admin_can_ingest;
        c.openwa_secret = self.openwa_secret.filter(|s| !s.is_empty());
        c.evolution_jwt_key = self.evolution_jwt_key.filter(|s| !s.is_empty());
        c.waha_hmac_key = self.waha_hmac_key.filter(|s| !s.is_empty());
        c.waha_url = self.waha_url.filter(|s| !s.is_empty());
        c.waha_api_key = self.waha_api_key.filter(|s| !s.is_empty());
        c.sources = parse_specs(&self.sources.sources)
            .map_err(anyhow::Error::msg)
            .context("WABRIDGE_SOURCES / --sources")?;
        c.allow_targets = allow_targets;
        c.retry_schedule = retry_schedule;
        c.attempt_timeout = self.attempt_timeout;
        c.max_in_flight = self.max_in_flight;
        c.per_webhook_in_flight = self.per_webhook_in_flight;
        c.shutdown_grace = self.shutdown_grace;
        c.header_read_timeout = self.header_timeout;
        c.body_timeout = self.body_timeout;
        c.max_connections = self.max_connections;
        if let Some(lease) = self.lease {
            anyhow::ensure!(
                lease >= Duration::from_secs(2),
                "WABRIDGE_LEASE / --lease must be at least 2s (leases are renewed every third of it)"
            );
        }
        c.lease = self.lease;
        c.retention = crate::retention::Retention {
            delivered: self.retention_delivered,
            dead: self.retention_dead,
        };
        c.at_rest = self.secret_keys.at_rest()?;
        Ok(c)
    }
}

/// `wabridge validate FILE`: prints the normalised registration and returns true, or prints every
/// problem to stderr and returns false.
pub fn validate_file(file: &Path, sources: &str) -> anyhow::Result<bool> {
    let sources = parse_specs(sources)
        .map_err(anyhow::Error::msg)
        .context("WABRIDGE_SOURCES / --sources")?;
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let body: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", file.display()))?;
    let catalog = Catalog::load_with(crate::catalog::CANONICAL_BASE, &sources)?;
    match parse_registration(&catalog, &body) {
        Ok(reg) => {
            println!("{}: valid", file.display());
            println!("{}", serde_json::to_string_pretty(&reg.normalized())?);
            Ok(true)
        }
        Err(errors) => {
            eprintln!(
                "{}: {} problem{}",
                file.display(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            for e in &errors {
                let pointer = if e.pointer.is_empty() {
                    "(body)"
                } else {
                    &e.pointer
                };
                eprintln!("  {pointer}  [{}]  {}", e.code.as_str(), e.message);
                if let Some(s) = &e.suggestion {
                    eprintln!("      suggestion: {s}");
                }
            }
            eprintln!("(offline check: the network policy on the url is applied by the server)");
            Ok(false)
        }
    }
}

/// `wabridge schemas export DIR`: writes every served schema file, and beside them the OpenAPI
/// and AsyncAPI documents of a bridge fed by `sources`; returns how many schema files.
pub fn export_schemas(
    dir: &Path,
    public_url: Option<&str>,
    sources: &str,
) -> anyhow::Result<usize> {
    let base = public_url.unwrap_or(crate::catalog::CANONICAL_BASE);
    let specs = parse_specs(sources)
        .map_err(anyhow::Error::msg)
        .context("WABRIDGE_SOURCES / --sources")?;
    let docs = crate::http::apidoc::ApiDocs::build(&Catalog::load_with(base, &specs)?);
    for (name, bytes) in [
        ("openapi.json", docs.openapi()),
        ("asyncapi.json", docs.asyncapi()),
    ] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let target = dir.join(name);
        std::fs::write(&target, &bytes)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    let files = served_files(&crate::catalog::embedded(), base.trim_end_matches('/'))?;
    for (path, file) in &files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, &file.bytes)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(files.len())
}

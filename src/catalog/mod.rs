//! The event catalog: the one list of event names, their status, their payload schemas and the
//! known wrong names, loaded from the files embedded from `schemas/` and compiled once at start.
//!
//! Nothing here is fetched over the network: every `$ref` stays inside the embedded files.

mod files;
pub mod sources;
mod suggest;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

pub use files::{CANONICAL_BASE, SchemaFile, embedded, served_files};
pub use sources::{Emitter, SourceDef, SourceSpec, Sources, parse_specs};
pub use suggest::{suggest, unknown_event_message};

/// Directory (relative to `schemas/`) of the payload schemas, one per event.
pub const EVENT_SCHEMA_DIR: &str = "events";

/// Whether an event can be subscribed to. In `catalog.json` it says whether any known engine
/// emits the event; on a running bridge ([`Catalog::status`]) whether a *configured* source does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// An engine emits it: registrations for it fire.
    Available,
    /// Named so that nobody invents it, but no engine (feeding this bridge) emits it.
    Reserved,
}

/// One catalog entry as written in `schemas/catalog.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventDef {
    pub name: String,
    pub status: EventStatus,
    pub description: String,
    /// Path of the payload schema, relative to `schemas/`.
    pub schema: String,
    /// Only a registration that names the event receives it: `*` and `family.*` do not
    /// include it (high-volume events such as message.receipt).
    #[serde(default)]
    pub opt_in: bool,
}

/// A name users type that is not an event, and the event to use instead.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WrongName {
    pub name: String,
    #[serde(rename = "use")]
    pub use_instead: String,
    pub why: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CatalogFile {
    contract_version: u32,
    events: Vec<EventDef>,
    wrong_names: Vec<WrongName>,
}

/// The compiled catalog. Built once at start, shared read-only.
pub struct Catalog {
    contract_version: u32,
    events: Vec<EventDef>,
    wrong_names: Vec<WrongName>,
    validators: BTreeMap<String, Arc<jsonschema::Validator>>,
    /// `ingest.json`, compiled: the shape of a `POST /v1/ingest` event.
    ingest: jsonschema::Validator,
    examples: BTreeMap<String, Vec<Value>>,
    files: BTreeMap<String, SchemaFile>,
    public_url: String,
    sources: Sources,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("contract_version", &self.contract_version)
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

/// How a subscription pattern in a registration resolves against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// An available event, `*`, or a family wildcard with available events.
    Subscribable,
    /// A reserved event, or a family wildcard whose events are all reserved.
    Reserved(&'a str),
    /// Not an event name.
    Unknown,
}

impl Catalog {
    /// Loads the embedded catalog for a bridge fed by the default sources (`openwa`).
    pub fn load(public_url: &str) -> anyhow::Result<Self> {
        Self::load_with(public_url, &default_sources())
    }

    /// Loads the embedded catalog. `public_url` is the base under which schemas are served
    /// (`{public_url}/v1/schemas/...`); it becomes the `$id` of every served schema. `sources`
    /// are the engines feeding this bridge: they decide which events can fire here.
    pub fn load_with(public_url: &str, sources: &[SourceSpec]) -> anyhow::Result<Self> {
        let public_url = public_url.trim_end_matches('/').to_owned();
        let raw = files::embedded();
        let catalog_bytes = raw
            .get("catalog.json")
            .context("schemas/catalog.json is missing")?;
        let file: CatalogFile =
            serde_json::from_slice(catalog_bytes).context("schemas/catalog.json is invalid")?;
        let served = served_files(&raw, &public_url)?;

        let mut validators = BTreeMap::new();
        let mut examples = BTreeMap::new();
        for event in &file.events {
            let schema_file = served
                .get(&event.schema)
                .with_context(|| format!("schema {} of {} is missing", event.schema, event.name))?;
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&schema_file.json)
                .map_err(|e| anyhow::anyhow!("schema {} does not compile: {e}", event.schema))?;
            validators.insert(event.name.clone(), Arc::new(validator));
            let list = schema_file
                .json
                .get("examples")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if list.is_empty() {
                bail!("schema {} has no example payload", event.schema);
            }
            examples.insert(event.name.clone(), list);
        }
        let ingest = served
            .get("ingest.json")
            .context("schemas/ingest.json is missing")?;
        // Formats are not asserted here: `occurredAt` is parsed by the ingest rules, once.
        let ingest = jsonschema::draft202012::options()
            .build(&ingest.json)
            .map_err(|e| anyhow::anyhow!("schema ingest.json does not compile: {e}"))?;
        for wrong in &file.wrong_names {
            if file.events.iter().any(|e| e.name == wrong.name) {
                bail!("wrong name {} is also a catalog event", wrong.name);
            }
        }
        let source_files: Vec<(&str, &[u8])> = raw
            .iter()
            .filter(|(path, _)| path.starts_with(sources::SOURCE_DIR))
            .map(|(path, bytes)| (*path, *bytes))
            .collect();
        let sources = Sources::load(&source_files, sources)?;
        for def in sources.known() {
            for e in &def.events {
                if !file.events.iter().any(|c| c.name == e.event) {
                    bail!(
                        "schemas/sources/{}.json names {}, which is not a catalog event",
                        def.engine,
                        e.event
                    );
                }
            }
        }
        Ok(Self {
            contract_version: file.contract_version,
            events: file.events,
            wrong_names: file.wrong_names,
            validators,
            ingest,
            examples,
            files: served,
            public_url,
            sources,
        })
    }

    /// The engines known to this bridge and the ones configured to feed it.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Marks an event a configured engine cannot emit as this bridge is set up (see
    /// [`Sources::withhold`]); call before the catalog is shared.
    pub fn withhold(&mut self, engine: &str, event: &str, why: impl Into<String>) {
        self.sources.withhold(engine, event, why);
    }

    /// The status of an event on this bridge: available when the contract has it available and
    /// a configured source emits it.
    pub fn status(&self, event: &EventDef) -> EventStatus {
        if event.status == EventStatus::Available && self.sources.emits(&event.name) {
            EventStatus::Available
        } else {
            EventStatus::Reserved
        }
    }

    /// Why an event cannot fire on this bridge; `None` when it can.
    pub fn reserved_reason(&self, name: &str) -> Option<String> {
        let event = self.event(name)?;
        match (event.status, self.status(event)) {
            (_, EventStatus::Available) => None,
            (EventStatus::Reserved, _) => Some(format!(
                "{name} is reserved in the contract: no engine emits it yet, so a registration \
                 for it would never fire. It is named so that nobody invents it"
            )),
            (EventStatus::Available, EventStatus::Reserved) => self.sources.reserved_reason(name),
        }
    }

    /// The patterns of a stored registration that cannot deliver anything on this bridge (the
    /// sources changed since it was made), each with the reason. Such a registration is kept
    /// and reported, never dropped.
    pub fn cannot_fire(&self, patterns: &[String]) -> Vec<(String, String)> {
        patterns
            .iter()
            .filter_map(|p| match self.lookup(p) {
                Lookup::Subscribable => None,
                Lookup::Reserved(first) => Some((
                    p.clone(),
                    self.reserved_reason(first)
                        .unwrap_or_else(|| format!("{p} cannot fire on this bridge")),
                )),
                Lookup::Unknown => Some((
                    p.clone(),
                    format!("{p} is no longer an event name in this catalog"),
                )),
            })
            .collect()
    }

    /// The subscription patterns a stored registration may hold that deliver this event:
    /// its name, its family wildcard and `*` — only its name for an opt-in event.
    pub fn matching_patterns(&self, name: &str) -> [String; 3] {
        let opt_in = self.event(name).is_some_and(|e| e.opt_in);
        match family_of(name) {
            Some(family) if !opt_in => [name.to_owned(), format!("{family}.*"), "*".to_owned()],
            _ => [name.to_owned(), name.to_owned(), name.to_owned()],
        }
    }

    /// Does a stored subscription pattern deliver this event? The same rule as
    /// [`Catalog::matching_patterns`], which the store applies in SQL.
    pub fn pattern_matches(&self, pattern: &str, name: &str) -> bool {
        self.matching_patterns(name).iter().any(|p| p == pattern)
    }

    pub fn contract_version(&self) -> u32 {
        self.contract_version
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Every event, in catalog order.
    pub fn events(&self) -> &[EventDef] {
        &self.events
    }

    pub fn event(&self, name: &str) -> Option<&EventDef> {
        self.events.iter().find(|e| e.name == name)
    }

    /// The events that can fire on this bridge, in catalog order.
    pub fn available(&self) -> impl Iterator<Item = &EventDef> {
        self.events
            .iter()
            .filter(|e| self.status(e) == EventStatus::Available)
    }

    pub fn wrong_names(&self) -> &[WrongName] {
        &self.wrong_names
    }

    pub fn wrong_name(&self, name: &str) -> Option<&WrongName> {
        self.wrong_names.iter().find(|w| w.name == name)
    }

    /// Every pattern a registration may subscribe to: available names, `*`, and each family
    /// wildcard (`message.*`) that has at least one available event. Derived, never written down.
    pub fn subscribable_patterns(&self) -> Vec<String> {
        let mut out: Vec<String> = self.available().map(|e| e.name.clone()).collect();
        out.push("*".to_owned());
        for family in self.families() {
            if self
                .available()
                .any(|e| family_of(&e.name) == Some(family.as_str()))
            {
                out.push(format!("{family}.*"));
            }
        }
        out
    }

    /// Families (the part before the first `.`), in catalog order, without repeats.
    pub fn families(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.events {
            if let Some(f) = family_of(&e.name)
                && !out.iter().any(|x| x == f)
            {
                out.push(f.to_owned());
            }
        }
        out
    }

    /// Resolves one subscription pattern.
    pub fn lookup(&self, pattern: &str) -> Lookup<'_> {
        if pattern == "*" {
            return Lookup::Subscribable;
        }
        if let Some(family) = pattern.strip_suffix(".*") {
            let members: Vec<&EventDef> = self
                .events
                .iter()
                .filter(|e| family_of(&e.name) == Some(family))
                .collect();
            return match members.first() {
                None => Lookup::Unknown,
                Some(first) => {
                    if members
                        .iter()
                        .any(|e| self.status(e) == EventStatus::Available)
                    {
                        Lookup::Subscribable
                    } else {
                        Lookup::Reserved(first.name.as_str())
                    }
                }
            };
        }
        match self.event(pattern) {
            Some(e) if self.status(e) == EventStatus::Available => Lookup::Subscribable,
            Some(e) => Lookup::Reserved(e.name.as_str()),
            None => Lookup::Unknown,
        }
    }

    /// The compiled `ingest.json`: the shape of an event posted to `POST /v1/ingest`.
    pub fn ingest_validator(&self) -> &jsonschema::Validator {
        &self.ingest
    }

    /// The compiled validator of an event's `data` payload.
    pub fn validator(&self, event: &str) -> Option<&jsonschema::Validator> {
        self.validators.get(event).map(|v| v.as_ref())
    }

    /// Example payloads of an event, from its schema's `examples`.
    pub fn examples(&self, event: &str) -> &[Value] {
        self.examples.get(event).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The served schema files, keyed by their path under `/v1/schemas/`.
    pub fn files(&self) -> &BTreeMap<String, SchemaFile> {
        &self.files
    }

    /// The URL at which a schema file is served.
    pub fn schema_url(&self, path: &str) -> String {
        format!("{}/v1/schemas/{path}", self.public_url)
    }

    /// The published contract as one JSON document, for the compatibility snapshot.
    pub fn published_contract(&self) -> Value {
        let catalog = self
            .files
            .get("catalog.json")
            .map(|f| f.json.clone())
            .unwrap_or(Value::Null);
        // The sources describe engines, not the event contract: they change with every engine
        // release and are not compared for compatibility.
        let schemas: serde_json::Map<String, Value> = self
            .files
            .iter()
            .filter(|(path, _)| {
                path.as_str() != "catalog.json"
                    && path.as_str() != SOURCE_SCHEMA
                    && !path.starts_with(sources::SOURCE_DIR)
            })
            .map(|(path, f)| (path.clone(), f.json.clone()))
            .collect();
        serde_json::json!({
            "contractVersion": self.contract_version,
            "catalog": catalog,
            "schemas": schemas,
        })
    }
}

/// The sources every bridge is fed by unless the operator says otherwise.
pub fn default_sources() -> Vec<SourceSpec> {
    parse_specs(DEFAULT_SOURCES).expect("the default sources parse")
}

/// `WABRIDGE_SOURCES` when unset.
pub const DEFAULT_SOURCES: &str = "openwa";

/// The JSON Schema of the files under `schemas/sources/`.
pub const SOURCE_SCHEMA: &str = "source.json";

/// The family of an event name: `message` for `message.received`.
pub fn family_of(name: &str) -> Option<&str> {
    name.split_once('.').map(|(family, _)| family)
}

#[cfg(test)]
mod tests;

//! The event catalog: the one list of event names, their status, their payload schemas and the
//! known wrong names, loaded from the files embedded from `schemas/` and compiled once at start.
//!
//! Nothing here is fetched over the network: every `$ref` stays inside the embedded files.

pub mod compat;
mod files;
mod suggest;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

pub use files::{CANONICAL_BASE, SchemaFile, embedded, served_files};
pub use suggest::suggest;

/// Directory (relative to `schemas/`) of the payload schemas, one per event.
pub const EVENT_SCHEMA_DIR: &str = "events";

/// Whether an event can be subscribed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// An engine emits it: registrations for it fire.
    Available,
    /// Named so that nobody invents it, but no engine emits it yet.
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
    examples: BTreeMap<String, Vec<Value>>,
    files: BTreeMap<String, SchemaFile>,
    public_url: String,
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
    /// Loads the embedded catalog. `public_url` is the base under which schemas are served
    /// (`{public_url}/v1/schemas/...`); it becomes the `$id` of every served schema.
    pub fn load(public_url: &str) -> anyhow::Result<Self> {
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
        for wrong in &file.wrong_names {
            if file.events.iter().any(|e| e.name == wrong.name) {
                bail!("wrong name {} is also a catalog event", wrong.name);
            }
        }
        Ok(Self {
            contract_version: file.contract_version,
            events: file.events,
            wrong_names: file.wrong_names,
            validators,
            examples,
            files: served,
            public_url,
        })
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

    pub fn available(&self) -> impl Iterator<Item = &EventDef> {
        self.events
            .iter()
            .filter(|e| e.status == EventStatus::Available)
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
                    if members.iter().any(|e| e.status == EventStatus::Available) {
                        Lookup::Subscribable
                    } else {
                        Lookup::Reserved(first.name.as_str())
                    }
                }
            };
        }
        match self.event(pattern) {
            Some(e) if e.status == EventStatus::Available => Lookup::Subscribable,
            Some(e) => Lookup::Reserved(e.name.as_str()),
            None => Lookup::Unknown,
        }
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
        let schemas: serde_json::Map<String, Value> = self
            .files
            .iter()
            .filter(|(path, _)| path.as_str() != "catalog.json")
            .map(|(path, f)| (path.clone(), f.json.clone()))
            .collect();
        serde_json::json!({
            "contractVersion": self.contract_version,
            "catalog": catalog,
            "schemas": schemas,
        })
    }
}

/// Does an event name match a subscription pattern (`name`, `family.*` or `*`)?
pub fn pattern_matches(pattern: &str, event: &str) -> bool {
    if pattern == "*" || pattern == event {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(family) => family_of(event) == Some(family),
        None => false,
    }
}

/// The family of an event name: `message` for `message.received`.
pub fn family_of(name: &str) -> Option<&str> {
    name.split_once('.').map(|(family, _)| family)
}

#[cfg(test)]
mod tests;

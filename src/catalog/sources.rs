//! Sources as data: which engines can feed a bridge, which catalog events each emits from which
//! of its versions and under which of its own names (`schemas/sources/<engine>.json`), and the
//! operator's selection (`--sources openwa,waha@2024.10.1`).
//!
//! An event is *available on this bridge* when a configured source emits it; otherwise it is
//! *reserved here*, and the explanation names the engines and versions that do emit it.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, bail};
use semver::Version;
use serde::{Deserialize, Serialize};

/// Directory (relative to `schemas/`) of the source files, one per engine.
pub const SOURCE_DIR: &str = "sources/";

/// One native event an engine emits for a catalog event, and when.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NativeName {
    pub name: String,
    /// The condition under which it maps onto the catalog event, when it is not always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

/// A catalog event as one engine emits it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceEvent {
    pub event: String,
    pub native: Vec<NativeName>,
    /// The first engine version in which it fires.
    pub since: Version,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceVersion {
    pub version: Version,
    #[serde(default)]
    pub note: Option<String>,
}

/// A native event with no catalog counterpart (acknowledged and listed as ignored).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Unmapped {
    pub native: String,
    pub why: String,
}

/// One engine, as described in `schemas/sources/<engine>.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceDef {
    pub engine: String,
    pub title: String,
    pub homepage: String,
    pub ingest_path: String,
    /// The version the current line was read at; `engine` without a version means this.
    pub current: Version,
    pub versions: Vec<SourceVersion>,
    pub events: Vec<SourceEvent>,
    #[serde(default)]
    pub unmapped: Vec<Unmapped>,
}

impl SourceDef {
    /// The entry for a catalog event, if the engine emits it in any version.
    pub fn event(&self, name: &str) -> Option<&SourceEvent> {
        self.events.iter().find(|e| e.event == name)
    }

    /// The catalog events a native name maps onto.
    pub fn catalog_events_of(&self, native: &str) -> impl Iterator<Item = &str> {
        self.events
            .iter()
            .filter(move |e| e.native.iter().any(|n| n.name == native))
            .map(|e| e.event.as_str())
    }
}

/// What the operator configured: `engine` (its current line) or `engine@x.y.z`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub engine: String,
    pub version: Option<Version>,
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.engine),
            None => f.write_str(&self.engine),
        }
    }
}

impl FromStr for SourceSpec {
    type Err = String;

    /// `openwa`, `openwa@0.4.3`, `openwa@0.4` (a missing patch or minor is read as 0).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (engine, version) = match s.split_once('@') {
            Some((e, v)) => (e.trim(), Some(v.trim())),
            None => (s, None),
        };
        if engine.is_empty()
            || !engine
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "'{s}' is not a source: write an engine name such as openwa, optionally with \
                 @version (openwa@0.4.3)"
            ));
        }
        let version = match version {
            None => None,
            Some(v) => Some(parse_version(v).ok_or_else(|| {
                format!("'{s}': '{v}' is not a version; write it as 0.4.3 (a leading v is fine)")
            })?),
        };
        Ok(Self {
            engine: engine.to_owned(),
            version,
        })
    }
}

/// `0.4.3`, `v0.4.3`, `0.4` or `2024.10`: missing parts are 0.
fn parse_version(v: &str) -> Option<Version> {
    let v = v.strip_prefix('v').unwrap_or(v);
    let parts = v.split('.').count();
    let padded = match parts {
        1 => format!("{v}.0.0"),
        2 => format!("{v}.0"),
        _ => v.to_owned(),
    };
    Version::parse(&padded).ok()
}

/// Parses a comma-separated list of source specs (`WABRIDGE_SOURCES`).
pub fn parse_specs(list: &str) -> Result<Vec<SourceSpec>, String> {
    let mut out: Vec<SourceSpec> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let spec: SourceSpec = item.parse()?;
        if out.iter().any(|o| o.engine == spec.engine) {
            return Err(format!(
                "'{}' is named twice in the sources; name each engine once",
                spec.engine
            ));
        }
        out.push(spec);
    }
    if out.is_empty() {
        return Err("no source given: name at least one engine, e.g. openwa".into());
    }
    Ok(out)
}

/// Every known engine, and the ones this bridge is fed by.
#[derive(Debug, Clone)]
pub struct Sources {
    known: Vec<SourceDef>,
    configured: Vec<Configured>,
    /// Events a configured engine would emit but cannot on this bridge as it is set up (WAHA's
    /// QR codes without WAHA's URL), with what to configure.
    withheld: Vec<Withheld>,
}

#[derive(Debug, Clone)]
struct Withheld {
    engine: String,
    event: String,
    why: String,
}

/// A configured source, resolved against its definition.
#[derive(Debug, Clone)]
pub struct Configured {
    /// Index into `known`.
    def: usize,
    pub spec: SourceSpec,
    /// The version whose events count: the configured one, or the current line.
    pub version: Version,
}

/// One engine's emission of an event, for `GET /v1/events` and explanations.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Emitter {
    pub engine: String,
    pub title: String,
    /// Is this engine configured on this bridge, at a version that emits the event?
    pub configured: bool,
    pub since: String,
    pub native: Vec<NativeName>,
}

impl Sources {
    /// Parses the source files and resolves the operator's selection against them.
    pub fn load(files: &[(&str, &[u8])], specs: &[SourceSpec]) -> anyhow::Result<Self> {
        let mut known: Vec<SourceDef> = Vec::new();
        for (path, bytes) in files {
            let def: SourceDef = serde_json::from_slice(bytes)
                .with_context(|| format!("schemas/{path} is not a valid source file"))?;
            if known.iter().any(|k| k.engine == def.engine) {
                bail!("engine {} is described twice", def.engine);
            }
            known.push(def);
        }
        known.sort_by(|a, b| a.engine.cmp(&b.engine));
        let mut configured = Vec::new();
        for spec in specs {
            let Some(def) = known.iter().position(|k| k.engine == spec.engine) else {
                let names: Vec<&str> = known.iter().map(|k| k.engine.as_str()).collect();
                bail!(
                    "unknown source engine '{}': this bridge knows {}",
                    spec.engine,
                    names.join(", ")
                );
            };
            let version = spec
                .version
                .clone()
                .unwrap_or_else(|| known[def].current.clone());
            configured.push(Configured {
                def,
                spec: spec.clone(),
                version,
            });
        }
        Ok(Self {
            known,
            configured,
            withheld: Vec::new(),
        })
    }

    /// Marks an event a configured engine cannot emit here as the bridge is set up; `why` says
    /// what to configure.
    pub fn withhold(&mut self, engine: &str, event: &str, why: impl Into<String>) {
        self.withheld.push(Withheld {
            engine: engine.to_owned(),
            event: event.to_owned(),
            why: why.into(),
        });
    }

    fn is_withheld(&self, engine: &str, event: &str) -> bool {
        self.withheld
            .iter()
            .any(|w| w.engine == engine && w.event == event)
    }

    /// Does this configured engine, at its configured version, emit the event here?
    fn emits_from(&self, def: &SourceDef, c: &Configured, event: &str) -> bool {
        def.event(event).is_some_and(|e| e.since <= c.version)
            && !self.is_withheld(&def.engine, event)
    }

    pub fn known(&self) -> &[SourceDef] {
        &self.known
    }

    pub fn engine(&self, engine: &str) -> Option<&SourceDef> {
        self.known.iter().find(|k| k.engine == engine)
    }

    /// The configured sources, in the order the operator named them.
    pub fn configured(&self) -> impl Iterator<Item = (&SourceDef, &Configured)> {
        self.configured.iter().map(|c| (&self.known[c.def], c))
    }

    /// Is this engine configured on this bridge?
    pub fn is_configured(&self, engine: &str) -> bool {
        self.configured().any(|(d, _)| d.engine == engine)
    }

    /// `openwa,waha@2024.10.1`: the selection as the operator writes it.
    pub fn selection(&self) -> String {
        self.configured
            .iter()
            .map(|c| c.spec.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Does a configured source emit this catalog event?
    pub fn emits(&self, event: &str) -> bool {
        self.configured()
            .any(|(def, c)| self.emits_from(def, c, event))
    }

    /// Every known engine that emits the event in some version, configured ones first.
    pub fn emitters(&self, event: &str) -> Vec<Emitter> {
        let mut out: Vec<Emitter> = self
            .known
            .iter()
            .filter_map(|def| {
                let e = def.event(event)?;
                let configured = self
                    .configured()
                    .any(|(d, c)| d.engine == def.engine && self.emits_from(d, c, event));
                Some(Emitter {
                    engine: def.engine.clone(),
                    title: def.title.clone(),
                    configured,
                    since: e.since.to_string(),
                    native: e.native.clone(),
                })
            })
            .collect();
        // Configured engines first, then engines named in the selection (at a version too old
        // to emit it), then the others.
        out.sort_by_key(|e| (!e.configured, !self.is_configured(&e.engine)));
        out
    }

    /// Why an event cannot fire on this bridge, and how to change that. `None` when it can.
    pub fn reserved_reason(&self, event: &str) -> Option<String> {
        if self.emits(event) {
            return None;
        }
        let fed_by = format!("this bridge is fed by {}", self.selection());
        if let Some(w) = self
            .withheld
            .iter()
            .find(|w| w.event == event && self.is_configured(&w.engine))
        {
            return Some(format!(
                "{event} cannot fire here, so a registration for it would never fire: {fed_by}, \
                 and {} emits it only when {}",
                self.engine(&w.engine)
                    .map_or(w.engine.as_str(), |d| d.title.as_str()),
                w.why
            ));
        }
        let emitters = self.emitters(event);
        if emitters.is_empty() {
            return Some(format!(
                "no engine known to this bridge emits {event} ({fed_by}), so a registration \
                 for it would never fire"
            ));
        }
        let who: Vec<String> = emitters
            .iter()
            .map(|e| format!("{} ({}) from version {}", e.title, e.engine, e.since))
            .collect();
        let enable: Vec<String> = emitters.iter().map(|e| self.enabling(e)).collect();
        Some(format!(
            "{event} cannot fire here, so a registration for it would never fire: {fed_by}, and \
             none of those emits it. It is emitted by {}. To receive it, feed the bridge from one \
             of them and say so with {}",
            who.join(", "),
            enable.join(" or ")
        ))
    }

    /// The `WABRIDGE_SOURCES` value that would make `emitter` fire.
    fn enabling(&self, emitter: &Emitter) -> String {
        let mut parts: Vec<String> = self
            .configured
            .iter()
            .filter(|c| self.known[c.def].engine != emitter.engine)
            .map(|c| c.spec.to_string())
            .collect();
        // A configured engine at a version too old: name the version that emits it.
        let pinned_too_old = self
            .configured()
            .any(|(d, c)| d.engine == emitter.engine && c.spec.version.is_some());
        parts.push(if pinned_too_old {
            format!("{}@{}", emitter.engine, emitter.since)
        } else {
            emitter.engine.clone()
        });
        format!("WABRIDGE_SOURCES={}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENWA: &str = r#"{
      "engine": "openwa", "title": "OpenWA", "homepage": "https://example.org/openwa",
      "ingestPath": "/v1/ingest/openwa", "current": "0.24.0",
      "versions": [{"version": "0.4.3"}, {"version": "0.24.0"}],
      "events": [
        {"event": "message.received", "native": [{"name": "message.received"}], "since": "0.1.0"},
        {"event": "group.join", "native": [{"name": "group.join"}], "since": "0.9.0"}
      ]
    }"#;
    const WAHA: &str = r#"{
      "engine": "waha", "title": "WAHA", "homepage": "https://example.org/waha",
      "ingestPath": "/v1/ingest/waha", "current": "2025.1.0", "versions": [],
      "events": [
        {"event": "message.received", "native": [{"name": "message"}, {"name": "message.any", "when": "fromMe is false"}], "since": "2024.1.0"},
        {"event": "call.received", "native": [{"name": "call.received"}], "since": "2024.5.0"}
      ],
      "unmapped": [{"native": "poll.vote", "why": "no catalog event"}]
    }"#;

    fn sources(specs: &str) -> Sources {
        let files: [(&str, &[u8]); 2] = [
            ("sources/openwa.json", OPENWA.as_bytes()),
            ("sources/waha.json", WAHA.as_bytes()),
        ];
        Sources::load(&files, &parse_specs(specs).unwrap()).unwrap()
    }

    #[test]
    fn specs_parse_with_and_without_versions() {
        let specs = parse_specs(" openwa , waha@v2024.10 ").unwrap();
        assert_eq!(specs[0].to_string(), "openwa");
        assert_eq!(specs[1].to_string(), "waha@2024.10.0");
        assert!(parse_specs("").unwrap_err().contains("at least one"));
        assert!(
            parse_specs("openwa,openwa@0.4.3")
                .unwrap_err()
                .contains("twice")
        );
        assert!(parse_specs("OpenWA").is_err());
        assert!(
            parse_specs("openwa@latest")
                .unwrap_err()
                .contains("not a version")
        );
    }

    #[test]
    fn an_unknown_engine_is_refused_with_the_known_ones() {
        let files: [(&str, &[u8]); 1] = [("sources/openwa.json", OPENWA.as_bytes())];
        let err = Sources::load(&files, &parse_specs("wppconnect").unwrap()).unwrap_err();
        assert!(err.to_string().contains("knows openwa"), "{err}");
    }

    #[test]
    fn the_current_line_emits_everything_and_an_old_version_only_what_it_had() {
        let current = sources("openwa");
        assert!(current.emits("group.join"));
        assert!(current.emits("message.received"));
        assert!(!current.emits("call.received"));
        let old = sources("openwa@0.4.3");
        assert!(old.emits("message.received"));
        assert!(!old.emits("group.join"));
        // The boundary: since is inclusive.
        assert!(sources("openwa@0.9.0").emits("group.join"));
        assert!(!sources("openwa@0.8.99").emits("group.join"));
    }

    #[test]
    fn reserved_reasons_name_who_emits_and_how_to_enable_it() {
        let old = sources("openwa@0.4.3");
        let why = old.reserved_reason("group.join").unwrap();
        assert!(why.contains("fed by openwa@0.4.3"), "{why}");
        assert!(why.contains("OpenWA (openwa) from version 0.9.0"), "{why}");
        assert!(why.contains("WABRIDGE_SOURCES=openwa@0.9.0"), "{why}");
        assert_eq!(old.reserved_reason("message.received"), None);

        let why = sources("openwa").reserved_reason("call.received").unwrap();
        assert!(why.contains("WAHA (waha) from version 2024.5.0"), "{why}");
        assert!(why.contains("WABRIDGE_SOURCES=openwa,waha"), "{why}");

        let why = sources("openwa")
            .reserved_reason("presence.update")
            .unwrap();
        assert!(why.contains("no engine known to this bridge"), "{why}");
    }

    #[test]
    fn a_withheld_event_is_reserved_with_what_to_configure() {
        let mut s = sources("waha");
        assert!(s.emits("call.received"));
        s.withhold("waha", "call.received", "WABRIDGE_X is set");
        assert!(!s.emits("call.received"));
        let why = s.reserved_reason("call.received").unwrap();
        assert!(
            why.contains("WAHA emits it only when WABRIDGE_X is set"),
            "{why}"
        );
        assert!(!s.emitters("call.received")[0].configured);
        // Fed by OpenWA as well, the event fires (OpenWA emits it).
        let mut both = sources("openwa,waha");
        both.withhold("waha", "message.received", "never");
        assert!(both.emits("message.received"));
    }

    #[test]
    fn emitters_list_configured_engines_first_with_native_names() {
        let s = sources("waha");
        let e = s.emitters("message.received");
        assert_eq!(e[0].engine, "waha");
        assert!(e[0].configured);
        assert_eq!(e[0].native.len(), 2);
        assert_eq!(e[1].engine, "openwa");
        assert!(!e[1].configured);
        assert_eq!(
            s.engine("waha")
                .unwrap()
                .catalog_events_of("message.any")
                .count(),
            1
        );
    }
}

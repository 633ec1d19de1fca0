//! The account's presets ([`crate::api::preset`]), kept by its object: each a slug with
//! its versions (the newest is the one requests use; the last [`MAX_VERSIONS_KEPT`] are
//! kept), at most [`MAX_PRESETS`] per account. A provisioning key writes them; any key
//! of the account reads and uses them; another account's key finds none (404).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::books::Books;
use super::ledger::iso8601;
use super::records::KeyKind;
use super::store::{Result, Store};
use crate::api::preset::{check_config, check_slug, MAX_SYSTEM_PROMPT_BYTES};
use crate::error::Error;

/// The most presets an account keeps.
pub const MAX_PRESETS: u64 = 100;
/// The versions of a preset kept (older ones are dropped; numbers go on rising).
pub const MAX_VERSIONS_KEPT: usize = 20;
/// The most presets one listing returns.
pub const MAX_PRESETS_LISTED: u32 = 100;
const MAX_NAME_BYTES: usize = 128;
const MAX_DESCRIPTION_BYTES: usize = 1024;

/// One version of a preset: what a request that names it gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresetVersion {
    pub version: u32,
    pub system_prompt: Option<String>,
    pub config: Map<String, Value>,
    pub created_ms: u64,
    /// The hash of the key that wrote it.
    pub creator: String,
}

/// A preset as stored: its versions oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresetRecord {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub versions: Vec<PresetVersion>,
}

/// What a write sets: each field given replaces the newest version's (a new version);
/// `clear` names the fields set to null (`description`, `system_prompt`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PresetDraft {
    pub name: Option<String>,
    pub description: Option<String>,
    pub system_prompt: Option<String>,
    pub config: Option<Map<String, Value>>,
    #[serde(default)]
    pub clear: Vec<String>,
    /// The ID the preset gets if this write makes it (chosen by the isolate).
    #[serde(default)]
    pub new_id: String,
}

impl PresetDraft {
    /// Checks the fields' bounds and the config as request fields.
    pub fn check(&self) -> Result<()> {
        let too_long = |field: &str, s: &Option<String>, max: usize| match s {
            Some(s) if s.len() > max => Err(Error::bad_request(format!(
                "{field}: must be at most {max} bytes"
            ))),
            _ => Ok(()),
        };
        too_long("name", &self.name, MAX_NAME_BYTES)?;
        too_long("description", &self.description, MAX_DESCRIPTION_BYTES)?;
        too_long(
            "system_prompt",
            &self.system_prompt,
            MAX_SYSTEM_PROMPT_BYTES,
        )?;
        if self.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(Error::bad_request("name: must not be empty"));
        }
        if let Some(c) = &self.config {
            check_config(c)?;
        }
        Ok(())
    }

    fn clears(&self, field: &str) -> bool {
        self.clear.iter().any(|c| c == field)
    }
}

/// A call of the presets API, by a key of the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PresetCall {
    /// `GET /presets?limit=&offset=`: most recently updated first.
    List { limit: u32, offset: u32 },
    /// `GET /presets/{slug}`.
    Get(String),
    /// `GET /presets/{slug}/versions`: newest first.
    Versions(String),
    /// A request names the preset: its newest version ([`PresetUse`]).
    Use(String),
    /// `POST /presets` (slug in the body): a new preset, or a new version of one.
    Put(String, PresetDraft),
    /// `PATCH /presets/{slug}`: a new version of a preset that exists.
    Update(String, PresetDraft),
    /// `DELETE /presets/{slug}`.
    Delete(String),
}

/// What a request that names a preset gets of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresetUse {
    pub id: String,
    pub version: u32,
    pub system_prompt: Option<String>,
    pub config: Map<String, Value>,
}

impl PresetRecord {
    fn newest(&self) -> Option<&PresetVersion> {
        self.versions.last()
    }

    fn version_json(&self, v: &PresetVersion) -> Value {
        json!({
            "id": format!("{}-v{}", self.id, v.version),
            "preset_id": self.id,
            "version": v.version,
            "system_prompt": v.system_prompt,
            "config": v.config,
            "creator_id": v.creator,
            "created_at": iso8601(v.created_ms),
            "updated_at": iso8601(v.created_ms),
        })
    }

    /// The preset in OpenRouter's shape (`Preset`), with its designated (newest)
    /// version inline when `with_version`.
    pub fn to_json(&self, with_version: bool) -> Value {
        let designated = self.newest();
        let mut v = json!({
            "id": self.id,
            "name": self.name,
            "slug": self.slug,
            "description": self.description,
            "status": "active",
            "status_updated_at": null,
            "creator_user_id": null,
            "workspace_id": null,
            "designated_version_id": designated.map(|d| format!("{}-v{}", self.id, d.version)),
            "created_at": iso8601(self.created_ms),
            "updated_at": iso8601(self.updated_ms),
        });
        if let (true, Some(d), Some(obj)) = (with_version, designated, v.as_object_mut()) {
            obj.insert("designated_version".into(), self.version_json(d));
        }
        v
    }
}

fn not_found(slug: &str) -> Error {
    Error::NotFound(format!(
        "Preset {} not found",
        crate::error::truncate(slug, 64)
    ))
}

impl<S: Store> Books<S> {
    pub(super) fn presets_api(&self, caller: &str, call: PresetCall) -> Result<Value> {
        let writes = matches!(
            call,
            PresetCall::Put(..) | PresetCall::Update(..) | PresetCall::Delete(_)
        );
        let key = self.caller(caller, writes.then_some(KeyKind::Provisioning))?;
        match call {
            PresetCall::List { limit, offset } => {
                let rows = self
                    .store
                    .presets(limit.clamp(1, MAX_PRESETS_LISTED), offset)?;
                Ok(Value::Array(
                    rows.iter().map(|p| p.to_json(false)).collect(),
                ))
            }
            PresetCall::Get(slug) => Ok(self.known_preset(&slug)?.to_json(true)),
            PresetCall::Versions(slug) => {
                let p = self.known_preset(&slug)?;
                let list = p.versions.iter().rev().map(|v| p.version_json(v));
                Ok(Value::Array(list.collect()))
            }
            PresetCall::Use(slug) => {
                let p = self.known_preset(&slug)?;
                let v = p.newest().ok_or_else(|| not_found(&slug))?;
                let used = PresetUse {
                    id: p.id.clone(),
                    version: v.version,
                    system_prompt: v.system_prompt.clone(),
                    config: v.config.clone(),
                };
                serde_json::to_value(used).map_err(|e| Error::Internal(e.to_string()))
            }
            PresetCall::Put(slug, draft) => {
                let existing = self.store.preset(&slug)?;
                self.write_preset(&slug, existing, draft, &key.hash)
            }
            PresetCall::Update(slug, draft) => {
                let existing = self.known_preset(&slug)?;
                self.write_preset(&slug, Some(existing), draft, &key.hash)
            }
            PresetCall::Delete(slug) => {
                self.known_preset(&slug)?;
                self.store.delete_preset(&slug)?;
                Ok(json!({ "deleted": true }))
            }
        }
    }

    fn known_preset(&self, slug: &str) -> Result<PresetRecord> {
        self.store.preset(slug)?.ok_or_else(|| not_found(slug))
    }

    /// A new version of `existing` (or a new preset) with `draft`'s fields over the
    /// newest version's.
    fn write_preset(
        &self,
        slug: &str,
        existing: Option<PresetRecord>,
        draft: PresetDraft,
        creator: &str,
    ) -> Result<Value> {
        check_slug(slug, "slug")?;
        draft.check()?;
        let now = self.store.now_ms();
        if existing.is_none() && self.store.preset_count()? >= MAX_PRESETS {
            return Err(Error::Forbidden(format!(
                "An account has at most {MAX_PRESETS} presets: delete one first."
            )));
        }
        let mut p = existing.unwrap_or_else(|| PresetRecord {
            id: draft.new_id.clone(),
            slug: slug.to_string(),
            name: slug.to_string(),
            description: None,
            created_ms: now,
            updated_ms: now,
            versions: Vec::new(),
        });
        let last = p.newest().cloned();
        let version = PresetVersion {
            version: last.as_ref().map_or(1, |l| l.version.saturating_add(1)),
            system_prompt: match (&draft.system_prompt, draft.clears("system_prompt")) {
                (_, true) => None,
                (Some(s), false) => Some(s.clone()),
                (None, false) => last.as_ref().and_then(|l| l.system_prompt.clone()),
            },
            config: draft
                .config
                .clone()
                .or_else(|| last.map(|l| l.config))
                .unwrap_or_default(),
            created_ms: now,
            creator: creator.to_string(),
        };
        if let Some(n) = draft.name.clone() {
            p.name = n;
        }
        if draft.clears("description") {
            p.description = None;
        } else if let Some(d) = draft.description.clone() {
            p.description = Some(d);
        }
        p.updated_ms = now;
        p.versions.push(version);
        let excess = p.versions.len().saturating_sub(MAX_VERSIONS_KEPT);
        p.versions.drain(..excess);
        self.store.put_preset(&p)?;
        Ok(p.to_json(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::books::Config;
    use crate::accounts::memory::MemoryStore;
    use crate::accounts::ops::{Op, Reply};
    use crate::accounts::records::KeyRecord;

    fn key(hash: &str, kind: KeyKind) -> KeyRecord {
        KeyRecord {
            hash: hash.into(),
            name: hash.into(),
            label: hash.into(),
            kind,
            disabled: false,
            limit_picos: None,
            limit_reset: None,
            created_ms: 0,
            updated_ms: None,
            session_limits_default: None,
            require_session_id: false,
            include_byok_in_limit: false,
        }
    }

    fn books() -> Books<MemoryStore> {
        let store = MemoryStore::default();
        store.now.set(1_764_000_000_000);
        let cfg = Config {
            retention_days: 30,
            settled_retention_ms: 86_400_000,
            reservation_ttl_ms: 60_000,
            lease_ttl_ms: 60_000,
            lease_policy: Default::default(),
        };
        let b = Books::new(store, cfg);
        let keys = vec![key("prov", KeyKind::Provisioning), key("api", KeyKind::Api)];
        let init = Op::Init {
            id: "acc".into(),
            name: "acc".into(),
            allow_training: false,
            credits: 0,
            keys,
        };
        b.handle(init).unwrap();
        b
    }

    fn call(b: &Books<MemoryStore>, caller: &str, call: PresetCall) -> Result<Value> {
        match b.handle(Op::Presets {
            caller: caller.into(),
            call,
        })? {
            Reply::View(v) => Ok(v),
            other => panic!("{other:?}"),
        }
    }

    fn draft(v: Value) -> PresetDraft {
        let mut d: PresetDraft = serde_json::from_value(v).unwrap();
        d.new_id = "pre_1".into();
        d
    }

    #[test]
    fn versions_are_written_by_a_provisioning_key_and_read_by_any() {
        let b = books();
        let first = draft(
            json!({"system_prompt": "Be brief.", "config": {"model": "a/b", "temperature": 0.5}}),
        );
        let put = |d| PresetCall::Put("writer".into(), d);
        assert_eq!(
            call(&b, "api", put(first.clone())).unwrap_err().status(),
            403
        );
        let made = call(&b, "prov", put(first)).unwrap();
        assert_eq!(made["id"], "pre_1");
        assert_eq!(made["slug"], "writer");
        assert_eq!(made["name"], "writer");
        assert_eq!(made["designated_version_id"], "pre_1-v1");
        assert_eq!(made["designated_version"]["version"], 1);
        assert_eq!(made["designated_version"]["creator_id"], "prov");
        assert_eq!(made["created_at"], "2025-11-24T16:00:00.000Z");
        b.store.now.set(1_764_000_001_000);
        // A patch changes what it names; the rest is the newest version's.
        let patch = draft(
            json!({"config": {"model": "c/d"}, "clear": ["description"], "description": "x"}),
        );
        let v2 = call(&b, "prov", PresetCall::Update("writer".into(), patch)).unwrap();
        assert_eq!(v2["description"], Value::Null);
        assert_eq!(
            v2["designated_version"],
            json!({"id": "pre_1-v2", "preset_id": "pre_1", "version": 2, "system_prompt": "Be brief.",
                "config": {"model": "c/d"}, "creator_id": "prov",
                "created_at": "2025-11-24T16:00:01.000Z", "updated_at": "2025-11-24T16:00:01.000Z"})
        );
        let used = call(&b, "api", PresetCall::Use("writer".into())).unwrap();
        assert_eq!(
            used,
            json!({"id": "pre_1", "version": 2, "system_prompt": "Be brief.", "config": {"model": "c/d"}})
        );
        let versions = call(&b, "api", PresetCall::Versions("writer".into())).unwrap();
        let numbers: Vec<&Value> = versions
            .as_array()
            .unwrap()
            .iter()
            .map(|v| &v["version"])
            .collect();
        assert_eq!(numbers, [&json!(2), &json!(1)]);
        let list = call(
            &b,
            "api",
            PresetCall::List {
                limit: 10,
                offset: 0,
            },
        )
        .unwrap();
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["designated_version"], Value::Null);
        // Gone for everyone once deleted.
        assert_eq!(
            call(&b, "api", PresetCall::Delete("writer".into()))
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(
            call(&b, "prov", PresetCall::Delete("writer".into())).unwrap(),
            json!({"deleted": true})
        );
        for c in [
            PresetCall::Use("writer".into()),
            PresetCall::Get("writer".into()),
            PresetCall::Update("writer".into(), draft(json!({}))),
        ] {
            let who = if matches!(c, PresetCall::Update(..)) {
                "prov"
            } else {
                "api"
            };
            assert_eq!(call(&b, who, c).unwrap_err().status(), 404);
        }
        assert_eq!(
            call(&b, "nobody", PresetCall::Get("writer".into()))
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn counts_and_sizes_are_bounded() {
        let b = books();
        for n in 0..MAX_PRESETS {
            call(
                &b,
                "prov",
                PresetCall::Put(format!("p{n}"), draft(json!({}))),
            )
            .unwrap();
        }
        let over = call(
            &b,
            "prov",
            PresetCall::Put("one-more".into(), draft(json!({}))),
        );
        assert_eq!(
            over.unwrap_err().public_message(),
            "An account has at most 100 presets: delete one first."
        );
        // A new version of one that exists is still taken; the oldest versions go.
        for _ in 0..MAX_VERSIONS_KEPT + 5 {
            call(&b, "prov", PresetCall::Put("p0".into(), draft(json!({})))).unwrap();
        }
        let versions = call(&b, "api", PresetCall::Versions("p0".into())).unwrap();
        let versions = versions.as_array().unwrap();
        assert_eq!(versions.len(), MAX_VERSIONS_KEPT);
        assert_eq!(versions[0]["version"], 26);
        assert_eq!(versions[MAX_VERSIONS_KEPT - 1]["version"], 7);
        for (d, message) in [
            (
                json!({"name": "n".repeat(129)}),
                "name: must be at most 128 bytes",
            ),
            (json!({"name": " "}), "name: must not be empty"),
            (
                json!({"config": {"temperature": 9}}),
                "config.temperature: must be between 0 and 2, not 9",
            ),
        ] {
            let e = call(&b, "prov", PresetCall::Put("p1".into(), draft(d))).unwrap_err();
            assert_eq!(e.public_message(), message);
        }
        let e = call(
            &b,
            "prov",
            PresetCall::Put("Bad Slug".into(), draft(json!({}))),
        );
        assert_eq!(e.unwrap_err().status(), 400);
    }
}

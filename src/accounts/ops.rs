//! The messages an isolate sends to its account's object (`{"op": ..}` JSON) and what
//! they carry: the ledger's inputs; and what the object answers each, typed both ways
//! ([`Reply`], encoded by the books, each variant's type decoded by the isolate's one
//! client of the object), inside `{"ok": ..}` or `{"err": Error}` ([`Answer`]).
//!
//! Each reply keeps the JSON shape it had when replies were read by key (an object of
//! this version answers an isolate of the previous one, and the other way round, during
//! a deploy): fields only added, with defaults for the ones an older object leaves out.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lease::Grant;
use super::ledger::{Ask, Left, LimitReset};
use super::presets::PresetCall;
use super::records::{Generation, KeyRecord};
use super::session::SessionCall;
use super::session::SessionView;
use crate::api::session::{SessionAsk, SessionLimits};
use crate::error::Error;
use crate::limits::{Decision, Window};

/// The most generations one listing returns.
pub const MAX_GENERATIONS_LISTED: u32 = 200;
/// Settlements one batch may carry.
pub const MAX_SETTLE_BATCH: usize = 64;

/// A message to the account's object. On the wire it is one JSON object whose `op`
/// field names the variant (`{"op": "admit", "caller": ...}`), written by
/// [`Op::to_wire`] and read by [`Op::from_wire`]. Serde's own derive of that shape
/// (`tag = "op"`) would buffer every message into an intermediate tree first, and its
/// code for every type a message holds is about 10 KB of the gzipped worker; the derive
/// here is serde's default (externally tagged, `{"admit": {...}}`), which reads
/// straight from the text, and the two functions move the tag between the forms.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Init {
        id: String,
        name: String,
        allow_training: bool,
        credits: u64,
        keys: Vec<KeyRecord>,
    },
    Account,
    Update {
        name: Option<String>,
        allow_training: Option<bool>,
    },
    Grant {
        picos: u64,
        note: String,
    },
    AddKey {
        key: KeyRecord,
    },
    Admit(Admission),
    /// Ends requests: each is charged and recorded once (by generation ID).
    Settle {
        items: Vec<Queued>,
    },
    /// An isolate's lease: settlements first, then a renewal (and top-up, when asked)
    /// or its return. Answers the lease's state, or that it is revoked.
    Lease {
        caller: String,
        lease_id: String,
        /// Worst cases of the requests running against it in the isolate.
        in_flight: u64,
        /// The worst cases of all the requests the isolate admitted against it, summed
        /// (absent from an isolate of the previous version, which does not report).
        #[serde(default)]
        admitted: Option<u64>,
        top_up: bool,
        release: bool,
        #[serde(default)]
        settle: Vec<Queued>,
    },
    /// Keeps the holds of requests still running from expiring.
    Renew {
        gen_ids: Vec<String>,
    },
    /// The operator's ledger: grants, operator losses, expired holds.
    Ledger,
    WhoAmI {
        caller: String,
        free_windows: Vec<Window>,
    },
    Credits {
        caller: String,
    },
    /// The account's API keys for a provisioning key; every key for the operator
    /// (`caller: None`, the admin API). Likewise in `KeyUpdate` and `KeyDelete`.
    Keys {
        caller: Option<String>,
    },
    KeyGet {
        caller: String,
        hash: String,
    },
    KeyCreate {
        caller: String,
        key: KeyRecord,
    },
    KeyUpdate {
        caller: Option<String>,
        hash: String,
        patch: KeyPatch,
    },
    KeyDelete {
        caller: Option<String>,
        hash: String,
    },
    Generation {
        caller: String,
        id: String,
    },
    /// The account's daily aggregates: of one day (days since 1970-01-01), or the last 30.
    Activity {
        caller: String,
        day: Option<i64>,
    },
    /// The latest generations, newest first: the account's for a provisioning key, the
    /// key's own for an API key.
    Generations {
        caller: String,
        limit: u32,
    },
    /// What `caller` may read of the account's records (in its day shards): its own
    /// (an API key) or all (a provisioning key); `provisioning`: only a provisioning
    /// key may. Answers a [`super::shard::Scope`].
    Scope {
        caller: String,
        #[serde(default)]
        provisioning: bool,
    },
    /// The account's privacy setting; a provisioning key may change it.
    Privacy {
        caller: String,
        allow_training: Option<bool>,
    },
    /// The sessions API: a session of the account (any of its keys), the most
    /// recently used (the account's for a provisioning key, those it made for an API
    /// key), or a change of one's limits (by a provisioning key or the key that made it).
    Sessions {
        caller: String,
        call: SessionCall,
    },
    /// The presets API ([`super::presets`]): read and used by any key of the account,
    /// written by a provisioning key.
    Presets {
        caller: String,
        call: PresetCall,
    },
    /// The BYOK API: a provisioning key manages the account's provider keys; any live
    /// key reads those its model calls may use (`ForKey`, envelopes included).
    Byok {
        caller: String,
        call: super::byok::ByokCall,
    },
}

/// The `op` field of a message, the rest of it skipped.
#[derive(Deserialize)]
struct OpName<'a> {
    #[serde(borrow)]
    op: std::borrow::Cow<'a, str>,
}

impl Op {
    /// The message as its object reads it: the variant's fields with `op` among them.
    pub fn to_wire(&self) -> serde_json::Result<String> {
        let outer = serde_json::to_string(self)?;
        // A unit variant is written as its name, `"account"`.
        if outer.starts_with('"') {
            return Ok(format!("{{\"op\":{outer}}}"));
        }
        // Otherwise `{"name":{...}}`: the name's string, then the variant's object.
        let bad = || <serde_json::Error as serde::de::Error>::custom("not a message");
        let body = outer
            .strip_prefix('{')
            .and_then(|b| b.strip_suffix('}'))
            .ok_or_else(bad)?;
        let (name, inner) = body.split_once(':').ok_or_else(bad)?;
        let fields = inner.strip_prefix('{').ok_or_else(bad)?;
        let sep = if fields.starts_with('}') { "" } else { "," };
        Ok(format!("{{\"op\":{name}{sep}{fields}"))
    }

    /// Reads a message written by [`Op::to_wire`] (or by serde's `tag = "op"`, the
    /// same shape): the variant named by `op`, its fields read from the same object
    /// (where `op` is one more field, ignored).
    pub fn from_wire(text: &str) -> serde_json::Result<Op> {
        let name = serde_json::from_str::<OpName>(text)?.op;
        let name = serde_json::to_string(&name)?;
        serde_json::from_str(&format!("{{{name}:{text}}}"))
            .or_else(|first| serde_json::from_str(&name).map_err(|_| first))
    }
}

/// What a model call asks of its account before going upstream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Admission {
    pub caller: String,
    pub gen_id: String,
    pub free_windows: Vec<Window>,
    pub rps: Option<Window>,
    /// The plan's facts if the account allows training providers, and if not.
    pub if_training: PlanFacts,
    pub if_private: PlanFacts,
    /// The isolate would like a lease for the key's next requests.
    #[serde(default)]
    pub lease: bool,
    /// The request's session, and the limits it asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionAsk>,
}

/// One request's settlement: its record, and the lease it was admitted against (none:
/// it holds its own reservation).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettleItem {
    pub caller: String,
    pub gen_id: String,
    pub generation: Generation,
    #[serde(default)]
    pub lease: Option<String>,
    /// The session it is charged to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// A settlement as the isolate sends it: the request's, and the worst case it was
/// admitted with against its lease (0 without one), which is what it still holds of a
/// lease that is closing. Flattened, so that an isolate and an object of the previous
/// version (which send and read a bare `SettleItem`) understand it during a deploy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Queued {
    #[serde(flatten)]
    pub item: SettleItem,
    #[serde(default)]
    pub ask: u64,
}

/// Whether a plan starts with a free model, and its worst-case cost.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct PlanFacts {
    pub free: bool,
    pub ask: Ask,
}

/// `PATCH /keys/{hash}`: absent fields stay; `limit: null` removes the limit (and
/// `session_limits_default: null` the default). A field set to null travels as null,
/// one left alone not at all ([`set_or_null`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub disabled: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set_or_null"
    )]
    pub limit: Option<Option<u64>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set_or_null"
    )]
    pub limit_reset: Option<Option<LimitReset>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "set_or_null"
    )]
    pub session_limits_default: Option<Option<SessionLimits>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_session_id: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_byok_in_limit: Option<bool>,
}

/// A field that is present: set (`Some(Some)`) or null (`Some(None)`); serde's own
/// reading of `Option<Option<T>>` takes null for absent.
fn set_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl KeyPatch {
    /// Whether it may lower what the key can spend (a rename changes no money), or
    /// make its requests need what a lease cannot check (a session).
    pub fn restricts(&self) -> bool {
        self.disabled == Some(true)
            || self.limit.is_some()
            || self.limit_reset.is_some()
            || self.require_session_id == Some(true)
            || self.include_byok_in_limit == Some(true)
    }
}

/// What every Durable Object of the worker answers a message: its reply, or the error
/// (`{"ok": T}` or `{"err": Error}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer<T> {
    Ok(T),
    Err(Error),
}

impl<T> From<Result<T, Error>> for Answer<T> {
    fn from(r: Result<T, Error>) -> Self {
        match r {
            Ok(v) => Answer::Ok(v),
            Err(e) => Answer::Err(e),
        }
    }
}

impl<T> From<Answer<T>> for Result<T, Error> {
    fn from(a: Answer<T>) -> Self {
        match a {
            Answer::Ok(v) => Ok(v),
            Answer::Err(e) => Err(e),
        }
    }
}

/// What the account's object answers: one variant per kind of reply, written as the
/// variant's own JSON. The isolate decodes the type of the op it sent: [`Admitted`] for
/// `Admit`, [`LeaseState`] for `Lease`, [`Settled`], [`Renewed`], [`Privacy`],
/// [`Deleted`]; the rest are views that go to the client as they are (the account, its
/// keys, credits, ledger and history, with amounts tagged as in [`crate::money`]).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Admitted(Admitted),
    Lease(LeaseState),
    Settled(Settled),
    Renewed(Renewed),
    Privacy(Privacy),
    Deleted(Deleted),
    /// The BYOK credentials a key's model calls may use (envelopes included).
    Byok(Vec<super::byok::ByokRecord>),
    View(Value),
}

/// `Admit`: the account's privacy setting, and either the refusal of a free model's
/// request (its limits spent) or the admission, with the tightest request limit that
/// counted it (free models' windows, or the key's per-second rate), what is left of
/// the credits and the key's limit, and a lease when one was granted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Admitted {
    pub allow_training: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Decision>,
    #[serde(default)]
    pub limit: Option<Decision>,
    #[serde(default)]
    pub lease: Option<Grant>,
    /// The request's session as of its admission (this request counted and held).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Box<SessionView>>,
    /// The session's refusal (its limits, as the request lowered them, are kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_refused: Option<Box<Error>>,
    /// What the account and the key's limit have left after the request's hold
    /// ([`Left`]; two plain fields: a type of its own costs the worker more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_left: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_left: Option<u64>,
}

impl Admitted {
    pub fn with_left(self, left: Option<Left>) -> Self {
        Admitted {
            credits_left: left.map(|l| l.credits),
            key_left: left.and_then(|l| l.key),
            ..self
        }
    }

    /// A request its session's limits refuse (nothing was reserved or counted).
    pub fn session_refused(e: Error) -> Self {
        Admitted {
            session_refused: Some(Box::new(e)),
            ..Admitted::default()
        }
    }
}

/// `Lease`: the lease renewed (maybe topped up), or revoked: the isolate drops it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LeaseState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Grant>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
}

/// `Settle`: how many settlements the batch carried (each applied once).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Settled {
    pub settled: usize,
}

/// `Renew`: how many holds were asked to be kept.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Renewed {
    pub renewed: usize,
}

/// `Privacy`: the account's privacy setting (as it is after a change).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Privacy {
    pub allow_training: bool,
}

/// `KeyDelete`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Deleted {
    pub deleted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decision() -> Value {
        json!({ "allowed": false, "limit": 20, "remaining": 0, "reset": 60, "retry_after": 9 })
    }

    /// What an object of the previous version answered decodes; what this one answers
    /// has the keys the previous isolate reads.
    #[test]
    fn replies_keep_their_shape_across_a_deploy() {
        let old_refusal = json!({ "refused": decision(), "allow_training": true });
        let a: Admitted = serde_json::from_value(old_refusal).unwrap();
        assert!(a.allow_training && a.refused.is_some_and(|d| d.retry_after == 9));
        let old_grant = json!({ "id": "l", "added": 5, "size": 8, "allow_training": false });
        let old_admitted = json!({ "allow_training": false, "limit": null, "lease": old_grant });
        let a: Admitted = serde_json::from_value(old_admitted).unwrap();
        let g = a.lease.unwrap();
        assert_eq!(
            (g.added, g.admit_until),
            (5, None),
            "an old object sets no bound"
        );
        let l: LeaseState = serde_json::from_value(json!({ "revoked": true })).unwrap();
        assert!(l.revoked && l.lease.is_none());
        let revoked = Reply::Lease(LeaseState {
            lease: None,
            revoked: true,
        });
        let ok = serde_json::to_value(Answer::Ok(revoked)).unwrap();
        assert_eq!(ok, json!({ "ok": { "revoked": true } }));
        let renewed = Reply::Lease(LeaseState {
            lease: Some(g),
            revoked: false,
        });
        let v = serde_json::to_value(renewed).unwrap();
        assert!(v.get("revoked").is_none() && v["lease"]["size"] == 8);
        let err = Answer::<Reply>::Err(Error::Forbidden("no".into()));
        let back: Answer<Settled> =
            serde_json::from_value(serde_json::to_value(err).unwrap()).unwrap();
        assert!(matches!(back, Answer::Err(Error::Forbidden(m)) if m == "no"));
    }

    /// A renewal from an isolate of the previous version says nothing of what it
    /// admitted.
    #[test]
    fn an_old_renewal_reports_nothing() {
        let old = json!({
            "op": "lease", "caller": "k", "lease_id": "l", "in_flight": 3,
            "top_up": false, "release": false
        });
        let Op::Lease { admitted, .. } = Op::from_wire(&old.to_string()).unwrap() else {
            panic!("not a lease")
        };
        assert_eq!(admitted, None);
    }

    /// Every form of message goes out as one object named by `op` and comes back as
    /// it went, whatever the order of its fields; a message of another kind, or
    /// none, is an error.
    #[test]
    fn messages_travel_as_one_object_named_by_op() {
        let key = KeyRecord {
            hash: "h".into(),
            name: "n".into(),
            label: "l".into(),
            kind: super::super::records::KeyKind::Api,
            disabled: false,
            limit_picos: Some(u64::MAX),
            limit_reset: None,
            created_ms: 1,
            updated_ms: None,
            session_limits_default: None,
            require_session_id: false,
            include_byok_in_limit: false,
        };
        let ops = [
            Op::Account,
            Op::Ledger,
            Op::Grant {
                picos: u64::MAX,
                note: "a \"quoted\" {note}: x".into(),
            },
            Op::AddKey { key },
            Op::Admit(Admission {
                caller: "k".into(),
                gen_id: "g".into(),
                free_windows: Vec::new(),
                rps: None,
                if_training: PlanFacts::default(),
                if_private: PlanFacts::default(),
                lease: true,
                session: None,
            }),
            Op::Renew {
                gen_ids: vec!["g".into()],
            },
            Op::Keys { caller: None },
            Op::Scope {
                caller: "k".into(),
                provisioning: true,
            },
        ];
        for op in ops {
            let wire = op.to_wire().unwrap();
            let v: Value = serde_json::from_str(&wire).unwrap();
            let name = v["op"].as_str().unwrap().to_string();
            let names = [
                "account", "ledger", "grant", "add_key", "admit", "renew", "keys", "scope",
            ];
            assert!(names.contains(&name.as_str()), "{wire}");
            let back = Op::from_wire(&wire).unwrap();
            assert_eq!(format!("{back:?}"), format!("{op:?}"), "{wire}");
            // The tag last, as another writer may put it.
            let mut o = v.as_object().unwrap().clone();
            o.remove("op");
            let rest = serde_json::to_string(&o).unwrap();
            let moved = match rest.strip_suffix('}') {
                Some(head) if !o.is_empty() => format!("{head},\"op\":\"{name}\"}}"),
                _ => format!("{{\"op\":\"{name}\"}}"),
            };
            let back = Op::from_wire(&moved);
            assert!(back.is_ok(), "{moved}");
        }
        assert!(Op::from_wire(r#"{"op":"nothing_like_it"}"#).is_err());
        assert!(Op::from_wire(r#"{"caller":"k"}"#).is_err());
        assert!(Op::from_wire(r#"{"op":"grant","picos":"x","note":""}"#).is_err());
    }
}

//! The messages an isolate sends to its account's object (`{"op": ..}` JSON) and what
//! they carry: the ledger's inputs. The object answers `{"ok": ..}` or `{"err": Error}`.

use serde::{Deserialize, Serialize};

use super::ledger::{Ask, LimitReset};
use super::records::{Generation, KeyRecord};
use crate::limits::Window;

/// The most generations one listing returns.
pub const MAX_GENERATIONS_LISTED: u32 = 200;
/// Settlements one batch may carry.
pub const MAX_SETTLE_BATCH: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
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
    /// The account's privacy setting; a provisioning key may change it.
    Privacy {
        caller: String,
        allow_training: Option<bool>,
    },
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

/// `PATCH /keys/{hash}`: absent fields stay; `limit: null` removes the limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub disabled: Option<bool>,
    pub limit: Option<Option<u64>>,
    pub limit_reset: Option<Option<LimitReset>>,
}

impl KeyPatch {
    /// Whether it may lower what the key can spend (a rename changes no money).
    pub fn restricts(&self) -> bool {
        self.disabled == Some(true) || self.limit.is_some() || self.limit_reset.is_some()
    }
}

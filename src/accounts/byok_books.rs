//! The account object's side of the BYOK API ([`super::byok`]): who may call it (a
//! provisioning key manages, any live key of the account reads what its model calls
//! may use), and the credentials kept in its storage.

use serde_json::Value;

use super::books::Books;
use super::byok::{self, ByokCall, ByokRecord, MAX_BYOK_KEYS};
use super::ops::Reply;
use super::records::KeyKind;
use super::store::Store;
use crate::error::{Error, Result};

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("BYOK credential {id} not found"))
}

impl<S: Store> Books<S> {
    /// A call of the BYOK API by `caller`.
    pub(super) fn byok_api(&self, caller: &str, call: ByokCall) -> Result<Reply> {
        if let ByokCall::ForKey = call {
            // A model call's: the key must be live (the admission checks it again).
            self.caller(caller, None)?;
            let mut usable = self.store.byok_keys()?;
            usable.retain(|r| r.usable_by(caller));
            byok::sort(&mut usable);
            return Ok(Reply::Byok(usable));
        }
        self.caller(caller, Some(KeyKind::Provisioning))?;
        let mut all = self.store.byok_keys()?;
        byok::sort(&mut all);
        let data = |r: &ByokRecord| serde_json::json!({"data": r.to_json()});
        self.byok_manage(all, call, data).map(Reply::View)
    }

    /// A provisioning key's call, over the account's credentials `all` (sorted).
    fn byok_manage(
        &self,
        all: Vec<ByokRecord>,
        call: ByokCall,
        data: impl Fn(&ByokRecord) -> Value,
    ) -> Result<Value> {
        match call {
            ByokCall::List {
                provider,
                offset,
                limit,
            } => Ok(byok::list_json(&all, provider.as_deref(), offset, limit)),
            ByokCall::Get(id) => all
                .iter()
                .find(|r| r.id == id)
                .map(data)
                .ok_or_else(|| not_found(&id)),
            ByokCall::Create(mut r) => {
                if all.len() >= MAX_BYOK_KEYS {
                    return Err(Error::Forbidden(format!(
                        "An account has at most {MAX_BYOK_KEYS} BYOK credentials: delete one first."
                    )));
                }
                self.check_hashes(r.allowed_api_key_hashes.as_deref())?;
                r.sort_order = byok::next_sort_order(&all, &r.provider);
                self.store.put_byok(&r)?;
                Ok(data(&r))
            }
            ByokCall::Update { id, body, sealed } => {
                let mut r = all
                    .into_iter()
                    .find(|r| r.id == id)
                    .ok_or_else(|| not_found(&id))?;
                let patch = byok::ByokFields::parse_update(body.as_bytes())?;
                if let Some(Some(h)) = &patch.allowed_api_key_hashes {
                    self.check_hashes(Some(h))?;
                }
                if let Some((envelope, label)) = sealed {
                    (r.envelope, r.label) = (envelope, label);
                }
                let r = patch.apply(r, self.now_ms());
                self.store.put_byok(&r)?;
                Ok(data(&r))
            }
            ByokCall::Delete(id) => {
                if !all.iter().any(|r| r.id == id) {
                    return Err(not_found(&id));
                }
                self.store.delete_byok(&id)?;
                Ok(serde_json::json!({"deleted": true}))
            }
            ByokCall::ForKey => Err(Error::Internal("unreachable".into())),
        }
    }

    /// Every hash of an allowlist must be a live API key of this account (a 400, as
    /// OpenRouter answers, for any other).
    fn check_hashes(&self, hashes: Option<&[String]>) -> Result<()> {
        for h in hashes.unwrap_or_default() {
            match self.store.key(h)? {
                Some(k) if k.kind == KeyKind::Api => {}
                _ => {
                    return Err(Error::BadRequest(format!(
                        "allowed_api_key_hashes: {h} is not an API key of this account"
                    )))
                }
            }
        }
        Ok(())
    }
}

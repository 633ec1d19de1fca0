//! An account's own provider keys in the plan (BYOK): each prioritized key of a
//! planned endpoint's provider becomes a copy of that endpoint pinned to the key, tried
//! before the model's shared endpoints (whatever `provider.order` says, as OpenRouter
//! does); fallback keys come after them; an "always use" key takes its provider's
//! shared endpoints out of that model's plan. `provider.allow_byok: false` leaves the
//! plan as it was.

use super::Choice;

/// What routing knows of one credential (never its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByokRoute {
    pub id: String,
    pub provider: String,
    pub allowed_models: Option<Vec<String>>,
    pub is_fallback: bool,
    pub always_use: bool,
}

/// The credential a planned choice is pinned to, and the fee its generation pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByokUse {
    pub id: String,
    pub always_use: bool,
    /// Percent of the price charged instead of it.
    pub fee_percent: u64,
}

impl ByokRoute {
    fn serves(&self, c: &Choice) -> bool {
        c.byok.is_none()
            && c.provider.slug.eq_ignore_ascii_case(&self.provider)
            && self
                .allowed_models
                .as_ref()
                .is_none_or(|m| m.iter().any(|id| *id == c.model.id || *id == c.id))
    }
}

fn pinned<'a>(c: &Choice<'a>, k: &ByokRoute, fee_percent: u64) -> Choice<'a> {
    Choice {
        byok: Some(ByokUse {
            id: k.id.clone(),
            always_use: k.always_use,
            fee_percent,
        }),
        ..c.clone()
    }
}

/// `plan` with the account's `keys` (in their order) applied, model by model.
pub fn apply<'a>(
    plan: Vec<Choice<'a>>,
    keys: &[ByokRoute],
    allow_byok: bool,
    fee_percent: u64,
) -> Vec<Choice<'a>> {
    if !allow_byok || keys.is_empty() {
        return plan;
    }
    let mut out = Vec::with_capacity(plan.len());
    let mut run: Vec<Choice<'a>> = Vec::new();
    for c in plan {
        if run.first().is_some_and(|f| f.id != c.id) {
            out.extend(one_model(std::mem::take(&mut run), keys, fee_percent));
        }
        run.push(c);
    }
    out.extend(one_model(run, keys, fee_percent));
    out
}

/// One model's run of the plan: prioritized keys' copies, the shared endpoints no
/// "always use" key replaces, then fallback keys' copies.
fn one_model<'a>(run: Vec<Choice<'a>>, keys: &[ByokRoute], fee: u64) -> Vec<Choice<'a>> {
    let copies = |fallback: bool| {
        let mut v = Vec::new();
        for c in &run {
            for k in keys
                .iter()
                .filter(|k| k.is_fallback == fallback && k.serves(c))
            {
                v.push(pinned(c, k, fee));
            }
        }
        v
    };
    let mut out = copies(false);
    let fallbacks = copies(true);
    let replaced = |c: &Choice| {
        keys.iter()
            .any(|k| k.always_use && !k.is_fallback && k.serves(c))
    };
    out.extend(run.iter().filter(|c| !replaced(c)).cloned());
    out.extend(fallbacks);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn cat() -> Catalog {
        Catalog::from_json(br#"{"providers":[
            {"slug":"pa","name":"PA","api":"openai","base_url":"http://a"},
            {"slug":"pb","name":"PB","api":"openai","base_url":"http://b"}],
          "models":[
            {"id":"m/one","name":"One","context_length":1000,"endpoints":[
              {"provider":"pa","upstream_model":"one","pricing":{"prompt":"0.000001","completion":"0.000002"}},
              {"provider":"pb","upstream_model":"one","pricing":{"prompt":"0.000001","completion":"0.000002"}}]},
            {"id":"m/two","name":"Two","context_length":1000,"endpoints":[
              {"provider":"pa","upstream_model":"two","pricing":{"prompt":"0.000001","completion":"0.000002"}}]}]}"#)
        .unwrap()
    }

    fn plan(cat: &Catalog) -> Vec<Choice<'_>> {
        let mut v = Vec::new();
        for id in ["m/one", "m/two"] {
            let m = cat.model(id).unwrap();
            for e in &m.endpoints {
                v.push(Choice {
                    id: id.into(),
                    model: m,
                    endpoint: e,
                    provider: cat.provider(&e.provider).unwrap(),
                    byok: None,
                });
            }
        }
        v
    }

    fn key(id: &str, provider: &str, fallback: bool, always: bool) -> ByokRoute {
        ByokRoute {
            id: id.into(),
            provider: provider.into(),
            allowed_models: None,
            is_fallback: fallback,
            always_use: always,
        }
    }

    fn shape(p: &[Choice]) -> Vec<String> {
        p.iter()
            .map(|c| {
                let k = c
                    .byok
                    .as_ref()
                    .map_or("shared".to_string(), |b| b.id.clone());
                format!("{}@{}:{k}", c.id, c.provider.slug)
            })
            .collect()
    }

    #[test]
    fn prioritized_keys_go_first_and_fallback_keys_after_shared_capacity() {
        let cat = cat();
        // The caller's order put pa first; the BYOK key of pb still goes before it.
        let keys = [key("kb", "pb", false, false), key("ka", "pa", true, false)];
        let out = apply(plan(&cat), &keys, true, 5);
        assert_eq!(
            shape(&out),
            [
                "m/one@pb:kb",
                "m/one@pa:shared",
                "m/one@pb:shared",
                "m/one@pa:ka",
                "m/two@pa:shared",
                "m/two@pa:ka",
            ]
        );
        assert_eq!(out[0].byok.as_ref().map(|b| b.fee_percent), Some(5));
    }

    #[test]
    fn always_use_takes_the_providers_shared_endpoint_out() {
        let cat = cat();
        let keys = [key("k1", "pa", false, true), key("k2", "pa", false, false)];
        let out = apply(plan(&cat), &keys, true, 5);
        assert_eq!(
            shape(&out),
            [
                "m/one@pa:k1",
                "m/one@pa:k2",
                "m/one@pb:shared",
                "m/two@pa:k1",
                "m/two@pa:k2",
            ]
        );
    }

    #[test]
    fn a_model_filter_and_allow_byok_false_are_honoured() {
        let cat = cat();
        let mut k = key("k1", "pa", false, true);
        k.allowed_models = Some(vec!["m/two".into()]);
        let out = apply(plan(&cat), std::slice::from_ref(&k), true, 5);
        assert_eq!(
            shape(&out),
            ["m/one@pa:shared", "m/one@pb:shared", "m/two@pa:k1"]
        );
        let off = apply(plan(&cat), &[k], false, 5);
        assert_eq!(shape(&off), shape(&plan(&cat)));
    }
}

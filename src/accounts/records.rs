//! What the account API shows: keys, usage records and activity, in the shapes
//! OpenRouter's SDK reads (every key it requires is present, nulls included).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::ledger::{date, iso8601, usd, LimitReset};
use super::session::limits_json;
use crate::api::session::SessionLimits;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// Calls models.
    Api,
    /// Manages the account's keys; cannot call models.
    Provisioning,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyRecord {
    pub hash: String,
    pub name: String,
    pub label: String,
    pub kind: KeyKind,
    pub disabled: bool,
    pub limit_picos: Option<u64>,
    pub limit_reset: Option<LimitReset>,
    pub created_ms: u64,
    pub updated_ms: Option<u64>,
    /// The limits a session gets when it has none and its request asks for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_limits_default: Option<SessionLimits>,
    /// A request without a session is a 400 naming `session_id`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_session_id: bool,
    /// Whether the fee of its BYOK generations counts against its limit (and its
    /// usage), as OpenRouter's `include_byok_in_limit`; default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_byok_in_limit: bool,
}

/// A key's spending: all-time and in the current day, week and month (picodollars).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyUsage {
    pub all: u64,
    pub daily: u64,
    pub weekly: u64,
    pub monthly: u64,
    /// Spent in the limit's period (all-time without a reset), and held by requests.
    pub period: u64,
    pub reserved: u64,
}

impl KeyRecord {
    pub fn limit_remaining(&self, u: &KeyUsage) -> Option<Value> {
        self.limit_picos
            .map(|l| usd(l.saturating_sub(u.period).saturating_sub(u.reserved)))
    }

    fn common(&self, u: &KeyUsage) -> Value {
        json!({
            "label": self.label,
            "limit": self.limit_picos.map(usd),
            "limit_remaining": self.limit_remaining(u),
            "limit_reset": self.limit_reset.map(LimitReset::as_str),
            "include_byok_in_limit": self.include_byok_in_limit,
            "usage": usd(u.all),
            "usage_daily": usd(u.daily),
            "usage_weekly": usd(u.weekly),
            "usage_monthly": usd(u.monthly),
            "byok_usage": 0.0,
            "byok_usage_daily": 0.0,
            "byok_usage_weekly": 0.0,
            "byok_usage_monthly": 0.0,
            "creator_user_id": null,
        })
    }

    /// An entry of `GET /keys`, `GET /keys/{hash}` and `POST /keys`.
    pub fn to_json(&self, u: &KeyUsage, account_id: &str) -> Value {
        let mut v = self.common(u);
        let extra = json!({
            "hash": self.hash,
            "name": self.name,
            "disabled": self.disabled,
            "created_at": iso8601(self.created_ms),
            "updated_at": self.updated_ms.map(iso8601),
            "last_used_at": null,
            "external_user": null,
            "workspace_id": account_id,
            "is_provisioning_key": self.kind == KeyKind::Provisioning,
            "session_limits_default": self.session_limits_default.as_ref().map(limits_json),
            "require_session_id": self.require_session_id,
        });
        merge(&mut v, extra);
        v
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

/// Free-model allowance of the day, for `GET /key`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FreeAllowance {
    pub limit: u64,
    pub used: u64,
}

/// `GET /key`: the calling key.
pub fn current_key(
    k: &KeyRecord,
    u: &KeyUsage,
    is_free_tier: bool,
    free: FreeAllowance,
    free_per_minute: u64,
) -> Value {
    let mut v = k.common(u);
    merge(
        &mut v,
        json!({
            "is_free_tier": is_free_tier,
            "is_provisioning_key": k.kind == KeyKind::Provisioning,
            "is_management_key": k.kind == KeyKind::Provisioning,
            "rate_limit": {
                "requests": free_per_minute,
                "interval": "1m",
                "note": "Free models (:free and zero-priced) share this per-account limit.",
            },
            "free_model_daily_requests": {
                "limit": free.limit,
                "remaining": free.limit.saturating_sub(free.used),
                "used": free.used,
            },
            "allowed_data_regions": [],
            "budgets": [],
            "effective_budget": null,
            "organization_id": null,
            "workspace_id": null,
        }),
    );
    v
}

/// One request, as it is kept for usage history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Generation {
    pub id: String,
    pub model: String,
    pub provider: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    /// The cost the usage came to; what was charged may be less (an empty balance).
    pub cost_picos: u64,
    pub latency_ms: Option<u64>,
    pub generation_ms: Option<u64>,
    pub streamed: bool,
    pub cancelled: bool,
    pub finish_reason: Option<String>,
    pub native_finish_reason: Option<String>,
    pub http_referer: Option<String>,
    pub app_title: Option<String>,
    pub user_agent: Option<String>,
    pub created_ms: u64,
    /// The surface the request came through (`chat`, `responses`, `messages`, ...).
    #[serde(default)]
    pub api_type: Option<String>,
    /// Where the billed token counts came from: `provider` (the upstream's own usage)
    /// or `estimate` (it sent none, or the client left before it did).
    #[serde(default)]
    pub usage_source: Option<String>,
    /// Its reasoning tokens are an estimate from the time a model that hides its
    /// reasoning showed nothing (the stream ended before the provider's count).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reasoning_estimated: bool,
    /// What the gateway paid upstream for this request but did not charge (an empty
    /// or failed reply, a garbage reply before a fallback), and why.
    #[serde(default)]
    pub operator_loss_picos: u64,
    #[serde(default)]
    pub operator_loss_reason: Option<String>,
    /// The session it was charged to (set by the account's object as it settles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// A reply from the response cache: the generation that made the stored reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_cache_source_id: Option<String>,
    /// Served with one of the account's own provider keys (BYOK): `cost_picos` is
    /// the fee charged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_byok: bool,
}

impl Generation {
    /// This record with the token counts of `usage` and what they cost.
    pub fn with_usage(self, usage: &crate::api::Usage, cost_picos: u64) -> Self {
        Generation {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cached_tokens: usage
                .prompt_tokens_details
                .as_ref()
                .map_or(0, |d| d.cached_tokens),
            reasoning_tokens: usage
                .completion_tokens_details
                .as_ref()
                .map_or(0, |d| d.reasoning_tokens),
            cost_picos,
            ..self
        }
    }
}

/// `GET /generation?id=`: OpenRouter's `GenerationResponseData`.
pub fn generation_data(g: &Generation, charged_picos: u64) -> Value {
    let tokens = |n: u64| (g.provider.is_some()).then_some(n);
    let mut v = json!({
        "id": g.id,
        "model": g.model,
        "provider_name": g.provider,
        "created_at": iso8601(g.created_ms),
        "origin": g.http_referer.clone().unwrap_or_default(),
        "http_referer": g.http_referer,
        "app_id": null,
        "external_user": null,
        "user_agent": g.user_agent,
        "api_type": g.api_type.as_deref().unwrap_or("completions"),
        "usage_source": g.usage_source,
        "reasoning_estimated": g.reasoning_estimated,
        "total_cost": usd(charged_picos),
        "usage": usd(charged_picos),
        "upstream_inference_cost": usd(g.cost_picos),
        "cache_discount": null,
        "is_byok": g.is_byok,
        "streamed": g.streamed,
        "cancelled": g.cancelled,
        "finish_reason": g.finish_reason,
        "native_finish_reason": g.native_finish_reason,
        "latency": g.latency_ms,
        "generation_time": g.generation_ms,
        "session_id": g.session_id,
        "response_cache_source_id": g.response_cache_source_id,
    });
    let nulls = [
        "moderation_latency",
        "native_tokens_completion_images",
        "num_fetches",
        "num_input_audio_prompt",
        "num_media_completion",
        "num_media_prompt",
        "num_search_results",
        "preset_id",
        "provider_responses",
        "router",
        "service_tier",
        "upstream_id",
        "web_search_engine",
        "workspace_id",
    ];
    if let Value::Object(o) = &mut v {
        for k in nulls {
            o.insert(k.into(), Value::Null);
        }
    }
    merge(
        &mut v,
        json!({
        "tokens_prompt": tokens(g.prompt_tokens),
        "tokens_completion": tokens(g.completion_tokens),
        "native_tokens_prompt": tokens(g.prompt_tokens),
        "native_tokens_completion": tokens(g.completion_tokens),
        "native_tokens_cached": tokens(g.cached_tokens),
        "native_tokens_reasoning": tokens(g.reasoning_tokens),
        "data_region": "global",
        "app_title": g.app_title,
        }),
    );
    v
}

/// One row of `GET /activity`: a day, model and provider's totals.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ActivityRow {
    pub day: i64,
    pub model: String,
    pub provider: String,
    pub requests: u64,
    pub usage_picos: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub cached_tokens: u64,
}

pub fn activity_item(r: &ActivityRow) -> Value {
    json!({
        "date": date(r.day.saturating_mul(86_400).max(0).unsigned_abs()),
        "model": r.model,
        "model_permaslug": r.model,
        "endpoint_id": format!("{}:{}", r.provider, r.model),
        "provider_name": r.provider,
        "requests": r.requests,
        "usage": usd(r.usage_picos),
        "byok_usage_inference": 0.0,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "reasoning_tokens": r.reasoning_tokens,
        "cached_tokens": r.cached_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyRecord {
        KeyRecord {
            hash: "ab".into(),
            name: "ci".into(),
            label: "sk-mm-v1-abc...1234".into(),
            kind: KeyKind::Api,
            disabled: false,
            limit_picos: Some(2_000_000_000_000),
            limit_reset: Some(LimitReset::Monthly),
            created_ms: 0,
            updated_ms: None,
            session_limits_default: None,
            require_session_id: false,
            include_byok_in_limit: false,
        }
    }

    #[test]
    fn key_shapes_have_every_required_field() {
        let u = KeyUsage {
            all: 3_000_000_000_000,
            monthly: 500_000_000_000,
            period: 500_000_000_000,
            ..Default::default()
        };
        // As a client reads it: amounts written out as numbers.
        let written = |v: &Value| -> Value {
            serde_json::from_str(&serde_json::to_string(&crate::money::Exact(v)).unwrap()).unwrap()
        };
        let v = written(&key().to_json(&u, "acc"));
        for k in [
            "byok_usage",
            "byok_usage_daily",
            "byok_usage_monthly",
            "byok_usage_weekly",
            "created_at",
            "creator_user_id",
            "disabled",
            "external_user",
            "hash",
            "include_byok_in_limit",
            "label",
            "last_used_at",
            "limit",
            "limit_remaining",
            "limit_reset",
            "name",
            "updated_at",
            "usage",
            "usage_daily",
            "usage_monthly",
            "usage_weekly",
            "workspace_id",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["limit_remaining"], 1.5);
        assert_eq!(v["limit_reset"], "monthly");
        let c = written(&current_key(
            &key(),
            &u,
            false,
            FreeAllowance {
                limit: 200,
                used: 3,
            },
            20,
        ));
        for k in [
            "allowed_data_regions",
            "budgets",
            "effective_budget",
            "free_model_daily_requests",
            "is_free_tier",
            "is_management_key",
            "is_provisioning_key",
            "organization_id",
            "rate_limit",
        ] {
            assert!(c.get(k).is_some(), "missing {k}");
        }
        assert_eq!(c["free_model_daily_requests"]["remaining"], 197);
    }

    #[test]
    fn generation_shape() {
        let g = Generation {
            id: "gen-1".into(),
            model: "m".into(),
            provider: Some("P".into()),
            prompt_tokens: 3,
            created_ms: 1000,
            ..Default::default()
        };
        let v = generation_data(&g, 5);
        assert_eq!(v["created_at"], "1970-01-01T00:00:01.000Z");
        assert_eq!(v["tokens_prompt"], 3);
        assert!(v.get("upstream_id").is_some() && v.get("router").is_some());
        let a = activity_item(&ActivityRow {
            day: 20_417,
            model: "m".into(),
            provider: "P".into(),
            requests: 2,
            ..Default::default()
        });
        assert_eq!(a["date"], "2025-11-25");
    }
}

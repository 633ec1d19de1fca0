//! Answers a program can act on: OpenRouter's `error.availability` (why the requested
//! models could not be served, and whether an identical retry may succeed) and the slim
//! attempt history of `error.metadata.previous_errors`, as its errors documentation
//! (`api_reference/errors-and-debugging.mdx`, "Model availability errors") defines them.

use serde::Serialize;

/// Why a model could not be served: one stable code per condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvailabilityCode {
    /// No requested model ID is in the catalogue.
    ModelNotFound,
    /// The model exists but was called on the wrong route (an embedding model on chat).
    WrongEndpoint,
    /// The model has no endpoint this gateway can route to.
    NoEndpoints,
    /// The data policy (`data_collection: deny`, `zdr`, the account's training
    /// setting) left out every endpoint.
    PrivacyRestricted,
    /// A routing constraint (`provider.only`/`ignore`/`quantizations`/`max_price`/
    /// `require_parameters`) left out every endpoint: `constraint.field` names it.
    ConstraintFiltered,
    /// Every endpoint tried answered 429.
    CapacityExhausted,
    /// Every endpoint tried failed for a passing reason (5xx, overloaded, timeout, no
    /// connection), its health circuit open or not.
    TemporarilyUnavailable,
}

impl AvailabilityCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ModelNotFound => "model_not_found",
            Self::WrongEndpoint => "wrong_endpoint",
            Self::NoEndpoints => "no_endpoints",
            Self::PrivacyRestricted => "privacy_restricted",
            Self::ConstraintFiltered => "constraint_filtered",
            Self::CapacityExhausted => "capacity_exhausted",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// The HTTP status of an answer with this code alone (the routing refusals; the
    /// two retryable codes go with the failure that is reported, which keeps its own).
    pub fn status(self) -> u16 {
        match self {
            Self::WrongEndpoint => 400,
            Self::CapacityExhausted => 429,
            Self::TemporarilyUnavailable => 503,
            _ => 404,
        }
    }

    /// Whether an identical request may succeed later.
    pub fn retryable(self) -> bool {
        matches!(self, Self::CapacityExhausted | Self::TemporarilyUnavailable)
    }
}

/// Written as its name (one table of names, [`AvailabilityCode::as_str`]'s).
impl Serialize for AvailabilityCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The routing filter that removed the last endpoints, in OpenRouter's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ExcludedBy {
    #[serde(rename = "data_policy:zdr")]
    DataPolicyZdr,
    #[serde(rename = "data_policy:training")]
    DataPolicyTraining,
    #[serde(rename = "max_price")]
    MaxPrice,
    #[serde(rename = "require_parameters")]
    RequireParameters,
    #[serde(rename = "quantization")]
    Quantization,
    #[serde(rename = "allowed_providers")]
    AllowedProviders,
    #[serde(rename = "distillable_text")]
    DistillableText,
}

/// The constraint of a `constraint_filtered` or `wrong_endpoint` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Constraint {
    /// The request field, e.g. `provider.max_price`.
    pub field: String,
    pub detail: String,
}

/// OpenRouter's `error.availability`. `code`, `retryable`, `requested_models` and
/// `docs_url` are always written; the rest only when they apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Availability {
    pub code: AvailabilityCode,
    pub retryable: bool,
    /// Seconds to wait (the least any attempted endpoint asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The model IDs the request named (`model`, then `models`).
    pub requested_models: Vec<String>,
    /// The providers whose endpoints were tried or left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub affected_providers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excluded_by: Vec<ExcludedBy>,
    /// Other model IDs that may serve (the paid model of a `:free` variant).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback_models: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Constraint>,
    pub docs_url: String,
}

/// Where each code is defined (the gateway follows OpenRouter's definitions).
const DOCS: &str = "https://openrouter.ai/docs/api_reference/errors-and-debugging#";

impl Availability {
    /// An answer with `code` for `requested_models`, the optional fields empty.
    pub fn new(code: AvailabilityCode, requested_models: Vec<String>) -> Self {
        Availability {
            code,
            retryable: code.retryable(),
            retry_after: None,
            requested_models,
            affected_providers: Vec::new(),
            excluded_by: Vec::new(),
            fallback_models: Vec::new(),
            constraint: None,
            docs_url: format!("{DOCS}{}", code.as_str()),
        }
    }

    pub fn with_constraint(mut self, field: &str, detail: impl Into<String>) -> Self {
        self.constraint = Some(Constraint {
            field: field.to_string(),
            detail: detail.into(),
        });
        self
    }
}

/// One earlier attempt of `error.metadata.previous_errors`: `{provider, code, status}`,
/// never the upstream's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviousError {
    /// The provider's slug.
    pub provider: String,
    /// What went wrong there: `capacity_exhausted` (a 429), `temporarily_unavailable`
    /// (5xx, overloaded, timeout, no connection), `no_endpoints` (not set up on this
    /// gateway), else its `error_type`.
    pub code: &'static str,
    /// The upstream's own status where it answered, else the error's.
    pub status: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_openrouters_shape_leaving_out_what_does_not_apply() {
        let a = Availability::new(
            AvailabilityCode::ModelNotFound,
            vec!["acme/fake-1.0".into()],
        );
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({"code": "model_not_found", "retryable": false,
                "requested_models": ["acme/fake-1.0"],
                "docs_url": "https://openrouter.ai/docs/api_reference/errors-and-debugging#model_not_found"})
        );
        let mut c = Availability::new(AvailabilityCode::ConstraintFiltered, vec!["a/b".into()])
            .with_constraint("provider.max_price", "no endpoint is that cheap");
        c.excluded_by = vec![ExcludedBy::MaxPrice, ExcludedBy::DataPolicyZdr];
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["excluded_by"], json!(["max_price", "data_policy:zdr"]));
        assert_eq!(
            v["constraint"],
            json!({"field": "provider.max_price", "detail": "no endpoint is that cheap"})
        );
        assert_eq!(v["retryable"], false);
    }

    #[test]
    fn each_code_has_its_status_and_retryability() {
        use AvailabilityCode as C;
        let all = [
            (C::ModelNotFound, 404, false),
            (C::WrongEndpoint, 400, false),
            (C::NoEndpoints, 404, false),
            (C::PrivacyRestricted, 404, false),
            (C::ConstraintFiltered, 404, false),
            (C::CapacityExhausted, 429, true),
            (C::TemporarilyUnavailable, 503, true),
        ];
        for (code, status, retryable) in all {
            assert_eq!((code.status(), code.retryable()), (status, retryable));
            let written = serde_json::to_value(code).unwrap();
            assert_eq!(written, json!(code.as_str()));
        }
    }
}

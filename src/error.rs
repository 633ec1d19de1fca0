//! The one error type of the gateway and its single mapping to an HTTP status and
//! OpenRouter's error body `{"error":{"code":..,"message":..,"metadata":{..}}}`.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Error {
    /// The request is malformed or asks for something impossible.
    #[error("{0}")]
    BadRequest(String),
    /// Missing, malformed or unknown API key.
    #[error("{0}")]
    Unauthorized(String),
    /// Not enough credits for the request.
    #[error("{0}")]
    PaymentRequired(String),
    /// The key may not do this (e.g. a provisioning key calling a model).
    #[error("{0}")]
    Forbidden(String),
    /// Unknown model, path or record.
    #[error("{0}")]
    NotFound(String),
    /// The request's session has reached a limit, which the message names first
    /// (`Session limit reached (max_cost): ...`): a 403 with `error_type:
    /// session_limit_reached` and the `limit`.
    #[error("{0}")]
    SessionLimit(String),
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// The upstream took too long.
    #[error("Request to {provider} timed out")]
    Timeout { provider: String },
    #[error("Request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// Our own limit or an upstream's 429.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: Option<u64>,
        provider: Option<String>,
        raw: Option<String>,
    },
    /// The upstream failed or answered something we could not understand.
    #[error("{message}")]
    Upstream {
        provider: String,
        message: String,
        status: Option<u16>,
        raw: Option<String>,
    },
    /// No endpoint can serve the request right now.
    #[error("{0}")]
    NoProvider(String),
    /// This isolate is at a budget it shares among requests (media or reply bytes in
    /// flight): another endpoint, or the same later, may serve.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: u64,
    },
    /// Our side is set up wrong: a provider refused our own key (401/403 upstream),
    /// or a required secret is missing. Says so without the upstream's reply.
    #[error("{0}")]
    Misconfigured(String),
    /// A bug or a misconfiguration on our side.
    #[error("Internal error: {0}")]
    Internal(String),
}

/// Upstream error text kept in `metadata.raw` is cut to this many bytes.
const RAW_LIMIT: usize = 2048;

impl Error {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    pub fn upstream(provider: &str, message: impl Into<String>) -> Self {
        Error::Upstream {
            provider: provider.to_string(),
            message: message.into(),
            status: None,
            raw: None,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::PaymentRequired(_) => 402,
            Error::Forbidden(_) | Error::SessionLimit(_) => 403,
            Error::NotFound(_) => 404,
            Error::MethodNotAllowed => 405,
            Error::Timeout { .. } => 408,
            Error::PayloadTooLarge { .. } => 413,
            Error::RateLimited { .. } => 429,
            // The upstream refused the request itself: the caller must change it.
            Error::Upstream {
                status: Some(400 | 404 | 413 | 422),
                ..
            } => 400,
            Error::Upstream { .. } => 502,
            Error::NoProvider(_) | Error::Misconfigured(_) | Error::Busy { .. } => 503,
            Error::Internal(_) => 500,
        }
    }

    /// Whether another endpoint might succeed where this one failed.
    pub fn is_retryable(&self) -> bool {
        self.status() != 400
            && matches!(
                self,
                Error::Timeout { .. }
                    | Error::RateLimited {
                        provider: Some(_),
                        ..
                    }
                    | Error::Upstream { .. }
                    | Error::NoProvider(_)
                    | Error::Misconfigured(_)
                    | Error::Busy { .. }
            )
    }

    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Error::RateLimited {
                retry_after_secs, ..
            } => *retry_after_secs,
            Error::Busy {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    pub fn metadata(&self) -> Option<ErrorMeta> {
        let (provider, raw) = match self {
            Error::SessionLimit(message) => {
                let limit = message
                    .split_once('(')
                    .and_then(|(_, rest)| rest.split_once(')'))
                    .map_or("", |(limit, _)| limit);
                return Some(ErrorMeta {
                    error_type: Some("session_limit_reached"),
                    limit: Some(limit.to_string()),
                    ..ErrorMeta::default()
                });
            }
            Error::Timeout { provider } => (Some(provider), None),
            Error::RateLimited { provider, raw, .. } => (provider.as_ref(), raw.as_ref()),
            Error::Upstream { provider, raw, .. } => (Some(provider), raw.as_ref()),
            _ => return None,
        };
        let meta = ErrorMeta {
            provider_name: provider.cloned(),
            raw: raw.map(|r| truncate(r, RAW_LIMIT).to_string()),
            ..ErrorMeta::default()
        };
        (meta != ErrorMeta::default()).then_some(meta)
    }

    /// What the caller is told: the message, except that an internal error's detail
    /// (which may name storage, configuration or code) stays in the logs.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "Internal error".to_string(),
            other => other.to_string(),
        }
    }

    /// OpenRouter's error body.
    pub fn body(&self) -> OpenRouterError {
        OpenRouterError {
            error: self.error_object(self.metadata()),
        }
    }

    /// The `error` of OpenRouter's bodies and stream chunks, with `metadata`.
    pub fn error_object(&self, metadata: Option<ErrorMeta>) -> ErrorObject {
        ErrorObject {
            code: self.status(),
            message: self.public_message(),
            metadata,
        }
    }

    /// Extra response headers that go with this error.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self.retry_after_secs() {
            Some(secs) => vec![("Retry-After", secs.to_string())],
            None => Vec::new(),
        }
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    s.get(..end).unwrap_or_default()
}

/// The failures of a request's endpoints as they are tried: the one to report (a
/// configured provider's error over a missing key, and a refusal that ends the request
/// over what came before it), and every endpoint's, for `metadata.provider_errors`.
#[derive(Debug, Default)]
pub struct Failures {
    /// (provider slug, model ID, error), in the order they came.
    all: Vec<(String, String, Error)>,
    chosen: usize,
}

impl Failures {
    /// Notes that `provider` could not serve `model` with `e`.
    pub fn push(&mut self, provider: &str, model: &str, e: Error) {
        let keeps_chosen =
            !self.all.is_empty() && matches!(e, Error::NoProvider(_) | Error::Misconfigured(_));
        if !keeps_chosen {
            self.chosen = self.all.len();
        }
        self.all.push((provider.to_string(), model.to_string(), e));
    }

    /// Notes a failure that ends the request: it is the one reported.
    pub fn end_with(&mut self, provider: &str, model: &str, e: Error) {
        self.chosen = self.all.len();
        self.all.push((provider.to_string(), model.to_string(), e));
    }

    /// The error to answer with, and, when more than one endpoint failed, each one's
    /// error (the reported one first, then the others in the order they were tried) in
    /// the shape OpenRouter records a failed attempt: `code`, `message`,
    /// `provider_name`, `raw`, and the `model` it was for.
    pub fn into_error(mut self) -> (Error, Option<Vec<ProviderError>>) {
        if self.chosen >= self.all.len() {
            let none = Error::NoProvider("No provider could serve this request".into());
            return (none, None);
        }
        let (provider, model, chosen) = self.all.remove(self.chosen);
        let several = !self.all.is_empty();
        let list = several.then(|| {
            let first = std::iter::once((provider.as_str(), model.as_str(), &chosen));
            let rest = self.all.iter().map(|(p, m, e)| (p.as_str(), m.as_str(), e));
            first.chain(rest).map(|(p, m, e)| e.attempt(p, m)).collect()
        });
        (chosen, list)
    }
}

/// One endpoint's failure as OpenRouter records it in `metadata.provider_errors`
/// (fields in the order they are written: alphabetical, as the bodies always were).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderError {
    /// The upstream's own status where it answered, else the error's.
    pub code: u16,
    pub message: String,
    /// The model it was for.
    pub model: String,
    pub provider_name: String,
    /// The upstream's error body, cut to [`RAW_LIMIT`] bytes.
    pub raw: Option<String>,
}

/// OpenRouter's error body: `{"error": {code, message, metadata?}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenRouterError {
    pub error: ErrorObject,
}

/// The error of an OpenRouter body or stream chunk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorObject {
    pub code: u16,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ErrorMeta>,
}

/// An error's `metadata`, its fields written in alphabetical order as before.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ErrorMeta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_errors: Option<Vec<ProviderError>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

impl Error {
    /// This error as one failed attempt at `provider` for `model`: its status (the
    /// upstream's own, where it answered), message and raw upstream error.
    fn attempt(&self, provider: &str, model: &str) -> ProviderError {
        let code = match self {
            Error::Upstream {
                status: Some(s), ..
            } => *s,
            _ => self.status(),
        };
        let raw = match self {
            Error::RateLimited { raw, .. } | Error::Upstream { raw, .. } => raw.as_deref(),
            _ => None,
        };
        ProviderError {
            code,
            message: self.public_message(),
            provider_name: provider.to_string(),
            raw: raw.map(|r| truncate(r, RAW_LIMIT).to_string()),
            model: model.to_string(),
        }
    }

    /// OpenRouter's error body, with every failed endpoint's error in
    /// `metadata.provider_errors` when there are several.
    pub fn body_with(&self, provider_errors: Option<Vec<ProviderError>>) -> OpenRouterError {
        let mut body = self.body();
        if let Some(list) = provider_errors {
            let meta = body.error.metadata.get_or_insert_with(ErrorMeta::default);
            meta.provider_errors = Some(list);
        }
        body
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::BadRequest(format!("Invalid JSON body: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_has_openrouter_shape() {
        let e = Error::Upstream {
            provider: "openai".into(),
            message: "Provider returned error".into(),
            status: Some(500),
            raw: Some("boom".into()),
        };
        assert_eq!(e.status(), 502);
        assert_eq!(
            serde_json::to_value(e.body()).unwrap(),
            json!({"error": {"code": 502, "message": "Provider returned error",
                "metadata": {"provider_name": "openai", "raw": "boom"}}})
        );
    }

    #[test]
    fn rate_limit_carries_retry_after() {
        let e = Error::RateLimited {
            message: "slow down".into(),
            retry_after_secs: Some(7),
            provider: None,
            raw: None,
        };
        assert_eq!(e.status(), 429);
        assert_eq!(e.headers(), vec![("Retry-After", "7".to_string())]);
        assert!(e.body().error.metadata.is_none());
        assert!(!e.is_retryable());
    }

    #[test]
    fn internal_detail_stays_out_of_the_body() {
        let e = Error::Internal("account storage: SQLITE_FULL at /var/db".into());
        assert_eq!(e.status(), 500);
        assert_eq!(e.body().error.message, "Internal error");
        assert!(e.to_string().contains("SQLITE_FULL"));
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }

    fn upstream(provider: &str, status: u16, raw: &str) -> Error {
        Error::Upstream {
            provider: provider.into(),
            message: "Provider returned error".into(),
            status: Some(status),
            raw: Some(raw.into()),
        }
    }

    #[test]
    fn one_failure_is_answered_as_it_is() {
        let mut f = Failures::default();
        f.push("a", "m/1", upstream("a", 500, "boom"));
        let (e, list) = f.into_error();
        assert_eq!(e, upstream("a", 500, "boom"));
        assert_eq!(list, None);
        assert_eq!(e.body_with(list), e.body());
        let (none, list) = Failures::default().into_error();
        assert_eq!((none.status(), list), (503, None));
    }

    #[test]
    fn every_endpoints_error_is_kept_the_reported_one_first() {
        let mut f = Failures::default();
        f.push(
            "a",
            "m/1",
            Error::Timeout {
                provider: "a".into(),
            },
        );
        f.push("b", "m/1", upstream("b", 500, "boom"));
        // A provider without a key is listed, but not reported over a real failure.
        f.push("c", "m/2", Error::NoProvider("c has no key".into()));
        let (e, list) = f.into_error();
        assert_eq!(e, upstream("b", 500, "boom"));
        let body = serde_json::to_value(e.body_with(list)).unwrap();
        let err = &body["error"];
        // The top-level error is the one that was reported before.
        assert_eq!(err["code"], 502);
        assert_eq!(err["message"], "Provider returned error");
        assert_eq!(err["metadata"]["provider_name"], "b");
        assert_eq!(err["metadata"]["raw"], "boom");
        assert_eq!(
            err["metadata"]["provider_errors"],
            json!([
                {"code": 500, "message": "Provider returned error", "provider_name": "b", "raw": "boom", "model": "m/1"},
                {"code": 408, "message": "Request to a timed out", "provider_name": "a", "raw": null, "model": "m/1"},
                {"code": 503, "message": "c has no key", "provider_name": "c", "raw": null, "model": "m/2"},
            ])
        );
    }

    #[test]
    fn a_failure_that_ends_the_request_is_the_one_reported() {
        let mut f = Failures::default();
        f.push("a", "m/1", upstream("a", 503, "busy"));
        f.end_with("b", "m/2", Error::BadRequest("too long for b".into()));
        let (e, list) = f.into_error();
        assert_eq!(e, Error::BadRequest("too long for b".into()));
        let body = serde_json::to_value(e.body_with(list)).unwrap();
        // An error with no metadata of its own gets the list alone.
        let meta = body["error"]["metadata"].as_object().unwrap();
        assert_eq!(meta.keys().collect::<Vec<_>>(), ["provider_errors"]);
        assert_eq!(meta["provider_errors"][1]["raw"], "busy");
    }

    #[test]
    fn a_missing_key_first_is_reported_over_by_a_later_failure() {
        let mut f = Failures::default();
        f.push("a", "m/1", Error::Misconfigured("no key".into()));
        f.push(
            "b",
            "m/1",
            Error::Timeout {
                provider: "b".into(),
            },
        );
        assert_eq!(f.into_error().0.status(), 408);
    }
}

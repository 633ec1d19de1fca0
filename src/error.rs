//! The one error type of the gateway and its single mapping to an HTTP status and
//! OpenRouter's error body `{"error":{"code":..,"message":..,"metadata":{..}}}`.

use serde::Serialize;

mod availability;
pub use availability::{Availability, AvailabilityCode, Constraint, ExcludedBy, PreviousError};

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
        /// An overloaded upstream's `Retry-After` (503, Anthropic's 529), in seconds
        /// (32 bits: the variant is no larger than the others).
        retry_after_secs: Option<u32>,
    },
    /// No endpoint can serve the request right now.
    #[error("{0}")]
    NoProvider(String),
    /// Routing found no endpoint of the requested models that may serve the request,
    /// for the reason `availability` says (OpenRouter's `error.availability`). Made
    /// and answered in the isolate that routes, so never sent to an object (and its
    /// reading from JSON is not built into the worker).
    #[error("{message}")]
    #[serde(skip)]
    Unavailable {
        message: String,
        availability: Box<Availability>,
    },
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
    /// A provider refused the account's own key (BYOK: a 401, a 403 or Google's
    /// `API_KEY_INVALID`): the account's to fix, not the gateway's; a 401 with the
    /// provider named, never the key.
    #[error("{message}")]
    ByokRefused { provider: String, message: String },
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
            retry_after_secs: None,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::Unauthorized(_) | Error::ByokRefused { .. } => 401,
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
            Error::Unavailable { availability, .. } => availability.code.status(),
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
            Error::Upstream {
                retry_after_secs, ..
            } => retry_after_secs.map(u64::from),
            _ => None,
        }
    }

    /// An error's `metadata`: its `error_type` always, and what else it knows (the
    /// provider and its raw error, the session limit reached).
    pub fn metadata(&self) -> ErrorMeta {
        let mut meta = ErrorMeta {
            error_type: Some(self.error_type()),
            ..ErrorMeta::default()
        };
        let (provider, raw) = match self {
            Error::SessionLimit(message) => {
                let limit = message
                    .split_once('(')
                    .and_then(|(_, rest)| rest.split_once(')'))
                    .map_or("", |(limit, _)| limit);
                meta.limit = Some(limit.to_string());
                return meta;
            }
            Error::Timeout { provider } | Error::ByokRefused { provider, .. } => {
                (Some(provider), None)
            }
            Error::RateLimited { provider, raw, .. } => (provider.as_ref(), raw.as_ref()),
            Error::Upstream { provider, raw, .. } => (Some(provider), raw.as_ref()),
            _ => return meta,
        };
        meta.provider_name = provider.cloned();
        meta.raw = raw.map(|r| truncate(r, RAW_LIMIT).to_string());
        meta
    }

    /// The one mapping of every error, ours and the upstreams', onto OpenRouter's typed
    /// `error_type` (`session_limit_reached` is the gateway's own).
    pub fn error_type(&self) -> ErrorType {
        use ErrorType as T;
        match self {
            Error::BadRequest(m) if says_context_length(m) => T::ContextLengthExceeded,
            Error::BadRequest(_) | Error::MethodNotAllowed => T::InvalidRequest,
            Error::Unauthorized(_) | Error::ByokRefused { .. } => T::Authentication,
            Error::PaymentRequired(_) => T::PaymentRequired,
            Error::Forbidden(_) => T::PermissionDenied,
            Error::NotFound(_) => T::NotFound,
            Error::SessionLimit(_) => T::SessionLimitReached,
            Error::Timeout { .. } => T::Timeout,
            Error::PayloadTooLarge { .. } => T::PayloadTooLarge,
            Error::RateLimited { .. } => T::RateLimitExceeded,
            Error::Upstream {
                status, message, ..
            } => upstream_type(*status, message),
            Error::Unavailable { availability, .. } => match availability.code.status() {
                400 => T::InvalidRequest,
                429 => T::RateLimitExceeded,
                503 => T::ProviderOverloaded,
                _ => T::NotFound,
            },
            Error::NoProvider(_) => T::ProviderUnavailable,
            Error::Busy { .. } => T::ProviderOverloaded,
            Error::Misconfigured(_) | Error::Internal(_) => T::Server,
        }
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
            error: self.error_object(),
        }
    }

    /// The `error` of OpenRouter's bodies and stream chunks: its status, message,
    /// `availability` where routing found nothing to serve, and `metadata`.
    pub fn error_object(&self) -> ErrorObject {
        ErrorObject {
            code: self.status(),
            message: self.public_message(),
            availability: self.availability().cloned().map(Box::new),
            metadata: Some(self.metadata()),
        }
    }

    /// Why routing found no endpoint, where that is the error.
    pub fn availability(&self) -> Option<&Availability> {
        match self {
            Error::Unavailable { availability, .. } => Some(availability),
            _ => None,
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
/// over what came before it), and every endpoint's, for `metadata.provider_errors`,
/// `metadata.previous_errors` and `availability`.
#[derive(Debug, Default)]
pub struct Failures {
    /// (provider slug, model ID, error), in the order they came.
    all: Vec<(String, String, Error)>,
    chosen: usize,
    /// The model IDs the request named (`availability.requested_models`).
    requested: Vec<String>,
}

/// What an answer says beside its error when endpoints were tried: each endpoint's
/// error (`provider_errors`, the reported one first, raw bodies included), the slim
/// history of the attempts before the reported one (`previous_errors`), and the
/// availability code when every attempt failed for the same kind of reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trail {
    pub provider_errors: Option<Vec<ProviderError>>,
    pub previous_errors: Vec<PreviousError>,
    pub availability: Option<Box<Availability>>,
}

impl Trail {
    /// Whether it adds nothing to the error.
    pub fn is_empty(&self) -> bool {
        self.provider_errors.is_none()
            && self.previous_errors.is_empty()
            && self.availability.is_none()
    }
}

impl Failures {
    /// The failures of a request for `requested` (its `model`, then `models`).
    pub fn for_models(requested: Vec<String>) -> Self {
        Failures {
            requested,
            ..Failures::default()
        }
    }

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

    /// The error to answer with, and its trail: when more than one endpoint failed,
    /// each one's error (the reported one first, then the others in the order they were
    /// tried) in the shape OpenRouter records a failed attempt (`code`, `message`,
    /// `provider_name`, `raw`, and the `model` it was for), and the attempts before.
    pub fn into_error(mut self) -> (Error, Trail) {
        let availability = self.availability().map(Box::new);
        if self.chosen >= self.all.len() {
            let none = Error::NoProvider("No provider could serve this request".into());
            let trail = Trail {
                availability,
                ..Trail::default()
            };
            return (none, trail);
        }
        let previous_errors = (self.all.iter().enumerate())
            .filter(|(i, _)| *i != self.chosen)
            .map(|(_, (p, _, e))| e.previous(p))
            .collect();
        let (provider, model, chosen) = self.all.remove(self.chosen);
        let several = !self.all.is_empty();
        let provider_errors = several.then(|| {
            let first = std::iter::once((provider.as_str(), model.as_str(), &chosen));
            let rest = self.all.iter().map(|(p, m, e)| (p.as_str(), m.as_str(), e));
            first.chain(rest).map(|(p, m, e)| e.attempt(p, m)).collect()
        });
        let trail = Trail {
            provider_errors,
            previous_errors,
            availability,
        };
        (chosen, trail)
    }

    /// The availability code of failures that all had one kind of reason: every
    /// endpoint missing its key (`no_endpoints`), every one that answered 429
    /// (`capacity_exhausted`), or failing for a passing reason
    /// (`temporarily_unavailable`); none once one refused the request itself.
    fn availability(&self) -> Option<Availability> {
        let unset = |e: &Error| matches!(e, Error::NoProvider(_) | Error::Misconfigured(_));
        let tried: Vec<&Error> = (self.all.iter().map(|(_, _, e)| e))
            .filter(|e| !unset(e))
            .collect();
        let code = if tried.is_empty() {
            AvailabilityCode::NoEndpoints
        } else if tried.iter().all(|e| e.is_upstream_429()) {
            AvailabilityCode::CapacityExhausted
        } else if tried.iter().all(|e| e.is_retryable()) {
            AvailabilityCode::TemporarilyUnavailable
        } else {
            return None;
        };
        let mut a = Availability::new(code, self.requested.clone());
        a.retry_after = tried.iter().filter_map(|e| e.retry_after_secs()).min();
        for (p, _, _) in &self.all {
            if !a.affected_providers.contains(p) {
                a.affected_providers.push(p.clone());
            }
        }
        Some(a)
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
    pub availability: Option<Box<Availability>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ErrorMeta>,
}

/// OpenRouter's typed error codes (its `ApiErrorType`), stable across surfaces:
/// `error.metadata.error_type` (`error.error_type` on Messages, `error_type` on a failed
/// Response). `session_limit_reached` is the gateway's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    InvalidRequest,
    ContextLengthExceeded,
    PayloadTooLarge,
    Authentication,
    PaymentRequired,
    PermissionDenied,
    NotFound,
    SessionLimitReached,
    RateLimitExceeded,
    ProviderOverloaded,
    ProviderUnavailable,
    Timeout,
    Server,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Authentication => "authentication",
            Self::PaymentRequired => "payment_required",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::SessionLimitReached => "session_limit_reached",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::ProviderOverloaded => "provider_overloaded",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::Timeout => "timeout",
            Self::Server => "server",
        }
    }
}

/// Written as its name (one table of names in the worker, [`ErrorType::as_str`]'s).
impl Serialize for ErrorType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Whether a refusal's message says the prompt is longer than the model's context, as
/// the providers word it (OpenAI's "maximum context length", Anthropic's "prompt is too
/// long", Gemini's "exceeds the maximum number of tokens") and as routing does.
fn says_context_length(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "context length",
        "context_length",
        "context window",
        "prompt is too long",
        "exceeds the maximum number of tokens",
        "input is too long",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// The type of an upstream's failure, from its status (none for an error inside a
/// stream) and what it said.
fn upstream_type(status: Option<u16>, message: &str) -> ErrorType {
    use ErrorType as T;
    match status {
        Some(429) => T::RateLimitExceeded,
        Some(503 | 529) => T::ProviderOverloaded,
        Some(400 | 413 | 422) | None if says_context_length(message) => T::ContextLengthExceeded,
        None if message.to_ascii_lowercase().contains("overloaded") => T::ProviderOverloaded,
        Some(413) => T::PayloadTooLarge,
        Some(400 | 422) => T::InvalidRequest,
        Some(404) => T::NotFound,
        Some(408 | 504) => T::Timeout,
        _ => T::ProviderUnavailable,
    }
}

/// An error's `metadata`, its fields written in alphabetical order as before.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ErrorMeta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<ErrorType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_errors: Option<Vec<PreviousError>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_errors: Option<Vec<ProviderError>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

impl Error {
    /// The upstream's own status where it answered, else the error's.
    fn attempt_status(&self) -> u16 {
        match self {
            Error::Upstream {
                status: Some(s), ..
            } => *s,
            _ => self.status(),
        }
    }

    /// A provider's 429.
    fn is_upstream_429(&self) -> bool {
        matches!(
            self,
            Error::RateLimited {
                provider: Some(_),
                ..
            }
        )
    }

    /// This error as one failed attempt at `provider` for `model`: its status (the
    /// upstream's own, where it answered), message and raw upstream error.
    fn attempt(&self, provider: &str, model: &str) -> ProviderError {
        let raw = match self {
            Error::RateLimited { raw, .. } | Error::Upstream { raw, .. } => raw.as_deref(),
            _ => None,
        };
        ProviderError {
            code: self.attempt_status(),
            message: self.public_message(),
            provider_name: provider.to_string(),
            raw: raw.map(|r| truncate(r, RAW_LIMIT).to_string()),
            model: model.to_string(),
        }
    }

    /// This error as an earlier attempt at `provider` (`metadata.previous_errors`).
    fn previous(&self, provider: &str) -> PreviousError {
        let code = if self.is_upstream_429() {
            AvailabilityCode::CapacityExhausted.as_str()
        } else if matches!(self, Error::NoProvider(_) | Error::Misconfigured(_)) {
            AvailabilityCode::NoEndpoints.as_str()
        } else if self.is_retryable() {
            AvailabilityCode::TemporarilyUnavailable.as_str()
        } else {
            self.error_type().as_str()
        };
        PreviousError {
            provider: provider.to_string(),
            code,
            status: self.attempt_status(),
        }
    }

    /// OpenRouter's error body with what the endpoints tried add to it: every failed
    /// endpoint's error in `metadata.provider_errors` when there are several, the
    /// attempts before the reported one in `metadata.previous_errors`, and the
    /// `availability` their failures add up to.
    pub fn body_with(&self, trail: Trail) -> OpenRouterError {
        let mut body = self.body();
        let err = &mut body.error;
        let meta = err.metadata.get_or_insert_with(ErrorMeta::default);
        meta.provider_errors = trail.provider_errors;
        meta.previous_errors = (!trail.previous_errors.is_empty()).then_some(trail.previous_errors);
        if err.availability.is_none() {
            err.availability = trail.availability;
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
mod tests;

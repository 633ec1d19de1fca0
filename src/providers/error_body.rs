//! What an upstream's error body says, read into types: its message, and Google's
//! structured details (a refused API key, the delay its `RetryInfo` asks for).

use serde::Deserialize;

/// `{"error": "..."}`, `{"error": {"message": ..., "details": [...]}}` or a bare
/// `{"message": ...}`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    error: Option<ErrorField>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ErrorField {
    Text(String),
    Object {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        details: Vec<Detail>,
    },
    Other(serde::de::IgnoredAny),
}

/// One of Google's `google.rpc` details; only the fields read here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    #[serde(default, rename = "@type")]
    kind: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    retry_delay: Option<String>,
}

impl ErrorBody {
    /// The body read, or an empty one when it is not such JSON.
    pub(super) fn read(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// The upstream's message.
    pub(super) fn message(&self) -> Option<String> {
        match &self.error {
            Some(ErrorField::Text(s)) => Some(s.clone()),
            Some(ErrorField::Object { message, .. }) => message.clone(),
            Some(ErrorField::Other(_)) => None,
            None => self.message.clone(),
        }
    }

    fn details(&self) -> &[Detail] {
        match &self.error {
            Some(ErrorField::Object { details, .. }) => details,
            _ => &[],
        }
    }

    /// Whether Google refused the API key (400 INVALID_ARGUMENT, reason API_KEY_INVALID).
    pub(super) fn bad_key(&self) -> bool {
        self.details()
            .iter()
            .any(|d| d.reason.as_deref() == Some("API_KEY_INVALID"))
    }

    /// The whole seconds a `google.rpc.RetryInfo` detail asks to wait (`"37s"`,
    /// `"1.5s"` rounded up), like a `Retry-After` header.
    pub(super) fn retry_delay_secs(&self) -> Option<u64> {
        self.details()
            .iter()
            .filter(|d| d.kind.ends_with("google.rpc.RetryInfo"))
            .find_map(|d| duration_secs(d.retry_delay.as_deref()?))
    }
}

/// A protobuf JSON `Duration` (`"37s"`, `"0.5s"`) in whole seconds, rounded up.
fn duration_secs(s: &str) -> Option<u64> {
    let secs = s.trim().strip_suffix('s')?;
    let (whole, frac) = secs.split_once('.').unwrap_or((secs, ""));
    let whole: u64 = whole.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let up = u64::from(frac.bytes().any(|b| b != b'0'));
    Some(whole.saturating_add(up))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_messages_of_every_shape() {
        let m = |s: &str| ErrorBody::read(s.as_bytes()).message();
        assert_eq!(m(r#"{"error": "boom"}"#).as_deref(), Some("boom"));
        assert_eq!(
            m(r#"{"error": {"message": "bad"}}"#).as_deref(),
            Some("bad")
        );
        assert_eq!(m(r#"{"message": "bare"}"#).as_deref(), Some("bare"));
        assert_eq!(m(r#"{"error": 3}"#), None);
        assert_eq!(m("not json"), None);
    }

    #[test]
    fn reads_the_retry_delay_of_the_gemini_429_fixture() {
        let body = std::fs::read("tests/fixtures/gemini/error/error-429.json").unwrap();
        let e = ErrorBody::read(&body);
        assert_eq!(e.retry_delay_secs(), Some(37));
        assert!(!e.bad_key());
    }

    #[test]
    fn durations_round_up_and_refuse_nonsense() {
        assert_eq!(duration_secs("30s"), Some(30));
        assert_eq!(duration_secs("1.5s"), Some(2));
        assert_eq!(duration_secs("2.000s"), Some(2));
        assert_eq!(duration_secs("0.1s"), Some(1));
        assert_eq!(duration_secs("30"), None);
        assert_eq!(duration_secs("-1s"), None);
        assert_eq!(duration_secs("1.xs"), None);
    }
}

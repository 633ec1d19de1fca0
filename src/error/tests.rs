//! The error mapping: statuses, bodies, typed `error_type`, the failures of a
//! request's endpoints and the availability they add up to.

use super::*;
use serde_json::json;

#[test]
fn body_has_openrouter_shape() {
    let e = Error::Upstream {
        provider: "openai".into(),
        message: "Provider returned error".into(),
        status: Some(500),
        raw: Some("boom".into()),
        retry_after_secs: None,
    };
    assert_eq!(e.status(), 502);
    assert_eq!(
        serde_json::to_value(e.body()).unwrap(),
        json!({"error": {"code": 502, "message": "Provider returned error",
            "metadata": {"error_type": "provider_unavailable", "provider_name": "openai", "raw": "boom"}}})
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
    let meta = e.body().error.metadata.unwrap();
    assert_eq!(meta.error_type, Some(ErrorType::RateLimitExceeded));
    assert_eq!((meta.provider_name, meta.raw), (None, None));
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
        retry_after_secs: None,
    }
}

#[test]
fn one_failure_is_answered_as_it_is() {
    let mut f = Failures::default();
    f.push("a", "m/1", upstream("a", 500, "boom"));
    let (e, list) = f.into_error();
    assert_eq!(e, upstream("a", 500, "boom"));
    assert_eq!(list.provider_errors, None);
    assert_eq!(list.previous_errors, vec![]);
    // One 5xx: temporarily unavailable, and the body says so beside the error.
    let mut body = e.body_with(list.clone());
    assert_eq!(
        body.error
            .availability
            .take()
            .map(|a| (a.code, a.affected_providers)),
        Some((
            AvailabilityCode::TemporarilyUnavailable,
            vec!["a".to_string()]
        ))
    );
    assert_eq!(body, e.body());
    let (none, list) = Failures::default().into_error();
    assert_eq!(none.status(), 503);
    let code = list.availability.map(|a| a.code);
    assert_eq!(code, Some(AvailabilityCode::NoEndpoints));
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
    let body = serde_json::to_value(e.body_with(list.clone())).unwrap();
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
    let body = serde_json::to_value(e.body_with(list.clone())).unwrap();
    // An error with no metadata of its own gets its type and the lists alone.
    let meta = body["error"]["metadata"].as_object().unwrap();
    assert_eq!(
        meta.keys().collect::<Vec<_>>(),
        ["error_type", "previous_errors", "provider_errors"]
    );
    assert_eq!(meta["provider_errors"][1]["raw"], "busy");
    assert_eq!(
        meta["previous_errors"],
        json!([{"provider": "a", "code": "temporarily_unavailable", "status": 503}])
    );
    // A refusal of the request itself is no availability condition.
    assert!(body["error"].get("availability").is_none());
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

#[test]
fn every_error_has_one_type() {
    use ErrorType as T;
    let bad = |m: &str| Error::bad_request(m);
    let cases = [
        (bad("messages: is required"), T::InvalidRequest),
        (
            bad("This endpoint's maximum context length is 8192 tokens. However, you requested about 9000 tokens."),
            T::ContextLengthExceeded,
        ),
        (Error::MethodNotAllowed, T::InvalidRequest),
        (Error::Unauthorized("no key".into()), T::Authentication),
        (Error::PaymentRequired("broke".into()), T::PaymentRequired),
        (Error::Forbidden("no".into()), T::PermissionDenied),
        (Error::NotFound("Generation g not found".into()), T::NotFound),
        (
            Error::SessionLimit("Session limit reached (max_cost): spent".into()),
            T::SessionLimitReached,
        ),
        (Error::Timeout { provider: "a".into() }, T::Timeout),
        (Error::PayloadTooLarge { limit: 9 }, T::PayloadTooLarge),
        (
            Error::RateLimited {
                message: "free-models-per-min".into(),
                retry_after_secs: Some(3),
                provider: None,
                raw: None,
            },
            T::RateLimitExceeded,
        ),
        (Error::NoProvider("a has no key".into()), T::ProviderUnavailable),
        (
            Error::Busy {
                message: "media in flight".into(),
                retry_after_secs: 1,
            },
            T::ProviderOverloaded,
        ),
        (Error::Misconfigured("key refused".into()), T::Server),
        (Error::Internal("SQLITE_FULL".into()), T::Server),
    ];
    for (e, want) in cases {
        assert_eq!(e.error_type(), want, "{e:?}");
        let body = serde_json::to_value(e.body()).unwrap();
        assert_eq!(
            body["error"]["metadata"]["error_type"],
            want.as_str(),
            "{e:?}"
        );
    }
}

/// What the gateway makes of a provider's reply `status` with `body`.
fn from_upstream(status: u16, body: &str) -> Error {
    crate::providers::upstream_error("p", status, body.as_bytes(), None)
}

#[test]
fn upstream_failures_are_typed_by_status_and_what_they_say() {
    use ErrorType as T;
    let openai_context = r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
    let anthropic_context = r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#;
    let gemini_context = r#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#;
    let overloaded =
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let cases = [
        (400, openai_context, 400, T::ContextLengthExceeded),
        (400, anthropic_context, 400, T::ContextLengthExceeded),
        (400, gemini_context, 400, T::ContextLengthExceeded),
        (
            413,
            r#"{"error":{"message":"request too large"}}"#,
            400,
            T::PayloadTooLarge,
        ),
        (
            400,
            r#"{"error":{"message":"bad tool schema"}}"#,
            400,
            T::InvalidRequest,
        ),
        (
            422,
            r#"{"error":{"message":"unprocessable"}}"#,
            400,
            T::InvalidRequest,
        ),
        (
            404,
            r#"{"error":{"message":"model gone"}}"#,
            400,
            T::NotFound,
        ),
        (
            429,
            r#"{"error":{"message":"slow down"}}"#,
            429,
            T::RateLimitExceeded,
        ),
        (529, overloaded, 502, T::ProviderOverloaded),
        (
            503,
            r#"{"error":{"message":"Service Unavailable"}}"#,
            502,
            T::ProviderOverloaded,
        ),
        (
            500,
            r#"{"error":{"message":"boom"}}"#,
            502,
            T::ProviderUnavailable,
        ),
        (502, "<html>bad gateway</html>", 502, T::ProviderUnavailable),
        (504, "", 408, T::Timeout),
        (
            401,
            r#"{"error":{"message":"bad key sk-x"}}"#,
            503,
            T::Server,
        ),
    ];
    for (status, body, answered, want) in cases {
        let e = from_upstream(status, body);
        assert_eq!(
            (e.status(), e.error_type()),
            (answered, want),
            "{status} {body}"
        );
    }
    // An error inside a stream has no status: what it says types it.
    let mid = |m: &str| Error::upstream("p", format!("Provider returned error: {m}"));
    assert_eq!(mid("Overloaded").error_type(), T::ProviderOverloaded);
    assert_eq!(
        mid("context length exceeded").error_type(),
        T::ContextLengthExceeded
    );
    assert_eq!(
        mid("Provider disconnected").error_type(),
        T::ProviderUnavailable
    );
}

fn rate_limited(provider: &str, secs: Option<u64>) -> Error {
    Error::RateLimited {
        message: format!("Provider {provider} is rate limited"),
        retry_after_secs: secs,
        provider: Some(provider.into()),
        raw: Some("{}".into()),
    }
}

#[test]
fn every_endpoint_at_429_is_capacity_exhausted_with_the_least_wait() {
    let mut f = Failures::for_models(vec!["m/1".into(), "m/2".into()]);
    f.push("a", "m/1", rate_limited("a", Some(40)));
    f.push("b", "m/1", rate_limited("b", None));
    f.push("c", "m/2", rate_limited("c", Some(17)));
    let (e, trail) = f.into_error();
    assert_eq!(e, rate_limited("c", Some(17)));
    let body = serde_json::to_value(e.body_with(trail.clone())).unwrap();
    assert_eq!(
        body["error"]["availability"],
        json!({"code": "capacity_exhausted", "retryable": true, "retry_after": 17,
            "requested_models": ["m/1", "m/2"], "affected_providers": ["a", "b", "c"],
            "docs_url": "https://openrouter.ai/docs/api_reference/errors-and-debugging#capacity_exhausted"})
    );
    assert_eq!(
        body["error"]["metadata"]["previous_errors"],
        json!([
            {"provider": "a", "code": "capacity_exhausted", "status": 429},
            {"provider": "b", "code": "capacity_exhausted", "status": 429},
        ])
    );
    assert_eq!(
        body["error"]["metadata"]["error_type"],
        "rate_limit_exceeded"
    );
}

#[test]
fn failures_of_mixed_passing_kinds_are_temporarily_unavailable() {
    let mut f = Failures::for_models(vec!["m/1".into()]);
    f.push("a", "m/1", rate_limited("a", Some(5)));
    f.push("b", "m/1", upstream("b", 529, "overloaded"));
    // A provider without a key says nothing of the others' availability.
    f.push("c", "m/1", Error::NoProvider("c has no key".into()));
    f.push(
        "d",
        "m/1",
        Error::Timeout {
            provider: "d".into(),
        },
    );
    let (e, trail) = f.into_error();
    assert_eq!(e.status(), 408);
    let a = trail.availability.as_deref().unwrap();
    assert_eq!(a.code, AvailabilityCode::TemporarilyUnavailable);
    assert_eq!((a.retryable, a.retry_after), (true, Some(5)));
    assert_eq!(a.affected_providers, ["a", "b", "c", "d"]);
    let previous: Vec<(&str, &str, u16)> = (trail.previous_errors.iter())
        .map(|p| (p.provider.as_str(), p.code, p.status))
        .collect();
    assert_eq!(
        previous,
        [
            ("a", "capacity_exhausted", 429),
            ("b", "temporarily_unavailable", 529),
            ("c", "no_endpoints", 503),
        ]
    );
    // Only keys missing: no endpoint could be tried.
    let mut f = Failures::for_models(vec!["m/1".into()]);
    f.push("a", "m/1", Error::NoProvider("a has no key".into()));
    f.push("b", "m/1", Error::Misconfigured("b refused our key".into()));
    let code = f.into_error().1.availability.map(|a| a.code);
    assert_eq!(code, Some(AvailabilityCode::NoEndpoints));
}

#[test]
fn a_routing_refusal_carries_its_availability_and_status() {
    let a = Availability::new(AvailabilityCode::PrivacyRestricted, vec!["a/b".into()]);
    let e = Error::Unavailable {
        message: "No endpoints found matching your data policy".into(),
        availability: Box::new(Availability {
            excluded_by: vec![ExcludedBy::DataPolicyZdr],
            ..a
        }),
    };
    assert_eq!((e.status(), e.error_type()), (404, ErrorType::NotFound));
    assert!(!e.is_retryable());
    let body = serde_json::to_value(e.body()).unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": 404, "message": "No endpoints found matching your data policy",
            "availability": {"code": "privacy_restricted", "retryable": false,
                "requested_models": ["a/b"], "excluded_by": ["data_policy:zdr"],
                "docs_url": "https://openrouter.ai/docs/api_reference/errors-and-debugging#privacy_restricted"},
            "metadata": {"error_type": "not_found"}}})
    );
    // A trail does not replace the routing's own availability.
    let trail = Trail {
        availability: Some(Box::new(Availability::new(
            AvailabilityCode::NoEndpoints,
            vec![],
        ))),
        ..Trail::default()
    };
    assert_eq!(e.body_with(trail.clone()), e.body());
}

#[test]
fn overloaded_upstreams_say_when_to_come_back() {
    use crate::providers::upstream_error;
    let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let e = upstream_error("anthropic", 529, body, Some("30"));
    assert_eq!((e.status(), e.retry_after_secs()), (502, Some(30)));
    assert_eq!(e.headers(), vec![("Retry-After", "30".to_string())]);
    let e = upstream_error("openai", 503, b"{}", Some(" 12 "));
    assert_eq!(e.retry_after_secs(), Some(12));
    // Only an overloaded (or rate-limited) upstream's header is a wait.
    assert_eq!(
        upstream_error("openai", 500, b"{}", Some("9")).retry_after_secs(),
        None
    );
    assert_eq!(
        upstream_error("openai", 503, b"{}", Some("soon")).retry_after_secs(),
        None
    );
    // Every endpoint overloaded: the least wait any of them asked for.
    let mut f = Failures::for_models(vec!["m/1".into()]);
    f.push("a", "m/1", upstream_error("a", 529, body, Some("30")));
    f.push("b", "m/1", upstream_error("b", 503, b"{}", Some("8")));
    f.push("c", "m/1", upstream_error("c", 503, b"{}", None));
    let (e, trail) = f.into_error();
    let a = trail.availability.as_deref().unwrap();
    assert_eq!(a.code, AvailabilityCode::TemporarilyUnavailable);
    assert_eq!(a.retry_after, Some(8));
    assert_eq!(e.status(), 502);
}

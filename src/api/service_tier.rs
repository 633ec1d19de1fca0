//! The request's `service_tier`, as OpenRouter takes it: `flex` (cheaper, slower,
//! flex endpoints only), `priority` (or `fast`: priority endpoints first), `default`
//! (never a tier's endpoint, even under `:nitro` or `:floor`) and `auto` (as if
//! absent). Routing admits and orders the tiers' endpoints by it
//! (`routing::tiers`); the upstream is sent the tier of the endpoint chosen.

use serde_json::Value;

use super::ChatRequest;
use crate::error::{Error, Result};

/// What a request asks of the service tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Auto,
    Default,
    Flex,
    Priority,
}

const NAMES: [&str; 5] = ["auto", "default", "flex", "priority", "fast"];

/// The request's `service_tier`; `None` when absent (or null).
pub fn asked(req: &ChatRequest) -> Option<Asked> {
    match req.extra.get("service_tier")?.as_str()? {
        "default" => Some(Asked::Default),
        "flex" => Some(Asked::Flex),
        "priority" | "fast" => Some(Asked::Priority),
        _ => Some(Asked::Auto),
    }
}

/// A `service_tier` that is not one of the names is refused, naming the field.
pub fn check(req: &ChatRequest) -> Result<()> {
    match req.extra.get("service_tier") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if NAMES.contains(&s.as_str()) => Ok(()),
        Some(_) => Err(Error::bad_request(format!(
            "service_tier: must be one of {}",
            NAMES.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(tier: Value) -> ChatRequest {
        serde_json::from_value(json!({"model": "a/b", "messages": [{"role": "user", "content": "hi"}], "service_tier": tier}))
            .unwrap()
    }

    #[test]
    fn names() {
        assert_eq!(asked(&req(json!("fast"))), Some(Asked::Priority));
        assert_eq!(asked(&req(json!("flex"))), Some(Asked::Flex));
        assert_eq!(asked(&req(json!("default"))), Some(Asked::Default));
        assert_eq!(asked(&req(json!("auto"))), Some(Asked::Auto));
        assert_eq!(asked(&req(json!(null))), None);
        assert!(check(&req(json!("priority"))).is_ok());
        let e = check(&req(json!("turbo"))).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.public_message()
                .starts_with("service_tier: must be one of"),
            "{}",
            e.public_message()
        );
        assert!(check(&req(json!(3))).is_err());
    }
}

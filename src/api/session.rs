//! A request's session (issue 24): its ID (`session_id` in the body, `x-session-id`,
//! `metadata.session_id` on Messages) and the limits it asks for (`session_limits` in
//! the body, or `X-Session-Limits: max_cost=2.50,max_requests=200`), read once, before
//! anything is reserved: a bad value is a 400 naming its field.

use serde_json::Value;

use super::surface::Incoming;
use crate::error::{Error, Result};
use crate::money::picos_from_usd_text;

/// The longest session ID (bytes).
pub const MAX_SESSION_ID_BYTES: usize = 256;

/// What a session may spend, make and last. `None`: no limit of that kind. On the
/// wire (a key's `session_limits_default`) its text ([`SessionLimits::to_text`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct SessionLimits {
    /// Picodollars.
    pub max_cost: Option<u64>,
    pub max_requests: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_duration_s: Option<u64>,
}

/// Numbers as text joined by `,`, `None` empty: how sessions go over the wire and
/// into storage (a serde visitor per shape costs the wasm a kilobyte or two each).
pub fn join_numbers(v: &[Option<u64>]) -> String {
    let mut out = String::new();
    for (i, n) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if let Some(n) = n {
            out.push_str(&n.to_string());
        }
    }
    out
}

/// [`join_numbers`] read back: None when a field is not a number.
pub fn split_numbers(text: &str) -> Option<Vec<Option<u64>>> {
    text.split(',')
        .map(|f| match f {
            "" => Some(None),
            n => n.parse().ok().map(Some),
        })
        .collect()
}

impl SessionLimits {
    /// The four limits as [`join_numbers`] text.
    pub fn to_text(&self) -> String {
        join_numbers(&[
            self.max_cost,
            self.max_requests,
            self.max_tokens,
            self.max_duration_s,
        ])
    }

    /// [`Self::to_text`] read back.
    pub fn from_text(text: &str) -> Option<Self> {
        match split_numbers(text)?.as_slice() {
            [c, r, t, d] => Some(SessionLimits {
                max_cost: *c,
                max_requests: *r,
                max_tokens: *t,
                max_duration_s: *d,
            }),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == SessionLimits::default()
    }

    /// These limits lowered by `to`: each field the lower of the two, one set in only
    /// one of them kept (a request may only tighten a session).
    pub fn lowered(self, to: SessionLimits) -> SessionLimits {
        let low = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        SessionLimits {
            max_cost: low(self.max_cost, to.max_cost),
            max_requests: low(self.max_requests, to.max_requests),
            max_tokens: low(self.max_tokens, to.max_tokens),
            max_duration_s: low(self.max_duration_s, to.max_duration_s),
        }
    }

    /// Sets field `name` from its text (`where` names it in the 400).
    fn set(&mut self, name: &str, text: &str, at: &str) -> Result<()> {
        let bad = |rule: &str| Error::bad_request(format!("{at}{name}: {rule}"));
        if name == "max_cost" {
            let picos = picos_from_usd_text(text)
                .ok_or_else(|| bad("must be a non-negative USD amount, e.g. \"2.50\""))?;
            self.max_cost = Some(picos);
            return Ok(());
        }
        let slot =
            match name {
                "max_requests" => &mut self.max_requests,
                "max_tokens" => &mut self.max_tokens,
                "max_duration_s" => &mut self.max_duration_s,
                _ => return Err(bad(
                    "unknown limit (expected max_cost, max_requests, max_tokens, max_duration_s)",
                )),
            };
        let n: u64 = text
            .trim()
            .parse()
            .map_err(|_| bad("must be a non-negative integer"))?;
        *slot = Some(n);
        Ok(())
    }

    /// `session_limits` as a body carries it: an object of the four limits, `max_cost`
    /// as decimal text (or a number), the others as integers; a null one unset.
    pub fn from_body(v: &Value) -> Result<SessionLimits> {
        Ok(LimitsPatch::from_body(v, "session_limits")?.set)
    }

    /// Sets field `name` from its JSON value (`at` names it in the 400); false for null.
    fn set_value(&mut self, name: &str, value: &Value, at: &str) -> Result<bool> {
        let text = match value {
            Value::Null => {
                return match bit(name) {
                    Some(_) => Ok(false),
                    None => self.set(name, "", at).map(|()| false),
                }
            }
            Value::String(s) if name == "max_cost" => s.clone(),
            Value::Number(n) => n.to_string(),
            _ if name == "max_cost" => {
                return Err(Error::bad_request(format!(
                    "{at}{name}: must be a USD amount as decimal text, e.g. \"2.50\""
                )))
            }
            _ => "-".into(),
        };
        self.set(name, &text, at)?;
        Ok(true)
    }

    /// These limits changed by `p` (`PATCH /sessions/{id}`, which may raise them): each
    /// field it sets replaced, each it removes unset, the others kept.
    pub fn patched(self, p: &LimitsPatch) -> SessionLimits {
        let f = |name: &str, old: Option<u64>, new: Option<u64>| match bit(name) {
            Some(b) if p.removed & b != 0 => None,
            _ => new.or(old),
        };
        let s = &p.set;
        SessionLimits {
            max_cost: f("max_cost", self.max_cost, s.max_cost),
            max_requests: f("max_requests", self.max_requests, s.max_requests),
            max_tokens: f("max_tokens", self.max_tokens, s.max_tokens),
            max_duration_s: f("max_duration_s", self.max_duration_s, s.max_duration_s),
        }
    }

    /// `X-Session-Limits: max_cost=2.50,max_requests=200`.
    pub fn from_header(text: &str) -> Result<SessionLimits> {
        let mut l = SessionLimits::default();
        let at = "X-Session-Limits: ";
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| {
                Error::bad_request(format!(
                    "{at}\"{}\" is not name=value",
                    crate::error::truncate(part, 64)
                ))
            })?;
            l.set(name.trim(), value, at)?;
        }
        Ok(l)
    }
}

/// The bit of limit `name` in [`LimitsPatch::removed`].
fn bit(name: &str) -> Option<u8> {
    match name {
        "max_cost" => Some(1),
        "max_requests" => Some(2),
        "max_tokens" => Some(4),
        "max_duration_s" => Some(8),
        _ => None,
    }
}

impl From<SessionLimits> for String {
    fn from(l: SessionLimits) -> String {
        l.to_text()
    }
}

impl TryFrom<String> for SessionLimits {
    type Error = &'static str;
    fn try_from(s: String) -> std::result::Result<Self, Self::Error> {
        SessionLimits::from_text(&s).ok_or("not session limits")
    }
}

/// A change of a session's limits (`PATCH /sessions/{id}`, a key's
/// `session_limits_default`): the limits it sets, and those it removes (set to null).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsPatch {
    pub set: SessionLimits,
    /// `max_cost` 1, `max_requests` 2, `max_tokens` 4, `max_duration_s` 8.
    pub removed: u8,
}

impl LimitsPatch {
    /// Field `field` of a body (`session_limits`, `session_limits_default`): an object
    /// of the four limits; null removes one.
    pub fn from_body(v: &Value, field: &str) -> Result<LimitsPatch> {
        let at = format!("{field}.");
        let o = v.as_object().ok_or_else(|| {
            Error::bad_request(format!(
                "{field}: must be an object of max_cost, max_requests, max_tokens, max_duration_s"
            ))
        })?;
        let mut p = LimitsPatch::default();
        for (name, value) in o {
            if !p.set.set_value(name, value, &at)? {
                p.removed |= bit(name).unwrap_or(0);
            }
        }
        Ok(p)
    }
}

/// The session a request names, and the limits it asks for. On the wire one string:
/// the limits' text (empty without), `|`, the ID.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct SessionAsk {
    pub id: String,
    pub limits: Option<SessionLimits>,
}

impl From<SessionAsk> for String {
    fn from(a: SessionAsk) -> String {
        let limits = a.limits.map(|l| l.to_text()).unwrap_or_default();
        format!("{limits}|{}", a.id)
    }
}

impl TryFrom<String> for SessionAsk {
    type Error = &'static str;
    fn try_from(s: String) -> std::result::Result<Self, Self::Error> {
        let (limits, id) = s.split_once('|').ok_or("not a session")?;
        let limits = match limits {
            "" => None,
            l => Some(SessionLimits::from_text(l).ok_or("not session limits")?),
        };
        Ok(SessionAsk {
            id: id.to_string(),
            limits,
        })
    }
}

/// A session ID as a request may send it: 1 to 256 bytes, no control characters.
pub fn check_id(id: &str, field: &str) -> Result<()> {
    if id.len() > MAX_SESSION_ID_BYTES {
        return Err(Error::bad_request(format!(
            "{field}: at most {MAX_SESSION_ID_BYTES} bytes"
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(Error::bad_request(format!(
            "{field}: must not contain control characters"
        )));
    }
    Ok(())
}

/// The request's session, from its body (`session_id`, or `metadata.session_id` on
/// Messages; `session_limits`) or its headers (`x-session-id`, `X-Session-Limits`);
/// the body's first. None without an ID (limits alone are a 400: they need a session).
pub fn read(
    incoming: &Incoming,
    header_id: Option<&str>,
    header_limits: Option<&str>,
) -> Result<Option<SessionAsk>> {
    let native = incoming.native.as_ref();
    let body = |name: &str| {
        incoming
            .chat
            .extra
            .get(name)
            .or_else(|| native.and_then(|n| n.get(name)))
    };
    let from_meta = native
        .and_then(|n| n.get("metadata"))
        .and_then(|m| m.get("session_id"));
    let id = match (body("session_id"), from_meta) {
        (Some(Value::String(s)), _) => Some((s.as_str(), "session_id")),
        (Some(Value::Null) | None, Some(Value::String(s))) => {
            Some((s.as_str(), "metadata.session_id"))
        }
        (Some(Value::Null) | None, Some(Value::Null) | None) => {
            header_id.map(|h| (h, "x-session-id"))
        }
        (Some(_), _) => return Err(Error::bad_request("session_id: must be a string")),
        (_, Some(_)) => return Err(Error::bad_request("metadata.session_id: must be a string")),
    };
    let limits = match (body("session_limits"), header_limits) {
        (Some(v), _) if !v.is_null() => Some(SessionLimits::from_body(v)?),
        (_, Some(h)) => Some(SessionLimits::from_header(h)?),
        _ => None,
    };
    let Some((id, field)) = id.filter(|(s, _)| !s.is_empty()) else {
        if limits.is_some() {
            return Err(Error::bad_request(
                "session_limits: needs a session_id (or an x-session-id header)",
            ));
        }
        return Ok(None);
    };
    check_id(id, field)?;
    Ok(Some(SessionAsk {
        id: id.to_string(),
        limits: limits.filter(|l| !l.is_empty()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::surface::Surface;
    use serde_json::json;

    fn chat(body: Value) -> Incoming {
        Surface::Chat.parse(body.to_string().as_bytes()).unwrap()
    }

    fn msgs(body: Value) -> Incoming {
        Surface::Messages
            .parse(body.to_string().as_bytes())
            .unwrap()
    }

    const MSG: &str = "hi";

    #[test]
    fn a_session_is_read_from_the_body_the_headers_or_messages_metadata() {
        let base = json!({"model": "m", "messages": [{"role": "user", "content": MSG}]});
        let mut b = base.clone();
        b["session_id"] = json!("s-1");
        b["session_limits"] = json!({"max_cost": "2.50", "max_requests": 200, "max_tokens": 2000000, "max_duration_s": 86400});
        let s = read(&chat(b), Some("ignored"), None).unwrap().unwrap();
        assert_eq!(s.id, "s-1");
        let l = s.limits.unwrap();
        assert_eq!(l.max_cost, Some(2_500_000_000_000));
        assert_eq!(
            (l.max_requests, l.max_tokens, l.max_duration_s),
            (Some(200), Some(2_000_000), Some(86_400))
        );
        let h = read(
            &chat(base.clone()),
            Some("h-1"),
            Some("max_cost=0.10, max_requests=3"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.id, "h-1");
        assert_eq!(h.limits.unwrap().max_cost, Some(100_000_000_000));
        assert_eq!(read(&chat(base), None, None).unwrap(), None);
        let m = json!({"model": "m", "max_tokens": 5, "metadata": {"session_id": "m-1"},
                       "messages": [{"role": "user", "content": MSG}]});
        assert_eq!(read(&msgs(m), None, None).unwrap().unwrap().id, "m-1");
    }

    #[test]
    fn bad_values_are_a_400_naming_the_field() {
        let base = json!({"model": "m", "messages": [{"role": "user", "content": MSG}], "session_id": "s"});
        let cases = [
            (json!({"max_cost": "lots"}), "session_limits.max_cost"),
            (json!({"max_cost": -1}), "session_limits.max_cost"),
            (json!({"max_requests": 1.5}), "session_limits.max_requests"),
            (json!({"max_tokens": "9"}), "session_limits.max_tokens"),
            (json!({"max_wishes": 3}), "session_limits.max_wishes"),
            (json!(7), "session_limits"),
        ];
        for (limits, field) in cases {
            let mut b = base.clone();
            b["session_limits"] = limits;
            let e = read(&chat(b), None, None).unwrap_err();
            assert!(
                matches!(&e, Error::BadRequest(m) if m.starts_with(field)),
                "{e}"
            );
        }
        let e = read(&chat(base.clone()), None, Some("max_cost")).unwrap_err();
        assert!(e.to_string().starts_with("X-Session-Limits"), "{e}");
        let long = "x".repeat(257);
        let e = read(
            &chat(
                json!({"model": "m", "messages": [{"role": "user", "content": MSG}], "session_id": long}),
            ),
            None,
            None,
        );
        assert!(e
            .unwrap_err()
            .to_string()
            .starts_with("session_id: at most 256"));
        let e = read(
            &chat(json!({"model": "m", "messages": [{"role": "user", "content": MSG}]})),
            Some(&long),
            None,
        );
        assert!(e.unwrap_err().to_string().starts_with("x-session-id"));
        let e = read(
            &chat(
                json!({"model": "m", "messages": [{"role": "user", "content": MSG}], "session_limits": {"max_requests": 1}}),
            ),
            None,
            None,
        );
        assert!(e.unwrap_err().to_string().contains("needs a session_id"));
    }

    #[test]
    fn an_ask_goes_over_the_wire_as_it_was() {
        let ask = SessionAsk {
            id: "a|b,c".into(),
            limits: Some(SessionLimits {
                max_cost: Some(5),
                max_tokens: Some(0),
                ..Default::default()
            }),
        };
        let text = serde_json::to_string(&ask).unwrap();
        assert_eq!(text, "\"5,,0,|a|b,c\"");
        assert_eq!(serde_json::from_str::<SessionAsk>(&text).unwrap(), ask);
        let bare = SessionAsk {
            id: "x".into(),
            limits: None,
        };
        let back: SessionAsk =
            serde_json::from_str(&serde_json::to_string(&bare).unwrap()).unwrap();
        assert_eq!(back, bare);
        assert!(serde_json::from_str::<SessionAsk>("\"1,2|x\"").is_err());
    }

    #[test]
    fn limits_are_only_lowered_by_requests_and_replaced_by_a_patch() {
        let set = SessionLimits {
            max_cost: Some(10),
            max_requests: Some(5),
            max_duration_s: Some(60),
            ..Default::default()
        };
        let ask = SessionLimits {
            max_cost: Some(20),
            max_requests: Some(2),
            max_tokens: Some(7),
            ..Default::default()
        };
        let low = set.lowered(ask);
        assert_eq!(
            (low.max_cost, low.max_requests, low.max_tokens),
            (Some(10), Some(2), Some(7))
        );
        let p = LimitsPatch::from_body(
            &json!({"max_cost": "20", "max_requests": 2, "max_duration_s": null}),
            "session_limits",
        )
        .unwrap();
        assert_eq!(p.removed, 8);
        let up = set.patched(&p);
        assert_eq!(
            up,
            SessionLimits {
                max_cost: Some(20_000_000_000_000),
                max_requests: Some(2),
                max_tokens: None,
                max_duration_s: None,
            }
        );
        let l: SessionLimits = serde_json::from_str("\"1,,3,\"").unwrap();
        assert_eq!((l.max_cost, l.max_tokens), (Some(1), Some(3)));
        for (bad, field) in [
            (json!({"max_wishes": null}), "session_limits.max_wishes"),
            (json!({"max_tokens": -1}), "session_limits.max_tokens"),
            (json!({"max_cost": true}), "session_limits.max_cost"),
            (json!([1]), "session_limits"),
        ] {
            let e = LimitsPatch::from_body(&bad, "session_limits").unwrap_err();
            assert!(e.to_string().starts_with(field), "{e}");
        }
    }
}

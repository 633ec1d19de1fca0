//! The tool calls of one stream, whatever its family: each call keeps one `index` of
//! its own (upstreams that number two calls alike, or number them per content block,
//! would otherwise have a client join them), and, for a request that offers tools, its
//! name and arguments are kept to be checked when the stream ends
//! ([`crate::api::tool_check`]).

use crate::api::request::Tool;
use crate::api::tool_check::{self, ToolTally};
use crate::api::ToolCallDelta;

#[derive(Debug, Default)]
struct Call {
    /// The choice and the upstream's own index of the call.
    choice: u32,
    upstream: u32,
    id: Option<String>,
    name: String,
    arguments: String,
}

/// The calls seen so far, in the order they began.
#[derive(Debug, Default)]
pub struct ToolCalls {
    calls: Vec<Call>,
    /// The request's tools; none: calls are numbered, not kept or checked.
    tools: Option<Vec<Tool>>,
}

impl ToolCalls {
    pub fn checking(tools: Vec<Tool>) -> Self {
        ToolCalls {
            calls: Vec::new(),
            tools: Some(tools),
        }
    }

    /// One piece of a call in choice `choice`: its `index` rewritten to the call's own.
    /// A piece with an ID not seen yet begins a call; one without an ID goes on with the
    /// latest call of its upstream index (or begins one if there is none).
    pub fn piece(&mut self, choice: u32, t: &mut ToolCallDelta) {
        let upstream = t.index;
        let mine = |c: &&mut Call| c.choice == choice;
        let found = match t.id.as_deref() {
            Some(id) => self
                .calls
                .iter()
                .position(|c| c.choice == choice && c.id.as_deref() == Some(id)),
            None => self
                .calls
                .iter()
                .rposition(|c| c.choice == choice && c.upstream == upstream),
        };
        let at = match found {
            Some(at) => at,
            None => {
                self.calls.push(Call {
                    choice,
                    upstream,
                    id: t.id.clone(),
                    ..Default::default()
                });
                self.calls.len().saturating_sub(1)
            }
        };
        // Its index is its place among the calls of its choice.
        let index = self.calls.iter_mut().take(at).filter(mine).count();
        t.index = u32::try_from(index).unwrap_or(u32::MAX);
        if self.tools.is_none() {
            return;
        }
        let (Some(call), Some(f)) = (self.calls.get_mut(at), t.function.as_ref()) else {
            return;
        };
        if let Some(name) = f.name.as_deref().filter(|_| call.name.is_empty()) {
            call.name = name.to_string();
        }
        if let Some(args) = f.arguments.as_deref() {
            call.arguments.push_str(args);
        }
    }

    /// The calls checked against the request's tools (nothing without tools).
    pub fn tally(&self) -> ToolTally {
        let Some(tools) = &self.tools else {
            return ToolTally::default();
        };
        let calls = self
            .calls
            .iter()
            .map(|c| (c.name.as_str(), c.arguments.as_str()));
        tool_check::tally(tools, calls)
    }
}

impl super::ChatStream {
    /// Keeps the stream's tool calls to check against the request's `tools`
    /// ([`super::ChatStream::tool_tally`]).
    pub fn with_tools(mut self, tools: Option<&[Tool]>) -> Self {
        if let Some(t) = tools.filter(|t| !t.is_empty()) {
            self.tool_calls = ToolCalls::checking(t.to_vec());
        }
        self
    }

    /// The stream's tool calls checked against the request's tools.
    pub fn tool_tally(&self) -> ToolTally {
        self.tool_calls.tally()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FunctionCallDelta;

    fn piece(index: u32, id: Option<&str>, name: Option<&str>, args: &str) -> ToolCallDelta {
        ToolCallDelta {
            index,
            id: id.map(str::to_string),
            kind: None,
            function: Some(FunctionCallDelta {
                name: name.map(str::to_string),
                arguments: Some(args.to_string()),
            }),
        }
    }

    #[test]
    fn duplicate_indexes_are_made_distinct_and_calls_checked() {
        let tools: Vec<Tool> = serde_json::from_value(serde_json::json!([
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "required": ["a"]}}}
        ]))
        .unwrap();
        let mut t = ToolCalls::checking(tools);
        // Two calls the upstream both numbers 0, a third numbered 5, in pieces.
        let mut seen = Vec::new();
        for mut p in [
            piece(0, Some("c1"), Some("f"), "{\"a\""),
            piece(0, None, None, ":1}"),
            piece(0, Some("c2"), Some("f"), "{}"),
            piece(5, Some("c3"), Some("g"), ""),
            piece(0, None, None, ""),
            piece(5, None, None, "{}"),
        ] {
            t.piece(0, &mut p);
            seen.push(p.index);
        }
        assert_eq!(seen, [0, 0, 1, 2, 1, 2]);
        // c2 misses `a`; c3 names no tool: the reply failed.
        assert_eq!(t.tally(), ToolTally { ok: 0, failed: 1 });
        // Another choice numbers its own calls from 0.
        let mut p = piece(0, Some("d1"), Some("f"), "{\"a\":2}");
        t.piece(1, &mut p);
        assert_eq!(p.index, 0);
        // One reply of good calls passes.
        let tools = t.tools.clone().unwrap();
        let mut good = ToolCalls::checking(tools);
        for mut p in [
            piece(0, Some("c1"), Some("f"), "{\"a\":1}"),
            piece(0, Some("c2"), Some("f"), "{\"a\":2}"),
        ] {
            good.piece(0, &mut p);
        }
        assert_eq!(good.tally(), ToolTally { ok: 1, failed: 0 });
        // Without tools calls are numbered, not checked.
        let mut plain = ToolCalls::default();
        let mut p = piece(3, Some("x"), Some("f"), "nonsense");
        plain.piece(0, &mut p);
        assert_eq!((p.index, plain.tally()), (0, ToolTally::default()));
    }
}

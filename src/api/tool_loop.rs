//! The server-tool loop, sans I/O: what each inner model call is asked (the client's
//! request, its server tools offered as functions, the calls and results so far), what
//! a reply asks of the gateway next (run these server calls, or answer), the bounds
//! (`max_tool_calls`, each tool's `max_uses`, `stop_server_tools_when`), and the
//! client's reply made of the last one (citations as `url_citation` annotations,
//! `usage.server_tool_use`, the inner calls' usage summed). The edge runs the calls
//! and the model (`edge::pipeline::tool_loop`).
//!
//! A turn whose reply also calls the client's own functions goes back to the client
//! with them; the server-tool part of the turn travels in the assistant message's
//! `reasoning_details` as one opaque item ([`REPLAY_FORMAT`]) and is put back in place
//! when the client sends the message again.

use serde_json::{json, Value};

use super::native_search::NativeSearch;
use super::server_tools::{Citation, ServerCall, ServerTool, ServerToolUse, ToolOutput};
use super::server_turn::{Fetch, McpCall, Search, Turn};
use super::{ChatCompletion, ChatRequest, Content, FunctionCall, Message, Role, Tool, ToolCall};
use super::{FunctionDef, Usage};

/// The `format` of the `reasoning_details` item that carries a turn's server calls.
pub const REPLAY_FORMAT: &str = "modelmux-server-tools-v1";

/// The bounds of one request's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Server calls in all (`max_tool_calls`, 1..=30, default 30).
    pub max_tool_calls: u64,
    /// Model calls that may run server tools (`stop_server_tools_when.max_steps`).
    pub max_steps: u64,
    /// Picodollars the loop may spend before it stops running tools
    /// (`stop_server_tools_when.max_cost`).
    pub max_cost: Option<u128>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tool_calls: super::server_tools::MAX_TOOL_CALLS,
            max_steps: super::server_tools::MAX_TOOL_CALLS,
            max_cost: None,
        }
    }
}

/// `max_tool_calls` (1..=30) and `stop_server_tools_when: {max_steps, max_cost}` of a
/// request with server tools (without, `max_tool_calls` goes upstream as sent).
pub(crate) fn read_limits(f: &mut super::read::Fields) -> super::read::Read<Limits> {
    use super::read::{object, whole, Bad, Fields};
    let mut limits = Limits::default();
    let max = super::server_tools::MAX_TOOL_CALLS;
    let bounded = |v: Value| match whole(v)? {
        n if (1..=max).contains(&n) => Ok(n),
        n => Err(Bad::new(format!("must be between 1 and {max}, not {n}"))),
    };
    if let Some(n) = f.read("max_tool_calls", &bounded)? {
        limits.max_tool_calls = n;
    }
    let stop = f.read("stop_server_tools_when", &|v| {
        let mut s: Fields = object(v)?;
        let steps = s.read("max_steps", &bounded)?;
        let cost = s.read("max_cost", &|v| {
            let text = v.to_string();
            crate::money::picos_from_usd_text(text.trim_matches('"'))
                .map(u128::from)
                .ok_or_else(|| Bad::new(format!("must be an amount of USD, not {text}")))
        })?;
        Ok((steps, cost))
    })?;
    if let Some((steps, cost)) = stop {
        limits.max_steps = steps.unwrap_or(limits.max_steps);
        limits.max_cost = cost;
    }
    Ok(limits)
}

/// What the gateway does after a model call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The reply is the answer.
    Answer,
    /// Run these calls (with the tool each is for, by index); `client` when the reply
    /// also called the client's functions (the turn then ends with those).
    Run {
        calls: Vec<(usize, ServerCall)>,
        client: bool,
    },
}

/// One request's loop so far.
#[derive(Debug, Clone, Default)]
pub struct Loop {
    pub limits: Limits,
    pub tools: Vec<ServerTool>,
    /// The functions the server tools are offered as (an MCP server's included).
    pub functions: Vec<FunctionDef>,
    /// The annotations MCP servers gave their tools, by function name (for the
    /// listings Responses shows).
    pub tool_annotations: Vec<(String, Value)>,
    /// The assistant messages with server calls and their tool messages, in order.
    pub transcript: Vec<Message>,
    /// Model calls made.
    pub steps: u64,
    /// Server calls run, in all and per tool.
    pub calls: u64,
    uses: Vec<u64>,
    pub usage: ServerToolUse,
    pub citations: Vec<Citation>,
    /// The searches run, in order (for the surfaces' reply writers).
    pub searches: Vec<Search>,
    /// The fetches run, in order.
    pub fetches: Vec<Fetch>,
    /// The MCP calls made, in order (for the surfaces' reply writers).
    pub mcp_calls: Vec<McpCall>,
    /// The inner calls' usage, summed.
    pub inner_usage: Option<Usage>,
    /// Picodollars spent: the models' cost and the tools'.
    pub cost: u128,
    /// Why the loop stopped running tools, once it did.
    pub stopped: Option<&'static str>,
    /// Searches the endpoints ran themselves (native), of `usage.web_search_requests`.
    native_searches: u64,
    /// The gateway's own searches billed with a model call so far.
    billed_searches: u64,
}

impl Loop {
    pub fn new(tools: Vec<ServerTool>, limits: Limits) -> Loop {
        Loop {
            uses: vec![0; tools.len()],
            tools,
            limits,
            ..Loop::default()
        }
    }

    /// Whether another model call may still run server tools.
    /// The web searches the loop may still run: each web_search tool's unused
    /// `max_uses`, within the calls `max_tool_calls` leaves (none once tools are closed).
    pub fn searches_left(&self) -> u64 {
        if !self.tools_open() {
            return 0;
        }
        let per_tool: u64 = self
            .tools
            .iter()
            .zip(&self.uses)
            .filter(|(t, _)| matches!(t, ServerTool::WebSearch(_)))
            .map(|(t, used)| t.max_uses().saturating_sub(*used))
            .fold(0, u64::saturating_add);
        per_tool.min(self.limits.max_tool_calls.saturating_sub(self.calls))
    }

    pub fn tools_open(&self) -> bool {
        self.stopped.is_none()
    }

    fn check_bounds(&mut self) {
        if self.stopped.is_some() {
            return;
        }
        self.stopped = if self.calls >= self.limits.max_tool_calls {
            Some("max_tool_calls")
        } else if self.steps >= self.limits.max_steps {
            Some("max_steps")
        } else if self.limits.max_cost.is_some_and(|m| self.cost >= m) {
            Some("max_cost")
        } else {
            None
        };
    }

    /// The next inner model call: the client's request (not streamed), its functions
    /// and, while tools are open, the server tools' ones; the calls and results so far.
    pub fn request(&self, base: &ChatRequest) -> ChatRequest {
        let mut req = base.clone();
        req.stream = None;
        req.stream_options = None;
        req.server_tools = Vec::new();
        req.messages.extend(self.transcript.iter().cloned());
        req.searches_ahead = self.searches_left();
        req.native_search = self.native_offer(base);
        if self.tools_open() {
            let offered = self.functions.iter().map(|f| Tool {
                kind: "function".into(),
                function: f.clone(),
            });
            req.tools.get_or_insert_with(Vec::new).extend(offered);
        }
        req
    }

    /// The native search the next model call offers its endpoint: the first
    /// `web_search` tool's, while it has searches left.
    fn native_offer(&self, base: &ChatRequest) -> Option<NativeSearch> {
        let left = self.searches_left();
        let zdr = base.provider.as_ref().and_then(|p| p.zdr).unwrap_or(false);
        self.tools.iter().find_map(|t| match t {
            ServerTool::WebSearch(p) if left > 0 => NativeSearch::offered(p, left, zdr),
            _ => None,
        })
    }

    /// The searches an endpoint ran itself in the reply `c` (its
    /// `usage.server_tool_use`), counted against the `web_search` tool's bounds, their
    /// citations kept for the answer.
    fn read_native(&mut self, c: &ChatCompletion) {
        let n = c
            .usage
            .as_ref()
            .and_then(|u| u.server_tool_use)
            .map_or(0, |s| s.web_search_requests);
        let Some(i) = (n > 0)
            .then(|| {
                let search = |t: &ServerTool| matches!(t, ServerTool::WebSearch(_));
                self.tools.iter().position(search)
            })
            .flatten()
        else {
            return;
        };
        if let Some(u) = self.uses.get_mut(i) {
            *u = u.saturating_add(n);
        }
        self.calls = self.calls.saturating_add(n);
        self.usage.web_search_requests = self.usage.web_search_requests.saturating_add(n);
        self.native_searches = self.native_searches.saturating_add(n);
        let (cited, queries) = c
            .choices
            .first()
            .and_then(|ch| ch.message.annotations.as_ref())
            .map(super::server_turn::found_in)
            .unwrap_or_default();
        let mut queries = queries.into_iter();
        for k in 0..n {
            self.searches.push(Search {
                id: format!("native_{}", self.searches.len()),
                query: queries.next().unwrap_or_default(),
                results: if k == 0 { cited.clone() } else { Vec::new() },
            });
        }
        self.citations.extend(cited);
    }

    /// The searches the gateway ran since the last model call, to bill with the next
    /// one (an endpoint's own searches are billed with the call that ran them).
    pub fn unbilled_searches(&mut self) -> u64 {
        let run = self
            .usage
            .web_search_requests
            .saturating_sub(self.native_searches);
        let n = run.saturating_sub(self.billed_searches);
        self.billed_searches = run;
        n
    }

    /// Reads a model call's reply: its usage counted, its server calls (within the
    /// bounds) to run.
    pub fn read(&mut self, c: &ChatCompletion) -> Next {
        self.steps = self.steps.saturating_add(1);
        if let Some(u) = &c.usage {
            self.cost = self.cost.saturating_add(u.cost.map_or(0, |c| c.0));
            self.inner_usage.get_or_insert_with(Usage::default).add(u);
        }
        self.read_native(c);
        let calls = c
            .choices
            .first()
            .and_then(|ch| ch.message.tool_calls.as_deref())
            .unwrap_or_default();
        let mut server = Vec::new();
        let mut client = false;
        for call in calls {
            match self
                .tools
                .iter()
                .position(|t| t.answers(&call.function.name))
            {
                Some(i) => server.push((
                    i,
                    ServerCall {
                        id: call.id.clone(),
                        name: call.function.name.clone(),
                        arguments: call.function.arguments.clone(),
                    },
                )),
                None => client = true,
            }
        }
        // Once the tools are closed they are not offered: a call of one then is not
        // run (and is left out of the answer), so the loop always ends.
        if server.is_empty() || self.stopped.is_some() {
            return Next::Answer;
        }
        Next::Run {
            calls: server,
            client,
        }
    }

    /// Whether the call of tool `i` may run now; counts it if so. A call past a bound
    /// is answered with why, for the model to read.
    pub fn admit(&mut self, i: usize) -> Result<(), String> {
        let max = self.tools.get(i).map_or(0, ServerTool::max_uses);
        let used = self.uses.get(i).copied().unwrap_or(0);
        if self.calls >= self.limits.max_tool_calls {
            return Err(
                "error: the request's max_tool_calls is reached; answer with what you have".into(),
            );
        }
        if used >= max {
            return Err(format!(
                "error: this tool's max_uses ({max}) is reached; answer with what you have"
            ));
        }
        if let Some(u) = self.uses.get_mut(i) {
            *u = used.saturating_add(1);
        }
        self.calls = self.calls.saturating_add(1);
        Ok(())
    }

    /// Records a step: the reply's server calls and what each gave, for the next call.
    pub fn record(
        &mut self,
        calls: &[(usize, ServerCall)],
        results: Vec<Result<ToolOutput, String>>,
    ) {
        let tool_calls = calls
            .iter()
            .map(|(_, c)| ToolCall {
                id: c.id.clone(),
                kind: "function".into(),
                function: FunctionCall {
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                },
            })
            .collect();
        self.transcript.push(Message {
            role: Role::Assistant,
            tool_calls: Some(tool_calls),
            ..Message::default()
        });
        for ((i, call), result) in calls.iter().zip(results) {
            self.note_mcp(*i, call, &result);
            let content = match result {
                Ok(out) => {
                    match self.tools.get(*i) {
                        Some(ServerTool::WebSearch(_)) => self.searches.push(Search {
                            id: call.id.clone(),
                            query: call.string_arg("query").unwrap_or_default(),
                            results: out.citations.clone(),
                        }),
                        Some(ServerTool::WebFetch(_)) => {
                            let n = self.searches.len();
                            self.fetches.extend(Fetch::of(&call.id, n, &out.content));
                        }
                        _ => {}
                    }
                    self.usage.add(out.usage);
                    self.cost = self.cost.saturating_add(u128::from(out.cost));
                    self.citations.extend(out.citations);
                    out.content
                }
                Err(why) => why,
            };
            self.transcript.push(Message {
                role: Role::Tool,
                content: Some(Content::Text(content)),
                tool_call_id: Some(call.id.clone()),
                ..Message::default()
            });
        }
        self.check_bounds();
    }

    /// A call of an MCP server's tool (the `i`th server tool), with what it gave.
    fn note_mcp(&mut self, i: usize, call: &ServerCall, result: &Result<ToolOutput, String>) {
        let Some(ServerTool::Mcp(m)) = self.tools.get(i) else {
            return;
        };
        let text = |r: &Result<ToolOutput, String>| match r {
            Ok(out) => (out.content.clone(), out.is_error),
            Err(why) => (why.clone(), true),
        };
        let (content, failed) = text(result);
        let label = &m.server_label;
        self.mcp_calls.push(McpCall {
            server_label: label.clone(),
            name: super::server_tools::mcp_tool_of(&call.name, label)
                .unwrap_or(&call.name)
                .to_string(),
            arguments: call.arguments.clone(),
            output: (!failed).then(|| content.clone()),
            error: failed.then_some(content),
        });
    }

    /// The server part of the turn `c` (the loop's answer) ends: the searches run and
    /// the citations' spans in its text.
    pub fn turn(&self, c: &ChatCompletion) -> Turn {
        let text = c
            .choices
            .first()
            .and_then(|ch| ch.message.content.as_deref())
            .unwrap_or("");
        Turn {
            searches: self.searches.clone(),
            cited: super::server_turn::spans(text, &self.citations),
            fetches: self.fetches.clone(),
            mcp: self.mcp_turn(),
        }
    }

    /// The MCP servers' listings (as offered) and the calls made of them.
    fn mcp_turn(&self) -> super::server_turn::McpTurn {
        let servers: Vec<&str> = self
            .tools
            .iter()
            .filter_map(|t| match t {
                ServerTool::Mcp(m) => Some(m.server_label.as_str()),
                _ => None,
            })
            .collect();
        super::server_turn::McpTurn {
            lists: super::server_turn::mcp_lists(&servers, &self.functions, &self.tool_annotations),
            calls: self.mcp_calls.clone(),
        }
    }

    /// Adds a cost the loop knows of before a model call bills it.
    pub fn add_cost(&mut self, picos: u128) {
        self.cost = self.cost.saturating_add(picos);
        self.check_bounds();
    }

    /// The client's reply: the last reply with the loop's citations, server tool use
    /// and summed usage; with the client's own calls only, and the turn's server part
    /// as a replay item, when it also called the client's functions.
    pub fn finish(&self, mut c: ChatCompletion, client_turn: bool) -> ChatCompletion {
        if let Some(ch) = c.choices.first_mut() {
            let m = &mut ch.message;
            let tools = &self.tools;
            if let Some(calls) = m.tool_calls.as_mut() {
                calls.retain(|t| !tools.iter().any(|s| s.answers(&t.function.name)));
            }
            if m.tool_calls.as_ref().is_some_and(Vec::is_empty) {
                m.tool_calls = None;
            }
            if client_turn {
                let item = replay_item(&self.transcript);
                let mut details = match m.reasoning_details.take() {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                details.push(item);
                m.reasoning_details = Some(Value::Array(details));
            }
            m.annotations = super::server_turn::strip_queries(m.annotations.take());
            if !self.citations.is_empty() {
                let text = m.content.as_deref().unwrap_or("");
                m.annotations = Some(Value::Array(annotations(text, &self.citations)));
            }
        }
        // The cost is what the inner calls were charged (the searches' price with them).
        let mut usage = self.inner_usage.clone().unwrap_or_default();
        usage.server_tool_use = (self.usage.total() > 0).then_some(self.usage);
        c.usage = Some(usage);
        c
    }
}

/// `url_citation` annotations for the citations the answer used (chat's shape; see
/// [`super::server_turn::spans`]).
pub fn annotations(text: &str, citations: &[Citation]) -> Vec<Value> {
    super::server_turn::spans(text, citations)
        .into_iter()
        .map(|c| c.annotation())
        .collect()
}

/// The `reasoning_details` item carrying a turn's server calls and results.
fn replay_item(transcript: &[Message]) -> Value {
    let messages: Vec<Value> = transcript
        .iter()
        .filter_map(|m| serde_json::to_value(m).ok())
        .collect();
    json!({"type": "reasoning.encrypted", "format": REPLAY_FORMAT,
        "data": super::pack_reasoning(&messages)})
}

/// The messages with each replay item put back: an assistant message that carries
/// one is preceded by the server calls and results it stands for.
pub fn replay(messages: Vec<Message>) -> Vec<Message> {
    let mut out = Vec::with_capacity(messages.len());
    let ours = |d: &Value| d.get("format").and_then(Value::as_str) == Some(REPLAY_FORMAT);
    for mut m in messages {
        let Some(Value::Array(items)) = m.extra.get_mut("reasoning_details") else {
            out.push(m);
            continue;
        };
        let (packed, rest): (Vec<Value>, Vec<Value>) = items.drain(..).partition(ours);
        let restored = packed
            .iter()
            .filter_map(|d| d.get("data").and_then(Value::as_str))
            .filter_map(super::unpack_reasoning)
            .flatten()
            .filter_map(|v| serde_json::from_value::<Message>(v).ok());
        out.extend(restored);
        // The item is the gateway's own: no upstream reads it.
        if rest.is_empty() {
            m.extra.remove("reasoning_details");
        } else {
            m.extra
                .insert("reasoning_details".into(), Value::Array(rest));
        }
        out.push(m);
    }
    out
}

/// The answer as a stream of the client's surface: what the loop did (`turn`, where
/// the surface says it), one chunk with the whole message, then the surface's close
/// with the usage.
pub fn stream_bytes(c: &ChatCompletion, turn: &Turn, enc: &mut super::surface::Encoder) -> Vec<u8> {
    use super::{ChatChunk, ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta};
    let chunk = |choices: Vec<ChunkChoice>| ChatChunk {
        id: c.id.clone(),
        object: "chat.completion.chunk".into(),
        created: c.created,
        model: c.model.clone(),
        provider: c.provider.clone(),
        system_fingerprint: None,
        choices,
        usage: None,
        error: None,
        service_tier: c.service_tier.clone(),
    };
    let choices = c
        .choices
        .iter()
        .map(|ch| {
            let m = &ch.message;
            let calls = m.tool_calls.as_ref().map(|calls| {
                (0u32..)
                    .zip(calls)
                    .map(|(index, t)| ToolCallDelta {
                        index,
                        id: Some(t.id.clone()),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(t.function.name.clone()),
                            arguments: Some(t.function.arguments.clone()),
                        }),
                    })
                    .collect()
            });
            ChunkChoice {
                index: ch.index,
                delta: Delta {
                    role: Some("assistant".into()),
                    content: m.content.clone(),
                    reasoning: m.reasoning.clone(),
                    tool_calls: calls,
                    annotations: m.annotations.clone(),
                    reasoning_details: m.reasoning_details.clone(),
                    ..Delta::default()
                },
                finish_reason: ch.finish_reason.clone(),
                native_finish_reason: None,
                logprobs: None,
            }
        })
        .collect();
    let mut out = enc.server_turn(&chunk(Vec::new()), turn);
    out.extend(enc.chunk(&chunk(choices)));
    out.extend(enc.close(&chunk(Vec::new()), &c.usage.clone().unwrap_or_default()));
    out
}

/// `:online` on the model and `plugins: [{id: "web"}]`: OpenRouter's older spellings of
/// a web_search tool (with the plugin's `max_results` and `engine`).
pub fn web_by_default(chat: &mut ChatRequest) -> crate::error::Result<()> {
    use super::server_tools::{Engine, WebSearchParams, MAX_RESULTS};
    let mut params: Option<WebSearchParams> = None;
    for m in chat
        .model
        .iter_mut()
        .chain(chat.models.iter_mut().flatten())
    {
        if let Some(base) = m.strip_suffix(":online") {
            *m = base.to_string();
            params = Some(WebSearchParams::default());
        }
    }
    // The plugin's bounds were checked as `plugins` was read.
    if let Some(w) = chat.plugins.web() {
        let mut p = WebSearchParams::default();
        if let Some(n) = w.max_results {
            p.max_results = n.min(MAX_RESULTS);
        }
        if let Some(e) = w.engine.as_deref() {
            p.engine = Engine::of(e).unwrap_or_default();
        }
        params = Some(p);
    }
    let has_search = chat
        .server_tools
        .iter()
        .any(|t| matches!(t, ServerTool::WebSearch(_)));
    if let (Some(p), false) = (params, has_search) {
        chat.server_tools.push(ServerTool::WebSearch(p));
    }
    Ok(())
}

#[cfg(test)]
#[path = "tool_loop_tests.rs"]
mod tests;

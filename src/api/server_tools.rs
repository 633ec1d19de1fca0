//! Server tools: tools the gateway runs itself, for any model (OpenRouter's
//! `openrouter:web_search`, `openrouter:web_fetch`, `openrouter:datetime`, and remote
//! MCP servers). Read from `tools[]` by their `type`, every field typed and bounded
//! (a 400 names `tools[i].parameters.x`); offered to the model as plain functions
//! ([`ServerTool::functions`]); a model's call of one is a [`ServerCall`], and what the
//! gateway's executor made of it a [`ToolOutput`].

use serde::Serialize;
use serde_json::{json, Value};

use super::read::{boolean, list, named, object, string, whole, Bad, Fields, Read};
use super::request::FunctionDef;

/// The most server-tool calls one request may run, and the default (`max_tool_calls`).
pub const MAX_TOOL_CALLS: u64 = 30;
/// Results one search returns unless `max_results` says otherwise, and the most.
pub const DEFAULT_MAX_RESULTS: u64 = 5;
pub const MAX_RESULTS: u64 = 25;
/// The most results over all of a request's searches (`max_total_results`).
pub const MAX_TOTAL_RESULTS: u64 = 750;
/// Searches (or fetches) one tool may run unless `max_uses` says otherwise.
pub const DEFAULT_MAX_USES: u64 = 5;
/// The most characters of a fetched page or a search result's text the model reads.
pub const MAX_CONTENT_TOKENS: u64 = 100_000;
/// Domains one allow or block list may name.
pub const MAX_DOMAINS: usize = 64;
/// The prefix of the function an MCP server's tool is offered as: `mcp__{label}__{tool}`.
pub const MCP_PREFIX: &str = "mcp__";

/// The search engine a `web_search` tool uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// The endpoint's own search where it has one, else the deployment's engine.
    #[default]
    Auto,
    /// Only the endpoint's own search.
    Native,
    Exa,
    Brave,
    Tavily,
}

impl Engine {
    pub const NAMES: [&'static str; 5] = ["auto", "native", "exa", "brave", "tavily"];
    const ALL: [Engine; 5] = [
        Engine::Auto,
        Engine::Native,
        Engine::Exa,
        Engine::Brave,
        Engine::Tavily,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Auto => "auto",
            Engine::Native => "native",
            Engine::Exa => "exa",
            Engine::Brave => "brave",
            Engine::Tavily => "tavily",
        }
    }

    /// The engine a name (`SEARCH_ENGINE`, a request's `engine`) names.
    pub fn of(name: &str) -> Option<Engine> {
        Engine::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// How much of each result the model reads (OpenAI's `search_context_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContextSize {
    Low,
    #[default]
    Medium,
    High,
}

impl ContextSize {
    pub(crate) const ALL: [ContextSize; 3] =
        [ContextSize::Low, ContextSize::Medium, ContextSize::High];

    pub fn as_str(self) -> &'static str {
        match self {
            ContextSize::Low => "low",
            ContextSize::Medium => "medium",
            ContextSize::High => "high",
        }
    }

    /// The characters of one result's text the model reads at this size.
    pub fn chars_per_result(self) -> usize {
        match self {
            ContextSize::Low => 500,
            ContextSize::Medium => 1_500,
            ContextSize::High => 4_000,
        }
    }
}

/// Where the searcher is, as OpenAI's and Anthropic's `user_location` say it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserLocation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSearchParams {
    pub engine: Engine,
    /// Results per search, 1..=[`MAX_RESULTS`].
    pub max_results: u64,
    /// Searches the request may run, 1..=[`MAX_TOOL_CALLS`].
    pub max_uses: u64,
    /// Results over all searches, if bounded.
    pub max_total_results: Option<u64>,
    pub allowed_domains: Vec<String>,
    pub excluded_domains: Vec<String>,
    pub user_location: Option<UserLocation>,
    pub search_context_size: ContextSize,
}

impl Default for WebSearchParams {
    /// What `:online` and `plugins: [{id: "web"}]` mean.
    fn default() -> Self {
        WebSearchParams {
            engine: Engine::Auto,
            max_results: DEFAULT_MAX_RESULTS,
            max_uses: DEFAULT_MAX_USES,
            max_total_results: None,
            allowed_domains: Vec::new(),
            excluded_domains: Vec::new(),
            user_location: None,
            search_context_size: ContextSize::Medium,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebFetchParams {
    /// Fetches the request may run, 1..=[`MAX_TOOL_CALLS`].
    pub max_uses: u64,
    /// The most tokens of one page the model reads, 1..=[`MAX_CONTENT_TOKENS`].
    pub max_content_tokens: Option<u64>,
    pub allowed_domains: Vec<String>,
    pub blocked_domains: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatetimeParams {
    /// An IANA name (`Europe/Paris`), `UTC`, or a fixed offset (`+05:30`).
    pub timezone: Option<String>,
}

/// A remote MCP server (Streamable HTTP), as OpenAI's Responses `mcp` tool says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServer {
    /// Names the server's functions (`mcp__{label}__{tool}`): letters, digits, `_`, `-`.
    pub server_label: String,
    /// An `https://` URL.
    pub server_url: String,
    /// Sent with every request to the server (an `Authorization`, say); never logged.
    pub headers: Vec<(String, String)>,
    /// The server's tools the model may call; all when `None`.
    pub allowed_tools: Option<Vec<String>>,
}

/// A tool the gateway runs itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTool {
    WebSearch(WebSearchParams),
    WebFetch(WebFetchParams),
    Datetime(DatetimeParams),
    Mcp(McpServer),
}

/// The `type`s of server tools in a chat request's `tools[]`.
pub const SERVER_TOOL_TYPES: [&str; 4] = [
    "openrouter:web_search",
    "openrouter:web_fetch",
    "openrouter:datetime",
    "mcp",
];

/// The function names a server tool's calls arrive under (besides MCP's, which are
/// prefixed with [`MCP_PREFIX`]).
pub const WEB_SEARCH: &str = "web_search";
pub const WEB_FETCH: &str = "web_fetch";
pub const DATETIME: &str = "datetime";

impl ServerTool {
    /// The functions the model is offered for this tool, where they are fixed (an MCP
    /// server's come from its `tools/list`: the executor's `functions`).
    pub fn functions(&self) -> Vec<FunctionDef> {
        let def = |name: &str, description: &str, parameters: Value| FunctionDef {
            name: name.into(),
            description: Some(description.into()),
            parameters: Some(parameters),
            strict: None,
        };
        match self {
            ServerTool::WebSearch(_) => vec![def(
                WEB_SEARCH,
                "Search the web. Returns the top results with their URLs, titles and text; cite the URLs you use.",
                json!({"type": "object", "properties": {"query": {"type": "string", "description": "What to search for"}}, "required": ["query"]}),
            )],
            ServerTool::WebFetch(_) => vec![def(
                WEB_FETCH,
                "Fetch a web page or PDF by URL and return its text.",
                json!({"type": "object", "properties": {"url": {"type": "string", "description": "An http(s) URL"}}, "required": ["url"]}),
            )],
            ServerTool::Datetime(_) => vec![def(
                DATETIME,
                "The current date and time.",
                json!({"type": "object", "properties": {}}),
            )],
            ServerTool::Mcp(_) => Vec::new(),
        }
    }

    /// Whether a call of the function `name` is this tool's.
    pub fn answers(&self, name: &str) -> bool {
        match self {
            ServerTool::WebSearch(_) => name == WEB_SEARCH,
            ServerTool::WebFetch(_) => name == WEB_FETCH,
            ServerTool::Datetime(_) => name == DATETIME,
            ServerTool::Mcp(m) => mcp_tool_of(name, &m.server_label).is_some(),
        }
    }

    /// The most calls of this tool a request may run.
    pub fn max_uses(&self) -> u64 {
        match self {
            ServerTool::WebSearch(p) => p.max_uses,
            ServerTool::WebFetch(p) => p.max_uses,
            ServerTool::Datetime(_) | ServerTool::Mcp(_) => MAX_TOOL_CALLS,
        }
    }
}

/// The function name an MCP server's tool is offered as.
pub fn mcp_function(label: &str, tool: &str) -> String {
    format!("{MCP_PREFIX}{label}__{tool}")
}

/// The MCP tool a function name calls on the server labelled `label`, if it is one.
pub fn mcp_tool_of<'a>(name: &'a str, label: &str) -> Option<&'a str> {
    name.strip_prefix(MCP_PREFIX)?
        .strip_prefix(label)?
        .strip_prefix("__")
        .filter(|t| !t.is_empty())
}

/// A model's call of a server tool, as the model saw it (a function call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them (JSON text).
    pub arguments: String,
}

impl ServerCall {
    /// The string argument `name`, if the arguments are an object holding one.
    pub fn string_arg(&self, name: &str) -> Option<String> {
        let v: Value = serde_json::from_str(&self.arguments).ok()?;
        v.get(name)?.as_str().map(str::to_string)
    }
}

/// A source a tool's output came from, for `url_citation` annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Citation {
    pub url: String,
    pub title: String,
    pub content: String,
}

pub use crate::usage::ServerToolUse;

/// What running a server call gave: what the model reads next, and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolOutput {
    /// The tool message's content the model reads.
    pub content: String,
    pub citations: Vec<Citation>,
    pub usage: ServerToolUse,
    /// Picodollars the tool's own service charged (a search engine's price), if any;
    /// the endpoint's `pricing.web_search` is added by the loop, not here.
    pub cost: u64,
    /// The tool failed: `content` says why (an MCP server's error).
    pub is_error: bool,
}

/// A `tools[]` entry of one of the [`SERVER_TOOL_TYPES`], its `type` already read.
pub(crate) fn read_server_tool(kind: &str, mut f: Fields) -> Read<ServerTool> {
    let params = |f: &mut Fields| -> Read<Fields> {
        Ok(f.read("parameters", &object)?
            .unwrap_or_else(|| Fields(Default::default())))
    };
    match kind {
        "openrouter:web_search" => {
            let p = params(&mut f)?;
            web_search(p)
                .map(ServerTool::WebSearch)
                .map_err(|b| b.in_field("parameters"))
        }
        "openrouter:web_fetch" => {
            let p = params(&mut f)?;
            web_fetch(p)
                .map(ServerTool::WebFetch)
                .map_err(|b| b.in_field("parameters"))
        }
        "openrouter:datetime" => {
            let mut p = params(&mut f)?;
            let read = |p: &mut Fields| -> Read<Option<String>> {
                let tz = p.read("timezone", &timezone)?;
                no_unknown(Fields(std::mem::take(&mut p.0)))?;
                Ok(tz)
            };
            let timezone = read(&mut p).map_err(|b| b.in_field("parameters"))?;
            Ok(ServerTool::Datetime(DatetimeParams { timezone }))
        }
        _ => mcp(f).map(ServerTool::Mcp),
    }
}

/// A count between 1 and `max`.
fn bounded(max: u64) -> impl Fn(Value) -> Read<u64> {
    move |v| match whole(v)? {
        n if (1..=max).contains(&n) => Ok(n),
        n => Err(Bad::new(format!("must be between 1 and {max}, not {n}"))),
    }
}

/// A list of bare domains (`example.com`, no scheme or path).
pub(crate) fn domains(v: Value) -> Read<Vec<String>> {
    let out = list(v, &|d| {
        let d = string(d)?.trim().to_ascii_lowercase();
        let ok = !d.is_empty()
            && d.len() <= 253
            && d.split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if ok {
            Ok(d)
        } else {
            Err(Bad::new(format!(
                "must be a domain such as \"example.com\", not {d:?}"
            )))
        }
    })?;
    if out.len() > MAX_DOMAINS {
        return Err(Bad::new(format!("at most {MAX_DOMAINS} domains")));
    }
    Ok(out)
}

fn web_search(mut p: Fields) -> Read<WebSearchParams> {
    let engine = p.read("engine", &|v| named(v, &Engine::NAMES))?;
    let size = p.read("search_context_size", &|v| {
        named(v, &ContextSize::ALL.map(ContextSize::as_str))
    })?;
    let d = WebSearchParams::default();
    let params = WebSearchParams {
        engine: engine
            .and_then(|i| Engine::ALL.get(i).copied())
            .unwrap_or(d.engine),
        max_results: p
            .read("max_results", &bounded(MAX_RESULTS))?
            .unwrap_or(d.max_results),
        max_uses: p
            .read("max_uses", &bounded(MAX_TOOL_CALLS))?
            .unwrap_or(d.max_uses),
        max_total_results: p.read("max_total_results", &bounded(MAX_TOTAL_RESULTS))?,
        allowed_domains: p.read("allowed_domains", &domains)?.unwrap_or_default(),
        excluded_domains: p.read("excluded_domains", &domains)?.unwrap_or_default(),
        user_location: p.read("user_location", &user_location)?,
        search_context_size: size
            .and_then(|i| ContextSize::ALL.get(i).copied())
            .unwrap_or_default(),
    };
    if !params.allowed_domains.is_empty() && !params.excluded_domains.is_empty() {
        return Err(Bad::new("cannot be given with allowed_domains").in_field("excluded_domains"));
    }
    no_unknown(p)?;
    Ok(params)
}

/// `openrouter:web_fetch`'s `parameters` (also Anthropic's `web_fetch_*` tool's fields).
pub(crate) fn web_fetch(mut p: Fields) -> Read<WebFetchParams> {
    let params = WebFetchParams {
        max_uses: p
            .read("max_uses", &bounded(MAX_TOOL_CALLS))?
            .unwrap_or(DEFAULT_MAX_USES),
        max_content_tokens: p.read("max_content_tokens", &bounded(MAX_CONTENT_TOKENS))?,
        allowed_domains: p.read("allowed_domains", &domains)?.unwrap_or_default(),
        blocked_domains: p.read("blocked_domains", &domains)?.unwrap_or_default(),
    };
    if !params.allowed_domains.is_empty() && !params.blocked_domains.is_empty() {
        return Err(Bad::new("cannot be given with allowed_domains").in_field("blocked_domains"));
    }
    no_unknown(p)?;
    Ok(params)
}

/// Parameters are few and named: a misspelt one is a 400, not a silent default.
pub(crate) fn no_unknown(p: Fields) -> Read<()> {
    match p.0.keys().next() {
        Some(k) => Err(Bad::new("is not a parameter of this tool").in_field(k)),
        None => Ok(()),
    }
}

pub(crate) fn user_location(v: Value) -> Read<UserLocation> {
    let mut f = object(v)?;
    // OpenAI nests it as {type: "approximate", approximate: {...}}; Anthropic flattens.
    f.read("type", &|t| named(t, &["approximate"]).map(drop))?;
    if let Some(inner) = f.read("approximate", &object)? {
        f = inner;
    }
    Ok(UserLocation {
        country: f.read("country", &string)?,
        region: f.read("region", &string)?,
        city: f.read("city", &string)?,
        timezone: f.read("timezone", &timezone)?,
    })
}

/// A time zone name: checked by [`super::datetime`] (IANA names it knows, `UTC`,
/// fixed offsets).
fn timezone(v: Value) -> Read<String> {
    let tz = string(v)?;
    match super::datetime::offset_minutes(&tz, 0) {
        Some(_) => Ok(tz),
        None => Err(Bad::new(format!(
            "unknown time zone {tz:?} (an IANA name such as \"Europe/Paris\", \"UTC\" or an offset such as \"+05:30\")"
        ))),
    }
}

fn mcp(mut f: Fields) -> Read<McpServer> {
    let server_label = f.required("server_label", &string)?;
    let label_ok = !server_label.is_empty()
        && server_label.len() <= 64
        && !server_label.contains("__")
        && server_label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !label_ok {
        return Err(
            Bad::new("must be 1 to 64 letters, digits, '_' or '-' (no \"__\")")
                .in_field("server_label"),
        );
    }
    if f.take("connector_id").is_some() {
        return Err(Bad::new(
            "OpenAI's connectors are not available on this gateway: give a server_url",
        )
        .in_field("connector_id"));
    }
    let server_url = f.required("server_url", &string)?;
    if !server_url.starts_with("https://") && !server_url.starts_with("http://") {
        return Err(Bad::new("must be an http(s) URL").in_field("server_url"));
    }
    let headers = f.read("headers", &|v| {
        let h = object(v)?;
        h.0.into_iter()
            .map(|(k, v)| {
                string(v)
                    .map(|v| (k.clone(), v))
                    .map_err(|b| b.in_field(&k))
            })
            .collect::<Read<Vec<_>>>()
    })?;
    let allowed_tools = f.read("allowed_tools", &allowed_tools)?;
    if let Some(a) = f.take("require_approval") {
        if a != Value::String("never".into()) {
            return Err(Bad::new(
                "only \"never\" is supported: the gateway runs MCP tools without asking",
            )
            .in_field("require_approval"));
        }
    }
    f.read("server_description", &string)?;
    f.read("defer_loading", &boolean)?;
    let mut headers = headers.unwrap_or_default();
    // OpenAI's `authorization`: an OAuth access token for the server.
    if let Some(token) = f.read("authorization", &string)? {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        headers.push(("Authorization".into(), format!("Bearer {token}")));
    }
    Ok(McpServer {
        server_label,
        server_url,
        headers,
        allowed_tools,
    })
}

/// `allowed_tools`: a list of names, or OpenAI's `{tool_names: [...]}`.
fn allowed_tools(v: Value) -> Read<Vec<String>> {
    match v {
        Value::Object(m) => Fields(m).required("tool_names", &|v| list(v, &string)),
        other => list(other, &string),
    }
}

#[cfg(test)]
#[path = "server_tools_tests.rs"]
mod tests;

//! A client of remote MCP servers over Streamable HTTP (MCP 2025-06-18, also what
//! 2025-03-26 servers speak), sans-IO: [`Session`] writes each JSON-RPC message with
//! the headers it needs and reads the server's reply (a JSON body or an SSE stream
//! carrying the response among other messages); the edge does the `fetch`. A session
//! is `initialize` → `notifications/initialized` → `tools/list` (paged by cursor) and
//! `tools/call`s, the `Mcp-Session-Id` the server gave sent back on each.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::media;
use crate::api::server_tools::mcp_function;
use crate::api::sse::SseParser;
use crate::api::FunctionDef;

/// The protocol version this client asks for; [`SUPPORTED`] are the ones it accepts
/// from a server (their HTTP transport is the same Streamable HTTP).
pub const PROTOCOL_VERSION: &str = "2025-06-18";
const SUPPORTED: [&str; 2] = ["2025-06-18", "2025-03-26"];

/// The most tools one server may list to the model (more are left off), and the most
/// `tools/list` pages read to find them.
pub const MAX_TOOLS: usize = 64;
pub const MAX_LIST_PAGES: usize = 8;
/// The most bytes of one reply read (a `tools/list` page with its schemas, a call's
/// result), and the most of a call's result the model reads, as text.
pub const MAX_REPLY_BYTES: usize = 2 * 1024 * 1024;
pub const MAX_OUTPUT_BYTES: usize = 100 * 1024;

/// Why talking to a server failed: a message for the model (as a tool error) or the
/// caller (as a 400 or 502), never with the server's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpError {
    /// The server answered with HTTP `status` (404 on a session: it expired).
    Http(u16),
    /// A JSON-RPC error reply.
    Rpc { code: i64, message: String },
    /// The reply is not what the protocol says.
    Protocol(String),
}

impl std::fmt::Display for McpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            McpError::Http(s) => write!(f, "the MCP server answered HTTP {s}"),
            McpError::Rpc { code, message } => {
                write!(f, "the MCP server answered error {code}: {message}")
            }
            McpError::Protocol(why) => write!(f, "the MCP server's reply is not MCP: {why}"),
        }
    }
}

/// One POST to the server: its body and the protocol's headers (the caller adds the
/// request's own `headers`, which must not replace these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    /// The JSON-RPC id a response must carry; `None` for a notification (202, no body).
    pub id: Option<u64>,
}

/// What the server answered a [`Post`].
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The `Mcp-Session-Id` header, if any.
    pub session_id: Option<&'a str>,
    pub body: &'a [u8],
}

#[derive(Serialize)]
struct Request<'a, P: Serialize> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<P>,
}

/// A message from the server: a response (to one of ours, by `id`), or a request or
/// notification of its own (`method`), which this client does not act on.
#[derive(Deserialize)]
struct Incoming {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct RpcError {
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InitializeParams {
    protocol_version: &'static str,
    capabilities: Value,
    client_info: ClientInfo,
}

#[derive(Serialize)]
struct ClientInfo {
    name: &'static str,
    version: &'static str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitializeResult {
    protocol_version: String,
}

/// A tool a server lists (`tools/list`), as the model is told of it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "empty_schema")]
    pub input_schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

fn empty_schema() -> Value {
    serde_json::json!({"type": "object"})
}

/// One page of `tools/list`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolsPage {
    #[serde(default)]
    pub tools: Vec<Tool>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// A block of a tool's result (`content[]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    Image {
        #[serde(default)]
        data: String,
        #[serde(default, rename = "mimeType")]
        mime_type: String,
    },
    Audio {
        #[serde(default)]
        data: String,
        #[serde(default, rename = "mimeType")]
        mime_type: String,
    },
    ResourceLink {
        uri: String,
        #[serde(default)]
        name: String,
    },
    Resource {
        resource: Resource,
    },
    #[serde(other)]
    Unknown,
}

/// An embedded resource: its text, or binary `blob` (base64).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub uri: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub blob: Option<String>,
}

/// What `tools/call` answered.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallResult {
    #[serde(default)]
    pub content: Vec<Block>,
    #[serde(default)]
    pub structured_content: Option<Value>,
    #[serde(default)]
    pub is_error: bool,
}

impl CallResult {
    /// The result as the model reads it: the text blocks as they are, what is not
    /// text described in a line, at most [`MAX_OUTPUT_BYTES`] (cut at a character).
    /// With no content, the structured content as JSON.
    pub fn text(&self) -> String {
        let mut parts: Vec<String> = self.content.iter().filter_map(block_text).collect();
        if parts.is_empty() {
            if let Some(s) = &self.structured_content {
                parts.push(s.to_string());
            }
        }
        cut(parts.join("\n"), MAX_OUTPUT_BYTES)
    }
}

fn block_text(b: &Block) -> Option<String> {
    Some(match b {
        Block::Text { text } => text.clone(),
        Block::Image { data, mime_type } | Block::Audio { data, mime_type } => format!(
            "[{mime_type} content of {} bytes, not shown]",
            data.len().saturating_mul(3) / 4
        ),
        Block::ResourceLink { uri, name } => format!("[resource {name}: {uri}]"),
        Block::Resource { resource: r } => match (&r.text, &r.blob) {
            (Some(t), _) => format!("[resource {}]\n{t}", r.uri),
            (None, _) => format!(
                "[resource {} ({}), binary, not shown]",
                r.uri,
                r.mime_type.as_deref().unwrap_or("application/octet-stream")
            ),
        },
        Block::Unknown => return None,
    })
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while end > 0 && !s.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        s.truncate(end);
    }
    s
}

/// Where a session is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// `initialize` not answered yet.
    New,
    /// Initialized: the negotiated version; `notifications/initialized` sent or not.
    Ready { version: String },
}

/// One session with one server, for the life of a gateway request.
#[derive(Debug, Clone)]
pub struct Session {
    state: State,
    next_id: u64,
    session_id: Option<String>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    pub fn new() -> Self {
        Session {
            state: State::New,
            next_id: 1,
            session_id: None,
        }
    }

    /// Whether `initialize` has been answered.
    pub fn ready(&self) -> bool {
        matches!(self.state, State::Ready { .. })
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("content-type", "application/json".to_string()),
            ("accept", "application/json, text/event-stream".to_string()),
        ];
        if let Some(id) = &self.session_id {
            h.push(("mcp-session-id", id.clone()));
        }
        if let State::Ready { version } = &self.state {
            h.push(("mcp-protocol-version", version.clone()));
        }
        h
    }

    fn post<P: Serialize>(&mut self, method: &str, params: Option<P>, notify: bool) -> Post {
        let id = (!notify).then(|| {
            let id = self.next_id;
            self.next_id = self.next_id.saturating_add(1);
            id
        });
        let msg = Request {
            jsonrpc: "2.0",
            id,
            method,
            params,
        };
        Post {
            body: serde_json::to_vec(&msg).unwrap_or_default(),
            headers: self.headers(),
            id,
        }
    }

    /// The `initialize` request.
    pub fn initialize(&mut self) -> Post {
        let params = InitializeParams {
            protocol_version: PROTOCOL_VERSION,
            capabilities: Value::Object(Default::default()),
            client_info: ClientInfo {
                name: "modelmux",
                version: env!("CARGO_PKG_VERSION"),
            },
        };
        self.post("initialize", Some(params), false)
    }

    /// Reads `initialize`'s reply (keeping the session id the server gave) and gives
    /// the `notifications/initialized` to send next.
    pub fn on_initialize(&mut self, sent: &Post, reply: &Reply) -> Result<Post, McpError> {
        let mut r = Awaiting::new(sent, reply.status, reply.content_type)?;
        let found = match r.feed(reply.body)? {
            Some(found) => found,
            None => r.finish()?,
        };
        self.initialized(found, reply.session_id)
    }

    /// [`Session::on_initialize`] from the response found and the reply's
    /// `Mcp-Session-Id`.
    pub fn initialized(
        &mut self,
        found: Found,
        session_id: Option<&str>,
    ) -> Result<Post, McpError> {
        let result: InitializeResult = found.result()?;
        if !SUPPORTED.contains(&result.protocol_version.as_str()) {
            return Err(McpError::Protocol(format!(
                "it speaks protocol version {}, this gateway {}",
                result.protocol_version,
                SUPPORTED.join(" or ")
            )));
        }
        self.session_id = session_id.filter(|s| valid_session_id(s)).map(String::from);
        self.state = State::Ready {
            version: result.protocol_version,
        };
        Ok(self.post::<()>("notifications/initialized", None, true))
    }

    /// The session id the server gave, if any.
    pub fn id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// A `tools/list` request, from `cursor` (the previous page's `nextCursor`).
    pub fn list_tools(&mut self, cursor: Option<&str>) -> Post {
        #[derive(Serialize)]
        struct Params<'a> {
            cursor: &'a str,
        }
        self.post("tools/list", cursor.map(|cursor| Params { cursor }), false)
    }

    /// A `tools/call` of `name` with `arguments` (a JSON object, as the model wrote it).
    pub fn call_tool(&mut self, name: &str, arguments: &RawValue) -> Post {
        #[derive(Serialize)]
        struct Params<'a> {
            name: &'a str,
            arguments: &'a RawValue,
        }
        self.post("tools/call", Some(Params { name, arguments }), false)
    }
}

/// The URL of a server the edge may post to: by the media fetcher's rules (a public
/// host, or one the operator lists in `MEDIA_FETCH_ALLOW_HOSTS`), and `https` unless
/// listed (a listed host may be a test's or an operator's own on plain http).
pub fn server_url(url: &str, allow: &[String]) -> Result<String, String> {
    let u = media::fetchable(url, allow).map_err(|why| format!("server_url {why}"))?;
    if u.starts_with("https://") || media::is_listed(&u, allow) {
        Ok(u)
    } else {
        Err("server_url must be an https URL".into())
    }
}

/// Whether the model may call `tool` of a server whose `allowed_tools` is `allowed`.
pub fn allowed(allowed: Option<&[String]>, tool: &str) -> bool {
    allowed.is_none_or(|a| a.iter().any(|t| t == tool))
}

/// The functions the model is offered for the tools a server labelled `label` lists:
/// those `allowed` lets through, named [`function_name`] (a tool whose name cannot be
/// a function's is left off), at most [`MAX_TOOLS`].
pub fn functions(
    label: &str,
    allowed_tools: Option<&[String]>,
    tools: Vec<Tool>,
) -> Vec<FunctionDef> {
    let mut seen = std::collections::HashSet::new();
    tools
        .into_iter()
        .filter(|t| allowed(allowed_tools, &t.name))
        .filter_map(|t| {
            let name = function_name(label, &t.name)?;
            if !seen.insert(name.clone()) {
                return None;
            }
            Some(FunctionDef {
                name,
                description: t.description,
                parameters: Some(t.input_schema),
                strict: None,
            })
        })
        .take(MAX_TOOLS)
        .collect()
}

/// `mcp__{label}__{tool}`, if that is a function name every provider takes: at most
/// 64 letters, digits, `_` and `-`.
pub fn function_name(label: &str, tool: &str) -> Option<String> {
    let name = mcp_function(label, tool);
    let ok = name.len() <= 64
        && !tool.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then_some(name)
}

/// The session ids a client may send back: visible ASCII (0x21 to 0x7E), as the
/// transport requires, so that a header is never built of anything else.
fn valid_session_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 1024 && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Checks a notification's reply: 202 (or any 2xx) is accepted.
pub fn accepted(reply: &Reply) -> Result<(), McpError> {
    if (200..300).contains(&reply.status) {
        Ok(())
    } else {
        Err(McpError::Http(reply.status))
    }
}

/// The result of `sent`, read from `reply`: a JSON body holding the response (or a
/// batch with it), or an SSE stream whose events carry it among the server's other
/// messages.
pub fn response<R: serde::de::DeserializeOwned>(sent: &Post, reply: &Reply) -> Result<R, McpError> {
    let mut r = Awaiting::new(sent, reply.status, reply.content_type)?;
    match r.feed(reply.body)? {
        Some(found) => found.result(),
        None => r.finish()?.result(),
    }
}

/// The response to one request, as the reply's bytes arrive: from an SSE stream as
/// soon as its event has come (a server may keep the stream open after it), from a
/// JSON body at its end. At most [`MAX_REPLY_BYTES`] are read.
pub struct Awaiting {
    id: u64,
    /// `None` for a JSON body, which is kept until its end.
    events: Option<SseParser>,
    body: Vec<u8>,
    read: usize,
}

/// The response found.
pub struct Found(Incoming);

impl Found {
    /// Its result, or its error.
    pub fn result<R: serde::de::DeserializeOwned>(self) -> Result<R, McpError> {
        let msg = self.0;
        if let Some(e) = msg.error {
            return Err(McpError::Rpc {
                code: e.code,
                message: cut(e.message, 500),
            });
        }
        let raw = msg
            .result
            .ok_or_else(|| McpError::Protocol("a response without result or error".into()))?;
        serde_json::from_str(raw.get()).map_err(|e| McpError::Protocol(format!("result: {e}")))
    }
}

impl Awaiting {
    /// What to read of a reply of `status` and `content_type` to `sent`.
    pub fn new(sent: &Post, status: u16, content_type: Option<&str>) -> Result<Self, McpError> {
        if !(200..300).contains(&status) {
            return Err(McpError::Http(status));
        }
        let id = sent
            .id
            .ok_or_else(|| McpError::Protocol("a notification has no response".into()))?;
        let media = content_type
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let events = match media.as_str() {
            "text/event-stream" => Some(SseParser::new()),
            "application/json" => None,
            other => {
                return Err(McpError::Protocol(format!(
                    "Content-Type {:?}",
                    if other.is_empty() { "(none)" } else { other }
                )))
            }
        };
        Ok(Awaiting {
            id,
            events,
            body: Vec::new(),
            read: 0,
        })
    }

    /// Takes the next bytes; the response if they completed it.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Found>, McpError> {
        self.read = self.read.saturating_add(bytes.len());
        if self.read > MAX_REPLY_BYTES {
            return Err(McpError::Protocol(format!(
                "a reply larger than {MAX_REPLY_BYTES} bytes"
            )));
        }
        let id = self.id;
        let Some(parser) = &mut self.events else {
            self.body.extend_from_slice(bytes);
            return Ok(None);
        };
        let mut found = None;
        let fed = parser.feed_with(bytes, |data| {
            if found.is_none() {
                found = event(data, id);
            }
            Ok::<(), ()>(())
        });
        fed.map_err(|_| McpError::Protocol("an SSE line too long".into()))?;
        Ok(found.map(Found))
    }

    /// The reply has ended: its response, or why there is none.
    pub fn finish(mut self) -> Result<Found, McpError> {
        let id = self.id;
        let found = match &mut self.events {
            Some(parser) => parser.finish().and_then(|data| event(&data, id)),
            None => from_json(&self.body, id)?,
        };
        found
            .map(Found)
            .ok_or_else(|| McpError::Protocol(format!("no response to request {id}")))
    }
}

/// The response to `id`, if an event's data is it. The server's own requests and
/// notifications, and events that are not JSON-RPC (priming events with empty data),
/// are passed over.
fn event(data: &str, id: u64) -> Option<Incoming> {
    serde_json::from_str::<Incoming>(data)
        .ok()
        .filter(|m| answers(m, id))
}

/// Whether `m` is the response to request `id` (ids may come back as numbers or
/// strings).
fn answers(m: &Incoming, id: u64) -> bool {
    m.method.is_none()
        && match &m.id {
            Some(Value::Number(n)) => n.as_u64() == Some(id),
            Some(Value::String(s)) => s.parse::<u64>().ok() == Some(id),
            _ => false,
        }
}

fn from_json(body: &[u8], id: u64) -> Result<Option<Incoming>, McpError> {
    let bad = |e: serde_json::Error| McpError::Protocol(format!("JSON: {e}"));
    // A batch or one message (`RawValue` results cannot go through an untagged enum).
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    Ok(if batch {
        let ms: Vec<Incoming> = serde_json::from_slice(body).map_err(bad)?;
        ms.into_iter().find(|m| answers(m, id))
    } else {
        let m: Incoming = serde_json::from_slice(body).map_err(bad)?;
        answers(&m, id).then_some(m)
    })
}

#[cfg(test)]
#[path = "mcp_tests.rs"]
mod tests;

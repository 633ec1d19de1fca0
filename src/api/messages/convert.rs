//! A Messages request as the internal chat request, for endpoints of the other
//! families. What only an Anthropic endpoint can serve (server tools, blocks of
//! Anthropic-only types) is left out of the chat request and named, so that routing
//! can refuse the others; what no endpoint can serve is a 400 naming the field.

use serde_json::{json, Map, Value};

use super::request::{
    ContentBlockParam, DocumentSource, ImageSource, MessageParam, MessagesRequest, Role,
    TextBlockParam, TextOr, ThinkingConfig, ToolChoice, ToolParam, ToolResultBlockParam,
};
use super::DEFAULT_MAX_SEARCHES;
use crate::api::read::Fields;
use crate::api::server_tools::{web_fetch, ServerTool};
use crate::api::{
    ChatRequest, Content, ContentPart, Effort, FunctionCall, FunctionDef, Message, ReasoningConfig,
    Role as ChatRole, Stop, TextPart, Tool, ToolCall, ToolChoice as ChatToolChoice,
};
use crate::error::{Error, Result};

fn bad(path: &str, rule: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("{path}: {rule}"))
}

/// Block types that only an Anthropic endpoint understands (server tools' calls and
/// results, search results, containers): kept for Anthropic endpoints, refused by the
/// others.
const ANTHROPIC_ONLY_BLOCKS: &[&str] = &[
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "mcp_tool_use",
    "mcp_tool_result",
    "search_result",
    "container_upload",
    "tool_reference",
];

/// The chat request a Messages request asks for, and the first thing in it that only
/// an Anthropic endpoint can serve, which the chat request leaves out.
#[derive(Debug, Clone)]
pub struct Converted {
    pub chat: ChatRequest,
    pub anthropic_only: Option<String>,
}

impl TryFrom<MessagesRequest> for ChatRequest {
    type Error = Error;

    fn try_from(r: MessagesRequest) -> Result<Self> {
        Converted::try_from(r).map(|c| c.chat)
    }
}

impl TryFrom<MessagesRequest> for Converted {
    type Error = Error;

    fn try_from(r: MessagesRequest) -> Result<Self> {
        let mut only = None;
        let mut messages = Vec::new();
        match r.system {
            None => {}
            Some(TextOr::Text(s)) => messages.push(message(ChatRole::System, Content::Text(s))),
            Some(TextOr::Blocks(blocks)) => {
                let parts: Vec<ContentPart> = blocks.into_iter().map(text_part).collect();
                if !parts.is_empty() {
                    messages.push(message(ChatRole::System, Content::Parts(parts)));
                }
            }
        }
        let list = r.messages.ok_or_else(|| bad("messages", "is required"))?;
        for (i, m) in list.into_iter().enumerate() {
            turn(&format!("messages[{i}]"), m, &mut messages, &mut only)?;
        }
        let max_tokens = r
            .max_tokens
            .ok_or_else(|| bad("max_tokens", "is required"))?;
        let mut extra = Map::new();
        if let Some(user) = r.metadata.and_then(|m| m.user_id) {
            extra.insert("user".into(), Value::String(user));
        }
        let mut searches = 0;
        let mut server_tools = Vec::new();
        let tools = r
            .tools
            .map(|t| tools(t, &mut only, &mut searches, &mut server_tools))
            .transpose()?
            // Server tools only: no client functions to send.
            .filter(|t| !t.is_empty() || server_tools.is_empty());
        let tool_choice = r.tool_choice.map(|tc| choice(tc, &mut extra)).transpose()?;
        let chat = ChatRequest {
            server_searches: searches,
            model: r.model,
            models: r.models,
            messages,
            stream: r.stream,
            max_tokens: Some(max_tokens),
            temperature: r.temperature,
            top_p: r.top_p,
            top_k: r.top_k,
            stop: r.stop_sequences.map(Stop::Many),
            tools,
            server_tools,
            tool_choice,
            reasoning: r.thinking.and_then(reasoning),
            provider: r.provider,
            extra,
            ..Default::default()
        };
        crate::api::validate::check(&chat)?;
        Ok(Converted {
            chat,
            anthropic_only: only,
        })
    }
}

fn message(role: ChatRole, content: Content) -> Message {
    Message {
        role,
        content: Some(content),
        ..Default::default()
    }
}

/// A text block (with its cache_control) as a chat text part.
fn text_part(b: TextBlockParam) -> ContentPart {
    ContentPart::Text(TextPart {
        text: b.text,
        cache_control: b.cache_control,
        extra: Map::new(),
    })
}

/// An image URL part (images, and PDFs as data: URLs, which every family's translator
/// sends as a document).
fn url_part(url: String) -> ContentPart {
    ContentPart::image(url)
}

fn data_url(media_type: &str, data: &str) -> String {
    format!("data:{media_type};base64,{data}")
}

fn image(path: &str, s: ImageSource) -> Result<ContentPart> {
    match s {
        ImageSource::Base64 { media_type, data } => Ok(url_part(data_url(&media_type, &data))),
        ImageSource::Url { url } => Ok(url_part(url)),
        ImageSource::Other(kind) => Err(bad(
            &format!("{path}.source.type"),
            format!("must be base64 or url, not {kind}"),
        )),
    }
}

fn document(path: &str, s: DocumentSource) -> Result<ContentPart> {
    match s {
        DocumentSource::Base64 { media_type, data } => Ok(url_part(data_url(&media_type, &data))),
        DocumentSource::Url { url } => Ok(url_part(url)),
        DocumentSource::Text { data } => Ok(ContentPart::text(&data)),
        DocumentSource::Other(kind) => Err(bad(
            &format!("{path}.source.type"),
            format!("must be base64, url or text, not {kind}"),
        )),
    }
}

/// One turn's blocks, sorted into what the chat messages carry.
#[derive(Default)]
struct Turn {
    parts: Vec<ContentPart>,
    calls: Vec<ToolCall>,
    reasoning: String,
    details: Vec<Value>,
    /// Tool results go first, as tool messages; the rest of the turn follows them.
    results: Vec<Message>,
}

fn turn(
    path: &str,
    m: MessageParam,
    out: &mut Vec<Message>,
    anthropic_only: &mut Option<String>,
) -> Result<()> {
    if let Role::Other(role) = &m.role {
        return Err(bad(
            &format!("{path}.role"),
            format!("unknown role {role:?} (expected user or assistant)"),
        ));
    }
    let role = ChatRole::of(m.role.as_str()).unwrap_or_default();
    let blocks = match m.content {
        TextOr::Text(s) => {
            out.push(message(role, Content::Text(s)));
            return Ok(());
        }
        TextOr::Blocks(b) => b,
    };
    let mut t = Turn::default();
    for (j, b) in blocks.into_iter().enumerate() {
        t.block(&format!("{path}.content[{j}]"), b, anthropic_only)?;
    }
    out.append(&mut t.results);
    if m.role == Role::Assistant {
        let mut msg = Message {
            role,
            content: (!t.parts.is_empty()).then_some(Content::Parts(t.parts)),
            tool_calls: (!t.calls.is_empty()).then_some(t.calls),
            ..Default::default()
        };
        if !t.reasoning.is_empty() {
            msg.extra
                .insert("reasoning".into(), Value::String(t.reasoning));
        }
        if !t.details.is_empty() {
            msg.extra
                .insert("reasoning_details".into(), Value::Array(t.details));
        }
        out.push(msg);
    } else if !t.parts.is_empty() {
        out.push(message(role, Content::Parts(t.parts)));
    }
    Ok(())
}

impl Turn {
    fn block(
        &mut self,
        path: &str,
        b: ContentBlockParam,
        anthropic_only: &mut Option<String>,
    ) -> Result<()> {
        match b {
            ContentBlockParam::Text(tb) => self.parts.push(text_part(tb)),
            ContentBlockParam::Image(i) => self.parts.push(image(path, i)?),
            ContentBlockParam::Document(d) => self.parts.push(document(path, d)?),
            ContentBlockParam::ToolUse(u) => {
                let input = u.input.unwrap_or_else(|| Value::Object(Map::new()));
                self.calls.push(ToolCall {
                    id: u.id,
                    kind: "function".into(),
                    function: FunctionCall {
                        name: u.name,
                        arguments: input.to_string(),
                    },
                });
            }
            ContentBlockParam::ToolResult(r) => self.result(path, r)?,
            ContentBlockParam::Thinking(th) => {
                self.reasoning.push_str(&th.thinking);
                // What this gateway packed into the signature on a translated route
                // (another provider's signatures) goes back as reasoning_details.
                let details = crate::api::unpack_reasoning(&th.signature);
                self.details.extend(details.unwrap_or_default());
            }
            // Encrypted reasoning only an Anthropic endpoint can read; a server tool's
            // call, which its result (below) stands for.
            ContentBlockParam::RedactedThinking | ContentBlockParam::ServerToolUse => {}
            ContentBlockParam::WebSearchToolResult(results) => {
                let text = super::search::result_text(&results);
                self.parts.push(ContentPart::text(&text));
            }
            ContentBlockParam::WebFetchToolResult { url, text } => {
                let text = format!("Fetched {url}:\n{}", text.unwrap_or_default());
                self.parts.push(ContentPart::text(&text));
            }
            ContentBlockParam::Other(kind) if ANTHROPIC_ONLY_BLOCKS.contains(&kind.as_str()) => {
                anthropic_only.get_or_insert_with(|| {
                    format!(
                        "{path}.type: {kind:?} blocks are only understood by Anthropic endpoints"
                    )
                });
            }
            ContentBlockParam::Other(kind) => {
                return Err(bad(
                    &format!("{path}.type"),
                    format!("unknown content block type {kind:?}"),
                ))
            }
        }
        Ok(())
    }

    /// A tool result as a tool message: its text joined, its images added to the turn.
    fn result(&mut self, path: &str, r: ToolResultBlockParam) -> Result<()> {
        let mut text = match r.content {
            None => String::new(),
            Some(TextOr::Text(s)) => s,
            Some(TextOr::Blocks(inner)) => {
                let mut texts = Vec::new();
                for (k, ib) in inner.into_iter().enumerate() {
                    match ib {
                        ContentBlockParam::Text(tb) => texts.push(tb.text),
                        ContentBlockParam::Image(i) => {
                            let at = format!("{path}.content[{k}]");
                            self.parts.push(image(&at, i)?);
                        }
                        _ => {}
                    }
                }
                texts.join("\n")
            }
        };
        if r.is_error {
            text = format!("Error: {text}");
        }
        self.results.push(Message {
            role: ChatRole::Tool,
            content: Some(Content::Text(text)),
            tool_call_id: Some(r.tool_use_id),
            ..Default::default()
        });
        Ok(())
    }
}

/// The most searches `t` may run, if it is a web search server tool.
pub(super) fn searches_of(t: &ToolParam) -> Option<u64> {
    let kind = t.kind.as_deref()?;
    kind.starts_with("web_search_")
        .then(|| t.max_uses.unwrap_or(DEFAULT_MAX_SEARCHES))
}

fn tools(
    list: Vec<ToolParam>,
    anthropic_only: &mut Option<String>,
    searches: &mut u64,
    server: &mut Vec<ServerTool>,
) -> Result<Vec<Tool>> {
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.into_iter().enumerate() {
        *searches = searches.saturating_add(searches_of(&t).unwrap_or(0));
        if let Some(p) = t.web_fetch {
            // Anthropic's web fetch, run by the gateway for the other families.
            let params =
                web_fetch(Fields(p)).map_err(|b| Error::from(b.at_index(i).in_field("tools")))?;
            server.push(ServerTool::WebFetch(params));
            continue;
        }
        if let Some(p) = t.web_search {
            // Anthropic's web search, run by the gateway for the other families.
            let tool = super::search::web_search_tool(Fields(p))
                .map_err(|b| Error::from(b.at_index(i).in_field("tools")))?;
            server.push(tool);
            continue;
        }
        if !t.is_custom() {
            let kind = t.kind.unwrap_or_default();
            anthropic_only.get_or_insert_with(|| {
                format!("tools[{i}].type: server tool {kind:?} is only available on Anthropic endpoints")
            });
            continue;
        }
        let name = t
            .name
            .ok_or_else(|| bad(&format!("tools[{i}].name"), "is required"))?;
        out.push(Tool {
            kind: "function".into(),
            function: FunctionDef {
                name,
                description: t.description,
                parameters: Some(t.input_schema.unwrap_or_else(|| json!({"type": "object"}))),
                strict: None,
            },
        });
    }
    Ok(out)
}

/// The chat tool_choice; `parallel_tool_calls: false` into `extra` when the caller
/// disabled parallel tool use.
fn choice(tc: ToolChoice, extra: &mut Map<String, Value>) -> Result<ChatToolChoice> {
    let (choice, disable) = match tc {
        ToolChoice::Auto {
            disable_parallel_tool_use: d,
        } => (ChatToolChoice::Auto, d),
        ToolChoice::Any {
            disable_parallel_tool_use: d,
        } => (ChatToolChoice::Required, d),
        ToolChoice::Tool {
            name,
            disable_parallel_tool_use: d,
        } => (ChatToolChoice::Function(name), d),
        ToolChoice::NoTool => (ChatToolChoice::None, false),
        ToolChoice::Other(kind) => {
            return Err(bad(
                "tool_choice.type",
                format!("must be auto, any, tool or none, not {kind:?}"),
            ))
        }
    };
    if disable {
        extra.insert("parallel_tool_calls".into(), Value::Bool(false));
    }
    Ok(choice)
}

/// OpenRouter's `reasoning` for Anthropic's thinking configuration.
fn reasoning(t: ThinkingConfig) -> Option<ReasoningConfig> {
    match t {
        ThinkingConfig::Enabled {
            budget_tokens: Some(b),
        } => Some(ReasoningConfig {
            max_tokens: Some(b),
            ..Default::default()
        }),
        ThinkingConfig::Enabled {
            budget_tokens: None,
        }
        | ThinkingConfig::Adaptive => Some(ReasoningConfig {
            effort: Some(Effort::Medium),
            ..Default::default()
        }),
        ThinkingConfig::Disabled | ThinkingConfig::Other(_) => None,
    }
}

//! The chat request as a Messages API request: system prompts lifted out, tool calls
//! and results as content blocks, images and documents as base64 or URL sources,
//! reasoning as extended thinking. The body is typed ([`Body`]); only what the caller
//! passes through opaque (schemas, tool arguments, cache directives) stays JSON.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{json, Value};

use super::{output_limits, OutputLimits, API_VERSION, JSON_TOOL, REASONING_FORMAT};
use crate::api::{ChatRequest, Content, ContentPart, Message, Role, ToolChoice};
use crate::error::{Error, Result};
use crate::providers::media::{Kind, Media, Source};
use crate::providers::{parse_arguments, wants_json, Target, UpstreamRequest};

/// A Messages API request body. Its fields are in the order the map it replaced wrote
/// them (alphabetical), so that the bytes sent did not change.
#[derive(Debug, Serialize)]
struct Body<'a> {
    max_tokens: u64,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<Block<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Thinking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    /// `auto` at a priority endpoint (Anthropic's priority capacity where the account
    /// has it); otherwise not sent (Anthropic's own default).
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Turn<'a> {
    content: Vec<Block<'a>>,
    role: &'static str,
}

#[derive(Debug, Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

#[derive(Debug, Serialize)]
struct Thinking {
    budget_tokens: u64,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ToolOut<'a> {
    Function {
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<&'a str>,
        input_schema: Cow<'a, Value>,
        name: &'a str,
    },
    /// Anthropic's own web search, run by Anthropic ([`crate::api::native_search`]).
    WebSearch(WebSearchOut<'a>),
}

#[derive(Debug, Serialize)]
struct WebSearchOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'static str,
    max_uses: u64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    allowed_domains: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    blocked_domains: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    user_location: Option<Approximate<'a>>,
}

/// A `user_location` as Anthropic takes it: `{type: "approximate", city, ...}`.
#[derive(Debug, Serialize)]
struct Approximate<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    at: &'a crate::api::server_tools::UserLocation,
}

impl<'a> WebSearchOut<'a> {
    fn of(n: &'a crate::api::native_search::NativeSearch) -> Self {
        let p = &n.params;
        WebSearchOut {
            kind: "web_search_20250305",
            name: "web_search",
            max_uses: n.max_uses,
            allowed_domains: &p.allowed_domains,
            blocked_domains: &p.excluded_domains,
            user_location: p.user_location.as_ref().map(|at| Approximate {
                kind: "approximate",
                at,
            }),
        }
    }
}

#[derive(Debug, Serialize)]
struct ToolChoiceOut<'a> {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    disable_parallel_tool_use: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// One content block of a message (or of the system prompt).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Block<'a> {
    Text {
        text: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
    Image {
        source: DocSource<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
    Document {
        source: DocSource<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
    Thinking {
        thinking: String,
        signature: String,
    },
    RedactedThinking {
        data: Value,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
}

/// Where an image's or a document's bytes are.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum DocSource<'a> {
    /// A text file, decoded.
    Text {
        media_type: &'static str,
        data: String,
    },
    Base64 {
        media_type: String,
        data: &'a str,
    },
    Url {
        url: &'a str,
    },
}

impl<'a> Block<'a> {
    fn text(text: &'a str) -> Self {
        Block::Text {
            text: Cow::Borrowed(text),
            cache_control: None,
        }
    }

    /// Where the block's `cache_control` goes (thinking blocks have none).
    fn cache_slot(&mut self) -> Option<&mut Option<&'a Value>> {
        match self {
            Block::Text { cache_control, .. }
            | Block::Image { cache_control, .. }
            | Block::Document { cache_control, .. }
            | Block::ToolUse { cache_control, .. }
            | Block::ToolResult { cache_control, .. } => Some(cache_control),
            Block::Thinking { .. } | Block::RedactedThinking { .. } => None,
        }
    }

    /// Sets `cache_control` on a block that has none and can carry one.
    fn mark(&mut self, cc: &'a Value) {
        if let Some(slot) = self.cache_slot().filter(|s| s.is_none()) {
            *slot = Some(cc);
        }
    }
}

/// The tests compare blocks with the JSON they are written as.
#[cfg(test)]
impl PartialEq<Value> for Block<'_> {
    fn eq(&self, other: &Value) -> bool {
        serde_json::to_value(self).ok().as_ref() == Some(other)
    }
}

/// `stream`: whether to ask for a stream (the caller's wish, or the gateway's when it
/// gathers a stream into the one reply its caller wants).
pub fn build_request(target: &Target, req: &ChatRequest, stream: bool) -> Result<UpstreamRequest> {
    let (system, messages) = conversation(req)?;
    let limits = output_limits(req, target.model, target.endpoint);
    let (tools, tool_choice) = tools(req);
    let mut body = Body {
        max_tokens: limits.max_tokens,
        messages,
        metadata: req
            .extra
            .get("user")
            .and_then(Value::as_str)
            .map(|user_id| Metadata { user_id }),
        model: &target.endpoint.upstream_model,
        stop_sequences: req.stop.as_ref().map(|s| s.to_vec()),
        stream,
        system,
        temperature: None,
        thinking: None,
        tool_choice,
        tools,
        top_k: None,
        top_p: None,
        service_tier: (target.endpoint.service_tier == Some(crate::catalog::Tier::Priority))
            .then_some("auto"),
    };
    sampling(&mut body, req, &limits);
    let mut headers = vec![
        ("x-api-key".to_string(), target.key()?.to_string()),
        ("anthropic-version".to_string(), API_VERSION.to_string()),
    ];
    headers.extend(target.extra_headers());
    UpstreamRequest::post_json(format!("{}/messages", target.base_url), &body, headers)
}

/// Thinking, or else the sampling parameters: Anthropic refuses them together.
fn sampling(body: &mut Body, req: &ChatRequest, limits: &OutputLimits) {
    if let Some(budget) = limits.thinking_budget {
        body.thinking = Some(Thinking {
            budget_tokens: budget,
            kind: "enabled",
        });
    } else {
        body.temperature = req.temperature.map(|t| t.min(1.0));
        body.top_p = req.top_p;
        body.top_k = req.top_k;
    }
}

/// The system blocks and the messages, with the request's own cache breakpoint and
/// the instruction a `json_object` answer needs.
fn conversation(req: &ChatRequest) -> Result<(Vec<Block<'_>>, Vec<Turn<'_>>)> {
    let (mut system, mut messages) = convert_messages(&req.messages)?;
    // A top-level cache_control marks the last cacheable block, as OpenRouter applies it.
    if let Some(cc) = req.extra.get("cache_control").filter(|c| c.is_object()) {
        let last = messages.last_mut().and_then(|m| m.content.last_mut());
        if let Some(block) = last {
            block.mark(cc);
        }
    }
    if wants_json(req) && req.json_schema_format().is_none() {
        // `json_object` has no Anthropic counterpart: ask for it in the system prompt.
        system.push(Block::text(
            "Respond with a single valid JSON object and nothing else.",
        ));
    }
    Ok((system, messages))
}

/// The tools, and the choice among them; a JSON schema answer is a forced call of
/// [`JSON_TOOL`] when the caller offers no tools of its own.
fn tools(req: &ChatRequest) -> (Vec<ToolOut<'_>>, Option<ToolChoiceOut<'_>>) {
    let mut tools: Vec<ToolOut> = req
        .tools
        .iter()
        .flatten()
        .map(|t| ToolOut::Function {
            description: t.function.description.as_deref(),
            input_schema: t.function.parameters.as_ref().map_or_else(
                || Cow::Owned(json!({"type": "object", "properties": {}})),
                Cow::Borrowed,
            ),
            name: &t.function.name,
        })
        .collect();
    let mut choice = req.tool_choice.as_ref().map(convert_tool_choice);
    if tools.is_empty() {
        if let Some((_, schema)) = req.json_schema_format() {
            tools.push(ToolOut::Function {
                description: Some("Respond with the answer as this tool's input."),
                input_schema: Cow::Owned(schema),
                name: JSON_TOOL,
            });
            choice = Some(ToolChoiceOut {
                disable_parallel_tool_use: false,
                name: Some(JSON_TOOL),
                kind: "tool",
            });
        }
    }
    if let Some(n) = crate::api::native_search::sent(req) {
        tools.push(ToolOut::WebSearch(WebSearchOut::of(n)));
    }
    if tools.is_empty() {
        return (tools, None);
    }
    if let Some(c) = choice.as_mut() {
        c.disable_parallel_tool_use =
            req.extra.get("parallel_tool_calls") == Some(&json!(false)) && c.kind != "none";
    }
    (tools, choice)
}

fn convert_tool_choice(tc: &ToolChoice) -> ToolChoiceOut<'_> {
    let (kind, name) = match tc {
        ToolChoice::Auto => ("auto", None),
        ToolChoice::None => ("none", None),
        ToolChoice::Required => ("any", None),
        ToolChoice::Function(name) => ("tool", Some(name.as_str())),
    };
    ToolChoiceOut {
        disable_parallel_tool_use: false,
        name,
        kind,
    }
}

/// An image or a document as Anthropic takes it: images and PDFs inline or by URL,
/// text files inline as plain text. Audio and video it does not take (routing keeps
/// such requests away from it).
fn media_block(m: Media<'_>) -> Option<Block<'_>> {
    let source = match (m.kind, m.source) {
        (Kind::File, Source::Inline(data)) if m.mime.starts_with("text/") => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .ok()?;
            DocSource::Text {
                media_type: "text/plain",
                data: String::from_utf8_lossy(&bytes).into_owned(),
            }
        }
        (Kind::Image | Kind::File, Source::Inline(data)) => DocSource::Base64 {
            media_type: m.mime,
            data,
        },
        (Kind::Image | Kind::File, Source::Url(url)) => DocSource::Url { url },
        (Kind::Audio | Kind::Video, _) => return None,
    };
    Some(match m.kind {
        Kind::Image => Block::Image {
            source,
            cache_control: None,
        },
        _ => Block::Document {
            source,
            title: m.filename,
            cache_control: None,
        },
    })
}

/// A message's content as blocks, each part's cache breakpoint on its block.
fn content_blocks(content: Option<&Content>) -> Vec<Block<'_>> {
    let parts = match content {
        None => return Vec::new(),
        Some(Content::Text(s)) => return vec![Block::text(s)],
        Some(Content::Parts(parts)) => parts,
    };
    parts
        .iter()
        .filter_map(|p| {
            let mut block = match p {
                ContentPart::Text(t) => Block::text(&t.text),
                _ => media_block(Media::of(p)?)?,
            };
            if let (Some(cc), Some(slot)) = (p.cache_control(), block.cache_slot()) {
                *slot = Some(cc);
            }
            Some(block)
        })
        .collect()
}

/// An assistant turn's blocks: thinking first, as Anthropic wants it (with its
/// signature), then what it said and the tools it called.
fn assistant_blocks(m: &Message) -> Result<Vec<Block<'_>>> {
    let mut blocks = thinking_blocks(m.extra.get("reasoning_details"));
    let mut said = content_blocks(m.content.as_ref());
    said.retain(|b| !matches!(b, Block::Text { text, .. } if text.is_empty()));
    blocks.extend(said);
    for call in m.tool_calls.iter().flatten() {
        blocks.push(Block::ToolUse {
            id: &call.id,
            name: &call.function.name,
            input: parse_arguments(&call.function.arguments)?,
            cache_control: None,
        });
    }
    Ok(blocks)
}

/// A message's own `cache_control` (string content has nowhere else to put it).
fn message_cache(m: &Message) -> Option<&Value> {
    m.extra.get("cache_control").filter(|c| c.is_object())
}

/// OpenAI messages → (system blocks, Anthropic messages), merging consecutive turns of
/// the same role (tool results become user turns) as the API requires.
fn convert_messages(messages: &[Message]) -> Result<(Vec<Block<'_>>, Vec<Turn<'_>>)> {
    let mut system = Vec::new();
    let mut out: Vec<Turn> = Vec::new();
    for m in messages {
        let (role, mut blocks) = match m.role {
            Role::System | Role::Developer => {
                let mut blocks = content_blocks(m.content.as_ref());
                if let (Some(cc), Some(last)) = (message_cache(m), blocks.last_mut()) {
                    last.mark(cc);
                }
                system.extend(blocks);
                continue;
            }
            Role::Assistant => ("assistant", assistant_blocks(m)?),
            Role::Tool => {
                let id = m
                    .tool_call_id
                    .as_deref()
                    .ok_or_else(|| Error::bad_request("a tool message needs tool_call_id"))?;
                let result = Block::ToolResult {
                    tool_use_id: id,
                    content: m.text(),
                    cache_control: None,
                };
                ("user", vec![result])
            }
            Role::User => ("user", content_blocks(m.content.as_ref())),
        };
        if let (Some(cc), Some(last)) = (message_cache(m), blocks.last_mut()) {
            last.mark(cc);
        }
        match out.last_mut() {
            _ if blocks.is_empty() => {}
            Some(t) if t.role == role => t.content.extend(blocks),
            _ => out.push(Turn {
                content: blocks,
                role,
            }),
        }
    }
    if out.is_empty() {
        return Err(Error::bad_request(
            "at least one user or assistant message is required",
        ));
    }
    Ok((system, out))
}

/// Anthropic's thinking blocks from the `reasoning_details` a caller sends back on an
/// assistant message (as this gateway or OpenRouter gave them, streamed pieces
/// included: items of one index are joined). Items of another provider's format are
/// left out, since Anthropic could not verify them.
pub(super) fn thinking_blocks(details: Option<&Value>) -> Vec<Block<'static>> {
    let mut out: Vec<(Option<u64>, Block)> = Vec::new();
    for d in details.and_then(Value::as_array).into_iter().flatten() {
        let format = d
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or(REASONING_FORMAT);
        if !format.starts_with("anthropic") {
            continue;
        }
        let index = d.get("index").and_then(Value::as_u64);
        match d.get("type").and_then(Value::as_str) {
            Some("reasoning.text") => {
                let text = d.get("text").and_then(Value::as_str).unwrap_or("");
                let sig = d.get("signature").and_then(Value::as_str).unwrap_or("");
                let same = out.last_mut().filter(|o| index.is_some() && o.0 == index);
                match same {
                    Some((
                        _,
                        Block::Thinking {
                            thinking,
                            signature,
                        },
                    )) => {
                        thinking.push_str(text);
                        if !sig.is_empty() {
                            sig.clone_into(signature);
                        }
                    }
                    _ => out.push((
                        index,
                        Block::Thinking {
                            thinking: text.to_string(),
                            signature: sig.to_string(),
                        },
                    )),
                }
            }
            Some("reasoning.encrypted") => {
                if let Some(data) = d.get("data").filter(|d| d.is_string()) {
                    out.push((index, Block::RedactedThinking { data: data.clone() }));
                }
            }
            _ => {}
        }
    }
    out.into_iter().map(|(_, b)| b).collect()
}

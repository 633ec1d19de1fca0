//! The request of the Messages surface as Anthropic defines it (`MessageCreateParams`):
//! typed, with a tolerant arm wherever Anthropic adds kinds (roles, content blocks,
//! sources, tool choices, thinking modes), so that a new kind reaches the conversion,
//! which refuses it by name or leaves it to an Anthropic endpoint.
//!
//! Each object is read field by field, its leaves (strings, numbers, booleans) by serde,
//! and its `type` tag by one dispatch, so that an error names its path
//! (`messages[2].content[0].source.data: is required`). Serde's derived readers would
//! do the same work, but its internally tagged enums cost about 10 KB of wasm each
//! (measured: four of them were 41 KB before optimisation), which the size budget
//! has no room for.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::api::read::{Bad, Read};

/// The refusal `b` under the field `name`.
fn at(name: &str) -> impl FnOnce(Bad) -> Bad + '_ {
    move |b| b.in_field(name)
}

/// The field `name` of `v`, if present and not null.
fn get<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name).filter(|x| !x.is_null())
}

/// The leaf field `name` of `v` as a `T`, by serde, if present and not null.
fn field<'a, T: Deserialize<'a>>(v: &'a Value, name: &str) -> Read<Option<T>> {
    get(v, name)
        .map(|x| T::deserialize(x).map_err(|e| at(name)(Bad::new(e))))
        .transpose()
}

fn required<'a, T: Deserialize<'a>>(v: &'a Value, name: &str) -> Read<T> {
    field(v, name)?.ok_or_else(|| at(name)(Bad::new("is required")))
}

/// An object field read by `read`, if present and not null.
fn object<T>(v: &Value, name: &str, read: impl FnOnce(&Value) -> Read<T>) -> Read<Option<T>> {
    get(v, name).map(read).transpose().map_err(at(name))
}

/// The `source` of an image or a document.
fn source<T>(v: &Value, read: impl FnOnce(&Value) -> Read<T>) -> Read<T> {
    object(v, "source", read)?.ok_or_else(|| at("source")(Bad::new("is required")))
}

/// A field passed on as it is (schemas, tool arguments, cache_control).
fn opaque(v: &Value, name: &str) -> Option<Value> {
    get(v, name).cloned()
}

/// A list, each item read by `read`, an error naming the item's index.
fn items<T>(v: &[Value], read: impl Fn(&Value) -> Read<T>) -> Read<Vec<T>> {
    let mut out = Vec::with_capacity(v.len());
    for (i, x) in v.iter().enumerate() {
        out.push(read(x).map_err(|b| b.at_index(i))?);
    }
    Ok(out)
}

/// The list field `name` of `v`, if present and not null.
fn list<T>(v: &Value, name: &str, read: impl Fn(&Value) -> Read<T>) -> Read<Option<Vec<T>>> {
    object(v, name, |x| match x {
        Value::Array(a) => items(a, read),
        _ => Err(Bad::new("must be an array")),
    })
}

fn string(v: &Value) -> Read<String> {
    String::deserialize(v).map_err(Bad::new)
}

/// An object's `type`, the tag its kind is read by.
fn tag(v: &Value) -> Read<String> {
    if !v.is_object() {
        return Err(Bad::new("must be an object"));
    }
    required(v, "type")
}

/// `POST /messages` (and `/messages/count_tokens`, which has no `max_tokens`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessagesRequest {
    pub model: Option<String>,
    /// OpenRouter: ordered fallback models.
    pub models: Option<Vec<String>>,
    /// Required by Anthropic; optional here so that `count_tokens` shares the type.
    pub max_tokens: Option<u64>,
    pub messages: Option<Vec<MessageParam>>,
    pub system: Option<TextOr<TextBlockParam>>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stream: Option<bool>,
    pub stop_sequences: Option<Vec<String>>,
    pub metadata: Option<Metadata>,
    pub tools: Option<Vec<ToolParam>>,
    pub tool_choice: Option<ToolChoice>,
    pub thinking: Option<ThinkingConfig>,
    /// OpenRouter provider preferences, read by routing.
    pub provider: Option<Box<crate::api::provider::ProviderPreferences>>,
}

impl MessagesRequest {
    /// Reads a body once, from bytes: nesting depth, then the typed request, each
    /// refused value named by its path. The body is kept too: it is what an Anthropic
    /// endpoint gets (passed through opaque, see [`super::native_body`]).
    pub(super) fn parse(body: &[u8]) -> crate::error::Result<(Self, Value)> {
        let body = crate::api::parse_json(body)?;
        Ok((Self::read(&body)?, body))
    }

    /// Reads a parsed body. Fields this surface does not use (`container`,
    /// `context_management`, `output_config`, ...) are left to the body an Anthropic
    /// endpoint gets as it was sent.
    pub(super) fn read(v: &Value) -> crate::error::Result<Self> {
        if !v.is_object() {
            return Err(crate::error::Error::bad_request(
                "The body must be a JSON object",
            ));
        }
        Ok(Self::fields(v)?)
    }

    fn fields(v: &Value) -> Read<Self> {
        Ok(MessagesRequest {
            model: field(v, "model")?,
            models: list(v, "models", string)?,
            max_tokens: field(v, "max_tokens")?,
            messages: list(v, "messages", MessageParam::read)?,
            system: object(v, "system", |s| TextOr::read(s, TextBlockParam::read))?,
            temperature: field(v, "temperature")?,
            top_p: field(v, "top_p")?,
            top_k: field(v, "top_k")?,
            stream: field(v, "stream")?,
            stop_sequences: list(v, "stop_sequences", string)?,
            metadata: object(v, "metadata", Metadata::read)?,
            tools: list(v, "tools", ToolParam::read)?,
            tool_choice: object(v, "tool_choice", ToolChoice::read)?,
            thinking: object(v, "thinking", ThinkingConfig::read)?,
            provider: get(v, "provider")
                .map(|p| crate::api::provider::read(p.clone()))
                .transpose()
                .map_err(at("provider"))?,
        })
    }
}

/// A string, or a list of blocks (`content`, `system`, a tool result's `content`).
#[derive(Debug, Clone, PartialEq)]
pub enum TextOr<T> {
    Text(String),
    Blocks(Vec<T>),
}

impl<T> TextOr<T> {
    fn read(v: &Value, block: impl Fn(&Value) -> Read<T>) -> Read<Self> {
        match v {
            Value::String(s) => Ok(TextOr::Text(s.clone())),
            Value::Array(a) => items(a, block).map(TextOr::Blocks),
            _ => Err(Bad::new("must be a string or an array of blocks")),
        }
    }
}

/// Who a message is from. Anthropic has only `user` and `assistant`; `system` turns
/// (which some clients send) become chat system messages.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    User,
    Assistant,
    System,
    /// Refused by the conversion, by name.
    Other(String),
}

impl Role {
    fn of(s: String) -> Self {
        match s.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "system" => Role::System,
            _ => Role::Other(s),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
            Role::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageParam {
    pub role: Role,
    pub content: TextOr<ContentBlockParam>,
}

impl MessageParam {
    fn read(v: &Value) -> Read<Self> {
        if !v.is_object() {
            return Err(Bad::new("must be an object"));
        }
        let content = v.get("content").unwrap_or(&Value::Null);
        Ok(MessageParam {
            role: Role::of(required(v, "role")?),
            content: TextOr::read(content, ContentBlockParam::read).map_err(at("content"))?,
        })
    }
}

/// One content block of a message, by its `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentBlockParam {
    Text(TextBlockParam),
    Image(ImageSource),
    Document(DocumentSource),
    ToolUse(ToolUseBlockParam),
    ToolResult(ToolResultBlockParam),
    Thinking(ThinkingBlockParam),
    /// Reasoning only Anthropic can decrypt (`data`): dropped for other families.
    RedactedThinking,
    /// A server tool's call a reply carried (`server_tool_use`), sent back: its result
    /// says what the model needs of it.
    ServerToolUse,
    /// A search's results a reply carried, sent back (an error result has none).
    WebSearchToolResult(Vec<ResultParam>),
    /// A fetch's result a reply carried, sent back: the page's text, where it has one.
    WebFetchToolResult {
        url: String,
        text: Option<String>,
    },
    /// Any other type (server tool calls and results, search results, kinds Anthropic
    /// adds): the conversion decides, by the name.
    Other(String),
}

impl ContentBlockParam {
    fn read(v: &Value) -> Read<Self> {
        let kind = tag(v)?;
        // An image's or a document's `title`, `context` and `citations` are Anthropic's
        // alone; only the source is read.
        Ok(match kind.as_str() {
            "text" => Self::Text(TextBlockParam::read(v)?),
            "image" => Self::Image(source(v, ImageSource::read)?),
            "document" => Self::Document(source(v, DocumentSource::read)?),
            "tool_use" => Self::ToolUse(ToolUseBlockParam {
                id: required(v, "id")?,
                name: required(v, "name")?,
                input: opaque(v, "input"),
            }),
            "tool_result" => Self::ToolResult(ToolResultBlockParam::read(v)?),
            "thinking" => Self::Thinking(ThinkingBlockParam {
                thinking: field(v, "thinking")?.unwrap_or_default(),
                signature: field(v, "signature")?.unwrap_or_default(),
            }),
            "redacted_thinking" => Self::RedactedThinking,
            "server_tool_use" => Self::ServerToolUse,
            "web_search_tool_result" => Self::WebSearchToolResult(
                match get(v, "content") {
                    Some(Value::Array(a)) => items(a, ResultParam::read),
                    _ => Ok(Vec::new()),
                }
                .map_err(at("content"))?,
            ),
            "web_fetch_tool_result" => {
                let c = get(v, "content");
                let doc = c.and_then(|c| get(c, "content"));
                let source = doc.and_then(|d| get(d, "source"));
                Self::WebFetchToolResult {
                    url: c
                        .map(|c| field(c, "url"))
                        .transpose()?
                        .flatten()
                        .unwrap_or_default(),
                    text: source.map(|s| field(s, "data")).transpose()?.flatten(),
                }
            }
            _ => Self::Other(kind),
        })
    }
}

/// One result of a `web_search_tool_result` block sent back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultParam {
    pub url: String,
    pub title: String,
    pub encrypted_content: String,
}

impl ResultParam {
    fn read(v: &Value) -> Read<Self> {
        if !v.is_object() {
            return Err(Bad::new("must be an object"));
        }
        Ok(ResultParam {
            url: field(v, "url")?.unwrap_or_default(),
            title: field(v, "title")?.unwrap_or_default(),
            encrypted_content: field(v, "encrypted_content")?.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TextBlockParam {
    pub text: String,
    /// Passed on as it is (Anthropic's `{"type": "ephemeral", "ttl": ...}`).
    pub cache_control: Option<Value>,
}

impl TextBlockParam {
    fn read(v: &Value) -> Read<Self> {
        if !v.is_object() {
            return Err(Bad::new("must be an object"));
        }
        Ok(TextBlockParam {
            text: required(v, "text")?,
            cache_control: opaque(v, "cache_control"),
        })
    }
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    Base64 {
        media_type: String,
        data: String,
    },
    Url {
        url: String,
    },
    /// `file` (Anthropic's Files API) and kinds to come.
    Other(String),
}

impl ImageSource {
    fn read(v: &Value) -> Read<Self> {
        let kind = tag(v)?;
        Ok(match kind.as_str() {
            "base64" => ImageSource::Base64 {
                media_type: required(v, "media_type")?,
                data: required(v, "data")?,
            },
            "url" => ImageSource::Url {
                url: required(v, "url")?,
            },
            _ => ImageSource::Other(kind),
        })
    }
}

/// Where a document comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentSource {
    /// A PDF.
    Base64 {
        media_type: String,
        data: String,
    },
    Url {
        url: String,
    },
    /// Plain text.
    Text {
        data: String,
    },
    /// `content` (blocks), `file` and kinds to come.
    Other(String),
}

impl DocumentSource {
    fn read(v: &Value) -> Read<Self> {
        let kind = tag(v)?;
        Ok(match kind.as_str() {
            "text" => DocumentSource::Text {
                data: field(v, "data")?.unwrap_or_default(),
            },
            _ => match ImageSource::read(v)? {
                ImageSource::Base64 { media_type, data } => {
                    DocumentSource::Base64 { media_type, data }
                }
                ImageSource::Url { url } => DocumentSource::Url { url },
                ImageSource::Other(kind) => DocumentSource::Other(kind),
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolUseBlockParam {
    pub id: String,
    pub name: String,
    /// The call's arguments (opaque JSON).
    pub input: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolResultBlockParam {
    pub tool_use_id: String,
    /// Text, images and search results.
    pub content: Option<TextOr<ContentBlockParam>>,
    pub is_error: bool,
}

impl ToolResultBlockParam {
    fn read(v: &Value) -> Read<Self> {
        Ok(ToolResultBlockParam {
            tool_use_id: required(v, "tool_use_id")?,
            content: object(v, "content", |c| TextOr::read(c, ContentBlockParam::read))?,
            is_error: field(v, "is_error")?.unwrap_or(false),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ThinkingBlockParam {
    pub thinking: String,
    /// Anthropic's signature, or reasoning this gateway packed for another provider.
    pub signature: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    pub user_id: Option<String>,
}

impl Metadata {
    fn read(v: &Value) -> Read<Self> {
        if !v.is_object() {
            return Err(Bad::new("must be an object"));
        }
        Ok(Metadata {
            user_id: field(v, "user_id")?,
        })
    }
}

/// A tool: a custom one (no `type`, or `custom`) or one of Anthropic's server and
/// client tools, whose `type` names it with a version (`web_search_20250305`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolParam {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// A JSON schema (opaque).
    pub input_schema: Option<Value>,
    /// Web search: the most searches it may run.
    pub max_uses: Option<u64>,
    /// Web fetch (`web_fetch_*`): its parameters (`max_uses`, `max_content_tokens`,
    /// `allowed_domains`, `blocked_domains`), for the gateway's own web_fetch on
    /// endpoints of the other families.
    pub web_fetch: Option<Map<String, Value>>,
    /// Web search (`web_search_*`): its fields (`max_uses`, `allowed_domains`,
    /// `blocked_domains`, `user_location`), for the gateway's own web_search there.
    pub web_search: Option<Map<String, Value>>,
}

impl ToolParam {
    fn read(v: &Value) -> Read<Self> {
        if !v.is_object() {
            return Err(Bad::new("must be an object"));
        }
        let kind: Option<String> = field(v, "type")?;
        let server = |prefix: &str| match (kind.as_deref(), v) {
            (Some(k), Value::Object(m)) if k.starts_with(prefix) => {
                let mut p = m.clone();
                // What only Anthropic's own tools act on.
                for k in ["type", "name", "citations", "cache_control"] {
                    p.remove(k);
                }
                Some(p)
            }
            _ => None,
        };
        let (web_fetch, web_search) = (server("web_fetch_"), server("web_search_"));
        Ok(ToolParam {
            kind,
            name: field(v, "name")?,
            description: field(v, "description")?,
            input_schema: opaque(v, "input_schema"),
            max_uses: field(v, "max_uses")?,
            web_fetch,
            web_search,
        })
    }

    pub fn is_custom(&self) -> bool {
        matches!(self.kind.as_deref(), None | Some("custom"))
    }
}

/// How the model may use the tools (`disable_parallel_tool_use` beside each kind).
#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    Auto {
        disable_parallel_tool_use: bool,
    },
    Any {
        disable_parallel_tool_use: bool,
    },
    Tool {
        name: String,
        disable_parallel_tool_use: bool,
    },
    NoTool,
    Other(String),
}

impl ToolChoice {
    fn read(v: &Value) -> Read<Self> {
        let kind = tag(v)?;
        let disable = field(v, "disable_parallel_tool_use")?.unwrap_or(false);
        Ok(match kind.as_str() {
            "auto" => ToolChoice::Auto {
                disable_parallel_tool_use: disable,
            },
            "any" => ToolChoice::Any {
                disable_parallel_tool_use: disable,
            },
            "tool" => ToolChoice::Tool {
                name: required(v, "name")?,
                disable_parallel_tool_use: disable,
            },
            "none" => ToolChoice::NoTool,
            _ => ToolChoice::Other(kind),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ThinkingConfig {
    Enabled {
        budget_tokens: Option<u64>,
    },
    /// The model decides (`display` and other options are Anthropic's alone).
    Adaptive,
    Disabled,
    /// Kinds to come: no reasoning asked of other families.
    Other(String),
}

impl ThinkingConfig {
    fn read(v: &Value) -> Read<Self> {
        let kind = tag(v)?;
        Ok(match kind.as_str() {
            "enabled" => ThinkingConfig::Enabled {
                budget_tokens: field(v, "budget_tokens")?,
            },
            "adaptive" => ThinkingConfig::Adaptive,
            "disabled" => ThinkingConfig::Disabled,
            _ => ThinkingConfig::Other(kind),
        })
    }
}

//! The chat completions request, in OpenAI's shape with OpenRouter's additions, and
//! the internal request every other surface converts into. Tolerant: unknown fields
//! are kept in `extra` so that they can be passed on to OpenAI-compatible upstreams.
//! What the gateway reads is typed (roles, tool choice, response format, stream
//! options, reasoning); [`super::read`] reads a body into it, naming the field of any
//! value a type refuses, and [`super::validate`] checks what a type cannot say.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

pub use super::content::*;
use crate::error::Result;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ChatRequest {
    /// The most web searches the request's server tools may run (a Messages request
    /// passed through to Anthropic): reserved at the endpoint's `web_search` price.
    #[serde(skip)]
    pub server_searches: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// OpenRouter: ordered fallback models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    pub messages: Vec<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// The tools the gateway runs itself (`openrouter:web_search`, `mcp`, ...), read
    /// from `tools[]` by their `type`; never sent upstream as they are.
    #[serde(skip)]
    pub server_tools: Vec<super::server_tools::ServerTool>,
    /// The bounds of the server-tool loop (`max_tool_calls`, `stop_server_tools_when`).
    #[serde(skip)]
    pub tool_limits: super::tool_loop::Limits,
    /// Searches the gateway ran for this model call's request, billed with it at the
    /// endpoint's `web_search` price (an inner call of the server-tool loop).
    #[serde(skip)]
    pub searches_run: u64,
    /// What the file parser's OCR engine read for it, billed with it (the first model
    /// call only).
    #[serde(skip)]
    pub ocr: crate::usage::Ocr,
    /// Searches the server-tool loop may still run after this model call (each
    /// `openrouter:web_search` tool's unused `max_uses`, within `max_tool_calls`):
    /// reserved at the endpoint's `web_search` price, so a balance that cannot cover
    /// them is refused (402) before the first call, not overdrawn by the loop.
    #[serde(skip)]
    pub searches_ahead: u64,
    /// The loop's web search as the serving endpoint may run it itself
    /// ([`super::native_search`]); never sent upstream as it is.
    #[serde(skip)]
    pub native_search: Option<super::native_search::NativeSearch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// OpenRouter's reasoning settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ReasoningConfig>,
    /// OpenAI's name for the effort alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<Effort>,
    /// OpenRouter provider preferences; read by routing, never sent upstream.
    #[serde(skip)]
    pub provider: Option<Box<super::provider::ProviderPreferences>>,
    /// OpenRouter `plugins` (and `transforms`); read by the gateway, never sent upstream.
    #[serde(skip)]
    pub plugins: super::plugins::Plugins,
    /// Everything else (seed, penalties, logprobs, user, metadata, ...), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    /// Parses and checks a request body: nesting depth first, then the typed request
    /// ([`super::read`]), then the rules a type cannot say ([`super::validate`]).
    pub fn parse(body: &[u8]) -> Result<Self> {
        let req = super::read::chat(super::parse_json(body)?)?;
        super::validate::check(&req)?;
        Ok(req)
    }

    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// The completion budget the caller asked for, whichever name they used.
    /// The larger when both are sent: every translator sends this one value, and the
    /// reservation covers it, so no provider can generate past what was reserved.
    pub fn max_output_tokens(&self) -> Option<u64> {
        match (self.max_completion_tokens, self.max_tokens) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The models to try, in order: `model` first, then the `models` fallbacks.
    pub fn model_candidates(&self) -> Vec<String> {
        let mut out: Vec<String> = self.model.iter().cloned().collect();
        for m in self.models.iter().flatten() {
            if !out.contains(m) {
                out.push(m.clone());
            }
        }
        out
    }

    /// The `response_format` JSON schema the request asks for, if any: (name, schema).
    pub fn json_schema_format(&self) -> Option<(String, Value)> {
        let js = self.response_format.as_ref()?.json_schema()?;
        let name = js.name.clone().unwrap_or_else(|| "response".into());
        Some((
            name,
            js.schema
                .clone()
                .unwrap_or_else(|| serde_json::json!({"type": "object"})),
        ))
    }

    /// Whether the request asks for images in the reply (`modalities` holding `image`).
    pub fn wants_image_output(&self) -> bool {
        self.extra
            .get("modalities")
            .and_then(Value::as_array)
            .is_some_and(|m| m.iter().any(|v| v == "image"))
    }

    /// Whether the request asks for reasoning settings of any kind.
    pub fn sets_reasoning(&self) -> bool {
        self.reasoning.is_some() || self.reasoning_effort.is_some()
    }
}

/// Read by [`super::read`] (types only, no checks), as the tests and tools that
/// build requests from JSON do.
impl<'de> Deserialize<'de> for ChatRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        super::read::chat(v).map_err(serde::de::Error::custom)
    }
}

/// Who a message is from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    #[default]
    User,
    Assistant,
    Tool,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::System,
        Role::Developer,
        Role::User,
        Role::Assistant,
        Role::Tool,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    pub fn of(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// `tool_choice`: a mode, or one named function.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    None,
    Auto,
    Required,
    Function(String),
}

impl Serialize for ToolChoice {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Name<'a> {
            name: &'a str,
        }
        #[derive(Serialize)]
        struct Function<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            function: Name<'a>,
        }
        match self {
            ToolChoice::None => s.serialize_str("none"),
            ToolChoice::Auto => s.serialize_str("auto"),
            ToolChoice::Required => s.serialize_str("required"),
            ToolChoice::Function(name) => Function {
                kind: "function",
                function: Name { name },
            }
            .serialize(s),
        }
    }
}

/// `response_format`. A JSON schema is passed on opaque.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchema },
}

impl ResponseFormat {
    /// The schema asked for, if any.
    pub fn json_schema(&self) -> Option<&JsonSchema> {
        match self {
            ResponseFormat::JsonSchema { json_schema } => Some(json_schema),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JsonSchema {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    /// `description` and what else a caller adds, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// How hard a model is asked to reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effort {
    Xhigh,
    High,
    Medium,
    Low,
    Minimal,
    None,
}

impl Effort {
    pub const ALL: [Effort; 6] = [
        Effort::Xhigh,
        Effort::High,
        Effort::Medium,
        Effort::Low,
        Effort::Minimal,
        Effort::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Effort::Xhigh => "xhigh",
            Effort::High => "high",
            Effort::Medium => "medium",
            Effort::Low => "low",
            Effort::Minimal => "minimal",
            Effort::None => "none",
        }
    }

    pub fn of(s: &str) -> Option<Effort> {
        Effort::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// OpenRouter's `reasoning` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReasoningConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effort: Option<Effort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    /// The message's text: a string content, or its text parts joined.
    pub fn text(&self) -> String {
        match &self.content {
            Some(c) => c.text(),
            None => String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionDef,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

fn function_type() -> String {
    "function".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FunctionCall {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_keeps_unknown_fields() {
        let body = json!({
            "model": "openai/gpt-4o",
            "messages": [{"role": "user", "content": "hi", "cache_control": {"type": "ephemeral"}}],
            "seed": 42,
            "logit_bias": {"50256": -100}
        });
        let req = ChatRequest::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(req.extra["seed"], json!(42));
        assert_eq!(
            req.messages[0].extra["cache_control"],
            json!({"type": "ephemeral"})
        );
        let back = serde_json::to_value(&req).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn content_parts_and_strings() {
        let m: Message = serde_json::from_value(json!({"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            {"type": "input_audio", "input_audio": {"data": "..", "format": "wav"}}
        ]}))
        .unwrap();
        assert_eq!(m.text(), "what is this?");
        let parts = m.content.as_ref().unwrap().parts();
        assert_eq!(parts[1].image_url().unwrap().url, "https://x/y.png");
        assert_eq!(parts[2].kind(), "input_audio");
        assert!(matches!(&parts[2], ContentPart::InputAudio(a) if a.input_audio.format == "wav"));
    }

    #[test]
    fn validation_errors_are_400s() {
        for body in [
            json!({"messages": [{"role": "user", "content": "x"}]}),
            json!({"model": "m", "messages": []}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}),
            json!({"model": "m"}),
            json!({"model": 5, "messages": []}),
        ] {
            let err = ChatRequest::parse(body.to_string().as_bytes()).unwrap_err();
            assert_eq!(err.status(), 400, "{body}");
        }
        assert_eq!(ChatRequest::parse(b"not json").unwrap_err().status(), 400);
    }

    #[test]
    fn candidates_dedupe_in_order() {
        let req = ChatRequest {
            model: Some("a".into()),
            models: Some(vec!["b".into(), "a".into(), "c".into()]),
            ..Default::default()
        };
        assert_eq!(req.model_candidates(), vec!["a", "b", "c"]);
    }

    #[test]
    fn typed_fields_are_read_and_written_back_as_sent() {
        let body = json!({
            "model": "a/b",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": "weather?"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather"}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "w", "description": "the weather", "schema": {"type": "object"}, "strict": true}},
            "stream": true,
            "stream_options": {"include_usage": true},
            "reasoning": {"effort": "xhigh", "exclude": true},
            "reasoning_effort": "minimal"
        });
        let req = ChatRequest::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(req.messages[0].role, Role::Developer);
        assert_eq!(
            req.tool_choice,
            Some(ToolChoice::Function("get_weather".into()))
        );
        let schema = req.response_format.as_ref().and_then(|f| f.json_schema());
        assert_eq!(schema.and_then(|s| s.name.as_deref()), Some("w"));
        assert_eq!(schema.unwrap().extra["description"], "the weather");
        assert_eq!(
            req.stream_options.as_ref().unwrap().include_usage,
            Some(true)
        );
        assert_eq!(req.reasoning.as_ref().unwrap().effort, Some(Effort::Xhigh));
        assert_eq!(req.reasoning_effort, Some(Effort::Minimal));
        assert!(req.extra.is_empty(), "{:?}", req.extra);
        assert_eq!(serde_json::to_value(&req).unwrap(), body);
        for (tc, mode) in [("none", ToolChoice::None), ("auto", ToolChoice::Auto)] {
            let mut b = body.clone();
            b["tool_choice"] = json!(tc);
            let r = ChatRequest::parse(b.to_string().as_bytes()).unwrap();
            assert_eq!(r.tool_choice, Some(mode));
            assert_eq!(serde_json::to_value(&r).unwrap()["tool_choice"], tc);
        }
    }
}

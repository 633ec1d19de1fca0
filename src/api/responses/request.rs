//! The request of the Responses surface (`ResponseCreateParams`, stateless): typed,
//! read from the parsed body once with the field of any refused value named
//! (`input[2].call_id: is required`), and converted into the chat request.

use serde_json::{Map, Value};

use crate::api::read::{
    boolean, detail, effort, list, number, object, opaque_object, string, tool_choice_word, whole,
    Bad, Fields, Read,
};
use crate::api::server_tools::{read_server_tool, ServerTool, SERVER_TOOL_TYPES};
use crate::api::{
    ChatRequest, Content, ContentPart, Effort, FileData, FilePart, FunctionCall, FunctionDef,
    ImagePart, ImageUrl, JsonSchema, Message, ReasoningConfig, ResponseFormat, Role, Tool,
    ToolCall, ToolChoice,
};
use crate::error::{Error, Result};

use super::Echo;

/// The request fields passed on to the chat request as they are.
const PASSED_ON: &[&str] = &[
    "parallel_tool_calls",
    "metadata",
    "user",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "top_logprobs",
    "session_id",
    "session_limits",
    // Trace export's metadata, read by the edge (never sent upstream).
    "trace",
    // OpenRouter's plugins, read into the chat request's typed `plugins`.
    "plugins",
    "transforms",
];

/// `POST /responses`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesRequest {
    pub model: Option<String>,
    /// OpenRouter: ordered fallback models.
    pub models: Option<Vec<String>>,
    pub instructions: Option<String>,
    pub input: Input,
    pub tools: Option<Vec<FunctionTool>>,
    /// The tools the gateway runs (`mcp`, `web_search`, `openrouter:*`), as chat's
    /// `server_tools`.
    pub server_tools: Vec<ServerTool>,
    pub tool_choice: Option<ToolChoice>,
    /// `text.format`; `text` itself is none.
    pub format: Option<ResponseFormat>,
    pub effort: Option<Effort>,
    pub max_output_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stream: Option<bool>,
    /// OpenRouter provider preferences, read by routing (opaque here).
    pub provider: Option<Box<crate::api::provider::ProviderPreferences>>,
    /// [`PASSED_ON`] fields, as sent.
    pub extra: Map<String, Value>,
    /// What the replies echo of the request.
    pub echo: Echo,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Text(String),
    Items(Vec<InputItem>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum InputItem {
    Message {
        role: Role,
        content: Content,
    },
    FunctionCall(ToolCall),
    FunctionCallOutput {
        call_id: String,
        output: String,
    },
    /// A reasoning item of an earlier turn, as the `reasoning_details` it carries.
    Reasoning(Vec<Value>),
    /// A `web_search_call` (or `mcp_list_tools`, `mcp_call`) of an earlier turn (a
    /// reply's output sent back as input): the gateway's loop ran it then, and the answer after it carries what it found;
    /// nothing of it goes to the model.
    WebSearchCall,
}

/// A function tool, flat as Responses writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionTool(pub FunctionDef);

impl ResponsesRequest {
    /// Parses a body.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let Value::Object(map) = crate::api::parse_json(body)? else {
            return Err(Error::bad_request("The body must be a JSON object"));
        };
        let echo = Echo::of(&map);
        let mut f = Fields(map);
        for name in ["previous_response_id", "conversation"] {
            if f.take(name).is_some() {
                return Err(Error::BadRequest(format!(
                    "{name}: this gateway is stateless: send the whole conversation in `input`"
                )));
            }
        }
        Ok(Self::fields(f, echo)?)
    }

    fn fields(mut f: Fields, echo: Echo) -> Read<Self> {
        let mut r = ResponsesRequest {
            model: f.read("model", &string)?,
            models: f.read("models", &|v| list(v, &string))?,
            instructions: f.read("instructions", &string)?,
            input: f.required("input", &input)?,
            tools: None,
            server_tools: Vec::new(),
            tool_choice: f.read("tool_choice", &tool_choice)?,
            format: f.read("text", &text)?.flatten(),
            effort: f
                .read("reasoning", &|r| object(r)?.read("effort", &effort))?
                .flatten(),
            max_output_tokens: f.read("max_output_tokens", &whole)?,
            temperature: f.read("temperature", &number)?,
            top_p: f.read("top_p", &number)?,
            top_k: f.read("top_k", &whole)?,
            stream: f.read("stream", &boolean)?,
            provider: f.read("provider", &crate::api::provider::read)?,
            extra: Map::new(),
            echo,
        };
        for name in PASSED_ON {
            if let Some(v) = f.take(name) {
                r.extra.insert((*name).to_string(), v);
            }
        }
        if let Some(all) = f.read("tools", &|v| list(v, &tool))? {
            let mut functions = Vec::new();
            for t in all {
                match t {
                    AnyTool::Function(f) => functions.push(f),
                    AnyTool::Server(s) => r.server_tools.push(s),
                }
            }
            r.tools = (!functions.is_empty() || r.server_tools.is_empty()).then_some(functions);
        }
        Ok(r)
    }
}

/// Reads an `input` on its own, each item's shape (rules across items, such as a
/// tool output answering an earlier call, are the whole request's): refusals name
/// `input[i]` of the items given.
pub fn check_input(v: Value) -> Result<()> {
    input(v)
        .map(|_| ())
        .map_err(|b| Error::from(b.in_field("input")))
}

fn input(v: Value) -> Read<Input> {
    match v {
        Value::String(s) => Ok(Input::Text(s)),
        Value::Array(_) => list(v, &item).map(Input::Items),
        _ => Err(Bad::new("must be a string or an array of items")),
    }
}

fn item(v: Value) -> Read<InputItem> {
    let mut f = object(v)?;
    let kind = match f.read("type", &string)? {
        Some(k) => k,
        None if f.0.contains_key("role") => "message".into(),
        None => return Err(Bad::new("is required").in_field("type")),
    };
    match kind.as_str() {
        "message" => message(f),
        "function_call" => Ok(InputItem::FunctionCall(ToolCall {
            id: f.required("call_id", &string)?,
            kind: "function".into(),
            function: FunctionCall {
                name: f.required("name", &string)?,
                arguments: f.read("arguments", &string)?.unwrap_or_else(|| "{}".into()),
            },
        })),
        "function_call_output" => Ok(InputItem::FunctionCallOutput {
            call_id: f.required("call_id", &string)?,
            output: f
                .read("output", &|o| texts(o, "must be a string or an array of parts"))?
                .ok_or_else(|| Bad::new("must be a string or an array of parts").in_field("output"))?,
        }),
        "reasoning" => Ok(InputItem::Reasoning(reasoning_details(f.0))),
        "web_search_call" | "mcp_list_tools" | "mcp_call" => Ok(InputItem::WebSearchCall),
        other => Err(Bad::new(format!(
            "item type {other:?} is not supported (message, function_call, function_call_output, reasoning, web_search_call, mcp_list_tools, mcp_call)"
        ))
        .in_field("type")),
    }
}

/// A string, or the texts of a list of parts joined by newlines.
fn texts(v: Value, rule: &str) -> Read<String> {
    match v {
        Value::String(s) => Ok(s),
        Value::Array(parts) => Ok(parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")),
        _ => Err(Bad::new(rule)),
    }
}

fn message(mut f: Fields) -> Read<InputItem> {
    let role = f.required("role", &|r| {
        let s = string(r)?;
        match Role::of(&s) {
            Some(r @ (Role::User | Role::Assistant | Role::System | Role::Developer)) => Ok(r),
            _ => Err(Bad::new(format!(
                "unknown role {s:?} (expected user, assistant, system or developer)"
            ))),
        }
    })?;
    let rule = "must be a string or an array of parts";
    let content = match f.take("content") {
        Some(Value::String(s)) => Content::Text(s),
        Some(Value::Array(parts)) => {
            let parts =
                list(Value::Array(parts), &|p| part(p, role)).map_err(|b| b.in_field("content"))?;
            Content::Parts(parts.into_iter().flatten().collect())
        }
        _ => return Err(Bad::new(rule).in_field("content")),
    };
    Ok(InputItem::Message { role, content })
}

/// A content part as a chat part (none for a refusal, which no model reads back).
fn part(v: Value, role: Role) -> Read<Option<ContentPart>> {
    let mut f = object(v)?;
    let kind = f
        .read("type", &string)?
        .ok_or_else(|| Bad::new("is required").in_field("type"))?;
    let media = matches!(kind.as_str(), "input_image" | "input_file");
    if media && role != Role::User {
        let rule = format!("{} messages cannot carry {kind:?} parts", role.as_str());
        return Err(Bad::new(rule).in_field("type"));
    }
    Ok(Some(match kind.as_str() {
        "input_text" | "output_text" | "text" => ContentPart::text(&f.required("text", &string)?),
        "refusal" => return Ok(None),
        "input_image" => {
            let url = f.read("image_url", &string)?.ok_or_else(|| {
                Bad::new("is required (file_id is not supported)").in_field("image_url")
            })?;
            let detail = f.read("detail", &detail)?;
            ContentPart::ImageUrl(ImagePart {
                image_url: ImageUrl { url, detail },
                extra: Map::new(),
            })
        }
        "input_file" => {
            let data = f.read("file_data", &string)?.ok_or_else(|| {
                Bad::new("is required (file_id and file_url are not supported)")
                    .in_field("file_data")
            })?;
            let filename = f.read("filename", &string)?;
            ContentPart::File(FilePart {
                file: FileData {
                    file_data: Some(data),
                    filename: Some(filename.unwrap_or_else(|| "file.pdf".into())),
                    ..Default::default()
                },
                extra: Map::new(),
            })
        }
        other => {
            return Err(Bad::new(format!("unknown content part type {other:?}")).in_field("type"))
        }
    }))
}

/// The `reasoning_details` a Responses reasoning item carries: what this gateway packed
/// into its `encrypted_content`; otherwise an encrypted blob of its provider's
/// (OpenAI's, with `format` when the item names one), and its text with a signature
/// when it has one (OpenRouter's own reasoning items). Opaque: providers read them.
fn reasoning_details(o: Map<String, Value>) -> Vec<Value> {
    let blob = o.get("encrypted_content").and_then(Value::as_str);
    if let Some(details) = blob.and_then(crate::api::unpack_reasoning) {
        return details;
    }
    let format = o
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("openai-responses-v1");
    let text: String = ["content", "summary"]
        .iter()
        .filter_map(|k| o.get(*k).and_then(Value::as_array))
        .find(|parts| !parts.is_empty())
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    let mut out = Vec::new();
    let detail = |pairs: Vec<(&str, Value)>| {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    };
    if let Some(sig) = o.get("signature").and_then(Value::as_str) {
        out.push(detail(vec![
            ("type", "reasoning.text".into()),
            ("text", text.into()),
            ("signature", sig.into()),
            ("format", format.into()),
            ("index", 0.into()),
        ]));
    }
    if let Some(data) = blob {
        let mut d = vec![
            ("type", "reasoning.encrypted".into()),
            ("data", data.into()),
            ("format", format.into()),
            ("index", out.len().into()),
        ];
        if let Some(id) = o.get("id") {
            d.push(("id", id.clone()));
        }
        out.push(detail(d));
    }
    out
}

/// A tool of a Responses request: a function, flat, or one the gateway runs (OpenAI's
/// `mcp` and `web_search` shapes, OpenRouter's `openrouter:*`).
enum AnyTool {
    Function(FunctionTool),
    Server(ServerTool),
}

fn tool(v: Value) -> Read<AnyTool> {
    let mut f = object(v)?;
    let kind = f
        .read("type", &string)?
        .unwrap_or_else(|| "function".into());
    if SERVER_TOOL_TYPES.contains(&kind.as_str()) {
        return read_server_tool(&kind, f).map(AnyTool::Server);
    }
    if super::WEB_SEARCH_TYPES.contains(&kind.as_str()) {
        return super::search::web_search_tool(f).map(AnyTool::Server);
    }
    if kind != "function" {
        let rule = format!(
            "only function tools and the gateway's server tools ({}, {}) are supported, not {kind:?}",
            SERVER_TOOL_TYPES.join(", "),
            super::WEB_SEARCH_TYPES.join(", ")
        );
        return Err(Bad::new(rule).in_field("type"));
    }
    Ok(AnyTool::Function(FunctionTool(FunctionDef {
        name: f.required("name", &string)?,
        description: f.read("description", &string)?,
        parameters: f.read("parameters", &opaque_object)?,
        strict: f.read("strict", &boolean)?,
    })))
}

fn tool_choice(v: Value) -> Read<ToolChoice> {
    match v {
        Value::String(s) => tool_choice_word(&s),
        Value::Object(m) => {
            let mut f = Fields(m);
            match f.required("type", &string)?.as_str() {
                "function" => Ok(ToolChoice::Function(f.required("name", &string)?)),
                other => Err(Bad::new(format!("{other:?} is not supported")).in_field("type")),
            }
        }
        _ => Err(Bad::new("must be a string or an object")),
    }
}

/// `text`: its `format` as a chat response format (none for plain text).
fn text(v: Value) -> Read<Option<ResponseFormat>> {
    Ok(object(v)?.read("format", &format)?.flatten())
}

fn format(v: Value) -> Read<Option<ResponseFormat>> {
    let mut f = object(v)?;
    match f.read("type", &string)?.as_deref() {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(ResponseFormat::JsonObject)),
        Some("json_schema") => {
            let json_schema = JsonSchema {
                name: f.read("name", &string)?,
                schema: f.read("schema", &opaque_object)?,
                strict: f.read("strict", &boolean)?,
                extra: f.take("description").map_or_else(Map::new, |d| {
                    std::iter::once(("description".to_string(), d)).collect()
                }),
            };
            Ok(Some(ResponseFormat::JsonSchema { json_schema }))
        }
        Some(other) => Err(Bad::new(format!(
            "must be text, json_object or json_schema, not {other:?}"
        ))
        .in_field("type")),
    }
}

impl TryFrom<ResponsesRequest> for ChatRequest {
    type Error = Error;

    fn try_from(r: ResponsesRequest) -> Result<ChatRequest> {
        let mut messages = Vec::new();
        if let Some(s) = r.instructions {
            messages.push(said(Role::System, Content::Text(s)));
        }
        match r.input {
            Input::Text(s) => messages.push(said(Role::User, Content::Text(s))),
            Input::Items(items) => {
                for item in items {
                    add(item, &mut messages);
                }
            }
        }
        // Reasoning that no text or call followed has no turn to go back with.
        messages
            .retain(|m| m.role != Role::Assistant || m.content.is_some() || m.tool_calls.is_some());
        let chat = ChatRequest {
            model: r.model,
            models: r.models,
            messages,
            stream: r.stream,
            max_tokens: r.max_output_tokens,
            temperature: r.temperature,
            top_p: r.top_p,
            top_k: r.top_k,
            tools: r.tools.map(|t| {
                t.into_iter()
                    .map(|FunctionTool(function)| Tool {
                        kind: "function".into(),
                        function,
                    })
                    .collect()
            }),
            server_tools: r.server_tools,
            tool_choice: r.tool_choice,
            response_format: r.format,
            reasoning: r.effort.map(|e| ReasoningConfig {
                effort: Some(e),
                ..Default::default()
            }),
            provider: r.provider,
            extra: r.extra,
            ..Default::default()
        };
        crate::api::validate::check(&chat)?;
        Ok(chat)
    }
}

fn said(role: Role, content: Content) -> Message {
    Message {
        role,
        content: Some(content),
        ..Default::default()
    }
}

/// The last message if it is an assistant turn with no text yet.
fn open_turn(out: &mut [Message]) -> Option<&mut Message> {
    out.last_mut()
        .filter(|m| m.role == Role::Assistant && m.content.is_none())
}

/// One input item appended to the chat messages: an assistant turn's text, calls and
/// reasoning join the turn they belong to, as chat keeps them.
fn add(item: InputItem, out: &mut Vec<Message>) {
    match item {
        InputItem::Message { role, content } => match open_turn(out) {
            // The text of a turn whose reasoning came first.
            Some(last) if role == Role::Assistant && last.tool_calls.is_none() => {
                last.content = Some(content);
            }
            _ => out.push(said(role, content)),
        },
        InputItem::FunctionCall(call) => match out.last_mut() {
            Some(last) if last.role == Role::Assistant => {
                last.tool_calls.get_or_insert_with(Vec::new).push(call);
            }
            _ => out.push(Message {
                role: Role::Assistant,
                tool_calls: Some(vec![call]),
                ..Default::default()
            }),
        },
        InputItem::FunctionCallOutput { call_id, output } => out.push(Message {
            role: Role::Tool,
            content: Some(Content::Text(output)),
            tool_call_id: Some(call_id),
            ..Default::default()
        }),
        // Reasoning of an earlier turn goes back with the assistant turn it belongs
        // to, as `reasoning_details` (thinking signatures and the like).
        InputItem::WebSearchCall => {}
        InputItem::Reasoning(details) if details.is_empty() => {}
        InputItem::Reasoning(details) => match open_turn(out) {
            Some(last) => {
                let d = last
                    .extra
                    .entry("reasoning_details")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = d {
                    a.extend(details);
                }
            }
            None => {
                let mut m = Message {
                    role: Role::Assistant,
                    ..Default::default()
                };
                m.extra
                    .insert("reasoning_details".into(), Value::Array(details));
                out.push(m);
            }
        },
    }
}

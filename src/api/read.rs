//! Reads a parsed chat body into the typed [`ChatRequest`], once, naming the field of
//! any value its type refuses (`messages[2].role: unknown role "wizard"`). Each object
//! is taken apart field by field: what the gateway reads becomes typed, what it only
//! passes on stays in `extra` (type-checked here where OpenAI defines it). The rules a
//! type cannot say (ranges, bounds, rules across fields) are [`super::validate`]'s.
//!
//! Written by hand rather than derived: serde's derived readers say neither the field
//! nor the rule (`invalid type: integer, expected a string at line 1 column 40`), and
//! its tagged and untagged enums cost wasm the size budget has no room for.

use serde_json::{Map, Value};

use super::request::*;
use super::validate::check_depth;
use crate::error::{Error, Result};

/// A JSON request body of any surface: nesting depth checked before parsing.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value> {
    check_depth(body)?;
    Ok(serde_json::from_slice(body)?)
}

/// A refused value and where it is, relative to what was being read.
#[derive(Debug)]
pub(crate) struct Bad {
    path: String,
    rule: String,
}

impl Bad {
    pub(crate) fn new(rule: impl std::fmt::Display) -> Self {
        Bad {
            path: String::new(),
            rule: rule.to_string(),
        }
    }

    pub(crate) fn rule(&self) -> &str {
        &self.rule
    }

    /// `self` under the field `name` (out of line: every field read shares it).
    #[inline(never)]
    pub(crate) fn in_field(mut self, name: &str) -> Self {
        self.path.insert_str(0, &format!(".{name}"));
        self
    }

    #[inline(never)]
    pub(crate) fn at_index(mut self, i: usize) -> Self {
        self.path.insert_str(0, &format!("[{i}]"));
        self
    }
}

impl From<Bad> for Error {
    fn from(b: Bad) -> Self {
        let path = b.path.strip_prefix('.').unwrap_or(&b.path);
        Error::BadRequest(format!("{path}: {}", b.rule))
    }
}

pub(crate) type Read<T> = std::result::Result<T, Bad>;

/// What kind of JSON value `v` is, for messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short, safe rendering of a value the caller sent, for messages.
pub(crate) fn shown(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.len() > 64 {
        format!("{}...", crate::error::truncate(&s, 61))
    } else {
        s
    }
}

/// An object's fields, taken out one by one; what is left is its `extra`.
pub(crate) struct Fields(pub(crate) Map<String, Value>);

impl Fields {
    /// The field `name`, if present and not null.
    pub(crate) fn take(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name).filter(|v| !v.is_null())
    }

    /// The field `name` read by `read`, if present and not null.
    /// (`read` as a `dyn`: one copy of this per type read, not per call.)
    pub(crate) fn read<T>(
        &mut self,
        name: &str,
        read: &dyn Fn(Value) -> Read<T>,
    ) -> Read<Option<T>> {
        self.take(name)
            .map(read)
            .transpose()
            .map_err(|b| b.in_field(name))
    }

    pub(crate) fn required<T>(&mut self, name: &str, read: &dyn Fn(Value) -> Read<T>) -> Read<T> {
        self.read(name, read)?
            .ok_or_else(|| Bad::new("is required").in_field(name))
    }
}

pub(crate) fn object(v: Value) -> Read<Fields> {
    match v {
        Value::Object(m) => Ok(Fields(m)),
        other => Err(Bad::new(format!(
            "must be an object, not {}",
            kind_of(&other)
        ))),
    }
}

pub(crate) fn string(v: Value) -> Read<String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(Bad::new(format!(
            "must be a string, not {}",
            kind_of(&other)
        ))),
    }
}

pub(crate) fn boolean(v: Value) -> Read<bool> {
    v.as_bool()
        .ok_or_else(|| Bad::new(format!("must be a boolean, not {}", kind_of(&v))))
}

pub(crate) fn number(v: Value) -> Read<f64> {
    v.as_f64()
        .ok_or_else(|| Bad::new(format!("must be a number, not {}", kind_of(&v))))
}

pub(crate) fn whole(v: Value) -> Read<u64> {
    v.as_u64()
        .ok_or_else(|| Bad::new(format!("must be a whole number, not {}", shown(&v))))
}

/// An object, kept opaque (schemas, metadata).
pub(crate) fn opaque_object(v: Value) -> Read<Value> {
    match v {
        Value::Object(_) => Ok(v),
        other => Err(Bad::new(format!(
            "must be an object, not {}",
            kind_of(&other)
        ))),
    }
}

pub(crate) fn list<T>(v: Value, read: &dyn Fn(Value) -> Read<T>) -> Read<Vec<T>> {
    let Value::Array(items) = v else {
        return Err(Bad::new(format!("must be an array, not {}", kind_of(&v))));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, x) in items.into_iter().enumerate() {
        out.push(read(x).map_err(|b| b.at_index(i))?);
    }
    Ok(out)
}

/// The index in `names` of the string `v` (one copy for every enum read by name).
#[inline(never)]
pub(crate) fn named(v: Value, names: &[&str]) -> Read<usize> {
    let s = string(v)?;
    names
        .iter()
        .position(|n| *n == s)
        .ok_or_else(|| Bad::new(format!("must be one of {}, not {s:?}", names.join(", "))))
}

/// An image's `detail`.
pub(crate) fn detail(v: Value) -> Read<String> {
    const DETAILS: [&str; 3] = ["auto", "low", "high"];
    let i = named(v, &DETAILS)?;
    Ok(DETAILS.get(i).copied().unwrap_or("auto").to_string())
}

pub(crate) fn check_string(v: &Value) -> Read<()> {
    match v {
        Value::String(_) => Ok(()),
        other => Err(Bad::new(format!(
            "must be a string, not {}",
            kind_of(other)
        ))),
    }
}

pub(crate) fn check_bool(v: &Value) -> Read<()> {
    match v {
        Value::Bool(_) => Ok(()),
        other => Err(Bad::new(format!(
            "must be a boolean, not {}",
            kind_of(other)
        ))),
    }
}

/// A chat request body, types only.
pub(crate) fn chat(body: Value) -> Result<ChatRequest> {
    let Value::Object(map) = body else {
        return Err(Error::bad_request("The body must be a JSON object"));
    };
    Ok(request(Fields(map))?)
}

fn request(mut f: Fields) -> Read<ChatRequest> {
    let req = ChatRequest {
        server_searches: 0,
        model: f.read("model", &string)?,
        models: f.read("models", &|v| list(v, &string))?,
        tools: None,
        server_tools: Vec::new(),
        tool_limits: Default::default(),
        searches_run: 0,
        ocr: Default::default(),
        searches_ahead: 0,
        native_search: None,
        messages: f.required("messages", &|v| list(v, &message))?,
        tool_choice: f.read("tool_choice", &tool_choice)?,
        stream: f.read("stream", &boolean)?,
        stream_options: f.read("stream_options", &stream_options)?,
        max_tokens: f.read("max_tokens", &whole)?,
        max_completion_tokens: f.read("max_completion_tokens", &whole)?,
        temperature: f.read("temperature", &number)?,
        top_p: f.read("top_p", &number)?,
        top_k: f.read("top_k", &whole)?,
        stop: f.read("stop", &stop)?,
        response_format: f.read("response_format", &response_format)?,
        reasoning: f.read("reasoning", &reasoning)?,
        reasoning_effort: f.read("reasoning_effort", &effort)?,
        provider: f.read("provider", &super::provider::read)?,
        plugins: super::plugins::read_fields(&mut f)?,
        extra: Map::new(),
    };
    let (tools, server_tools) = split_tools(f.read("tools", &|v| list(v, &tool))?);
    let tool_limits = match server_tools.is_empty() {
        true => Default::default(),
        false => super::tool_loop::read_limits(&mut f)?,
    };
    Ok(ChatRequest {
        tools,
        server_tools,
        tool_limits,
        extra: f.0,
        ..req
    })
}

/// A `tools[]` entry: the client's function, or a tool the gateway runs.
pub(crate) enum AnyTool {
    Function(Tool),
    Server(super::server_tools::ServerTool),
}

/// The client's functions (as `tools`, `None` when there are none and none was sent)
/// apart from the server tools.
pub(crate) fn split_tools(
    all: Option<Vec<AnyTool>>,
) -> (Option<Vec<Tool>>, Vec<super::server_tools::ServerTool>) {
    let Some(all) = all else {
        return (None, Vec::new());
    };
    let (mut functions, mut server) = (Vec::new(), Vec::new());
    for t in all {
        match t {
            AnyTool::Function(f) => functions.push(f),
            AnyTool::Server(s) => server.push(s),
        }
    }
    let functions = (!functions.is_empty() || server.is_empty()).then_some(functions);
    (functions, server)
}

pub(super) fn stop(v: Value) -> Read<Stop> {
    match v {
        Value::String(s) => Ok(Stop::One(s)),
        Value::Array(_) => list(v, &string).map(Stop::Many),
        other => Err(Bad::new(format!(
            "must be a string or an array of strings, not {}",
            kind_of(&other)
        ))),
    }
}

pub(crate) fn effort(v: Value) -> Read<Effort> {
    let i = named(v, &Effort::ALL.map(Effort::as_str))?;
    Effort::ALL
        .get(i)
        .copied()
        .ok_or_else(|| Bad::new("unknown effort"))
}

pub(super) fn reasoning(v: Value) -> Read<ReasoningConfig> {
    let mut f = object(v)?;
    Ok(ReasoningConfig {
        effort: f.read("effort", &effort)?,
        max_tokens: f.read("max_tokens", &whole)?,
        exclude: f.read("exclude", &boolean)?,
        enabled: f.read("enabled", &boolean)?,
        extra: f.0,
    })
}

pub(super) fn stream_options(v: Value) -> Read<StreamOptions> {
    let mut f = object(v)?;
    Ok(StreamOptions {
        include_usage: f.read("include_usage", &boolean)?,
        extra: f.0,
    })
}

fn response_format(v: Value) -> Read<ResponseFormat> {
    let mut f = object(v)?;
    let kinds = ["text", "json_object", "json_schema"];
    match f.required("type", &|t| named(t, &kinds))? {
        0 => Ok(ResponseFormat::Text),
        1 => Ok(ResponseFormat::JsonObject),
        _ => Ok(ResponseFormat::JsonSchema {
            json_schema: f.required("json_schema", &json_schema)?,
        }),
    }
}

fn json_schema(v: Value) -> Read<JsonSchema> {
    let mut f = object(v)?;
    Ok(JsonSchema {
        name: f.read("name", &string)?,
        schema: f.read("schema", &opaque_object)?,
        strict: f.read("strict", &boolean)?,
        extra: f.0,
    })
}

/// A tool choice given as a word (every surface spells these alike).
pub(crate) fn tool_choice_word(s: &str) -> Read<ToolChoice> {
    match s {
        "none" => Ok(ToolChoice::None),
        "auto" => Ok(ToolChoice::Auto),
        "required" => Ok(ToolChoice::Required),
        other => Err(Bad::new(format!(
            "must be \"none\", \"auto\", \"required\" or a function, not {other:?}"
        ))),
    }
}

fn tool_choice(v: Value) -> Read<ToolChoice> {
    match v {
        Value::String(s) => tool_choice_word(&s),
        Value::Object(m) => {
            let mut f = Fields(m);
            f.read("type", &|t| named(t, &["function"]).map(drop))?;
            let name = f.required("function", &|v| object(v)?.required("name", &string))?;
            Ok(ToolChoice::Function(name))
        }
        other => Err(Bad::new(format!(
            "must be a string or an object, not {}",
            kind_of(&other)
        ))),
    }
}

fn tool(v: Value) -> Read<AnyTool> {
    use super::server_tools::{read_server_tool, SERVER_TOOL_TYPES};
    let mut f = object(v)?;
    if let Some(ty) = f.read("type", &string)? {
        if SERVER_TOOL_TYPES.contains(&ty.as_str()) {
            return read_server_tool(&ty, f).map(AnyTool::Server);
        }
        if ty != "function" {
            let rule = format!(
                "must be \"function\" or a server tool ({}), not {ty:?}",
                SERVER_TOOL_TYPES.join(", ")
            );
            return Err(Bad::new(rule).in_field("type"));
        }
    }
    Ok(AnyTool::Function(Tool {
        kind: "function".into(),
        function: f.required("function", &function_def)?,
    }))
}

fn function_def(v: Value) -> Read<FunctionDef> {
    let mut f = object(v)?;
    Ok(FunctionDef {
        name: f.required("name", &string)?,
        description: f.read("description", &string)?,
        parameters: f.read("parameters", &opaque_object)?,
        strict: f.read("strict", &boolean)?,
    })
}

fn role(v: Value) -> Read<Role> {
    let s = string(v)?;
    Role::of(&s).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        Bad::new(format!(
            "unknown role {s:?} (expected {})",
            names.join(", ")
        ))
    })
}

fn message(v: Value) -> Read<Message> {
    let mut f = object(v)?;
    let role = f.required("role", &role)?;
    let name = f.read("name", &string)?;
    let content = f.read("content", &|c| content(c, role))?;
    if content.is_none() && role != Role::Assistant {
        return Err(Bad::new("is required").in_field("content"));
    }
    let tool_calls = f.read("tool_calls", &|v| list(v, &tool_call))?;
    if tool_calls.is_some() && role != Role::Assistant {
        return Err(Bad::new("only assistant messages carry tool calls").in_field("tool_calls"));
    }
    let tool_call_id = f.read("tool_call_id", &string)?;
    match (role, &tool_call_id) {
        (Role::Tool, None) => return Err(Bad::new("is required").in_field("tool_call_id")),
        (Role::Tool, _) | (_, None) => {}
        (_, Some(_)) => {
            return Err(Bad::new("only tool messages carry a tool_call_id").in_field("tool_call_id"))
        }
    }
    Ok(Message {
        role,
        content,
        name,
        tool_calls,
        tool_call_id,
        extra: f.0,
    })
}

fn content(v: Value, role: Role) -> Read<Content> {
    match v {
        Value::String(s) => Ok(Content::Text(s)),
        Value::Array(_) => list(v, &|p| part(p, role)).map(Content::Parts),
        other => Err(Bad::new(format!(
            "must be a string or an array of content parts, not {}",
            kind_of(&other)
        ))),
    }
}

/// The content part types a role's messages may carry.
fn part_kinds(role: Role) -> &'static [&'static str] {
    match role {
        Role::User => &["text", "image_url", "input_audio", "file", "video_url"],
        Role::Assistant => &["text", "refusal"],
        Role::System | Role::Developer | Role::Tool => &["text"],
    }
}

fn part(v: Value, role: Role) -> Read<ContentPart> {
    let mut f = object(v)?;
    let kind = f.required("type", &string)?;
    let allowed = part_kinds(role);
    if !allowed.contains(&kind.as_str()) {
        let known = part_kinds(Role::User).contains(&kind.as_str()) || kind == "refusal";
        let why = if known {
            format!("{} messages cannot carry {kind:?} parts", role.as_str())
        } else {
            format!("unknown content part type {kind:?}")
        };
        let rule = format!("{why} (expected {})", allowed.join(", "));
        return Err(Bad::new(rule).in_field("type"));
    }
    typed_part(kind, f)
}

/// A part of any type: a known one read into its variant, any other kept whole.
pub(crate) fn any_part(v: Value) -> Read<ContentPart> {
    let mut f = object(v)?;
    let kind = f.required("type", &string)?;
    typed_part(kind, f)
}

/// The part of type `kind` whose other fields are `f`: its payload typed (and checked
/// where it lies), the rest kept as sent.
fn typed_part(kind: String, mut f: Fields) -> Read<ContentPart> {
    Ok(match kind.as_str() {
        "text" => ContentPart::Text(TextPart {
            text: f.required("text", &string)?,
            cache_control: f.take("cache_control"),
            extra: f.0,
        }),
        "image_url" => ContentPart::ImageUrl(ImagePart {
            image_url: f.required("image_url", &image_url)?,
            extra: f.0,
        }),
        "input_audio" => ContentPart::InputAudio(AudioPart {
            input_audio: f.required("input_audio", &input_audio)?,
            extra: f.0,
        }),
        "file" => ContentPart::File(FilePart {
            file: f.required("file", &file)?,
            extra: f.0,
        }),
        "video_url" => ContentPart::VideoUrl(VideoPart {
            video_url: f.required("video_url", &video_url)?,
            extra: f.0,
        }),
        "refusal" => ContentPart::Refusal(RefusalPart {
            refusal: f.required("refusal", &string)?,
            extra: f.0,
        }),
        _ => {
            f.0.insert("type".into(), Value::String(kind));
            ContentPart::Other(f.0)
        }
    })
}

/// Whether a media part's URL is one the gateway fetches or passes on.
pub(crate) fn media_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://") || url.starts_with("data:")
}

/// A media URL: http(s) or data:.
fn url(v: Value) -> Read<String> {
    let url = string(v)?;
    if !media_url(&url) {
        return Err(Bad::new("must be an http(s) URL or a data: URL"));
    }
    Ok(url)
}

fn image_url(v: Value) -> Read<ImageUrl> {
    let mut f = object(v)?;
    let url = f.required("url", &url)?;
    let detail = f.read("detail", &detail)?;
    Ok(ImageUrl { url, detail })
}

fn video_url(v: Value) -> Read<VideoUrl> {
    let mut f = object(v)?;
    let url = f.required("url", &url)?;
    Ok(VideoUrl { url, extra: f.0 })
}

fn input_audio(v: Value) -> Read<InputAudio> {
    let mut f = object(v)?;
    Ok(InputAudio {
        data: f.required("data", &string)?,
        format: f.required("format", &string)?,
        extra: f.0,
    })
}

fn file(v: Value) -> Read<FileData> {
    let mut f = object(v)?;
    let file = FileData {
        file_data: f.read("file_data", &string)?,
        file_id: f.read("file_id", &string)?,
        filename: f.read("filename", &string)?,
        extra: Map::new(),
    };
    if file.file_data.is_none() && file.file_id.is_none() {
        return Err(Bad::new("is required (or file_id)").in_field("file_data"));
    }
    Ok(FileData { extra: f.0, ..file })
}

fn tool_call(v: Value) -> Read<ToolCall> {
    let mut f = object(v)?;
    let id = f.required("id", &string)?;
    f.read("type", &|t| named(t, &["function"]).map(drop))?;
    let function = f.required("function", &|v| {
        let mut g = object(v)?;
        Ok(FunctionCall {
            name: g.required("name", &string)?,
            arguments: g.read("arguments", &string)?.unwrap_or_default(),
        })
    })?;
    Ok(ToolCall {
        id,
        kind: "function".into(),
        function,
    })
}

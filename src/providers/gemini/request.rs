//! The chat request as a `generateContent` request: roles user/model, the system
//! prompt as `systemInstruction`, sampling and output settings in `generationConfig`,
//! function declarations, calls and responses, media inline or by URI. The body is
//! typed ([`Body`]); only what the caller passes through opaque (schemas, tool
//! arguments and results, penalties) stays JSON.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::thinking::{thinking_config, ThinkingConfig};
use super::REASONING_FORMAT;
use crate::api::ChatRequest;
use crate::api::{Content, ContentPart, Message, Role, ToolChoice};
use crate::error::{Error, Result};
use crate::providers::media::{self, Media, Source};
use crate::providers::{parse_arguments, wants_json, Reasoning, Target, UpstreamRequest};

/// What Gemini's documentation says to send as the signature of a function call that
/// has none (a turn written by another model, or by the caller).
const NO_SIGNATURE: &str = "skip_thought_signature_validator";

/// A `GenerateContentRequest`. Its fields (and its parts') are in the order the map it
/// replaced wrote them (alphabetical), so that the bytes sent did not change.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    contents: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    generation_config: GenerationConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Instruction<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tools<'a>>,
}

#[derive(Debug, Serialize)]
struct Turn<'a> {
    parts: Vec<Part<'a>>,
    role: &'static str,
}

#[derive(Debug, Serialize)]
struct Instruction<'a> {
    parts: Vec<Part<'a>>,
}

/// One part of a turn: text, media, a function call or a function's response.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    file_data: Option<FileData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<FunctionCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_response: Option<FunctionResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inline_data: Option<Blob<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileData<'a> {
    file_uri: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mime_type: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Blob<'a> {
    data: &'a str,
    mime_type: String,
}

#[derive(Debug, Serialize)]
struct FunctionCall<'a> {
    args: Value,
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct FunctionResponse<'a> {
    name: &'a str,
    response: Value,
}

#[derive(Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_config: Option<ImageConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_modalities: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
}

impl GenerationConfig<'_> {
    fn is_empty(&self) -> bool {
        *self == GenerationConfig::default()
    }
}

#[derive(Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    aspect_ratio: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_size: Option<&'a Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Tools<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    function_declarations: Vec<Declaration<'a>>,
    /// Grounding with Google Search, run by Google ([`crate::api::native_search`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    google_search: Option<GoogleSearch>,
}

#[derive(Debug, Serialize)]
struct GoogleSearch {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Declaration<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters_json_schema: Option<&'a Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    function_calling_config: CallingConfig<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CallingConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_function_names: Option<[&'a str; 1]>,
    mode: &'static str,
}

/// `stream`: whether to ask for a stream (the caller's wish, or the gateway's when it
/// gathers a stream into the one reply its caller wants).
pub fn build_request(target: &Target, req: &ChatRequest, stream: bool) -> Result<UpstreamRequest> {
    let needs_sigs = needs_signatures(&target.endpoint.upstream_model);
    let (system, contents) = convert_messages(&req.messages, needs_sigs)?;
    let (tools, tool_config) = tools(req);
    let body = Body {
        contents,
        generation_config: generation_config(target, req),
        system_instruction: (!system.is_empty()).then_some(Instruction { parts: system }),
        tool_config,
        tools,
    };
    let action = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    let mut headers = vec![("x-goog-api-key".to_string(), target.key()?.to_string())];
    headers.extend(target.extra_headers());
    let url = format!(
        "{}/models/{}:{action}",
        target.base_url, target.endpoint.upstream_model
    );
    UpstreamRequest::post_json(url, &body, headers)
}

/// Sampling, output length, stops, JSON output, thinking and image output.
fn generation_config<'a>(target: &Target, req: &'a ChatRequest) -> GenerationConfig<'a> {
    let max_output = target
        .endpoint
        .cap_output(target.model, req.max_output_tokens());
    let json = wants_json(req);
    let thinking = Reasoning::from_request(req).map(|r| {
        let most = max_output
            .or(target.endpoint.max_completion_tokens)
            .unwrap_or(8192);
        let e = &target.endpoint;
        thinking_config(
            e.thinking_as.as_deref().unwrap_or(&e.upstream_model),
            &r,
            most,
        )
    });
    let (response_modalities, image_config) = image_output(req);
    GenerationConfig {
        frequency_penalty: req.extra.get("frequency_penalty"),
        image_config,
        max_output_tokens: max_output,
        presence_penalty: req.extra.get("presence_penalty"),
        response_json_schema: json
            .then(|| req.json_schema_format())
            .flatten()
            .map(|(_, schema)| schema),
        response_mime_type: json.then_some("application/json"),
        response_modalities,
        seed: req.extra.get("seed"),
        stop_sequences: req.stop.as_ref().map(|s| s.to_vec()),
        temperature: req.temperature,
        thinking_config: thinking,
        top_k: req.top_k,
        top_p: req.top_p,
    }
}

/// The modalities to answer in (upper case) and the image settings, when the request
/// asks for images.
fn image_output(req: &ChatRequest) -> (Option<Vec<String>>, Option<ImageConfig<'_>>) {
    if !req.wants_image_output() {
        return (None, None);
    }
    let modalities = req
        .extra
        .get("modalities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_ascii_uppercase)
        .collect();
    let config = req
        .extra
        .get("image_config")
        .and_then(Value::as_object)
        .map(|ic| ImageConfig {
            aspect_ratio: ic.get("aspect_ratio"),
            image_size: ic.get("image_size"),
        });
    (Some(modalities), config)
}

/// The function declarations, and how the model is to call them.
fn tools(req: &ChatRequest) -> (Vec<Tools<'_>>, Option<ToolConfig<'_>>) {
    let decls: Vec<Declaration> = req
        .tools
        .iter()
        .flatten()
        .map(|t| Declaration {
            description: t.function.description.as_deref(),
            name: &t.function.name,
            parameters_json_schema: t.function.parameters.as_ref(),
        })
        .collect();
    let search = crate::api::native_search::sent(req).map(|_| Tools {
        function_declarations: Vec::new(),
        google_search: Some(GoogleSearch {}),
    });
    if decls.is_empty() {
        return (search.into_iter().collect(), None);
    }
    let config = req.tool_choice.as_ref().map(|tc| ToolConfig {
        function_calling_config: convert_tool_choice(tc),
    });
    let functions = Tools {
        function_declarations: decls,
        google_search: None,
    };
    (std::iter::once(functions).chain(search).collect(), config)
}

fn convert_tool_choice(tc: &ToolChoice) -> CallingConfig<'_> {
    let (mode, only) = match tc {
        ToolChoice::Auto => ("AUTO", None),
        ToolChoice::None => ("NONE", None),
        ToolChoice::Required => ("ANY", None),
        ToolChoice::Function(name) => ("ANY", Some([name.as_str()])),
    };
    CallingConfig {
        allowed_function_names: only,
        mode,
    }
}

/// A content part as a Gemini part: text, or media inline (`inlineData`) or by URI
/// (`fileData`: YouTube videos, Files API uploads, and what the edge did not inline).
fn part(p: &ContentPart) -> Option<Part<'_>> {
    if let ContentPart::Text(t) = p {
        return Some(Part {
            text: Some(&t.text),
            ..Default::default()
        });
    }
    let m = Media::of(p)?;
    Some(match m.source {
        Source::Inline(data) => Part {
            inline_data: Some(Blob {
                data,
                mime_type: m.mime,
            }),
            ..Default::default()
        },
        Source::Url(url) => Part {
            file_data: Some(FileData {
                file_uri: url,
                mime_type: (!media::is_youtube(url)).then_some(m.mime),
            }),
            ..Default::default()
        },
    })
}

fn parts(content: Option<&Content>) -> Vec<Part<'_>> {
    match content {
        None => Vec::new(),
        Some(Content::Text(s)) => vec![Part {
            text: Some(s),
            ..Default::default()
        }],
        Some(Content::Parts(ps)) => ps.iter().filter_map(part).collect(),
    }
}

/// Gemini 3 and later refuse a function call in the current turn without its thought
/// signature; earlier models take one but do not need it.
fn needs_signatures(upstream_model: &str) -> bool {
    let version = upstream_model
        .strip_prefix("gemini-")
        .and_then(|v| v.split(['.', '-']).next())
        .and_then(|v| v.parse::<u32>().ok());
    version.is_none_or(|v| v >= 3)
}

/// The thought signatures a caller sends back in an assistant message's
/// `reasoning_details`: (the tool call ID it belongs to, if any; the signature).
fn signatures(details: Option<&Value>) -> Vec<(Option<&str>, &str)> {
    details
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|d| d.get("format").and_then(Value::as_str) == Some(REASONING_FORMAT))
        .filter(|d| d.get("type").and_then(Value::as_str) == Some("reasoning.encrypted"))
        .filter_map(|d| {
            let data = d.get("data").and_then(Value::as_str)?;
            Some((d.get("id").and_then(Value::as_str), data))
        })
        .collect()
}

/// An assistant message as a model turn, thought signatures back where Gemini put them:
/// on their function calls, and one without a call on the turn's last part. A turn
/// whose calls carry none gets Gemini's placeholder on its first call when the model
/// needs signatures.
fn model_turn<'m>(
    m: &'m Message,
    needs_sigs: bool,
    names: &mut HashMap<&'m str, &'m str>,
) -> Result<Vec<Part<'m>>> {
    let sigs = signatures(m.extra.get("reasoning_details"));
    let mut ps = parts(m.content.as_ref());
    ps.retain(|p| p.text.is_none_or(|t| !t.is_empty()));
    if let (Some(last), Some((_, sig))) = (ps.last_mut(), sigs.iter().find(|(id, _)| id.is_none()))
    {
        last.thought_signature = Some(sig);
    }
    let mut signed = false;
    for call in m.tool_calls.iter().flatten() {
        names.insert(&call.id, &call.function.name);
        let sig = sigs.iter().find(|(id, _)| *id == Some(call.id.as_str()));
        signed |= sig.is_some();
        ps.push(Part {
            function_call: Some(FunctionCall {
                args: parse_arguments(&call.function.arguments)?,
                name: &call.function.name,
            }),
            thought_signature: sig.map(|(_, s)| *s),
            ..Default::default()
        });
    }
    if needs_sigs && !signed {
        if let Some(first) = ps.iter_mut().find(|p| p.function_call.is_some()) {
            first.thought_signature = Some(NO_SIGNATURE);
        }
    }
    Ok(ps)
}

/// A tool message as a function response, keyed by the function's name (from the
/// assistant turn that called it).
fn tool_response<'m>(m: &'m Message, names: &HashMap<&'m str, &'m str>) -> Result<Part<'m>> {
    let id = m.tool_call_id.as_deref().unwrap_or_default();
    let name = names
        .get(id)
        .copied()
        .or(m.name.as_deref())
        .ok_or_else(|| {
            Error::bad_request(format!("tool message {id:?} answers no earlier tool call"))
        })?;
    let text = m.text();
    let response = match serde_json::from_slice::<Value>(text.as_bytes()) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({"content": text}),
    };
    Ok(Part {
        function_response: Some(FunctionResponse { name, response }),
        ..Default::default()
    })
}

/// OpenAI messages → (system parts, Gemini contents). Consecutive turns of one role
/// are merged.
fn convert_messages(
    messages: &[Message],
    needs_sigs: bool,
) -> Result<(Vec<Part<'_>>, Vec<Turn<'_>>)> {
    let mut system = Vec::new();
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut out: Vec<Turn> = Vec::new();
    for m in messages {
        let (role, ps) = match m.role {
            Role::System | Role::Developer => {
                system.extend(parts(m.content.as_ref()));
                continue;
            }
            Role::Assistant => ("model", model_turn(m, needs_sigs, &mut names)?),
            Role::Tool => ("user", vec![tool_response(m, &names)?]),
            Role::User => ("user", parts(m.content.as_ref())),
        };
        match out.last_mut() {
            _ if ps.is_empty() => {}
            Some(t) if t.role == role => t.parts.extend(ps),
            _ => out.push(Turn { parts: ps, role }),
        }
    }
    if out.is_empty() {
        return Err(Error::bad_request(
            "at least one user or assistant message is required",
        ));
    }
    Ok((system, out))
}

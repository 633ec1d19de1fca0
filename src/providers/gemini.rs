//! Google's Gemini API (`models/{model}:generateContent`, and
//! `:streamGenerateContent?alt=sse`): roles user/model, `systemInstruction`,
//! `generationConfig`, function declarations and calls, inline images, usage metadata,
//! finish reasons and safety blocks.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::{
    ended_early, invalid_event, invalid_reply, json_schema_format, mime_from_url, parse_arguments,
    parse_data_url, stream_error, wants_json, Reasoning, Target, UpstreamRequest,
};
use crate::api::{
    AssistantMessage, ChatChunk, ChatCompletion, ChatRequest, Choice, CompletionTokensDetails,
    ContentPart, Delta, FunctionCall, FunctionCallDelta, GenerationMeta, Message,
    PromptTokensDetails, ToolCall, ToolCallDelta, Usage,
};
use crate::error::{Error, Result};

pub fn build_request(target: &Target, req: &ChatRequest) -> Result<UpstreamRequest> {
    let mut body = Map::new();
    let (system, contents) = convert_messages(&req.messages)?;
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    body.insert("contents".into(), Value::Array(contents));

    let mut gen = Map::new();
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            gen.insert(k.into(), v);
        }
    };
    set("temperature", req.temperature.map(|t| json!(t)));
    set("topP", req.top_p.map(|t| json!(t)));
    set("topK", req.top_k.map(|t| json!(t)));
    set("maxOutputTokens", req.max_output_tokens().map(|t| json!(t)));
    set(
        "stopSequences",
        req.stop.as_ref().map(|s| json!(s.to_vec())),
    );
    for (ours, theirs) in [
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("seed", "seed"),
    ] {
        set(theirs, req.extra.get(ours).cloned());
    }
    if wants_json(req) {
        set("responseMimeType", Some(json!("application/json")));
        set(
            "responseJsonSchema",
            json_schema_format(req).map(|(_, schema)| schema),
        );
    }
    if let Some(r) = Reasoning::from_request(req) {
        let budget = r.budget(
            req.max_output_tokens()
                .or(target.endpoint.max_completion_tokens)
                .unwrap_or(8192),
        );
        set(
            "thinkingConfig",
            Some(json!({"thinkingBudget": budget, "includeThoughts": !r.exclude})),
        );
    }
    if !gen.is_empty() {
        body.insert("generationConfig".into(), Value::Object(gen));
    }

    let decls: Vec<Value> = req
        .tools
        .iter()
        .flatten()
        .map(|t| {
            let mut d = json!({"name": t.function.name});
            if let Some(desc) = &t.function.description {
                crate::api::set_field(&mut d, "description", json!(desc));
            }
            if let Some(p) = &t.function.parameters {
                crate::api::set_field(&mut d, "parametersJsonSchema", p.clone());
            }
            d
        })
        .collect();
    if !decls.is_empty() {
        body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        if let Some(cfg) = req.tool_choice.as_ref().and_then(convert_tool_choice) {
            body.insert("toolConfig".into(), json!({"functionCallingConfig": cfg}));
        }
    }

    let action = if req.is_stream() {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    let mut headers = vec![("x-goog-api-key".to_string(), target.key()?.to_string())];
    headers.extend(target.extra_headers());
    UpstreamRequest::post_json(
        format!(
            "{}/models/{}:{action}",
            target.base_url, target.endpoint.upstream_model
        ),
        &Value::Object(body),
        headers,
    )
}

fn convert_tool_choice(tc: &Value) -> Option<Value> {
    match tc {
        Value::String(s) => match s.as_str() {
            "auto" => Some(json!({"mode": "AUTO"})),
            "none" => Some(json!({"mode": "NONE"})),
            "required" => Some(json!({"mode": "ANY"})),
            _ => None,
        },
        Value::Object(o) => {
            let name = o.get("function")?.get("name")?.as_str()?;
            Some(json!({"mode": "ANY", "allowedFunctionNames": [name]}))
        }
        _ => None,
    }
}

fn parts(content: &[ContentPart]) -> Vec<Value> {
    content
        .iter()
        .filter_map(|p| match p.kind.as_str() {
            "text" => Some(json!({"text": p.text.clone().unwrap_or_default()})),
            "image_url" => {
                let url = &p.image_url.as_ref()?.url;
                Some(match parse_data_url(url) {
                    Some((mime, data)) => json!({"inlineData": {"mimeType": mime, "data": data}}),
                    None => json!({"fileData": {"mimeType": mime_from_url(url), "fileUri": url}}),
                })
            }
            _ => None,
        })
        .collect()
}

/// OpenAI messages → (system parts, Gemini contents). Tool results need the function's
/// name, which Gemini keys them by: it comes from the assistant turn that called it.
fn convert_messages(messages: &[Message]) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut system = Vec::new();
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut out: Vec<(&str, Vec<Value>)> = Vec::new();
    for m in messages {
        let content = m.content.as_ref().map(|c| c.parts()).unwrap_or_default();
        let (role, ps) = match m.role.as_str() {
            "system" | "developer" => {
                system.extend(parts(&content));
                continue;
            }
            "assistant" => {
                let mut ps = parts(&content);
                ps.retain(|p| p.get("text").is_none_or(|t| t != ""));
                for call in m.tool_calls.iter().flatten() {
                    names.insert(&call.id, &call.function.name);
                    ps.push(json!({"functionCall": {
                        "name": call.function.name,
                        "args": parse_arguments(&call.function.arguments)?,
                    }}));
                }
                ("model", ps)
            }
            "tool" => {
                let id = m.tool_call_id.as_deref().unwrap_or_default();
                let name = names
                    .get(id)
                    .copied()
                    .or(m.name.as_deref())
                    .ok_or_else(|| {
                        Error::bad_request(format!(
                            "tool message {id:?} answers no earlier tool call"
                        ))
                    })?;
                let text = m.text();
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({"content": text}),
                };
                (
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                )
            }
            _ => ("user", parts(&content)),
        };
        if ps.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((r, p)) if *r == role => p.extend(ps),
            _ => out.push((role, ps)),
        }
    }
    if out.is_empty() {
        return Err(Error::bad_request(
            "at least one user or assistant message is required",
        ));
    }
    Ok((
        system,
        out.into_iter()
            .map(|(role, parts)| json!({"role": role, "parts": parts}))
            .collect(),
    ))
}

fn usage_from(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    let mut usage = Usage::new(
        n("promptTokenCount").saturating_add(n("toolUsePromptTokenCount")),
        n("candidatesTokenCount").saturating_add(thoughts),
    );
    if n("cachedContentTokenCount") > 0 {
        usage.prompt_tokens_details = Some(PromptTokensDetails {
            cached_tokens: n("cachedContentTokenCount"),
            cache_write_tokens: None,
        });
    }
    if thoughts > 0 {
        usage.completion_tokens_details = Some(CompletionTokensDetails {
            reasoning_tokens: thoughts,
        });
    }
    usage
}

/// The first candidate's parts of a response: (text, reasoning, function calls as
/// (name, args JSON)).
fn split_parts(response: &Value) -> (String, String, Vec<(String, String)>) {
    let candidate = response
        .get("candidates")
        .and_then(|c| c.get(0))
        .unwrap_or(&Value::Null);
    let mut text = String::new();
    let mut thought = String::new();
    let mut calls = Vec::new();
    let parts = candidate
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for p in parts {
        if let Some(fc) = p.get("functionCall") {
            let name = fc
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let args = fc.get("args").cloned().unwrap_or_else(|| json!({}));
            calls.push((name, args.to_string()));
        } else if let Some(t) = p.get("text").and_then(Value::as_str) {
            if p.get("thought").and_then(Value::as_bool) == Some(true) {
                thought.push_str(t);
            } else {
                text.push_str(t);
            }
        }
    }
    (text, thought, calls)
}

/// Gemini's finish reason, or the block reason of a refused prompt.
fn native_finish(v: &Value) -> Option<String> {
    let cand = v.get("candidates").and_then(|c| c.get(0));
    cand.and_then(|c| c.get("finishReason"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            v.get("promptFeedback")
                .and_then(|f| f.get("blockReason"))
                .and_then(Value::as_str)
                .map(|_| "SAFETY".to_string())
        })
}

fn finish(native: &str, has_calls: bool) -> &'static str {
    match super::normalize_finish_reason(native) {
        "stop" if has_calls => "tool_calls",
        other => other,
    }
}

/// Gemini gives calls no IDs; ours are unique per generation and position.
fn call_id(gen: &str, i: usize) -> String {
    format!("call_{}_{i}", gen.rsplit('-').next().unwrap_or(gen))
}

pub fn parse_response(
    provider: &str,
    meta: &GenerationMeta,
    body: &[u8],
) -> Result<ChatCompletion> {
    let bad = |what: &str| invalid_reply(provider, what, body);
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
    let native = native_finish(&v).ok_or_else(|| bad("no candidates and no block reason"))?;
    let (text, thought, calls) = split_parts(&v);
    let tool_calls: Vec<ToolCall> = calls
        .into_iter()
        .enumerate()
        .map(|(i, (name, arguments))| ToolCall {
            id: call_id(&meta.id, i),
            kind: "function".into(),
            function: FunctionCall { name, arguments },
        })
        .collect();
    let reason = finish(&native, !tool_calls.is_empty());
    Ok(meta.completion(
        vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".into(),
                content: (!text.is_empty() || tool_calls.is_empty()).then_some(text),
                refusal: None,
                reasoning: (!thought.is_empty()).then_some(thought),
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                ..Default::default()
            },
            finish_reason: Some(reason.into()),
            native_finish_reason: Some(native),
            logprobs: None,
        }],
        v.get("usageMetadata").map(usage_from),
    ))
}

/// Each SSE event is a whole `GenerateContentResponse` holding the next piece.
#[derive(Debug, Default)]
pub struct StreamState {
    provider: String,
    /// The generation ID, from which tool-call IDs are derived.
    generation: String,
    started: bool,
    tools: usize,
    usage: Option<Usage>,
    finished: bool,
}

impl StreamState {
    pub fn new(provider: &str, generation: &str) -> Self {
        StreamState {
            provider: provider.to_string(),
            generation: generation.to_string(),
            ..Default::default()
        }
    }

    /// The stream ended: it must have given a finish reason. Then comes the usage.
    pub fn end(&mut self, out: &mut Vec<ChatChunk>) -> Result<()> {
        if !self.finished {
            return Err(ended_early(&self.provider));
        }
        if let Some(u) = self.usage.take() {
            out.push(ChatChunk::usage_only(u));
        }
        Ok(())
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The latest `usageMetadata` (Gemini reports it, growing, on every chunk).
    pub fn usage_so_far(&self) -> Option<Usage> {
        self.usage.clone()
    }

    /// One event's data (a whole `GenerateContentResponse`); its chunks go to `out`.
    pub fn event(&mut self, data: &str, out: &mut Vec<ChatChunk>) -> Result<()> {
        let v: Value =
            serde_json::from_str(data).map_err(|e| invalid_event(&self.provider, e, data))?;
        if let Some(err) = v.get("error") {
            return Err(stream_error(&self.provider, err));
        }
        if let Some(u) = v.get("usageMetadata") {
            self.usage = Some(usage_from(u));
        }
        let (text, thought, calls) = split_parts(&v);
        let mut delta = Delta::default();
        if !self.started {
            self.started = true;
            delta.role = Some("assistant".into());
        }
        if !text.is_empty() || delta.role.is_some() {
            delta.content = Some(text);
        }
        if !thought.is_empty() {
            delta.reasoning = Some(thought);
        }
        if !calls.is_empty() {
            let deltas = calls
                .into_iter()
                .map(|(name, args)| {
                    let i = self.tools;
                    self.tools = self.tools.saturating_add(1);
                    ToolCallDelta {
                        index: i as u32,
                        id: Some(call_id(&self.generation, i)),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(name),
                            arguments: Some(args),
                        }),
                    }
                })
                .collect();
            delta.tool_calls = Some(deltas);
        }
        let native = native_finish(&v);
        let has_content = delta.role.is_some()
            || delta.content.as_ref().is_some_and(|c| !c.is_empty())
            || delta.reasoning.is_some()
            || delta.tool_calls.is_some();
        if has_content {
            out.push(ChatChunk::bare(delta, None));
        }
        if let Some(n) = native {
            self.finished = true;
            let reason = finish(&n, self.tools > 0);
            let mut c = ChatChunk::bare(Delta::default(), Some(reason.to_string()));
            if let Some(first) = c.choices.first_mut() {
                first.native_finish_reason = Some(n);
            }
            out.push(c);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::stream::Translator;
    use crate::providers::testutil::*;

    const MODEL: &str = "google/gemini-2.5-flash";

    #[test]
    fn request_shape() {
        let (up, body) = built(
            MODEL,
            json!({
                "model": MODEL,
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [
                        {"type": "text", "text": "Weather where this photo was taken?"},
                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
                    ]},
                    {"role": "assistant", "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                    {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp\": 18}"},
                    {"role": "tool", "tool_call_id": "call_a", "content": "plain text"}
                ],
                "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "temperature": 0.3, "top_p": 0.9, "top_k": 40, "max_tokens": 500, "stop": ["END"], "seed": 5,
                "presence_penalty": 0.1,
                "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}
            }),
        );
        assert_eq!(
            up.url,
            "http://up/v1/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(up.header("x-goog-api-key"), Some("sk-test"));
        assert_eq!(
            body["systemInstruction"],
            json!({"parts": [{"text": "Be brief."}]})
        );
        let c = body["contents"].as_array().unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0]["parts"][1],
            json!({"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}})
        );
        assert_eq!(
            c[1],
            json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]})
        );
        assert_eq!(
            c[2]["parts"][0]["functionResponse"],
            json!({"name": "get_weather", "response": {"temp": 18}})
        );
        assert_eq!(
            c[2]["parts"][1]["functionResponse"]["response"],
            json!({"content": "plain text"})
        );
        let g = &body["generationConfig"];
        assert_eq!(
            (
                g["temperature"].as_f64(),
                g["topP"].as_f64(),
                g["topK"].as_u64()
            ),
            (Some(0.3), Some(0.9), Some(40))
        );
        assert_eq!(
            (g["maxOutputTokens"].as_u64(), g["seed"].as_u64()),
            (Some(500), Some(5))
        );
        assert_eq!(g["stopSequences"], json!(["END"]));
        assert_eq!(g["presencePenalty"], 0.1);
        assert_eq!(g["responseMimeType"], "application/json");
        assert_eq!(g["responseJsonSchema"], json!({"type": "object"}));
        assert_eq!(
            body["tools"][0]["functionDeclarations"][0]["name"],
            "get_weather"
        );
        assert_eq!(
            body["toolConfig"]["functionCallingConfig"],
            json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]})
        );
    }

    #[test]
    fn stream_url_and_thinking() {
        let (up, body) = built(
            MODEL,
            json!({"model": MODEL, "stream": true, "max_tokens": 4000,
            "reasoning": {"effort": "low"}, "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert_eq!(
            up.url,
            "http://up/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            body["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 1024, "includeThoughts": true})
        );
    }

    #[test]
    fn orphan_tool_result_is_a_400() {
        // Validation refuses it first; the translator must still not pass it on.
        let req: ChatRequest = serde_json::from_value(json!({"model": MODEL, "messages": [
            {"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "y"}]})).unwrap();
        let e = with_target(MODEL, |t| build_request(t, &req)).unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn parses_function_call_reply() {
        let body = include_bytes!("../../tests/fixtures/gemini/generate_function_call.json");
        let c = parse_response("google-ai-studio", &meta(MODEL), body).unwrap();
        let m = &c.choices[0].message;
        assert_eq!(
            m.reasoning.as_deref(),
            Some("Let me think about which tool fits.")
        );
        assert!(m.content.is_none());
        let call = &m.tool_calls.as_ref().unwrap()[0];
        assert_eq!(call.id, "call_abc_0");
        assert_eq!(
            serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
            json!({"city": "Paris", "unit": "celsius"})
        );
        assert_eq!(c.choices[0].finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(c.choices[0].native_finish_reason.as_deref(), Some("STOP"));
        let u = c.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (72, 68));
        assert_eq!(u.completion_tokens_details.unwrap().reasoning_tokens, 50);
    }

    #[test]
    fn blocked_prompt_is_content_filter() {
        let body = include_bytes!("../../tests/fixtures/gemini/generate_blocked.json");
        let c = parse_response("google-ai-studio", &meta(MODEL), body).unwrap();
        assert_eq!(
            c.choices[0].finish_reason.as_deref(),
            Some("content_filter")
        );
        assert_eq!(c.choices[0].message.content.as_deref(), Some(""));
        assert_eq!(
            parse_response("google-ai-studio", &meta(MODEL), b"{}")
                .unwrap_err()
                .status(),
            502
        );
    }

    fn make() -> Translator {
        Translator::Gemini(StreamState::new("google-ai-studio", "gen-1-abc"))
    }

    #[test]
    fn stream_text_at_every_split() {
        let events = translate_everywhere(
            &make,
            MODEL,
            include_bytes!("../../tests/fixtures/gemini/stream_text.sse"),
        );
        assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(
            content(&events),
            "The capital of France is Paris — «Paris» ✓.\n"
        );
        let fin = events
            .iter()
            .find(|e| e["choices"][0]["finish_reason"].is_string())
            .unwrap();
        assert_eq!(fin["choices"][0]["finish_reason"], "stop");
        assert_eq!(fin["choices"][0]["native_finish_reason"], "STOP");
        let u = &events.last().unwrap()["usage"];
        assert_eq!(
            (u["prompt_tokens"].as_u64(), u["completion_tokens"].as_u64()),
            (Some(8), Some(12))
        );
    }

    #[test]
    fn stream_function_call() {
        let events = translate_everywhere(
            &make,
            MODEL,
            include_bytes!("../../tests/fixtures/gemini/stream_function_call.sse"),
        );
        let call = events
            .iter()
            .find_map(|e| e["choices"][0]["delta"]["tool_calls"].get(0).cloned())
            .unwrap();
        assert_eq!(call["id"], "call_abc_0");
        assert_eq!(call["function"]["name"], "get_weather");
        assert_eq!(arguments(&events, 0), r#"{"city":"Paris"}"#);
        assert!(events
            .iter()
            .any(|e| e["choices"][0]["finish_reason"] == "tool_calls"));
    }

    #[test]
    fn stream_safety_stop() {
        let events = translate_everywhere(
            &make,
            MODEL,
            include_bytes!("../../tests/fixtures/gemini/stream_safety.sse"),
        );
        assert!(events
            .iter()
            .any(|e| e["choices"][0]["finish_reason"] == "content_filter"));
        assert_eq!(content(&events), "Here is how");
    }

    #[test]
    fn stream_without_finish_is_an_error() {
        let fixture = include_bytes!("../../tests/fixtures/gemini/stream_text.sse");
        let cut = &fixture[..fixture.len() - 300];
        let text = translate(&make, MODEL, cut, 0);
        assert!(text.contains(r#""finish_reason":"error""#), "{text}");
    }
}

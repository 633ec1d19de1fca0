//! Google's Gemini API (`models/{model}:generateContent`, and
//! `:streamGenerateContent?alt=sse`): roles user/model, `systemInstruction`,
//! `generationConfig`, function declarations and calls, inline images, usage metadata,
//! finish reasons and safety blocks.

use std::borrow::Cow;

use serde_json::{json, Value};

mod grounding;
mod request;
mod thinking;

use super::media;
use super::{
    ended_early, invalid_event, invalid_reply, stream_error, ErrorEvent, Target, UpstreamRequest,
};
use crate::api::{
    AssistantMessage, ChatChunk, ChatCompletion, ChatRequest, Choice, CompletionTokensDetails,
    Delta, FunctionCall, FunctionCallDelta, GenerationMeta, PromptTokensDetails, ToolCall,
    ToolCallDelta, Usage,
};
use crate::error::Result;
pub use request::build_request;

/// The format OpenRouter names Gemini's reasoning items with.
const REASONING_FORMAT: &str = "google-gemini-v1";

/// A `GenerateContentResponse` (or one stream event), read with its strings borrowed
/// where they have no escapes: only what the translation uses.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply<'a> {
    #[serde(default, borrow)]
    candidates: Option<Vec<Candidate<'a>>>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default, borrow)]
    prompt_feedback: Option<Feedback<'a>>,
    #[serde(default)]
    error: Option<ErrorEvent>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(default, borrow)]
    content: Option<ReplyContent<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
    /// Grounding with Google Search: its queries and sources.
    #[serde(default)]
    grounding_metadata: Option<Box<grounding::Grounding>>,
}

/// The first candidate's grounding, if Google searched for it.
fn grounding_of<'r>(v: &'r Reply) -> Option<&'r grounding::Grounding> {
    v.candidates
        .as_deref()?
        .first()?
        .grounding_metadata
        .as_deref()
}

#[derive(Debug, Default, serde::Deserialize)]
struct ReplyContent<'a> {
    #[serde(default, borrow)]
    parts: Option<Vec<ReplyPart<'a>>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplyPart<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default, borrow)]
    thought_signature: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function_call: Option<ReplyCall<'a>>,
    #[serde(default, borrow)]
    inline_data: Option<ReplyBlob<'a>>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ReplyCall<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplyBlob<'a> {
    #[serde(default, borrow)]
    mime_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Feedback<'a> {
    #[serde(default, borrow)]
    block_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default, deserialize_with = "null_as_zero")]
    prompt_token_count: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    tool_use_prompt_token_count: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    candidates_token_count: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    thoughts_token_count: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    cached_content_token_count: u64,
    #[serde(default)]
    candidates_tokens_details: Option<Vec<ModalityCount>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModalityCount {
    #[serde(default)]
    modality: Option<String>,
    #[serde(default)]
    token_count: Option<u64>,
}

/// A count that may come as `null`.
fn null_as_zero<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    Ok(<Option<u64> as serde::Deserialize>::deserialize(d)?.unwrap_or(0))
}

fn usage_from(u: &UsageMetadata) -> Usage {
    let thoughts = u.thoughts_token_count;
    let mut usage = Usage::new(
        u.prompt_token_count
            .saturating_add(u.tool_use_prompt_token_count),
        u.candidates_token_count.saturating_add(thoughts),
    );
    if u.cached_content_token_count > 0 {
        usage.prompt_tokens_details = Some(PromptTokensDetails {
            cached_tokens: u.cached_content_token_count,
            ..Default::default()
        });
    }
    let images = u
        .candidates_tokens_details
        .iter()
        .flatten()
        .filter(|d| d.modality.as_deref() == Some("IMAGE"))
        .fold(0u64, |n, d| n.saturating_add(d.token_count.unwrap_or(0)));
    if thoughts > 0 || images > 0 {
        usage.completion_tokens_details = Some(CompletionTokensDetails {
            reasoning_tokens: thoughts,
            image_tokens: (images > 0).then_some(images),
        });
    }
    usage
}

/// What the first candidate of a response (or of one stream event) holds.
#[derive(Debug, Default)]
struct Pieces {
    text: String,
    thought: String,
    /// Function calls: (name, arguments as JSON, thought signature).
    calls: Vec<(String, String, Option<String>)>,
    /// Generated images as OpenRouter returns them (`image_url` items with data URLs).
    images: Vec<Value>,
    /// A thought signature on a part that is not a function call.
    signature: Option<String>,
}

impl Pieces {
    fn of(response: &Reply) -> Pieces {
        let mut out = Pieces::default();
        let parts = response
            .candidates
            .as_deref()
            .and_then(<[Candidate]>::first)
            .and_then(|c| c.content.as_ref())
            .and_then(|c| c.parts.as_deref());
        for p in parts.into_iter().flatten() {
            let signature = p.thought_signature.as_deref().map(str::to_string);
            let thought = p.thought == Some(true);
            if let Some(fc) = &p.function_call {
                let args = fc
                    .args
                    .as_ref()
                    .map_or_else(|| "{}".to_string(), Value::to_string);
                let name = fc.name.as_deref().unwrap_or_default().to_string();
                out.calls.push((name, args, signature));
                continue;
            }
            if signature.is_some() {
                out.signature = signature;
            }
            if let Some(t) = &p.text {
                if thought {
                    out.thought.push_str(t);
                } else {
                    out.text.push_str(t);
                }
            } else if let Some(img) = p.inline_data.as_ref().filter(|_| !thought) {
                let mime = img.mime_type.as_deref().unwrap_or("image/png");
                out.images.push(json!({"type": "image_url",
                    "image_url": {"url": format!("data:{mime};base64,{}",
                        img.data.as_deref().unwrap_or_default())}}));
            }
        }
        out
    }

    /// OpenRouter's reasoning items: the thought text, then each signature (a call's
    /// with the call's ID), numbered from `next` on; the thought text at `thought_index`
    /// when given (a stream keeps one index for all its pieces).
    fn details(&self, ids: &[String], thought_index: Option<u32>, next: &mut u32) -> Vec<Value> {
        let mut take = || {
            let i = *next;
            *next = next.saturating_add(1);
            i
        };
        let mut out = Vec::new();
        if !self.thought.is_empty() {
            let index = thought_index.unwrap_or_else(&mut take);
            out.push(json!({"type": "reasoning.text", "text": self.thought,
                "format": REASONING_FORMAT, "index": index}));
        }
        for ((_, _, sig), id) in self.calls.iter().zip(ids) {
            if let Some(sig) = sig {
                out.push(json!({"type": "reasoning.encrypted", "data": sig, "id": id,
                    "format": REASONING_FORMAT, "index": take()}));
            }
        }
        if let Some(sig) = &self.signature {
            out.push(json!({"type": "reasoning.encrypted", "data": sig,
                "format": REASONING_FORMAT, "index": take()}));
        }
        out
    }
}

/// Gemini's finish reason, or the block reason of a refused prompt.
fn native_finish(v: &Reply) -> Option<String> {
    v.candidates
        .as_deref()
        .and_then(<[Candidate]>::first)
        .and_then(|c| c.finish_reason.as_deref())
        .map(str::to_string)
        .or_else(|| {
            v.prompt_feedback
                .as_ref()
                .and_then(|f| f.block_reason.as_ref())
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
    let v: Reply = serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
    let native = native_finish(&v).ok_or_else(|| bad("no candidates and no block reason"))?;
    let pieces = Pieces::of(&v);
    let tool_calls: Vec<ToolCall> = pieces
        .calls
        .iter()
        .enumerate()
        .map(|(i, (name, arguments, _))| ToolCall {
            id: call_id(&meta.id, i),
            kind: "function".into(),
            function: FunctionCall {
                name: name.clone(),
                arguments: arguments.clone(),
            },
        })
        .collect();
    let ids: Vec<String> = tool_calls.iter().map(|c| c.id.clone()).collect();
    let details = pieces.details(&ids, None, &mut 0);
    let Pieces {
        text,
        thought,
        images,
        ..
    } = pieces;
    let reason = finish(&native, !tool_calls.is_empty());
    let mut usage = v.usage_metadata.as_ref().map(usage_from);
    let grounded = grounding_of(&v);
    if let (Some(u), Some(g)) = (usage.as_mut(), grounded) {
        u.web_searches = g.searches();
    }
    let annotations = grounded
        .map(|g| g.annotations(Some(&text)))
        .filter(|a| !a.is_empty());
    Ok(meta.completion(
        vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".into(),
                content: (!text.is_empty() || tool_calls.is_empty() && images.is_empty())
                    .then_some(text),
                refusal: None,
                reasoning: (!thought.is_empty()).then_some(thought),
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                images: (!images.is_empty()).then_some(Value::Array(images)),
                reasoning_details: (!details.is_empty()).then_some(Value::Array(details)),
                annotations: annotations.map(Value::Array),
                ..Default::default()
            },
            finish_reason: Some(reason.into()),
            native_finish_reason: Some(native),
            logprobs: None,
        }],
        usage,
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
    /// The index of the thought text's reasoning item, once it has one.
    thought_index: Option<u32>,
    /// The next reasoning item's index.
    next_index: u32,
    /// The searches grounding with Google Search ran (its latest count).
    searches: u64,
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

    /// An event's usage and grounding noted: its searches counted, its sources as
    /// `url_citation` annotations (the answer's text is not kept: the spans are
    /// Gemini's, in bytes).
    fn grounded(&mut self, v: &Reply) -> Option<Value> {
        let grounded = grounding_of(v);
        if let Some(g) = grounded {
            self.searches = g.searches();
        }
        if let Some(u) = &v.usage_metadata {
            let mut u = usage_from(u);
            u.web_searches = self.searches;
            self.usage = Some(u);
        }
        let annotations = grounded.map(|g| g.annotations(None))?;
        (!annotations.is_empty()).then_some(Value::Array(annotations))
    }

    /// One event's data (a whole `GenerateContentResponse`); its chunks go to `out`.
    pub fn event(&mut self, data: &str, out: &mut Vec<ChatChunk>) -> Result<()> {
        let v: Reply = serde_json::from_slice(data.as_bytes())
            .map_err(|e| invalid_event(&self.provider, e, data))?;
        if let Some(err) = &v.error {
            return Err(stream_error(&self.provider, err));
        }
        let mut delta = Delta {
            annotations: self.grounded(&v),
            ..Delta::default()
        };
        let pieces = Pieces::of(&v);
        if !self.started {
            self.started = true;
            delta.role = Some("assistant".into());
        }
        if !pieces.text.is_empty() || delta.role.is_some() {
            delta.content = Some(pieces.text.clone());
        }
        if !pieces.thought.is_empty() {
            delta.reasoning = Some(pieces.thought.clone());
            if self.thought_index.is_none() {
                self.thought_index = Some(self.next_index);
                self.next_index = self.next_index.saturating_add(1);
            }
        }
        let first_call = self.tools;
        let ids: Vec<String> = (0..pieces.calls.len())
            .map(|i| call_id(&self.generation, first_call.saturating_add(i)))
            .collect();
        let details = pieces.details(&ids, self.thought_index, &mut self.next_index);
        if !details.is_empty() {
            delta.reasoning_details = Some(Value::Array(details));
        }
        if !pieces.images.is_empty() {
            delta.images = Some(Value::Array(pieces.images));
        }
        if !pieces.calls.is_empty() {
            let deltas = pieces
                .calls
                .into_iter()
                .zip(ids)
                .map(|((name, args, _), id)| {
                    let i = self.tools;
                    self.tools = self.tools.saturating_add(1);
                    ToolCallDelta {
                        index: i as u32,
                        id: Some(id),
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
            || delta.reasoning_details.is_some()
            || delta.images.is_some()
            || delta.annotations.is_some()
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

/// Google's Gemini API.
pub struct Gemini;

impl super::Family for Gemini {
    fn native_search(&self) -> Option<crate::api::native_search::NativeTool> {
        Some(crate::api::native_search::NativeTool {
            allowed_domains: false,
            excluded_domains: false,
            per_request: false,
        })
    }

    fn continues_assistant_turn(&self) -> bool {
        true
    }

    fn build_request(
        &self,
        target: &Target,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<UpstreamRequest> {
        build_request(target, req, stream)
    }

    fn parse_response(
        &self,
        provider: &str,
        meta: &GenerationMeta,
        body: &[u8],
    ) -> Result<ChatCompletion> {
        parse_response(provider, meta, body)
    }

    fn translator(
        &self,
        target: &Target,
        meta: &GenerationMeta,
    ) -> Option<super::stream::Translator> {
        Some(super::stream::Translator::Gemini(StreamState::new(
            &target.provider.slug,
            &meta.id,
        )))
    }

    /// Gemini reads YouTube videos and its own uploaded files; any other URL is
    /// fetched and sent inline.
    fn remote_media(&self, req: &ChatRequest) -> Vec<media::Remote> {
        media::remote_for_gemini(req)
    }

    fn build_embeddings(
        &self,
        target: &Target,
        req: &crate::api::embeddings::EmbeddingsRequest,
    ) -> Result<UpstreamRequest> {
        super::embeddings::gemini_request(target, req)
    }

    fn parse_embeddings(
        &self,
        provider: &str,
        req: &crate::api::embeddings::EmbeddingsRequest,
        body: &[u8],
    ) -> Result<(Vec<crate::api::embeddings::EmbeddingItem>, Option<u64>)> {
        super::embeddings::gemini_items(provider, req, body)
    }

    fn counts_tokens(&self) -> bool {
        true
    }

    fn build_count(&self, target: &Target, ask: &super::CountAsk) -> Result<UpstreamRequest> {
        build_count(target, ask.chat)
    }

    fn parse_count(&self, provider: &str, body: &[u8]) -> Result<u64> {
        parse_count(provider, body)
    }

    fn prompt_formula(&self) -> crate::api::count::PromptFormula {
        crate::api::count::PromptFormula::Gemini
    }
}

/// The upstream request that counts `req`'s prompt at `target`
/// (`models/{model}:countTokens`): the body a generation of it would send, whole, as
/// the `generateContentRequest` (plain `contents` would leave the system instruction
/// and the tools uncounted), naming its model as that field requires. Built by the one
/// request builder, so that the count is of what a generation sends.
pub fn build_count(target: &Target, req: &ChatRequest) -> Result<UpstreamRequest> {
    let up = build_request(target, req, false)?;
    let model = &target.endpoint.upstream_model;
    // The generation body is a JSON object: the count's is it with `model` first,
    // inside `generateContentRequest` (spliced as bytes, not read back and rewritten).
    let fields = up.body.strip_prefix(b"{").unwrap_or_default();
    let name = serde_json::to_string(&format!("models/{model}"))
        .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
    let mut body = format!(r#"{{"generateContentRequest":{{"model":{name}"#).into_bytes();
    if fields.first().is_some_and(|b| *b != b'}') {
        body.push(b',');
    }
    body.extend_from_slice(fields);
    body.push(b'}');
    Ok(UpstreamRequest {
        url: format!("{}/models/{model}:countTokens", target.base_url),
        body,
        ..up
    })
}

/// The tokens a `countTokens` reply (`CountTokensResponse`) counted: its
/// `totalTokens` (Google leaves a zero out).
pub fn parse_count(provider: &str, body: &[u8]) -> Result<u64> {
    Ok(super::Counted::read(provider, body)?.tokens.unwrap_or(0))
}

//! Embeddings upstream: OpenAI's `/embeddings` (every OpenAI-compatible host) and
//! Gemini's `models/{model}:batchEmbedContents`, both answered in OpenAI's shape with
//! our identity, usage and cost. The families' [`super::Family`] implementations call
//! the builders and readers here.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::{family, invalid_reply, Target, UpstreamRequest};
use crate::api::embeddings::{
    encode, Embedding, EmbeddingItem, EmbeddingsReply, EmbeddingsRequest, EmbeddingsUsage, Input,
};
use crate::api::{GenerationMeta, Usage};
use crate::error::{Error, Result};

pub fn build_request(target: &Target, req: &EmbeddingsRequest) -> Result<UpstreamRequest> {
    family(target.provider.api).build_embeddings(target, req)
}

/// OpenAI's `/embeddings`.
pub(super) fn openai_request(target: &Target, req: &EmbeddingsRequest) -> Result<UpstreamRequest> {
    let mut headers = vec![(
        "Authorization".to_string(),
        format!("Bearer {}", target.key()?),
    )];
    headers.extend(target.extra_headers());
    UpstreamRequest::post_json(
        format!("{}/embeddings", target.base_url),
        &req.openai_body(&target.endpoint.upstream_model),
        headers,
    )
}

/// Gemini's `batchEmbedContents`.
pub(super) fn gemini_request(target: &Target, req: &EmbeddingsRequest) -> Result<UpstreamRequest> {
    let model = &target.endpoint.upstream_model;
    let Input::Texts(texts) = &req.input else {
        return Err(Error::bad_request(
            "input: token arrays need an OpenAI-compatible endpoint; send text",
        ));
    };
    let requests: Vec<Value> = texts
        .iter()
        .map(|t| {
            let mut r =
                json!({"model": format!("models/{model}"), "content": {"parts": [{"text": t}]}});
            if let Some(d) = req.dimensions {
                crate::api::set_field(&mut r, "outputDimensionality", json!(d));
            }
            r
        })
        .collect();
    let mut headers = vec![("x-goog-api-key".to_string(), target.key()?.to_string())];
    headers.extend(target.extra_headers());
    UpstreamRequest::post_json(
        format!("{}/models/{model}:batchEmbedContents", target.base_url),
        &json!({ "requests": requests }),
        headers,
    )
}

/// Gemini's `batchEmbedContents` reply, as far as the gateway reads it.
#[derive(Deserialize)]
struct GeminiReply {
    embeddings: Vec<GeminiEmbedding>,
    #[serde(default, rename = "usageMetadata")]
    usage: Option<GeminiUsage>,
}

#[derive(Deserialize)]
struct GeminiEmbedding {
    values: Vec<f64>,
}

#[derive(Deserialize)]
struct GeminiUsage {
    #[serde(default, rename = "promptTokenCount")]
    prompt_token_count: Option<u64>,
}

/// Gemini's embeddings, in OpenAI's shape, and its prompt count.
pub(super) fn gemini_items(
    slug: &str,
    req: &EmbeddingsRequest,
    body: &[u8],
) -> Result<(Vec<EmbeddingItem>, Option<u64>)> {
    let reply: GeminiReply =
        serde_json::from_slice(body).map_err(|e| invalid_reply(slug, e, body))?;
    let data = (0u64..)
        .zip(&reply.embeddings)
        .map(|(i, e)| EmbeddingItem::new(i, encode(&e.values, req.encoding)))
        .collect();
    Ok((data, reply.usage.and_then(|u| u.prompt_token_count)))
}

/// OpenAI's `/embeddings` reply, as far as the gateway reads it.
#[derive(Deserialize)]
struct OpenAiReply {
    data: Vec<OpenAiItem>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct OpenAiItem {
    #[serde(default)]
    index: Option<u64>,
    /// Floats, or a base64 string: told apart by the first byte.
    embedding: Box<RawValue>,
}

#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
}

/// OpenAI's embeddings items, as they came, and its prompt count.
pub(super) fn openai_items(slug: &str, body: &[u8]) -> Result<(Vec<EmbeddingItem>, Option<u64>)> {
    let reply: OpenAiReply =
        serde_json::from_slice(body).map_err(|e| invalid_reply(slug, e, body))?;
    let mut data = Vec::with_capacity(reply.data.len());
    for (i, item) in (0u64..).zip(&reply.data) {
        let raw = item.embedding.get();
        let embedding = if raw.starts_with('"') {
            serde_json::from_str(raw).map(Embedding::Base64)
        } else {
            serde_json::from_str(raw).map(Embedding::Floats)
        }
        .map_err(|_| invalid_reply(slug, "an item without an embedding", body))?;
        data.push(EmbeddingItem::new(item.index.unwrap_or(i), embedding));
    }
    Ok((data, reply.usage.and_then(|u| u.prompt_tokens)))
}

/// The reply in OpenAI's shape, and the usage to bill.
pub fn parse_response(
    target: &Target,
    req: &EmbeddingsRequest,
    meta: &GenerationMeta,
    body: &[u8],
) -> Result<(EmbeddingsReply, Usage)> {
    let slug = &target.provider.slug;
    let (data, counted) = family(target.provider.api).parse_embeddings(slug, req, body)?;
    let prompt_tokens = counted.unwrap_or_else(|| {
        req.input
            .bytes()
            .iter()
            .fold(0u64, |acc, b| acc.saturating_add(b.div_ceil(4)))
    });
    if data.len() != req.input.len() {
        return Err(invalid_reply(
            slug,
            format!("{} embeddings for {} inputs", data.len(), req.input.len()),
            body,
        ));
    }
    let usage = Usage::new(prompt_tokens, 0);
    let reply = EmbeddingsReply {
        id: meta.id.clone(),
        object: "list",
        data,
        model: meta.model.clone(),
        provider: meta.provider.clone(),
        usage: EmbeddingsUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
            ..Default::default()
        },
    };
    Ok((reply, usage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testutil::{meta, with_target as target};

    fn req(v: Value) -> EmbeddingsRequest {
        EmbeddingsRequest::parse(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn openai_embeddings_pass_through() {
        let r = req(
            json!({"model": "openai/text-embedding-3-small", "input": ["a", "b"], "dimensions": 8}),
        );
        target("openai/text-embedding-3-small", |t| {
            let up = build_request(t, &r).unwrap();
            assert_eq!(up.url, "http://up/v1/embeddings");
            let body: Value = serde_json::from_slice(&up.body).unwrap();
            assert_eq!(body["model"], "text-embedding-3-small");
            assert_eq!(body["dimensions"], 8);
            let reply = include_bytes!("../../tests/fixtures/openai/embeddings/reply.json");
            let (v, u) =
                parse_response(t, &r, &meta("openai/text-embedding-3-small"), reply).unwrap();
            let v = serde_json::to_value(v).unwrap();
            assert_eq!(v["data"][1]["index"], 1);
            assert_eq!(v["data"][0]["embedding"][0], 0.0023064255);
            assert_eq!(u.prompt_tokens, 2);
            assert_eq!(v["object"], "list");
        });
    }

    #[test]
    fn gemini_batch_embed() {
        let r = req(
            json!({"model": "google/gemini-embedding-001", "input": ["a", "b"], "encoding_format": "base64"}),
        );
        target("google/gemini-embedding-001", |t| {
            let up = build_request(t, &r).unwrap();
            assert_eq!(
                up.url,
                "http://up/v1/models/gemini-embedding-001:batchEmbedContents"
            );
            let body: Value = serde_json::from_slice(&up.body).unwrap();
            assert_eq!(body["requests"][1]["content"]["parts"][0]["text"], "b");
            assert_eq!(body["requests"][0]["model"], "models/gemini-embedding-001");
            let reply = include_bytes!("../../tests/fixtures/gemini/embed/reply.json");
            let (v, u) =
                parse_response(t, &r, &meta("google/gemini-embedding-001"), reply).unwrap();
            let v = serde_json::to_value(v).unwrap();
            assert!(v["data"][0]["embedding"].is_string());
            assert_eq!(u.prompt_tokens, 2);
            let tokens = req(json!({"model": "google/gemini-embedding-001", "input": [1, 2]}));
            assert_eq!(build_request(t, &tokens).unwrap_err().status(), 400);
            let short = br#"{"embeddings": [{"values": [1.0]}]}"#;
            assert_eq!(
                parse_response(t, &r, &meta("x"), short)
                    .unwrap_err()
                    .status(),
                502
            );
        });
    }

    /// An OpenAI item's embedding is kept in the form it came in (floats, or base64
    /// text), its index too; anything else is an invalid reply, not a panic.
    #[test]
    fn openai_items_keep_their_form() {
        let body = br#"{"data":[{"index":1,"embedding":"AACAPw=="},{"embedding":[0.5,-1]}],"usage":{"prompt_tokens":3}}"#;
        let (items, counted) = openai_items("p", body).unwrap();
        assert_eq!(counted, Some(3));
        assert_eq!(
            items[0],
            EmbeddingItem::new(1, Embedding::Base64("AACAPw==".into()))
        );
        assert_eq!(
            items[1],
            EmbeddingItem::new(1, Embedding::Floats(vec![0.5, -1.0]))
        );
        assert_eq!(
            serde_json::to_string(&items[1]).unwrap(),
            r#"{"embedding":[0.5,-1.0],"index":1,"object":"embedding"}"#
        );
        for bad in [
            &br#"{"data":[{"embedding":{"x":1}}]}"#[..],
            br#"{"data":[{"index":0}]}"#,
            br#"{"nothing":[]}"#,
        ] {
            let e = openai_items("p", bad).unwrap_err();
            assert_eq!(e.status(), 502, "{e:?}");
        }
    }
}

//! Embeddings upstream: OpenAI's `/embeddings` (every OpenAI-compatible host) and
//! Gemini's `models/{model}:batchEmbedContents`, both answered in OpenAI's shape with
//! our identity, usage and cost. The families' [`super::Family`] implementations call
//! the builders and readers here.

use serde_json::{json, Value};

use super::{family, invalid_reply, Target, UpstreamRequest};
use crate::api::embeddings::{encode, EmbeddingsReply, EmbeddingsRequest, EmbeddingsUsage, Input};
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

/// Gemini's embeddings, in OpenAI's shape, and its prompt count.
pub(super) fn gemini_items(
    slug: &str,
    req: &EmbeddingsRequest,
    v: &Value,
    body: &[u8],
) -> Result<(Vec<Value>, Option<u64>)> {
    let list = v
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid_reply(slug, "no embeddings", body))?;
    let mut data = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let values: Vec<f64> = e
            .get("values")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid_reply(slug, "an embedding without values", body))?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        data.push(
            json!({"object": "embedding", "index": i, "embedding": encode(&values, req.encoding)}),
        );
    }
    let counted = v
        .pointer("/usageMetadata/promptTokenCount")
        .and_then(Value::as_u64);
    Ok((data, counted))
}

/// OpenAI's embeddings items, as they came, and its prompt count.
pub(super) fn openai_items(
    slug: &str,
    v: &Value,
    body: &[u8],
) -> Result<(Vec<Value>, Option<u64>)> {
    let list = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid_reply(slug, "no data", body))?;
    let mut data = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let embedding = e
            .get("embedding")
            .filter(|x| x.is_array() || x.is_string())
            .ok_or_else(|| invalid_reply(slug, "an item without an embedding", body))?;
        let index = e.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
        data.push(json!({"object": "embedding", "index": index, "embedding": embedding}));
    }
    let counted = v.pointer("/usage/prompt_tokens").and_then(Value::as_u64);
    Ok((data, counted))
}

/// The reply in OpenAI's shape, and the usage to bill.
pub fn parse_response(
    target: &Target,
    req: &EmbeddingsRequest,
    meta: &GenerationMeta,
    body: &[u8],
) -> Result<(EmbeddingsReply, Usage)> {
    let slug = &target.provider.slug;
    let v: Value = serde_json::from_slice(body).map_err(|e| invalid_reply(slug, e, body))?;
    let (data, counted) = family(target.provider.api).parse_embeddings(slug, req, &v, body)?;
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
}

//! The embeddings surface (`POST /embeddings`): OpenAI's request and reply shapes,
//! validated here; `providers::embeddings` speaks them to OpenAI-compatible hosts and
//! to Gemini (`batchEmbedContents`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::read::{list, named, shown, string, Bad, Fields, Read};
use super::validate::MAX_MODELS;
use crate::error::{Error, Result};

/// Inputs one request may embed at most (OpenAI's own limit is 2,048).
pub const MAX_INPUTS: usize = 2048;

/// Written as OpenAI takes it: the texts, or the token arrays.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Input {
    Texts(Vec<String>),
    /// Token IDs, one array per input (OpenAI-compatible endpoints only).
    Tokens(Vec<Vec<u64>>),
}

impl Input {
    pub fn len(&self) -> usize {
        match self {
            Input::Texts(t) => t.len(),
            Input::Tokens(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of text (or four per token), for estimates.
    pub fn bytes(&self) -> Vec<u64> {
        match self {
            Input::Texts(t) => t.iter().map(|s| s.len() as u64).collect(),
            Input::Tokens(t) => t
                .iter()
                .map(|v| (v.len() as u64).saturating_mul(4))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Float,
    Base64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsRequest {
    pub model: Option<String>,
    pub models: Vec<String>,
    pub input: Input,
    pub dimensions: Option<u64>,
    pub encoding: Encoding,
    pub user: Option<String>,
    pub provider: Option<Box<super::provider::ProviderPreferences>>,
}

impl EmbeddingsRequest {
    /// Reads a body once, from bytes: nesting depth, then the typed request, each
    /// refused value named by its field (`input[2]: must not be empty`).
    pub fn parse(body: &[u8]) -> Result<Self> {
        let Value::Object(m) = super::parse_json(body)? else {
            return Err(Error::bad_request("The body must be a JSON object"));
        };
        Ok(request(Fields(m))?)
    }

    /// A chat request that routing reads: the models, the preferences, and the longest
    /// input (context length is a per-input limit for embeddings).
    pub fn routing_view(&self) -> super::ChatRequest {
        let longest = match &self.input {
            Input::Texts(t) => t
                .iter()
                .max_by_key(|s| s.len())
                .cloned()
                .unwrap_or_default(),
            Input::Tokens(t) => "tok ".repeat(t.iter().map(Vec::len).max().unwrap_or(0)),
        };
        super::ChatRequest {
            model: self.model.clone(),
            models: (!self.models.is_empty()).then(|| self.models.clone()),
            messages: vec![super::Message {
                role: super::Role::User,
                content: Some(super::Content::Text(longest)),
                ..Default::default()
            }],
            provider: self.provider.clone(),
            ..Default::default()
        }
    }

    /// The body for an OpenAI-compatible endpoint.
    pub fn openai_body<'a>(&'a self, upstream_model: &'a str) -> OpenAiBody<'a> {
        OpenAiBody {
            model: upstream_model,
            input: &self.input,
            dimensions: self.dimensions,
            encoding_format: self.encoding,
            user: self.user.as_deref(),
        }
    }
}

/// OpenAI's `/embeddings` request, as an OpenAI-compatible endpoint gets it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenAiBody<'a> {
    pub model: &'a str,
    pub input: &'a Input,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u64>,
    pub encoding_format: Encoding,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
}

fn request(mut f: Fields) -> Read<EmbeddingsRequest> {
    let model = f.read("model", &string)?;
    let models = f.read("models", &|v| list(v, &string))?.unwrap_or_default();
    if models.len() > MAX_MODELS {
        let rule = format!("must be an array of at most {MAX_MODELS} model IDs");
        return Err(Bad::new(rule).in_field("models"));
    }
    if model.as_deref().is_none_or(str::is_empty) && models.is_empty() {
        return Err(Bad::new("is required").in_field("model"));
    }
    let input = f.required("input", &input)?;
    let dimensions = f.read("dimensions", &|v| {
        v.as_u64()
            .filter(|n| (1..=65_536).contains(n))
            .ok_or_else(|| Bad::new("must be a whole number from 1 to 65536"))
    })?;
    let encoding = f.read("encoding_format", &|v| {
        Ok(match named(v, &["float", "base64"])? {
            0 => Encoding::Float,
            _ => Encoding::Base64,
        })
    })?;
    Ok(EmbeddingsRequest {
        model,
        models,
        input,
        dimensions,
        encoding: encoding.unwrap_or(Encoding::Float),
        user: f.read("user", &string)?,
        provider: f.read("provider", &super::provider::read)?,
    })
}

/// `input`: a text, texts, a token array or token arrays; none empty, at most
/// [`MAX_INPUTS`].
fn input(v: Value) -> Read<Input> {
    let input = match v {
        Value::String(t) => Input::Texts(vec![t]),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            Input::Texts(list(Value::Array(items), &string)?)
        }
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            Input::Tokens(vec![items.iter().filter_map(Value::as_u64).collect()])
        }
        Value::Array(items) if items.iter().all(Value::is_array) => {
            Input::Tokens(list(Value::Array(items), &|i| list(i, &token))?)
        }
        _ => {
            return Err(Bad::new(
                "must be a string, an array of strings, or token arrays",
            ))
        }
    };
    if input.is_empty() {
        return Err(Bad::new("must not be empty"));
    }
    if input.len() > MAX_INPUTS {
        return Err(Bad::new(format!("at most {MAX_INPUTS} inputs per request")));
    }
    if let Input::Texts(t) = &input {
        if let Some(i) = t.iter().position(String::is_empty) {
            return Err(Bad::new("must not be empty").at_index(i));
        }
    }
    Ok(input)
}

fn token(v: Value) -> Read<u64> {
    v.as_u64()
        .ok_or_else(|| Bad::new(format!("must be a token ID, not {}", shown(&v))))
}

/// One embedding as a reply carries it: floats, or (base64) the little-endian bytes of
/// its f32 values, as OpenAI sends them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Embedding {
    Floats(Vec<f64>),
    Base64(String),
}

/// One item of a reply's `data`, in OpenAI's shape (fields in the order the gateway has
/// always written them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbeddingItem {
    pub embedding: Embedding,
    pub index: u64,
    pub object: &'static str,
}

impl EmbeddingItem {
    pub fn new(index: u64, embedding: Embedding) -> Self {
        EmbeddingItem {
            embedding,
            index,
            object: "embedding",
        }
    }
}

/// One embedding in `encoding`.
pub fn encode(values: &[f64], encoding: Encoding) -> Embedding {
    match encoding {
        Encoding::Float => Embedding::Floats(values.to_vec()),
        Encoding::Base64 => {
            use base64::Engine;
            let bytes: Vec<u8> = values
                .iter()
                .flat_map(|v| (*v as f32).to_le_bytes())
                .collect();
            Embedding::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    }
}

/// The reply, in OpenAI's shape (`list`), with our identity, usage and cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbeddingsReply {
    pub id: String,
    pub object: &'static str,
    /// The items, as the provider family read them from its upstream's reply.
    pub data: Vec<EmbeddingItem>,
    pub model: String,
    pub provider: String,
    pub usage: EmbeddingsUsage,
}

/// An embeddings reply's `usage`: OpenAI's counts, and what the gateway charged.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EmbeddingsUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::money::Usd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_details: Option<super::CostDetails>,
}

impl EmbeddingsUsage {
    /// Takes the amounts of `priced` (the counts stay the reply's own).
    pub fn price(&mut self, priced: &super::Usage) {
        self.cost = priced.cost;
        self.cost_details = priced.cost_details.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    impl EmbeddingsRequest {
        /// A body read as the surface reads it: from its bytes.
        fn from_value(v: Value) -> Result<Self> {
            Self::parse(v.to_string().as_bytes())
        }
    }

    #[test]
    fn inputs_of_every_shape() {
        let r = EmbeddingsRequest::from_value(json!({"model": "a/b", "input": "hi"})).unwrap();
        assert_eq!(r.input, Input::Texts(vec!["hi".into()]));
        assert_eq!(r.encoding, Encoding::Float);
        let r = EmbeddingsRequest::from_value(json!({"model": "a/b", "input": ["a", "b"], "dimensions": 256, "encoding_format": "base64"})).unwrap();
        assert_eq!(r.input.len(), 2);
        assert_eq!(
            serde_json::to_value(r.openai_body("m")).unwrap()["dimensions"],
            256
        );
        let r = EmbeddingsRequest::from_value(json!({"model": "a/b", "input": [1, 2, 3]})).unwrap();
        assert_eq!(r.input, Input::Tokens(vec![vec![1, 2, 3]]));
        let r =
            EmbeddingsRequest::from_value(json!({"model": "a/b", "input": [[1], [2, 3]]})).unwrap();
        assert_eq!(r.input.len(), 2);
        assert_eq!(r.routing_view().messages[0].text(), "tok tok ");
    }

    #[test]
    fn bad_requests_name_the_field() {
        for (body, want) in [
            (json!({"input": "x"}), "model: is required"),
            (json!({"model": "a/b"}), "input: is required"),
            (
                json!({"model": "a/b", "input": []}),
                "input: must not be empty",
            ),
            (
                json!({"model": "a/b", "input": [""]}),
                "input[0]: must not be empty",
            ),
            (
                json!({"model": "a/b", "input": [1, "x"]}),
                "input: must be a string",
            ),
            (
                json!({"model": "a/b", "input": "x", "dimensions": 0}),
                "dimensions",
            ),
            (
                json!({"model": "a/b", "input": "x", "encoding_format": "hex"}),
                "encoding_format",
            ),
            (
                json!({"model": "a/b", "input": [[1], [2, "x"]]}),
                "input[1][1]: must be a token ID, not \"x\"",
            ),
            (
                json!({"model": "a/b", "input": "x", "provider": {"sort": "fast"}}),
                "provider.sort: must be one of price, throughput, latency",
            ),
            (
                json!({"model": "a/b", "input": "x", "user": 7}),
                "user: must be a string",
            ),
            (
                json!({"model": "a/b", "input": vec!["x"; 2049]}),
                "input: at most 2048",
            ),
        ] {
            let e = EmbeddingsRequest::from_value(body.clone()).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn an_openai_endpoint_gets_openai_s_request() {
        let r = EmbeddingsRequest::from_value(json!({"model": "a/b", "input": ["a", "b"], "user": "u", "provider": {"sort": "price"}, "models": ["c/d"]})).unwrap();
        assert_eq!(
            serde_json::to_string(&r.openai_body("up")).unwrap(),
            r#"{"model":"up","input":["a","b"],"encoding_format":"float","user":"u"}"#
        );
        let r = EmbeddingsRequest::from_value(json!({"model": "a/b", "input": [[1, 2]], "dimensions": 8, "encoding_format": "base64"})).unwrap();
        assert_eq!(
            serde_json::to_string(&r.openai_body("up")).unwrap(),
            r#"{"model":"up","input":[[1,2]],"dimensions":8,"encoding_format":"base64"}"#
        );
    }

    #[test]
    fn a_reply_carries_its_counts_and_our_amounts_exactly() {
        let mut reply = EmbeddingsReply {
            id: "gen-1".into(),
            object: "list",
            data: vec![EmbeddingItem::new(0, Embedding::Base64("AACAPw==".into()))],
            model: "a/b".into(),
            provider: "P".into(),
            usage: EmbeddingsUsage {
                prompt_tokens: 4,
                total_tokens: 4,
                ..Default::default()
            },
        };
        let mut priced = super::super::Usage::new(9, 0);
        priced.cost = Some(crate::money::Usd(123_456_789_012_345_678));
        reply.usage.price(&priced);
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"id":"gen-1","object":"list","data":[{"embedding":"AACAPw==","index":0,"object":"embedding"}],"model":"a/b","provider":"P","usage":{"prompt_tokens":4,"total_tokens":4,"cost":123456.789012345678}}"#
        );
    }

    #[test]
    fn base64_is_little_endian_f32() {
        let json = |e: Embedding| serde_json::to_value(e).unwrap();
        assert_eq!(json(encode(&[1.0], Encoding::Base64)), json!("AACAPw=="));
        assert_eq!(
            json(encode(&[0.5, 1.0], Encoding::Float)),
            json!([0.5, 1.0])
        );
    }
}

//! The embeddings surface (`POST /embeddings`): OpenAI's request and reply shapes,
//! validated here; `providers::embeddings` speaks them to OpenAI-compatible hosts and
//! to Gemini (`batchEmbedContents`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::read::{list, named, shown, string, Bad, Fields, Read};
use super::validate::MAX_MODELS;
use crate::error::{Error, Result};

/// Inputs one request may embed at most (OpenAI's own limit is 2,048).
pub const MAX_INPUTS: usize = 2048;

#[derive(Debug, Clone, PartialEq)]
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

    fn to_json(&self) -> Value {
        match self {
            Input::Texts(t) => json!(t),
            Input::Tokens(t) => json!(t),
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
        Self::from_value(super::parse_json(body)?)
    }

    /// Reads a parsed body.
    pub fn from_value(v: Value) -> Result<Self> {
        let Value::Object(m) = v else {
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
    pub fn openai_body(&self, upstream_model: &str) -> Value {
        let mut b = Map::new();
        b.insert("model".into(), json!(upstream_model));
        b.insert("input".into(), self.input.to_json());
        if let Some(d) = self.dimensions {
            b.insert("dimensions".into(), json!(d));
        }
        b.insert(
            "encoding_format".into(),
            json!(match self.encoding {
                Encoding::Float => "float",
                Encoding::Base64 => "base64",
            }),
        );
        if let Some(u) = &self.user {
            b.insert("user".into(), json!(u));
        }
        Value::Object(b)
    }
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

/// One embedding, as floats or (base64) the little-endian bytes of its f32 values.
pub fn encode(values: &[f64], encoding: Encoding) -> Value {
    match encoding {
        Encoding::Float => json!(values),
        Encoding::Base64 => {
            use base64::Engine;
            let bytes: Vec<u8> = values
                .iter()
                .flat_map(|v| (*v as f32).to_le_bytes())
                .collect();
            json!(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_of_every_shape() {
        let r = EmbeddingsRequest::from_value(json!({"model": "a/b", "input": "hi"})).unwrap();
        assert_eq!(r.input, Input::Texts(vec!["hi".into()]));
        assert_eq!(r.encoding, Encoding::Float);
        let r = EmbeddingsRequest::from_value(json!({"model": "a/b", "input": ["a", "b"], "dimensions": 256, "encoding_format": "base64"})).unwrap();
        assert_eq!(r.input.len(), 2);
        assert_eq!(r.openai_body("m")["dimensions"], 256);
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
    fn base64_is_little_endian_f32() {
        assert_eq!(encode(&[1.0], Encoding::Base64), json!("AACAPw=="));
        assert_eq!(encode(&[0.5, 1.0], Encoding::Float), json!([0.5, 1.0]));
    }
}

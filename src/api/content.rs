//! Message content: a string, or a list of parts, one variant per part type the chat
//! API defines (OpenRouter's `ChatContentItems`: `text`, `image_url`, `input_audio`,
//! `file`, `video_url`; and an assistant's `refusal`), each with its payload typed.
//! What a part carries besides its payload stays in its `extra`, and a part of a type
//! the gateway does not read is kept whole in [`ContentPart::Other`], so that the
//! families that pass parts on as they came (OpenAI-compatible) send what was sent.
//! [`super::read`] reads parts, naming the field of any value it refuses.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Message content: a plain string or a list of typed parts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl Content {
    pub fn text(&self) -> String {
        match self {
            Content::Text(s) => s.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter_map(ContentPart::as_text)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    pub fn parts(&self) -> Vec<ContentPart> {
        match self {
            Content::Text(s) => vec![ContentPart::text(s)],
            Content::Parts(p) => p.clone(),
        }
    }
}

/// One content part, by its `type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text(TextPart),
    ImageUrl(ImagePart),
    InputAudio(AudioPart),
    File(FilePart),
    VideoUrl(VideoPart),
    Refusal(RefusalPart),
    /// A part of a type the gateway does not read, whole (`type` included).
    #[serde(untagged)]
    Other(Map<String, Value>),
}

impl ContentPart {
    pub fn text(s: &str) -> Self {
        ContentPart::Text(TextPart {
            text: s.to_string(),
            ..Default::default()
        })
    }

    /// An `image_url` part of `url`.
    pub fn image(url: String) -> Self {
        ContentPart::ImageUrl(ImagePart {
            image_url: ImageUrl { url, detail: None },
            extra: Map::new(),
        })
    }

    /// A text part's text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            ContentPart::Text(t) => Some(&t.text),
            _ => None,
        }
    }

    /// An `image_url` part's image.
    pub fn image_url(&self) -> Option<&ImageUrl> {
        match self {
            ContentPart::ImageUrl(p) => Some(&p.image_url),
            _ => None,
        }
    }

    /// The part's `type`, as sent.
    pub fn kind(&self) -> &str {
        match self {
            ContentPart::Text(_) => "text",
            ContentPart::ImageUrl(_) => "image_url",
            ContentPart::InputAudio(_) => "input_audio",
            ContentPart::File(_) => "file",
            ContentPart::VideoUrl(_) => "video_url",
            ContentPart::Refusal(_) => "refusal",
            ContentPart::Other(m) => m.get("type").and_then(Value::as_str).unwrap_or_default(),
        }
    }

    /// What the part carries besides its type and payload (the whole part, for a part
    /// of another type).
    pub fn extra(&self) -> &Map<String, Value> {
        match self {
            ContentPart::Text(p) => &p.extra,
            ContentPart::ImageUrl(p) => &p.extra,
            ContentPart::InputAudio(p) => &p.extra,
            ContentPart::File(p) => &p.extra,
            ContentPart::VideoUrl(p) => &p.extra,
            ContentPart::Refusal(p) => &p.extra,
            ContentPart::Other(m) => m,
        }
    }

    /// The part's cache breakpoint (`cache_control`, Anthropic's directive), opaque:
    /// defined on text parts, and taken from any part as OpenRouter does.
    pub fn cache_control(&self) -> Option<&Value> {
        match self {
            ContentPart::Text(t) => t.cache_control.as_ref(),
            other => other.extra().get("cache_control"),
        }
    }
}

/// Read tolerantly, as the tests and tools that build messages from JSON do: a part of
/// a known type must be well formed, any other type is kept whole.
impl<'de> Deserialize<'de> for ContentPart {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        super::read::any_part(v).map_err(|b| serde::de::Error::custom(b.rule()))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TextPart {
    pub text: String,
    /// Passed on opaque (Anthropic's directive: `{"type": "ephemeral", "ttl": "1h"}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImagePart {
    pub image_url: ImageUrl,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageUrl {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AudioPart {
    pub input_audio: InputAudio,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Base64 audio and its format (`wav`, `mp3`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InputAudio {
    pub data: String,
    pub format: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FilePart {
    pub file: FileData,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A file: its data (a data: URL or a URL) or the ID of an upload, and its name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VideoPart {
    pub video_url: VideoUrl,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VideoUrl {
    pub url: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RefusalPart {
    pub refusal: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parts_are_written_back_as_they_came() {
        for part in [
            json!({"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}),
            json!({"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}),
            json!({"type": "input_audio", "input_audio": {"data": "AA", "format": "wav", "x": 1}}),
            json!({"type": "file", "file": {"file_id": "f1", "filename": "a.pdf"}, "y": true}),
            json!({"type": "video_url", "video_url": {"url": "https://v/a.mp4"}}),
            json!({"type": "refusal", "refusal": "no"}),
            json!({"type": "input_video", "video_url": {"url": "https://v/a.mp4"}}),
        ] {
            let p: ContentPart = serde_json::from_value(part.clone()).unwrap();
            assert_eq!(serde_json::to_value(&p).unwrap(), part);
            assert_eq!(p.kind(), part["type"]);
        }
        let p: ContentPart = serde_json::from_value(json!({"type": "input_video"})).unwrap();
        assert!(matches!(p, ContentPart::Other(_)));
        let bad = serde_json::from_value::<ContentPart>(json!({"type": "image_url"}));
        assert!(bad.is_err());
    }
}

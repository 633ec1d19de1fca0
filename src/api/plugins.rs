//! OpenRouter's `plugins` request field (and the older `transforms`), read once into
//! one typed [`Plugin`] per entry. The gateway's own: never sent upstream.
//!
//! `[{id: "web", ...}, {id: "response-healing"}, {id: "context-compression",
//! enabled: false}, {id: "file-parser", pdf: {engine}}, {id: "auto-router", ...}]`;
//! an unknown id is a 400 naming `plugins[i].id`, as OpenRouter's schema refuses it.
//! `transforms: ["middle-out"]` is context compression turned on.

use serde_json::{Map, Value};

use super::read::{boolean, list, named, object, string, whole, Bad, Fields, Read};
use crate::error::Result;

/// The ids the gateway knows, in the order the error message lists them.
const IDS: [&str; 5] = [
    "web",
    "response-healing",
    "context-compression",
    "file-parser",
    "auto-router",
];

/// An endpoint with at most this much context compresses by default (as OpenRouter's
/// 8k endpoints do), unless `context-compression` is turned off.
pub const DEFAULT_COMPRESSION_CONTEXT: u64 = 8_192;

/// One entry of `plugins`.
#[derive(Debug, Clone, PartialEq)]
pub enum Plugin {
    /// Web search for any model (its server tool is another module's).
    Web(WebPlugin),
    /// Repair of JSON replies asked for by `response_format`.
    ResponseHealing(Healing),
    /// Middle-out compression of a prompt longer than the endpoint's context.
    ContextCompression { enabled: bool },
    /// Text of PDFs for models that cannot read files.
    FileParser(FileParser),
    /// The auto router's choices (another module's).
    AutoRouter(AutoRouter),
}

/// `{id: "web"}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebPlugin {
    pub enabled: bool,
    pub max_results: Option<u64>,
    pub search_prompt: Option<String>,
    /// `native`, `exa`, or another engine name (an open enum at OpenRouter).
    pub engine: Option<String>,
}

/// `{id: "response-healing", retry}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Healing {
    pub enabled: bool,
    /// Whether a reply whose repaired JSON fails the schema is asked for once more,
    /// of the next endpoint.
    pub retry: bool,
}

/// How `file-parser` reads a PDF.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PdfEngine {
    /// Text extracted at the edge (OpenRouter's `pdf-text`; `cloudflare-ai` is its
    /// newer name and means the same here).
    #[default]
    PdfText,
    /// Mistral's OCR API, priced per page.
    MistralOcr,
    /// The file passed through as sent.
    Native,
}

/// `{id: "file-parser", pdf: {engine}}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileParser {
    pub enabled: bool,
    /// `None`: the model's own file reading where it has one, else `pdf-text`.
    pub engine: Option<PdfEngine>,
}

/// `{id: "auto-router", allowed_models, excluded_models, cost_tier}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AutoRouter {
    pub enabled: bool,
    pub allowed_models: Option<Vec<String>>,
    pub excluded_models: Option<Vec<String>>,
    pub cost_tier: Option<String>,
}

/// A request's plugins, as sent (with `transforms` folded in).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plugins(pub Vec<Plugin>);

/// Whether an endpoint's prompt is compressed to fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Asked for: any endpoint.
    On,
    /// Turned off: none.
    Off,
    /// Neither: endpoints of at most [`DEFAULT_COMPRESSION_CONTEXT`].
    Default,
}

impl Compression {
    /// Whether a prompt is compressed to fit an endpoint of `context` tokens.
    pub fn applies(self, context: u64) -> bool {
        match self {
            Compression::On => true,
            Compression::Off => false,
            Compression::Default => context <= DEFAULT_COMPRESSION_CONTEXT,
        }
    }
}

impl Plugins {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The web plugin, if it is on.
    pub fn web(&self) -> Option<&WebPlugin> {
        self.0.iter().find_map(|p| match p {
            Plugin::Web(w) if w.enabled => Some(w),
            _ => None,
        })
    }

    /// Response healing, if it is on.
    pub fn healing(&self) -> Option<Healing> {
        self.0.iter().find_map(|p| match p {
            Plugin::ResponseHealing(h) if h.enabled => Some(*h),
            _ => None,
        })
    }

    /// The file parser, if it is on.
    pub fn file_parser(&self) -> Option<FileParser> {
        self.0.iter().find_map(|p| match p {
            Plugin::FileParser(f) if f.enabled => Some(*f),
            _ => None,
        })
    }

    /// The auto router's settings, if it is on.
    pub fn auto_router(&self) -> Option<&AutoRouter> {
        self.0.iter().find_map(|p| match p {
            Plugin::AutoRouter(a) if a.enabled => Some(a),
            _ => None,
        })
    }

    /// Context compression as asked: the last word of `context-compression` entries.
    pub fn compression(&self) -> Compression {
        self.0
            .iter()
            .rev()
            .find_map(|p| match p {
                Plugin::ContextCompression { enabled: true } => Some(Compression::On),
                Plugin::ContextCompression { enabled: false } => Some(Compression::Off),
                _ => None,
            })
            .unwrap_or(Compression::Default)
    }

    /// Whether a prompt is compressed to fit an endpoint of `context` tokens.
    pub fn compresses(&self, context: u64) -> bool {
        self.compression().applies(context)
    }

    /// Takes `plugins` and `transforms` out of a request's passed-on fields, typed.
    pub fn take(extra: &mut Map<String, Value>) -> Result<Plugins> {
        let mut f = Fields(std::mem::take(extra));
        let out = read_fields(&mut f);
        *extra = f.0;
        Ok(out?)
    }
}

/// Reads `plugins` and `transforms` out of a request's fields.
pub(crate) fn read_fields(f: &mut Fields) -> Read<Plugins> {
    let mut out = f
        .read("plugins", &|v| list(v, &plugin))?
        .unwrap_or_default();
    let transforms = f.read("transforms", &|v| list(v, &string))?;
    for (i, t) in transforms.iter().flatten().enumerate() {
        if t != "middle-out" {
            let rule = format!("must be \"middle-out\", not {t:?}");
            return Err(Bad::new(rule).at_index(i).in_field("transforms"));
        }
        // A plugin entry says more than a transform: it comes after.
        out.insert(0, Plugin::ContextCompression { enabled: true });
    }
    Ok(Plugins(out))
}

fn plugin(v: Value) -> Read<Plugin> {
    let mut f = object(v)?;
    let id = f.required("id", &|v| named(v, &IDS))?;
    let enabled = f.read("enabled", &boolean)?.unwrap_or(true);
    let p = match id {
        0 => Plugin::Web(WebPlugin {
            enabled,
            max_results: f.read("max_results", &bounded_results)?,
            search_prompt: f.read("search_prompt", &string)?,
            engine: f.read("engine", &string)?,
        }),
        1 => Plugin::ResponseHealing(Healing {
            enabled,
            retry: f.read("retry", &boolean)?.unwrap_or(false),
        }),
        2 => {
            f.read("engine", &|v| named(v, &["middle-out"]))?;
            Plugin::ContextCompression { enabled }
        }
        3 => Plugin::FileParser(FileParser {
            enabled,
            engine: f.read("pdf", &pdf_options)?.flatten(),
        }),
        _ => Plugin::AutoRouter(AutoRouter {
            enabled,
            allowed_models: f.read("allowed_models", &|v| list(v, &string))?,
            excluded_models: f.read("excluded_models", &|v| list(v, &string))?,
            cost_tier: f.read("cost_tier", &string)?,
        }),
    };
    // Other fields (OpenRouter's newer options) are accepted and ignored, as there.
    Ok(p)
}

/// `max_results`: 1 to 10, as OpenRouter's web plugin.
fn bounded_results(v: Value) -> Read<u64> {
    let n = whole(v)?;
    if !(1..=10).contains(&n) {
        return Err(Bad::new(format!("must be from 1 to 10, not {n}")));
    }
    Ok(n)
}

fn pdf_options(v: Value) -> Read<Option<PdfEngine>> {
    const ENGINES: [&str; 4] = ["pdf-text", "cloudflare-ai", "mistral-ocr", "native"];
    let mut f = object(v)?;
    Ok(f.read("engine", &|v| named(v, &ENGINES))?.map(|i| match i {
        2 => PdfEngine::MistralOcr,
        3 => PdfEngine::Native,
        _ => PdfEngine::PdfText,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn take(v: Value) -> Result<Plugins> {
        let mut m = v.as_object().cloned().unwrap_or_default();
        let p = Plugins::take(&mut m);
        assert!(!m.contains_key("plugins") && !m.contains_key("transforms"));
        p
    }

    #[test]
    fn every_id_reads_into_its_variant() {
        let p = take(json!({"plugins": [
            {"id": "web", "max_results": 3, "search_prompt": "Sources:", "engine": "exa"},
            {"id": "response-healing", "retry": true},
            {"id": "context-compression", "engine": "middle-out"},
            {"id": "file-parser", "pdf": {"engine": "mistral-ocr"}},
            {"id": "auto-router", "allowed_models": ["anthropic/*"], "cost_tier": "low"}
        ]}))
        .unwrap();
        let web = p.web().unwrap();
        assert_eq!(
            (
                web.max_results,
                web.search_prompt.as_deref(),
                web.engine.as_deref()
            ),
            (Some(3), Some("Sources:"), Some("exa"))
        );
        assert_eq!(
            p.healing(),
            Some(Healing {
                enabled: true,
                retry: true
            })
        );
        assert_eq!(p.compression(), Compression::On);
        assert_eq!(p.file_parser().unwrap().engine, Some(PdfEngine::MistralOcr));
        let ar = p.auto_router().unwrap();
        assert_eq!(
            ar.allowed_models.as_deref(),
            Some(&["anthropic/*".to_string()][..])
        );
        assert_eq!(ar.cost_tier.as_deref(), Some("low"));
    }

    #[test]
    fn unknown_ids_and_bad_fields_name_the_field() {
        for (body, says) in [
            (json!({"plugins": [{"id": "web"}, {"id": "teleport"}]}), "plugins[1].id: must be one of web, response-healing, context-compression, file-parser, auto-router, not \"teleport\""),
            (json!({"plugins": [{}]}), "plugins[0].id: is required"),
            (json!({"plugins": {"id": "web"}}), "plugins: must be an array, not an object"),
            (json!({"plugins": [{"id": "web", "max_results": 50}]}), "plugins[0].max_results: must be from 1 to 10, not 50"),
            (json!({"plugins": [{"id": "file-parser", "pdf": {"engine": "ocr"}}]}), "plugins[0].pdf.engine: must be one of pdf-text, cloudflare-ai, mistral-ocr, native, not \"ocr\""),
            (json!({"plugins": [{"id": "response-healing", "enabled": "yes"}]}), "plugins[0].enabled: must be a boolean, not a string"),
            (json!({"transforms": ["middle-out", "squash"]}), "transforms[1]: must be \"middle-out\", not \"squash\""),
        ] {
            let e = take(body).unwrap_err();
            assert_eq!(e.status(), 400);
            assert_eq!(e.public_message(), says);
        }
    }

    #[test]
    fn compression_by_default_only_for_small_contexts() {
        let none = take(json!({})).unwrap();
        assert!(none.is_empty());
        assert!(none.compresses(8_192) && !none.compresses(8_193));
        let off =
            take(json!({"plugins": [{"id": "context-compression", "enabled": false}]})).unwrap();
        assert!(!off.compresses(4_096));
        let on = take(json!({"transforms": ["middle-out"]})).unwrap();
        assert!(on.compresses(1_000_000));
        // The plugin entry has the last word over the transform.
        let both = take(json!({"transforms": ["middle-out"],
            "plugins": [{"id": "context-compression", "enabled": false}]}))
        .unwrap();
        assert_eq!(both.compression(), Compression::Off);
        let healing_off =
            take(json!({"plugins": [{"id": "response-healing", "enabled": false}]})).unwrap();
        assert_eq!(healing_off.healing(), None);
    }
}

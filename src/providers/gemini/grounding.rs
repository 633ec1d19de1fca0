//! Grounding with Google Search in a Gemini reply (`groundingMetadata`): the queries
//! Google ran (each billed as a search) and the sources each span of the answer rests
//! on, as `url_citation` annotations.

use serde::Deserialize;
use serde_json::Value;

use crate::api::server_turn::Cited;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Grounding {
    #[serde(default)]
    web_search_queries: Vec<String>,
    #[serde(default)]
    grounding_chunks: Vec<Chunk>,
    #[serde(default)]
    grounding_supports: Vec<Support>,
}

#[derive(Debug, Default, Deserialize)]
struct Chunk {
    #[serde(default)]
    web: Option<Web>,
}

#[derive(Debug, Default, Deserialize)]
struct Web {
    #[serde(default)]
    uri: String,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Support {
    #[serde(default)]
    segment: Segment,
    #[serde(default)]
    grounding_chunk_indices: Vec<usize>,
}

/// A span of the answer, in bytes of its UTF-8 text (Gemini's offsets).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Segment {
    #[serde(default)]
    start_index: usize,
    #[serde(default)]
    end_index: usize,
    #[serde(default)]
    text: Option<String>,
}

impl Grounding {
    /// The searches Google ran (Gemini 3 bills each query; a grounded reply that names
    /// none ran one).
    pub(super) fn searches(&self) -> u64 {
        let named = u64::try_from(self.web_search_queries.len()).unwrap_or(u64::MAX);
        let grounded = !self.grounding_chunks.is_empty();
        named.max(u64::from(grounded))
    }

    /// The queries (as the loop's query annotations), then `url_citation` annotations,
    /// one per source of each supported span; spans in
    /// characters of `text` (the whole answer) where it is known, else Gemini's bytes.
    /// A source no span cites spans the whole answer.
    pub(super) fn annotations(&self, text: Option<&str>) -> Vec<Value> {
        let chars = |byte: usize| match text {
            Some(t) => t.get(..byte).map_or(byte, |s| s.chars().count()),
            None => byte,
        };
        let whole = text.map_or(0, |t| t.chars().count());
        let mut spans: Vec<(usize, &str, (usize, usize))> = Vec::new();
        for s in &self.grounding_supports {
            let span = (chars(s.segment.start_index), chars(s.segment.end_index));
            let content = s.segment.text.as_deref().unwrap_or("");
            spans.extend(
                s.grounding_chunk_indices
                    .iter()
                    .map(|i| (*i, content, span)),
            );
        }
        let uncited: Vec<usize> = (0..self.grounding_chunks.len())
            .filter(|i| !spans.iter().any(|(c, _, _)| c == i))
            .collect();
        spans.extend(uncited.into_iter().map(|i| (i, "", (0, whole))));
        let queries = self.web_search_queries.iter();
        let queries = queries.map(|q| crate::api::server_turn::query_annotation(q));
        let cited = spans.into_iter().filter_map(|(i, content, (start, end))| {
            let web = self.grounding_chunks.get(i)?.web.as_ref()?;
            let cited = Cited {
                url: web.uri.clone(),
                title: web.title.clone().unwrap_or_default(),
                content: content.to_string(),
                start_index: start,
                end_index: end,
            };
            Some(cited.annotation())
        });
        queries.chain(cited).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn supports_become_annotations_in_characters_and_queries_are_searches() {
        let g: Grounding = serde_json::from_value(json!({
            "webSearchQueries": ["euro 2024 winner", "euro 2024 final score"],
            "searchEntryPoint": {"renderedContent": "<div></div>"},
            "groundingChunks": [
                {"web": {"uri": "https://a.test/x", "title": "a.test"}},
                {"web": {"uri": "https://b.test/y", "title": "b.test"}},
                {"web": {"uri": "https://c.test/z", "title": "c.test"}}
            ],
            "groundingSupports": [
                {"segment": {"startIndex": 7, "endIndex": 21, "text": "Spain won 2-1."},
                 "groundingChunkIndices": [0, 1]}
            ]
        }))
        .unwrap();
        assert_eq!(g.searches(), 2);
        // "Olé! " is 6 bytes, 5 characters; the segment's bytes 7..21 are chars 6..20.
        let text = "Olé!  Spain won 2-1. Yes.";
        let all = g.annotations(Some(text));
        let (_, queries) = crate::api::server_turn::found_in(&Value::Array(all.clone()));
        assert_eq!(queries, ["euro 2024 winner", "euro 2024 final score"]);
        let a = &all[2..];
        let spans: Vec<(String, u64, u64)> = a
            .iter()
            .map(|v| {
                let u = &v["url_citation"];
                (
                    u["url"].as_str().unwrap().to_string(),
                    u["start_index"].as_u64().unwrap(),
                    u["end_index"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            spans,
            [
                ("https://a.test/x".to_string(), 6, 20),
                ("https://b.test/y".to_string(), 6, 20),
                ("https://c.test/z".to_string(), 0, 25),
            ]
        );
        assert_eq!(a[0]["url_citation"]["content"], "Spain won 2-1.");
        // No queries named, sources given: one search; nothing at all: none.
        let one: Grounding =
            serde_json::from_value(json!({"groundingChunks": [{"web": {"uri": "https://a"}}]}))
                .unwrap();
        assert_eq!((one.searches(), Grounding::default().searches()), (1, 0));
    }
}

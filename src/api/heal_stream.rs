//! Response healing at the end of a stream: the content deltas go out as they come,
//! their text is kept (at most [`MAX_HEAL_BYTES`] a stream), each choice's finish is
//! held back, and when the upstream ends the text is healed. Where the healing is a
//! pure suffix (unclosed strings and brackets, a reply cut off) one more content delta
//! completes the JSON before the finish; otherwise the healed whole content goes in the
//! `response_healing` stage of the last event's `openrouter_metadata.pipeline`.

use serde_json::Value;

use super::heal::{heal, Healed, Healer};
use super::{ChatChunk, ChunkChoice, Delta};

/// The most content bytes a stream keeps for the check; past them it is not healed.
pub const MAX_HEAL_BYTES: usize = 1 << 20;

/// What a stream under healing has sent so far.
#[derive(Debug)]
pub struct StreamHealer {
    healer: Healer,
    /// Each choice's content so far, by index.
    texts: Vec<(u32, String)>,
    /// Content bytes kept in all.
    kept: usize,
    /// The content went past [`MAX_HEAL_BYTES`].
    over: bool,
    /// The finishes held back until the healing delta has gone out.
    finishes: Vec<ChunkChoice>,
}

/// One choice's repair: the suffix appended, or the whole content healed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Repair {
    Suffix(String),
    Replace(String),
}

/// What the end of a stream under healing sends: chunks (healing deltas, then the
/// held finishes) and the pipeline stage (JSON).
#[derive(Debug)]
pub struct StreamEnd {
    pub chunks: Vec<ChatChunk>,
    pub stage: String,
}

impl StreamHealer {
    pub fn new(healer: Healer) -> StreamHealer {
        StreamHealer {
            healer,
            texts: Vec::new(),
            kept: 0,
            over: false,
            finishes: Vec::new(),
        }
    }

    /// Keeps the content of choice `index`'s delta.
    pub fn push(&mut self, index: u32, text: &str) {
        if self.over || text.is_empty() {
            return;
        }
        self.kept = self.kept.saturating_add(text.len());
        if self.kept > MAX_HEAL_BYTES {
            self.over = true;
            self.texts = Vec::new();
            return;
        }
        match self.texts.iter_mut().find(|(i, _)| *i == index) {
            Some((_, t)) => t.push_str(text),
            None => self.texts.push((index, text.to_string())),
        }
    }

    /// Takes the finishes out of `chunk` to send after healing; a choice left with an
    /// empty delta goes too.
    pub fn hold_finish(&mut self, chunk: &mut ChatChunk) {
        for c in &mut chunk.choices {
            if let Some(reason) = c.finish_reason.take() {
                self.finishes.push(ChunkChoice {
                    index: c.index,
                    delta: Delta::default(),
                    finish_reason: Some(reason),
                    native_finish_reason: c.native_finish_reason.take(),
                    logprobs: None,
                });
            }
        }
        chunk
            .choices
            .retain(|c| c.delta != Delta::default() || c.logprobs.is_some());
    }

    /// Heals what was sent: the chunks to send before the stream closes and the stage.
    pub fn end(self) -> StreamEnd {
        let mut chunks = Vec::new();
        let (mut original, mut healed_len) = (0usize, 0usize);
        let (mut healed, mut invalid) = (false, None::<String>);
        let mut repairs = Vec::new();
        for (index, text) in &self.texts {
            original = original.saturating_add(text.len());
            let (repair, value) = self.repair(text);
            healed_len = healed_len.saturating_add(match &repair {
                Some(Repair::Suffix(s)) => text.len().saturating_add(s.len()),
                Some(Repair::Replace(s)) => s.len(),
                None => text.len(),
            });
            let misfit = match &value {
                Some(v) => self.healer.misfit(v),
                None => Some("no JSON could be read from the reply".into()),
            };
            if invalid.is_none() {
                invalid = misfit;
            }
            if let Some(r) = repair {
                healed = true;
                if let Repair::Suffix(s) = &r {
                    let mut c = ChatChunk::bare(text_delta(s), None);
                    c.choices.iter_mut().for_each(|c| c.index = *index);
                    chunks.push(c);
                }
                repairs.push((*index, r));
            }
        }
        if !self.finishes.is_empty() {
            let mut c = ChatChunk::bare(Delta::default(), None);
            c.choices = self.finishes;
            chunks.push(c);
        }
        let mut data = format!(
            r#""mode":"{}","healed":{healed},"original_length":{original},"healed_length":{healed_len},"valid":{},"streamed":true"#,
            self.healer.mode(),
            invalid.is_none() && !self.over,
        );
        if self.over {
            data.push_str(&format!(
                r#","skipped":"content over {MAX_HEAL_BYTES} bytes""#
            ));
        }
        if !repairs.is_empty() {
            data.push_str(&format!(r#","repairs":[{}]"#, repairs_json(&repairs)));
        }
        let stage =
            format!(r#"{{"type":"response_healing","name":"response-healing","data":{{{data}}}}}"#);
        StreamEnd { chunks, stage }
    }

    /// How `text` is repaired (none: it is JSON already, or cannot be read) and the
    /// JSON the client ends up with.
    fn repair(&self, text: &str) -> (Option<Repair>, Option<Value>) {
        match heal(text) {
            Healed::Valid => (None, serde_json::from_str(text).ok()),
            Healed::Failed => (None, None),
            Healed::Repaired(json) => {
                let whole = serde_json::from_str::<Value>(&json).ok();
                if let Some(s) = closing_suffix(text) {
                    let mut joined = String::with_capacity(text.len().saturating_add(s.len()));
                    joined.push_str(text);
                    joined.push_str(&s);
                    if let Ok(v) = serde_json::from_str::<Value>(&joined) {
                        return (Some(Repair::Suffix(s)), Some(v));
                    }
                }
                (Some(Repair::Replace(json)), whole)
            }
        }
    }
}

fn text_delta(s: &str) -> Delta {
    Delta {
        content: Some(s.to_string()),
        ..Default::default()
    }
}

/// The repairs as the stage's JSON list items.
fn repairs_json(repairs: &[(u32, Repair)]) -> String {
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let items: Vec<String> = repairs
        .iter()
        .map(|(i, r)| match r {
            Repair::Suffix(s) => {
                format!(
                    r#"{{"index":{i},"repair":"suffix","appended":{}}}"#,
                    quoted(s)
                )
            }
            Repair::Replace(s) => format!(
                r#"{{"index":{i},"repair":"replace","healed_content":{}}}"#,
                quoted(s)
            ),
        })
        .collect();
    items.join(",")
}

/// What closes `text`'s open string and brackets, if it is JSON cut off with anything
/// open (none: nothing is open, or a bracket closes that was never opened).
pub fn closing_suffix(text: &str) -> Option<String> {
    let mut open = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => open.push('}'),
            '[' => open.push(']'),
            '}' | ']' if open.pop() != Some(c) => return None,
            _ => {}
        }
    }
    if escaped || (!in_string && open.is_empty()) {
        return None;
    }
    let mut s = String::new();
    if in_string {
        s.push('"');
    }
    s.extend(open.iter().rev());
    Some(s)
}

/// `metadata` (`openrouter_metadata` as JSON, when asked for) with `stage` first in
/// its `pipeline`; without it, an object of that `pipeline` only.
pub fn with_stage(metadata: Option<&str>, stage: &str) -> String {
    const KEY: &str = "\"pipeline\":[";
    let Some(m) = metadata else {
        return format!("{{{KEY}{stage}]}}");
    };
    let Some(at) = m.rfind(KEY).map(|at| at.saturating_add(KEY.len())) else {
        return m.to_string();
    };
    let (head, tail) = m.split_at(at);
    let sep = if tail.starts_with(']') { "" } else { "," };
    format!("{head}{stage}{sep}{tail}")
}

#[cfg(test)]
mod tests;

//! Anthropic's stream of a message gathered into the one message its caller asked
//! for: the Messages pass-through asks an Anthropic endpoint for a stream even when
//! its caller wants one reply, so that an exchange cut short still shows what it
//! generated (see `api::gather` for the other surfaces). The reply is the message as
//! Anthropic would have sent it whole: `message_start`'s message, each content block
//! as `content_block_start` gave it completed by its deltas (text, thinking and its
//! signature, a tool's input JSON, citations), and `message_delta`'s stop reason and
//! usage. Blocks and fields are kept as they came (server tools, redacted thinking and
//! fields added later go through untouched): a pass-through has no schema to apply.

use serde_json::{Map, Value};

/// The reply so far.
#[derive(Debug, Default)]
pub struct NativeGather {
    message: Map<String, Value>,
    /// Content blocks by their stream index, in order of arrival.
    blocks: Vec<(u64, Map<String, Value>)>,
    /// A tool's input as streamed so far, by block index.
    inputs: Vec<(u64, String)>,
}

impl NativeGather {
    /// One event's data (events that do not parse are left to the translator to
    /// refuse). Read as a JSON value, not typed: what it carries goes through as it
    /// came, and a typed, tagged event costs the wasm build about 13 kB.
    pub fn event(&mut self, data: &str) {
        let Ok(Value::Object(mut ev)) = serde_json::from_str::<Value>(data) else {
            return;
        };
        let index = ev.get("index").and_then(Value::as_u64).unwrap_or(0);
        let Some(Value::String(kind)) = ev.remove("type") else {
            return;
        };
        let mut take = |key: &str| match ev.remove(key) {
            Some(Value::Object(o)) => o,
            _ => Map::new(),
        };
        match kind.as_str() {
            "message_start" => self.message = take("message"),
            "content_block_start" => {
                let block = take("content_block");
                match self.blocks.iter_mut().find(|(i, _)| *i == index) {
                    Some((_, b)) => *b = block,
                    None => self.blocks.push((index, block)),
                }
            }
            "content_block_delta" => self.delta(index, take("delta")),
            "content_block_stop" => self.stop(index),
            "message_delta" => {
                self.message.extend(take("delta"));
                let usage = take("usage");
                let u = self
                    .message
                    .entry("usage")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(u) = u {
                    u.extend(usage);
                }
            }
            // ping, message_stop, error (the translator ends the stream) and events
            // added later say nothing of the message.
            _ => {}
        }
    }

    fn delta(&mut self, index: u64, mut delta: Map<String, Value>) {
        let kind = delta
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (key, piece) = match kind {
            "text_delta" => ("text", delta.remove("text")),
            "thinking_delta" => ("thinking", delta.remove("thinking")),
            "signature_delta" => ("signature", delta.remove("signature")),
            "input_json_delta" => ("partial_json", delta.remove("partial_json")),
            "citations_delta" => ("citations", delta.remove("citation")),
            _ => return,
        };
        let Some(piece) = piece else {
            return;
        };
        if key == "partial_json" {
            let piece = piece.as_str().unwrap_or_default();
            match self.inputs.iter_mut().find(|(i, _)| *i == index) {
                Some((_, s)) => s.push_str(piece),
                None => self.inputs.push((index, piece.to_string())),
            }
            return;
        }
        let Some((_, block)) = self.blocks.iter_mut().find(|(i, _)| *i == index) else {
            return;
        };
        match (block.get_mut(key), piece) {
            (Some(Value::Array(list)), citation) if key == "citations" => list.push(citation),
            (_, citation) if key == "citations" => {
                block.insert(key.into(), Value::Array(vec![citation]));
            }
            (Some(Value::String(s)), Value::String(p)) => s.push_str(&p),
            (_, piece) => {
                block.insert(key.into(), piece);
            }
        }
    }

    /// A block ended: a tool's streamed input becomes its `input`.
    fn stop(&mut self, index: u64) {
        let Some(pos) = self.inputs.iter().position(|(i, _)| *i == index) else {
            return;
        };
        let (_, json) = self.inputs.swap_remove(pos);
        let block = self.blocks.iter_mut().find(|(i, _)| *i == index);
        if let (Some((_, block)), Ok(input)) = (block, serde_json::from_str::<Value>(&json)) {
            block.insert("input".into(), input);
        }
    }

    /// The message gathered so far, its blocks in order: the pass-through caller's
    /// reply, a JSON value because it goes out as Anthropic sent it (no schema applied).
    pub fn finish(mut self) -> Value {
        // A tool whose block never stopped (a cut stream): what came of its input.
        let open: Vec<u64> = self.inputs.iter().map(|(i, _)| *i).collect();
        for index in open {
            self.stop(index);
        }
        let content = self
            .blocks
            .into_iter()
            .map(|(_, b)| Value::Object(b))
            .collect();
        self.message.insert("content".into(), Value::Array(content));
        Value::Object(self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Feeds every event of an SSE fixture.
    fn gather(sse: &str) -> Value {
        let mut g = NativeGather::default();
        for line in sse.lines() {
            if let Some(data) = line.strip_prefix("data: ") {
                g.event(data);
            }
        }
        g.finish()
    }

    #[test]
    fn a_gathered_stream_is_the_message_anthropic_sends_whole() {
        let thinking = gather(include_str!(
            "../../../tests/fixtures/anthropic/thinking_stream/stream.sse"
        ));
        assert_eq!(
            thinking,
            json!({
                "id": "msg_01", "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [
                    {"type": "thinking", "thinking": "2 + 2 is 4.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
                    {"type": "text", "text": "4"}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 20, "output_tokens": 15}
            })
        );
        let tool = gather(include_str!(
            "../../../tests/fixtures/anthropic/tool_use_stream/stream.sse"
        ));
        let content = tool["content"].as_array().unwrap();
        let call = content.iter().find(|b| b["type"] == "tool_use").unwrap();
        assert_eq!(call["input"], json!({"city": "Paris"}));
        assert_eq!(tool["stop_reason"], "tool_use");
    }

    #[test]
    fn blocks_it_does_not_know_and_citations_come_through() {
        let events = [
            json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "server_tool_use", "id": "srv", "name": "web_search", "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"query\":"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "\"news\"}"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "web_search_tool_result", "tool_use_id": "srv", "content": [{"type": "web_search_result", "url": "https://a.example"}]}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "citations_delta", "citation": {"type": "web_search_result_location", "url": "https://a.example"}}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "News."}}),
            json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}}}),
            json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{\"a\": 1}"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 9, "server_tool_use": {"web_search_requests": 1}}}),
            json!({"type": "ping"}),
        ];
        let mut g = NativeGather::default();
        for e in &events {
            g.event(&e.to_string());
        }
        g.event("not json");
        let m = g.finish();
        assert_eq!(m["content"][0]["input"], json!({"query": "news"}));
        assert_eq!(m["content"][1]["content"][0]["url"], "https://a.example");
        assert_eq!(m["content"][2]["text"], "News.");
        assert_eq!(m["content"][2]["citations"][0]["url"], "https://a.example");
        // A tool block the stream never closed keeps the input that came.
        assert_eq!(m["content"][3]["input"], json!({"a": 1}));
        assert_eq!(m["stop_reason"], "end_turn");
        assert_eq!(
            m["usage"],
            json!({"input_tokens": 5, "output_tokens": 9, "server_tool_use": {"web_search_requests": 1}})
        );
    }
}

//! [`ChatStream`]'s builders: what a stream adds to what it relays (metadata, healing,
//! OCR pages, file annotations, the echoed upstream body, failover).

use super::{ChatStream, Encoder, StreamHealer};

impl ChatStream {
    /// Puts `openrouter_metadata` (JSON) on the stream's last event when it ends well.
    pub fn with_metadata(mut self, metadata: Option<String>) -> Self {
        self.metadata = metadata;
        self
    }

    /// Heals the content at the stream's end (not passed through or gathered: whole).
    pub fn with_healing(mut self, healer: Option<crate::api::heal::Healer>) -> Self {
        let able = !self.encoder.is_passthrough() && self.gather.is_none();
        self.heal = healer
            .filter(|_| able)
            .map(|h| Box::new(StreamHealer::new(h)));
        self
    }

    /// Bills the file parser's OCR with the stream.
    pub fn with_ocr(mut self, ocr: crate::usage::Ocr) -> Self {
        self.ocr = ocr;
        self
    }

    /// Sends the file parser's `file` annotations in a chat stream's closing delta.
    pub fn with_annotations(mut self, annotations: Vec<serde_json::Value>) -> Self {
        self.annotations = annotations;
        self
    }

    /// A chat stream's first chunk: `choices: []` and `debug.echo_upstream_body`, the
    /// JSON body sent upstream (ignored on other surfaces, as on OpenRouter).
    pub fn with_echo(mut self, upstream_body: Option<&[u8]>) -> Self {
        let Some(body) = upstream_body.filter(|_| matches!(self.encoder, Encoder::Chat)) else {
            return self;
        };
        let mut out = Vec::with_capacity(body.len().saturating_add(256));
        self.head.write_fields(&mut out, |out| {
            out.extend_from_slice(b"{\"choices\":[],\"debug\":{\"echo_upstream_body\":");
            out.extend_from_slice(body);
            out.extend_from_slice(b"}}");
            true
        });
        self.preface = out;
        self
    }

    /// Lets the stream fail over `failovers` times ([`ChatStream::switch`]): a failure
    /// before the content ends is held ([`ChatStream::pending_failover`]) instead of
    /// sent. Not for a stream passed through or gathered into one reply.
    pub fn with_failover(mut self, failovers: u8) -> Self {
        let able = !self.encoder.is_passthrough() && self.gather.is_none();
        if failovers > 0 && able {
            self.relay = Some(Box::new(crate::providers::continuation::Relay::new(
                failovers,
            )));
        }
        self
    }
}

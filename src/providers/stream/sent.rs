//! What a stream has sent its client, as billing and fallback read it.

use crate::providers::normalize_finish_reason;

/// What a stream has sent the client so far, as billing and fallback need it: bytes
/// of output (the estimate's basis when the upstream gives no count), whether any
/// content went out, and the finish reason.
#[derive(Debug, Default)]
pub struct Sent {
    pub(super) completion_bytes: usize,
    pub(super) content: bool,
    pub(super) finish_reason: Option<String>,
    /// The service tier the upstream says served the stream.
    pub(super) service_tier: Option<String>,
}

impl Sent {
    /// One delta: its text and reasoning, whether it has images, and the name and
    /// arguments of each piece of a tool call in it.
    pub fn delta<'a>(
        &mut self,
        texts: [Option<&str>; 2],
        images: bool,
        calls: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
    ) {
        for text in texts.into_iter().flatten() {
            self.completion_bytes = self.completion_bytes.saturating_add(text.len());
            self.content |= !text.is_empty();
        }
        self.content |= images;
        for (name, args) in calls {
            let len = name
                .map_or(0, str::len)
                .saturating_add(args.map_or(0, str::len));
            self.completion_bytes = self.completion_bytes.saturating_add(len);
            self.content = true;
        }
    }

    /// The service tier the upstream names (in any chunk; the last one counts).
    pub fn tier(&mut self, name: &str) {
        if self.service_tier.as_deref() != Some(name) {
            self.service_tier = Some(name.to_string());
        }
    }

    /// The upstream's own finish reason; returns OpenRouter's normalised one.
    pub fn finish(&mut self, native: &str) -> &'static str {
        let norm = normalize_finish_reason(native);
        self.finish_reason = Some(norm.to_string());
        norm
    }
}

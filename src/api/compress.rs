//! Context compression ("middle-out", OpenRouter's `context-compression` plugin and
//! `transforms: ["middle-out"]`): a prompt longer than an endpoint's context loses
//! messages from its middle, where models attend least, until it fits. Kept whatever
//! the budget: every system and developer message, the first user turn, and the
//! current tool loop (the turn since the last user message, with its reasoning); an
//! assistant's tool calls go or stay together with their results. When that is still
//! too long, the middle of the longest text is cut. Pure; the edge applies it per
//! attempt, since each fallback endpoint may have another context.

use super::{estimate_tokens, ChatRequest, Content, Message, Role};

/// What stands in for the text cut from the middle of a message.
pub const CUT_MARK: &str = "\n\n[... middle of this message removed to fit the context ...]\n\n";

/// A compressed prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Compressed {
    pub messages: Vec<Message>,
    /// How many messages were dropped.
    pub dropped: usize,
    /// How many messages had the middle of their text cut.
    pub cut: usize,
}

/// A message's estimated tokens, as routing's context check counts them
/// ([`super::estimate_prompt_tokens`]), with its tool calls.
pub fn message_tokens(m: &Message) -> u64 {
    let calls: usize = m
        .tool_calls
        .iter()
        .flatten()
        .map(|c| {
            c.function
                .name
                .len()
                .saturating_add(c.function.arguments.len())
        })
        .sum();
    estimate_tokens(&m.text())
        .saturating_add((calls as u64).div_ceil(4))
        .saturating_add(4)
}

/// `messages` made to fit in `budget` tokens, if they do not already; `None` when
/// they fit as they are.
pub fn compress(messages: &[Message], budget: u64) -> Option<Compressed> {
    let total: u64 = messages.iter().map(message_tokens).sum();
    if total <= budget {
        return None;
    }
    let units = units(messages);
    let mut keep: Vec<bool> = units.iter().map(|u| u.pinned).collect();
    let mut size = total;
    // Dropped nearest the middle first, then outwards.
    let mid = units.len() / 2;
    let mut order: Vec<usize> = (0..units.len())
        .filter(|i| !units.get(*i).is_some_and(|u| u.pinned))
        .collect();
    order.sort_by_key(|i| i.abs_diff(mid));
    let mut dropped_units = Vec::new();
    for i in order {
        if size <= budget {
            break;
        }
        let Some(u) = units.get(i) else { continue };
        size = size.saturating_sub(u.tokens);
        dropped_units.push(i);
    }
    // Units not dropped are kept, pinned or not.
    for (i, k) in keep.iter_mut().enumerate() {
        *k = !dropped_units.contains(&i);
    }
    let mut out = Vec::new();
    let mut dropped: usize = 0;
    for (u, k) in units.iter().zip(&keep) {
        match (k, messages.get(u.from..u.to)) {
            (true, Some(ms)) => out.extend_from_slice(ms),
            (false, Some(ms)) => dropped = ms.len().saturating_add(dropped),
            _ => {}
        }
    }
    let cut = cut_longest(&mut out, size, budget);
    Some(Compressed {
        messages: out,
        dropped,
        cut,
    })
}

/// `req` as an endpoint of `context` tokens takes it, where its prompt is too long
/// for it and compression applies there ([`super::plugins::Plugins::compresses`]): its
/// messages fit in the context less the output asked for.
pub fn for_context(req: &ChatRequest, context: u64) -> Option<(ChatRequest, Compressed)> {
    if !req.plugins.compresses(context) {
        return None;
    }
    let budget = context.saturating_sub(req.max_output_tokens().unwrap_or(0));
    let c = compress(&req.messages, budget)?;
    let mut out = req.clone();
    out.messages = c.messages.clone();
    Some((out, c))
}

impl Compressed {
    /// The `context_compression` stage of `openrouter_metadata.pipeline`, as JSON.
    pub fn stage(&self) -> String {
        let original = self.messages.len().saturating_add(self.dropped);
        format!(
            r#"{{"type":"context_compression","name":"context-compression","data":{{"engine":"middle-out","input_type":"messages","original_count":{original},"compressed_count":{},"truncated_messages":{}}}}}"#,
            self.messages.len(),
            self.cut
        )
    }
}

/// A run of messages that goes or stays whole: one message, or an assistant's tool
/// calls with the tool results that answer them.
struct Unit {
    from: usize,
    to: usize,
    tokens: u64,
    pinned: bool,
}

fn units(messages: &[Message]) -> Vec<Unit> {
    let first_user = messages.iter().position(|m| m.role == Role::User);
    let last_user = messages.iter().rposition(|m| m.role == Role::User);
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(m) = messages.get(i) {
        let mut to = i.saturating_add(1);
        if m.tool_calls.as_ref().is_some_and(|c| !c.is_empty()) {
            while messages.get(to).is_some_and(|n| n.role == Role::Tool) {
                to = to.saturating_add(1);
            }
        }
        let tokens = messages
            .get(i..to)
            .unwrap_or_default()
            .iter()
            .map(message_tokens)
            .sum();
        let pinned = matches!(m.role, Role::System | Role::Developer)
            || Some(i) == first_user
            || last_user.is_none_or(|l| i >= l);
        out.push(Unit {
            from: i,
            to,
            tokens,
            pinned,
        });
        i = to;
    }
    out
}

/// Cuts the middle of the longest text message other than a system one until
/// `size` fits `budget` (or nothing is left to cut); how many were cut.
fn cut_longest(messages: &mut [Message], mut size: u64, budget: u64) -> usize {
    let mut cut: usize = 0;
    while size > budget {
        let longest = messages
            .iter_mut()
            .filter(|m| !matches!(m.role, Role::System | Role::Developer))
            .filter_map(|m| match &mut m.content {
                Some(Content::Text(t)) => Some(t),
                _ => None,
            })
            .max_by_key(|t| t.len());
        let Some(text) = longest else { break };
        let over = size.saturating_sub(budget);
        // Bytes to remove: four a token, plus room for the mark.
        let remove = (over.saturating_mul(4) as usize).saturating_add(CUT_MARK.len());
        if remove >= text.len() {
            break;
        }
        let before = estimate_tokens(text);
        *text = cut_middle(text, remove);
        size = size
            .saturating_sub(before)
            .saturating_add(estimate_tokens(text));
        cut = cut.saturating_add(1);
    }
    cut
}

/// `text` without `remove` bytes from its middle (at character boundaries), marked.
fn cut_middle(text: &str, remove: usize) -> String {
    let keep = text.len().saturating_sub(remove);
    let mut head = keep / 2;
    while !text.is_char_boundary(head) {
        head = head.saturating_sub(1);
    }
    let mut tail = text.len().saturating_sub(keep.saturating_sub(head));
    while !text.is_char_boundary(tail) {
        tail = tail.saturating_add(1);
    }
    format!(
        "{}{CUT_MARK}{}",
        text.get(..head).unwrap_or_default(),
        text.get(tail..).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{FunctionCall, ToolCall};

    fn msg(role: Role, text: &str) -> Message {
        Message {
            role,
            content: Some(Content::Text(text.into())),
            ..Default::default()
        }
    }

    fn call(id: &str) -> Message {
        Message {
            role: Role::Assistant,
            tool_calls: Some(vec![ToolCall {
                id: id.into(),
                kind: "function".into(),
                function: FunctionCall {
                    name: "f".into(),
                    arguments: "{}".into(),
                },
            }]),
            ..Default::default()
        }
    }

    fn result(id: &str, text: &str) -> Message {
        Message {
            tool_call_id: Some(id.into()),
            ..msg(Role::Tool, text)
        }
    }

    fn texts(ms: &[Message]) -> Vec<String> {
        ms.iter()
            .map(|m| {
                format!(
                    "{}:{}{}",
                    m.role.as_str(),
                    m.text(),
                    m.tool_call_id
                        .as_deref()
                        .or(m
                            .tool_calls
                            .as_ref()
                            .and_then(|c| c.first())
                            .map(|c| c.id.as_str()))
                        .unwrap_or("")
                )
            })
            .collect()
    }

    /// A conversation of 20-token turns (80 bytes of text, plus 4).
    fn long() -> Vec<Message> {
        let t = |c: char| c.to_string().repeat(80);
        let mut ms = vec![msg(Role::System, "be brief"), msg(Role::User, &t('u'))];
        for i in 0..6 {
            ms.push(msg(Role::Assistant, &t('a')));
            ms.push(call(&format!("c{i}")));
            ms.push(result(&format!("c{i}"), &t('r')));
            ms.push(msg(Role::User, &t('q')));
        }
        ms.push(msg(Role::Assistant, "thinking"));
        ms.push(call("now"));
        ms.push(result("now", "42"));
        ms
    }

    #[test]
    fn a_prompt_that_fits_is_left_alone() {
        let ms = long();
        let total: u64 = ms.iter().map(message_tokens).sum();
        assert_eq!(compress(&ms, total), None);
    }

    #[test]
    fn the_middle_goes_and_tool_pairs_stay_together() {
        let ms = long();
        let total: u64 = ms.iter().map(message_tokens).sum();
        assert_eq!(total, 6 + 24 + 6 * (24 + 5 + 24 + 24) + 6 + 5 + 5);
        let c = compress(&ms, total / 2).unwrap();
        let kept: u64 = c.messages.iter().map(message_tokens).sum();
        assert!(kept <= total / 2, "{kept}");
        assert_eq!((c.dropped, c.cut), (14, 0));
        let u = "u".repeat(80);
        let (a, r, q) = ("a".repeat(80), "r".repeat(80), "q".repeat(80));
        assert_eq!(
            texts(&c.messages),
            vec![
                "system:be brief".to_string(),
                format!("user:{u}"),
                format!("assistant:{a}"),
                "assistant:c0".into(),
                format!("tool:{r}c0"),
                format!("user:{q}"),
                format!("assistant:{a}"),
                format!("user:{q}"),
                format!("assistant:{a}"),
                "assistant:c5".into(),
                format!("tool:{r}c5"),
                format!("user:{q}"),
                "assistant:thinking".into(),
                "assistant:now".into(),
                "tool:42now".into(),
            ]
        );
        // Every tool result kept has its call kept, and every call its results.
        for (i, m) in c.messages.iter().enumerate() {
            if m.role == Role::Tool {
                let id = m.tool_call_id.clone().unwrap();
                assert!(c.messages[..i].iter().any(|p| p
                    .tool_calls
                    .iter()
                    .flatten()
                    .any(|t| t.id == id)));
            }
        }
    }

    #[test]
    fn a_huge_single_message_loses_its_middle() {
        let big = format!("{}{}", "h".repeat(4_000), "t".repeat(4_000));
        let ms = vec![msg(Role::System, "sys"), msg(Role::User, &big)];
        let c = compress(&ms, 1_000).unwrap();
        assert_eq!((c.dropped, c.cut), (0, 1));
        assert_eq!(c.messages[0], ms[0]);
        let text = c.messages[1].text();
        assert!(text.starts_with("hhhh") && text.ends_with("tttt") && text.contains(CUT_MARK));
        let kept: u64 = c.messages.iter().map(message_tokens).sum();
        assert!(kept <= 1_000, "{kept}");
        assert!(kept > 950, "cut no more than needed: {kept}");
        // Multi-byte text is cut at character boundaries.
        let wide = vec![msg(Role::User, &"é".repeat(3_000))];
        let c = compress(&wide, 500).unwrap();
        assert!(c.messages[0].text().contains(CUT_MARK));
    }
}

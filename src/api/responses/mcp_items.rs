//! What the gateway's tool loop did with the Responses `mcp` tools of a turn, written
//! as OpenAI writes its own: an `mcp_list_tools` item for each server (the tools the
//! model was offered) and an `mcp_call` item for each call, before the message; from
//! the loop's [`Turn`], never read back from text.

use crate::api::server_turn::Turn;

use super::reply::{OutputItem, Status};

/// The `mcp_list_tools` items, then the `mcp_call` items, numbered after the response
/// `id`.
pub fn mcp_items(turn: &Turn, id: &str) -> Vec<OutputItem> {
    let lists = turn
        .mcp
        .lists
        .iter()
        .enumerate()
        .map(|(n, l)| OutputItem::McpListTools {
            id: format!("mcpl_{id}_{n}"),
            server_label: l.server_label.clone(),
            tools: l.tools.clone(),
        });
    let calls = turn
        .mcp
        .calls
        .iter()
        .enumerate()
        .map(|(n, c)| OutputItem::McpCall {
            id: format!("mcp_{id}_{n}"),
            server_label: c.server_label.clone(),
            name: c.name.clone(),
            arguments: c.arguments.clone(),
            output: c.output.clone(),
            error: c.error.clone(),
            status: if c.error.is_some() {
                Status::Failed
            } else {
                Status::Completed
            },
        });
    lists.chain(calls).collect()
}

/// `item` (an MCP item) as it is when its `output_item.added` event goes out: a
/// listing with no tools yet, a call in progress with no output.
pub fn started(item: &OutputItem) -> OutputItem {
    match item {
        OutputItem::McpListTools {
            id, server_label, ..
        } => OutputItem::McpListTools {
            id: id.clone(),
            server_label: server_label.clone(),
            tools: Vec::new(),
        },
        OutputItem::McpCall {
            id,
            server_label,
            name,
            ..
        } => OutputItem::McpCall {
            id: id.clone(),
            server_label: server_label.clone(),
            name: name.clone(),
            arguments: String::new(),
            output: None,
            error: None,
            status: Status::InProgress,
        },
        other => other.clone(),
    }
}

#[cfg(test)]
#[path = "mcp_items_tests.rs"]
mod tests;

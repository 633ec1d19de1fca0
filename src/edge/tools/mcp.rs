//! Remote MCP servers over Streamable HTTP: `tools/list` for the functions offered,
//! `tools/call` for each call. (Written by the MCP slice; until it lands, not available.)

use super::{not_available, ToolEnv};
use crate::api::server_tools::{McpServer, ServerCall, ToolOutput};
use crate::api::FunctionDef;
use crate::error::Error;

pub async fn run(
    _call: &ServerCall,
    _server: &McpServer,
    _ctx: &ToolEnv<'_>,
) -> Result<ToolOutput, Error> {
    Err(not_available("mcp"))
}

pub async fn functions(_server: &McpServer, _ctx: &ToolEnv<'_>) -> Result<Vec<FunctionDef>, Error> {
    Err(not_available("mcp"))
}

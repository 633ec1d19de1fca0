//! Server tools' executors: the I/O behind a [`ServerCall`]. [`run`] dispatches a call
//! to the tool's executor (`search.rs`, `fetch.rs`, `mcp.rs`; the datetime tool needs
//! no I/O); [`functions`] lists what the model is offered for a tool (an MCP server's
//! from its `tools/list`). The loop that calls the model and these in turn is the
//! pipeline's.

mod fetch;
mod mcp;
mod search;

use worker::Env;

use crate::api::datetime;
use crate::api::server_tools::{ServerCall, ServerTool, ToolOutput};
use crate::api::FunctionDef;
use crate::error::Error;
use crate::settings::Settings;

/// What an executor may use: the deployment's vars and secrets (engine keys, base
/// URLs), its settings, the clock, and the request's privacy rule.
pub struct ToolEnv<'a> {
    pub env: &'a Env,
    /// The media fetcher's limits, for `web_fetch`.
    #[allow(dead_code)] // until the fetch executor lands
    pub settings: &'a Settings,
    /// Seconds since the epoch, when the call runs.
    pub now_secs: u64,
    /// `provider.zdr: true`: no third-party engine may see the query.
    pub zdr: bool,
    /// The most milliseconds one call may take.
    pub timeout_ms: u64,
}

/// Runs one server call of `tool`. An `Err` is the request's failure (a misconfigured
/// engine, an upstream that failed): the loop decides whether the model reads it.
pub async fn run(
    call: &ServerCall,
    tool: &ServerTool,
    ctx: &ToolEnv<'_>,
) -> Result<ToolOutput, Error> {
    match tool {
        ServerTool::WebSearch(p) => search::run(call, p, ctx).await,
        ServerTool::WebFetch(p) => fetch::run(call, p, ctx).await,
        ServerTool::Mcp(m) => mcp::run(call, m, ctx).await,
        ServerTool::Datetime(p) => {
            let secs = i64::try_from(ctx.now_secs).unwrap_or_default();
            let content = datetime::render(p.timezone.as_deref(), secs)
                .ok_or_else(|| Error::bad_request("unknown time zone"))?;
            Ok(ToolOutput {
                content,
                ..ToolOutput::default()
            })
        }
    }
}

/// The functions a tool is offered as, and the annotations an MCP server gave its
/// tools (`readOnlyHint`, ...), by function name.
pub type Listed = (Vec<FunctionDef>, Vec<(String, serde_json::Value)>);

/// The functions the model is offered for `tool`.
pub async fn functions(tool: &ServerTool, ctx: &ToolEnv<'_>) -> Result<Listed, Error> {
    match tool {
        ServerTool::Mcp(m) => mcp::functions(m, ctx).await,
        other => Ok((other.functions(), Vec::new())),
    }
}

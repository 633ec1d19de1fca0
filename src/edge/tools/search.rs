//! `openrouter:web_search` through a search engine's API (Exa, Brave, Tavily): the
//! request built and the reply read by `providers::search`, sent here.

use super::{not_available, ToolEnv};
use crate::api::server_tools::{ServerCall, ToolOutput, WebSearchParams};
use crate::error::Error;

pub async fn run(
    _call: &ServerCall,
    _params: &WebSearchParams,
    _ctx: &ToolEnv<'_>,
) -> Result<ToolOutput, Error> {
    Err(not_available("openrouter:web_search"))
}

//! `openrouter:web_fetch`: fetches a page by the media fetcher's rules and turns it
//! into text. (Written by the web_fetch slice; until it lands, not available.)

use super::{not_available, ToolEnv};
use crate::api::server_tools::{ServerCall, ToolOutput, WebFetchParams};
use crate::error::Error;

pub async fn run(
    _call: &ServerCall,
    _params: &WebFetchParams,
    _ctx: &ToolEnv<'_>,
) -> Result<ToolOutput, Error> {
    Err(not_available("openrouter:web_fetch"))
}

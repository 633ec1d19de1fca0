//! `openrouter:web_search` through a search engine's API (Exa, Brave, Tavily): the
//! request built and the reply read by `providers::search`, sent here with the
//! engine's key (`EXA_API_KEY`, ...) to its base URL (`EXA_BASE_URL` overrides it).

use super::ToolEnv;
use crate::api::server_tools::{ServerCall, ToolOutput, WebSearchParams};
use crate::edge::{config, upstream};
use crate::error::Error;
use crate::providers::search::{self, Query, SearchEngine};

/// The most bytes of a search engine's reply that are read.
const MAX_SEARCH_BYTES: usize = 2 * 1024 * 1024;

/// The engine a search of `params` goes to here.
pub fn engine_of(params: &WebSearchParams, ctx: &ToolEnv<'_>) -> SearchEngine {
    let deployment = config::string(ctx.env, "SEARCH_ENGINE");
    SearchEngine::of(params.engine, deployment.as_deref())
}

pub async fn run(
    call: &ServerCall,
    params: &WebSearchParams,
    ctx: &ToolEnv<'_>,
) -> Result<ToolOutput, Error> {
    let Some(query) = call.string_arg("query").filter(|q| !q.trim().is_empty()) else {
        // The model's mistake: it reads why, and may try again.
        return Ok(ToolOutput {
            content: "error: web_search takes {\"query\": \"...\"}, a non-empty string".into(),
            ..ToolOutput::default()
        });
    };
    if ctx.zdr {
        return Err(Error::NoProvider(
            "provider.zdr: no third-party search engine may see the query; only an endpoint's native search may serve".into(),
        ));
    }
    let engine = engine_of(params, ctx);
    let slug = engine.slug();
    let key = config::string(ctx.env, &engine.key_secret()).ok_or_else(|| {
        Error::NoProvider(format!(
            "The search engine {slug} is not configured on this gateway (secret {} is not set)",
            engine.key_secret()
        ))
    })?;
    let base = config::string(ctx.env, &engine.base_url_var())
        .unwrap_or_else(|| engine.default_base_url().to_string());
    let q = Query {
        text: &query,
        count: params.max_results,
        params,
    };
    let up: upstream::Outgoing = search::build(engine, &base, &key, &q)?.into();
    let (mut resp, mut inflight) = upstream::send(&up, slug, ctx.timeout_ms).await?;
    if !(200..300).contains(&resp.status_code()) {
        return Err(upstream::failure(&mut resp, slug, ctx.timeout_ms).await);
    }
    let body = upstream::body(&mut resp, slug, ctx.timeout_ms, MAX_SEARCH_BYTES).await?;
    inflight.completed();
    let (hits, cost) = search::parse(engine, &body)?;
    Ok(search::output(&query, hits, &q, cost))
}

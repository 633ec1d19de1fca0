//! Fetching the media a family cannot fetch itself (Gemini reads only inline data,
//! YouTube and its own uploads), to send it inline: only http(s) to public hosts
//! (redirects checked hop by hop), within a size budget and a time limit. A URL that
//! cannot be fetched is the caller's 400, naming its field.

use std::collections::HashMap;
use std::pin::pin;

use base64::Engine;
use futures_util::future::{select, Either};
use worker::{Env, Fetch, Method, Request, RequestInit, RequestRedirect, Url};

use super::config;
use super::upstream::Capped;
use crate::api::ChatRequest;
use crate::catalog::ApiFamily;
use crate::error::Error;
use crate::providers::media::{self, Remote};
use crate::providers::Target;

/// All fetched media of one request together, at most (`MEDIA_MAX_BYTES`): Gemini's
/// limit for a request with inline data is 20 MB.
const DEFAULT_MAX_BYTES: u64 = 20 * 1024 * 1024;
/// The time to fetch all of a request's media (`MEDIA_FETCH_TIMEOUT_MS`).
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const MAX_REDIRECTS: usize = 3;

/// `chat` with its remote media inlined, when `target`'s family needs that and there
/// is any; `None` when the request goes as it is.
pub async fn inline_for(
    env: &Env,
    target: &Target<'_>,
    chat: &ChatRequest,
) -> Result<Option<ChatRequest>, Error> {
    if target.provider.api != ApiFamily::Gemini {
        return Ok(None);
    }
    let remote = media::remote_for_gemini(chat);
    if remote.is_empty() {
        return Ok(None);
    }
    let allow: Vec<String> = config::string(env, "MEDIA_FETCH_ALLOW_HOSTS")
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect();
    let mut budget = usize::try_from(config::u64(env, "MEDIA_MAX_BYTES", DEFAULT_MAX_BYTES))
        .unwrap_or(usize::MAX);
    let timeout_ms = config::u64(env, "MEDIA_FETCH_TIMEOUT_MS", DEFAULT_TIMEOUT_MS);
    let work = async {
        let mut fetched = HashMap::new();
        for r in &remote {
            let (mime, bytes) = fetch_one(r, &allow, budget).await?;
            budget = budget.saturating_sub(bytes.len());
            let mime = mime.filter(|m| usable(m)).unwrap_or_else(|| r.mime.clone());
            let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
            fetched.insert(r.url.clone(), (mime, data));
        }
        Ok::<_, Error>(fetched)
    };
    let timeout = pin!(config::sleep(timeout_ms));
    let fetched = match select(pin!(work), timeout).await {
        Either::Left((r, _)) => r?,
        Either::Right(_) => {
            let first = remote.first().map_or("messages", |r| r.path.as_str());
            return Err(Error::bad_request(format!(
                "{first}: media could not be fetched within {timeout_ms} ms"
            )));
        }
    };
    Ok(Some(media::inline(chat, &fetched)))
}

/// A served media type worth keeping (servers often say `application/octet-stream`).
fn usable(mime: &str) -> bool {
    !mime.is_empty() && mime != "application/octet-stream" && mime != "binary/octet-stream"
}

/// One URL's bytes (at most `max_bytes`) and served media type, following at most
/// [`MAX_REDIRECTS`] redirects, each target checked like the first.
async fn fetch_one(
    r: &Remote,
    allow: &[String],
    max_bytes: usize,
) -> Result<(Option<String>, Vec<u8>), Error> {
    let bad = |why: String| Error::bad_request(format!("{}: {why}", r.path));
    let mut url = r.url.clone();
    for _ in 0..=MAX_REDIRECTS {
        // What is fetched is the URL as checked (parsed and re-serialised).
        url = media::fetchable(&url, allow).map_err(|why| bad(why.to_string()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Get)
            .with_redirect(RequestRedirect::Manual);
        let req = Request::new_with_init(&url, &init).map_err(|e| bad(e.to_string()))?;
        let resp = Fetch::Request(req)
            .send()
            .await
            .map_err(|e| bad(format!("could not be fetched: {e}")))?;
        let status = resp.status_code();
        if (300..400).contains(&status) {
            let location = resp
                .headers()
                .get("location")
                .ok()
                .flatten()
                .ok_or_else(|| bad(format!("redirected (HTTP {status}) without a location")))?;
            url = Url::parse(&url)
                .and_then(|base| base.join(&location))
                .map_err(|e| bad(format!("redirected to a bad URL: {e}")))?
                .to_string();
            continue;
        }
        if !(200..300).contains(&status) {
            return Err(bad(format!("could not be fetched (HTTP {status})")));
        }
        let mime = resp.headers().get("content-type").ok().flatten().map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        let out = super::upstream::read_all(&resp, max_bytes)
            .await
            .map_err(|e| match e {
                Capped::TooLarge => bad(format!(
                    "media is larger than the {max_bytes} bytes left for this request's media"
                )),
                Capped::Failed(e) => bad(format!("could not be read: {e}")),
            })?;
        return Ok((mime, out));
    }
    Err(bad(format!("redirected more than {MAX_REDIRECTS} times")))
}

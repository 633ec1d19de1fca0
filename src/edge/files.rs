//! The `file-parser` plugin at the edge (README "Plugins"): a request whose PDFs are
//! read here ([`file_parser::parses`]) has each one replaced by its text before it is
//! routed, inline PDFs from their data URLs, PDF URLs fetched by the media fetcher's
//! rules (public hosts, redirects checked, `MEDIA_MAX_BYTES` and
//! `MEDIA_FETCH_TIMEOUT_MS`); what comes back is the reply's `file` annotations.

use std::pin::pin;
use std::rc::Rc;

use futures_util::future::{select, Either};
use serde_json::Value;

use super::config;
use super::media::{self, Egress, Refused};
use super::ocr::Pending;
use crate::api::ChatRequest;
use crate::catalog::Catalog;
use crate::error::Error;
use crate::providers::file_parser::{self, PdfPart};
use crate::providers::pdf::MAX_PDF_BYTES;
use crate::settings::Settings;

/// The request's PDFs read to text where they are to be (else nothing changes): the
/// annotations for its reply, and those the OCR reads once the request is admitted
/// (`mistral-ocr`: [`super::ocr::prepare`]).
pub async fn parse(
    env: &worker::Env,
    cfg: &Settings,
    cat: &Catalog,
    chat: &mut ChatRequest,
) -> Result<(Vec<Value>, Option<Rc<Pending>>), Error> {
    if file_parser::pdf_parts(chat).is_empty() || !file_parser::parses(chat, cat)? {
        return Ok((Vec::new(), None));
    }
    if let Some(at) = file_parser::ocr_plugin(chat) {
        return super::ocr::prepare(env, cfg, chat, at).await;
    }
    let mut inline = file_parser::parse_inline(chat)?;
    if inline.remote.is_empty() {
        return Ok((inline.annotations, None));
    }
    let egress = Egress::of(cfg, env);
    let mut budget = cfg.media_max_bytes;
    for part in &inline.remote {
        let file_parser::Bytes::Url(url) = &part.bytes else {
            continue;
        };
        let bytes = fetch_within(url, part, cfg, &egress, budget).await?;
        budget = budget.saturating_sub(bytes.len());
        let parsed = file_parser::read(part, &bytes, &inline.known)?;
        file_parser::replace(chat, part, &parsed);
        inline.annotations.push(file_parser::annotation(&parsed));
    }
    Ok((inline.annotations, None))
}

/// A PDF URL's bytes (at most `budget`, the media bytes left, and the PDF cap)
/// within `MEDIA_FETCH_TIMEOUT_MS`, or a 400 naming the part.
pub(super) async fn fetch_within(
    url: &str,
    part: &PdfPart,
    cfg: &Settings,
    egress: &Egress,
    budget: usize,
) -> Result<Vec<u8>, Error> {
    let timeout_ms = cfg.media_fetch_timeout_ms;
    let cap = budget.min(MAX_PDF_BYTES);
    let fetch = pin!(fetch(url, part, cfg, egress, cap));
    match select(fetch, pin!(config::sleep(timeout_ms))).await {
        Either::Left((got, _)) => got,
        Either::Right(_) => Err(Error::bad_request(format!(
            "{}: the file could not be fetched within {timeout_ms} ms",
            part.path()
        ))),
    }
}

/// A PDF URL's bytes (at most `cap`), or a 400 naming the part.
async fn fetch(
    url: &str,
    part: &PdfPart,
    cfg: &Settings,
    egress: &Egress,
    cap: usize,
) -> Result<Vec<u8>, Error> {
    let bad = |why: String| Error::bad_request(format!("{}: {why}", part.path()));
    match media::get(url, &cfg.media_fetch_allow_hosts, egress, cap, &[], &|_| {
        Ok(())
    })
    .await
    {
        Ok(got) => Ok(got.bytes.to_vec()),
        Err(Refused::TooLarge) => Err(bad(format!(
            "the file is larger than the {cap} bytes left for this request's media"
        ))),
        Err(Refused::Url(why) | Refused::Failed(why)) => Err(bad(why)),
    }
}

//! The `file-parser` plugin's `mistral-ocr` engine at the edge: each PDF of the
//! request (inline, or fetched by the media fetcher's rules as `pdf-text` fetches it)
//! sent to Mistral's OCR API (`providers::ocr`) with `MISTRAL_API_KEY`, at
//! `MISTRAL_BASE_URL` where set (tests); its pages' Markdown takes the file's place
//! as `pdf-text`'s text does, with the same `file` annotation (one sent back skips the
//! OCR). The pages read are billed with the generation at `MISTRAL_OCR_PAGE_PICOS`
//! (default $1 per 1,000 pages), held in its reservation and shown as `usage.ocr_pages`.

use serde_json::Value;

use super::media::Egress;
use super::{config, files, upstream};
use crate::api::ChatRequest;
use crate::error::Error;
use crate::providers::file_parser::{self, Bytes, Parsed};
use crate::providers::ocr;
use crate::settings::Settings;
use crate::usage::Ocr;

/// The most bytes of an OCR reply that are read.
const MAX_OCR_BYTES: usize = 16 << 20;

/// The request's PDFs read by OCR and replaced by their text: the reply's annotations.
/// `at` is the file parser's index in `plugins`, for the 400 of a gateway without
/// the key.
pub async fn parse(
    env: &worker::Env,
    cfg: &Settings,
    chat: &mut ChatRequest,
    at: usize,
) -> Result<Vec<Value>, Error> {
    file_parser::ocr_allowed(chat, at)?;
    let key = config::string(env, "MISTRAL_API_KEY").ok_or_else(|| {
        Error::bad_request(format!(
            "plugins[{at}].pdf.engine: mistral-ocr is not configured on this gateway (secret MISTRAL_API_KEY is not set); use pdf-text or native"
        ))
    })?;
    let base = config::string(env, "MISTRAL_BASE_URL")
        .unwrap_or_else(|| ocr::DEFAULT_BASE_URL.to_string());
    let price = config::string(env, "MISTRAL_OCR_PAGE_PICOS")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(ocr::PAGE_PICOS);
    let known = file_parser::take_sent_back(chat);
    let egress = Egress::of(cfg, env);
    let mut budget = cfg.media_max_bytes;
    let (mut annotations, mut pages) = (Vec::new(), 0u64);
    for part in file_parser::pdf_parts(chat) {
        let bytes = match &part.bytes {
            Bytes::Base64(b) => file_parser::decode(&part, b)?,
            Bytes::Url(u) => {
                let got = files::fetch_within(u, &part, cfg, &egress, budget).await?;
                budget = budget.saturating_sub(got.len());
                got
            }
        };
        file_parser::check_pdf(&part, &bytes)?;
        let hash = file_parser::hash(&bytes);
        let text = match known.get(&hash) {
            Some(t) => t.clone(),
            None => {
                let read = run(&base, &key, &bytes, cfg.upstream_reply_timeout_ms).await?;
                pages = pages.saturating_add(read.pages);
                read.text
            }
        };
        let parsed = Parsed {
            hash,
            name: part.name.clone(),
            text,
        };
        file_parser::replace(chat, &part, &parsed);
        annotations.push(file_parser::annotation(&parsed));
    }
    chat.ocr = Ocr {
        pages,
        picos: pages.saturating_mul(price),
    };
    Ok(annotations)
}

/// One PDF through Mistral's OCR.
async fn run(base: &str, key: &str, pdf: &[u8], timeout_ms: u64) -> Result<ocr::Read, Error> {
    let up: upstream::Outgoing = ocr::build(base, key, pdf).into();
    let (mut resp, mut inflight) = upstream::send(&up, "mistral", timeout_ms).await?;
    if !(200..300).contains(&resp.status_code()) {
        return Err(upstream::failure(&mut resp, "mistral", timeout_ms).await);
    }
    let body = upstream::body(&mut resp, "mistral", timeout_ms, MAX_OCR_BYTES).await?;
    inflight.completed();
    ocr::parse(&body)
}

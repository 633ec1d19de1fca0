//! The `file-parser` plugin's `mistral-ocr` engine at the edge: each PDF of the
//! request (inline, or fetched by the media fetcher's rules as `pdf-text` fetches it)
//! sent to Mistral's OCR API (`providers::ocr`) with `MISTRAL_API_KEY`, at
//! `MISTRAL_BASE_URL` where set (tests); its pages' Markdown takes the file's place
//! as `pdf-text`'s text does, with the same `file` annotation (one sent back skips the
//! OCR). The pages read are billed with the generation at `MISTRAL_OCR_PAGE_PICOS`
//! (default $1 per 1,000 pages) and shown as `usage.ocr_pages`.
//!
//! Held before Mistral is called: [`prepare`] (before routing) reads and checks the
//! PDFs, counts their pages (`ocr::worst_pages`) and puts a placeholder in each one's
//! place, so that the model call's reservation holds the pages' worst case and their
//! text at the whole context; [`complete`] reads them once the request is admitted.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

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

/// A request's PDFs for the OCR to read once it is admitted, and, once read, their
/// texts (a server-tool loop's later model calls reuse them).
pub struct Pending {
    base: String,
    key: String,
    price: u64,
    timeout_ms: u64,
    /// Each PDF part in the request's order: its hash, name and placeholder (none
    /// when its text was sent back and is in place already).
    parts: Vec<(String, String, Option<String>)>,
    /// The PDFs to read, each once: hash and bytes.
    unread: Vec<(String, Vec<u8>)>,
    /// The texts by hash: those sent back, then those read.
    texts: RefCell<HashMap<String, String>>,
    read: Cell<bool>,
}

/// The request's PDFs made ready for the OCR (a 400 for one that is not a PDF or
/// cannot be fetched, before anything is reserved): those sent back replaced by their
/// text, the others by placeholders, with `chat.ocr` their worst case. The reply's
/// annotations when no PDF is left to read; else what [`complete`] reads.
pub async fn prepare(
    env: &worker::Env,
    cfg: &Settings,
    chat: &mut ChatRequest,
    at: usize,
) -> Result<(Vec<Value>, Option<Rc<Pending>>), Error> {
    file_parser::ocr_allowed(chat, at)?;
    let key = config::string(env, "MISTRAL_API_KEY").ok_or_else(|| {
        Error::bad_request(format!(
            "plugins[{at}].pdf.engine: mistral-ocr is not configured on this gateway (secret MISTRAL_API_KEY is not set); use pdf-text or native"
        ))
    })?;
    let mut p = Pending {
        base: config::string(env, "MISTRAL_BASE_URL")
            .unwrap_or_else(|| ocr::DEFAULT_BASE_URL.to_string()),
        key,
        price: config::string(env, "MISTRAL_OCR_PAGE_PICOS")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(ocr::PAGE_PICOS),
        timeout_ms: cfg.upstream_reply_timeout_ms,
        parts: Vec::new(),
        unread: Vec::new(),
        texts: RefCell::new(file_parser::take_sent_back(chat)),
        read: Cell::new(false),
    };
    let egress = Egress::of(cfg, env);
    let mut budget = cfg.media_max_bytes;
    let nonce = (worker::js_sys::Math::random() * 2f64.powi(53)) as u64;
    let mut pages = 0u64;
    for (n, part) in file_parser::pdf_parts(chat).into_iter().enumerate() {
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
        let known = p.texts.borrow().get(&hash).cloned();
        let placeholder = match known {
            Some(text) => {
                let name = part.name.clone();
                file_parser::replace(
                    chat,
                    &part,
                    &Parsed {
                        hash: hash.clone(),
                        name,
                        text,
                    },
                );
                None
            }
            None => {
                if !p.unread.iter().any(|(h, _)| *h == hash) {
                    pages = pages.saturating_add(ocr::worst_pages(&bytes));
                    p.unread.push((hash.clone(), bytes));
                }
                let held = ocr::placeholder(nonce, n);
                ocr::hold_place(chat, &part, &held);
                Some(held)
            }
        };
        p.parts.push((hash, part.name, placeholder));
    }
    if p.unread.is_empty() {
        return Ok((p.annotations(), None));
    }
    chat.ocr = Ocr {
        pages,
        picos: pages.saturating_mul(p.price),
        pending: p.unread.len() as u64,
    };
    Ok((Vec::new(), Some(Rc::new(p))))
}

/// The PDFs read by Mistral (the request admitted for their worst case) and their
/// placeholders filled: the reply's annotations. `chat.ocr` is what Mistral billed,
/// counted as each PDF is read (so that pages read before a failure are charged); a
/// second call (a server-tool loop's next model call) fills in what was read, billed
/// already.
pub async fn complete(chat: &mut ChatRequest, p: &Pending) -> Result<Vec<Value>, Error> {
    chat.ocr = Ocr::default();
    if !p.read.get() {
        for (hash, bytes) in &p.unread {
            let read = run(&p.base, &p.key, bytes, p.timeout_ms).await?;
            let pages = chat.ocr.pages.saturating_add(read.pages);
            chat.ocr.pages = pages;
            chat.ocr.picos = pages.saturating_mul(p.price);
            p.texts.borrow_mut().insert(hash.clone(), read.text);
        }
        p.read.set(true);
    }
    for (hash, name, placeholder) in &p.parts {
        if let Some(held) = placeholder {
            ocr::fill(chat, held, &p.parsed(hash, name));
        }
    }
    Ok(p.annotations())
}

impl Pending {
    /// Whether the OCR has read the PDFs.
    pub fn is_read(&self) -> bool {
        self.read.get()
    }

    fn parsed(&self, hash: &str, name: &str) -> Parsed {
        Parsed {
            hash: hash.to_string(),
            name: name.to_string(),
            text: self.texts.borrow().get(hash).cloned().unwrap_or_default(),
        }
    }

    /// The `file` annotations, in the request's order.
    fn annotations(&self) -> Vec<Value> {
        (self.parts.iter())
            .map(|(hash, name, _)| file_parser::annotation(&self.parsed(hash, name)))
            .collect()
    }
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

//! Fetching the media a family cannot fetch itself (Gemini reads only inline data,
//! YouTube and its own uploads), to send it inline: only http(s) to public hosts
//! (redirects checked hop by hop), within a size budget and a time limit. A URL that
//! cannot be fetched is the caller's 400, naming its field.

use std::cell::Cell;
use std::collections::HashMap;
use std::pin::pin;

use futures_util::future::{select, Either};
use worker::{js_sys, Fetch, Method, Request, RequestInit, RequestRedirect, Response, Url};

use super::budget::{self, Hold};
use super::config;
use super::upstream::{Capped, Outgoing};
use crate::api::ChatRequest;
use crate::error::Error;
use crate::providers::media::{self, Piece, Remote};
use crate::providers::{Target, UpstreamRequest};
use crate::settings::Settings;

const MAX_REDIRECTS: usize = 3;

/// What one request holds of the isolate's media budget, given back when it is dropped
/// (with the inlined request, once the upstream call is over).
pub type MediaHold = Hold;

/// A request with its media inlined, and what it holds of the isolate's budget. The
/// media stay in JavaScript, as fetched: `chat` has a marker in place of each one's
/// base64 ([`media::marker`]), and [`Inlined::outgoing`] writes the upstream body
/// there, the base64 spliced in a chunk at a time. So the worker's memory never holds
/// the media or its base64 whole; JavaScript holds the media, then the body, once.
pub struct Inlined {
    pub chat: ChatRequest,
    /// Each media's marker and bytes; taken when the body is written.
    media: Cell<Vec<(String, js_sys::Uint8Array)>>,
    _hold: MediaHold,
}

impl Inlined {
    /// `up` (built from `chat`) as it goes out: its body written in JavaScript, each
    /// marker replaced by its media's base64.
    pub fn outgoing(&self, mut up: UpstreamRequest) -> Result<Outgoing, Error> {
        let media = self.media.take();
        let markers: Vec<String> = media.iter().map(|(m, _)| m.clone()).collect();
        let pieces = media::pieces(&up.body, &markers);
        let len_of = |p: &Piece| match p {
            Piece::Built(r) => r.len(),
            Piece::Media(n) => media
                .get(*n)
                .map_or(0, |(_, a)| media::base64_len(a.length() as usize)),
        };
        let total = pieces
            .iter()
            .map(len_of)
            .fold(0usize, usize::saturating_add);
        let total = u32::try_from(total)
            .map_err(|_| Error::Internal("an upstream body past 4 GiB".into()))?;
        let out = js_sys::Uint8Array::new_with_length(total);
        let mut at = 0u32;
        let mut put = |bytes: &[u8]| {
            let end = at.saturating_add(bytes.len() as u32);
            out.subarray(at, end).copy_from(bytes);
            at = end;
        };
        for p in &pieces {
            match p {
                Piece::Built(r) => put(up.body.get(r.clone()).unwrap_or_default()),
                Piece::Media(n) => {
                    let Some((_, src)) = media.get(*n) else {
                        continue;
                    };
                    let read = |from: usize, buf: &mut [u8]| {
                        let from = from as u32;
                        src.subarray(from, from.saturating_add(buf.len() as u32))
                            .copy_to(buf);
                    };
                    media::write_base64(src.length() as usize, read, &mut put);
                }
            }
        }
        up.body = Vec::new();
        Ok(Outgoing {
            up,
            body: Some(out),
        })
    }
}

/// `chat` with its remote media inlined, when `target`'s family needs that and there
/// is any; `None` when the request goes as it is.
pub async fn inline_for(
    cfg: &Settings,
    env: &worker::Env,
    target: &Target<'_>,
    chat: &ChatRequest,
) -> Result<Option<Inlined>, Error> {
    let remote = crate::providers::family(target.provider.api).remote_media(chat);
    if remote.is_empty() {
        return Ok(None);
    }
    let allow = &cfg.media_fetch_allow_hosts;
    let egress = Egress::of(cfg, env);
    let mut budget = cfg.media_max_bytes;
    let timeout_ms = cfg.media_fetch_timeout_ms;
    // What an isolate holds of a request's media is up to about 3.7 times its size, in
    // JavaScript (the bytes, the body with their base64, `fetch`'s copy of it; README
    // "Validation and limits"), and an isolate has 128 MB: the isolate's budget keeps
    // concurrent media in it.
    let isolate_limit = cfg.isolate_media_bytes;
    let nonce = u64::from_le_bytes(config::secure_random::<8>()?);
    let mut hold = Hold::of(&budget::MEDIA);
    let busy = || budget::busy("fetching media of", isolate_limit);
    let work = async {
        let mut markers = HashMap::new();
        let mut bytes = Vec::new();
        for r in &remote {
            // What this fetch may read is taken before it reads, so that requests that
            // fetch at once never hold more than the isolate's budget together.
            let want = u64::try_from(budget).unwrap_or(u64::MAX);
            let room = hold.take_room(want, isolate_limit);
            if room == 0 {
                return Err(busy());
            }
            let cap = usize::try_from(room).unwrap_or(usize::MAX);
            let (mime, got) = match fetch_one(r, allow, &egress, cap).await {
                Ok(got) => got,
                // Too large for what the isolate had left, not for the request's own limit.
                Err((_, true)) if room < want => return Err(busy()),
                Err((e, _)) => return Err(e),
            };
            let len = got.length() as usize;
            hold.give(room.saturating_sub(len as u64));
            budget = budget.saturating_sub(len);
            let mime = mime.filter(|m| usable(m)).unwrap_or_else(|| r.mime.clone());
            let marker = media::marker(nonce, bytes.len());
            markers.insert(r.url.clone(), (mime, marker.clone()));
            bytes.push((marker, got));
        }
        Ok::<_, Error>((markers, bytes))
    };
    let timeout = pin!(config::sleep(timeout_ms));
    let (markers, bytes) = match select(pin!(work), timeout).await {
        Either::Left((r, _)) => r?,
        Either::Right(_) => {
            let first = remote.first().map_or("messages", |r| r.path.as_str());
            return Err(Error::bad_request(format!(
                "{first}: media could not be fetched within {timeout_ms} ms"
            )));
        }
    };
    Ok(Some(Inlined {
        chat: media::inline(chat, &markers),
        media: Cell::new(bytes),
        _hold: hold,
    }))
}

/// A served media type worth keeping (servers often say `application/octet-stream`).
fn usable(mime: &str) -> bool {
    !mime.is_empty() && mime != "application/octet-stream" && mime != "binary/octet-stream"
}

/// The service binding media is fetched through where bound: a network that reaches
/// public addresses only (`make dev` and the test harness bind one; see README
/// "Media"). Deployed, nothing is bound: Cloudflare's egress stops private addresses.
const MEDIA_FETCHER: &str = "MEDIA_FETCHER";

/// Where media fetches (and the server tools' fetches) go out: the checks on a URL
/// stop every address it spells, but only the network knows what a host name
/// resolves to.
pub struct Egress {
    fetcher: Option<worker::Fetcher>,
    names_need_fetcher: bool,
}

impl Egress {
    pub fn of(cfg: &Settings, env: &worker::Env) -> Egress {
        Egress {
            fetcher: env.service(MEDIA_FETCHER).ok(),
            names_need_fetcher: cfg.media_names_need_fetcher,
        }
    }

    /// Fetches `req` (for `url`): a host name through the fetcher where one is bound
    /// (listed or not: its network decides), an address (checked already) directly. A
    /// name not listed is refused where only a fetcher could stop what it resolves to
    /// and none is bound.
    pub async fn fetch(
        &self,
        req: Request,
        url: &str,
        allow: &[String],
    ) -> Result<Response, String> {
        let sent = match (&self.fetcher, media::named_host(url, allow)) {
            (Some(f), Some(_)) => f.fetch_request(req).await,
            (None, Some(false)) if self.names_need_fetcher => {
                return Err(UNCHECKED_NAME.into());
            }
            _ => Fetch::Request(req).send().await,
        };
        sent.map_err(|e| e.to_string())
    }
}

/// Why a host name is refused where nothing can check what it resolves to.
const UNCHECKED_NAME: &str = "this gateway runs where a host name may resolve to a private address: list the host in MEDIA_FETCH_ALLOW_HOSTS, or bind MEDIA_FETCHER";

/// One media URL's bytes (at most `max_bytes`) and served media type, by [`get`]'s
/// rules. An error says whether it was the size (`true`).
async fn fetch_one(
    r: &Remote,
    allow: &[String],
    egress: &Egress,
    max_bytes: usize,
) -> Result<(Option<String>, js_sys::Uint8Array), (Error, bool)> {
    let bad = |why: String| Error::bad_request(format!("{}: {why}", r.path));
    match get(&r.url, allow, egress, max_bytes, &[], &|_| Ok(())).await {
        Ok(got) => Ok((got.mime, got.bytes)),
        Err(Refused::TooLarge) => Err((
            bad(format!(
                "media is larger than the {max_bytes} bytes left for this request's media"
            )),
            true,
        )),
        Err(Refused::Url(why) | Refused::Failed(why)) => Err((bad(why), false)),
    }
}

/// What [`get`] fetched: the URL it ended at, its media type, its bytes.
pub struct Got {
    pub url: String,
    pub mime: Option<String>,
    pub bytes: js_sys::Uint8Array,
}

/// Why [`get`] fetched nothing: a URL the rules refuse, a fetch that failed (both
/// saying why, without the URL), or a body over the cap.
pub enum Refused {
    Url(String),
    Failed(String),
    TooLarge,
}

/// `url`'s body (at most `max_bytes`) by the media fetcher's rules: http(s) to public
/// hosts or listed ones, each of at most [`MAX_REDIRECTS`] redirects checked like the
/// first and by `hop` (a tool's own domain rules). `headers` go with each request.
pub async fn get(
    url: &str,
    allow: &[String],
    egress: &Egress,
    max_bytes: usize,
    headers: &[(&str, &str)],
    hop: &dyn Fn(&str) -> Result<(), String>,
) -> Result<Got, Refused> {
    let failed = |why: String| Refused::Failed(why);
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        // What is fetched is the URL as checked (parsed and re-serialised).
        url = media::fetchable(&url, allow).map_err(|why| Refused::Url(why.to_string()))?;
        hop(&url).map_err(Refused::Url)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Get)
            .with_redirect(RequestRedirect::Manual);
        if !headers.is_empty() {
            let h = worker::Headers::new();
            for (k, v) in headers {
                h.set(k, v).map_err(|e| failed(e.to_string()))?;
            }
            init.with_headers(h);
        }
        let req = Request::new_with_init(&url, &init).map_err(|e| failed(e.to_string()))?;
        let resp = egress
            .fetch(req, &url, allow)
            .await
            .map_err(|why| failed(format!("could not be fetched: {why}")))?;
        let status = resp.status_code();
        if (300..400).contains(&status) {
            let location = resp
                .headers()
                .get("location")
                .ok()
                .flatten()
                .ok_or_else(|| failed(format!("redirected (HTTP {status}) without a location")))?;
            url = Url::parse(&url)
                .and_then(|base| base.join(&location))
                .map_err(|e| failed(format!("redirected to a bad URL: {e}")))?
                .to_string();
            continue;
        }
        if !(200..300).contains(&status) {
            return Err(failed(format!("could not be fetched (HTTP {status})")));
        }
        let mime = resp.headers().get("content-type").ok().flatten().map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        let bytes = super::upstream::read_all_js(&resp, max_bytes)
            .await
            .map_err(|e| match e {
                Capped::TooLarge => Refused::TooLarge,
                Capped::Failed(e) => failed(format!("could not be read: {e}")),
            })?;
        return Ok(Got { url, mime, bytes });
    }
    Err(failed(format!(
        "redirected more than {MAX_REDIRECTS} times"
    )))
}

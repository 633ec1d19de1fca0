//! The server-tool loop's I/O: each model call is one inner request through the one
//! pipeline ([`super::serve_parsed`]: planned, admitted with its own hold, served,
//! settled, as `gen-...-N`), not streamed; each server call the reply makes runs in
//! `edge::tools`; the loop's bounds and the client's reply are `api::tool_loop`'s. A
//! client that asked for a stream gets its headers at once, the surface's keep-alive
//! while the loop runs, and the answer streamed once the loop is done.

mod live;

use worker::Response;

use super::{serve_parsed, Call, Incoming, Parsed, Prepared};
use crate::api::server_tools::ToolOutput;
use crate::api::surface::{self, Surface};
use crate::api::tool_loop::{self, Loop, Next};
use crate::api::ChatCompletion;
use crate::edge::request::ClientRequest;
use crate::edge::tools::{self, ToolEnv};
use crate::edge::{config, http, upstream};
use crate::error::Error;

/// The most bytes of an inner call's reply that are read back.
const MAX_INNER_REPLY: usize = 8 * 1024 * 1024;

/// Runs the loop for `incoming` and answers the client in its surface.
pub(super) async fn run(
    req: &ClientRequest,
    call: &Call<'_>,
    incoming: &mut Incoming,
) -> Result<Response, Error> {
    let chat = &mut incoming.request.chat;
    chat.messages = tool_loop::replay(std::mem::take(&mut chat.messages));
    let tools_of = std::mem::take(&mut chat.server_tools);
    let zdr = chat.provider.as_ref().and_then(|p| p.zdr).unwrap_or(false);
    let mut lp = Loop::new(tools_of, chat.tool_limits);
    let base = incoming.request.chat.clone();
    let env = ToolEnv {
        env: call.env,
        settings: call.cfg,
        now_secs: config::now_secs(),
        zdr,
        timeout_ms: call.cfg.upstream_timeout_ms,
    };
    for t in &lp.tools {
        let (found, notes) = tools::functions(t, &env).await?;
        lp.functions.extend(found);
        lp.tool_annotations.extend(notes);
    }
    if base.is_stream() {
        return live::streamed(req, call, incoming, (base, lp), &env);
    }
    let steps = Steps {
        req,
        call,
        incoming,
        base: &base,
        env: &env,
    };
    let answer = steps.answer(&mut lp).await?;
    match answer {
        Err(resp) => Ok(resp),
        Ok(c) => {
            let id = c.id.clone();
            let turn = lp.turn(&c);
            let resp = http::reply(&incoming.request.reply_turn(c, &turn))?;
            // The answer's generation: the loop's last model call.
            http::set(resp.headers(), "X-Generation-Id", &id);
            Ok(resp)
        }
    }
}

/// What every step of one loop shares.
struct Steps<'s> {
    req: &'s ClientRequest,
    call: &'s Call<'s>,
    incoming: &'s Incoming,
    base: &'s crate::api::ChatRequest,
    env: &'s ToolEnv<'s>,
}

/// The answer, or a response that ends the loop as it is (an inner call refused: a
/// key's limit reached, credits spent, no endpoint).
type Answer = Result<ChatCompletion, Response>;

impl Steps<'_> {
    /// Model calls and server calls in turn until the model answers (or calls the
    /// client's functions).
    async fn answer(&self, lp: &mut Loop) -> Result<Answer, Error> {
        loop {
            // The searches since the last model call are billed with this one.
            let searches = lp.unbilled_searches();
            let completion = match self.model_call(lp, searches).await? {
                Ok(c) => c,
                Err(resp) => return Ok(Err(resp)),
            };
            let (calls, client) = match lp.read(&completion) {
                Next::Answer => return Ok(Ok(lp.finish(completion, false))),
                Next::Run { calls, client } => (calls, client),
            };
            let mut results = Vec::with_capacity(calls.len());
            for (i, c) in &calls {
                results.push(match (lp.admit(*i), lp.tools.get(*i)) {
                    (Ok(()), Some(tool)) => tool_result(tools::run(c, tool, self.env).await)?,
                    (Err(why), _) => Err(why),
                    (Ok(()), None) => Err("error: unknown tool".into()),
                });
            }
            lp.record(&calls, results);
            if client {
                return Ok(Ok(lp.finish(completion, true)));
            }
        }
    }

    /// One inner model call: the loop's request as a chat request of its own.
    async fn model_call(&self, lp: &Loop, searches: u64) -> Result<Answer, Error> {
        let mut chat = lp.request(self.base);
        chat.searches_run = searches;
        // The OCR is billed with the first model call only, which reads the PDFs once
        // admitted; the later ones have the texts in place before they are admitted.
        if lp.steps > 0 {
            chat.ocr = Default::default();
        }
        let ocr = match self.incoming.ocr.clone() {
            Some(p) if p.is_read() => {
                crate::edge::ocr::complete(&mut chat, &p).await?;
                None
            }
            other => other,
        };
        let inner = Incoming {
            request: surface::Incoming {
                surface: Surface::Chat,
                chat,
                echo: Default::default(),
                native: None,
                anthropic_only: None,
            },
            client_headers: self.incoming.client_headers.clone(),
            failovers: 0,
            trace: self.incoming.trace.clone(),
            file_annotations: Vec::new(),
            ocr,
            preset: None,
        };
        let n = lp.steps.saturating_add(1);
        let call = Call {
            gen_id: format!("{}-{n}", self.call.gen_id),
            account: self.call.account.clone(),
            caller: self.call.caller.clone(),
            ..*self.call
        };
        let mut resp = serve_parsed(
            self.req,
            &call,
            Parsed::Generate(inner),
            Prepared::inner(call.env).await?,
        )
        .await?;
        if resp.status_code() != 200 {
            return Ok(Err(resp));
        }
        let body = upstream::body(
            &mut resp,
            "modelmux",
            call.cfg.upstream_reply_timeout_ms,
            MAX_INNER_REPLY,
        )
        .await?;
        let c: ChatCompletion = serde_json::from_slice(&body)
            .map_err(|e| Error::Internal(format!("an inner reply that does not read: {e}")))?;
        Ok(Ok(c))
    }
}

/// A server call's outcome as the model reads it; an error only the operator can fix
/// (an engine not configured) ends the request.
fn tool_result(r: Result<ToolOutput, Error>) -> Result<Result<ToolOutput, String>, Error> {
    match r {
        Ok(out) => Ok(Ok(out)),
        Err(e @ (Error::NoProvider(_) | Error::Misconfigured(_) | Error::Internal(_))) => Err(e),
        Err(e) => Ok(Err(format!("error: {}", e.public_message()))),
    }
}

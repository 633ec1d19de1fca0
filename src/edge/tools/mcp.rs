//! Remote MCP servers over Streamable HTTP: `tools/list` for the functions offered,
//! `tools/call` for each call, each in a session of its own (`initialize`,
//! `notifications/initialized`, the request, then the session closed with `DELETE`),
//! the messages and their reading [`crate::providers::mcp`]'s. The server is reached
//! as media are ([`super::super::media::Egress`]: public hosts, `https` unless the
//! operator lists the host), the request's `headers` sent with every message and
//! never logged or echoed; each step within [`TIMEOUT_MS`] and
//! [`mcp::MAX_REPLY_BYTES`].

use std::pin::pin;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use serde_json::value::RawValue;
use worker::{Headers, Method, Request, RequestInit, RequestRedirect};

use super::{Listed, ToolEnv};
use crate::api::server_tools::{mcp_tool_of, McpServer, ServerCall, ServerToolUse, ToolOutput};
use crate::edge::config;
use crate::edge::media::Egress;
use crate::error::Error;
use crate::providers::mcp::{self, Awaiting, CallResult, McpError, Post, Session, ToolsPage};

/// The most milliseconds one listing or one call takes, all its messages together.
pub const TIMEOUT_MS: u64 = 30_000;

/// The functions the model is offered for `server`: its tools (those `allowed_tools`
/// names), as `mcp__{label}__{tool}`. A server that cannot list them fails the
/// request (502), naming the server and never its headers.
pub async fn functions(server: &McpServer, ctx: &ToolEnv<'_>) -> Result<Listed, Error> {
    // A server the gateway may not reach is the caller's mistake, said before any call.
    mcp::server_url(&server.server_url, &ctx.settings.media_fetch_allow_hosts).map_err(|why| {
        Error::bad_request(format!("tools: MCP server {}: {why}", server.server_label))
    })?;
    let tools = within(ctx, server, list(server, ctx))
        .await
        .map_err(|e| failed(server, "list its tools", &e))?;
    let allowed = server.allowed_tools.as_deref();
    let label = &server.server_label;
    let notes = tools
        .iter()
        .filter_map(|t| Some((mcp::function_name(label, &t.name)?, t.annotations.clone()?)))
        .collect();
    Ok((mcp::functions(label, allowed, tools), notes))
}

/// Runs a model's call of one of `server`'s tools. What the server answered (a
/// result, its error, or that it could not be reached) is the model's to read.
pub async fn run(
    call: &ServerCall,
    server: &McpServer,
    ctx: &ToolEnv<'_>,
) -> Result<ToolOutput, Error> {
    let usage = ServerToolUse {
        mcp_tool_calls: 1,
        ..ServerToolUse::default()
    };
    let (content, is_error) = match prepare(call, server) {
        Err(why) => (format!("Error: {why}"), true),
        Ok((tool, args)) => match within(ctx, server, call_tool(server, ctx, tool, &args)).await {
            Ok(r) if r.is_error => (format!("Error: {}", r.text()), true),
            Ok(r) => (r.text(), false),
            Err(e) => (format!("Error: {e}"), true),
        },
    };
    Ok(ToolOutput {
        content,
        usage,
        is_error,
        ..ToolOutput::default()
    })
}

/// The tool a call names and its arguments, or why it cannot be run.
fn prepare<'a>(
    call: &'a ServerCall,
    server: &McpServer,
) -> Result<(&'a str, Box<RawValue>), String> {
    let tool = mcp_tool_of(&call.name, &server.server_label)
        .ok_or_else(|| format!("{} is not a tool of {}", call.name, server.server_label))?;
    if !mcp::allowed(server.allowed_tools.as_deref(), tool) {
        return Err(format!(
            "{tool} is not in allowed_tools of {}",
            server.server_label
        ));
    }
    let args = if call.arguments.trim().is_empty() {
        "{}"
    } else {
        call.arguments.as_str()
    };
    let args: Box<RawValue> =
        serde_json::from_str(args).map_err(|e| format!("the arguments are not JSON: {e}"))?;
    if !args.get().trim_start().starts_with('{') {
        return Err("the arguments must be a JSON object".into());
    }
    Ok((tool, args))
}

/// The request's failure of a server that could not `what`.
fn failed(server: &McpServer, what: &str, e: &McpError) -> Error {
    Error::upstream(
        &format!("mcp:{}", server.server_label),
        format!("MCP server {} could not {what}: {e}", server.server_label),
    )
}

/// `work` within the time a step has.
async fn within<T>(
    ctx: &ToolEnv<'_>,
    server: &McpServer,
    work: impl std::future::Future<Output = Result<T, McpError>>,
) -> Result<T, McpError> {
    let ms = ctx.timeout_ms.min(TIMEOUT_MS);
    match select(pin!(work), pin!(config::sleep(ms))).await {
        Either::Left((r, _)) => r,
        Either::Right(_) => Err(McpError::Protocol(format!(
            "{} did not answer within {ms} ms",
            server.server_label
        ))),
    }
}

async fn list(server: &McpServer, ctx: &ToolEnv<'_>) -> Result<Vec<mcp::Tool>, McpError> {
    let mut c = Conn::open(server, ctx).await?;
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..mcp::MAX_LIST_PAGES {
        let post = c.session.list_tools(cursor.as_deref());
        let page: ToolsPage = c.request(&post).await?;
        tools.extend(page.tools);
        cursor = page.next_cursor;
        if cursor.is_none() || tools.len() >= mcp::MAX_TOOLS {
            break;
        }
    }
    c.close().await;
    Ok(tools)
}

async fn call_tool(
    server: &McpServer,
    ctx: &ToolEnv<'_>,
    tool: &str,
    args: &RawValue,
) -> Result<CallResult, McpError> {
    let mut c = Conn::open(server, ctx).await?;
    let post = c.session.call_tool(tool, args);
    let r = c.request(&post).await;
    c.close().await;
    r
}

/// A session with a server, and how to reach it.
struct Conn<'a> {
    server: &'a McpServer,
    url: String,
    allow: &'a [String],
    egress: Egress,
    session: Session,
}

impl<'a> Conn<'a> {
    /// A session, initialized.
    async fn open(server: &'a McpServer, ctx: &'a ToolEnv<'_>) -> Result<Conn<'a>, McpError> {
        let allow = ctx.settings.media_fetch_allow_hosts.as_slice();
        let url = mcp::server_url(&server.server_url, allow).map_err(McpError::Protocol)?;
        let mut c = Conn {
            server,
            url,
            allow,
            egress: Egress::of(ctx.settings, ctx.env),
            session: Session::new(),
        };
        let init = c.session.initialize();
        let (resp, mut a) = c.send(&init).await?;
        let (found, sid) = read(resp, &mut a).await?;
        let note = c.session.initialized(found, sid.as_deref())?;
        let (resp, _) = c.send(&note).await?;
        mcp::accepted(&mcp::Reply {
            status: resp.status_code(),
            content_type: None,
            session_id: None,
            body: b"",
        })?;
        Ok(c)
    }

    async fn request<R: serde::de::DeserializeOwned>(
        &mut self,
        post: &Post,
    ) -> Result<R, McpError> {
        let (resp, mut a) = self.send(post).await?;
        read(resp, &mut a).await?.0.result()
    }

    /// Posts `post`; the response and how to read it (`None` for a notification).
    async fn send(&self, post: &Post) -> Result<(worker::Response, Option<Awaiting>), McpError> {
        let headers = Headers::new();
        for (k, v) in &self.server.headers {
            // The name only: a header's value is the caller's secret.
            headers.set(k, v).map_err(|_| {
                McpError::Protocol(format!("headers: {k:?} cannot be sent as a header"))
            })?;
        }
        for (k, v) in &post.headers {
            headers
                .set(k, v)
                .map_err(|_| McpError::Protocol(format!("header {k} cannot be set")))?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_redirect(RequestRedirect::Manual)
            .with_headers(headers)
            .with_body(Some(
                worker::js_sys::Uint8Array::from(post.body.as_slice()).into(),
            ));
        let req = Request::new_with_init(&self.url, &init)
            .map_err(|_| McpError::Protocol("server_url cannot be fetched".into()))?;
        let resp = self
            .egress
            .fetch(req, &self.url, self.allow)
            .await
            .map_err(|why| McpError::Protocol(format!("could not be reached: {why}")))?;
        let status = resp.status_code();
        let awaiting = match post.id {
            None => None,
            Some(_) => {
                let ct = resp.headers().get("content-type").ok().flatten();
                Some(Awaiting::new(post, status, ct.as_deref())?)
            }
        };
        Ok((resp, awaiting))
    }

    /// Ends the session (`DELETE`, as the spec asks of a client done with one); a
    /// server that does not allow that answers 405, which is fine.
    async fn close(self) {
        let Some(id) = self.session.id() else {
            return;
        };
        let headers = Headers::new();
        for (k, v) in &self.server.headers {
            let _ = headers.set(k, v);
        }
        let _ = headers.set("mcp-session-id", id);
        let mut init = RequestInit::new();
        init.with_method(Method::Delete)
            .with_redirect(RequestRedirect::Manual)
            .with_headers(headers);
        if let Ok(req) = Request::new_with_init(&self.url, &init) {
            let _ = self.egress.fetch(req, &self.url, self.allow).await;
        }
    }
}

/// Reads `resp` until `a` has its response: the response and the reply's
/// `Mcp-Session-Id`.
async fn read(
    mut resp: worker::Response,
    a: &mut Option<Awaiting>,
) -> Result<(mcp::Found, Option<String>), McpError> {
    let sid = resp.headers().get("mcp-session-id").ok().flatten();
    let mut a = a
        .take()
        .ok_or_else(|| McpError::Protocol("a notification has no response".into()))?;
    let mut stream = resp
        .stream()
        .map_err(|e| McpError::Protocol(format!("unreadable reply: {e}")))?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| McpError::Protocol(format!("reply cut off: {e}")))?;
        if let Some(found) = a.feed(&chunk)? {
            return Ok((found, sid));
        }
    }
    Ok((a.finish()?, sid))
}

//! Which handler a request goes to, from its method and path alone. Pure, so that it is
//! fuzzed natively: any method and path give a route or an error, never a panic.
//! Paths are matched by `strip_prefix`/`split`, never by byte offsets.

use super::count::CountSurface;
use crate::catalog::listing::percent_decode;
use crate::error::{Error, Result};

/// The longest path the router looks at; longer ones are 404 without being split.
pub const MAX_PATH_BYTES: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    pub fn parse(m: &str) -> Self {
        match m.to_ascii_uppercase().as_str() {
            "GET" | "HEAD" => Method::Get,
            "POST" => Method::Post,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

/// A route of the public API (`/api/v1/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    ChatCompletions,
    Completions,
    Responses,
    Messages,
    /// `POST /messages/count_tokens` (a Messages body) and `POST
    /// /responses/input_tokens` (a Responses body): a prompt's tokens, counted.
    Count(super::count::CountSurface),
    Embeddings,
    EmbeddingModels,
    Models,
    /// `/models/count`: how many `/models` lists.
    ModelsCount,
    /// `/models/user`: the models the calling key's account may use.
    ModelsUser,
    /// `/models/{author}/{slug}/endpoints`, with the model ID percent-decoded.
    ModelEndpoints(String),
    Providers,
    Key,
    Credits,
    Keys,
    CreateKey,
    KeyGet(String),
    KeyUpdate(String),
    KeyDelete(String),
    Generation,
    Activity,
    /// `GET /generations`: the latest generations (a modelmux extension).
    Generations,
    /// `GET /sessions`: the most recently used sessions (a modelmux extension, as are
    /// the two below).
    Sessions,
    /// `GET /sessions/{id}`, with the ID percent-decoded.
    SessionGet(String),
    /// `PATCH /sessions/{id}`: its limits.
    SessionUpdate(String),
    /// `GET /byok` (OpenRouter's BYOK API: the account's own provider keys), `POST
    /// /byok`, and `GET`/`PATCH`/`DELETE /byok/{id}`.
    Byok,
    ByokCreate,
    ByokGet(String),
    ByokUpdate(String),
    ByokDelete(String),
    /// `GET`/`PATCH /account`: the account's privacy setting (a modelmux extension).
    Privacy,
    PrivacyUpdate,
    /// The operator's API under `/admin/v1`.
    Admin(AdminRoute),
    /// `GET`/`DELETE /responses/{id}` and `GET /responses/{id}/input_items`: a stored
    /// response of the calling key's.
    StoredResponse(Method, String),
    StoredInputItems(String),
    /// `GET`/`POST /observability/destinations` and `GET`/`PATCH`/`DELETE
    /// /observability/destinations/{id}`: trace export (provisioning key).
    Destinations(Method),
    Destination(Method, String),
    /// `/presets...`: the account's presets.
    Presets(PresetRoute),
    /// The web app's page of one model, `/models/{author}/{slug}` (the static
    /// `model.html`; the page reads the ID from its path).
    ModelPage,
}

/// The presets API (`/presets`, `/presets/{slug}`, `/presets/{slug}/versions`,
/// `/presets/{slug}/chat/completions`), with the slug as sent (checked by its handler).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresetRoute {
    List,
    Create,
    Get(String),
    Update(String),
    Delete(String),
    Versions(String),
    /// A new version from a chat completions body (OpenRouter's `createPresetsChatCompletions`).
    FromChat(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRoute {
    CreateAccount,
    Account(String),
    UpdateAccount(String),
    Grant(String),
    CreateKey(String),
    Ledger(String),
    /// Every key of an account; one key (account, hash) changed or deleted.
    Keys(String),
    UpdateKey(String, String),
    DeleteKey(String, String),
}

fn not_found(path: &str) -> Error {
    Error::NotFound(format!(
        "No route for {}",
        crate::error::truncate(path, 200)
    ))
}

/// The route of `method` + `path` (without the query string). Unknown paths are 404;
/// known paths with another method are 405.
pub fn route(method: Method, path: &str) -> Result<Route> {
    if path.len() > MAX_PATH_BYTES {
        return Err(not_found(path));
    }
    if let Some(rest) = path.strip_prefix("/admin/v1") {
        return admin(method, rest, path).map(Route::Admin);
    }
    if let Some(id) = path.strip_prefix("/models/") {
        return if is_model_id(id.trim_end_matches('/')) {
            match method {
                Method::Get => Ok(Route::ModelPage),
                _ => Err(Error::MethodNotAllowed),
            }
        } else {
            Err(not_found(path))
        };
    }
    let api = path
        .strip_prefix("/api/v1")
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .ok_or_else(|| not_found(path))?;
    let api = api.trim_end_matches('/');
    let only = |m: Method, r: Route| {
        if method == m {
            Ok(r)
        } else {
            Err(Error::MethodNotAllowed)
        }
    };
    match api {
        "/chat/completions" => only(Method::Post, Route::ChatCompletions),
        "/completions" => only(Method::Post, Route::Completions),
        "/responses" => only(Method::Post, Route::Responses),
        "/messages" => only(Method::Post, Route::Messages),
        "/messages/count_tokens" => only(Method::Post, Route::Count(CountSurface::Messages)),
        "/responses/input_tokens" => only(Method::Post, Route::Count(CountSurface::Responses)),
        "/embeddings" => only(Method::Post, Route::Embeddings),
        "/embeddings/models" => only(Method::Get, Route::EmbeddingModels),
        "/models" => only(Method::Get, Route::Models),
        "/models/count" => only(Method::Get, Route::ModelsCount),
        "/models/user" => only(Method::Get, Route::ModelsUser),
        "/providers" => only(Method::Get, Route::Providers),
        "/key" => only(Method::Get, Route::Key),
        "/credits" => only(Method::Get, Route::Credits),
        "/generation" => only(Method::Get, Route::Generation),
        "/activity" => only(Method::Get, Route::Activity),
        "/generations" => only(Method::Get, Route::Generations),
        "/sessions" => only(Method::Get, Route::Sessions),
        "/account" => match method {
            Method::Get => Ok(Route::Privacy),
            Method::Patch => Ok(Route::PrivacyUpdate),
            _ => Err(Error::MethodNotAllowed),
        },
        "/observability/destinations" => match method {
            Method::Get | Method::Post => Ok(Route::Destinations(method)),
            _ => Err(Error::MethodNotAllowed),
        },
        "/presets" => match method {
            Method::Get => Ok(Route::Presets(PresetRoute::List)),
            Method::Post => Ok(Route::Presets(PresetRoute::Create)),
            _ => Err(Error::MethodNotAllowed),
        },
        "/keys" => match method {
            Method::Get => Ok(Route::Keys),
            Method::Post => Ok(Route::CreateKey),
            _ => Err(Error::MethodNotAllowed),
        },
        "/byok" => match method {
            Method::Get => Ok(Route::Byok),
            Method::Post => Ok(Route::ByokCreate),
            _ => Err(Error::MethodNotAllowed),
        },
        _ => with_parameter(method, api, path),
    }
}

impl Route {
    /// One of the BYOK routes.
    pub fn is_byok(&self) -> bool {
        matches!(
            self,
            Route::Byok
                | Route::ByokCreate
                | Route::ByokGet(_)
                | Route::ByokUpdate(_)
                | Route::ByokDelete(_)
        )
    }
}

/// The `/api/v1` routes with a parameter in their path (`api` is the path after it).
fn with_parameter(method: Method, api: &str, path: &str) -> Result<Route> {
    if let Some(id) = api
        .strip_prefix("/models/")
        .and_then(|p| p.strip_suffix("/endpoints"))
    {
        let id = percent_decode(id);
        // `{author}/{slug}`: two non-empty segments.
        let valid = id
            .split_once('/')
            .is_some_and(|(a, s)| !a.is_empty() && !s.is_empty());
        if !valid {
            return Err(not_found(path));
        }
        return match method {
            Method::Get => Ok(Route::ModelEndpoints(id)),
            _ => Err(Error::MethodNotAllowed),
        };
    }
    if let Some(id) = api.strip_prefix("/sessions/").filter(|id| !id.is_empty()) {
        // The rest of the path, decoded: a session ID may hold any character (a `+`
        // in a path is itself).
        let id = percent_decode(&id.replace('+', "%2B"));
        return match method {
            Method::Get => Ok(Route::SessionGet(id)),
            Method::Patch => Ok(Route::SessionUpdate(id)),
            _ => Err(Error::MethodNotAllowed),
        };
    }
    if let Some(id) = api.strip_prefix("/observability/destinations/") {
        if id.is_empty() || id.contains('/') {
            return Err(not_found(path));
        }
        return match method {
            Method::Get | Method::Patch | Method::Delete => {
                Ok(Route::Destination(method, id.to_string()))
            }
            _ => Err(Error::MethodNotAllowed),
        };
    }
    if let Some(rest) = api.strip_prefix("/responses/") {
        return stored_response(method, rest, path);
    }
    if let Some(rest) = api.strip_prefix("/presets/") {
        return preset_route(method, rest, path).map(Route::Presets);
    }
    if let Some(id) = api.strip_prefix("/byok/") {
        if id.is_empty() || id.contains('/') {
            return Err(not_found(path));
        }
        let id = id.to_string();
        return match method {
            Method::Get => Ok(Route::ByokGet(id)),
            Method::Patch => Ok(Route::ByokUpdate(id)),
            Method::Delete => Ok(Route::ByokDelete(id)),
            _ => Err(Error::MethodNotAllowed),
        };
    }
    if let Some(hash) = api.strip_prefix("/keys/") {
        if hash.is_empty() || hash.contains('/') {
            return Err(not_found(path));
        }
        let hash = hash.to_string();
        return match method {
            Method::Get => Ok(Route::KeyGet(hash)),
            Method::Patch => Ok(Route::KeyUpdate(hash)),
            Method::Delete => Ok(Route::KeyDelete(hash)),
            _ => Err(Error::MethodNotAllowed),
        };
    }
    Err(not_found(path))
}

/// `/responses/{id}[/input_items]` (`rest` is what follows `/responses/`).
fn stored_response(method: Method, rest: &str, path: &str) -> Result<Route> {
    let (id, items) = match rest.split_once('/') {
        Some((id, "input_items")) => (id, true),
        Some(_) => return Err(not_found(path)),
        None => (rest, false),
    };
    if !super::responses::stored::valid_id(id) {
        return Err(not_found(path));
    }
    match (method, items) {
        (Method::Get, true) => Ok(Route::StoredInputItems(id.to_string())),
        (Method::Get | Method::Delete, false) => Ok(Route::StoredResponse(method, id.to_string())),
        _ => Err(Error::MethodNotAllowed),
    }
}

/// `/presets/{slug}[/versions|/chat/completions]` (`rest` is what follows `/presets/`).
fn preset_route(method: Method, rest: &str, path: &str) -> Result<PresetRoute> {
    let (slug, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if slug.is_empty() {
        return Err(not_found(path));
    }
    let slug = slug.to_string();
    match (tail, method) {
        ("", Method::Get) => Ok(PresetRoute::Get(slug)),
        ("", Method::Patch) => Ok(PresetRoute::Update(slug)),
        ("", Method::Delete) => Ok(PresetRoute::Delete(slug)),
        ("versions", Method::Get) => Ok(PresetRoute::Versions(slug)),
        ("chat/completions", Method::Post) => Ok(PresetRoute::FromChat(slug)),
        ("" | "versions" | "chat/completions", _) => Err(Error::MethodNotAllowed),
        _ => Err(not_found(path)),
    }
}

/// `{author}/{slug}` of a catalogue model ID as a page path: two non-empty segments of
/// letters, digits and `-._:`.
fn is_model_id(id: &str) -> bool {
    let segment = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    };
    id.split_once('/')
        .is_some_and(|(a, s)| segment(a) && segment(s))
}

fn admin(method: Method, rest: &str, path: &str) -> Result<AdminRoute> {
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Err(not_found(path));
    }
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let account = |id: &str| {
        if crate::ids::is_account_id(id) {
            Ok(id.to_string())
        } else {
            Err(Error::NotFound(format!(
                "No account {}",
                crate::error::truncate(id, 64)
            )))
        }
    };
    match parts.as_slice() {
        ["accounts"] => match method {
            Method::Post => Ok(AdminRoute::CreateAccount),
            _ => Err(Error::MethodNotAllowed),
        },
        ["accounts", id] => match method {
            Method::Get => Ok(AdminRoute::Account(account(id)?)),
            Method::Patch => Ok(AdminRoute::UpdateAccount(account(id)?)),
            _ => Err(Error::MethodNotAllowed),
        },
        ["accounts", id, "credits"] => match method {
            Method::Post => Ok(AdminRoute::Grant(account(id)?)),
            _ => Err(Error::MethodNotAllowed),
        },
        ["accounts", id, "ledger"] => match method {
            Method::Get => Ok(AdminRoute::Ledger(account(id)?)),
            _ => Err(Error::MethodNotAllowed),
        },
        ["accounts", id, "keys"] => match method {
            Method::Post => Ok(AdminRoute::CreateKey(account(id)?)),
            Method::Get => Ok(AdminRoute::Keys(account(id)?)),
            _ => Err(Error::MethodNotAllowed),
        },
        ["accounts", id, "keys", hash] if !hash.is_empty() => {
            let (id, hash) = (account(id)?, hash.to_string());
            match method {
                Method::Patch => Ok(AdminRoute::UpdateKey(id, hash)),
                Method::Delete => Ok(AdminRoute::DeleteKey(id, hash)),
                _ => Err(Error::MethodNotAllowed),
            }
        }
        _ => Err(not_found(path)),
    }
}

/// The value of query parameter `name`, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

/// The path and the query (without `?`) of a URL as the runtime serialises it
/// (WHATWG): the authority ends at the first `/`, `?` or `#` after the scheme, and
/// within the path and query `?` and `#` are percent-encoded where they are not the
/// delimiters. The fragment is dropped. Read from the string, without parsing the URL.
pub fn path_and_query(url: &str) -> (&str, &str) {
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.find(['/', '?']).unwrap_or(rest.len());
    let (_, rest) = rest.split_at_checked(authority).unwrap_or(("", ""));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    (if path.is_empty() { "/" } else { path }, query)
}

impl Route {
    /// The surface whose clients call this route (their error bodies differ).
    pub fn surface(&self) -> super::surface::Surface {
        use super::surface::Surface;
        match self {
            Route::Completions => Surface::Completions,
            Route::Responses | Route::Count(CountSurface::Responses) => Surface::Responses,
            Route::Messages | Route::Count(CountSurface::Messages) => Surface::Messages,
            _ => Surface::Chat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_of_serialised_urls() {
        for (url, path, query) in [
            ("https://example.com/", "/", ""),
            (
                "https://example.com/api/v1/chat/completions",
                "/api/v1/chat/completions",
                "",
            ),
            ("https://example.com/foo?a=1&b=/x", "/foo", "a=1&b=/x"),
            ("https://example.com/foo#/frag?x", "/foo", ""),
            ("https://example.com/foo?q=1#frag", "/foo", "q=1"),
            (
                "http://127.0.0.1:8787/api/v1/models?x=%3F",
                "/api/v1/models",
                "x=%3F",
            ),
            ("https://example.com/a%3F%23%2Fb?c", "/a%3F%23%2Fb", "c"),
            ("https://example.com:8080/foo", "/foo", ""),
            ("https://example.com?q=/x", "/", "q=/x"),
            ("https://example.com#frag", "/", ""),
        ] {
            assert_eq!(path_and_query(url), (path, query), "{url}");
            // What the URL parser says of the same URL.
            let parsed = url::Url::parse(url).unwrap();
            assert_eq!(parsed.path(), path, "{url}");
            assert_eq!(parsed.query().unwrap_or(""), query, "{url}");
        }
    }

    #[test]
    fn routes_of_the_public_api() {
        use Method::*;
        let table: &[(Method, &str, Result<Route>)] = &[
            (Post, "/api/v1/chat/completions", Ok(Route::ChatCompletions)),
            (
                Post,
                "/api/v1/chat/completions/",
                Ok(Route::ChatCompletions),
            ),
            (
                Get,
                "/api/v1/chat/completions",
                Err(Error::MethodNotAllowed),
            ),
            (Get, "/api/v1/models", Ok(Route::Models)),
            (Get, "/api/v1/models/count", Ok(Route::ModelsCount)),
            (Get, "/api/v1/models/user", Ok(Route::ModelsUser)),
            (Post, "/api/v1/responses", Ok(Route::Responses)),
            (Post, "/api/v1/messages", Ok(Route::Messages)),
            (
                Post,
                "/api/v1/messages/count_tokens",
                Ok(Route::Count(CountSurface::Messages)),
            ),
            (
                Post,
                "/api/v1/responses/input_tokens",
                Ok(Route::Count(CountSurface::Responses)),
            ),
            (
                Get,
                "/api/v1/responses/input_tokens",
                Err(Error::MethodNotAllowed),
            ),
            (
                Get,
                "/api/v1/responses/gen-1_a.b",
                Ok(Route::StoredResponse(Get, "gen-1_a.b".into())),
            ),
            (
                Delete,
                "/api/v1/responses/gen-1",
                Ok(Route::StoredResponse(Delete, "gen-1".into())),
            ),
            (
                Get,
                "/api/v1/responses/gen-1/input_items",
                Ok(Route::StoredInputItems("gen-1".into())),
            ),
            (
                Post,
                "/api/v1/responses/gen-1/input_items",
                Err(Error::MethodNotAllowed),
            ),
            (
                Patch,
                "/api/v1/responses/gen-1",
                Err(Error::MethodNotAllowed),
            ),
            (
                Get,
                "/api/v1/responses/gen-1/other",
                Err(Error::NotFound(
                    "No route for /api/v1/responses/gen-1/other".into(),
                )),
            ),
            (
                Get,
                "/api/v1/responses/a%2Fb",
                Err(Error::NotFound(
                    "No route for /api/v1/responses/a%2Fb".into(),
                )),
            ),
            (
                Post,
                "/api/v1/observability/destinations",
                Ok(Route::Destinations(Post)),
            ),
            (
                Patch,
                "/api/v1/observability/destinations/dst_1",
                Ok(Route::Destination(Patch, "dst_1".into())),
            ),
            (
                Post,
                "/api/v1/observability/destinations/dst_1",
                Err(Error::MethodNotAllowed),
            ),
            (Post, "/api/v1/completions", Ok(Route::Completions)),
            (
                Get,
                "/api/v1/models/openai/gpt-4o/endpoints",
                Ok(Route::ModelEndpoints("openai/gpt-4o".into())),
            ),
            (
                Get,
                "/api/v1/models/openai%2Fgpt-4o:free/x/endpoints",
                Ok(Route::ModelEndpoints("openai/gpt-4o:free/x".into())),
            ),
            (Get, "/api/v1/keys", Ok(Route::Keys)),
            (Get, "/api/v1/byok", Ok(Route::Byok)),
            (Post, "/api/v1/byok", Ok(Route::ByokCreate)),
            (
                Patch,
                "/api/v1/byok/k-1",
                Ok(Route::ByokUpdate("k-1".into())),
            ),
            (
                Delete,
                "/api/v1/byok/k-1",
                Ok(Route::ByokDelete("k-1".into())),
            ),
            (Post, "/api/v1/keys", Ok(Route::CreateKey)),
            (
                Delete,
                "/api/v1/keys/abc",
                Ok(Route::KeyDelete("abc".into())),
            ),
            (Put_, "/api/v1/keys/abc", Err(Error::MethodNotAllowed)),
            (Get, "/api/v1/sessions", Ok(Route::Sessions)),
            (Post, "/api/v1/sessions", Err(Error::MethodNotAllowed)),
            (
                Get,
                "/api/v1/sessions/agent%2F7%20a+b",
                Ok(Route::SessionGet("agent/7 a+b".into())),
            ),
            (
                Patch,
                "/api/v1/sessions/s-1/",
                Ok(Route::SessionUpdate("s-1".into())),
            ),
            (Delete, "/api/v1/sessions/s-1", Err(Error::MethodNotAllowed)),
            (
                Post,
                "/admin/v1/accounts",
                Ok(Route::Admin(AdminRoute::CreateAccount)),
            ),
            (
                Post,
                "/admin/v1/accounts/0123456789abcdef/credits",
                Ok(Route::Admin(AdminRoute::Grant("0123456789abcdef".into()))),
            ),
            (
                Get,
                "/admin/v1/accounts/0123456789abcdef/keys",
                Ok(Route::Admin(AdminRoute::Keys("0123456789abcdef".into()))),
            ),
            (
                Delete,
                "/admin/v1/accounts/0123456789abcdef/keys/ab12",
                Ok(Route::Admin(AdminRoute::DeleteKey(
                    "0123456789abcdef".into(),
                    "ab12".into(),
                ))),
            ),
            (
                Put_,
                "/admin/v1/accounts/0123456789abcdef/keys/ab12",
                Err(Error::MethodNotAllowed),
            ),
        ];
        for (m, p, want) in table {
            assert_eq!(&route(*m, p), want, "{m:?} {p}");
        }
    }

    #[allow(non_upper_case_globals)]
    const Put_: Method = Method::Other;

    #[test]
    fn odd_paths_are_404_not_panics() {
        for p in [
            "/api/v1/models/endpoints",
            "/api/v1/models//endpoints",
            "/api/v1/models/a/endpoints",
            "/api/v1/models/endpoints/endpoints",
            "/api/v1/models/é/endpoints",
            "/api/v1/keys/a/b",
            "/api/v1x/models",
            "/api",
            "",
            "/",
            "/admin/v1/accounts/zz",
            "/admin/v1/accounts/0123456789abcdef/nope",
            "/admin/v1/accounts/0123456789abcdef/keys/ab/cd",
            "/admin/v1/accounts/zz/keys/ab",
            "/admin/v1x",
            "/models/a",
            "/models/a/b/c",
            "/models//b",
            "/models/a/<script>",
        ] {
            let e = route(Method::Get, p).unwrap_err();
            assert!(matches!(e.status(), 404 | 405), "{p}: {e:?}");
        }
        assert_eq!(
            route(Method::Get, "/models/openai/gpt-4o"),
            Ok(Route::ModelPage)
        );
        assert_eq!(
            route(Method::Get, "/models/meta-llama/llama-3.3-70b:free/"),
            Ok(Route::ModelPage)
        );
        assert_eq!(
            route(Method::Post, "/models/openai/gpt-4o"),
            Err(Error::MethodNotAllowed)
        );
        // A trailing slash is the same path.
        assert_eq!(route(Method::Get, "/api/v1/keys/"), Ok(Route::Keys));
        let long = format!("/api/v1/{}", "a".repeat(MAX_PATH_BYTES));
        assert_eq!(route(Method::Get, &long).unwrap_err().status(), 404);
    }

    #[test]
    fn query_params() {
        assert_eq!(query_param("id=gen-1&x=2", "id").as_deref(), Some("gen-1"));
        assert_eq!(
            query_param("date=2026%2D11%2D25", "date").as_deref(),
            Some("2026-11-25")
        );
        assert_eq!(query_param("x", "id"), None);
    }
}

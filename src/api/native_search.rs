//! Native web search: where the endpoint serving a model call of the server-tool loop
//! has a search of its own (the catalogue's `native_web_search`) and the request's
//! `openrouter:web_search` tool lets it (`engine` `auto` or `native`, domain filters
//! the provider honours), the provider's own tool goes upstream in place of the
//! gateway's `web_search` function: Anthropic's `web_search_20250305`, OpenAI's
//! `web_search_options`, Gemini's `google_search`. The provider runs the searches; its
//! reply's count of them is billed at the endpoint's `pricing.web_search`, and its
//! citations come back as `url_citation` annotations.

use super::server_tools::{Engine, WebSearchParams, WEB_SEARCH};
use super::ChatRequest;

/// A model call's web search, as the loop offers it to the endpoint that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeSearch {
    pub params: WebSearchParams,
    /// The searches the loop may still run (what a provider that takes a bound is
    /// told, and what the call's hold covers).
    pub max_uses: u64,
    /// Only an endpoint with a native search may serve (`provider.zdr`: no
    /// third-party engine may see the query).
    pub required: bool,
    /// The provider's own tool goes upstream in this call (set per endpoint by
    /// [`for_endpoint`]; the translators read it).
    pub sent: bool,
}

/// A provider family's native search: what it honours of a tool's parameters, and
/// how it bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NativeTool {
    pub allowed_domains: bool,
    pub excluded_domains: bool,
    /// The provider bills one search per request that sends the tool, whatever its
    /// reply says (OpenAI's search models).
    pub per_request: bool,
}

impl NativeTool {
    /// Whether the search can run as `p` asks: a domain list the provider cannot
    /// apply leaves the search to the gateway's engine, never silently dropped.
    pub fn takes(self, p: &WebSearchParams) -> bool {
        (self.allowed_domains || p.allowed_domains.is_empty())
            && (self.excluded_domains || p.excluded_domains.is_empty())
    }
}

impl NativeSearch {
    /// The native search a call of the loop offers for its `web_search` tool's
    /// `params`, if its engine lets a provider search (`auto`, `native`).
    pub fn offered(params: &WebSearchParams, max_uses: u64, zdr: bool) -> Option<NativeSearch> {
        matches!(params.engine, Engine::Auto | Engine::Native).then(|| NativeSearch {
            params: params.clone(),
            max_uses,
            required: zdr,
            sent: false,
        })
    }

    /// Whether endpoints with a native search go first (`engine: "native"`), or are
    /// the only ones that may serve.
    pub fn preferred(&self) -> bool {
        self.required || self.params.engine == Engine::Native
    }
}

/// The request as an endpoint with (`has_native`) or without a native search, whose
/// family's native search is `tool` (`None`: it has none), gets it: with the
/// provider's tool in place of the `web_search` function, or `None` where it stays as
/// it is.
pub fn for_endpoint(
    chat: &ChatRequest,
    has_native: bool,
    tool: Option<NativeTool>,
) -> Option<ChatRequest> {
    let offered = chat.native_search.as_ref()?;
    if !has_native || !tool.is_some_and(|h| h.takes(&offered.params)) {
        return None;
    }
    let mut out = chat.clone();
    if let Some(tools) = out.tools.as_mut() {
        tools.retain(|t| t.function.name != WEB_SEARCH);
    }
    if out.tools.as_ref().is_some_and(Vec::is_empty) {
        out.tools = None;
        out.tool_choice = None;
    }
    if let Some(n) = out.native_search.as_mut() {
        n.sent = true;
    }
    Some(out)
}

/// The native search the request sends upstream, if it sends one.
pub fn sent(req: &ChatRequest) -> Option<&NativeSearch> {
    req.native_search.as_ref().filter(|n| n.sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{FunctionDef, Tool};

    fn function(name: &str) -> Tool {
        Tool {
            kind: "function".into(),
            function: FunctionDef {
                name: name.into(),
                description: None,
                parameters: None,
                strict: None,
            },
        }
    }

    fn request(params: WebSearchParams, own: &[&str]) -> ChatRequest {
        let mut tools: Vec<Tool> = own.iter().map(|n| function(n)).collect();
        tools.push(function(WEB_SEARCH));
        ChatRequest {
            tools: Some(tools),
            native_search: NativeSearch::offered(&params, 4, false),
            ..ChatRequest::default()
        }
    }

    const ALL: NativeTool = NativeTool {
        allowed_domains: true,
        excluded_domains: true,
        per_request: false,
    };
    const NONE: NativeTool = NativeTool {
        allowed_domains: false,
        excluded_domains: false,
        per_request: false,
    };

    #[test]
    fn the_provider_tool_replaces_the_function_where_the_endpoint_has_one() {
        let req = request(WebSearchParams::default(), &["lookup"]);
        let out = for_endpoint(&req, true, Some(ALL)).unwrap();
        let names: Vec<&str> = out
            .tools
            .iter()
            .flatten()
            .map(|t| t.function.name.as_str())
            .collect();
        assert_eq!(names, ["lookup"]);
        assert!(sent(&out).is_some_and(|n| n.max_uses == 4));
        assert!(sent(&req).is_none());
        // Without the catalogue's flag, or a family that has none: as it was.
        assert_eq!(for_endpoint(&req, false, Some(ALL)), None);
        assert_eq!(for_endpoint(&req, true, None), None);
        // The function alone: no tools left, and no tool_choice about them.
        let mut only = request(WebSearchParams::default(), &[]);
        only.tool_choice = Some(crate::api::ToolChoice::Auto);
        let out = for_endpoint(&only, true, Some(ALL)).unwrap();
        assert_eq!((out.tools, out.tool_choice), (None, None));
    }

    #[test]
    fn domain_lists_a_provider_cannot_apply_keep_the_gateway_engine() {
        let p = WebSearchParams {
            excluded_domains: vec!["reddit.com".into()],
            ..WebSearchParams::default()
        };
        let req = request(p, &[]);
        assert_eq!(for_endpoint(&req, true, Some(NONE)), None);
        let allowed_only = NativeTool {
            allowed_domains: true,
            excluded_domains: false,
            per_request: false,
        };
        assert_eq!(for_endpoint(&req, true, Some(allowed_only)), None);
        assert!(for_endpoint(&req, true, Some(ALL)).is_some());
    }

    #[test]
    fn only_auto_and_native_engines_are_offered_natively() {
        let engines = [Engine::Auto, Engine::Native, Engine::Exa, Engine::Brave];
        let offered: Vec<(bool, bool)> = engines
            .iter()
            .map(|e| {
                let p = WebSearchParams {
                    engine: *e,
                    ..WebSearchParams::default()
                };
                let n = NativeSearch::offered(&p, 5, false);
                (n.is_some(), n.is_some_and(|n| n.preferred()))
            })
            .collect();
        assert_eq!(
            offered,
            [(true, false), (true, true), (false, false), (false, false)]
        );
        let zdr = NativeSearch::offered(&WebSearchParams::default(), 5, true).unwrap();
        assert!(zdr.required && zdr.preferred());
    }
}

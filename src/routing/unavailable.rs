//! Why no endpoint is left for a request, and the error that says so: a refusal of the
//! request itself (400: wrong input kind, context too long), or an availability answer
//! (`error.availability`) that names the filter that left every endpoint out.

use super::RouteContext;
use crate::catalog::Provider;
use crate::error::{Availability, AvailabilityCode as Code, Error, ExcludedBy};

/// Why endpoints were left out, for the error when none is left.
#[derive(Debug, Clone, Default)]
pub(super) struct Rejections {
    pub(super) family: usize,
    pub(super) preferences: usize,
    pub(super) parameters: usize,
    pub(super) data_policy: usize,
    pub(super) context: Option<(String, u64)>,
    /// A model of the other kind (chat model for embeddings, or the reverse).
    pub(super) wrong_kind: Option<String>,
    /// An input modality a requested model does not take (and the model).
    pub(super) modality: Option<(&'static str, String)>,
    /// A model asked for images (`modalities`) that only writes text.
    pub(super) image_output: Option<String>,
    pub(super) not_free: usize,
    /// A parameter some endpoint left out under `require_parameters` does not support.
    pub(super) unsupported: Option<&'static str>,
    /// The preference filters that left endpoints out (`availability.excluded_by`),
    /// and the request field of the last one.
    excluded: Vec<ExcludedBy>,
    field: Option<&'static str>,
    /// The data-policy filters that left endpoints out.
    privacy: Vec<ExcludedBy>,
    /// The request's own data-policy field that left endpoints out, if one did.
    pub(super) policy_field: Option<&'static str>,
    /// The providers of the endpoints left out (`availability.affected_providers`).
    providers: Vec<String>,
}

impl Rejections {
    /// Notes that the preference `field` (filter `by`) left an endpoint out.
    pub(super) fn exclude(&mut self, by: ExcludedBy, field: &'static str) {
        if !self.excluded.contains(&by) {
            self.excluded.push(by);
        }
        self.field = Some(field);
    }

    /// Notes that the data policy `by` left an endpoint out.
    pub(super) fn privacy(&mut self, by: ExcludedBy) {
        if !self.privacy.contains(&by) {
            self.privacy.push(by);
        }
    }

    /// Notes that `provider`'s endpoint was left out of a web search under `zdr`: it
    /// has no native search, and no third-party engine may see the query.
    pub(super) fn no_native_search(&mut self, provider: &Provider) {
        self.data_policy = self.data_policy.saturating_add(1);
        self.policy_field =
            Some("provider.zdr: true (with web search: only endpoints with a native search)");
        self.privacy(ExcludedBy::DataPolicyZdr);
        self.affect(provider);
    }

    pub(super) fn affect(&mut self, provider: &Provider) {
        self.affect_slug(&provider.slug);
    }

    pub(super) fn affect_slug(&mut self, slug: &str) {
        if !self.providers.iter().any(|p| p == slug) {
            self.providers.push(slug.to_string());
        }
    }

    /// The availability answer `code` for `candidates`, with the providers left out.
    fn answer(&self, code: Code, candidates: &[String]) -> Availability {
        let mut a = Availability::new(code, candidates.to_vec());
        a.affected_providers.clone_from(&self.providers);
        a
    }
}

fn unavailable(availability: Availability, message: String) -> Error {
    Error::Unavailable {
        message,
        availability: Box::new(availability),
    }
}

/// The error for a request none of whose endpoints is left, by the first reason that
/// applies: an unknown model, the wrong kind of model, what the request needs that the
/// models lack, its context, the data policy, `require_parameters`, the other
/// preferences, a `:free` variant without free endpoints, or nothing routable at all.
pub(super) fn no_endpoint(
    candidates: &[String],
    known: bool,
    r: &Rejections,
    ctx: &RouteContext,
    prompt: u64,
) -> Error {
    let names = candidates.join(", ");
    if !known {
        let a = Availability::new(Code::ModelNotFound, candidates.to_vec());
        return unavailable(a, format!("{names} is not a valid model ID"));
    }
    if let Some(id) = &r.wrong_kind {
        let (message, detail) = if ctx.embeddings {
            let m = format!("model: {id} is not an embedding model");
            (m, "call /api/v1/chat/completions".to_string())
        } else {
            let m = format!("model: {id} is an embedding model: call /api/v1/embeddings");
            (m, "call /api/v1/embeddings".to_string())
        };
        let a = Availability::new(Code::WrongEndpoint, candidates.to_vec());
        return unavailable(a.with_constraint("model", detail), message);
    }
    if let Some(refusal) = refused_input(r, prompt) {
        return refusal;
    }
    filtered(candidates, &names, r, ctx)
}

/// A request a model cannot take as it is: a modality it lacks, images out of a text
/// model, a prompt longer than every context (checked last: an endpoint refused for it
/// passed everything else).
fn refused_input(r: &Rejections, prompt: u64) -> Option<Error> {
    if let Some((modality, id)) = &r.modality {
        let part = match *modality {
            "image" => "an image_url part",
            "file" => "a file part",
            "audio" => "an input_audio part",
            _ => "a video_url part",
        };
        return Some(Error::bad_request(format!(
            "messages: {id} does not take {modality} input, and the request has {part}; remove it or choose a model with {modality} in its input_modalities"
        )));
    }
    if let Some(id) = &r.image_output {
        return Some(Error::bad_request(format!(
            "modalities: {id} does not output images; choose a model with image in its output_modalities"
        )));
    }
    let (id, ctxlen) = r.context.as_ref()?;
    Some(Error::bad_request(format!(
        "This endpoint's maximum context length is {ctxlen} tokens. However, you requested about {prompt} tokens. Please reduce the length of the messages ({id})."
    )))
}

/// Every endpoint left out by a filter of the request or the account, or none there.
fn filtered(candidates: &[String], names: &str, r: &Rejections, ctx: &RouteContext) -> Error {
    if r.data_policy > 0 {
        let mut a = r.answer(Code::PrivacyRestricted, candidates);
        a.excluded_by.clone_from(&r.privacy);
        // The request's own filter, when it set one, is what left every endpoint out
        // (it is checked first); else the account's privacy setting is.
        let message = match r.policy_field {
            Some(field) => format!(
                "No endpoints found matching your data policy: `{field}` leaves out every endpoint of {names}."
            ),
            None => format!(
                "No endpoints found matching your data policy (training allowed: {}). Allow providers that train on prompts in your account's privacy settings.",
                ctx.allow_training
            ),
        };
        return unavailable(a, message);
    }
    if r.parameters > 0 {
        let detail = match r.unsupported {
            Some(p) => format!("no endpoint left supports `{p}`, which the request sets"),
            None => "no endpoint supports every parameter the request sets".into(),
        };
        let message = "No endpoints found that can handle the requested parameters.";
        return constrained(
            candidates,
            r,
            "provider.require_parameters",
            detail,
            message,
        );
    }
    if r.preferences > 0 {
        let field = r.field.unwrap_or("provider");
        let detail = format!("{field} leaves out every endpoint of {names}");
        let message = "No endpoints found that match your provider preferences.";
        return constrained(candidates, r, field, detail, message);
    }
    if r.not_free > 0 {
        let mut a = r.answer(Code::NoEndpoints, candidates);
        // The paid model serves what its `:free` variant no longer does.
        a.fallback_models = (candidates.iter())
            .filter_map(|c| c.strip_suffix(":free"))
            .map(str::to_string)
            .collect();
        return unavailable(a, format!("No free endpoints found for {names}."));
    }
    let a = r.answer(Code::NoEndpoints, candidates);
    unavailable(a, format!("No provider can serve {names} on this gateway."))
}

/// A `constraint_filtered` answer naming `field`.
fn constrained(
    candidates: &[String],
    r: &Rejections,
    field: &str,
    detail: String,
    message: &str,
) -> Error {
    let mut a = r
        .answer(Code::ConstraintFiltered, candidates)
        .with_constraint(field, detail);
    a.excluded_by.clone_from(&r.excluded);
    unavailable(a, message.to_string())
}

use super::*;
use serde_json::json;

/// One model at four providers with distinct prices, policies and quantizations.
fn cat() -> Catalog {
    let p = |slug: &str, training: bool, retains: bool| {
        json!({"slug": slug, "name": slug.to_uppercase(), "api": "openai", "base_url": "http://x",
               "data_policy": {"training": training, "retains_prompts": retains}})
    };
    let e = |provider: &str, prompt: &str, quant: &str, params: Option<Vec<&str>>| {
        let mut v = json!({"provider": provider, "upstream_model": "m",
            "pricing": {"prompt": prompt, "completion": prompt}, "quantization": quant});
        if let Some(ps) = params {
            v["supported_parameters"] = json!(ps);
        }
        v
    };
    serde_json::from_value(json!({
        "providers": [p("cheap", false, false), p("mid", false, true), p("pricey", false, false), p("trainer", true, true)],
        "models": [
            {"id": "a/m", "name": "M", "context_length": 1000, "supported_parameters": ["tools", "temperature", "max_tokens"],
             "endpoints": [e("pricey", "0.00001", "fp16", None), e("mid", "0.000002", "fp8", None),
                           e("cheap", "0.000001", "fp8", Some(vec!["temperature"])), e("trainer", "0", "int4", None)]},
            {"id": "b/other", "name": "O", "context_length": 100000,
             "endpoints": [e("mid", "0.000003", "fp8", None)]}
        ]
    }))
    .unwrap()
}

/// A one-line chat to `a/m` with `body`'s fields added, typed without validation:
/// these tests are of the planner's own checks.
fn hi_with(body: serde_json::Value) -> ChatRequest {
    let mut req = json!({"model": "a/m", "messages": [{"role": "user", "content": "hi"}]});
    req.as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    serde_json::from_value(req).unwrap()
}

fn run(
    body: serde_json::Value,
    allow_training: bool,
    health: &HashMap<String, Summary>,
    r: f64,
) -> Result<Vec<String>> {
    let c = cat();
    let req = hi_with(body);
    let ctx = RouteContext {
        allow_training,
        health,
        now_ms: 1_000_000,
        embeddings: false,
        sticky: None,
    };
    let mut rnd = || r;
    plan(&c, &req, &ctx, &mut rnd).map(|v| {
        v.iter()
            .map(|c| format!("{}@{}", c.id, c.endpoint.provider))
            .collect()
    })
}

fn ok(body: serde_json::Value) -> Vec<String> {
    run(body, false, &HashMap::new(), 0.0).unwrap()
}

#[test]
fn a_max_tokens_past_an_endpoint_is_lowered_not_refused() {
    let c: Catalog = serde_json::from_value(json!({
        "providers": [{"slug": "small", "name": "S", "api": "openai", "base_url": "http://x"},
                      {"slug": "big", "name": "B", "api": "openai", "base_url": "http://x"}],
        "models": [{"id": "c/m", "name": "M", "context_length": 200000, "supported_parameters": ["max_tokens"],
            "endpoints": [
                {"provider": "small", "upstream_model": "m", "max_completion_tokens": 4096,
                 "pricing": {"prompt": "0.000001", "completion": "0.000001"}},
                {"provider": "big", "upstream_model": "m", "max_completion_tokens": 64000,
                 "pricing": {"prompt": "0.00001", "completion": "0.00001"}}]}]
    }))
    .unwrap();
    let health = HashMap::new();
    let ctx = RouteContext::quiet(&health, false);
    let order = |provider: serde_json::Value| {
        let req: ChatRequest = serde_json::from_value(json!({"model": "c/m", "max_tokens": 32000,
            "messages": [{"role": "user", "content": "hi"}], "provider": provider}))
        .unwrap();
        plan(&c, &req, &ctx, &mut || 0.0)
            .unwrap()
            .iter()
            .map(|c| c.endpoint.provider.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(order(json!({"sort": "price"})), ["small", "big"]);
    assert_eq!(
        order(json!({"sort": "price", "require_parameters": true})),
        ["big", "small"],
        "the endpoint that honours the whole ask goes first"
    );
    let e = &c.models[0].endpoints[0];
    assert_eq!(e.cap_output(&c.models[0], Some(32000)), Some(4096));
    assert_eq!(e.cap_output(&c.models[0], Some(100)), Some(100));
    assert_eq!(e.cap_output(&c.models[0], None), None);
}

#[test]
fn preferences_table() {
    let cases: Vec<(serde_json::Value, Vec<&str>)> = vec![
        (
            json!({"provider": {"sort": "price"}}),
            vec!["a/m@cheap", "a/m@mid", "a/m@pricey"],
        ),
        (
            json!({"model": "a/m:floor"}),
            vec!["a/m:floor@cheap", "a/m:floor@mid", "a/m:floor@pricey"],
        ),
        (
            json!({"provider": {"order": ["pricey", "MID"], "sort": "price"}}),
            vec!["a/m@pricey", "a/m@mid", "a/m@cheap"],
        ),
        (
            json!({"provider": {"order": ["pricey"], "allow_fallbacks": false}}),
            vec!["a/m@pricey"],
        ),
        (
            json!({"provider": {"sort": "price", "allow_fallbacks": false}}),
            vec!["a/m@cheap"],
        ),
        (
            json!({"provider": {"only": ["mid", "pricey"], "sort": "price"}}),
            vec!["a/m@mid", "a/m@pricey"],
        ),
        (
            json!({"provider": {"ignore": ["cheap"], "sort": "price"}}),
            vec!["a/m@mid", "a/m@pricey"],
        ),
        (
            json!({"provider": {"quantizations": ["fp8"], "sort": "price"}}),
            vec!["a/m@cheap", "a/m@mid"],
        ),
        (
            json!({"provider": {"data_collection": "deny", "sort": "price"}}),
            vec!["a/m@cheap", "a/m@pricey"],
        ),
        (
            json!({"provider": {"max_price": {"prompt": 2}, "sort": "price"}}),
            vec!["a/m@cheap", "a/m@mid"],
        ),
        (
            json!({"provider": {"require_parameters": true, "sort": "price"}, "tools": [{"type": "function", "function": {"name": "f"}}]}),
            vec!["a/m@mid", "a/m@pricey"],
        ),
        (
            json!({"provider": {"sort": "price"}, "models": ["b/other"]}),
            vec!["a/m@cheap", "a/m@mid", "a/m@pricey", "b/other@mid"],
        ),
        // Zero data retention: neither training nor keeping prompts.
        (
            json!({"provider": {"zdr": true, "sort": "price"}}),
            vec!["a/m@cheap", "a/m@pricey"],
        ),
        // One order across models: b/other at mid ($6/M) before a/m at pricey.
        (
            json!({"provider": {"sort": {"by": "price", "partition": "none"}}, "models": ["b/other"]}),
            vec!["a/m@cheap", "a/m@mid", "b/other@mid", "a/m@pricey"],
        ),
        (
            json!({"provider": {"sort": {"by": "price", "partition": "model"}}, "models": ["b/other"]}),
            vec!["a/m@cheap", "a/m@mid", "a/m@pricey", "b/other@mid"],
        ),
    ];
    for (body, want) in cases {
        assert_eq!(ok(body.clone()), want, "{body}");
    }
}

#[test]
fn default_is_price_weighted() {
    // weights 1/(p+0.01)^2 for p = 2, 4, 20 (USD per M, prompt + completion)
    let w = [
        1.0 / 2.01f64.powi(2),
        1.0 / 4.01f64.powi(2),
        1.0 / 20.01f64.powi(2),
    ];
    let total: f64 = w.iter().sum();
    assert_eq!(
        ok(json!({}))[0],
        "a/m@cheap",
        "random 0 picks the first by weight"
    );
    let just_past_cheap = w[0] / total + 0.001;
    assert_eq!(
        run(json!({}), false, &HashMap::new(), just_past_cheap).unwrap()[0],
        "a/m@mid"
    );
    assert_eq!(
        run(json!({}), false, &HashMap::new(), 0.999).unwrap()[0],
        "a/m@pricey"
    );
    let mut counts = HashMap::new();
    for i in 0..1000 {
        let first =
            run(json!({}), false, &HashMap::new(), (i as f64 + 0.5) / 1000.0).unwrap()[0].clone();
        *counts.entry(first).or_insert(0) += 1;
    }
    assert!(
        counts["a/m@cheap"] > counts["a/m@mid"] && counts["a/m@mid"] > counts["a/m@pricey"],
        "{counts:?}"
    );
}

#[test]
fn sessions_stick_to_their_endpoint_while_it_is_up() {
    let c = cat();
    let plan_with =
        |body: serde_json::Value, sticky: Option<&str>, h: &HashMap<String, Summary>| {
            let mut req = json!({"model": "a/m", "messages": [{"role": "user", "content": "hi"}]});
            req.as_object_mut()
                .unwrap()
                .extend(body.as_object().unwrap().clone());
            let req: ChatRequest = serde_json::from_value(req).unwrap();
            assert_eq!(
                session_of(&req),
                req.extra.get("session_id").and_then(|v| v.as_str())
            );
            let ctx = RouteContext {
                allow_training: false,
                health: h,
                now_ms: 1_000_000,
                embeddings: false,
                sticky,
            };
            plan(&c, &req, &ctx, &mut || 0.0)
                .unwrap()
                .iter()
                .map(|c| c.endpoint.provider.clone())
                .collect::<Vec<_>>()
        };
    let none = HashMap::new();
    let base = plan_with(json!({}), None, &none);
    assert_ne!(base[0], "pricey");
    let s = json!({"session_id": "conv-1"});
    assert_eq!(plan_with(s.clone(), Some("pricey/m"), &none)[0], "pricey");
    // Not when the caller orders or sorts, nor when the endpoint is down.
    let ordered = json!({"session_id": "conv-1", "provider": {"sort": "price"}});
    assert_eq!(plan_with(ordered, Some("pricey/m"), &none)[0], "cheap");
    let down = HashMap::from([(
        "pricey/m".to_string(),
        Summary {
            down_until_ms: Some(2_000_000),
            ..Default::default()
        },
    )]);
    assert_eq!(plan_with(s, Some("pricey/m"), &down), base);
}

#[test]
fn down_endpoints_go_last_and_throughput_sorts() {
    let mut h = HashMap::new();
    h.insert(
        "cheap/m".to_string(),
        Summary {
            down_until_ms: Some(2_000_000),
            ..Default::default()
        },
    );
    h.insert(
        "mid/m".to_string(),
        Summary {
            throughput_30m: Some(50.0),
            ..Default::default()
        },
    );
    h.insert(
        "pricey/m".to_string(),
        Summary {
            throughput_30m: Some(90.0),
            ..Default::default()
        },
    );
    let got = run(json!({"provider": {"sort": "price"}}), false, &h, 0.0).unwrap();
    assert_eq!(got, ["a/m@mid", "a/m@pricey", "a/m@cheap"]);
    let got = run(json!({"model": "a/m:nitro"}), false, &h, 0.0).unwrap();
    assert_eq!(
        got,
        ["a/m:nitro@pricey", "a/m:nitro@mid", "a/m:nitro@cheap"]
    );
}

#[test]
fn preferred_throughput_and_latency_move_slow_endpoints_back() {
    let pct = |p50: f64, p99: f64| health::Percentiles {
        p50,
        p75: p50,
        p90: p99,
        p99,
    };
    let mut h = HashMap::new();
    // cheap: fast to start, slow to generate; mid: slow to start; pricey: no data.
    h.insert(
        "cheap/m".to_string(),
        Summary {
            latency_pct_30m: Some(pct(200.0, 900.0)),
            throughput_pct_30m: Some(pct(20.0, 10.0)),
            ..Default::default()
        },
    );
    h.insert(
        "mid/m".to_string(),
        Summary {
            latency_pct_30m: Some(pct(3000.0, 9000.0)),
            throughput_pct_30m: Some(pct(80.0, 60.0)),
            ..Default::default()
        },
    );
    let plan = |prefs: serde_json::Value| {
        run(
            json!({"provider": prefs, "models": ["b/other"]}),
            false,
            &h,
            0.0,
        )
        .unwrap()
    };
    assert_eq!(
        plan(json!({"sort": "price", "preferred_min_throughput": 50})),
        ["a/m@mid", "a/m@pricey", "b/other@mid", "a/m@cheap"]
    );
    // Seconds, per percentile: mid's p90 of 9 s misses 5 s.
    assert_eq!(
        plan(json!({"sort": "price", "preferred_max_latency": {"p90": 5}})),
        ["a/m@cheap", "a/m@pricey", "a/m@mid", "b/other@mid"]
    );
}

/// The plan for `body` (with a one-line user message) over `c`, without health.
fn plan_of(c: &Catalog, mut body: serde_json::Value) -> Vec<Choice<'_>> {
    body["messages"] = json!([{"role": "user", "content": "hi"}]);
    let req: ChatRequest = serde_json::from_value(body).unwrap();
    let h = HashMap::new();
    let ctx = RouteContext {
        allow_training: false,
        health: &h,
        now_ms: 0,
        embeddings: false,
        sticky: None,
    };
    plan(c, &req, &ctx, &mut || 0.0).unwrap()
}

#[test]
fn a_refused_request_falls_back_to_the_next_model() {
    let c = cat();
    let p = plan_of(
        &c,
        json!({"model": "a/m", "models": ["b/other"], "provider": {"sort": "price"}}),
    );
    assert_eq!(p.len(), 4);
    assert_eq!(after_failure(&p, 0, true), Some(1));
    assert_eq!(after_failure(&p, 0, false), Some(3), "the next model");
    assert_eq!(after_failure(&p, 3, false), None);
    assert_eq!(after_failure(&p, 3, true), None);
    assert_eq!(after_failure(&p, 9, false), None);
}

#[test]
fn distillable_text_and_every_price_kind() {
    let mut c = cat();
    let bad = run(
        json!({"provider": {"enforce_distillable_text": true}}),
        false,
        &HashMap::new(),
        0.0,
    );
    assert_eq!(bad.unwrap_err().status(), 404);
    if let Some(m) = c.models.iter_mut().find(|m| m.id == "a/m") {
        m.distillable = true;
        if let Some(e) = m.endpoints.iter_mut().find(|e| e.provider == "mid") {
            e.pricing.input_cache_read = Some("0.000001".into());
        }
    }
    let got: Vec<&str> = plan_of(
        &c,
        json!({"model": "a/m", "provider": {"enforce_distillable_text": true,
            "sort": "price", "max_price": {"input_cache_read": 0.5}}}),
    )
    .iter()
    .map(|c| c.endpoint.provider.as_str())
    .collect();
    assert_eq!(got, ["cheap", "pricey"]);
}

#[test]
fn training_needs_the_account_setting() {
    let free = run(json!({"model": "a/m:free"}), true, &HashMap::new(), 0.0).unwrap();
    assert_eq!(free, ["a/m:free@trainer"]);
    let e = run(json!({"model": "a/m:free"}), false, &HashMap::new(), 0.0).unwrap_err();
    assert_eq!(e.status(), 404);
    assert!(e.to_string().contains("data policy"), "{e}");
}

#[test]
fn a_refusal_names_the_request_field_that_left_every_endpoint_out() {
    // With training allowed too: the request's own `data_collection: deny` is the
    // reason, whatever the account's setting turns out to be.
    for (prefs, field) in [
        (
            json!({"data_collection": "deny"}),
            "`provider.data_collection: \"deny\"`",
        ),
        (json!({"zdr": true}), "`provider.zdr: true`"),
    ] {
        let e = run(
            json!({"model": "a/m:free", "provider": prefs}),
            true,
            &HashMap::new(),
            0.0,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("No endpoints found matching your data policy: {field} leaves out every endpoint of a/m:free.")
        );
    }
}

#[test]
fn errors_say_why() {
    let h = HashMap::new();
    let e = run(json!({"model": "no/model"}), false, &h, 0.0).unwrap_err();
    assert_eq!(
        (e.status(), e.to_string().contains("not a valid model ID")),
        (404, true)
    );
    let e = run(json!({"model": "b/other:free"}), false, &h, 0.0).unwrap_err();
    assert!(e.to_string().contains("No free endpoints"), "{e}");
    let e = run(json!({"provider": {"only": ["nobody"]}}), false, &h, 0.0).unwrap_err();
    assert!(e.to_string().contains("provider preferences"), "{e}");
    let e = run(
        json!({"provider": {"require_parameters": true}, "logit_bias": {"1": 1}}),
        false,
        &h,
        0.0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("requested parameters"), "{e}");
    let long = "x".repeat(8000);
    // A small context compresses by default: turned off, the prompt is refused.
    let off = json!([{"id": "context-compression", "enabled": false}]);
    let e = run(
        json!({"messages": [{"role": "user", "content": long}], "plugins": off}),
        false,
        &h,
        0.0,
    )
    .unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(
        e.to_string().contains("maximum context length is 1000"),
        "{e}"
    );
    // A preference the wire type refuses never reaches the planner.
    let bad = json!({"model": "a/m", "messages": [], "provider": {"sort": "fastest"}});
    assert!(serde_json::from_value::<ChatRequest>(bad).is_err());
}

#[test]
fn shipped_catalogue_free_models_need_training_allowed() {
    let c = Catalog::from_json(include_bytes!("../../catalog/catalog.json")).unwrap();
    let req = ChatRequest::parse(
        br#"{"model":"google/gemini-2.5-flash:free","messages":[{"role":"user","content":"x"}]}"#,
    )
    .unwrap();
    let h = HashMap::new();
    let mut rnd = || 0.0;
    let deny = RouteContext {
        allow_training: false,
        health: &h,
        now_ms: 0,
        embeddings: false,
        sticky: None,
    };
    assert_eq!(plan(&c, &req, &deny, &mut rnd).unwrap_err().status(), 404);
    let allow = RouteContext {
        allow_training: true,
        ..deny
    };
    let p = plan(&c, &req, &allow, &mut rnd).unwrap();
    assert!(p[0].is_free());
    assert_eq!(
        p[0].endpoint.limits.as_ref().unwrap().requests_per_minute,
        Some(10)
    );
    let echo = ChatRequest::parse(
        br#"{"model":"modelmux/echo","messages":[{"role":"user","content":"x"}]}"#,
    )
    .unwrap();
    assert!(plan(&c, &echo, &allow, &mut rnd).unwrap()[0].is_free());
}

#[test]
fn candidates_gathered_once_plan_for_either_privacy_setting() {
    let c = cat();
    let h = HashMap::new();
    let names = |v: &[Choice]| {
        v.iter()
            .map(|c| c.endpoint.provider.clone())
            .collect::<Vec<_>>()
    };
    for body in [json!({}), json!({"provider": {"allow_fallbacks": false}})] {
        let req = hi_with(body.clone());
        // Gathering does not read the context's privacy setting.
        let ctx = RouteContext {
            allow_training: true,
            health: &h,
            now_ms: 1_000_000,
            embeddings: false,
            sticky: None,
        };
        let cands = Candidates::gather(&c, &req, &ctx).unwrap();
        for allow_training in [false, true] {
            for r in [0.0, 0.4, 0.99] {
                let alone = RouteContext {
                    allow_training,
                    ..ctx.clone()
                };
                assert_eq!(
                    names(&cands.plan(allow_training, &mut || r).unwrap()),
                    names(&plan(&c, &req, &alone, &mut || r).unwrap()),
                    "{body} {allow_training} {r}"
                );
            }
        }
        // The free trainer comes first with training allowed; without, the first
        // endpoint is one that does not train (also when only one may be tried).
        let with = cands.plan(true, &mut || 0.0).unwrap();
        let without = cands.plan(false, &mut || 0.0).unwrap();
        assert_eq!(names(&with)[0], "trainer", "{body}");
        assert!(!names(&without).contains(&"trainer".to_string()), "{body}");
        if body.get("provider").is_some() {
            assert_eq!((with.len(), without.len()), (1, 1));
        }
    }
}

#[test]
fn a_trainer_too_small_is_refused_for_its_data_policy_without_training() {
    let c: Catalog = serde_json::from_value(json!({
        "providers": [{"slug": "t", "name": "T", "api": "openai", "base_url": "http://x",
                       "data_policy": {"training": true, "retains_prompts": true}}],
        "models": [{"id": "t/m", "name": "M", "context_length": 8,
            "endpoints": [{"provider": "t", "upstream_model": "m",
                           "pricing": {"prompt": "0.000001", "completion": "0.000001"}}]}]
    }))
    .unwrap();
    let long = "word ".repeat(100);
    let req: ChatRequest = serde_json::from_value(
        json!({"model": "t/m", "messages": [{"role": "user", "content": long}],
               "plugins": [{"id": "context-compression", "enabled": false}]}),
    )
    .unwrap();
    let h = HashMap::new();
    let ctx = RouteContext {
        allow_training: false,
        health: &h,
        now_ms: 0,
        embeddings: false,
        sticky: None,
    };
    let cands = Candidates::gather(&c, &req, &ctx).unwrap();
    let private = cands.plan(false, &mut || 0.0).unwrap_err();
    assert_eq!(private.status(), 404);
    assert!(
        private
            .to_string()
            .contains("data policy (training allowed: false)"),
        "{private}"
    );
    let training = cands.plan(true, &mut || 0.0).unwrap_err();
    assert_eq!(training.status(), 400);
    assert!(
        training.to_string().contains("maximum context length is 8"),
        "{training}"
    );
    assert!(cands.prompt_tokens > 8);
}

#[test]
fn each_refusal_says_its_availability() {
    use crate::error::{AvailabilityCode as Code, ExcludedBy as By};
    let h = HashMap::new();
    let answer = |body: serde_json::Value| {
        let e = run(body, false, &h, 0.0).unwrap_err();
        let a = e.availability().cloned().unwrap_or_else(|| panic!("{e:?}"));
        let field = a.constraint.as_ref().map(|c| c.field.clone());
        (
            e.status(),
            a.code,
            a.excluded_by,
            a.affected_providers,
            field,
        )
    };
    let all = ["pricey", "mid", "cheap", "trainer"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        answer(json!({"model": "no/model"})),
        (404, Code::ModelNotFound, vec![], vec![], None)
    );
    let field = |f: &str| Some(f.to_string());
    assert_eq!(
        answer(json!({"provider": {"ignore": ["cheap", "mid", "pricey", "trainer"]}})),
        (
            404,
            Code::ConstraintFiltered,
            vec![By::AllowedProviders],
            all.clone(),
            field("provider.ignore")
        )
    );
    assert_eq!(
        answer(json!({"provider": {"quantizations": ["bf16"]}})),
        (
            404,
            Code::ConstraintFiltered,
            vec![By::Quantization],
            all.clone(),
            field("provider.quantizations")
        )
    );
    let params = json!({"provider": {"require_parameters": true}, "logit_bias": {"1": 1}});
    assert_eq!(
        answer(params.clone()),
        (
            404,
            Code::ConstraintFiltered,
            vec![By::RequireParameters],
            all,
            field("provider.require_parameters")
        )
    );
    let e = run(params, false, &h, 0.0).unwrap_err();
    let detail = e
        .availability()
        .and_then(|a| a.constraint.clone())
        .unwrap()
        .detail;
    assert_eq!(
        detail,
        "no endpoint left supports `logit_bias`, which the request sets"
    );
    let mid = vec!["mid".to_string()];
    assert_eq!(
        answer(json!({"model": "b/other", "provider": {"zdr": true}})),
        (
            404,
            Code::PrivacyRestricted,
            vec![By::DataPolicyZdr],
            mid,
            None
        )
    );
    // The only free endpoint trains on prompts, which the account does not allow.
    assert_eq!(
        answer(json!({"model": "a/m:free"})),
        (
            404,
            Code::PrivacyRestricted,
            vec![By::DataPolicyTraining],
            vec!["trainer".to_string()],
            None
        )
    );
    let e = run(json!({"model": "b/other:free"}), false, &h, 0.0).unwrap_err();
    let a = e.availability().unwrap();
    assert_eq!(
        (a.code, a.fallback_models.clone()),
        (Code::NoEndpoints, vec!["b/other".to_string()])
    );
}

#[test]
fn native_search_goes_first_when_asked_and_alone_under_zdr() {
    use crate::api::native_search::NativeSearch;
    use crate::api::server_tools::{Engine, WebSearchParams};
    let mut c = cat();
    let m = c.models.iter_mut().find(|m| m.id == "a/m").unwrap();
    // `mid` searches itself (it retains prompts: not ZDR); `pricey` too.
    for e in m.endpoints.iter_mut() {
        e.native_web_search = e.provider == "mid" || e.provider == "pricey";
    }
    let h = HashMap::new();
    let ctx = RouteContext::quiet(&h, false);
    let planned = |c: &Catalog, engine: Engine, zdr: bool| {
        let mut req = hi_with(json!({"provider": {"sort": "price", "zdr": zdr}}));
        let p = WebSearchParams {
            engine,
            ..WebSearchParams::default()
        };
        req.native_search = NativeSearch::offered(&p, 5, zdr);
        plan(c, &req, &ctx, &mut || 0.0).map(|v| {
            v.iter()
                .map(|c| c.endpoint.provider.clone())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(
        planned(&c, Engine::Auto, false).unwrap(),
        ["cheap", "mid", "pricey"]
    );
    assert_eq!(
        planned(&c, Engine::Native, false).unwrap(),
        ["mid", "pricey", "cheap"]
    );
    // Under zdr: only ZDR endpoints with a native search; `mid` retains prompts.
    assert_eq!(planned(&c, Engine::Auto, true).unwrap(), ["pricey"]);
    let m = c.models.iter_mut().find(|m| m.id == "a/m").unwrap();
    m.endpoints.retain(|e| e.provider != "pricey");
    let e = planned(&c, Engine::Auto, true).unwrap_err();
    assert_eq!(e.status(), 404);
    assert!(
        e.public_message().contains("`provider.zdr: true"),
        "{}",
        e.public_message()
    );
}

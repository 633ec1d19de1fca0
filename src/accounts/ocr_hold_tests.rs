//! The `mistral-ocr` engine's hold (README "Plugins"): before the OCR runs, the model
//! call's reservation holds the pages' worst case and the PDFs' texts at the whole
//! context; the bill charges the pages read, in full even on a BYOK endpoint.

use crate::accounts::ledger::worst_case;
use crate::api::ChatRequest;
use crate::catalog::{Catalog, Pricing};
use crate::usage::{Ocr, Usage};

fn gpt41() -> Catalog {
    Catalog::from_json(include_bytes!("../../catalog/catalog.json")).unwrap()
}

#[test]
fn a_pending_ocr_holds_its_pages_and_the_whole_context_for_their_text() {
    let cat = gpt41();
    let m = cat.model("openai/gpt-4.1").unwrap();
    let e = &m.endpoints[0];
    let mut chat = ChatRequest::parse(
        br#"{"model":"openai/gpt-4.1","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
    )
    .unwrap();
    let plain = worst_case(&chat, m, e, Some(10));
    // "hi" and the role, a token per two bytes, and eight for the message: 11 tokens
    // at $2/M; ten completion tokens at $8/M.
    assert_eq!(plain.reserve, 11 * 2_000_000 + 10 * 8_000_000);
    chat.ocr = Ocr {
        pages: 12,
        picos: 12_000_000_000,
        pending: 1,
    };
    let held = worst_case(&chat, m, e, Some(10));
    // The context (1,047,576 tokens) at $2/M, the completion, and twelve pages at $1/1000.
    assert_eq!(
        held.reserve,
        1_047_576 * 2_000_000 + 10 * 8_000_000 + 12_000_000_000
    );
    // Once read, the pages as Mistral billed them and the prompt as it is.
    chat.ocr = Ocr {
        pages: 2,
        picos: 2_000_000_000,
        pending: 0,
    };
    assert_eq!(
        worst_case(&chat, m, e, Some(10)).reserve,
        plain.reserve + 2_000_000_000
    );
}

#[test]
fn a_byok_generation_pays_the_fee_on_its_tokens_and_its_ocr_pages_in_full() {
    let p = Pricing {
        prompt: "0.000001".into(),
        completion: "0.000002".into(),
        byok_fee_percent: Some(5),
        ..Default::default()
    };
    let mut u = Usage::new(1000, 100);
    // 1,000 × $1/M + 100 × $2/M = $0.0012, of which 5%.
    assert_eq!(p.cost_picos(&u), 60_000_000);
    Ocr {
        pages: 3,
        picos: 3_000_000_000,
        pending: 0,
    }
    .bill(&mut u);
    assert_eq!(p.cost_picos(&u), 60_000_000 + 3_000_000_000);
    let mut priced = u.clone();
    p.price(&mut priced, true);
    assert_eq!(
        priced.cost,
        Some(crate::money::Usd::from_picos(3_060_000_000))
    );
}

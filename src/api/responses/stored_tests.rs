use serde_json::{json, Map, Value};

use super::*;
use crate::api::responses::ResponsesRequest;
use crate::api::{ChatRequest, Role};

fn body(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn response(v: Value) -> StoredResponse {
    serde_json::from_value(v).unwrap()
}

#[test]
fn ask_is_taken_out_of_the_body() {
    let mut b = body(
        json!({"model": "a/b", "input": "hi", "store": true, "previous_response_id": "gen-1"}),
    );
    let ask = Ask::take(&mut b).unwrap();
    assert_eq!(
        ask,
        Ask {
            store: true,
            previous: Some("gen-1".into())
        }
    );
    assert_eq!(Value::Object(b), json!({"model": "a/b", "input": "hi"}));
    let mut plain = body(json!({"input": "hi"}));
    assert_eq!(Ask::take(&mut plain).unwrap(), Ask::default());
}

#[test]
fn ask_names_the_field_it_refuses() {
    let err = |v| Ask::take(&mut body(v)).unwrap_err().to_string();
    assert_eq!(
        err(json!({"store": "yes"})),
        "store: must be a boolean, not a string"
    );
    assert_eq!(
        err(json!({"previous_response_id": "../x"})),
        "previous_response_id: is not a response ID"
    );
    assert_eq!(
        err(json!({"store": true, "provider": {"zdr": true}})),
        "store: responses cannot be stored under zero data retention (provider.zdr)"
    );
    // Not stored: zero data retention is no reason to refuse.
    assert!(Ask::take(&mut body(
        json!({"store": false, "provider": {"zdr": true}})
    ))
    .is_ok());
}

#[test]
fn ids_are_checked_and_keyed_per_account_and_key() {
    assert!(valid_id("gen-1733520000-abcDEF_1.2"));
    assert!(!valid_id(""));
    assert!(!valid_id("a/b"));
    assert!(!valid_id(&"a".repeat(129)));
    assert_eq!(object_key("acc", "kh", "gen-1"), "responses/acc/kh/gen-1");
}

fn turn_one() -> Record {
    let input = input_items(json!("What is 2+2?"), "gen-1").unwrap();
    let out = response(json!({
        "id": "gen-1", "object": "response", "status": "completed", "model": "anthropic/claude",
        "output": [
            {"type": "reasoning", "id": "rs_gen-1", "summary": [],
             "encrypted_content": crate::api::pack_reasoning(&[json!({
                "type": "reasoning.text", "text": "add", "signature": "sig-1",
                "format": "anthropic-claude-v1", "index": 0})])},
            {"type": "message", "id": "msg_gen-1", "status": "completed", "role": "assistant",
             "content": [{"type": "output_text", "text": "4", "annotations": []}]}
        ]
    }));
    Record::new(out, input, None, 1_000, 30)
}

#[test]
fn a_record_keeps_input_output_and_expiry() {
    let r = turn_one();
    assert_eq!(r.id, "gen-1");
    assert_eq!(r.expires_at, 1_000 + 30 * 86_400);
    assert!(!r.expired(1_000 + 30 * 86_400 - 1));
    assert!(r.expired(1_000 + 30 * 86_400));
    assert_eq!(
        r.input,
        vec![
            json!({"type": "message", "role": "user", "id": "msg_gen-1_0",
            "content": [{"type": "input_text", "text": "What is 2+2?"}]})
        ]
    );
    let v = serde_json::to_value(&r.response).unwrap();
    assert_eq!(v["store"], json!(true));
    assert_eq!(v["previous_response_id"], Value::Null);
    assert_eq!(v["model"], json!("anthropic/claude"));
    let back: Record = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}

/// The second turn rebuilt from the first as the chat request it becomes: the user's
/// question, the assistant's answer with its thinking signature, the new question.
#[test]
fn the_next_turn_is_rebuilt_from_the_stored_items() {
    let r = turn_one();
    let new = input_items(
        json!([{"role": "user", "content": "And times 3?"}]),
        "gen-2",
    )
    .unwrap();
    let items = r.next_input(new);
    assert_eq!(items.len(), 4);
    let mut b = body(json!({"model": "openai/gpt", "input": items}));
    b.insert("instructions".into(), json!("Be brief"));
    let req = ResponsesRequest::parse(&serde_json::to_vec(&b).unwrap()).unwrap();
    let chat = ChatRequest::try_from(req).unwrap();
    let roles: Vec<Role> = chat.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        vec![Role::System, Role::User, Role::Assistant, Role::User]
    );
    let answer = &chat.messages[2];
    assert_eq!(
        answer.content,
        Some(crate::api::Content::Parts(vec![
            crate::api::ContentPart::text("4")
        ]))
    );
    assert_eq!(
        answer.extra["reasoning_details"],
        json!([{"type": "reasoning.text", "text": "add", "signature": "sig-1",
            "format": "anthropic-claude-v1", "index": 0}])
    );
    assert_eq!(
        chat.messages[1].content,
        Some(crate::api::Content::Parts(vec![
            crate::api::ContentPart::text("What is 2+2?")
        ]))
    );
    assert_eq!(
        chat.messages[3].content,
        Some(crate::api::Content::Text("And times 3?".into()))
    );
}

#[test]
fn input_items_name_each_item_and_keep_given_ids() {
    let items = input_items(
        json!([
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            {"type": "message", "id": "mine", "role": "user", "content": "x"}
        ]),
        "gen-9",
    )
    .unwrap();
    assert_eq!(items[0]["id"], json!("fco_gen-9_0"));
    assert_eq!(items[1]["id"], json!("mine"));
    assert_eq!(
        input_items(json!(3), "g").unwrap_err().to_string(),
        "input: must be a string or an array of items"
    );
}

fn five() -> Record {
    let items =
        (0..5).map(|i| json!({"type": "message", "role": "user", "content": format!("{i}")}));
    let input = input_items(Value::Array(items.collect()), "r").unwrap();
    Record::new(
        response(json!({"id": "r", "status": "completed"})),
        input,
        Some("q"),
        0,
        1,
    )
}

#[test]
fn input_items_list_pages_newest_first_by_default() {
    let r = five();
    let q = ListQuery::parse("limit=2").unwrap();
    let page = list(&r, &q);
    let v = serde_json::to_value(&page).unwrap();
    assert_eq!(v["object"], json!("list"));
    assert_eq!(v["first_id"], json!("msg_r_4"));
    assert_eq!(v["last_id"], json!("msg_r_3"));
    assert_eq!(v["has_more"], json!(true));
    let next = list(&r, &ListQuery::parse("limit=2&after=msg_r_3").unwrap());
    assert_eq!(next.first_id.as_deref(), Some("msg_r_2"));
    let asc = list(&r, &ListQuery::parse("order=asc&after=msg_r_2").unwrap());
    assert_eq!(asc.data.len(), 2);
    assert_eq!(
        (
            asc.first_id.as_deref(),
            asc.last_id.as_deref(),
            asc.has_more
        ),
        (Some("msg_r_3"), Some("msg_r_4"), false)
    );
    // An unknown cursor: an empty page.
    let none = list(&r, &ListQuery::parse("after=nope").unwrap());
    assert_eq!(
        (none.data.len(), none.first_id, none.has_more),
        (0, None, false)
    );
}

#[test]
fn list_query_names_bad_values() {
    let err = |q| ListQuery::parse(q).unwrap_err().to_string();
    assert_eq!(err("limit=0"), "limit: must be an integer from 1 to 100");
    assert_eq!(err("limit=101"), "limit: must be an integer from 1 to 100");
    assert_eq!(err("order=up"), "order: must be asc or desc");
    assert_eq!(ListQuery::parse("").unwrap().limit, 20);
}

#[test]
fn deleted_and_errors_have_openai_shapes() {
    assert_eq!(
        serde_json::to_value(Deleted::of("gen-1")).unwrap(),
        json!({"id": "gen-1", "object": "response", "deleted": true})
    );
    assert_eq!(not_found("x").status(), 404);
    assert_eq!(previous_not_found("x").status(), 400);
}

#[test]
fn capture_finds_the_final_response_at_every_split() {
    let stream = concat!(
        "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"g\",\"status\":\"in_progress\",\"output\":[]}}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"g\",\"status\":\"completed\",\"output\":[{\"type\":\"message\"}]}}\n\n",
    )
    .as_bytes();
    for split in 0..stream.len() {
        let mut c = Capture::default();
        let (a, b) = stream.split_at(split);
        c.feed(a);
        c.feed(b);
        let r = c.finish().unwrap();
        assert_eq!((r.id.as_str(), r.output.len()), ("g", 1));
    }
    let mut failed = Capture::default();
    failed.feed(b"data: {\"type\":\"response.failed\",\"response\":{\"id\":\"g\",\"status\":\"failed\"}}\n\n");
    assert_eq!(failed.finish(), None);
}

#[test]
fn new_items_are_checked_alone_by_shape_only() {
    use crate::api::responses::check_input;
    let lone_output = json!([{"type": "function_call_output", "call_id": "c1", "output": "18C"}]);
    assert!(check_input(lone_output).is_ok());
    let err = check_input(json!(["x", {"role": "wizard", "content": "x"}])).unwrap_err();
    assert!(err.to_string().starts_with("input[0]: "), "{err}");
    let err = check_input(json!([{"role": "wizard", "content": "x"}])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("input[0].role: unknown role \"wizard\""),
        "{err}"
    );
}

//! The Responses API's objects as the specification (OpenAI's API reference and the Open
//! Responses specification) requires them: every required field present, nullable ones as
//! `null` rather than missing, enums within their values. Written from the specification's
//! facts; a schema-validating client (the OpenAI SDKs' typed models, the Open Responses
//! compliance suite) rejects what these reject.

use serde_json::Value;

fn is_int(v: &Value) -> bool {
    v.is_i64() || v.is_u64()
}

fn field<'a>(o: &'a Value, k: &str) -> &'a Value {
    o.get(k)
        .unwrap_or_else(|| panic!("`{k}` is missing (nullable fields must be present): {o}"))
}

fn nullable(o: &Value, k: &str, check: fn(&Value) -> bool) {
    let v = field(o, k);
    assert!(v.is_null() || check(v), "`{k}` has the wrong type: {o}");
}

fn one_of(o: &Value, k: &str, values: &[&str]) {
    let v = field(o, k)
        .as_str()
        .unwrap_or_else(|| panic!("`{k}` is not a string: {o}"));
    assert!(
        values.contains(&v),
        "`{k}` = {v:?} is not one of {values:?}"
    );
}

/// A response object (`POST /v1/responses`, a stream's `response.*` events, `GET`).
pub fn response(r: &Value) {
    assert!(
        field(r, "id").as_str().is_some_and(|s| !s.is_empty()),
        "{r}"
    );
    assert_eq!(field(r, "object"), "response");
    assert!(is_int(field(r, "created_at")), "{r}");
    nullable(r, "completed_at", is_int);
    one_of(
        r,
        "status",
        &[
            "completed",
            "failed",
            "in_progress",
            "cancelled",
            "queued",
            "incomplete",
        ],
    );
    nullable(r, "incomplete_details", |d| {
        d.get("reason")
            .and_then(Value::as_str)
            .is_some_and(|x| ["max_output_tokens", "content_filter"].contains(&x))
    });
    assert!(field(r, "model").is_string());
    nullable(r, "previous_response_id", Value::is_string);
    nullable(r, "instructions", |v| v.is_string() || v.is_array());
    for item in field(r, "output").as_array().expect("output is an array") {
        output_item(item);
    }
    nullable(r, "error", |e| {
        e["code"].is_string() && e["message"].is_string()
    });
    assert!(field(r, "tools").is_array());
    let choice = field(r, "tool_choice");
    assert!(
        choice
            .as_str()
            .is_some_and(|c| ["auto", "none", "required"].contains(&c))
            || choice.is_object(),
        "{r}"
    );
    one_of(r, "truncation", &["auto", "disabled"]);
    assert!(field(r, "parallel_tool_calls").is_boolean());
    let text = field(r, "text");
    assert!(
        text["format"]["type"]
            .as_str()
            .is_some_and(|t| ["text", "json_object", "json_schema"].contains(&t)),
        "{r}"
    );
    for k in [
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "temperature",
    ] {
        assert!(field(r, k).is_number(), "`{k}`: {r}");
    }
    assert!(is_int(field(r, "top_logprobs")));
    nullable(r, "reasoning", Value::is_object);
    nullable(r, "usage", |u| {
        is_int(&u["input_tokens"])
            && is_int(&u["output_tokens"])
            && is_int(&u["total_tokens"])
            && is_int(&u["input_tokens_details"]["cached_tokens"])
            && is_int(&u["output_tokens_details"]["reasoning_tokens"])
    });
    nullable(r, "max_output_tokens", is_int);
    nullable(r, "max_tool_calls", is_int);
    assert!(field(r, "store").is_boolean());
    assert!(field(r, "background").is_boolean());
    assert!(field(r, "service_tier").is_string());
    assert!(field(r, "metadata").is_object());
    nullable(r, "safety_identifier", Value::is_string);
    nullable(r, "prompt_cache_key", Value::is_string);
    // Terminal states carry what they promise.
    match r["status"].as_str() {
        Some("completed") => assert!(is_int(&r["completed_at"]), "{r}"),
        Some("failed") => assert!(r["error"].is_object(), "{r}"),
        Some("incomplete") => assert!(r["incomplete_details"].is_object(), "{r}"),
        _ => {}
    }
}

/// An output item.
pub fn output_item(i: &Value) {
    assert!(
        field(i, "id").as_str().is_some_and(|s| !s.is_empty()),
        "{i}"
    );
    match field(i, "type").as_str() {
        Some("message") => {
            one_of(i, "status", &["in_progress", "completed", "incomplete"]);
            assert_eq!(field(i, "role"), "assistant");
            for part in field(i, "content").as_array().expect("content") {
                content_part(part);
            }
        }
        Some("function_call") => {
            one_of(i, "status", &["in_progress", "completed", "incomplete"]);
            for k in ["call_id", "name", "arguments"] {
                assert!(field(i, k).is_string(), "`{k}`: {i}");
            }
        }
        Some("reasoning") => {
            assert!(field(i, "summary").is_array());
            // Optional, and a string when present: not nullable in the Open Responses
            // specification (its compliance suite rejects `null`).
            assert!(
                i.get("encrypted_content").is_none_or(Value::is_string),
                "`encrypted_content` is not a string: {i}"
            );
            for part in i
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                content_part(part);
            }
        }
        other => panic!("an output item of type {other:?}: {i}"),
    }
}

/// A content part of an output item.
pub fn content_part(p: &Value) {
    match field(p, "type").as_str() {
        Some("output_text") => {
            assert!(field(p, "text").is_string());
            assert!(field(p, "annotations").is_array());
            assert!(field(p, "logprobs").is_array());
        }
        Some("refusal") => assert!(field(p, "refusal").is_string()),
        Some("reasoning_text" | "summary_text") => assert!(field(p, "text").is_string()),
        other => panic!("a content part of type {other:?}: {p}"),
    }
}

/// A stream: `sequence_number` from 0 up by one, `type` equal to the SSE event name, the
/// first event `response.created`, exactly one terminal event and it last; every response
/// and item inside valid; deltas reference items that were added.
pub fn stream(events: &[(String, Value)]) {
    assert!(!events.is_empty());
    let mut added = std::collections::HashSet::new();
    for (n, (name, e)) in events.iter().enumerate() {
        assert_eq!(e["type"], name.as_str(), "{e}");
        assert_eq!(e["sequence_number"], n, "{e}");
        if let Some(r) = e.get("response") {
            response(r);
        }
        if let Some(item) = e.get("item") {
            output_item(item);
            assert!(is_int(&e["output_index"]), "{e}");
            added.insert(item["id"].as_str().unwrap().to_owned());
        }
        if let Some(part) = e.get("part") {
            content_part(part);
        }
        if let Some(id) = e.get("item_id") {
            assert!(
                added.contains(id.as_str().unwrap()),
                "an event before its item: {e}"
            );
            assert!(is_int(&e["output_index"]), "{e}");
        }
        if name.ends_with(".delta") {
            assert!(e["delta"].is_string(), "{e}");
        }
    }
    assert_eq!(events[0].0, "response.created");
    let terminal = [
        "response.completed",
        "response.incomplete",
        "response.failed",
    ];
    let ends: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, (n, _))| terminal.contains(&n.as_str()))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(ends, [events.len() - 1], "one terminal event, last");
}

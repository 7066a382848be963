//! Findings of the Open Responses compliance suite (`tests/openresponses/run`), kept as
//! regression tests that need neither the suite nor npm: each one failed before its fix.

use llmgate_tests::{MockProvider, TestGateway};
use serde_json::{json, Value};

use super::{conformance, events, openai, post, KEY};

/// A reasoning model's answer (a mock that sends `reasoning_content`): its `reasoning` item
/// has no `encrypted_content: null`, which the specification's schema rejects (an optional
/// string, not nullable), streamed and not. The suite failed `basic-response` and
/// `streaming-response` with `output.0: Invalid input` on a reasoning deployment.
#[tokio::test]
async fn a_reasoning_item_has_no_null_encrypted_content() {
    let mock = MockProvider::start_tool_caller().await;
    let gw = TestGateway::start(&openai(&mock)).await.with_key(KEY);
    let body = json!({"model": "gpt", "input": "hello there", "reasoning": {"effort": "low"}});
    let res = post(&gw, &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    conformance::response(&v);
    let item = &v["output"][0];
    assert_eq!(item["type"], "reasoning", "{v}");
    assert_eq!(item["content"][0]["text"], "thinking about: hello there");
    assert_eq!(item.get("encrypted_content"), None, "{item}");
    assert_eq!(mock.last_request().unwrap().json["reasoning_effort"], "low");

    let mut body = body;
    body["stream"] = json!(true);
    let ev = events(&gw, &body).await;
    let reasoning_items: Vec<&Value> = ev
        .iter()
        .filter_map(|(_, e)| e.get("item"))
        .filter(|i| i["type"] == "reasoning")
        .collect();
    assert_eq!(reasoning_items.len(), 2, "added and done: {ev:?}");
    for item in reasoning_items {
        assert_eq!(item.get("encrypted_content"), None, "{item}");
    }
    let (_, last) = ev.last().unwrap();
    assert_eq!(last["type"], "response.completed");
    assert_eq!(last["response"]["output"][0].get("encrypted_content"), None);
}

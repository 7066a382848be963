//! `POST /v1/messages`, what reaches the provider (docs/anthropic-clients.md): the client's
//! `anthropic-version` and `anthropic-beta` headers stay at the gateway; a text `document`,
//! `tool_choice: none` and `top_p` are translated; `fallbacks` and `drop_params` in the body
//! act as on `/v1/chat/completions`; a matched stop sequence is reported as `end_turn`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::Method;
use llmgate_tests::{Behaviour, MockProvider, TestGateway};
use serde_json::{json, Value};

const KEY: &str = "sk-master";

/// A client's headers, with an Anthropic version and a beta the gateway never sends itself.
const HEADERS: &[(&str, &str)] = &[
    ("x-api-key", KEY),
    ("anthropic-version", "2099-01-01"),
    ("anthropic-beta", "client-beta-2099-01-01"),
];

/// `name` served by an OpenAI-compatible upstream at `api_base`.
fn openai(name: &str, api_base: &str) -> String {
    format!("  - model_name: {name}\n    litellm_params:\n      model: openai/gpt-4o\n      api_base: {api_base}\n      api_key: sk-up\n")
}

/// `name` served by Anthropic at `api_base`.
fn anthropic(name: &str, api_base: &str) -> String {
    format!("  - model_name: {name}\n    litellm_params:\n      model: anthropic/claude-sonnet-4-20250514\n      api_base: {api_base}\n      api_key: sk-ant-up\n")
}

fn config(entries: &[String], extra: &str) -> String {
    format!(
        "model_list:\n{}general_settings:\n  master_key: {KEY}\n{extra}",
        entries.concat()
    )
}

fn hello(model: &str) -> Value {
    json!({"model": model, "max_tokens": 256,
        "messages": [{"role": "user", "content": "hello there"}]})
}

async fn post(gw: &TestGateway, body: &Value) -> llmgate_tests::TestResponse {
    gw.send(Method::POST, "/v1/messages", body.to_string(), HEADERS)
        .await
}

#[tokio::test]
async fn anthropic_headers_are_accepted_and_not_forwarded() {
    let (openai_up, claude_up) = (
        MockProvider::start().await,
        MockProvider::start_anthropic().await,
    );
    let gw = TestGateway::start(&config(
        &[
            openai("gpt", &openai_up.v1_url()),
            anthropic("claude", &claude_up.base_url()),
        ],
        "",
    ))
    .await;
    for (model, mock) in [("gpt", &openai_up), ("claude", &claude_up)] {
        let res = post(&gw, &hello(model)).await;
        assert_eq!(res.status, 200, "{model}: {}", res.text());
        assert_eq!(res.json()["type"], "message");
        let up = mock.last_request().unwrap();
        assert_eq!(
            up.header("anthropic-beta"),
            None,
            "{model}: {:?}",
            up.headers
        );
        assert_ne!(
            up.header("anthropic-version"),
            Some("2099-01-01"),
            "{model}: the client's version was forwarded"
        );
    }
    // The OpenAI-compatible provider gets no Anthropic header at all.
    assert_eq!(
        openai_up
            .last_request()
            .unwrap()
            .header("anthropic-version"),
        None
    );
}

#[tokio::test]
async fn a_text_document_tool_choice_none_and_top_p_are_translated() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&config(&[openai("gpt", &mock.v1_url())], "")).await;
    let body = json!({
        "model": "gpt", "max_tokens": 64, "top_p": 0.25,
        "tools": [{"name": "Bash", "description": "Run a command",
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}],
        "tool_choice": {"type": "none"},
        "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                "data": "The notes say 42."}},
            {"type": "text", "text": "What do the notes say?"}]}]
    });
    let res = post(&gw, &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let up = mock.last_request().unwrap().json;
    assert_eq!(up["top_p"], 0.25, "{up}");
    assert_eq!(up["tool_choice"], "none", "{up}");
    assert_eq!(up["tools"][0]["function"]["name"], "Bash", "{up}");
    assert_eq!(
        up["messages"],
        json!([{"role": "user", "content": [
            {"type": "text", "text": "The notes say 42."},
            {"type": "text", "text": "What do the notes say?"}]}]),
        "{up}"
    );
}

#[tokio::test]
async fn fallbacks_in_a_messages_body_are_followed() {
    let (primary, chosen) = (
        MockProvider::start().await,
        MockProvider::start_anthropic().await,
    );
    primary.set_default(Behaviour::error(503, "down"));
    let gw = TestGateway::start(&config(
        &[
            openai("primary", &primary.v1_url()),
            anthropic("chosen", &chosen.base_url()),
        ],
        "router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n",
    ))
    .await;
    let mut body = hello("primary");
    body["fallbacks"] = json!(["chosen"]);
    let res = post(&gw, &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-llmgate-model-group"), Some("chosen"));
    assert_eq!(res.json()["type"], "message");
    assert_eq!(primary.request_count(), 1);
    let up = chosen.last_request().unwrap();
    assert_eq!(up.path, "/v1/messages");
    assert!(up.json.get("fallbacks").is_none(), "{}", up.json);

    // Without them the primary's error is the answer.
    let res = post(&gw, &hello("primary")).await;
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(chosen.request_count(), 1);
}

/// `seed` is a parameter Anthropic cannot take (docs/providers.md): refused with a 400 naming
/// it, dropped when the body says `drop_params: true`.
#[tokio::test]
async fn drop_params_in_a_messages_body_drops_what_the_provider_cannot_take() {
    let mock = MockProvider::start_anthropic().await;
    let gw = TestGateway::start(&config(&[anthropic("claude", &mock.base_url())], "")).await;
    let mut body = hello("claude");
    body["seed"] = json!(7);
    let res = post(&gw, &body).await;
    assert_eq!(res.status, 400, "{}", res.text());
    assert!(res.text().contains("seed"), "{}", res.text());
    assert_eq!(mock.request_count(), 0);

    body["drop_params"] = json!(true);
    let res = post(&gw, &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let up = mock.last_request().unwrap().json;
    assert!(up.get("seed").is_none(), "{up}");
    assert!(up.get("drop_params").is_none(), "{up}");
}

/// The answer never says which stop sequence matched: `end_turn` and `stop_sequence: null`,
/// from an OpenAI-compatible upstream (whose answer cannot say) and from Anthropic (whose
/// answer does).
#[tokio::test]
async fn a_matched_stop_sequence_is_reported_as_end_turn() {
    let (openai_up, claude_up) = (
        MockProvider::start().await,
        MockProvider::start_anthropic().await,
    );
    let gw = TestGateway::start(&config(
        &[
            openai("gpt", &openai_up.v1_url()),
            anthropic("claude", &claude_up.base_url()),
        ],
        "",
    ))
    .await;
    let mut body = hello("gpt");
    body["stop_sequences"] = json!(["reply"]);
    let res = post(&gw, &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        openai_up.last_request().unwrap().json["stop"],
        json!(["reply"])
    );
    let v = res.json();
    assert_eq!(v["stop_reason"], "end_turn", "{v}");
    assert_eq!(v["stop_sequence"], Value::Null, "{v}");

    // Anthropic cuts its answer before the sequence and says so; the client is told end_turn.
    body["model"] = json!("claude");
    let res = post(&gw, &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        claude_up.last_request().unwrap().json["stop_sequences"],
        json!(["reply"])
    );
    let v = res.json();
    assert_eq!(v["content"][0]["text"], "mock ", "{v}");
    assert_eq!(v["stop_reason"], "end_turn", "{v}");
    assert_eq!(v["stop_sequence"], Value::Null, "{v}");
}

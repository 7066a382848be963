//! The Ollama dialect against the mock Ollama server: what Ollama receives (`/api/chat`,
//! `/api/generate`, `/api/embed`), what the client gets back in OpenAI's shape, tools both
//! ways, errors, and unsupported parameters. Streams are in `ollama/stream.rs`, embeddings
//! and legacy completions in `ollama/endpoints.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers: a failure is the test failing"
)]

mod common;
#[path = "ollama/endpoints.rs"]
mod endpoints;
#[path = "ollama/stream.rs"]
mod stream;

use std::time::Duration;

use common::*;
use http::{HeaderName, HeaderValue};
use llmgate_core::{DeploymentSpec, Endpoint, ErrorContract, ProviderKind};
use llmgate_testkit::{Behaviour, MockProvider};
use serde_json::{json, Value};

/// An Ollama deployment on `mock`, upstream model `upstream-model`, no key.
fn ollama(mock: &MockProvider) -> DeploymentSpec {
    let mut d = spec("ol-0", ProviderKind::Ollama, &mock.base_url());
    d.api_key = None;
    d
}

fn chat_body(messages: Value) -> Value {
    json!({"model": "group", "messages": messages})
}

#[tokio::test]
async fn chat_is_translated_both_ways() {
    let mock = MockProvider::start_ollama().await;
    let mut body = chat("hello there", false);
    body["temperature"] = json!(0.5);
    body["max_tokens"] = json!(50);
    body["seed"] = json!(7);
    let res = call(Endpoint::ChatCompletions, &body, ollama(&mock))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(deployment_of(&res), "ol-0");
    assert_eq!(total(usage_of(&res).get()), 7);
    let v = json(&bytes(res).await);
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"), "{v}");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(
        v,
        json!({
            "id": v["id"], "object": "chat.completion", "created": v["created"],
            "model": "upstream-model",
            "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop",
                         "message": {"role": "assistant",
                                     "content": "mock reply to: hello there"}}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}
        })
    );

    let got = mock.last_request().unwrap();
    assert_eq!(got.method, "POST");
    assert_eq!(got.path_and_query, "/api/chat");
    assert_eq!(got.header("authorization"), None);
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(
        got.json,
        json!({"model": "upstream-model",
               "messages": [{"role": "user", "content": "hello there"}],
               "stream": false,
               "options": {"temperature": 0.5, "num_predict": 50, "seed": 7}})
    );
}

#[tokio::test]
async fn key_headers_and_bases() {
    let mock = MockProvider::start_ollama().await;
    // A key is sent as Bearer (Ollama behind a proxy); the deployment's headers win.
    let mut d = spec(
        "ol-1",
        ProviderKind::OllamaChat,
        &format!("{}/v1/", mock.base_url()),
    );
    d.headers = vec![
        (
            HeaderName::from_static("x-team"),
            HeaderValue::from_static("a"),
        ),
        (
            HeaderName::from_static("content-type"),
            HeaderValue::from_static("application/json; charset=utf-8"),
        ),
    ];
    call(Endpoint::ChatCompletions, &chat("hi", false), d)
        .await
        .unwrap();
    let got = mock.last_request().unwrap();
    // A base ending in /v1 (Ollama's OpenAI-compatible API) still reaches the native API.
    assert_eq!(got.path, "/api/chat");
    assert_eq!(got.bearer_token(), Some("sk-test"));
    assert_eq!(got.header("x-team"), Some("a"));
    assert_eq!(
        got.header("content-type"),
        Some("application/json; charset=utf-8")
    );

    // Defaults fill what the client did not set; the client wins.
    let mut d = ollama(&mock);
    d.default_params.insert("num_ctx".into(), json!(8192));
    d.default_params.insert("temperature".into(), json!(0.1));
    d.default_params.insert("keep_alive".into(), json!("30m"));
    let mut body = chat("hi", false);
    body["temperature"] = json!(0.9);
    call(Endpoint::ChatCompletions, &body, d).await.unwrap();
    let got = mock.last_request().unwrap().json;
    assert_eq!(got["options"], json!({"temperature": 0.9, "num_ctx": 8192}));
    assert_eq!(got["keep_alive"], "30m");
}

#[tokio::test]
async fn system_multi_turn_images_tools_and_format() {
    let mock = MockProvider::start_ollama().await;
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]);
    let mut body = chat_body(json!([
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
        ]}
    ]));
    body["tools"] = tools.clone();
    body["tool_choice"] = json!("auto");
    body["stop"] = json!("###");
    body["response_format"] = json!({"type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema}});
    body["top_k"] = json!(40);
    call(Endpoint::ChatCompletions, &body, ollama(&mock))
        .await
        .unwrap();
    assert_eq!(
        mock.last_request().unwrap().json,
        json!({
            "model": "upstream-model",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "What is in this picture?", "images": ["/9j/4AAQ"]}
            ],
            "stream": false,
            "tools": tools,
            "format": schema,
            "options": {"stop": ["###"], "top_k": 40}
        })
    );
}

#[tokio::test]
async fn tool_calls_both_ways() {
    let mock = MockProvider::start_ollama().await;
    // Ollama's answer with a tool call: arguments are an object, and older versions send no id.
    mock.push(Behaviour::json(
        200,
        &json!({"model": "qwen3", "created_at": "2025-05-27T22:54:57.641643Z",
            "message": {"role": "assistant", "content": "", "thinking": "I should look it up.",
                "tool_calls": [{"function": {"name": "get_weather",
                                             "arguments": {"city": "Toronto"}}}]},
            "done": true, "done_reason": "stop", "prompt_eval_count": 20, "eval_count": 12}),
    ));
    let mut body = chat("Weather in Toronto?", false);
    body["tools"] = json!([{"type": "function", "function": {"name": "get_weather"}}]);
    let res = call(Endpoint::ChatCompletions, &body, ollama(&mock))
        .await
        .unwrap();
    let v = json(&bytes(res).await);
    assert_eq!(v["created"], 1_748_386_497);
    assert_eq!(v["model"], "qwen3");
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    assert_eq!(
        choice["message"]["reasoning_content"],
        "I should look it up."
    );
    let call0 = &choice["message"]["tool_calls"][0];
    let id = call0["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("call_"), "{id}");
    assert_eq!(
        call0,
        &json!({"id": id, "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Toronto\"}"}})
    );
    assert_eq!(v["usage"]["total_tokens"], 32);

    // The client sends the call and its result back: arguments become an object again
    // (the mock, like Ollama, rejects a string), the result names its tool.
    let body = chat_body(json!([
        {"role": "user", "content": "Weather in Toronto?"},
        {"role": "assistant", "content": null, "tool_calls": [call0]},
        {"role": "tool", "tool_call_id": id, "content": "{\"temp\": 21}"}
    ]));
    let res = call(Endpoint::ChatCompletions, &body, ollama(&mock))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        mock.last_request().unwrap().json["messages"],
        json!([
            {"role": "user", "content": "Weather in Toronto?"},
            {"role": "assistant", "content": "",
             "tool_calls": [{"function": {"name": "get_weather",
                                          "arguments": {"city": "Toronto"}}}]},
            {"role": "tool", "content": "{\"temp\": 21}", "tool_name": "get_weather"}
        ])
    );
}

#[tokio::test]
async fn ollama_errors_keep_status_and_message() {
    let mock = MockProvider::start_ollama().await;
    for (status, message, retryable, code) in [
        (
            404,
            "model \"upstream-model\" not found, try pulling it first",
            false,
            Some("model_not_found"),
        ),
        (
            400,
            "invalid format: expected \"json\" or a JSON schema",
            false,
            None,
        ),
        (
            500,
            "llama runner process has terminated: exit status 2",
            true,
            None,
        ),
        (
            503,
            "server busy, please try again.  maximum pending requests exceeded",
            true,
            Some("service_unavailable"),
        ),
    ] {
        for stream in [false, true] {
            mock.push(Behaviour::ollama_error(status, message));
            let e = call_err(
                Endpoint::ChatCompletions,
                &chat("hi", stream),
                ollama(&mock),
            )
            .await;
            assert_eq!(e.status().as_u16(), status, "{}", e.message());
            assert_eq!(e.retryable(), retryable, "{status}");
            assert_eq!(e.code().as_deref(), code, "{status}");
            assert_eq!(e.message(), format!("ollama (deployment ol-0): {message}"));
        }
    }
    // Not JSON at all (a proxy in front of Ollama).
    mock.push(Behaviour::Status {
        status: http::StatusCode::BAD_GATEWAY,
        body: bytes::Bytes::from_static(b"<html>bad gateway</html>"),
        headers: http::HeaderMap::new(),
    });
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), ollama(&mock)).await;
    assert_eq!(e.status(), 502);
    assert!(e.retryable());
    assert!(e.message().ends_with("<html>bad gateway</html>"));
}

#[tokio::test]
async fn invalid_and_cut_bodies_are_502() {
    let mock = MockProvider::start_ollama().await;
    mock.push(Behaviour::InvalidBody);
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), ollama(&mock)).await;
    assert_eq!(e.status(), 502);
    assert!(e.retryable());
    assert_eq!(e.code().as_deref(), Some("invalid_upstream_response"));

    // A 200 without a message is not an answer either.
    mock.push(Behaviour::json(200, &json!({"model": "m", "done": true})));
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), ollama(&mock)).await;
    assert_eq!(e.status(), 502);

    mock.push(Behaviour::cut_after(1));
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), ollama(&mock)).await;
    assert_eq!(e.status(), 502);
    assert!(e.retryable());

    // A slow Ollama runs into the deployment's timeout.
    mock.push(Behaviour::Ok.delayed(Duration::from_secs(5)));
    let mut d = ollama(&mock);
    d.timeout = Some(Duration::from_millis(100));
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d).await;
    assert_eq!(e.status(), 408);
}

#[tokio::test]
async fn unsupported_parameters_fail_unless_dropped() {
    let mock = MockProvider::start_ollama().await;
    let mut body = chat("hi", false);
    body["user"] = json!("user-1234");
    body["logit_bias"] = json!({"50256": -100});
    let e = call_err(Endpoint::ChatCompletions, &body, ollama(&mock)).await;
    assert_eq!(e.status(), 400);
    assert!(!e.retryable());
    assert_eq!(e.code().as_deref(), Some("unsupported_parameter"));
    assert!(e.message().contains("drop_params"), "{}", e.message());
    assert_eq!(mock.request_count(), 0, "nothing is sent");

    // The request's drop_params.
    body["drop_params"] = json!(true);
    call(Endpoint::ChatCompletions, &body, ollama(&mock))
        .await
        .unwrap();
    let got = mock.last_request().unwrap().json;
    assert_eq!(
        got,
        json!({"model": "upstream-model", "messages": [{"role": "user", "content": "hi"}],
               "stream": false})
    );

    // The deployment's drop_params; a remote image is dropped, the text stays.
    let mut d = ollama(&mock);
    d.drop_params = true;
    let body = chat_body(json!([{"role": "user", "content": [
        {"type": "text", "text": "describe"},
        {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}}]}]));
    call(Endpoint::ChatCompletions, &body, d).await.unwrap();
    assert_eq!(
        mock.last_request().unwrap().json["messages"],
        json!([{"role": "user", "content": "describe"}])
    );
    let e = call_err(Endpoint::ChatCompletions, &body, ollama(&mock)).await;
    assert_eq!(e.param().as_deref(), Some("image_url (remote)"));
}

#[tokio::test]
async fn usage_has_no_invented_details() {
    // Ollama reports no cached or reasoning tokens: none are made up.
    let mock = MockProvider::start_ollama().await;
    let res = call(Endpoint::ChatCompletions, &chat("hi", false), ollama(&mock))
        .await
        .unwrap();
    let u = usage_of(&res).get().cloned().unwrap();
    assert_eq!(u.prompt_tokens_details, None);
    assert_eq!(u.completion_tokens_details, None);
    // An answer without counts (a cached prompt) still has usage, with zeros.
    mock.push(Behaviour::json(
        200,
        &json!({"model": "m", "message": {"role": "assistant", "content": "x"}, "done": true}),
    ));
    let res = call(Endpoint::ChatCompletions, &chat("hi", false), ollama(&mock))
        .await
        .unwrap();
    let v = json(&bytes(res).await);
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    );
}

/// Health probes: Ollama's `GET /api/tags` (no model is loaded); `None` for providers that
/// have no cheaper probe than a completion.
#[tokio::test]
async fn probe_asks_ollama_for_its_tags_and_no_one_else() {
    let mock = MockProvider::start_ollama().await;
    let svc = service();
    svc.probe(&ollama(&mock)).await.unwrap().unwrap();
    let seen = mock.last_request().unwrap();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("GET", "/api/tags")
    );

    let down = spec("ol-1", ProviderKind::OllamaChat, &refused_base().await);
    let e = llmgate_core::ApiError::from_box(svc.probe(&down).await.unwrap().unwrap_err());
    assert_eq!(e.status(), 502, "{}", e.message());

    let openai = spec("oa-0", ProviderKind::OpenAi, &mock.base_url());
    assert!(svc.probe(&openai).await.is_none());
}

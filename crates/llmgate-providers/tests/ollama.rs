//! The Ollama dialect against the mock Ollama server: what Ollama receives (`/api/chat`,
//! `/api/generate`, `/api/embed`), what the client gets back in OpenAI's shape, streams
//! event by event, tools both ways, errors, and unsupported parameters.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers: a failure is the test failing"
)]

mod common;

use std::time::Duration;

use common::*;
use http::{HeaderName, HeaderValue};
use http_body_util::BodyExt;
use llmgate_core::{DeploymentSpec, Endpoint, ErrorContract, ProviderKind};
use llmgate_testkit::{Behaviour, Gate, MockProvider};
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
async fn stream_is_translated_chunk_by_chunk() {
    let mock = MockProvider::start_ollama().await;
    let mut body = chat("hello there", true);
    body["stream_options"] = json!({"include_usage": true});
    let res = call(Endpoint::ChatCompletions, &body, ollama(&mock))
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let slot = usage_of(&res);
    let chunks = common::chunks(&bytes(res).await);
    assert_eq!(mock.last_request().unwrap().json["stream"], true);
    // Role + first word, 4 more words, the finish chunk, the usage chunk.
    assert_eq!(chunks.len(), 7, "{chunks:#?}");
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "mock "})
    );
    assert_eq!(streamed_text(&chunks), "mock reply to: hello there");
    let id = &chunks[0]["id"];
    for c in &chunks {
        assert_eq!(&c["id"], id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "upstream-model");
    }
    assert_eq!(
        chunks[5]["choices"],
        json!([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    );
    assert_eq!(chunks[6]["choices"], json!([]));
    assert_eq!(
        chunks[6]["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7})
    );
    assert_eq!(total(slot.get()), 7);

    // Without include_usage: no usage chunk, but metering still gets it.
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hello there", true),
        ollama(&mock),
    )
    .await
    .unwrap();
    let slot = usage_of(&res);
    let plain = common::chunks(&bytes(res).await);
    assert_eq!(plain.len(), 6);
    assert!(plain.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(total(slot.get()), 7);
}

#[tokio::test]
async fn stream_events_go_out_as_they_arrive() {
    let mock = MockProvider::start_ollama().await;
    let gate = Gate::new();
    mock.push(Behaviour::gated(&gate, 1));
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hello there", true),
        ollama(&mock),
    )
    .await
    .unwrap();
    let mut body = res.into_body();
    // The first line's chunk reaches the client while Ollama holds the rest.
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the first chunk is not held back")
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    let first = sse_data(&first);
    assert_eq!(first.len(), 1);
    let v: Value = serde_json::from_str(&first[0]).unwrap();
    assert_eq!(v["choices"][0]["delta"]["content"], "mock ");
    assert!(!gate.is_released());
    gate.release();
    let rest = body.collect().await.unwrap().to_bytes();
    let rest = chunks(&rest);
    assert_eq!(rest.last().unwrap()["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn streamed_tool_call() {
    let mock = MockProvider::start_ollama().await;
    mock.push(Behaviour::ndjson(&[
        json!({"model": "qwen3", "created_at": "2025-05-27T22:54:57Z",
               "message": {"role": "assistant", "content": "", "thinking": "Let me check"},
               "done": false}),
        json!({"model": "qwen3", "created_at": "2025-05-27T22:54:58Z",
               "message": {"role": "assistant", "content": "", "tool_calls": [
                   {"id": "call_abc", "function": {"index": 0, "name": "get_weather",
                                                    "arguments": {"city": "Toronto"}}},
                   {"function": {"index": 1, "name": "get_time", "arguments": {}}}]},
               "done": false}),
        json!({"model": "qwen3", "created_at": "2025-05-27T22:54:59Z",
               "message": {"role": "assistant", "content": ""}, "done": true,
               "done_reason": "stop", "prompt_eval_count": 30, "eval_count": 9}),
    ]));
    let res = call(
        Endpoint::ChatCompletions,
        &chat("weather?", true),
        ollama(&mock),
    )
    .await
    .unwrap();
    let slot = usage_of(&res);
    let chunks = chunks(&bytes(res).await);
    let deltas: Vec<Value> = chunks
        .iter()
        .map(|c| c["choices"][0]["delta"].clone())
        .collect();
    assert_eq!(
        deltas[0],
        json!({"role": "assistant", "content": "", "reasoning_content": "Let me check"})
    );
    assert_eq!(
        deltas[1],
        json!({"tool_calls": [{"index": 0, "id": "call_abc", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]})
    );
    assert_eq!(
        deltas[2],
        json!({"tool_calls": [{"index": 0,
                               "function": {"arguments": "{\"city\":\"Toronto\"}"}}]})
    );
    assert_eq!(deltas[3]["tool_calls"][0]["index"], 1);
    assert_eq!(deltas[3]["tool_calls"][0]["function"]["name"], "get_time");
    assert!(deltas[3]["tool_calls"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("call_"));
    assert_eq!(deltas[4]["tool_calls"][0]["function"]["arguments"], "{}");
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks.len(), 6);
    assert_eq!(chunks[0]["created"], 1_748_386_497);
    assert_eq!(total(slot.get()), 39);
}

/// The `data:` payloads of a stream that ended with an error event.
async fn broken_stream(mock: &MockProvider) -> (Vec<String>, Value) {
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hello there", true),
        ollama(mock),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let mut data = sse_data(&bytes(res).await);
    let last: Value = serde_json::from_str(&data.pop().unwrap()).unwrap();
    assert!(!data.iter().any(|d| d == "[DONE]"), "{data:?}");
    (data, last["error"].clone())
}

#[tokio::test]
async fn streams_that_break_end_with_an_error_event() {
    let mock = MockProvider::start_ollama().await;
    mock.push(Behaviour::ndjson(&[
        json!({"model": "m", "created_at": "2025-05-27T22:54:57Z",
               "message": {"role": "assistant", "content": "Hel"}, "done": false}),
        json!({"error": "an error was encountered while running the model: unexpected EOF"}),
    ]));
    let (data, error) = broken_stream(&mock).await;
    assert_eq!(data.len(), 1);
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("an error was encountered while running the model"));

    mock.push(Behaviour::cut_after(2));
    let (data, error) = broken_stream(&mock).await;
    assert_eq!(data.len(), 2);
    assert_eq!(error["code"], "upstream_stream_broken");

    mock.push(Behaviour::InvalidBody);
    let (data, error) = broken_stream(&mock).await;
    assert!(data.is_empty());
    assert_eq!(error["code"], "invalid_upstream_response");
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
async fn embeddings_floats_and_base64() {
    let mock = MockProvider::start_ollama().await;
    let res = call(
        Endpoint::Embeddings,
        &json!({"model": "group", "input": ["hello world", "bye"], "dimensions": 4}),
        ollama(&mock),
    )
    .await
    .unwrap();
    assert_eq!(total(usage_of(&res).get()), 3);
    let v = json(&bytes(res).await);
    let got = mock.last_request().unwrap();
    assert_eq!(got.path, "/api/embed");
    assert_eq!(
        got.json,
        json!({"model": "upstream-model", "input": ["hello world", "bye"], "dimensions": 4})
    );
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "upstream-model");
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["object"], "embedding");
    assert_eq!(data[1]["index"], 1);
    let floats: Vec<f64> = data[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(floats.len(), 4);

    // base64 (what OpenAI's Python SDK asks for by default): the same floats, as f32 bytes.
    let res = call(
        Endpoint::Embeddings,
        &json!({"model": "group", "input": "hello world", "dimensions": 4,
                "encoding_format": "base64"}),
        ollama(&mock),
    )
    .await
    .unwrap();
    let v = json(&bytes(res).await);
    assert!(mock
        .last_request()
        .unwrap()
        .json
        .get("encoding_format")
        .is_none());
    let b64 = v["data"][0]["embedding"].as_str().unwrap();
    assert_eq!(b64.len(), 24, "4 f32 = 16 bytes = 24 base64 characters");

    let e = call_err(
        Endpoint::Embeddings,
        &json!({"model": "group", "input": [[1, 2, 3]]}),
        ollama(&mock),
    )
    .await;
    assert_eq!(e.status(), 400);
    assert_eq!(e.code().as_deref(), Some("unsupported_endpoint"));
}

#[tokio::test]
async fn legacy_completions_use_generate() {
    let mock = MockProvider::start_ollama().await;
    let res = call(
        Endpoint::Completions,
        &json!({"model": "group", "prompt": "Once upon a time", "max_tokens": 3}),
        ollama(&mock),
    )
    .await
    .unwrap();
    let v = json(&bytes(res).await);
    let got = mock.last_request().unwrap();
    assert_eq!(got.path, "/api/generate");
    assert_eq!(
        got.json,
        json!({"model": "upstream-model", "prompt": "Once upon a time", "stream": false,
               "options": {"num_predict": 3}})
    );
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["object"], "text_completion");
    assert_eq!(
        v["choices"],
        json!([{"text": "mock reply to:", "index": 0, "logprobs": null,
                "finish_reason": "length"}])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7})
    );

    let e = call_err(
        Endpoint::Completions,
        &json!({"model": "group", "prompt": "x", "stream": true}),
        ollama(&mock),
    )
    .await;
    assert_eq!(e.status(), 400);
    assert_eq!(e.code().as_deref(), Some("unsupported_endpoint"));
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

//! The Gemini dialect against the mock Gemini API: what Google receives (`generateContent`,
//! `streamGenerateContent?alt=sse`, `batchEmbedContents`), what the client gets back in
//! OpenAI's shape, tools both ways, usage, errors and unsupported parameters. Streams are in
//! `gemini/stream.rs`, embeddings and legacy completions in `gemini/endpoints.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers: a failure is the test failing"
)]

mod common;
#[path = "gemini/endpoints.rs"]
mod endpoints;
#[path = "gemini/stream.rs"]
mod stream;

use std::time::Duration;

use common::*;
use http::{HeaderName, HeaderValue};
use llmgate_core::{DeploymentSpec, Endpoint, ErrorContract, ProviderKind};
use llmgate_testkit::{Behaviour, MockProvider};
use serde_json::{json, Value};

/// A Gemini deployment on `mock`: upstream model `upstream-model`, key `sk-test`.
fn gemini(mock: &MockProvider) -> DeploymentSpec {
    spec("gm-0", ProviderKind::Gemini, &mock.base_url())
}

fn chat_body(messages: Value) -> Value {
    json!({"model": "group", "messages": messages})
}

#[tokio::test]
async fn chat_is_translated_both_ways() {
    let mock = MockProvider::start_gemini().await;
    let mut body = chat("hello there", false);
    body["temperature"] = json!(0.5);
    body["max_tokens"] = json!(50);
    let res = call(Endpoint::ChatCompletions, &body, gemini(&mock))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(deployment_of(&res), "gm-0");
    assert_eq!(total(usage_of(&res).get()), 7);
    let v = json(&bytes(res).await);
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(
        v,
        json!({
            "id": "mock-resp-000001", "object": "chat.completion", "created": v["created"],
            "model": "upstream-model",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant",
                                     "content": "mock reply to: hello there"}}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}
        })
    );

    let got = mock.last_request().unwrap();
    assert_eq!(got.method, "POST");
    assert_eq!(
        got.path_and_query,
        "/v1beta/models/upstream-model:generateContent"
    );
    assert_eq!(got.header("x-goog-api-key"), Some("sk-test"));
    assert_eq!(got.header("authorization"), None);
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(
        got.json,
        json!({"contents": [{"role": "user", "parts": [{"text": "hello there"}]}],
               "generationConfig": {"temperature": 0.5, "maxOutputTokens": 50}})
    );
}

#[tokio::test]
async fn headers_bases_and_defaults() {
    let mock = MockProvider::start_gemini().await;
    let mut d = gemini(&mock);
    d.api_base = Some(format!("{}/v1beta/", mock.base_url()).into());
    d.headers.push((
        HeaderName::from_static("x-goog-api-key"),
        HeaderValue::from_static("from-headers"),
    ));
    d.headers.push((
        HeaderName::from_static("x-goog-user-project"),
        HeaderValue::from_static("p-1"),
    ));
    d.default_params.insert("temperature".into(), json!(0.1));
    d.default_params.insert("top_p".into(), json!(0.8));
    d.default_params.insert(
        "safety_settings".into(),
        json!([{"category": "HARM_CATEGORY_HARASSMENT",
                                                  "threshold": "BLOCK_NONE"}]),
    );
    let mut body = chat("hi", false);
    body["temperature"] = json!(0.9);
    call(Endpoint::ChatCompletions, &body, d).await.unwrap();
    let got = mock.last_request().unwrap();
    assert_eq!(got.path, "/v1beta/models/upstream-model:generateContent");
    assert_eq!(got.header("x-goog-api-key"), Some("from-headers"));
    assert_eq!(got.header("x-goog-user-project"), Some("p-1"));
    assert_eq!(
        got.json,
        json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
               "generationConfig": {"temperature": 0.9, "topP": 0.8},
               "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]})
    );
}

#[tokio::test]
async fn system_multi_turn_images_and_json_schema() {
    let mock = MockProvider::start_gemini().await;
    let mut body = chat_body(json!([
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": [
            {"type": "text", "text": "And this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.test/cat.jpg"}}
        ]}
    ]));
    body["stop"] = json!(["\n\n"]);
    body["n"] = json!(2);
    body["seed"] = json!(42);
    body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "answer",
        "strict": true, "schema": {"$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object", "additionalProperties": false,
        "properties": {"value": {"type": ["integer", "null"]}}, "required": ["value"]}}});
    let res = call(Endpoint::ChatCompletions, &body, gemini(&mock))
        .await
        .unwrap();
    let v = json(&bytes(res).await);
    // Two candidates, two choices.
    assert_eq!(v["choices"].as_array().unwrap().len(), 2);
    assert_eq!(v["choices"][1]["index"], 1);
    assert_eq!(
        v["choices"][1]["message"]["content"],
        "mock reply to: And this?"
    );
    assert_eq!(
        mock.last_request().unwrap().json,
        json!({
            "systemInstruction": {"parts": [{"text": "You are terse."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "What is 2+2?"}]},
                {"role": "model", "parts": [{"text": "4"}]},
                {"role": "user", "parts": [
                    {"text": "And this?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.test/cat.jpg"}}
                ]}
            ],
            "generationConfig": {
                "stopSequences": ["\n\n"], "candidateCount": 2, "seed": 42,
                "responseMimeType": "application/json",
                "responseSchema": {"type": "object",
                    "properties": {"value": {"type": "integer", "nullable": true}},
                    "required": ["value"]}
            }
        })
    );
}

#[tokio::test]
async fn tool_calls_both_ways() {
    let mock = MockProvider::start_gemini().await;
    let tools = json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city", "strict": true,
        "parameters": {"type": "object", "additionalProperties": false,
                       "properties": {"city": {"type": "string"}, "unit": {"type": "string",
                                      "enum": ["c", "f"]}},
                       "required": ["city"]}}}]);
    let mut body = chat("weather in Paris?", false);
    body["tools"] = tools.clone();
    body["tool_choice"] = json!("required");
    let res = call(Endpoint::ChatCompletions, &body, gemini(&mock))
        .await
        .unwrap();
    let v = json(&bytes(res).await);
    let sent = mock.last_request().unwrap().json;
    // The mock rejects what Gemini rejects (additionalProperties, strict): it accepted it.
    assert_eq!(
        sent["tools"],
        json!([{"functionDeclarations": [{"name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                           "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}]}])
    );
    assert_eq!(
        sent["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call_0 = &choice["message"]["tool_calls"][0];
    assert_eq!(call_0["type"], "function");
    assert_eq!(
        call_0["function"],
        json!({"name": "get_weather", "arguments": "{\"city\":\"mock\"}"})
    );
    let id = call_0["id"].as_str().unwrap();
    assert!(id.starts_with("call_"), "{id}");

    // The client runs the tool and sends the result back.
    let mut body = chat_body(json!([
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [call_0]},
        {"role": "tool", "tool_call_id": id, "content": "{\"temp\": 21}"}
    ]));
    body["tools"] = tools;
    let res = call(Endpoint::ChatCompletions, &body, gemini(&mock))
        .await
        .unwrap();
    let v = json(&bytes(res).await);
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock reply to: get_weather returned {\"temp\":21}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        mock.last_request().unwrap().json["contents"],
        json!([
            {"role": "user", "parts": [{"text": "weather in Paris?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "mock"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                             "response": {"temp": 21}}}]}
        ])
    );
}

#[tokio::test]
async fn thought_signatures_round_trip() {
    let mock = MockProvider::start_gemini().await;
    mock.push(Behaviour::json(
        200,
        &json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "lookup", "args": {"q": "x"}}, "thoughtSignature": "CiQBc2ln"}]},
            "finishReason": "STOP", "index": 0}],
            "modelVersion": "gemini-3-pro-preview", "responseId": "r-3"}),
    ));
    let res = call(
        Endpoint::ChatCompletions,
        &chat("look it up", false),
        gemini(&mock),
    )
    .await
    .unwrap();
    let v = json(&bytes(res).await);
    let call_0 = v["choices"][0]["message"]["tool_calls"][0].clone();
    let id = call_0["id"].as_str().unwrap().to_owned();
    assert!(id.ends_with("__thought__CiQBc2ln"), "{id}");
    let body = chat_body(json!([
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "tool_calls": [call_0]},
        {"role": "tool", "tool_call_id": id, "content": "found"}
    ]));
    call(Endpoint::ChatCompletions, &body, gemini(&mock))
        .await
        .unwrap();
    let sent = mock.last_request().unwrap().json;
    assert_eq!(
        sent["contents"][1]["parts"][0],
        json!({"functionCall": {"name": "lookup", "args": {"q": "x"}}, "thoughtSignature": "CiQBc2ln"})
    );
    assert_eq!(
        sent["contents"][2]["parts"][0],
        json!({"functionResponse": {"name": "lookup", "response": {"content": "found"}}})
    );
}

#[tokio::test]
async fn usage_with_cached_and_reasoning_tokens() {
    let mock = MockProvider::start_gemini().await;
    mock.push(Behaviour::json(
        200,
        &json!({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "**Adding**", "thought": true}, {"text": "4"}]},
            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 1200, "candidatesTokenCount": 1,
                "totalTokenCount": 1251, "cachedContentTokenCount": 1024,
                "thoughtsTokenCount": 50},
            "modelVersion": "gemini-2.5-flash", "responseId": "r-1"}),
    ));
    let res = call(
        Endpoint::ChatCompletions,
        &chat("2+2?", false),
        gemini(&mock),
    )
    .await
    .unwrap();
    let slot = usage_of(&res);
    let v = json(&bytes(res).await);
    let expected = json!({"prompt_tokens": 1200, "completion_tokens": 51, "total_tokens": 1251,
                          "prompt_tokens_details": {"cached_tokens": 1024},
                          "completion_tokens_details": {"reasoning_tokens": 50}});
    assert_eq!(v["usage"], expected);
    assert_eq!(serde_json::to_value(slot.get().unwrap()).unwrap(), expected);
    assert_eq!(v["model"], "gemini-2.5-flash");
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"],
        "**Adding**"
    );
    assert_eq!(v["choices"][0]["message"]["content"], "4");

    // reasoning_effort asks the mock for thoughts.
    let mut d = gemini(&mock);
    d.model = "gemini-2.5-flash".into();
    let mut body = chat("hello there", false);
    body["reasoning_effort"] = json!("low");
    let res = call(Endpoint::ChatCompletions, &body, d).await.unwrap();
    let v = json(&bytes(res).await);
    assert_eq!(
        mock.last_request().unwrap().json["generationConfig"],
        json!({"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}})
    );
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"],
        "mock thought"
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 7, "total_tokens": 9,
               "completion_tokens_details": {"reasoning_tokens": 2}})
    );
}

#[tokio::test]
async fn finish_reasons_and_blocked_prompts() {
    let mock = MockProvider::start_gemini().await;
    let mut body = chat("one two three four", false);
    body["max_completion_tokens"] = json!(2);
    let res = call(Endpoint::ChatCompletions, &body, gemini(&mock))
        .await
        .unwrap();
    let v = json(&bytes(res).await);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["choices"][0]["message"]["content"], "mock reply");

    mock.push(Behaviour::json(
        200,
        &json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
                "modelVersion": "gemini-2.0-flash", "responseId": "r-b"}),
    ));
    let res = call(
        Endpoint::ChatCompletions,
        &chat("bad", false),
        gemini(&mock),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let v = json(&bytes(res).await);
    assert_eq!(
        v["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": null},
                "finish_reason": "content_filter"}])
    );
    assert_eq!(v["usage"]["prompt_tokens"], 8);

    mock.push(Behaviour::json(
        200,
        &json!({"candidates": [{"finishReason": "SAFETY", "index": 0,
                "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH"}]}]}),
    ));
    let res = call(
        Endpoint::ChatCompletions,
        &chat("bad", false),
        gemini(&mock),
    )
    .await
    .unwrap();
    let v = json(&bytes(res).await);
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
}

#[tokio::test]
async fn google_errors_keep_status_and_message() {
    let mock = MockProvider::start_gemini().await;
    for (status, message, retryable, kind, code) in [
        (
            400,
            "API key not valid. Please pass a valid API key.",
            false,
            "invalid_request_error",
            "INVALID_ARGUMENT",
        ),
        (
            403,
            "Method doesn't allow unregistered callers",
            false,
            "permission_error",
            "PERMISSION_DENIED",
        ),
        (
            404,
            "models/upstream-model is not found for API version v1beta",
            false,
            "not_found_error",
            "NOT_FOUND",
        ),
        (
            429,
            "Resource has been exhausted (e.g. check quota).",
            true,
            "rate_limit_error",
            "RESOURCE_EXHAUSTED",
        ),
        (
            500,
            "An internal error has occurred.",
            true,
            "api_error",
            "INTERNAL",
        ),
        (
            503,
            "The model is overloaded. Please try again later.",
            true,
            "api_error",
            "UNAVAILABLE",
        ),
        (
            504,
            "Deadline expired before operation could complete.",
            true,
            "timeout_error",
            "DEADLINE_EXCEEDED",
        ),
    ] {
        mock.push(Behaviour::gemini_error(status, message));
        let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), gemini(&mock)).await;
        assert_eq!(e.status().as_u16(), status);
        assert_eq!(e.retryable(), retryable, "{status}");
        assert_eq!(e.error_type().as_str(), kind, "{status}");
        assert_eq!(e.code().as_deref(), Some(code), "{status}");
        assert_eq!(e.message(), format!("gemini (deployment gm-0): {message}"));
    }
    // A quota error's RetryInfo is the Retry-After.
    mock.push(Behaviour::json(
        429,
        &json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}),
    ));
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), gemini(&mock)).await;
    assert_eq!(e.retry_after(), Some(Duration::from_secs(37)));
    // The mock's own 400 for what Gemini rejects reaches the client as it is.
    let e = call_err(
        Endpoint::ChatCompletions,
        &chat_body(json!([{"role": "system", "content": "only a system message"}])),
        gemini(&mock),
    )
    .await;
    assert_eq!(e.status(), 400);
    assert!(
        e.message().contains("contents is not specified"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn invalid_and_cut_bodies_are_502() {
    let mock = MockProvider::start_gemini().await;
    mock.push(Behaviour::InvalidBody);
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), gemini(&mock)).await;
    assert_eq!(e.status(), 502);
    assert!(e.retryable());
    assert_eq!(e.code().as_deref(), Some("invalid_upstream_response"));

    mock.push(Behaviour::json(200, &json!({"candidates": []})));
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), gemini(&mock)).await;
    assert_eq!(e.status(), 502);

    mock.push(Behaviour::cut_after(1));
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), gemini(&mock)).await;
    assert_eq!(e.status(), 502);
    assert!(e.retryable());
}

#[tokio::test]
async fn deadlines_apply() {
    let mock = MockProvider::start_gemini().await;
    mock.push(Behaviour::Ok.delayed(Duration::from_secs(5)));
    let mut d = gemini(&mock);
    d.timeout = Some(Duration::from_millis(100));
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d).await;
    assert_eq!(e.status(), 408);
    assert!(e.retryable());
}

#[tokio::test]
async fn unsupported_parameters_fail_unless_dropped() {
    let mock = MockProvider::start_gemini().await;
    for (extra, param) in [
        (json!({"logit_bias": {"50256": -100}}), "logit_bias"),
        (json!({"user": "user-1"}), "user"),
        (json!({"logprobs": true, "top_logprobs": 2}), "logprobs"),
        (json!({"my_knob": 3}), "my_knob"),
    ] {
        let mut body = chat("hi", false);
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let e = call_err(Endpoint::ChatCompletions, &body, gemini(&mock)).await;
        assert_eq!(e.status(), 400);
        assert!(!e.retryable());
        assert_eq!(e.code().as_deref(), Some("unsupported_parameter"));
        assert!(
            e.message().contains(&format!("`{param}`")),
            "{}",
            e.message()
        );

        // With drop_params (the request's or the deployment's) they are not sent.
        let mut dropped = body.clone();
        dropped["drop_params"] = json!(true);
        call(Endpoint::ChatCompletions, &dropped, gemini(&mock))
            .await
            .unwrap();
        let mut d = gemini(&mock);
        d.drop_params = true;
        call(Endpoint::ChatCompletions, &body, d).await.unwrap();
        let sent = mock.last_request().unwrap().json;
        assert_eq!(
            sent,
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
        );
    }
    // Nothing was sent for the failed requests.
    assert_eq!(mock.request_count(), 8);
}

//! The Anthropic dialect against the testkit's Anthropic mock: what the upstream receives,
//! answers and streams in OpenAI's shape, tools both ways, usage with cache tokens, errors,
//! `drop_params`, and the endpoints Anthropic does not have.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers: a failure is the test failing"
)]

mod common;

use common::*;
use http::{HeaderName, HeaderValue};
use http_body_util::BodyExt;
use llmgate_core::{Endpoint, ErrorContract, ProviderKind};
use llmgate_testkit::{Behaviour, Gate, MockProvider};
use serde_json::{json, Value};

fn claude(mock: &MockProvider) -> llmgate_core::DeploymentSpec {
    spec("claude-0", ProviderKind::Anthropic, &mock.base_url())
}

fn sse(events: &[Value]) -> Behaviour {
    let text: String = events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
        .collect();
    Behaviour::Status {
        status: http::StatusCode::OK,
        body: text.into(),
        headers: [(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        )]
        .into_iter()
        .collect(),
    }
}

#[tokio::test]
async fn chat_is_translated_both_ways() {
    let mock = MockProvider::start_anthropic().await;
    let mut d = claude(&mock);
    d.headers.push((
        HeaderName::from_static("anthropic-beta"),
        HeaderValue::from_static("prompt-caching-2024-07-31"),
    ));
    d.default_params.insert("temperature".into(), json!(0.2));
    d.default_params.insert("top_k".into(), json!(7));
    let body = json!({"model": "group", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there"}],
        "temperature": 0.9, "stop": ["XYZ"]});
    let res = call(Endpoint::ChatCompletions, &body, d).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(deployment_of(&res), "claude-0");
    let slot = usage_of(&res);
    let v = json(&bytes(res).await);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["id"], "msg_mock000001");
    assert_eq!(v["model"], "upstream-model");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": "mock reply to: hello there"})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // 4 words in (system and user), 5 out; cache counts reported as 0.
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9,
            "prompt_tokens_details": {"cached_tokens": 0}, "cache_creation_input_tokens": 0})
    );
    assert_eq!(total(slot.get()), 9);

    let got = mock.last_request().unwrap();
    assert_eq!(got.path_and_query, "/v1/messages");
    assert_eq!(got.header("x-api-key"), Some("sk-test"));
    assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        got.header("anthropic-beta"),
        Some("prompt-caching-2024-07-31")
    );
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("authorization"), None);
    assert_eq!(
        got.json,
        json!({"model": "upstream-model", "max_tokens": 4096, "system": "be brief",
            "messages": [{"role": "user", "content": "hello there"}],
            "stop_sequences": ["XYZ"], "temperature": 0.9, "top_k": 7})
    );
}

#[tokio::test]
async fn stream_is_translated_event_by_event() {
    let mock = MockProvider::start_anthropic().await;
    let gate = Gate::new();
    // message_start, content_block_start, ping and the first word, then wait.
    mock.push(Behaviour::gated(&gate, 4));
    let mut body = chat("hello there", true);
    body["stream_options"] = json!({"include_usage": true});
    let res = call(Endpoint::ChatCompletions, &body, claude(&mock))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let slot = usage_of(&res);
    let mut body = res.into_body();
    let mut early = String::new();
    while !early.contains("\"content\":\"mock \"") {
        let frame = body.frame().await.unwrap().unwrap();
        early.push_str(std::str::from_utf8(&frame.into_data().unwrap()).unwrap());
    }
    assert!(early.contains("\"role\":\"assistant\""), "{early}");
    assert!(!gate.is_released());
    assert!(slot.get().is_none());
    gate.release();
    let mut rest = early;
    while let Some(frame) = body.frame().await {
        rest.push_str(std::str::from_utf8(&frame.unwrap().into_data().unwrap()).unwrap());
    }
    let all = chunks(rest.as_bytes());
    assert_eq!(streamed_text(&all), "mock reply to: hello there");
    assert!(all.iter().all(|c| c["id"] == "msg_mock000001"));
    assert!(all.iter().all(|c| c["object"] == "chat.completion.chunk"));
    let finish: Vec<_> = all
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["stop"]);
    let last = all.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 2);
    assert_eq!(last["usage"]["completion_tokens"], 5);
    assert_eq!(total(slot.get()), 7);
    assert_eq!(mock.last_request().unwrap().json["stream"], true);

    // Without include_usage: no usage chunk, but metering still gets it.
    let res = call(Endpoint::ChatCompletions, &chat("hi", true), claude(&mock))
        .await
        .unwrap();
    let slot = usage_of(&res);
    let chunks = chunks(&bytes(res).await);
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "{chunks:?}"
    );
    assert_eq!(total(slot.get()), 5);
}

#[tokio::test]
async fn tools_both_ways() {
    let mock = MockProvider::start_anthropic().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "description": "Weather", "parameters": {"type": "object",
        "properties": {"city": {"type": "string"}}}}}]);
    let body = json!({"model": "group", "messages": [{"role": "user", "content": "Paris?"}],
        "tools": tools, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}});
    let v = json(
        &bytes(
            call(Endpoint::ChatCompletions, &body, claude(&mock))
                .await
                .unwrap(),
        )
        .await,
    );
    let got = mock.last_request().unwrap().json;
    assert_eq!(
        got["tools"],
        json!([{"name": "get_weather", "description": "Weather", "input_schema":
            {"type": "object", "properties": {"city": {"type": "string"}}}}])
    );
    assert_eq!(
        got["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let msg = &v["choices"][0]["message"];
    assert_eq!(msg["content"], Value::Null);
    assert_eq!(
        msg["tool_calls"],
        json!([{"id": "toolu_mock01", "type": "function", "function":
            {"name": "get_weather", "arguments": "{\"mock\":\"Paris?\"}"}}])
    );

    // The call and its result go back as tool_use and tool_result.
    let body = json!({"model": "group", "tools": tools, "messages": [
        {"role": "user", "content": "Paris?"},
        msg,
        {"role": "tool", "tool_call_id": "toolu_mock01", "content": "sunny"}]});
    let v = json(
        &bytes(
            call(Endpoint::ChatCompletions, &body, claude(&mock))
                .await
                .unwrap(),
        )
        .await,
    );
    assert_eq!(
        mock.last_request().unwrap().json["messages"],
        json!([
            {"role": "user", "content": "Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_mock01",
                "name": "get_weather", "input": {"mock": "Paris?"}}]},
            {"role": "user", "content": [{"type": "tool_result",
                "tool_use_id": "toolu_mock01", "content": "sunny"}]}
        ])
    );
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock reply to: sunny"
    );

    // A streamed tool call: the id and name first, then the arguments in fragments.
    let mut body = json!({"model": "group", "stream": true, "tools": tools,
        "messages": [{"role": "user", "content": "Rome?"}], "tool_choice": "required"});
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    let res = call(Endpoint::ChatCompletions, &body, claude(&mock))
        .await
        .unwrap();
    let chunks = chunks(&bytes(res).await);
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(
        calls[0],
        &json!([{"id": "toolu_mock01", "type": "function", "index": 0,
            "function": {"name": "get_weather", "arguments": ""}}])
    );
    let args: String = calls[1..]
        .iter()
        .map(|c| {
            assert_eq!(c[0]["index"], 0);
            assert!(c[0].get("id").is_none());
            c[0]["function"]["arguments"].as_str().unwrap()
        })
        .collect();
    assert_eq!(args, "{\"mock\":\"Rome?\"}");
    assert!(calls.len() >= 3, "{calls:?}");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
}

#[tokio::test]
async fn usage_with_cache_and_thinking() {
    let mock = MockProvider::start_anthropic().await;
    mock.push(Behaviour::json(
        200,
        &json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "thinking", "thinking": "Let me think", "signature": "EqQB"},
                        {"type": "text", "text": "42"}],
            "stop_reason": "max_tokens", "stop_sequence": null,
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 200,
                "cache_read_input_tokens": 1000, "output_tokens": 30}}),
    ));
    let mut body = chat("q", false);
    body["reasoning_effort"] = json!("low");
    let res = call(Endpoint::ChatCompletions, &body, claude(&mock))
        .await
        .unwrap();
    let slot = usage_of(&res);
    let v = json(&bytes(res).await);
    assert_eq!(
        mock.last_request().unwrap().json["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert_eq!(v["model"], "claude-x");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let m = &v["choices"][0]["message"];
    assert_eq!(m["content"], "42");
    assert_eq!(m["reasoning_content"], "Let me think");
    assert_eq!(
        m["thinking_blocks"],
        json!([{"type": "thinking", "thinking": "Let me think", "signature": "EqQB"}])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 1210, "completion_tokens": 30, "total_tokens": 1240,
            "prompt_tokens_details": {"cached_tokens": 1000},
            "cache_creation_input_tokens": 200})
    );
    let u = slot.get().unwrap();
    assert_eq!(
        u.prompt_tokens_details.as_ref().unwrap().cached_tokens,
        Some(1000)
    );
}

#[tokio::test]
async fn errors_keep_status_message_and_retry_verdict() {
    let mock = MockProvider::start_anthropic().await;
    for (status, retryable, code) in [
        (400, false, "invalid_request_error"),
        (401, false, "authentication_error"),
        (403, false, "permission_error"),
        (404, false, "not_found_error"),
        (413, false, "request_too_large"),
        (429, true, "rate_limit_error"),
        (500, true, "api_error"),
        (529, true, "overloaded_error"),
    ] {
        mock.push(
            Behaviour::anthropic_error(status, format!("boom {status}"))
                .with_header("retry-after", "2"),
        );
        let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), claude(&mock)).await;
        assert_eq!(e.status().as_u16(), status);
        assert_eq!(e.retryable(), retryable, "{status}");
        assert_eq!(e.code().as_deref(), Some(code));
        assert_eq!(
            e.message(),
            format!("anthropic (deployment claude-0): boom {status}")
        );
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(2)));
    }
    // The mock checks the key like Anthropic does.
    let mut d = claude(&mock);
    d.api_key = None;
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d).await;
    assert_eq!(e.status(), 401);
    assert!(
        e.message().contains("x-api-key header is required"),
        "{}",
        e.message()
    );
    // Streams fail before their first byte the same way.
    mock.push(Behaviour::anthropic_error(529, "Overloaded"));
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", true), claude(&mock)).await;
    assert_eq!(e.status().as_u16(), 529);
    assert!(e.retryable());
}

#[tokio::test]
async fn broken_answers() {
    let mock = MockProvider::start_anthropic().await;
    mock.push(Behaviour::InvalidBody);
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), claude(&mock)).await;
    assert_eq!(e.status(), 502);
    assert!(e.retryable());
    assert_eq!(e.code().as_deref(), Some("invalid_upstream_response"));

    // An invalid stream event, a cut, an error event: one OpenAI error event, a clean end.
    mock.push(Behaviour::InvalidBody);
    let res = call(Endpoint::ChatCompletions, &chat("hi", true), claude(&mock))
        .await
        .unwrap();
    let data = sse_data(&bytes(res).await);
    assert_eq!(data.len(), 1, "{data:?}");
    assert!(data[0].contains("invalid_upstream_response"), "{data:?}");

    mock.push(Behaviour::cut_after(4));
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hi there", true),
        claude(&mock),
    )
    .await
    .unwrap();
    let data = sse_data(&bytes(res).await);
    assert!(data[0].contains("\"role\":\"assistant\""), "{data:?}");
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_stream_broken");

    mock.push(sse(&[
        json!({"type": "message_start", "message": {"id": "msg_9", "type": "message",
            "role": "assistant", "content": [], "model": "m", "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "par"}}),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ]));
    let res = call(Endpoint::ChatCompletions, &chat("hi", true), claude(&mock))
        .await
        .unwrap();
    let data = sse_data(&bytes(res).await);
    assert_eq!(data.len(), 3, "{data:?}");
    assert!(data[1].contains("\"content\":\"par\""), "{data:?}");
    let last: Value = serde_json::from_str(&data[2]).unwrap();
    assert_eq!(last["error"]["code"], "overloaded_error");
    assert!(last["error"]["message"]
        .as_str()
        .unwrap()
        .ends_with("Overloaded"));
}

#[tokio::test]
async fn drop_params_on_and_off() {
    let mock = MockProvider::start_anthropic().await;
    let mut body = chat("hi", false);
    body["logit_bias"] = json!({"1": 5});
    body["frequency_penalty"] = json!(0.5);
    let e = call_err(Endpoint::ChatCompletions, &body, claude(&mock)).await;
    assert_eq!(e.status(), 400);
    assert!(!e.retryable());
    assert_eq!(e.code().as_deref(), Some("unsupported_parameter"));
    assert_eq!(e.param().as_deref(), Some("logit_bias"));
    assert_eq!(mock.request_count(), 0);

    body["drop_params"] = json!(true);
    let res = call(Endpoint::ChatCompletions, &body, claude(&mock))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got = mock.last_request().unwrap().json;
    assert!(
        got.get("logit_bias").is_none() && got.get("frequency_penalty").is_none(),
        "{got}"
    );

    let mut d = claude(&mock);
    d.drop_params = true;
    let mut body = chat("hi", false);
    body["n"] = json!(3);
    assert_eq!(
        call(Endpoint::ChatCompletions, &body, d)
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn json_response_format_uses_a_forced_tool() {
    let mock = MockProvider::start_anthropic().await;
    mock.push(Behaviour::reply(r#"{"city":"Paris"}"#));
    let mut body = chat("capital of France?", false);
    body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "c",
        "schema": {"type": "object", "properties": {"city": {"type": "string"}}}}});
    let v = json(
        &bytes(
            call(Endpoint::ChatCompletions, &body, claude(&mock))
                .await
                .unwrap(),
        )
        .await,
    );
    let got = mock.last_request().unwrap().json;
    assert_eq!(
        got["tool_choice"],
        json!({"type": "tool", "name": "json_tool_call"})
    );
    assert_eq!(got["tools"][0]["name"], "json_tool_call");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    mock.push(Behaviour::reply(r#"{"city":"Paris"}"#));
    body["stream"] = json!(true);
    let chunks = chunks(
        &bytes(
            call(Endpoint::ChatCompletions, &body, claude(&mock))
                .await
                .unwrap(),
        )
        .await,
    );
    assert_eq!(streamed_text(&chunks), "{\"city\":\"Paris\"}");
    assert!(chunks
        .iter()
        .all(|c| c["choices"][0]["delta"].get("tool_calls").is_none()));
}

#[tokio::test]
async fn endpoints_anthropic_lacks() {
    let mock = MockProvider::start_anthropic().await;
    let e = call_err(
        Endpoint::Embeddings,
        &json!({"model": "group", "input": "x"}),
        claude(&mock),
    )
    .await;
    assert_eq!(e.status(), 400);
    assert_eq!(e.code().as_deref(), Some("unsupported_endpoint"));
    assert!(e.message().contains("/v1/embeddings"), "{}", e.message());
    let e = call_err(
        Endpoint::Completions,
        &json!({"model": "group", "prompt": "x"}),
        claude(&mock),
    )
    .await;
    assert_eq!(e.code().as_deref(), Some("unsupported_endpoint"));
    assert_eq!(mock.request_count(), 0);
}

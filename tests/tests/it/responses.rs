//! `POST /v1/responses` (OpenAI's Responses API) through the gateway, translated to chat
//! completions for each provider (OpenAI-compatible, Anthropic, Gemini, Ollama, Bedrock mocks),
//! streamed and not, with tools, multi-turn with `previous_response_id`, `GET`/`DELETE`,
//! a failure mid-stream, metering, and every object checked against the specification's
//! required fields (`responses/conformance.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod compact;
mod conformance;
mod layers;
mod native;
mod native_pins;
mod open_responses;
mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use http::Method;
use llmgate::metering::MemorySink;
use llmgate_tests::{Behaviour, MockProvider, TestGateway};
use serde_json::{json, Value};

const KEY: &str = "sk-master";

fn config(model: &str, params: &str) -> String {
    format!(
        "model_list:\n  - model_name: {model}\n    litellm_params: {{{params}}}\n    model_info: {{input_cost_per_token: 0.00001, output_cost_per_token: 0.00003}}\ngeneral_settings:\n  master_key: {KEY}\n"
    )
}

fn openai(mock: &MockProvider) -> String {
    config(
        "gpt",
        &format!(
            "model: openai/gpt-4o, api_base: {}, api_key: sk-up",
            mock.v1_url()
        ),
    )
}

async fn post(gw: &TestGateway, body: &Value) -> llmgate_tests::TestResponse {
    gw.send(Method::POST, "/v1/responses", body.to_string(), &[])
        .await
}

/// Every event of a stream as (name, data); no `[DONE]`.
async fn events(gw: &TestGateway, body: &Value) -> Vec<(String, Value)> {
    let mut s = gw.stream("/v1/responses", body).await;
    assert_eq!(s.status, 200);
    assert_eq!(
        s.headers.get("content-type").unwrap().to_str().unwrap(),
        "text/event-stream"
    );
    let mut out = Vec::new();
    while let Some((name, data)) = s.next_event().await {
        assert_ne!(data.trim(), "[DONE]", "the Responses API has no [DONE]");
        out.push((name, serde_json::from_str(&data).unwrap()));
    }
    conformance::stream(&out);
    out
}

fn text_of(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter())
        .filter_map(|p| p["text"].as_str())
        .collect()
}

#[tokio::test]
async fn a_text_answer_is_a_complete_response_object() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&openai(&mock)).await.with_key(KEY);
    let res = post(
        &gw,
        &json!({"model": "gpt", "instructions": "Be brief.", "input": "hello there",
        "max_output_tokens": 50, "metadata": {"k": "v"}}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert!(res.header("x-llmgate-request-id").is_some());
    let v = res.json();
    conformance::response(&v);
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(v["status"], "completed");
    assert_eq!(v["model"], "gpt");
    assert_eq!(v["instructions"], "Be brief.");
    assert_eq!(v["max_output_tokens"], 50);
    assert_eq!(v["metadata"], json!({"k": "v"}));
    assert_eq!(text_of(&v), "mock reply to: hello there");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        v["usage"]["total_tokens"],
        v["usage"]["input_tokens"].as_u64().unwrap()
            + v["usage"]["output_tokens"].as_u64().unwrap()
    );
    // What the provider received: a chat completion.
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    let sent = sent.json;
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}])
    );
    assert_eq!(sent["max_completion_tokens"], 50);
    // Metered like a chat completion.
    assert!(
        res.header("x-llmgate-response-cost")
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 0.0
    );
}

#[tokio::test]
async fn a_stream_is_the_responses_events_with_sequence_numbers() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&openai(&mock)).await.with_key(KEY);
    let ev = events(
        &gw,
        &json!({"model": "gpt", "input": "hello there", "stream": true}),
    )
    .await;
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    assert!(names.contains(&"response.output_text.delta"));
    assert_eq!(
        names[names.len() - 5..],
        [
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let deltas: String = ev
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, e)| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, "mock reply to: hello there");
    let done = &ev.last().unwrap().1["response"];
    assert_eq!(text_of(done), deltas);
    assert!(
        done["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{done}"
    );
    // Usage was asked of the upstream, for metering and the terminal event.
    let sent = mock.last_request().unwrap().json;
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn every_provider_is_translated_streamed_and_not() {
    let anthropic = MockProvider::start_anthropic().await;
    let gemini = MockProvider::start_gemini().await;
    let ollama = MockProvider::start_ollama().await;
    let bedrock = MockProvider::start_bedrock().await;
    let providers = [
        ("anthropic", format!("model: anthropic/claude-x, api_base: {}, api_key: k", anthropic.base_url())),
        ("gemini", format!("model: gemini/gemini-x, api_base: {}, api_key: k", gemini.base_url())),
        ("ollama", format!("model: ollama_chat/llama-x, api_base: {}", ollama.base_url())),
        ("bedrock", format!("model: bedrock/anthropic.claude-x, api_base: {}, api_key: {}, aws_region_name: us-west-2",
            bedrock.base_url(), llmgate_testkit::bedrock::API_KEY)),
    ];
    for (name, params) in providers {
        let gw = TestGateway::start(&config("m", &params))
            .await
            .with_key(KEY);
        let res = post(
            &gw,
            &json!({"model": "m", "instructions": "sys", "input": "hello there"}),
        )
        .await;
        assert_eq!(res.status, 200, "{name}: {}", res.text());
        let v = res.json();
        conformance::response(&v);
        assert_eq!(v["status"], "completed", "{name}: {v}");
        assert!(!text_of(&v).is_empty(), "{name}: {v}");
        assert!(
            v["usage"]["output_tokens"].as_u64().unwrap() > 0,
            "{name}: {v}"
        );

        let ev = events(
            &gw,
            &json!({"model": "m", "input": "hello there", "stream": true}),
        )
        .await;
        let (last, done) = ev.last().unwrap();
        assert_eq!(last, "response.completed", "{name}: {done}");
        assert_eq!(text_of(&done["response"]), text_of(&v), "{name}");
        assert!(
            done["response"]["usage"]["output_tokens"].as_u64().unwrap() > 0,
            "{name}: {done}"
        );
    }
}

fn tool_call_answer() -> Behaviour {
    Behaviour::json(
        200,
        &json!({"id": "chatcmpl-t", "object": "chat.completion", "created": 1,
        "model": "gpt-4o", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null, "tool_calls": [{"id": "call_7", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}),
    )
}

fn weather_tool() -> Value {
    json!([{"type": "function", "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
}

#[tokio::test]
async fn function_calls_round_trip_through_previous_response_id() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&openai(&mock)).await.with_key(KEY);
    mock.push(tool_call_answer());
    let first = post(
        &gw,
        &json!({"model": "gpt", "input": "weather in Paris?", "tools": weather_tool(),
        "tool_choice": "required"}),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.json();
    conformance::response(&first);
    assert_eq!(first["tools"][0]["name"], "get_weather");
    let call = &first["output"][0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["call_id"], "call_7");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["arguments"], "{\"city\":\"Paris\"}");
    let sent = mock.last_request().unwrap().json;
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(sent["tool_choice"], "required");

    // The client runs the tool and continues the conversation from the stored response.
    let second = post(&gw, &json!({"model": "gpt", "previous_response_id": first["id"],
        "tools": weather_tool(),
        "input": [{"type": "function_call_output", "call_id": "call_7", "output": "18C and sunny"}]})).await;
    assert_eq!(second.status, 200, "{}", second.text());
    let second = second.json();
    conformance::response(&second);
    assert_eq!(second["previous_response_id"], first["id"]);
    let sent = mock.last_request().unwrap().json;
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "tool_calls": [{"id": "call_7", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_7", "content": "18C and sunny"}])
    );
}

#[tokio::test]
async fn a_streamed_tool_call_is_function_call_argument_events() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&openai(&mock)).await.with_key(KEY);
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "c", "object": "chat.completion.chunk",
        "created": 1, "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut body = String::new();
    for c in [
        chunk(
            json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_9", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Rome\"}"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}),
    ] {
        body.push_str(&format!("data: {c}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    mock.push(Behaviour::Status {
        status: http::StatusCode::OK,
        body: body.into(),
        headers: [(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/event-stream"),
        )]
        .into_iter()
        .collect(),
    });
    let ev = events(&gw, &json!({"model": "gpt", "input": "weather in Rome?", "tools": weather_tool(), "stream": true})).await;
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(ev[5].1["arguments"], "{\"city\":\"Rome\"}");
    let done = &ev[7].1["response"];
    assert_eq!(done["output"][0]["call_id"], "call_9");
    assert_eq!(done["usage"]["total_tokens"], 13);
}

#[tokio::test]
async fn a_failure_mid_stream_ends_with_response_failed() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&openai(&mock)).await.with_key(KEY);
    // The role chunk and two words, then the connection is cut.
    mock.push(Behaviour::cut_after(3));
    let ev = events(
        &gw,
        &json!({"model": "gpt", "input": "hello there", "stream": true}),
    )
    .await;
    let (last, e) = ev.last().unwrap();
    assert_eq!(last, "response.failed", "{e}");
    assert_eq!(e["response"]["status"], "failed");
    assert!(
        e["response"]["error"]["message"].as_str().unwrap().len() > 5,
        "{e}"
    );
    // What was sent before the failure is in the failed response's output.
    assert!(text_of(&e["response"]).starts_with("mock"), "{e}");
}

#[tokio::test]
async fn errors_are_openai_shaped() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&openai(&mock)).await.with_key(KEY);
    let e = post(&gw, &json!({"model": "nope", "input": "x"}))
        .await
        .openai_error(400);
    assert!(e["message"].as_str().unwrap().contains("nope"), "{e}");
    let e = post(&gw, &json!({"input": "x"})).await.openai_error(400);
    assert_eq!(e["param"], "model");
    let e = post(
        &gw,
        &json!({"model": "gpt", "input": "x", "tools": [{"type": "web_search"}]}),
    )
    .await
    .openai_error(400);
    assert_eq!(e["param"], "tools");
    mock.push(Behaviour::error(429, "slow down"));
    mock.push(Behaviour::error(429, "slow down"));
    mock.push(Behaviour::error(429, "slow down"));
    let res = post(
        &gw,
        &json!({"model": "gpt", "input": "x", "num_retries": 0}),
    )
    .await;
    assert_eq!(res.status, 429, "{}", res.text());
    assert!(res.json()["error"].is_object());
    let wrong = TestGateway::start(&openai(&mock))
        .await
        .with_key("sk-wrong");
    post(&wrong, &json!({"model": "gpt", "input": "x"}))
        .await
        .openai_error(401);
    assert_eq!(
        gw.send(Method::PUT, "/v1/responses/resp_1", "", &[])
            .await
            .status,
        405
    );
}

/// A stream is metered from its terminal usage, never at zero, as a chat stream is.
#[tokio::test]
async fn a_stream_is_metered_with_a_cost() {
    let mock = MockProvider::start().await;
    let loaded = llmgate_config::from_yaml(
        &openai(&mock),
        Path::new("."),
        &HashMap::<String, String>::new(),
    )
    .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    let sink = MemorySink::new();
    let gateway = llmgate::Gateway::builder(loaded.config)
        .spend_sink(Arc::new(sink.clone()))
        .build()
        .unwrap();
    let gw = TestGateway::serve(gateway.clone()).await.with_key(KEY);
    let ev = events(
        &gw,
        &json!({"model": "gpt", "input": "hello there", "stream": true}),
    )
    .await;
    let usage = ev.last().unwrap().1["response"]["usage"].clone();
    gateway.flush_spend().await;
    let records = sink.records();
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r.tokens.prompt, usage["input_tokens"].as_u64().unwrap());
    assert_eq!(
        r.tokens.completion,
        usage["output_tokens"].as_u64().unwrap()
    );
    assert!(r.cost.unwrap() > 0.0, "{r:?}");
    assert!(!r.usage_estimated, "{r:?}");
}

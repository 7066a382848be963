//! `POST /v1/messages`: Anthropic-format clients (Claude Code, the Anthropic SDKs) through the
//! gateway, to an OpenAI-compatible upstream and to Anthropic, streamed and not, with tools,
//! and errors in Anthropic's shape.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::Method;
use llmgate_tests::{Behaviour, Gate, MockProvider, TestGateway};
use serde_json::{json, Value};

const KEY: &str = "sk-master";

/// Claude Code's `ANTHROPIC_API_KEY` way: the key as `x-api-key`.
const HEADERS: &[(&str, &str)] = &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")];

fn openai_config(api_base: &str) -> String {
    format!(
        "model_list:\n  - model_name: claude-sonnet-4\n    litellm_params:\n      model: openai/gpt-4o\n      api_base: {api_base}\n      api_key: sk-up\ngeneral_settings:\n  master_key: {KEY}\n"
    )
}

fn anthropic_config(api_base: &str) -> String {
    format!(
        "model_list:\n  - model_name: claude-sonnet-4\n    litellm_params:\n      model: anthropic/claude-sonnet-4-20250514\n      api_base: {api_base}\n      api_key: sk-ant-up\ngeneral_settings:\n  master_key: {KEY}\n"
    )
}

fn hello(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4", "max_tokens": 256, "stream": stream,
        "system": "Be brief.", "messages": [{"role": "user", "content": "hello there"}]})
}

async fn post(gw: &TestGateway, body: &Value) -> llmgate_tests::TestResponse {
    gw.send(Method::POST, "/v1/messages", body.to_string(), HEADERS)
        .await
}

/// Every remaining event as (name, JSON data), checking each data's `type` is its name.
async fn events(s: &mut llmgate_tests::TestStream) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    while let Some((name, data)) = s.next_event().await {
        let v: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(v["type"], name.as_str(), "{v}");
        out.push((name, v));
    }
    out
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

fn anthropic_error(res: &llmgate_tests::TestResponse, status: u16, kind: &str) -> String {
    assert_eq!(res.status.as_u16(), status, "{}", res.text());
    let v = res.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
    v["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn openai_upstream_answers_as_a_message() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&openai_config(&mock.v1_url())).await;
    let res = post(&gw, &hello(false)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert!(res.header("x-llmgate-request-id").is_some());
    let v = res.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "gpt-4o");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "mock reply to: hello there"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    // "Be brief. hello there": 4 words in; 5 out.
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 4, "output_tokens": 5, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0})
    );

    let up = mock.last_request().unwrap();
    assert_eq!(up.path, "/v1/chat/completions");
    assert_eq!(up.bearer_token(), Some("sk-up"));
    assert_eq!(
        up.json,
        json!({"model": "gpt-4o", "max_tokens": 256, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello there"}]})
    );
}

#[tokio::test]
async fn openai_upstream_streams_events_as_they_arrive() {
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    // The role chunk and the first word, then the upstream waits.
    mock.push(Behaviour::gated(&gate, 2));
    let gw = TestGateway::start(&openai_config(&mock.v1_url())).await;
    let mut s = gw.stream_with("/v1/messages", &hello(true), HEADERS).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.headers["content-type"], "text/event-stream");

    let mut early = Vec::new();
    while early.len() < 3 {
        let (name, data) = s.next_event().await.unwrap();
        early.push((name, serde_json::from_str::<Value>(&data).unwrap()));
    }
    assert_eq!(
        names(&early),
        [
            "message_start",
            "content_block_start",
            "content_block_delta"
        ]
    );
    assert_eq!(early[0].1["message"]["model"], "gpt-4o");
    assert_eq!(early[0].1["message"]["content"], json!([]));
    assert_eq!(
        early[2].1["delta"],
        json!({"type": "text_delta", "text": "mock "})
    );
    assert!(!gate.is_released());
    gate.release();

    let rest = events(&mut s).await;
    let mut all = early;
    all.extend(rest);
    let n = all.len();
    assert_eq!(
        names(&all[n - 4..]),
        [
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let text: String = all
        .iter()
        .filter_map(|(_, v)| v["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "mock reply to: hello there");
    assert_eq!(
        all[n - 2].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"input_tokens": 4, "output_tokens": 5, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0}})
    );
    // The gateway asked the upstream for usage, for message_delta.
    let up = mock.last_request().unwrap().json;
    assert_eq!(up["stream"], true);
    assert_eq!(up["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn tools_through_an_openai_upstream() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::json(
        200,
        &json!({"id": "chatcmpl-9", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"ls\"}"}}]}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}}),
    ));
    let gw = TestGateway::start(&openai_config(&mock.v1_url())).await;
    let tools = json!([{"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]);
    let body = json!({"model": "claude-sonnet-4", "max_tokens": 100, "tools": tools,
        "tool_choice": {"type": "any"},
        "messages": [{"role": "user", "content": "list files"}]});
    let v = post(&gw, &body).await.json();
    assert_eq!(
        v["content"],
        json!([{"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}}])
    );
    assert_eq!(v["stop_reason"], "tool_use");
    let up = mock.last_request().unwrap().json;
    assert_eq!(
        up["tools"],
        json!([{"type": "function", "function": {"name": "Bash",
            "description": "Run a shell command", "parameters": {"type": "object",
            "properties": {"command": {"type": "string"}}}}}])
    );
    assert_eq!(up["tool_choice"], "required");

    // The result goes back: tool_use -> tool_calls, tool_result -> a tool message.
    let body = json!({"model": "claude-sonnet-4", "max_tokens": 100, "tools": tools,
        "messages": [
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": v["content"]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "a.txt b.txt"}]}]});
    let v = post(&gw, &body).await.json();
    assert_eq!(v["content"][0]["text"], "mock reply to: list files");
    let up = mock.last_request().unwrap().json;
    assert_eq!(
        up["messages"],
        json!([
            {"role": "user", "content": "list files"},
            {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "Bash", "arguments": "{\"command\":\"ls\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a.txt b.txt"}])
    );

    // A streamed tool call.
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let sse: String = [
        chunk(json!({"role": "assistant", "content": null}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_2", "type": "function",
                "function": {"name": "Bash", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"command\""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": ":\"pwd\"}"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
    ]
    .iter()
    .map(|c| format!("data: {c}\n\n"))
    .chain(std::iter::once("data: [DONE]\n\n".to_owned()))
    .collect();
    mock.push(Behaviour::Status {
        status: http::StatusCode::OK,
        body: sse.into(),
        headers: [(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/event-stream"),
        )]
        .into_iter()
        .collect(),
    });
    let mut body = body;
    body["stream"] = json!(true);
    let mut s = gw.stream_with("/v1/messages", &body, HEADERS).await;
    let all = events(&mut s).await;
    assert_eq!(
        names(&all),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        all[1].1["content_block"],
        json!({"type": "tool_use", "id": "call_2", "name": "Bash", "input": {}})
    );
    let json: String = all
        .iter()
        .filter_map(|(_, v)| v["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(json, "{\"command\":\"pwd\"}");
    assert_eq!(all[5].1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn anthropic_upstream_round_trip() {
    let mock = MockProvider::start_anthropic().await;
    let gw = TestGateway::start(&anthropic_config(&mock.base_url()))
        .await
        .with_key(KEY);
    // Claude Code's shape: system blocks with cache_control, tools, thinking, metadata.
    let body = json!({
        "model": "claude-sonnet-4", "max_tokens": 2048,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "what is here?"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "look", "signature": "sig1"},
                {"type": "tool_use", "id": "toolu_1", "name": "LS", "input": {"path": "."}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "src"},
                {"type": "text", "text": "and?", "cache_control": {"type": "ephemeral"}}]}],
        "tools": [{"name": "LS", "description": "List", "input_schema": {"type": "object"}}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "user_abc"}, "temperature": 1
    });
    // Claude Code's ANTHROPIC_AUTH_TOKEN way: Authorization: Bearer.
    let res = gw
        .send(
            Method::POST,
            "/v1/messages?beta=true",
            body.to_string(),
            &[("anthropic-version", "2023-06-01")],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["id"], "msg_mock000001");
    assert_eq!(v["model"], "claude-sonnet-4-20250514");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "mock reply to: src and?"}])
    );
    let up = mock.last_request().unwrap();
    assert_eq!(up.path_and_query, "/v1/messages");
    assert_eq!(up.header("x-api-key"), Some("sk-ant-up"));
    assert_eq!(
        up.json,
        json!({
            "model": "claude-sonnet-4-20250514", "max_tokens": 2048, "temperature": 1.0,
            "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "what is here?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "look", "signature": "sig1"},
                    {"type": "tool_use", "id": "toolu_1", "name": "LS", "input": {"path": "."}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "src"},
                    {"type": "text", "text": "and?", "cache_control": {"type": "ephemeral"}}]}],
            "tools": [{"name": "LS", "description": "List", "input_schema": {"type": "object"}}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "metadata": {"user_id": "user_abc"}
        })
    );

    // Streamed, with a forced tool: Anthropic's events come back as Anthropic's events.
    let body = json!({"model": "claude-sonnet-4", "max_tokens": 100, "stream": true,
        "tools": [{"name": "LS", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "LS"},
        "messages": [{"role": "user", "content": "go"}]});
    let mut s = gw
        .stream_with(
            "/v1/messages",
            &body,
            &[("anthropic-version", "2023-06-01")],
        )
        .await;
    assert_eq!(s.status, 200);
    let all = events(&mut s).await;
    assert_eq!(
        names(&all),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(all[0].1["message"]["id"], "msg_mock000002");
    assert_eq!(
        all[1].1["content_block"],
        json!({"type": "tool_use", "id": "toolu_mock01", "name": "LS", "input": {}})
    );
    let json: String = all
        .iter()
        .filter_map(|(_, v)| v["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(json, "{\"mock\":\"go\"}");
    assert_eq!(all[5].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(all[5].1["usage"]["input_tokens"], 1);
}

#[tokio::test]
async fn errors_are_anthropic_shaped() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&openai_config(&mock.v1_url())).await;

    let res = gw
        .send(
            Method::POST,
            "/v1/messages",
            hello(false).to_string(),
            &[("x-api-key", "sk-wrong")],
        )
        .await;
    anthropic_error(&res, 401, "authentication_error");

    let mut body = hello(false);
    body["model"] = json!("nope");
    anthropic_error(&post(&gw, &body).await, 400, "invalid_request_error");

    let res = gw
        .send(Method::POST, "/v1/messages", "{not json", HEADERS)
        .await;
    let msg = anthropic_error(&res, 400, "invalid_request_error");
    assert!(msg.contains("invalid Messages API request body"), "{msg}");

    // A stream that breaks after its first event: an `error` event, then a clean end.
    mock.push(Behaviour::cut_after(2));
    let mut s = gw.stream_with("/v1/messages", &hello(true), HEADERS).await;
    assert_eq!(s.status, 200);
    let all = events(&mut s).await;
    assert_eq!(all[0].0, "message_start");
    let (name, last) = all.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(last["error"]["type"], "api_error");

    // (Last: the 429 cools the deployment down.)
    mock.push(Behaviour::error(429, "Rate limit reached").with_header("retry-after", "7"));
    let mut body = hello(false);
    body["num_retries"] = json!(0);
    let res = post(&gw, &body).await;
    let msg = anthropic_error(&res, 429, "rate_limit_error");
    assert!(msg.contains("Rate limit reached"), "{msg}");
    assert_eq!(res.header("retry-after"), Some("7"));

    // An Anthropic upstream's own error type survives the round trip.
    let claude = MockProvider::start_anthropic().await;
    claude.push(Behaviour::anthropic_error(529, "Overloaded"));
    let gw = TestGateway::start(&anthropic_config(&claude.base_url())).await;
    let mut body = hello(false);
    body["num_retries"] = json!(0);
    let msg = anthropic_error(&post(&gw, &body).await, 529, "overloaded_error");
    assert!(msg.ends_with("Overloaded"), "{msg}");
}

#[tokio::test]
async fn gateway_params_work_for_anthropic_clients() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&openai_config(&mock.v1_url())).await;
    let mut body = hello(false);
    body["mock_response"] = json!("mocked!");
    let v = post(&gw, &body).await.json();
    assert_eq!(v["content"][0]["text"], "mocked!");
    assert_eq!(mock.request_count(), 0);
    // GET is not the Messages API.
    let res = gw
        .send(Method::GET, "/v1/messages", bytes::Bytes::new(), HEADERS)
        .await;
    assert_eq!(res.status, 405);
}

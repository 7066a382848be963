//! Golden cases: a Responses request and the chat request it becomes.

use super::*;
use serde_json::json;

fn chat(body: Value) -> Value {
    chat_after(body, &[])
}

fn chat_after(body: Value, history: &[Value]) -> Value {
    let parsed = parse(body.to_string().as_bytes()).unwrap();
    serde_json::to_value(to_chat(&parsed, history).unwrap()).unwrap()
}

#[test]
fn text_instructions_and_params() {
    let v = chat(
        json!({"model": "m", "instructions": "Be brief.", "input": "hello",
        "max_output_tokens": 64, "temperature": 0.5, "top_p": 0.9, "user": "u1",
        "stream": true, "reasoning": {"effort": "low", "summary": "auto"},
        "parallel_tool_calls": false, "store": false, "metadata": {"a": "b"},
        "top_k": 5, "seed": 7, "truncation": "disabled", "include": ["reasoning.encrypted_content"]}),
    );
    assert_eq!(
        v,
        json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
            "max_completion_tokens": 64, "temperature": 0.5, "top_p": 0.9, "user": "u1",
            "reasoning_effort": "low", "parallel_tool_calls": false, "top_k": 5, "seed": 7,
            "messages": [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hello"}]})
    );
}

#[test]
fn items_parts_and_images() {
    let v = chat(json!({"model": "m", "input": [
        {"role": "developer", "content": "dev says"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "what is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,AA==", "detail": "high"},
            {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "auto"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A cat.", "annotations": []}]}]}));
    assert_eq!(
        v["messages"],
        json!([
            {"role": "system", "content": "dev says"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA==", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}}]},
            {"role": "assistant", "content": "A cat."}])
    );
}

#[test]
fn function_tools_calls_and_outputs_round_trip() {
    let v = chat(json!({"model": "m",
        "tools": [{"type": "function", "name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "input": [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "two calls"}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
            {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "21C"}]}]}));
    assert_eq!(
        v["tools"],
        json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}}])
    );
    assert_eq!(
        v["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(
        v["messages"],
        json!([
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "reasoning_content": "two calls", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": "21C"}])
    );
}

#[test]
fn json_schema_and_json_object() {
    let v = chat(
        json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema",
        "name": "person", "strict": true, "schema": {"type": "object"}}}}),
    );
    assert_eq!(
        v["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "person", "strict": true, "schema": {"type": "object"}}})
    );
    let v = chat(json!({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}}));
    assert_eq!(v["response_format"], json!({"type": "json_object"}));
    let v = chat(json!({"model": "m", "input": "x", "text": {"format": {"type": "text"}}}));
    assert!(v.get("response_format").is_none());
}

#[test]
fn history_comes_first_instructions_before_it() {
    let history = [
        json!({"type": "message", "role": "user", "content": "my name is Ann"}),
        json!({"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": "Hi Ann", "annotations": [], "logprobs": []}]}),
    ];
    let v = chat_after(
        json!({"model": "m", "instructions": "sys", "input": "my name?", "previous_response_id": "resp_1"}),
        &history,
    );
    assert_eq!(
        v["messages"],
        json!([{"role": "system", "content": "sys"},
            {"role": "user", "content": "my name is Ann"},
            {"role": "assistant", "content": "Hi Ann"},
            {"role": "user", "content": "my name?"}])
    );
}

#[test]
fn gateway_params_taken_and_bad_requests_rejected() {
    let parsed = parse(br#"{"model": "m", "input": "x", "mock_response": "hi"}"#).unwrap();
    assert_eq!(parsed.gateway.mock_response.as_deref(), Some("hi"));
    assert!(!parsed.fields.contains_key("mock_response"));

    let bad = |body: Value| {
        let parsed = parse(body.to_string().as_bytes());
        let e = match parsed {
            Err(e) => e,
            Ok(p) => to_chat(&p, &[]).unwrap_err(),
        };
        assert_eq!(e.to_response().status(), 400);
        e.message().to_owned()
    };
    assert!(bad(json!({"input": "x"})).contains("`model`"));
    assert!(bad(json!({"model": "m", "input": 3})).contains("`input`"));
    assert!(
        bad(json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}))
            .contains("`web_search` tools are not translated")
    );
    assert!(
        bad(json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}))
            .contains("`item_reference`")
    );
    assert!(
        bad(json!({"model": "m", "input": [{"role": "tool", "content": "x"}]})).contains("role")
    );
    assert!(parse(b"{oops")
        .unwrap_err()
        .message()
        .contains("invalid Responses API request body"));
}

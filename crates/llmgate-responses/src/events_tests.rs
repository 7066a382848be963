//! Golden cases: a chat stream and the Responses events it becomes.

use super::*;
use crate::request;

fn convert(chunks: &[Value], done: bool) -> Vec<Value> {
    convert_for(
        br#"{"model": "m", "input": "hi", "stream": true}"#,
        chunks,
        done,
    )
}

fn convert_for(request: &[u8], chunks: &[Value], done: bool) -> Vec<Value> {
    let parsed = request::parse(request).unwrap();
    let mut c = Converter::new(object::base(&parsed, "resp_1", 1));
    let mut out = VecDeque::new();
    for chunk in chunks {
        if c.data(&chunk.to_string(), &mut out) {
            break;
        }
    }
    if done {
        c.data("[DONE]", &mut out);
    }
    let events: Vec<Value> = out
        .iter()
        .map(|b| {
            let text = std::str::from_utf8(b).unwrap();
            let (name, data) = text.trim().split_once('\n').unwrap();
            let v: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(name.strip_prefix("event: ").unwrap(), v["type"]);
            v
        })
        .collect();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i, "{e}");
    }
    events
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn usage() -> Value {
    json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[test]
fn text_stream() {
    let events = convert(
        &[
            chunk(json!({"role": "assistant", "content": ""}), None),
            chunk(json!({"content": "Hel"}), None),
            chunk(json!({"content": "lo"}), Some("stop")),
            usage(),
        ],
        true,
    );
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(events[0]["response"]["status"], "in_progress");
    assert_eq!(events[0]["response"]["output"], json!([]));
    assert_eq!(events[4]["delta"], "Hel");
    assert_eq!(events[4]["output_index"], 0);
    assert_eq!(events[4]["content_index"], 0);
    assert_eq!(events[6]["text"], "Hello");
    let done = &events[9]["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["id"], "resp_1");
    assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(done["output"][0]["id"], events[2]["item"]["id"]);
    assert_eq!(done["usage"]["input_tokens"], 3);
    assert_eq!(done["usage"]["total_tokens"], 5);
}

#[test]
fn reasoning_then_tool_calls() {
    let call = |i: u32, id: Option<&str>, name: Option<&str>, args: &str| {
        let mut f = json!({"arguments": args});
        if let Some(n) = name {
            f["name"] = json!(n);
        }
        let mut c = json!({"index": i, "type": "function", "function": f});
        if let Some(id) = id {
            c["id"] = json!(id);
        }
        chunk(json!({"tool_calls": [c]}), None)
    };
    let events = convert(
        &[
            chunk(json!({"reasoning_content": "think"}), None),
            call(0, Some("call_a"), Some("f"), ""),
            call(0, None, None, "{\"x\":"),
            call(0, None, None, "1}"),
            call(1, Some("call_b"), Some("g"), "{}"),
            chunk(json!({}), Some("tool_calls")),
            usage(),
        ],
        true,
    );
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.reasoning_text.delta",
            "response.reasoning_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(events[8]["item"]["call_id"], "call_a");
    assert_eq!(events[8]["item"]["status"], "in_progress");
    assert_eq!(events[11]["arguments"], "{\"x\":1}");
    assert_eq!(events[11]["name"], "f");
    assert_eq!(events[13]["output_index"], 2);
    let out = &events[17]["response"]["output"];
    assert_eq!(out[0]["type"], "reasoning");
    assert_eq!(out[1]["arguments"], "{\"x\":1}");
    assert_eq!(out[2]["call_id"], "call_b");
}

#[test]
fn length_is_incomplete() {
    let events = convert(&[chunk(json!({"content": "a"}), Some("length"))], true);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(
        last["response"]["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
}

#[test]
fn an_error_mid_stream_is_response_failed() {
    let events = convert(
        &[
            chunk(json!({"content": "par"}), None),
            json!({"error": {"message": "upstream went away", "type": "api_error", "code": "upstream_error"}}),
        ],
        false,
    );
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["response"]["status"], "failed");
    assert_eq!(
        last["response"]["error"],
        json!({"code": "upstream_error", "message": "upstream went away"})
    );
    // The open item is closed before the failure.
    assert_eq!(
        events[events.len() - 2]["type"],
        "response.output_item.done"
    );
}

#[test]
fn reasoning_as_a_summary_when_one_is_asked_for() {
    let events = convert_for(
        br#"{"model": "m", "input": "hi", "stream": true, "reasoning": {"summary": "auto"}}"#,
        &[
            chunk(json!({"reasoning_content": "thin"}), None),
            chunk(json!({"reasoning_content": "king"}), None),
            chunk(json!({"content": "ok"}), Some("stop")),
        ],
        true,
    );
    assert_eq!(
        types(&events)[2..9],
        [
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done"
        ]
    );
    assert_eq!(events[3]["summary_index"], 0);
    assert_eq!(
        events[3]["part"],
        json!({"type": "summary_text", "text": ""})
    );
    assert_eq!(events[6]["text"], "thinking");
    let item = &events[8]["item"];
    assert_eq!(
        item["summary"],
        json!([{"type": "summary_text", "text": "thinking"}])
    );
    assert_eq!(item["content"], json!([]));
    let done = &events.last().unwrap()["response"];
    assert_eq!(
        done["reasoning"],
        json!({"effort": null, "summary": "auto"})
    );
    assert_eq!(done["output"][0], *item);
}

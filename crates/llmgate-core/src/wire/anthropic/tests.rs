//! Round trips of Anthropic's wire types.

use super::*;
use serde_json::json;

#[test]
fn request_roundtrips_and_keeps_unknown_fields() {
    let src = json!({
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42", "is_error": false},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}
            ]}
        ],
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "f"},
        "service_tier": "auto"
    });
    let r: MessagesRequest = serde_json::from_value(src.clone()).unwrap();
    assert!(r.extra.contains_key("service_tier"));
    assert_eq!(serde_json::to_value(&r).unwrap(), src);
}

#[test]
fn unknown_blocks_and_events_do_not_fail() {
    let m: Message = serde_json::from_value(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "c",
        "content": [{"type": "server_tool_use", "id": "x", "name": "web_search", "input": {}},
                    {"type": "text", "text": "ok"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 3, "output_tokens": 1, "cache_read_input_tokens": 2}
    }))
    .unwrap();
    assert_eq!(m.content[0], ContentBlock::Unknown);
    assert_eq!(m.usage.cache_read_input_tokens, Some(2));
    let e: StreamEvent = serde_json::from_value(json!({"type": "future_event", "x": 1})).unwrap();
    assert_eq!(e, StreamEvent::Unknown);
    let e: StreamEvent = serde_json::from_value(
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta", "citation": {}}}),
    )
    .unwrap();
    assert_eq!(
        e,
        StreamEvent::ContentBlockDelta {
            index: 1,
            delta: BlockDelta::Unknown
        }
    );
}

#[test]
fn events_serialize_with_their_type() {
    let e = StreamEvent::ContentBlockStart {
        index: 0,
        content_block: ContentBlock::Text {
            text: String::new(),
            cache_control: None,
            citations: None,
        },
    };
    assert_eq!(e.name(), "content_block_start");
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(
        serde_json::to_value(StreamEvent::MessageStop).unwrap(),
        json!({"type": "message_stop"})
    );
    assert_eq!(
        serde_json::to_value(ErrorBody::new("overloaded_error", "Overloaded")).unwrap(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
}

#[test]
fn usage_updates_only_what_is_reported() {
    let mut u = Usage {
        input_tokens: Some(10),
        output_tokens: Some(1),
        cache_read_input_tokens: Some(4),
        ..Usage::default()
    };
    u.update(&Usage {
        output_tokens: Some(7),
        ..Usage::default()
    });
    assert_eq!(
        (u.input_tokens, u.output_tokens, u.cache_read_input_tokens),
        (Some(10), Some(7), Some(4))
    );
}

#[test]
fn error_types_and_statuses_agree() {
    for s in [400, 401, 403, 404, 413, 429, 500, 529] {
        assert_eq!(status_for_error_type(error_type_for_status(s)), Some(s));
    }
    assert_eq!(error_type_for_status(502), "api_error");
}

//! ConverseStream through the relay: event by event, tool calls, exceptions and broken
//! streams.

use super::*;

#[tokio::test]
async fn stream_is_relayed_event_by_event() {
    let mock = MockProvider::start_bedrock().await;
    let gate = Gate::new();
    // messageStart and the first word go out, then the upstream waits for the test.
    mock.push(Behaviour::gated(&gate, 2));
    let mut body = chat("hello there", true);
    body["stream_options"] = json!({"include_usage": true});
    let res = call(Endpoint::ChatCompletions, &body, dep(&mock, CLAUDE))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let slot = usage_of(&res);
    let mut body = res.into_body();
    let mut first = String::new();
    while !first.contains("\"content\":\"mock \"") {
        let frame = body.frame().await.unwrap().unwrap();
        first.push_str(std::str::from_utf8(frame.data_ref().unwrap()).unwrap());
    }
    assert!(!gate.is_released());
    assert!(slot.get().is_none());
    gate.release();
    let rest = body.collect().await.unwrap().to_bytes();
    let all = format!("{first}{}", std::str::from_utf8(&rest).unwrap());
    let chunks = chunks(all.as_bytes());
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(streamed_text(&chunks), "mock reply to: hello there");
    let last_choice = &chunks[chunks.len() - 2];
    assert_eq!(last_choice["choices"][0]["finish_reason"], "stop");
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(
        usage_chunk["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7})
    );
    assert!(chunks.iter().all(|c| c["id"] == chunks[0]["id"]
        && c["model"] == CLAUDE
        && c["object"] == "chat.completion.chunk"));
    assert_eq!(total(slot.get()), 7);
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, format!("{CLAUDE_PATH}/converse-stream"));
    assert_eq!(
        sent.header("accept"),
        Some("application/vnd.amazon.eventstream")
    );
    assert!(sent.json.get("stream").is_none() && sent.json.get("stream_options").is_none());
}

#[tokio::test]
async fn streamed_tool_call() {
    let mock = MockProvider::start_bedrock().await;
    let mut body = chat("weather?", true);
    body["tools"] = weather_tools();
    body["tool_choice"] = json!("required");
    let res = call(Endpoint::ChatCompletions, &body, dep(&mock, CLAUDE))
        .await
        .unwrap();
    let chunks = chunks(&bytes(res).await);
    let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
    assert_eq!(deltas[0], &json!({"role": "assistant", "content": ""}));
    assert_eq!(
        deltas[1],
        &json!({"tool_calls": [{"index": 0, "id": "tooluse_mock000001", "type": "function",
                                "function": {"name": "get_weather", "arguments": ""}}]})
    );
    let args: String = deltas[2..]
        .iter()
        .filter_map(|d| d["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, "{\"city\":\"mock\"}");
    assert_eq!(deltas[2]["tool_calls"][0]["index"], 0);
    assert!(deltas[2]["tool_calls"][0].get("id").is_none());
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
    assert_eq!(
        mock.last_request().unwrap().json["toolConfig"]["toolChoice"],
        json!({"any": {}})
    );
}

/// The relay's SSE body, split into its `data:` payloads.
async fn stream_data(mock: &MockProvider) -> Vec<String> {
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hi", true),
        dep(mock, CLAUDE),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    sse_data(&bytes(res).await)
}

fn error_event(data: &[String]) -> Value {
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert!(last.get("error").is_some(), "{last}");
    last["error"].clone()
}

#[tokio::test]
async fn broken_streams_end_with_an_error_event() {
    let mock = MockProvider::start_bedrock().await;
    // An exception after the first text.
    mock.push(bedrock::stream([
        bedrock::event("messageStart", &json!({"role": "assistant"})),
        bedrock::event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        ),
        bedrock::exception("throttlingException", "Too many tokens, please wait."),
    ]));
    let data = stream_data(&mock).await;
    assert_eq!(data.len(), 3, "{data:?}");
    assert!(data[1].contains("\"content\":\"Hel\""));
    let e = error_event(&data);
    assert_eq!(
        e["message"],
        "bedrock (deployment br-0): Too many tokens, please wait."
    );
    assert_eq!(e["code"], "rate_limit_exceeded");

    // A message whose CRC does not match.
    let mut corrupt = bedrock::event("messageStart", &json!({"role": "assistant"})).to_vec();
    let n = corrupt.len();
    corrupt[n - 5] ^= 1;
    mock.push(bedrock::stream([corrupt.into()]));
    assert_eq!(
        error_event(&stream_data(&mock).await)["code"],
        "upstream_stream_broken"
    );

    // A payload that is not JSON.
    mock.push(Behaviour::InvalidBody);
    assert_eq!(
        error_event(&stream_data(&mock).await)["code"],
        "invalid_upstream_response"
    );

    // The connection drops mid-stream.
    mock.push(Behaviour::cut_after(2));
    let data = stream_data(&mock).await;
    assert_eq!(data.len(), 3, "{data:?}");
    assert_eq!(error_event(&data)["code"], "upstream_stream_broken");

    // messageStop without the metadata event is a clean end, without usage.
    mock.push(bedrock::stream([
        bedrock::event("messageStart", &json!({"role": "assistant"})),
        bedrock::event("messageStop", &json!({"stopReason": "max_tokens"})),
    ]));
    let data = stream_data(&mock).await;
    assert_eq!(data.last().unwrap(), "[DONE]");
    assert!(data[1].contains("\"finish_reason\":\"length\""));
}

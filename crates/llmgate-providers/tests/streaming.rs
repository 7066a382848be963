//! Streams against the mock provider: relayed event by event, usage metered, failures turned
//! into one error event and a clean end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers: a failure is the test failing"
)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use http_body::Body as _;
use http_body_util::BodyExt;
use llmgate_core::{Endpoint, ErrorContract, ProviderKind};
use llmgate_testkit::{Behaviour, Gate, MockProvider};
use serde_json::{json, Value};

async fn next_data(body: &mut llmgate_core::BoxBody) -> Option<String> {
    let frame = body.frame().await?.unwrap();
    let data = frame.into_data().unwrap();
    Some(String::from_utf8(data.to_vec()).unwrap())
}

#[tokio::test]
async fn first_event_arrives_before_the_upstream_finishes() {
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    // The role chunk and the first word go out, then the upstream waits for the test.
    mock.push(Behaviour::gated(&gate, 2));
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hello there", true),
        spec("oa-0", ProviderKind::OpenAi, &mock.v1_url()),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    assert_eq!(deployment_of(&res), "oa-0");
    let slot = usage_of(&res);
    let mut body = res.into_body();

    let first = next_data(&mut body).await.unwrap();
    let chunk: Value =
        serde_json::from_str(first.strip_prefix("data: ").unwrap().trim_end()).unwrap();
    assert_eq!(chunk["choices"][0]["delta"]["role"], "assistant");
    let second = next_data(&mut body).await.unwrap();
    assert!(second.contains("\"content\":\"mock \""), "{second}");
    assert!(!gate.is_released());
    assert!(slot.get().is_none());

    gate.release();
    let mut rest = String::new();
    while let Some(d) = next_data(&mut body).await {
        rest.push_str(&d);
    }
    let all = format!("{first}{second}{rest}");
    let chunks = chunks(all.as_bytes());
    assert_eq!(streamed_text(&chunks), "mock reply to: hello there");
    // The gateway asked for usage; the client did not, so it does not see the usage chunk.
    assert!(chunks
        .iter()
        .all(|c| !c["choices"].as_array().unwrap().is_empty()));
    assert_eq!(total(slot.get()), 2 + 5);
    assert!(body.is_end_stream());

    let sent = mock.last_request().unwrap().json;
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
    assert_eq!(sent["model"], "upstream-model");
}

#[tokio::test]
async fn usage_chunk_kept_when_the_client_asked() {
    let mock = MockProvider::start().await;
    let mut body = chat("hi", true);
    body["stream_options"] = json!({"include_usage": true});
    let res = call(
        Endpoint::ChatCompletions,
        &body,
        spec("oa-0", ProviderKind::OpenAi, &mock.v1_url()),
    )
    .await
    .unwrap();
    let slot = usage_of(&res);
    let chunks = chunks(&bytes(res).await);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["total_tokens"], 1 + 4);
    assert_eq!(total(slot.get()), 5);
}

#[tokio::test]
async fn legacy_completions_stream() {
    let mock = MockProvider::start().await;
    let res = call(
        Endpoint::Completions,
        &json!({"model": "g", "prompt": "one two", "stream": true}),
        spec("oa-0", ProviderKind::OpenAi, &mock.v1_url()),
    )
    .await
    .unwrap();
    let slot = usage_of(&res);
    let chunks = chunks(&bytes(res).await);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "mock reply to: one two");
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    assert_eq!(total(slot.get()), 2 + 5);
    assert_eq!(
        mock.last_request().unwrap().json["stream_options"],
        json!({"include_usage": true})
    );
}

/// A dialect that translates its stream frames chat chunks only: a streamed `/v1/completions`
/// is refused before anything is sent (an OpenAI-compatible one relays it, as above).
#[tokio::test]
async fn translated_dialects_refuse_a_completions_stream_before_sending() {
    let nothing_listens = refused_base().await;
    for provider in [
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::Ollama,
        ProviderKind::Bedrock,
    ] {
        let e = call_err(
            Endpoint::Completions,
            &json!({"model": "g", "prompt": "one two", "stream": true}),
            spec("n-0", provider, &nothing_listens),
        )
        .await;
        assert_eq!(e.status(), 400, "{provider}");
        assert!(
            e.message()
                .ends_with("does not serve /v1/completions with stream: true"),
            "{provider}: {}",
            e.message()
        );
    }
}

#[tokio::test]
async fn mistral_gets_no_stream_options() {
    let mock = MockProvider::start().await;
    let mut body = chat("hi", true);
    body["stream_options"] = json!({"include_usage": true});
    let res = call(
        Endpoint::ChatCompletions,
        &body,
        spec("mi-0", ProviderKind::Mistral, &mock.v1_url()),
    )
    .await
    .unwrap();
    bytes(res).await;
    let sent = mock.last_request().unwrap().json;
    assert!(sent.get("stream_options").is_none(), "{sent}");
}

#[tokio::test]
async fn cut_mid_stream_ends_with_one_error_event() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::cut_after(2));
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hello there", true),
        spec("cut-0", ProviderKind::Groq, &mock.v1_url()),
    )
    .await
    .unwrap();
    // The body ends cleanly (no error frame), so collect() succeeds.
    let body = tokio::time::timeout(Duration::from_secs(5), bytes(res))
        .await
        .expect("the body must end, not hang");
    let data = sse_data(&body);
    assert_eq!(data.len(), 3, "{data:?}");
    let err: Value = serde_json::from_str(&data[2]).unwrap();
    assert_eq!(
        err["error"]["message"],
        "groq (deployment cut-0): upstream stream ended before completion"
    );
    assert_eq!(err["error"]["type"], "api_error");
    assert!(!data.iter().any(|d| d == "[DONE]"));
}

#[tokio::test]
async fn invalid_event_data_ends_the_stream_with_an_error_event() {
    // A `data:` that is not JSON never reaches the client (the OpenAI SDK would raise
    // JSONDecodeError): one OpenAI error event instead, then a clean end without [DONE].
    let mock = MockProvider::start().await;
    mock.push(Behaviour::InvalidBody);
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hi", true),
        spec("oa-0", ProviderKind::OpenAi, &mock.v1_url()),
    )
    .await
    .unwrap();
    let data = sse_data(&bytes(res).await);
    assert_eq!(data.len(), 1, "{data:?}");
    let err: Value = serde_json::from_str(&data[0]).unwrap();
    assert_eq!(err["error"]["code"], "upstream_invalid_stream", "{err}");
    assert!(
        !err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("this is not json"),
        "{err}"
    );

    // JSON that is not an object (a number, an array) is as invalid, after valid chunks.
    for bad in ["42", "[1,2]", "\"text\"", "{\"id\":1} trailing"] {
        let good = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"}}]}"#;
        mock.push(raw_sse(&format!(
            "data: {good}\n\ndata: {bad}\n\ndata: [DONE]\n\n"
        )));
        let res = call(
            Endpoint::ChatCompletions,
            &chat("hi", true),
            spec("oa-0", ProviderKind::OpenAi, &mock.v1_url()),
        )
        .await
        .unwrap();
        let data = sse_data(&bytes(res).await);
        assert_eq!(data.len(), 2, "{bad}: {data:?}");
        assert_eq!(data[0], good);
        let err: Value = serde_json::from_str(&data[1]).unwrap();
        assert_eq!(
            err["error"]["code"], "upstream_invalid_stream",
            "{bad}: {err}"
        );
    }
}

/// A 200 event stream with exactly this body.
fn raw_sse(body: &str) -> Behaviour {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    Behaviour::Status {
        status: http::StatusCode::OK,
        body: bytes::Bytes::from(body.to_owned()),
        headers,
    }
}

#[tokio::test]
async fn stream_errors_before_the_first_byte_are_errors() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::error(429, "Too many").with_header("retry-after", "2"));
    let e = call_err(
        Endpoint::ChatCompletions,
        &chat("hi", true),
        spec("oa-0", ProviderKind::OpenAi, &mock.v1_url()),
    )
    .await;
    assert_eq!(e.status(), 429);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));

    // A JSON answer to a streaming request is not a stream.
    mock.push(Behaviour::json(
        200,
        &json!({"id": "x", "object": "chat.completion", "choices": []}),
    ));
    let e = call_err(
        Endpoint::ChatCompletions,
        &chat("hi", true),
        spec("oa-0", ProviderKind::OpenAi, &mock.v1_url()),
    )
    .await;
    assert_eq!(e.status(), 502);
    assert!(
        e.message().contains("not an event stream"),
        "{}",
        e.message()
    );

    let e = call_err(
        Endpoint::ChatCompletions,
        &chat("hi", true),
        spec("gone-0", ProviderKind::OpenAi, &refused_base().await),
    )
    .await;
    assert_eq!(e.status(), 502);
}

#[tokio::test]
async fn stream_timeout_bounds_the_head_only() {
    let mock = MockProvider::start().await;
    let mut d = spec("st-0", ProviderKind::OpenAi, &mock.v1_url());
    d.stream_timeout = Some(Duration::from_millis(200));
    d.timeout = Some(Duration::from_secs(30));

    mock.push(Behaviour::Ok.delayed(Duration::from_secs(10)));
    let started = Instant::now();
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", true), d.clone()).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(e.status(), 408);
    assert!(e.retryable());
    assert_eq!(
        e.message(),
        "openai (deployment st-0): the upstream did not answer within 200ms (`stream_timeout`)"
    );

    // Headers in time, events slower than the limit: the stream is not cut.
    mock.push(Behaviour::Ok.paced(Duration::from_millis(120)));
    let res = call(Endpoint::ChatCompletions, &chat("hi", true), d)
        .await
        .unwrap();
    let chunks = chunks(&bytes(res).await);
    assert_eq!(streamed_text(&chunks), "mock reply to: hi");
}

//! Each `Behaviour`, seen from a client.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test loudly"
)]

mod common;

use std::time::{Duration, Instant};

use common::{chat_body, chunks, post, send, EventReader};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use llmgate_testkit::{Behaviour, Gate, MockProvider};
use serde_json::{json, Value};

fn chat_url(mock: &MockProvider) -> String {
    format!("{}/chat/completions", mock.v1_url())
}

#[tokio::test]
async fn queue_is_fifo_then_default() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::reply("first"));
    mock.push_all([Behaviour::reply("second"), Behaviour::error(500, "boom")]);
    assert_eq!(mock.queued(), 3);
    mock.set_default(Behaviour::reply("default"));

    let mut seen = Vec::new();
    for _ in 0..5 {
        let (status, _, body) = post(&chat_url(&mock), &chat_body("x", false)).await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        let content = v["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_owned);
        seen.push((status.as_u16(), content));
    }
    assert_eq!(
        seen,
        [
            (200, Some("first".to_owned())),
            (200, Some("second".to_owned())),
            (500, None),
            (200, Some("default".to_owned())),
            (200, Some("default".to_owned())),
        ]
    );
    assert_eq!(mock.queued(), 0);

    mock.push(Behaviour::InvalidBody);
    mock.clear_queue();
    let (status, _, _) = post(&chat_url(&mock), &chat_body("x", false)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn reply_is_streamed_too() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::reply("custom streamed answer"));
    let (_, _, body) = post(&chat_url(&mock), &chat_body("x", true)).await;
    let content: String = chunks(&body)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "custom streamed answer");
}

#[tokio::test]
async fn error_status_with_headers() {
    let mock = MockProvider::start().await;
    mock.push(
        Behaviour::error(429, "Rate limit reached for gpt-4o-mini")
            .with_header("retry-after", "1")
            .with_header("x-ratelimit-remaining-requests", "0"),
    );
    // Streaming requests get the error as a plain JSON response too.
    let (status, headers, body) = post(&chat_url(&mock), &chat_body("x", true)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    assert_eq!(headers["content-type"], "application/json");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        json!({"error": {
            "message": "Rate limit reached for gpt-4o-mini",
            "type": "requests",
            "param": null,
            "code": "rate_limit_exceeded"
        }})
    );

    mock.push(Behaviour::error_typed(
        400,
        "bad",
        "invalid_request_error",
        Some("context_length_exceeded"),
    ));
    let (status, _, body) = post(&chat_url(&mock), &chat_body("x", false)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "context_length_exceeded");
}

#[tokio::test]
async fn headers_can_be_added_to_any_reply() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::Ok.with_header("x-extra", "yes"));
    let (status, headers, _) = post(&chat_url(&mock), &chat_body("x", false)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-extra"], "yes");
}

#[tokio::test]
async fn delay_holds_the_response_head() {
    let mock = MockProvider::start().await;
    let delay = Duration::from_millis(150);
    mock.push(Behaviour::Ok.delayed(delay));
    let start = Instant::now();
    let resp = send(Method::POST, &chat_url(&mock), Some(&chat_body("x", false))).await;
    assert!(
        start.elapsed() >= delay,
        "answered after {:?}",
        start.elapsed()
    );
    assert_eq!(resp.status(), StatusCode::OK);
    // The request was recorded on arrival, before the delay.
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn paced_stream_spaces_its_events() {
    let mock = MockProvider::start().await;
    let pace = Duration::from_millis(20);
    mock.push(Behaviour::Ok.paced(pace));
    let start = Instant::now();
    let (status, _, body) = post(&chat_url(&mock), &chat_body("x", true)).await;
    assert_eq!(status, StatusCode::OK);
    let events = chunks(&body).len() + 1; // + [DONE]
    let min = pace * u32::try_from(events - 1).unwrap();
    assert!(start.elapsed() >= min, "{:?} < {min:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_mid_stream_is_a_body_error_without_done() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::cut_after(2));
    let resp = send(Method::POST, &chat_url(&mock), Some(&chat_body("x", true))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut reader = EventReader::new(resp.into_body());
    let first = reader.next().await.unwrap().unwrap();
    assert!(first.contains("\"role\":\"assistant\""));
    let second = reader.next().await.unwrap().unwrap();
    assert!(second.starts_with("data: {"));
    let err = reader
        .next()
        .await
        .expect_err("the body must fail, not end");
    // The chunked body stops without its last chunk: hyper reports an unexpected EOF.
    let io = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .unwrap_or_else(|| panic!("not an io error: {err:?}"));
    assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);

    // The mock keeps serving afterwards.
    let (status, _, _) = post(&chat_url(&mock), &chat_body("x", false)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn cut_non_streamed_body_is_short() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::CutMidStream { after_events: 0 });
    let resp = send(Method::POST, &chat_url(&mock), Some(&chat_body("x", false))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().contains_key("content-length"));
    assert!(resp.into_body().collect().await.is_err());
}

#[tokio::test]
async fn invalid_body_is_200_but_not_json() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::InvalidBody);
    let (status, headers, body) = post(&chat_url(&mock), &chat_body("x", false)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert!(serde_json::from_slice::<Value>(&body).is_err());

    mock.push(Behaviour::InvalidBody);
    let (status, headers, body) = post(&chat_url(&mock), &chat_body("x", true)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/event-stream");
    let data = common::sse_data(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert!(serde_json::from_str::<Value>(&data[0]).is_err());
}

#[tokio::test]
async fn gated_stream_sends_first_event_then_waits_for_release() {
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    mock.push(Behaviour::gated(&gate, 1));
    let resp = send(Method::POST, &chat_url(&mock), Some(&chat_body("x", true))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut reader = EventReader::new(resp.into_body());

    // The first event reaches the client while the upstream is held: no timing involved.
    let first = reader.next().await.unwrap().unwrap();
    assert!(first.contains("\"role\":\"assistant\""));
    gate.wait_for_arrivals(1).await;
    assert!(!gate.is_released());

    gate.release();
    let mut rest = Vec::new();
    while let Some(event) = reader.next().await.unwrap() {
        rest.push(event);
    }
    assert_eq!(rest.last().map(String::as_str), Some("data: [DONE]\n\n"));
    assert_eq!(rest.len(), 6); // 4 pieces of "mock reply to: x" + finish chunk + [DONE]
}

#[tokio::test]
async fn gated_plain_response_waits_whole() {
    let mock = std::sync::Arc::new(MockProvider::start().await);
    let gate = Gate::new();
    mock.set_default(Behaviour::gated(&gate, 0));
    let url = chat_url(&mock);
    let calls: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { post(&url, &chat_body("x", false)).await })
        })
        .collect();
    // Both requests are in flight at the provider at once.
    gate.wait_for_arrivals(2).await;
    assert_eq!(mock.request_count(), 2);
    assert!(calls.iter().all(|c| !c.is_finished()));
    gate.release();
    for call in calls {
        let (status, _, _) = call.await.unwrap();
        assert_eq!(status, StatusCode::OK);
    }
    // An open gate lets later requests through at once.
    let (status, _, _) = post(&url, &chat_body("x", false)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn shutdown_closes_the_listener() {
    let mock = MockProvider::start().await;
    let addr = mock.addr();
    assert_eq!(mock.base_url(), format!("http://{addr}"));
    assert_eq!(mock.v1_url(), format!("http://{addr}/v1"));
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    mock.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

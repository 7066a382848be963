//! `/v1/responses` through the layers of the stack: fallbacks before the first byte, the
//! cache, rate limits, `/metrics`.

use llmgate_tests::{config_for, deployment, Behaviour, MockProvider, TestGateway};
use serde_json::{json, Value};

use super::{conformance, events, post, text_of};

#[tokio::test]
async fn a_stream_falls_back_before_its_first_byte() {
    let (a, b) = (MockProvider::start().await, MockProvider::start().await);
    let mut y = config_for(&[("a", &a.v1_url()), ("b", &b.v1_url())], None);
    y.push_str("router_settings:\n  num_retries: 0\n  fallbacks: [{a: [b]}]\n");
    let gw = TestGateway::start(&y).await;
    a.push(Behaviour::error(500, "a is down"));
    let mut s = gw
        .stream(
            "/v1/responses",
            &json!({"model": "a", "input": "hello there", "stream": true}),
        )
        .await;
    assert_eq!(s.status, 200);
    assert_eq!(s.headers["x-llmgate-fallbacks"], "1");
    let mut ev = Vec::new();
    while let Some((name, data)) = s.next_event().await {
        ev.push((name, serde_json::from_str::<Value>(&data).unwrap()));
    }
    conformance::stream(&ev);
    let (last, done) = ev.last().unwrap();
    assert_eq!(last, "response.completed");
    assert_eq!(text_of(&done["response"]), "mock reply to: hello there");
    assert_eq!((a.request_count(), b.request_count()), (1, 1));
}

#[tokio::test]
async fn a_cache_hit_is_a_new_response_translated_again() {
    let mock = MockProvider::start().await;
    let mut y = config_for(&[("gpt", &mock.v1_url())], None);
    y.push_str("litellm_settings:\n  cache: true\n  cache_params:\n    type: local\n");
    let gw = TestGateway::start(&y).await;
    let body = json!({"model": "gpt", "input": "hello there"});
    let first = post(&gw, &body).await;
    let second = post(&gw, &body).await;
    assert_eq!(second.header("x-llmgate-cache"), Some("hit"));
    let (first, second) = (first.json(), second.json());
    conformance::response(&second);
    assert_ne!(first["id"], second["id"]);
    assert_eq!(text_of(&first), text_of(&second));
    // A stream is replayed from the cache and translated as it passes.
    let streamed = json!({"model": "gpt", "input": "hello there", "stream": true});
    let one = events(&gw, &streamed).await;
    let two = events(&gw, &streamed).await;
    assert_eq!(
        text_of(&one.last().unwrap().1["response"]),
        text_of(&two.last().unwrap().1["response"])
    );
    assert_eq!(mock.request_count(), 2, "one upstream call per shape");
}

#[tokio::test]
async fn a_deployment_limit_is_a_429_in_openai_shape() {
    let mock = MockProvider::start().await;
    let mut y = format!(
        "model_list:\n{}",
        deployment("gpt", "gpt-0", &mock.v1_url(), &["rpm: 1"])
    );
    y.push_str("router_settings:\n  num_retries: 0\n");
    let gw = TestGateway::start(&y).await;
    let body = json!({"model": "gpt", "input": "x"});
    assert_eq!(post(&gw, &body).await.status, 200);
    let limited = post(&gw, &body).await;
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert!(limited.json()["error"]["message"].is_string());
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn responses_requests_are_counted_in_metrics() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&config_for(&[("gpt", &mock.v1_url())], None)).await;
    assert_eq!(
        post(&gw, &json!({"model": "gpt", "input": "x"}))
            .await
            .status,
        200
    );
    events(&gw, &json!({"model": "gpt", "input": "x", "stream": true})).await;
    let text = gw.get("/metrics").await.text();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("llmgate_requests_total{")
                && l.contains("model_group=\"gpt\"")
                && l.contains("status_class=\"2xx\"")
        })
        .unwrap_or_else(|| panic!("no requests counted:\n{text}"));
    assert!(line.ends_with(" 2"), "{line}");
}

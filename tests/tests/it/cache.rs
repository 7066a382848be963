//! Response caching through the real gateway: hits and misses, TTLs, per-request controls,
//! streams replayed as they were sent, interrupted streams never stored, Redis shared by two
//! instances.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use llmgate_tests::{chat_body, config_for, Behaviour, Gate, MockProvider, TestGateway};
use serde_json::{json, Value};

/// A gateway with one model `gpt` on `mock` and these `cache_params` lines.
async fn cached(mock: &MockProvider, params: &[&str]) -> TestGateway {
    let mut y = config_for(&[("gpt", &mock.v1_url())], None);
    y.push_str("router_settings:\n  model_group_alias: {fast: gpt}\n");
    y.push_str("litellm_settings:\n  cache: true\n  cache_params:\n");
    for p in params {
        y.push_str(&format!("    {p}\n"));
    }
    TestGateway::start(&y).await
}

fn cache_header(res: &llmgate_tests::TestResponse) -> &str {
    res.header("x-llmgate-cache").unwrap_or("none")
}

#[tokio::test]
async fn the_second_ask_is_a_hit_with_the_same_answer() {
    let mock = MockProvider::start().await;
    let gw = cached(&mock, &["type: local"]).await;
    let first = gw.chat("gpt", "what is 2+2?").await;
    assert_eq!((first.status.as_u16(), cache_header(&first)), (200, "miss"));
    let second = gw.chat("gpt", "what is 2+2?").await;
    assert_eq!(cache_header(&second), "hit");
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("content-type"), Some("application/json"));
    assert_eq!(second.header("x-llmgate-model-group"), Some("gpt"));
    assert_eq!(mock.request_count(), 1);

    // Same question, other field order and spacing, through an alias of the group: a hit.
    let reordered =
        r#"{ "messages": [ {"content": "what is 2+2?", "role": "user"} ],  "model": "fast" }"#;
    let res = gw
        .send(http::Method::POST, "/v1/chat/completions", reordered, &[])
        .await;
    assert_eq!(
        (cache_header(&res), res.body.clone()),
        ("hit", first.body.clone())
    );
    // A parameter that changes the answer: a miss.
    let mut warmer = chat_body("gpt", "what is 2+2?");
    warmer["temperature"] = json!(1.5);
    assert_eq!(
        cache_header(&gw.post("/v1/chat/completions", &warmer).await),
        "miss"
    );
    assert_eq!(mock.request_count(), 2);
}

/// Two virtual keys ask the same question on a gateway with a master key and these
/// `cache_params` lines: the `x-llmgate-cache` of each answer, in order (key A twice, then B).
async fn two_keys_ask(params: &[&str]) -> (Vec<String>, usize) {
    const MASTER: &str = "sk-master-cache";
    let mock = MockProvider::start().await;
    let mut y = config_for(&[("gpt", &mock.v1_url())], Some(MASTER));
    y.push_str("litellm_settings:\n  cache: true\n  cache_params:\n");
    for p in params {
        y.push_str(&format!("    {p}\n"));
    }
    let gw = TestGateway::start(&y).await;
    let admin = gw.handle().with_key(MASTER);
    let mut callers = Vec::new();
    for _ in 0..2 {
        let res = admin.post("/key/generate", &json!({})).await;
        assert_eq!(res.status, 200, "{}", res.text());
        callers.push(gw.handle().with_key(res.json()["key"].as_str().unwrap()));
    }
    let mut seen = Vec::new();
    for caller in [&callers[0], &callers[0], &callers[1]] {
        let res = caller.chat("gpt", "what is 2+2?").await;
        assert_eq!(res.status, 200, "{}", res.text());
        seen.push(cache_header(&res).to_owned());
    }
    (seen, mock.request_count())
}

#[tokio::test]
async fn keys_share_answers_unless_per_key() {
    let (seen, asked) = two_keys_ask(&["type: local"]).await;
    assert_eq!(
        seen,
        ["miss", "hit", "hit"],
        "by default callers share answers"
    );
    assert_eq!(asked, 1);
    let (seen, asked) = two_keys_ask(&["type: local", "per_key: true"]).await;
    assert_eq!(
        seen,
        ["miss", "hit", "miss"],
        "per_key: a key never reads another key's answer"
    );
    assert_eq!(asked, 2);
}

#[tokio::test]
async fn entries_expire_after_their_ttl() {
    let mock = MockProvider::start().await;
    let gw = cached(&mock, &["type: local", "ttl: 0.4"]).await;
    assert_eq!(cache_header(&gw.chat("gpt", "hi").await), "miss");
    assert_eq!(cache_header(&gw.chat("gpt", "hi").await), "hit");
    // A longer TTL for one request.
    let mut long = chat_body("gpt", "keep me");
    long["cache"] = json!({"ttl": 60});
    assert_eq!(
        cache_header(&gw.post("/v1/chat/completions", &long).await),
        "miss"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(cache_header(&gw.chat("gpt", "hi").await), "miss");
    assert_eq!(
        cache_header(&gw.post("/v1/chat/completions", &long).await),
        "hit"
    );
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn no_cache_and_no_store_in_the_body_and_in_cache_control() {
    let mock = MockProvider::start().await;
    let gw = cached(&mock, &["type: local"]).await;
    let mut no_store = chat_body("gpt", "q");
    no_store["cache"] = json!({"no-store": true});
    gw.post("/v1/chat/completions", &no_store).await;
    let body = chat_body("gpt", "q").to_string();
    let res = gw
        .send(
            http::Method::POST,
            "/v1/chat/completions",
            body.clone(),
            &[("cache-control", "no-store")],
        )
        .await;
    assert_eq!(cache_header(&res), "miss");
    // Neither stored anything.
    let stored = gw.chat("gpt", "q").await;
    assert_eq!(cache_header(&stored), "miss");
    assert_eq!(mock.request_count(), 3);

    // no-cache asks the provider again, even though an answer is stored.
    let mut no_cache = chat_body("gpt", "q");
    no_cache["cache"] = json!({"no-cache": true});
    let fresh = gw.post("/v1/chat/completions", &no_cache).await;
    assert_eq!(cache_header(&fresh), "miss");
    let res = gw
        .send(
            http::Method::POST,
            "/v1/chat/completions",
            body,
            &[("cache-control", "no-cache")],
        )
        .await;
    assert_eq!(cache_header(&res), "miss");
    assert_eq!(mock.request_count(), 5);
    // ... and its answer replaced the stored one.
    let res = gw.chat("gpt", "q").await;
    assert_eq!(
        (cache_header(&res), res.body.clone()),
        ("hit", res.body.clone())
    );
    assert_ne!(res.body, stored.body);

    let mut bad = chat_body("gpt", "q");
    bad["cache"] = json!({"no-cache": "please"});
    let e = gw
        .post("/v1/chat/completions", &bad)
        .await
        .openai_error(400);
    assert_eq!(e["param"], "cache.no-cache");
}

#[tokio::test]
async fn default_off_caches_only_requests_that_opt_in() {
    let mock = MockProvider::start().await;
    let gw = cached(&mock, &["type: local", "mode: default_off"]).await;
    assert_eq!(cache_header(&gw.chat("gpt", "hi").await), "none");
    assert_eq!(cache_header(&gw.chat("gpt", "hi").await), "none");
    let mut opt_in = chat_body("gpt", "hi");
    opt_in["cache"] = json!({"use-cache": true});
    assert_eq!(
        cache_header(&gw.post("/v1/chat/completions", &opt_in).await),
        "miss"
    );
    assert_eq!(
        cache_header(&gw.post("/v1/chat/completions", &opt_in).await),
        "hit"
    );
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn embeddings_are_cached_and_call_types_are_honoured() {
    let mock = MockProvider::start().await;
    let gw = cached(
        &mock,
        &[
            "type: local",
            "supported_call_types: [embedding, aembedding]",
        ],
    )
    .await;
    let body = json!({"model": "gpt", "input": ["one", "two"]});
    let first = gw.post("/v1/embeddings", &body).await;
    assert_eq!((first.status.as_u16(), cache_header(&first)), (200, "miss"));
    let second = gw.post("/v1/embeddings", &body).await;
    assert_eq!((cache_header(&second), &second.body), ("hit", &first.body));
    // Chat is not a supported call type here.
    assert_eq!(cache_header(&gw.chat("gpt", "hi").await), "none");
    assert_eq!(cache_header(&gw.chat("gpt", "hi").await), "none");
    assert_eq!(mock.request_count(), 3);

    let ready = gw.get("/health/readiness").await.json();
    assert_eq!(ready["cache"], "local");
}

fn stream_body(content: &str) -> Value {
    let mut b = chat_body("gpt", content);
    b["stream"] = json!(true);
    b
}

#[tokio::test]
async fn a_stream_is_replayed_event_for_event() {
    let mock = MockProvider::start().await;
    let gw = cached(&mock, &["type: local"]).await;
    let mut s = gw
        .stream("/v1/chat/completions", &stream_body("tell me"))
        .await;
    assert_eq!(s.headers["x-llmgate-cache"], "miss");
    let original = s.rest().await;
    assert_eq!(original.last().map(String::as_str), Some("[DONE]"));

    let mut s = gw
        .stream("/v1/chat/completions", &stream_body("tell me"))
        .await;
    assert_eq!(s.status, 200);
    assert_eq!(s.headers["x-llmgate-cache"], "hit");
    assert_eq!(s.headers["content-type"], "text/event-stream");
    assert_eq!(s.rest().await, original);
    assert_eq!(mock.request_count(), 1);

    // The same question without `stream` is not served from the stream's entry.
    let res = gw.chat("gpt", "tell me").await;
    assert_eq!(cache_header(&res), "miss");
    assert_eq!(res.json()["object"], "chat.completion");
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn a_stream_cut_upstream_is_not_stored() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::cut_after(2));
    let gw = cached(&mock, &["type: local"]).await;
    let events = gw
        .stream("/v1/chat/completions", &stream_body("fragile"))
        .await
        .rest()
        .await;
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert!(last["error"].is_object(), "{events:?}");

    let mut s = gw
        .stream("/v1/chat/completions", &stream_body("fragile"))
        .await;
    assert_eq!(s.headers["x-llmgate-cache"], "miss");
    assert_eq!(s.rest().await.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn a_stream_the_client_left_is_not_stored() {
    let mock = MockProvider::start().await;
    let gate = Gate::new();
    mock.push(Behaviour::gated(&gate, 1));
    let gw = cached(&mock, &["type: local"]).await;
    let mut s = gw.stream("/v1/chat/completions", &stream_body("bye")).await;
    assert!(s.next_data().await.is_some());
    drop(s);
    gate.release();
    // Give the gateway a moment to see the client go and the upstream finish.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut s = gw.stream("/v1/chat/completions", &stream_body("bye")).await;
    assert_eq!(s.headers["x-llmgate-cache"], "miss");
    s.rest().await;
    assert_eq!(mock.request_count(), 2);
}

/// Whether Redis answers at 127.0.0.1:6379 (1 s to connect); prints a line when it does not.
async fn redis_available() -> bool {
    let addr = "127.0.0.1:6379";
    let ok = matches!(
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    );
    if !ok {
        // `.ci/run` sets it when it has the machine's backends running: a skip there is a failure.
        assert!(
            !std::env::var("LLMGATE_REQUIRE_BACKENDS")
                .unwrap_or_default()
                .contains("redis"),
            "redis is not reachable and LLMGATE_REQUIRE_BACKENDS requires it"
        );
        eprintln!("skipped: no Redis at {addr}");
    }
    ok
}

fn unique_namespace() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("llmgate-it-{}-{nanos}", std::process::id())
}

/// Sends `body` until it is answered from the cache (Redis stores in the background, just
/// after the answer ends); panics after ~1 s.
async fn until_hit(gw: &TestGateway, body: &Value) -> llmgate_tests::TestResponse {
    for _ in 0..20 {
        let res = gw.post("/v1/chat/completions", body).await;
        if cache_header(&res) == "hit" {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never answered from the cache");
}

#[tokio::test]
async fn two_instances_share_one_redis_cache() {
    if !redis_available().await {
        return;
    }
    let ns = unique_namespace();
    let params = ["type: redis", "host: 127.0.0.1", "port: 6379", "ttl: 30"];
    let ns_line = format!("namespace: {ns}");
    let params: Vec<&str> = params.iter().copied().chain([ns_line.as_str()]).collect();
    let (mock_a, mock_b) = (MockProvider::start().await, MockProvider::start().await);
    let a = cached(&mock_a, &params).await;
    let b = cached(&mock_b, &params).await;

    let body = chat_body("gpt", "shared question");
    let first = a.post("/v1/chat/completions", &body).await;
    assert_eq!(cache_header(&first), "miss");
    let again = until_hit(&a, &body).await;
    assert_eq!(again.body, first.body);
    let requests_a = mock_a.request_count();

    // The other instance never asked its provider.
    let from_b = b.post("/v1/chat/completions", &body).await;
    assert_eq!((cache_header(&from_b), &from_b.body), ("hit", &first.body));
    assert_eq!(mock_b.request_count(), 0);
    assert_eq!(b.get("/health/readiness").await.json()["cache"], "redis");

    // Streams too, replayed as sent.
    let mut s = a
        .stream("/v1/chat/completions", &stream_body("shared stream"))
        .await;
    let original = s.rest().await;
    let mut replay = Vec::new();
    for _ in 0..20 {
        let mut s = b
            .stream("/v1/chat/completions", &stream_body("shared stream"))
            .await;
        let hit = s.headers["x-llmgate-cache"] == "hit";
        let events = s.rest().await;
        if hit {
            replay = events;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(replay, original);
    assert!(mock_a.request_count() > requests_a);

    // Another namespace sees none of it.
    let mut other = chat_body("gpt", "shared question");
    other["cache"] = json!({"namespace": format!("{ns}-other")});
    assert_eq!(
        cache_header(&b.post("/v1/chat/completions", &other).await),
        "miss"
    );
}

#[tokio::test]
async fn an_unreachable_redis_serves_misses() {
    let mock = MockProvider::start().await;
    // A port nothing listens on.
    let gw = cached(&mock, &["type: redis", "host: 127.0.0.1", "port: 1"]).await;
    for _ in 0..3 {
        let res = gw.chat("gpt", "hi").await;
        assert_eq!((res.status.as_u16(), cache_header(&res)), (200, "miss"));
    }
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn a_redis_answering_errors_serves_misses() {
    let mock = MockProvider::start().await;
    let redis = llmgate_testkit::ErringRedis::start().await.unwrap();
    let port = format!("port: {}", redis.addr().port());
    let gw = cached(&mock, &["type: redis", "host: 127.0.0.1", &port]).await;
    for _ in 0..3 {
        let res = gw.chat("gpt", "hi").await;
        assert_eq!((res.status.as_u16(), cache_header(&res)), (200, "miss"));
    }
    assert_eq!(mock.request_count(), 3);
    assert!(
        redis.count("GET") >= 1,
        "Redis was asked, and answered an error"
    );
}

#[tokio::test]
async fn anthropic_clients_get_hits_in_their_own_shape() {
    let mock = MockProvider::start().await;
    let gw = cached(&mock, &["type: local"]).await;
    let headers = &[("anthropic-version", "2023-06-01")];
    let body = json!({"model": "gpt", "max_tokens": 64,
        "messages": [{"role": "user", "content": "hello there"}]});
    let first = gw
        .send(
            http::Method::POST,
            "/v1/messages",
            body.to_string(),
            headers,
        )
        .await;
    assert_eq!((first.status.as_u16(), cache_header(&first)), (200, "miss"));
    let second = gw
        .send(
            http::Method::POST,
            "/v1/messages",
            body.to_string(),
            headers,
        )
        .await;
    assert_eq!(cache_header(&second), "hit");
    assert_eq!(second.json()["type"], "message");
    assert_eq!(second.json()["content"], first.json()["content"]);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let mut s = gw.stream_with("/v1/messages", &streamed, headers).await;
    let mut original = Vec::new();
    while let Some(e) = s.next_event().await {
        original.push(e);
    }
    let mut s = gw.stream_with("/v1/messages", &streamed, headers).await;
    assert_eq!(s.headers["x-llmgate-cache"], "hit");
    let mut replay = Vec::new();
    while let Some(e) = s.next_event().await {
        replay.push(e);
    }
    let names = |v: &[(String, String)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&replay), names(&original));
    assert_eq!(replay.last().map(|(n, _)| n.as_str()), Some("message_stop"));
    assert_eq!(mock.request_count(), 2);
}

//! A virtual key's `models` list holds for every group an attempt may reach: the request's own
//! `fallbacks`, each of the four kinds of configured fallbacks, `model_group_alias` aliases and
//! the wildcard route. A forbidden group is skipped (never called, never charged) and the answer
//! says so in `x-llmgate-fallbacks-skipped`; streams and `/v1/messages` alike.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::Method;
use llmgate_tests::{chat_body, deployment, Behaviour, MockProvider, TestGateway};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-access";

/// Groups `a`, `b`, `c` (one deployment each, ids the same) and `settings` under
/// `router_settings` (retries off, so counts are exact).
fn yaml(a: &MockProvider, b: &MockProvider, c: &MockProvider, settings: &str) -> String {
    format!(
        "model_list:\n{}{}{}router_settings:\n  num_retries: 0\n{settings}general_settings:\n  master_key: {MASTER}\n",
        deployment("a", "a", &a.v1_url(), &[]),
        deployment("b", "b", &b.v1_url(), &[]),
        deployment("c", "c", &c.v1_url(), &[]),
    )
}

async fn mocks() -> (MockProvider, MockProvider, MockProvider) {
    (
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
    )
}

/// A client holding a new key limited to `models`.
async fn key_for(gw: &TestGateway, models: &[&str]) -> TestGateway {
    let admin = gw.handle().with_key(MASTER);
    let res = admin
        .post("/key/generate", &json!({ "models": models }))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    gw.handle().with_key(res.json()["key"].as_str().unwrap())
}

fn with_fallbacks(model: &str, fallbacks: &[&str]) -> Value {
    let mut body = chat_body(model, "hi");
    body["fallbacks"] = json!(fallbacks);
    body
}

#[tokio::test]
async fn request_fallbacks_skip_models_outside_the_keys_list() {
    let (a, b, c) = mocks().await;
    a.set_default(Behaviour::error(500, "a is down"));
    let gw = TestGateway::start(&yaml(&a, &b, &c, "")).await;

    // Only `a` allowed: `b` is skipped, so the client gets `a`'s own failure.
    let user = key_for(&gw, &["a"]).await;
    let res = user
        .post("/v1/chat/completions", &with_fallbacks("a", &["b"]))
        .await;
    let e = res.openai_error(500);
    assert!(e["message"].as_str().unwrap().contains("a is down"), "{e}");
    assert!(e["message"].as_str().unwrap().contains("b"), "{e}");
    assert_eq!(b.request_count(), 0, "a forbidden fallback was called");

    // `a` and `c` allowed: `b` is skipped, `c` answers, and the answer says what was skipped.
    let user = key_for(&gw, &["a", "c"]).await;
    let res = user
        .post("/v1/chat/completions", &with_fallbacks("a", &["b", "c"]))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-llmgate-deployment"), Some("c"));
    assert_eq!(res.header("x-llmgate-fallbacks-skipped"), Some("b"));
    assert_eq!(res.header("x-llmgate-attempts"), Some("2"));
    assert_eq!(res.header("x-llmgate-fallbacks"), Some("1"));
    assert_eq!((b.request_count(), c.request_count()), (0, 1));

    // The master key may go anywhere, and nothing is skipped.
    let admin = gw.handle().with_key(MASTER);
    let res = admin
        .post("/v1/chat/completions", &with_fallbacks("a", &["b"]))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-llmgate-deployment"), Some("b"));
    assert_eq!(res.header("x-llmgate-fallbacks-skipped"), None);
}

#[tokio::test]
async fn every_kind_of_configured_fallback_skips_models_outside_the_keys_list() {
    // (router_settings, how `a` fails)
    let cases: [(&str, Behaviour); 4] = [
        (
            "  fallbacks: [{a: [b, c]}]\n",
            Behaviour::error(500, "down"),
        ),
        (
            "  default_fallbacks: [b, c]\n",
            Behaviour::error(503, "down"),
        ),
        (
            "  context_window_fallbacks: [{a: [b, c]}]\n",
            Behaviour::error_typed(
                400,
                "This model's maximum context length is 8192 tokens",
                "invalid_request_error",
                Some("context_length_exceeded"),
            ),
        ),
        (
            "  content_policy_fallbacks: [{a: [b, c]}]\n",
            Behaviour::error_typed(
                400,
                "rejected by the safety system",
                "invalid_request_error",
                Some("content_policy_violation"),
            ),
        ),
    ];
    for (settings, failure) in cases {
        let (a, b, c) = mocks().await;
        a.set_default(failure);
        let gw = TestGateway::start(&yaml(&a, &b, &c, settings)).await;
        let user = key_for(&gw, &["a", "c"]).await;
        let res = user.chat("a", "hi").await;
        assert_eq!(res.status, 200, "{settings}: {}", res.text());
        assert_eq!(res.header("x-llmgate-deployment"), Some("c"), "{settings}");
        assert_eq!(
            res.header("x-llmgate-fallbacks-skipped"),
            Some("b"),
            "{settings}"
        );
        assert_eq!(b.request_count(), 0, "{settings}: forbidden `b` was called");

        // With no permitted fallback left, the client gets `a`'s failure.
        let only_a = key_for(&gw, &["a"]).await;
        let res = only_a.chat("a", "hi").await;
        assert_eq!(res.status, a_status(settings), "{settings}: {}", res.text());
        assert_eq!((b.request_count(), c.request_count()), (0, 1), "{settings}");
    }
}

fn a_status(settings: &str) -> u16 {
    if settings.contains("default") {
        503
    } else if settings.contains("context") || settings.contains("content") {
        400
    } else {
        500
    }
}

#[tokio::test]
async fn a_stream_never_falls_back_to_a_forbidden_model() {
    let (a, b, c) = mocks().await;
    a.set_default(Behaviour::error(500, "a is down"));
    let gw = TestGateway::start(&yaml(&a, &b, &c, "  fallbacks: [{a: [b]}]\n")).await;
    let user = key_for(&gw, &["a", "c"]).await;
    let mut body = with_fallbacks("a", &["b", "c"]);
    body["stream"] = json!(true);
    let mut s = user.stream("/v1/chat/completions", &body).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.headers["x-llmgate-deployment"], "c");
    assert_eq!(s.headers["x-llmgate-fallbacks-skipped"], "b");
    assert_eq!(s.rest().await.last().map(String::as_str), Some("[DONE]"));

    let only_a = key_for(&gw, &["a"]).await;
    body["fallbacks"] = json!(["b"]);
    let res = only_a
        .send(Method::POST, "/v1/chat/completions", body.to_string(), &[])
        .await;
    res.openai_error(500);
    assert_eq!((b.request_count(), c.request_count()), (0, 1));
}

#[tokio::test]
async fn v1_messages_never_falls_back_to_a_forbidden_model() {
    let (a, b, c) = mocks().await;
    a.set_default(Behaviour::error(500, "a is down"));
    let gw = TestGateway::start(&yaml(&a, &b, &c, "  fallbacks: [{a: [b, c]}]\n")).await;
    let user = key_for(&gw, &["a", "c"]).await;
    let headers = [("anthropic-version", "2023-06-01")];
    let body = json!({"model": "a", "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}]});
    let res = user
        .send(Method::POST, "/v1/messages", body.to_string(), &headers)
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["type"], "message");
    assert_eq!(res.header("x-llmgate-deployment"), Some("c"));
    assert_eq!(res.header("x-llmgate-fallbacks-skipped"), Some("b"));

    // Streamed, for a key that may call only `a`: Anthropic's error shape, `b` never called.
    let only_a = key_for(&gw, &["a"]).await;
    let mut body = body;
    body["stream"] = json!(true);
    let res = only_a
        .send(Method::POST, "/v1/messages", body.to_string(), &headers)
        .await;
    assert_eq!(res.status, 500, "{}", res.text());
    assert_eq!(res.json()["type"], "error", "{}", res.text());
    assert_eq!((b.request_count(), c.request_count()), (0, 1));
}

#[tokio::test]
async fn an_alias_is_allowed_when_its_name_or_its_group_is_allowed() {
    let (a, b, c) = mocks().await;
    let gw = TestGateway::start(&yaml(
        &a,
        &b,
        &c,
        "  model_group_alias: {bee: b, alpha: a}\n",
    ))
    .await;

    // LiteLLM's rule: the alias or the group it names, either in the list, is enough.
    let by_group = key_for(&gw, &["a"]).await;
    let res = by_group.chat("alpha", "hi").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-llmgate-deployment"), Some("a"));
    let by_alias = key_for(&gw, &["bee"]).await;
    let res = by_alias.chat("bee", "hi").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-llmgate-deployment"), Some("b"));
    // The alias does not open the group under its own name.
    by_alias.chat("b", "hi").await.openai_error(403);

    // A fallback through an alias to a forbidden group is skipped.
    a.set_default(Behaviour::error(500, "a is down"));
    let res = by_group
        .post("/v1/chat/completions", &with_fallbacks("a", &["bee"]))
        .await;
    res.openai_error(500);
    assert_eq!(b.request_count(), 1, "only the key allowed `bee` reached b");
    // A key allowed the alias may fall back through it.
    let both = key_for(&gw, &["a", "bee"]).await;
    let res = both
        .post("/v1/chat/completions", &with_fallbacks("a", &["bee"]))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-llmgate-deployment"), Some("b"));
}

#[tokio::test]
async fn the_wildcard_route_does_not_open_unlisted_models() {
    let (a, b, any) = mocks().await;
    a.set_default(Behaviour::error(500, "a is down"));
    let yaml = format!(
        "model_list:\n{}{}{}router_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {MASTER}\n",
        deployment("a", "a", &a.v1_url(), &[]),
        deployment("b", "b", &b.v1_url(), &[]),
        deployment("\"*\"", "anything", &any.v1_url(), &[]),
    );
    let gw = TestGateway::start(&yaml).await;
    let user = key_for(&gw, &["a", "llama-3"]).await;

    // A listed name the catch-all serves works.
    let res = user.chat("llama-3", "hi").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-llmgate-deployment"), Some("anything"));
    // An unlisted one, as a fallback, is skipped rather than sent to the catch-all.
    let res = user
        .post(
            "/v1/chat/completions",
            &with_fallbacks("a", &["mistral-large"]),
        )
        .await;
    res.openai_error(500);
    assert_eq!(any.request_count(), 1);
    // A listed one as a fallback is served there.
    let res = user
        .post("/v1/chat/completions", &with_fallbacks("a", &["llama-3"]))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-llmgate-deployment"), Some("anything"));
    assert_eq!(b.request_count(), 0);
}

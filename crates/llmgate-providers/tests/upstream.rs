//! Non-stream calls against the mock provider: what the upstream receives, what the client gets,
//! and every way the upstream can fail.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers: a failure is the test failing"
)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use http::{HeaderName, HeaderValue};
use llmgate_core::{ApiError, Endpoint, ErrorContract, ErrorType, Origin, ProviderKind};
use llmgate_testkit::{Behaviour, MockProvider};
use serde_json::json;
use tower::ServiceExt;

#[tokio::test]
async fn openai_chat_passes_through_and_reports_usage() {
    let mock = MockProvider::start().await;
    let res = call(
        Endpoint::ChatCompletions,
        &chat("hello there", false),
        spec("oa-0", ProviderKind::OpenAi, &mock.v1_url()),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(deployment_of(&res), "oa-0");
    let slot = usage_of(&res);
    // 2 words in, "mock reply to: hello there" = 5 words out.
    assert_eq!(total(slot.get()), 7);
    let body = bytes(res).await;
    let v = json(&body);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "upstream-model");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock reply to: hello there"
    );
    // Unchanged bytes: the fields we never model are still there.
    assert_eq!(v["system_fingerprint"], "fp_mock");

    let got = mock.last_request().unwrap();
    assert_eq!(got.path, "/v1/chat/completions");
    assert_eq!(got.bearer_token(), Some("sk-test"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.model(), Some("upstream-model"));
}

#[tokio::test]
async fn body_has_defaults_merged_and_no_gateway_params() {
    let mock = MockProvider::start().await;
    let mut d = spec("oa-0", ProviderKind::OpenAi, &mock.v1_url());
    d.default_params.insert("temperature".into(), json!(0.3));
    d.default_params.insert("max_tokens".into(), json!(99));
    d.default_params.insert("top_k".into(), json!(5));
    let body = json!({
        "model": "group",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 7,
        "metadata": {"trace": "x"},
        "tags": ["a"],
        "num_retries": 2,
        "logprobs": true
    });
    call(Endpoint::ChatCompletions, &body, d).await.unwrap();
    let sent = mock.last_request().unwrap().json;
    assert_eq!(
        sent,
        json!({
            "model": "upstream-model",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 7,
            "temperature": 0.3,
            "top_k": 5,
            "logprobs": true
        })
    );
}

#[tokio::test]
async fn completions_and_embeddings_endpoints() {
    let mock = MockProvider::start().await;
    let d = || spec("oa-0", ProviderKind::OpenAi, &mock.v1_url());
    let res = call(
        Endpoint::Completions,
        &json!({"model": "group", "prompt": "say this"}),
        d(),
    )
    .await
    .unwrap();
    assert_eq!(total(usage_of(&res).get()), 2 + 5);
    let v = json(&bytes(res).await);
    assert_eq!(v["object"], "text_completion");
    assert_eq!(mock.last_request().unwrap().path, "/v1/completions");

    let res = call(
        Endpoint::Embeddings,
        &json!({"model": "group", "input": ["a b", "c"]}),
        d(),
    )
    .await
    .unwrap();
    assert_eq!(total(usage_of(&res).get()), 3);
    let v = json(&bytes(res).await);
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let got = mock.last_request().unwrap();
    assert_eq!(got.path, "/v1/embeddings");
    assert_eq!(got.json["input"], json!(["a b", "c"]));
}

#[tokio::test]
async fn auth_and_url_per_provider() {
    let mock = MockProvider::start().await;

    // Azure: deployment in the path, api-version in the query, `api-key` header.
    mock.push(Behaviour::json(
        200,
        &json!({"id": "x", "object": "chat.completion", "choices": []}),
    ));
    let mut d = spec(
        "az-0",
        ProviderKind::Azure,
        &format!("{}/", mock.base_url()),
    );
    d.api_version = Some("2024-06-01".into());
    call(Endpoint::ChatCompletions, &chat("hi", false), d)
        .await
        .unwrap();
    let got = mock.last_request().unwrap();
    assert_eq!(
        got.path_and_query,
        "/openai/deployments/upstream-model/chat/completions?api-version=2024-06-01"
    );
    assert_eq!(got.header("api-key"), Some("sk-test"));
    assert_eq!(got.header("authorization"), None);

    // Azure without api_version: the documented default.
    mock.push(Behaviour::json(200, &json!({"id": "x", "choices": []})));
    let d = spec("az-1", ProviderKind::Azure, &mock.base_url());
    call(
        Endpoint::Embeddings,
        &json!({"model": "g", "input": "x"}),
        d,
    )
    .await
    .unwrap();
    assert_eq!(
        mock.last_request().unwrap().path_and_query,
        format!(
            "/openai/deployments/upstream-model/embeddings?api-version={}",
            llmgate_providers::AZURE_DEFAULT_API_VERSION
        )
    );

    // Ollama speaks its native API: see tests/ollama.rs.

    // Everyone else: Bearer, plus the deployment's headers (which win over ours).
    for provider in [
        ProviderKind::OpenRouter,
        ProviderKind::HostedVllm,
        ProviderKind::Groq,
    ] {
        let mut d = spec("x-0", provider, &format!("{}/", mock.v1_url()));
        d.headers = vec![
            (
                HeaderName::from_static("http-referer"),
                HeaderValue::from_static("https://app.test"),
            ),
            (
                HeaderName::from_static("x-title"),
                HeaderValue::from_static("app"),
            ),
        ];
        call(Endpoint::ChatCompletions, &chat("hi", false), d)
            .await
            .unwrap();
        let got = mock.last_request().unwrap();
        assert_eq!(got.path, "/v1/chat/completions", "{provider}");
        assert_eq!(got.bearer_token(), Some("sk-test"), "{provider}");
        assert_eq!(got.header("http-referer"), Some("https://app.test"));
        assert_eq!(got.header("x-title"), Some("app"));
    }
}

#[tokio::test]
async fn upstream_429_keeps_status_message_and_retry_after() {
    let mock = MockProvider::start().await;
    mock.push(Behaviour::error(429, "Rate limit exceeded").with_header("retry-after", "3"));
    let e = call_err(
        Endpoint::ChatCompletions,
        &chat("hi", false),
        spec("primary-0", ProviderKind::OpenRouter, &mock.v1_url()),
    )
    .await;
    assert_eq!(e.status(), 429);
    assert_eq!(
        e.message(),
        "openrouter (deployment primary-0): Rate limit exceeded"
    );
    assert!(e.retryable());
    assert_eq!(e.origin(), Origin::Upstream);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(e.error_type().as_str(), "requests");
    assert_eq!(e.code().as_deref(), Some("rate_limit_exceeded"));
    let res = e.to_response();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "3");

    mock.push(Behaviour::error(429, "slow down").with_header("retry-after-ms", "250"));
    let e = call_err(
        Endpoint::ChatCompletions,
        &chat("hi", false),
        spec("p-0", ProviderKind::OpenAi, &mock.v1_url()),
    )
    .await;
    assert_eq!(e.retry_after(), Some(Duration::from_millis(250)));
}

#[tokio::test]
async fn upstream_500_401_and_raw_bodies() {
    let mock = MockProvider::start().await;
    let d = || spec("p-0", ProviderKind::OpenAi, &mock.v1_url());

    mock.push(Behaviour::error(500, "The server had an error"));
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d()).await;
    assert_eq!((e.status().as_u16(), e.retryable()), (500, true));
    assert_eq!(e.error_type().as_str(), "server_error");

    mock.push(Behaviour::error(401, "Incorrect API key provided"));
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d()).await;
    assert_eq!((e.status().as_u16(), e.retryable()), (401, false));
    assert_eq!(e.code().as_deref(), Some("invalid_api_key"));
    assert!(e.message().ends_with("Incorrect API key provided"));

    mock.push(Behaviour::Status {
        status: http::StatusCode::BAD_GATEWAY,
        body: bytes::Bytes::from_static(b"<html>bad gateway</html>"),
        headers: [(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/html"),
        )]
        .into_iter()
        .collect(),
    });
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d()).await;
    assert_eq!(e.status(), 502);
    assert_eq!(
        e.message(),
        "openai (deployment p-0): <html>bad gateway</html>"
    );
    assert_eq!(e.error_type(), ErrorType::API);
}

#[tokio::test]
async fn invalid_and_cut_bodies_are_502() {
    let mock = MockProvider::start().await;
    let d = || spec("p-0", ProviderKind::OpenAi, &mock.v1_url());

    mock.push(Behaviour::InvalidBody);
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d()).await;
    assert_eq!(e.status(), 502);
    assert!(e.retryable());
    assert!(
        e.message()
            .starts_with("openai (deployment p-0): provider returned an invalid response: "),
        "{}",
        e.message()
    );

    mock.push(Behaviour::cut_after(1));
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d()).await;
    assert_eq!(e.status(), 502);
    assert!(e.message().contains("invalid response"), "{}", e.message());

    // A 200 carrying an error object instead of an answer.
    mock.push(Behaviour::json(
        200,
        &json!({"error": {"message": "overloaded", "code": 503}}),
    ));
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d()).await;
    assert_eq!(e.status(), 502);
    assert_eq!(e.message(), "openai (deployment p-0): overloaded");
}

#[tokio::test]
async fn connection_refused_is_502_retryable() {
    let base = refused_base().await;
    let e = call_err(
        Endpoint::ChatCompletions,
        &chat("hi", false),
        spec("gone-0", ProviderKind::HostedVllm, &base),
    )
    .await;
    assert_eq!(e.status(), 502);
    assert!(e.retryable());
    assert_eq!(e.origin(), Origin::Upstream);
    assert!(
        e.message()
            .starts_with("hosted_vllm (deployment gone-0): the upstream could not be reached"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn timeouts_name_the_deployment_and_limit() {
    let mock = MockProvider::start().await;
    let mut d = spec("slow-0", ProviderKind::OpenAi, &mock.v1_url());
    d.timeout = Some(Duration::from_millis(200));

    mock.push(Behaviour::Ok.delayed(Duration::from_secs(10)));
    let started = Instant::now();
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d.clone()).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(e.status(), 408);
    assert!(e.retryable());
    assert_eq!(e.error_type(), ErrorType::TIMEOUT);
    assert_eq!(
        e.message(),
        "openai (deployment slow-0): the upstream did not answer within 200ms (`timeout`)"
    );

    // The request's own `timeout` wins over the deployment's.
    d.timeout = Some(Duration::from_secs(30));
    mock.push(Behaviour::Ok.delayed(Duration::from_secs(10)));
    let mut body = chat("hi", false);
    body["timeout"] = json!(0.15);
    let e = call_err(Endpoint::ChatCompletions, &body, d).await;
    assert_eq!(e.status(), 408);
    assert!(
        e.message().contains("150ms (`request timeout`)"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn missing_extensions_and_unsupported_providers() {
    let svc = service();
    let e = ApiError::from_box(
        svc.clone()
            .oneshot(http::Request::new(()))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.status(), 500);
    assert!(!e.retryable());
    assert!(e.message().contains("`LlmRequest`"), "{}", e.message());

    let mut req = request(
        Endpoint::ChatCompletions,
        &chat("hi", false),
        spec("a", ProviderKind::OpenAi, "http://127.0.0.1:9"),
    );
    req.extensions_mut().remove::<llmgate_core::Deployment>();
    let e = ApiError::from_box(svc.clone().oneshot(req).await.unwrap_err());
    assert!(e.message().contains("`Deployment`"), "{}", e.message());

    // Every provider llmgate knows has a dialect (the 501 is for kinds a later core adds).
    assert!(llmgate_providers::supports(ProviderKind::VertexAi));
    assert!(llmgate_providers::supports(ProviderKind::OpenRouter));
}

#[tokio::test]
async fn upstream_errors_that_echo_the_key_are_redacted() {
    // An upstream echoing the Authorization header it received (and its key) in its error:
    // the client's error (and so every log line made from it) carries no key.
    let mock = MockProvider::start().await;
    let key = "plain-provider-key-0123";
    let mut d = spec("echo-0", ProviderKind::OpenAi, &mock.v1_url());
    d.api_key = Some(llmgate_core::Secret::new(key));
    let echoes = [
        format!("Invalid Authorization header: Bearer {key}"),
        format!("key {key} was revoked"),
        "Incorrect API key provided: sk-proj-abcdefghijklmnop1234".to_owned(),
    ];
    for message in &echoes {
        mock.push(Behaviour::error(401, message.as_str()));
        let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d.clone()).await;
        assert_eq!(e.status(), 401);
        let text = e.message().to_owned();
        assert!(!text.contains(key), "{text}");
        assert!(!text.contains("sk-proj-abcdefghijklmnop1234"), "{text}");
        assert!(text.contains("[REDACTED]"), "{text}");
        assert!(!e.to_string().contains(key));
    }

    // The same inside a stream's error event, and on a native dialect.
    let anthropic = MockProvider::start_anthropic().await;
    let mut a = spec("ant-0", ProviderKind::Anthropic, &anthropic.base_url());
    a.api_key = Some(llmgate_core::Secret::new(key));
    anthropic.push(Behaviour::json(
        401,
        &json!({"type": "error", "error": {"type": "authentication_error",
            "message": format!("invalid x-api-key: {key}")}}),
    ));
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), a).await;
    assert!(!e.message().contains(key), "{}", e.message());

    let body = format!(
        "data: {{\"error\":{{\"message\":\"upstream said: Bearer {key}\",\"type\":\"server_error\"}}}}\n\n"
    );
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("text/event-stream"),
    );
    mock.push(Behaviour::Status {
        status: http::StatusCode::OK,
        body: body.into(),
        headers,
    });
    let res = call(Endpoint::ChatCompletions, &chat("hi", true), d)
        .await
        .unwrap();
    let text = String::from_utf8(bytes(res).await.to_vec()).unwrap();
    assert!(!text.contains(key), "{text}");
}

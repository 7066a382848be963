//! The Bedrock dialect against the testkit's Bedrock mock: what the upstream receives (URL,
//! SigV4 signature, translated body), answers and streams in OpenAI's shape, tools both ways,
//! usage, errors, drop_params, embeddings.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers: a failure is the test failing"
)]

mod common;
#[path = "bedrock/stream.rs"]
mod stream;

use common::*;
use http_body_util::BodyExt;
use llmgate_core::{AwsParams, DeploymentSpec, Endpoint, ErrorContract, ProviderKind, Secret};
use llmgate_testkit::bedrock::{self, SigV4};
use llmgate_testkit::{Behaviour, Gate, MockProvider};
use serde_json::{json, Value};

pub(crate) const CLAUDE: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
pub(crate) const CLAUDE_PATH: &str = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0";

/// A Bedrock deployment of `model` on the mock, with the mock's credentials, in `us-west-2`.
pub(crate) fn dep(mock: &MockProvider, model: &str) -> DeploymentSpec {
    let mut d = DeploymentSpec::new("br-0", "group", ProviderKind::Bedrock, model);
    d.api_base = Some(mock.base_url().into());
    d.aws = Some(AwsParams {
        access_key_id: Some(Secret::new(bedrock::ACCESS_KEY_ID)),
        secret_access_key: Some(Secret::new(bedrock::SECRET_ACCESS_KEY)),
        session_token: None,
        region: Some("us-west-2".into()),
    });
    d
}

fn chat_body(messages: Value) -> Value {
    json!({"model": "group", "messages": messages})
}

#[tokio::test]
async fn chat_is_translated_signed_and_answered() {
    let mock = MockProvider::start_bedrock().await;
    let body = json!({
        "model": "group",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello there"}
        ],
        "max_tokens": 100, "temperature": 0.5, "stop": ["\n\n"]
    });
    let res = call(Endpoint::ChatCompletions, &body, dep(&mock, CLAUDE))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(deployment_of(&res), "br-0");
    let slot = usage_of(&res);
    let out = json(&bytes(res).await);
    assert!(out["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(out["object"], "chat.completion");
    assert!(out["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(out["model"], CLAUDE);
    assert_eq!(
        out["choices"],
        json!([{"index": 0, "logprobs": null, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "mock reply to: hello there"}}])
    );
    assert_eq!(
        out["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9})
    );
    assert_eq!(total(slot.get()), 9);

    let sent = mock.last_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path_and_query, format!("{CLAUDE_PATH}/converse"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("host"), Some(&*mock.addr().to_string()));
    assert_eq!(
        sent.json,
        json!({
            "system": [{"text": "Be brief."}],
            "messages": [{"role": "user", "content": [{"text": "hello there"}]}],
            "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "stopSequences": ["\n\n"]}
        })
    );
    // The signature is checked by the mock's own SigV4 implementation.
    let sig = bedrock::verify_sigv4(&sent, bedrock::SECRET_ACCESS_KEY).unwrap();
    assert_eq!(sig.access_key_id, bedrock::ACCESS_KEY_ID);
    assert_eq!(sig.region, "us-west-2");
    assert_eq!(sig.service, "bedrock");
    assert_eq!(
        sig.signed_headers,
        ["accept", "content-type", "host", "x-amz-date"]
    );
    let auth = sent.header("authorization").unwrap();
    assert_eq!(SigV4::parse(auth).unwrap(), sig);
    assert!(auth.starts_with(&format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/us-west-2/bedrock/aws4_request, SignedHeaders=",
        bedrock::ACCESS_KEY_ID,
        &sent.header("x-amz-date").unwrap()[..8]
    )));
}

#[tokio::test]
async fn session_tokens_and_api_keys_authenticate() {
    let mock = MockProvider::start_bedrock().await;
    let mut d = dep(&mock, "amazon.nova-lite-v1:0");
    d.aws.as_mut().unwrap().session_token = Some(Secret::new("FwoGZXIvYXdzEXAMPLETOKEN"));
    let res = call(Endpoint::ChatCompletions, &chat("hi", false), d)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.header("x-amz-security-token"),
        Some("FwoGZXIvYXdzEXAMPLETOKEN")
    );
    let sig = bedrock::verify_sigv4(&sent, bedrock::SECRET_ACCESS_KEY).unwrap();
    assert!(sig
        .signed_headers
        .contains(&"x-amz-security-token".to_owned()));

    // A Bedrock API key, without AWS credentials.
    let mut d = dep(&mock, "amazon.nova-lite-v1:0");
    d.aws = None;
    d.api_key = Some(Secret::new(bedrock::API_KEY));
    let res = call(Endpoint::ChatCompletions, &chat("hi", false), d)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        mock.last_request().unwrap().bearer_token(),
        Some(bedrock::API_KEY)
    );
}

#[tokio::test]
async fn bad_credentials_and_missing_region() {
    let mock = MockProvider::start_bedrock().await;
    let mut d = dep(&mock, CLAUDE);
    d.aws.as_mut().unwrap().secret_access_key = Some(Secret::new("not-the-secret"));
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d).await;
    assert_eq!(e.status(), 403);
    assert!(!e.retryable());
    assert_eq!(e.code().as_deref(), Some("invalid_api_key"));
    assert!(
        e.message()
            .contains("signature we calculated does not match"),
        "{}",
        e.message()
    );

    // No region and an api_base that does not name one: nothing is sent.
    let mut d = dep(&mock, CLAUDE);
    d.aws.as_mut().unwrap().region = None;
    let before = mock.request_count();
    let e = call_err(Endpoint::ChatCompletions, &chat("hi", false), d).await;
    assert_eq!(e.status(), 500);
    assert!(e.message().contains("aws_region_name"), "{}", e.message());
    assert_eq!(mock.request_count(), before);
}

pub(crate) fn weather_tools() -> Value {
    json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}])
}

#[tokio::test]
async fn tool_calls_both_ways() {
    let mock = MockProvider::start_bedrock().await;
    let mut body = chat("weather in Paris?", false);
    body["tools"] = weather_tools();
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    let res = call(Endpoint::ChatCompletions, &body, dep(&mock, CLAUDE))
        .await
        .unwrap();
    let out = json(&bytes(res).await);
    assert_eq!(
        out["choices"][0],
        json!({"index": 0, "logprobs": null, "finish_reason": "tool_calls",
               "message": {"role": "assistant", "content": null, "tool_calls": [
                   {"id": "tooluse_mock000001", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"mock\"}"}}]}})
    );
    let sent = mock.last_request().unwrap().json;
    assert_eq!(
        sent["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather for a city",
                  "inputSchema": {"json": {"type": "object",
                      "properties": {"city": {"type": "string"}}, "required": ["city"]}}}}],
               "toolChoice": {"tool": {"name": "get_weather"}}})
    );

    // The call and its result go back as toolUse and toolResult blocks.
    let mut body = chat_body(json!([
        {"role": "user", "content": "weather in Paris?"},
        out["choices"][0]["message"].clone(),
        {"role": "tool", "tool_call_id": "tooluse_mock000001", "content": "18C and sunny"}
    ]));
    body["tools"] = weather_tools();
    let res = call(Endpoint::ChatCompletions, &body, dep(&mock, CLAUDE))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let sent = mock.last_request().unwrap().json;
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": [{"text": "weather in Paris?"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "tooluse_mock000001",
                "name": "get_weather", "input": {"city": "mock"}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_mock000001",
                "content": [{"text": "18C and sunny"}]}}]}
        ])
    );
    assert!(sent["toolConfig"].get("toolChoice").is_none());
}

#[tokio::test]
async fn cached_prompt_tokens_are_reported() {
    let mock = MockProvider::start_bedrock().await;
    let body = chat_body(json!([
        {"role": "system", "content": [{"type": "text", "text": "a long shared preamble",
                                        "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "hello"}
    ]));
    let res = call(Endpoint::ChatCompletions, &body, dep(&mock, CLAUDE))
        .await
        .unwrap();
    let slot = usage_of(&res);
    let out = json(&bytes(res).await);
    assert_eq!(
        out["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9,
               "prompt_tokens_details": {"cached_tokens": 4},
               "cache_creation_input_tokens": 0})
    );
    let u = slot.get().unwrap();
    assert_eq!(
        u.prompt_tokens_details.as_ref().unwrap().cached_tokens,
        Some(4)
    );
    assert_eq!(
        mock.last_request().unwrap().json["system"],
        json!([{"text": "a long shared preamble"}, {"cachePoint": {"type": "default"}}])
    );
}

#[tokio::test]
async fn upstream_errors_keep_status_and_retryability() {
    let mock = MockProvider::start_bedrock().await;
    for (status, kind, retryable, code) in [
        (
            429,
            "ThrottlingException",
            true,
            Some("rate_limit_exceeded"),
        ),
        (400, "ValidationException", false, None),
        (
            403,
            "AccessDeniedException",
            false,
            Some("permission_denied"),
        ),
        (
            404,
            "ResourceNotFoundException",
            false,
            Some("model_not_found"),
        ),
        (
            503,
            "ServiceUnavailableException",
            true,
            Some("service_unavailable"),
        ),
        (500, "InternalServerException", true, None),
    ] {
        mock.push(bedrock::error(status, kind, "upstream says no"));
        let e = call_err(
            Endpoint::ChatCompletions,
            &chat("hi", false),
            dep(&mock, CLAUDE),
        )
        .await;
        assert_eq!(e.status(), status, "{kind}");
        assert_eq!(e.retryable(), retryable, "{kind}");
        assert_eq!(e.code().as_deref(), code, "{kind}");
        assert_eq!(e.message(), "bedrock (deployment br-0): upstream says no");
    }
    mock.push(bedrock::error(429, "ThrottlingException", "slow").with_header("retry-after", "3"));
    let e = call_err(
        Endpoint::ChatCompletions,
        &chat("hi", true),
        dep(&mock, CLAUDE),
    )
    .await;
    assert_eq!(e.status(), 429);
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(3)));
}

#[tokio::test]
async fn invalid_answers_are_bad_gateway() {
    let mock = MockProvider::start_bedrock().await;
    mock.push(Behaviour::InvalidBody);
    let e = call_err(
        Endpoint::ChatCompletions,
        &chat("hi", false),
        dep(&mock, CLAUDE),
    )
    .await;
    assert_eq!(e.status(), 502);
    assert!(e.retryable());
    assert_eq!(e.code().as_deref(), Some("invalid_upstream_response"));
    mock.push(Behaviour::json(
        200,
        &json!({"output": {}, "stopReason": "end_turn"}),
    ));
    let e = call_err(
        Endpoint::ChatCompletions,
        &chat("hi", false),
        dep(&mock, CLAUDE),
    )
    .await;
    assert_eq!(e.status(), 502);
}

#[tokio::test]
async fn drop_params_off_and_on() {
    let mock = MockProvider::start_bedrock().await;
    let mut body = chat("hi", false);
    body["seed"] = json!(42);
    body["top_k"] = json!(5);
    let e = call_err(Endpoint::ChatCompletions, &body, dep(&mock, CLAUDE)).await;
    assert_eq!(e.status(), 400);
    assert_eq!(e.code().as_deref(), Some("unsupported_parameter"));
    assert!(e.message().contains("`seed`"), "{}", e.message());
    assert_eq!(mock.request_count(), 0);

    body["drop_params"] = json!(true);
    let res = call(Endpoint::ChatCompletions, &body, dep(&mock, CLAUDE))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let sent = mock.last_request().unwrap().json;
    assert!(sent.get("seed").is_none());
    assert_eq!(sent["additionalModelRequestFields"], json!({"top_k": 5}));

    let mut d = dep(&mock, CLAUDE);
    d.drop_params = true;
    d.default_params.insert("max_tokens".into(), json!(3));
    let mut body = chat("one two three four", false);
    body["presence_penalty"] = json!(1);
    let out = json(&bytes(call(Endpoint::ChatCompletions, &body, d).await.unwrap()).await);
    assert_eq!(out["choices"][0]["message"]["content"], "mock reply to:");
    assert_eq!(out["choices"][0]["finish_reason"], "length");
    assert_eq!(
        mock.last_request().unwrap().json["inferenceConfig"],
        json!({"maxTokens": 3})
    );
}

#[tokio::test]
async fn embeddings_titan_and_cohere() {
    let mock = MockProvider::start_bedrock().await;
    let body = json!({"model": "group", "input": "hello world", "dimensions": 4});
    let res = call(
        Endpoint::Embeddings,
        &body,
        dep(&mock, "amazon.titan-embed-text-v2:0"),
    )
    .await
    .unwrap();
    let slot = usage_of(&res);
    let out = json(&bytes(res).await);
    assert_eq!(out["object"], "list");
    assert_eq!(out["model"], "amazon.titan-embed-text-v2:0");
    assert_eq!(out["data"][0]["object"], "embedding");
    assert_eq!(out["data"][0]["embedding"].as_array().unwrap().len(), 4);
    assert_eq!(out["usage"], json!({"prompt_tokens": 2, "total_tokens": 2}));
    assert_eq!(total(slot.get()), 2);
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/model/amazon.titan-embed-text-v2%3A0/invoke");
    assert_eq!(
        sent.json,
        json!({"inputText": "hello world", "dimensions": 4})
    );
    bedrock::verify_sigv4(&sent, bedrock::SECRET_ACCESS_KEY).unwrap();

    let mut b64 = body.clone();
    b64["encoding_format"] = json!("base64");
    let out = json(
        &bytes(
            call(
                Endpoint::Embeddings,
                &b64,
                dep(&mock, "amazon.titan-embed-text-v2:0"),
            )
            .await
            .unwrap(),
        )
        .await,
    );
    assert_eq!(out["data"][0]["embedding"].as_str().unwrap().len(), 24);

    let e = call_err(
        Endpoint::Embeddings,
        &json!({"model": "group", "input": ["a", "b"]}),
        dep(&mock, "amazon.titan-embed-text-v2:0"),
    )
    .await;
    assert_eq!(e.status(), 400);
    assert_eq!(e.code().as_deref(), Some("unsupported_endpoint"));

    let res = call(
        Endpoint::Embeddings,
        &json!({"model": "group", "input": ["a b", "c"]}),
        dep(&mock, "cohere.embed-english-v3"),
    )
    .await
    .unwrap();
    let out = json(&bytes(res).await);
    assert_eq!(out["data"].as_array().unwrap().len(), 2);
    assert_eq!(out["data"][1]["index"], 1);
    assert_eq!(
        mock.last_request().unwrap().json,
        json!({"texts": ["a b", "c"], "input_type": "search_document"})
    );
}

#[tokio::test]
async fn legacy_completions() {
    let mock = MockProvider::start_bedrock().await;
    let body = json!({"model": "group", "prompt": "Say hi", "max_tokens": 10, "temperature": 0});
    let res = call(Endpoint::Completions, &body, dep(&mock, CLAUDE))
        .await
        .unwrap();
    let out = json(&bytes(res).await);
    assert_eq!(out["object"], "text_completion");
    assert_eq!(
        out["choices"],
        json!([{"text": "mock reply to: Say hi", "index": 0, "logprobs": null,
                "finish_reason": "stop"}])
    );
    assert_eq!(
        mock.last_request().unwrap().json,
        json!({"messages": [{"role": "user", "content": [{"text": "Say hi"}]}],
               "inferenceConfig": {"maxTokens": 10, "temperature": 0}})
    );
    let mut stream = body.clone();
    stream["stream"] = json!(true);
    let e = call_err(Endpoint::Completions, &stream, dep(&mock, CLAUDE)).await;
    assert_eq!(e.status(), 400);
    assert_eq!(e.code().as_deref(), Some("unsupported_endpoint"));
}

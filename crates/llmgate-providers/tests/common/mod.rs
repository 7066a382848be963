//! Helpers shared by the integration tests: deployments, requests, reading answers.

#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use llmgate_core::{
    ApiError, BoxBody, BoxError, Deployment, DeploymentSpec, Endpoint, LlmRequest, ProviderKind,
    Secret, Usage, UsageSlot,
};
use llmgate_providers::{ProviderService, UpstreamClient, UpstreamClientConfig};
use serde_json::Value;
use tower::ServiceExt;

pub fn service() -> ProviderService {
    ProviderService::new(UpstreamClient::new(UpstreamClientConfig::default()).unwrap())
}

/// A deployment `id` of `provider` at `api_base`, upstream model `upstream-model`, key `sk-test`.
pub fn spec(id: &str, provider: ProviderKind, api_base: &str) -> DeploymentSpec {
    let mut d = DeploymentSpec::new(id, "group", provider, "upstream-model");
    d.api_base = Some(api_base.into());
    d.api_key = Some(Secret::new("sk-test"));
    d
}

pub fn request(endpoint: Endpoint, body: &Value, spec: DeploymentSpec) -> http::Request<()> {
    let llm = LlmRequest::parse(endpoint, body.to_string().as_bytes()).unwrap();
    let mut req = http::Request::new(());
    req.extensions_mut().insert(llm);
    req.extensions_mut().insert(Deployment(Arc::new(spec)));
    req
}

pub fn chat(content: &str, stream: bool) -> Value {
    serde_json::json!({
        "model": "group",
        "messages": [{"role": "user", "content": content}],
        "stream": stream
    })
}

pub async fn call(
    endpoint: Endpoint,
    body: &Value,
    spec: DeploymentSpec,
) -> Result<http::Response<BoxBody>, BoxError> {
    service().oneshot(request(endpoint, body, spec)).await
}

/// Calls and expects an error.
pub async fn call_err(endpoint: Endpoint, body: &Value, spec: DeploymentSpec) -> ApiError {
    match call(endpoint, body, spec).await {
        Ok(res) => panic!("expected an error, got {}", res.status()),
        Err(e) => ApiError::from_box(e),
    }
}

pub async fn bytes(res: http::Response<BoxBody>) -> Bytes {
    res.into_body().collect().await.unwrap().to_bytes()
}

pub fn json(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap()
}

/// The `data:` payloads of a complete SSE body, checking its framing.
pub fn sse_data(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(
        text.ends_with("\n\n"),
        "an SSE body ends with a blank line: {text:?}"
    );
    text.split_terminator("\n\n")
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                .to_owned()
        })
        .collect()
}

/// The JSON chunks of a complete OpenAI stream, checking it ends with `[DONE]`.
pub fn chunks(body: &[u8]) -> Vec<Value> {
    let mut data = sse_data(body);
    assert_eq!(data.pop().as_deref(), Some("[DONE]"));
    data.iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// The text of a chat stream's content deltas.
pub fn streamed_text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

pub fn usage_of(res: &http::Response<BoxBody>) -> UsageSlot {
    res.extensions()
        .get::<UsageSlot>()
        .expect("a UsageSlot")
        .clone()
}

pub fn total(u: Option<&Usage>) -> u64 {
    u.expect("usage").total_tokens
}

pub fn deployment_of(res: &http::Response<BoxBody>) -> String {
    res.extensions()
        .get::<Deployment>()
        .expect("a Deployment")
        .id
        .to_string()
}

/// A loopback address nothing listens on.
pub async fn refused_base() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/v1")
}

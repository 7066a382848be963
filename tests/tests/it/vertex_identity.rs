//! Vertex AI without a key file: workload identity (tokens from the metadata server that
//! `GCE_METADATA_HOST` names) and a user's application-default credentials (the refresh-token
//! grant), each against its mock and the mock Vertex that accepts only the tokens they issued.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use llmgate_testkit::{authorized_user_json, AccessTokens};
use llmgate_tests::{MockProvider, TestGateway};

fn config(base: &str) -> String {
    format!(
        "model_list:
  - model_name: flash
    litellm_params:
      model: vertex_ai/gemini-2.5-flash
      vertex_project: proj
      api_base: {base}
      num_retries: 0
"
    )
}

#[tokio::test]
async fn workload_identity_tokens_come_from_the_metadata_server() {
    let tokens = AccessTokens::new(Duration::from_secs(3600));
    let metadata = MockProvider::start_gce_metadata(tokens.clone()).await;
    let vertex = MockProvider::start_vertex(Some(tokens)).await;
    let host = metadata.metadata_host();
    let gw =
        TestGateway::start_with_env(&config(&vertex.base_url()), &[("GCE_METADATA_HOST", &host)])
            .await;

    for _ in 0..3 {
        let res = gw.chat("flash", "hello metadata").await;
        assert_eq!(res.status, 200, "{}", res.text());
    }
    assert_eq!(
        vertex.last_request().unwrap().bearer_token(),
        Some("ya29.metadata-1")
    );
    assert_eq!(metadata.request_count(), 1, "one token for three requests");
    let asked = metadata.last_request().unwrap();
    assert_eq!(asked.method, http::Method::GET);
    assert_eq!(
        asked.path_and_query,
        "/computeMetadata/v1/instance/service-accounts/default/token\
         ?scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform"
    );
    assert_eq!(asked.header("metadata-flavor"), Some("Google"));
}

#[tokio::test]
async fn no_metadata_server_is_a_503_naming_it() {
    let vertex = MockProvider::start_vertex(Some(AccessTokens::new(Duration::from_secs(60)))).await;
    // Nothing listens on port 1 of loopback: the connection is refused.
    let gw = TestGateway::start_with_env(
        &config(&vertex.base_url()),
        &[("GCE_METADATA_HOST", "127.0.0.1:1")],
    )
    .await;
    let e = gw.chat("flash", "hi").await.openai_error(503);
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("the metadata server's default service account")
            && message.contains("http://127.0.0.1:1/computeMetadata/v1/"),
        "{message}"
    );
    assert_eq!(e["code"], "vertex_credentials");
    assert_eq!(vertex.request_count(), 0);
}

#[tokio::test]
async fn user_credentials_use_the_refresh_token_grant() {
    let tokens = AccessTokens::new(Duration::from_secs(3600));
    let token = MockProvider::start_google_token(tokens.clone()).await;
    let vertex = MockProvider::start_vertex(Some(tokens)).await;
    let path = std::env::temp_dir().join(format!("llmgate-adc-{}-user.json", std::process::id()));
    std::fs::write(&path, authorized_user_json(&token.token_url())).unwrap();
    let gw = TestGateway::start_with_env(
        &config(&vertex.base_url()),
        &[("GOOGLE_APPLICATION_CREDENTIALS", path.to_str().unwrap())],
    )
    .await;
    let res = gw.chat("flash", "hello adc").await;
    let _ = std::fs::remove_file(&path);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        vertex.last_request().unwrap().bearer_token(),
        Some("ya29.mock-1")
    );
    let form = String::from_utf8(token.last_request().unwrap().body.to_vec()).unwrap();
    assert!(
        form.starts_with("grant_type=refresh_token&client_id="),
        "{form}"
    );
}

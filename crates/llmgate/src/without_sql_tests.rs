//! What the facade does without its `sql` feature (`cargo test -p llmgate --no-default-features`,
//! run by `.ci/check-features`): it serves with a master key and keys of the caller's, and
//! refuses a `database_url` it cannot honour rather than keep keys and spend in memory.

// Test-only (`cfg(all(test, ...))`, which clippy's test detection does not see).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;

use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use llmgate_config::EnvLookup;
use tower::ServiceExt;

use crate::{BuildError, Gateway};

/// No process environment: the test sees only what it sets.
struct Env(HashMap<&'static str, &'static str>);

impl EnvLookup for Env {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|v| (*v).to_owned())
    }
}

fn config(extra: &str) -> llmgate_config::Config {
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-4o\n      mock_response: hello\ngeneral_settings:\n  master_key: sk-master\n{extra}"
    );
    llmgate_config::from_yaml(&yaml, Path::new("."), &Env(HashMap::new()))
        .expect("valid config")
        .config
}

#[tokio::test]
async fn a_database_url_is_refused_naming_the_feature() {
    let err = Gateway::open(config("  database_url: postgres://root@127.0.0.1/test\n"))
        .await
        .expect_err("no SQL store in this build");
    assert!(matches!(err, BuildError::NotInThisBuild(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("database_url") && text.contains("`sql` feature"),
        "{text}"
    );
}

#[tokio::test]
async fn the_master_key_serves_without_a_database() {
    let gateway = Gateway::open(config("")).await.expect("builds");
    let call = |key: &str| {
        Request::post("/v1/chat/completions")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from_static(
                br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
            )))
            .unwrap()
    };
    let ok = gateway.service().oneshot(call("sk-master")).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body = ok.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("hello"));
    let refused = gateway.service().oneshot(call("sk-other")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    // The key API is not in this build: 404 in OpenAI's shape, not a 500.
    let keys = Request::post("/key/generate")
        .header("authorization", "Bearer sk-master")
        .body(Full::new(bytes::Bytes::from_static(b"{}")))
        .unwrap();
    assert_eq!(
        gateway.service().oneshot(keys).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

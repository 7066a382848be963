//! What `Config::deployments()` reads for providers with their own parameters: the
//! OpenAI-compatible prefixes' base URLs and key variables, Vertex, watsonx, SageMaker and
//! Replicate credentials (split from `deployments.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns"
)]

mod common;

use common::{env, load_ok, shown};
use llmgate_core::{DeploymentSpec, ProviderKind};
use serde_json::json;

fn one(params: &str) -> DeploymentSpec {
    let yaml = format!("model_list:\n  - model_name: m\n    litellm_params:\n{params}");
    let loaded = load_ok(&yaml, &env(&[("OPENAI_API_KEY", "sk-x")]));
    loaded.config.deployments().remove(0)
}

#[test]
fn openai_compatible_prefixes_take_their_rows_base_url_and_key_variable() {
    let yaml = "model_list:\n  - model_name: sonar\n    litellm_params:\n      model: perplexity/sonar-pro\n  - model_name: qwen\n    litellm_params:\n      model: dashscope/qwen-max\n      api_base: https://dashscope.example/v1\n";
    let loaded = load_ok(
        yaml,
        &env(&[
            ("PERPLEXITYAI_API_KEY", "pplx-1"),
            ("DASHSCOPE_API_KEY", "ds-1"),
        ]),
    );
    let d = loaded.config.deployments();
    assert_eq!(d[0].provider.as_str(), "perplexity");
    assert_eq!(&*d[0].model, "sonar-pro");
    assert_eq!(d[0].api_base.as_deref(), Some("https://api.perplexity.ai"));
    assert_eq!(d[0].api_key.as_ref().unwrap().expose(), "pplx-1");
    assert_eq!(
        d[1].api_base.as_deref(),
        Some("https://dashscope.example/v1")
    );
    assert_eq!(d[1].api_key.as_ref().unwrap().expose(), "ds-1");

    // A row without a default base URL needs one.
    let problems = llmgate_config::from_yaml(
        "model_list:\n  - model_name: x\n    litellm_params:\n      model: openai_like/x\n",
        std::path::Path::new("/nonexistent"),
        &env(&[]),
    )
    .unwrap_err();
    assert_eq!(
        shown(&problems.0),
        ["error: model_list[0].litellm_params.api_base: api_base is required for openai_like"]
    );
}

#[test]
fn vertex_params_come_from_keys_then_the_environment() {
    use llmgate_core::{GoogleCredentials, VertexParams};
    let d = one("      model: vertex_ai/gemini-2.5-flash
      vertex_project: proj
      vertex_location: europe-west4
      vertex_credentials: /keys/sa.json
");
    assert_eq!(d.provider, ProviderKind::VertexAi);
    assert_eq!(&*d.model, "gemini-2.5-flash");
    assert_eq!(d.api_base, None);
    assert_eq!(
        d.vertex,
        Some(VertexParams {
            project: Some("proj".into()),
            location: "europe-west4".into(),
            credentials: Some(GoogleCredentials::File("/keys/sa.json".into())),
        })
    );

    // LiteLLM's alias; the project from the inline credentials, the default location.
    let d = one("      model: gemini_vertex/gemini-2.5-pro
      vertex_credentials: '{\"type\": \"service_account\", \"project_id\": \"from-key\"}'
");
    assert_eq!(d.provider, ProviderKind::VertexAi);
    let v = d.vertex.unwrap();
    assert_eq!(v.project.as_deref(), Some("from-key"));
    assert_eq!(&*v.location, "us-central1");
    assert!(matches!(v.credentials, Some(GoogleCredentials::Json(_))));

    let yaml = "model_list:\n  - model_name: m\n    litellm_params:\n      model: vertex_ai/claude-sonnet-4\n";
    let loaded = load_ok(
        yaml,
        &env(&[
            ("VERTEXAI_PROJECT", "env-proj"),
            ("VERTEXAI_LOCATION", "global"),
            ("GOOGLE_APPLICATION_CREDENTIALS", "/adc.json"),
        ]),
    );
    let v = loaded.config.deployments().remove(0).vertex.unwrap();
    assert_eq!(v.project.as_deref(), Some("env-proj"));
    assert_eq!(&*v.location, "global");
    assert_eq!(
        v.credentials,
        Some(GoogleCredentials::File("/adc.json".into()))
    );

    // No credentials and no api_key: the metadata server (workload identity), whose host
    // GCE_METADATA_HOST overrides as in Google's libraries.
    let d = one("      model: vertex_ai/gemini-2.5-flash\n      vertex_project: p\n");
    assert_eq!(
        d.vertex.unwrap().credentials,
        Some(GoogleCredentials::Metadata(
            "metadata.google.internal".into()
        ))
    );
    let loaded = load_ok(
        yaml,
        &env(&[
            ("VERTEXAI_PROJECT", "p"),
            ("GCE_METADATA_HOST", "127.0.0.1:8080"),
        ]),
    );
    let v = loaded.config.deployments().remove(0).vertex.unwrap();
    assert_eq!(
        v.credentials,
        Some(GoogleCredentials::Metadata("127.0.0.1:8080".into()))
    );
    // gcloud's application-default credentials file comes before the metadata server.
    let dir = std::env::temp_dir().join(format!("llmgate-gcloud-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let adc = dir.join("application_default_credentials.json");
    std::fs::write(&adc, r#"{"type": "authorized_user"}"#).unwrap();
    let loaded = load_ok(
        yaml,
        &env(&[
            ("VERTEXAI_PROJECT", "p"),
            ("CLOUDSDK_CONFIG", dir.to_str().unwrap()),
        ]),
    );
    let _ = std::fs::remove_dir_all(&dir);
    let v = loaded.config.deployments().remove(0).vertex.unwrap();
    assert_eq!(
        v.credentials,
        Some(GoogleCredentials::File(adc.to_str().unwrap().into()))
    );
    // An api_key (express mode) is sent instead.
    let d = one("      model: vertex_ai/gemini-2.5-flash\n      api_key: AIza-x\n");
    assert_eq!(d.vertex.unwrap().credentials, None);
}

#[test]
fn watsonx_params_come_out_of_the_defaults_and_from_the_environment() {
    let d = one("      model: watsonx/ibm/granite-3-8b-instruct
      api_key: k
      api_base: https://us-south.ml.cloud.ibm.com
      project_id: proj
      temperature: 0.2
");
    assert_eq!(d.provider, ProviderKind::Watsonx);
    assert_eq!(&*d.model, "ibm/granite-3-8b-instruct");
    let w = d.watsonx.unwrap();
    assert_eq!(w.project_id.as_deref(), Some("proj"));
    assert_eq!(&*w.iam_url, "https://iam.cloud.ibm.com/identity/token");
    assert_eq!(
        serde_json::Value::Object(d.default_params),
        json!({"temperature": 0.2})
    );

    let yaml =
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: watsonx/ibm/granite\n";
    let loaded = load_ok(
        yaml,
        &env(&[
            ("WATSONX_URL", "https://eu-de.ml.cloud.ibm.com"),
            ("WATSONX_API_KEY", "env-key"),
            ("WATSONX_DEPLOYMENT_SPACE_ID", "space"),
            ("WATSONX_IAM_URL", "http://127.0.0.1:9/identity/token"),
        ]),
    );
    let d = loaded.config.deployments().remove(0);
    assert_eq!(
        d.api_base.as_deref(),
        Some("https://eu-de.ml.cloud.ibm.com")
    );
    assert_eq!(d.api_key.unwrap().expose(), "env-key");
    let w = d.watsonx.unwrap();
    assert_eq!((w.project_id, w.space_id.as_deref()), (None, Some("space")));
    assert_eq!(&*w.iam_url, "http://127.0.0.1:9/identity/token");
}

#[test]
fn sagemaker_and_replicate_load_with_their_credentials() {
    let yaml = "model_list:
  - model_name: tgi
    litellm_params:
      model: sagemaker/jumpstart-dft-hf-llm-mistral-7b
      temperature: 0.2
  - model_name: chat
    litellm_params:
      model: sagemaker_chat/my-chat-endpoint
      aws_region_name: eu-west-1
      model_id: ic-1
  - model_name: llama
    litellm_params:
      model: replicate/meta/meta-llama-3-8b-instruct
";
    let loaded = load_ok(
        yaml,
        &env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_REGION", "us-east-2"),
            ("REPLICATE_API_TOKEN", "r8_x"),
        ]),
    );
    assert!(loaded.notices.is_empty(), "{:?}", shown(&loaded.notices));
    let d = loaded.config.deployments();
    assert_eq!(d[0].provider, ProviderKind::Sagemaker);
    assert_eq!(&*d[0].model, "jumpstart-dft-hf-llm-mistral-7b");
    assert_eq!(
        d[0].api_base.as_deref(),
        Some("https://runtime.sagemaker.us-east-2.amazonaws.com")
    );
    let aws = d[0].aws.as_ref().unwrap();
    assert_eq!(aws.access_key_id.as_ref().unwrap().expose(), "AKID");
    assert_eq!(d[1].provider, ProviderKind::SagemakerChat);
    assert_eq!(
        d[1].api_base.as_deref(),
        Some("https://runtime.sagemaker.eu-west-1.amazonaws.com")
    );
    assert_eq!(d[1].default_params["model_id"], "ic-1");
    assert_eq!(d[2].provider, ProviderKind::Replicate);
    assert_eq!(
        d[2].api_base.as_deref(),
        Some("https://api.replicate.com/v1")
    );
    assert_eq!(d[2].api_key.as_ref().unwrap().expose(), "r8_x");

    // No region: an error naming aws_region_name; no keys: a warning.
    let problems = common::all_problems(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: sagemaker/ep\n",
        &env(&[]),
    );
    assert_eq!(
        problems,
        [
            "error: model_list[0].litellm_params.aws_region_name: sagemaker needs a region: set aws_region_name (or AWS_REGION), or api_base",
            "warning: model_list[0].litellm_params.aws_access_key_id: no AWS credentials (aws_access_key_id/aws_secret_access_key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY): requests will be sent unsigned and refused",
        ]
    );
}

//! A deployment: one `model_list` entry, resolved for serving.
//!
//! The facade builds these from the config; the router picks one per attempt and puts it in the
//! request's extensions as [`Deployment`]; the provider service calls it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use crate::provider::ProviderKind;

/// A secret (an API key). Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What `model_info` says about a deployment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelInfo {
    /// `mode`: `chat`, `completion`, `embedding`, ...
    pub mode: Option<String>,
    /// `base_model`: the model to price and size this deployment as.
    pub base_model: Option<String>,
    /// `max_input_tokens`.
    pub max_input_tokens: Option<u64>,
    /// `max_tokens` (output).
    pub max_tokens: Option<u64>,
    /// `input_cost_per_token` in USD.
    pub input_cost_per_token: Option<f64>,
    /// `output_cost_per_token` in USD.
    pub output_cost_per_token: Option<f64>,
    /// `cache_read_input_token_cost` in USD: input tokens read from the provider's prompt cache.
    pub cache_read_input_token_cost: Option<f64>,
    /// `cache_creation_input_token_cost` in USD: input tokens written to the prompt cache.
    pub cache_creation_input_token_cost: Option<f64>,
    /// `output_cost_per_reasoning_token` in USD.
    pub output_cost_per_reasoning_token: Option<f64>,
    /// `supported_endpoints` (LiteLLM's, such as `["/v1/chat/completions", "/v1/responses"]`):
    /// the API paths the deployment serves itself; `None` when the entry does not say.
    pub supported_endpoints: Option<Vec<String>>,
}

/// What LiteLLM's `mock_response` asks for: an answer without calling any provider.
#[derive(Debug, Clone, PartialEq)]
pub enum MockResponse {
    /// Answer with this assistant text.
    Text(Arc<str>),
    /// Fail as the provider would with this status (LiteLLM names exceptions, such as
    /// `litellm.RateLimitError`; the config maps them to statuses).
    Error {
        /// The status to fail with.
        status: u16,
        /// The message.
        message: Arc<str>,
    },
}

/// One deployment of a model group, ready to be called.
#[derive(Debug, Clone)]
pub struct DeploymentSpec {
    /// Stable id: `model_info.id`, else derived from the entry.
    pub id: Arc<str>,
    /// The public name (`model_name`), i.e. its model group.
    pub model_name: Arc<str>,
    /// The provider.
    pub provider: ProviderKind,
    /// The model id sent upstream (the part after the provider prefix).
    pub model: Arc<str>,
    /// `api_base`; when `None` the provider's default base URL applies.
    pub api_base: Option<Arc<str>>,
    /// `api_key`.
    pub api_key: Option<Secret>,
    /// `api_version` (Azure).
    pub api_version: Option<Arc<str>>,
    /// Extra headers sent with every upstream request (`extra_headers`, `headers`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `timeout`: the whole attempt's deadline.
    pub timeout: Option<Duration>,
    /// `stream_timeout`: deadline for a stream's first byte (and, when `stream_idle_timeout` is
    /// not set, the idle timeout between its events).
    pub stream_timeout: Option<Duration>,
    /// `stream_idle_timeout` (llmgate's own): the longest wait between two events of a stream
    /// after its head (the deployment's, else `router_settings.stream_idle_timeout`).
    pub stream_idle_timeout: Option<Duration>,
    /// `max_retries`.
    pub max_retries: Option<u32>,
    /// `cooldown_time`: how long this deployment is taken out of rotation after failing
    /// (overrides `router_settings.cooldown_time`).
    pub cooldown_time: Option<Duration>,
    /// `rpm` limit.
    pub rpm: Option<u64>,
    /// `tpm` limit.
    pub tpm: Option<u64>,
    /// `rpd`: requests per day (a llmgate extension, for free tiers).
    pub rpd: Option<u64>,
    /// `weight` for simple-shuffle.
    pub weight: Option<f64>,
    /// `mock_response`.
    pub mock_response: Option<MockResponse>,
    /// Other `litellm_params` (such as `temperature` or `max_tokens`): defaults merged into the
    /// request body sent upstream; the client's own values win.
    pub default_params: serde_json::Map<String, serde_json::Value>,
    /// `model_info`.
    pub model_info: ModelInfo,
    /// `drop_params` (the deployment's, else `litellm_settings.drop_params`): drop request
    /// parameters the provider does not support instead of failing with a 400.
    pub drop_params: bool,
    /// AWS credentials and region (Bedrock).
    pub aws: Option<AwsParams>,
    /// Google Cloud project, location and credentials (Vertex AI).
    pub vertex: Option<VertexParams>,
    /// The project or space and the IAM endpoint (IBM watsonx.ai).
    pub watsonx: Option<WatsonxParams>,
}

/// AWS credentials and region for Bedrock: `aws_access_key_id`, `aws_secret_access_key`,
/// `aws_session_token`, `aws_region_name` (else the standard `AWS_*` environment variables).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwsParams {
    /// Access key id.
    pub access_key_id: Option<Secret>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// Session token, for temporary credentials.
    pub session_token: Option<Secret>,
    /// Region, such as `us-east-1`.
    pub region: Option<Arc<str>>,
}

/// Vertex AI's project, location and credentials: `vertex_project`, `vertex_location`,
/// `vertex_credentials` (else `VERTEXAI_PROJECT`, `VERTEXAI_LOCATION`,
/// `GOOGLE_APPLICATION_CREDENTIALS`, `gcloud`'s application-default file, the metadata
/// server).
#[derive(Debug, Clone, PartialEq)]
pub struct VertexParams {
    /// The Google Cloud project id; `None` only in express mode (an `api_key`).
    pub project: Option<Arc<str>>,
    /// The location (`us-central1`, ..., or `global`).
    pub location: Arc<str>,
    /// The credentials exchanged for access tokens (the metadata server when nothing else is
    /// configured); `None` when the deployment's `api_key` is sent instead.
    pub credentials: Option<GoogleCredentials>,
}

/// IBM watsonx.ai's project (or deployment space) and where its API key is exchanged for IAM
/// tokens: `project_id`, `space_id`, `token` (else `WATSONX_PROJECT_ID`,
/// `WATSONX_DEPLOYMENT_SPACE_ID`, `WATSONX_TOKEN`, `WATSONX_IAM_URL`).
#[derive(Debug, Clone, PartialEq)]
pub struct WatsonxParams {
    /// The watsonx.ai project the requests run in.
    pub project_id: Option<Arc<str>>,
    /// The deployment space, instead of a project.
    pub space_id: Option<Arc<str>>,
    /// IBM Cloud IAM's token endpoint (`https://iam.cloud.ibm.com/identity/token`).
    pub iam_url: Arc<str>,
    /// A bearer token given directly (no IAM exchange then).
    pub token: Option<Secret>,
}

/// Where a Google service account's (or `gcloud` user's) credentials JSON is, or the
/// metadata server that hands out the attached service account's tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GoogleCredentials {
    /// A path to the JSON file, read when a token is first needed.
    File(Arc<str>),
    /// The JSON itself.
    Json(Secret),
    /// The GCE/GKE/Cloud Run metadata server at this host (`metadata.google.internal`, or
    /// `GCE_METADATA_HOST`, which may carry a port): the default service account's tokens
    /// (workload identity), used when no credentials are configured.
    Metadata(Arc<str>),
}

impl fmt::Display for GoogleCredentials {
    /// Names the credentials without their contents: the file's path, or "the inline
    /// `vertex_credentials`".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoogleCredentials::File(path) => write!(f, "the credentials file {path}"),
            GoogleCredentials::Json(_) => f.write_str("the inline `vertex_credentials`"),
            GoogleCredentials::Metadata(host) => write!(
                f,
                "the metadata server's default service account (no vertex_credentials; {host})"
            ),
        }
    }
}

impl DeploymentSpec {
    /// A spec with only the required fields set; the rest empty.
    pub fn new(
        id: impl Into<Arc<str>>,
        model_name: impl Into<Arc<str>>,
        provider: ProviderKind,
        model: impl Into<Arc<str>>,
    ) -> Self {
        DeploymentSpec {
            id: id.into(),
            model_name: model_name.into(),
            provider,
            model: model.into(),
            api_base: None,
            api_key: None,
            api_version: None,
            headers: Vec::new(),
            timeout: None,
            stream_timeout: None,
            stream_idle_timeout: None,
            max_retries: None,
            cooldown_time: None,
            rpm: None,
            tpm: None,
            rpd: None,
            weight: None,
            mock_response: None,
            default_params: serde_json::Map::new(),
            model_info: ModelInfo::default(),
            drop_params: false,
            aws: None,
            vertex: None,
            watsonx: None,
        }
    }
}

impl DeploymentSpec {
    /// Whether the deployment serves OpenAI's Responses API itself, so `/v1/responses` is sent
    /// to it as it is rather than translated to chat completions:
    ///
    /// | deployment | native |
    /// |---|---|
    /// | `model_info.supported_endpoints` lists `/v1/responses` (or `/responses`), on a provider that speaks OpenAI's API or Ollama | yes |
    /// | `model_info.supported_endpoints` set without it | no (an opt-out, for `openai/` and `azure/` too) |
    /// | `azure/` | yes |
    /// | `openai/` on OpenAI's API (no `api_base`, or one on `api.openai.com`) | yes |
    /// | `openai/` with another `api_base`, `hosted_vllm/`, `ollama/`, every other OpenAI-compatible provider | only when declared |
    /// | Anthropic, Gemini, Vertex AI, Bedrock, watsonx | never (translated to their own APIs) |
    pub fn serves_responses(&self) -> bool {
        let speaks_openai = !matches!(
            self.provider,
            ProviderKind::Anthropic
                | ProviderKind::Gemini
                | ProviderKind::VertexAi
                | ProviderKind::Bedrock
                | ProviderKind::Watsonx
        );
        if let Some(list) = &self.model_info.supported_endpoints {
            let declared = list
                .iter()
                .any(|e| matches!(e.trim_end_matches('/'), "/v1/responses" | "/responses"));
            return declared && speaks_openai;
        }
        match self.provider {
            ProviderKind::Azure => true,
            ProviderKind::OpenAi => self
                .api_base
                .as_deref()
                .is_none_or(|b| b.contains("://api.openai.com")),
            _ => false,
        }
    }
}

/// Extension: the deployment chosen for this attempt (on the request) or that answered (on the
/// response).
#[derive(Debug, Clone)]
pub struct Deployment(pub Arc<DeploymentSpec>);

impl std::ops::Deref for Deployment {
    type Target = DeploymentSpec;
    fn deref(&self) -> &DeploymentSpec {
        &self.0
    }
}

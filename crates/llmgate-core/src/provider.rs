//! Which provider a deployment talks to, named as LiteLLM names it (`<provider>/<model>`).

use std::fmt;
use std::str::FromStr;

pub mod compatible;

pub use compatible::{CompatId, Compatible, Quirk, COMPATIBLE};

/// A provider, parsed from the prefix of `litellm_params.model`.
///
/// The dialect each one speaks, its default base URL and its auth header live in
/// `llmgate-providers`; this enum is only the shared name, so config validation and the
/// providers crate agree on what exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProviderKind {
    /// `openai/` (also a model with no prefix, as in LiteLLM).
    OpenAi,
    /// `azure/`: an Azure OpenAI deployment.
    Azure,
    /// `hosted_vllm/`: a vLLM server's OpenAI-compatible API.
    HostedVllm,
    /// `openrouter/`.
    OpenRouter,
    /// `groq/`.
    Groq,
    /// `mistral/`.
    Mistral,
    /// `nvidia_nim/`.
    NvidiaNim,
    /// `deepseek/`.
    DeepSeek,
    /// `together_ai/`.
    TogetherAi,
    /// `fireworks_ai/`.
    FireworksAi,
    /// `xai/`.
    Xai,
    /// `lm_studio/`.
    LmStudio,
    /// `huggingface/` (its OpenAI-compatible router).
    HuggingFace,
    /// `ollama/`.
    Ollama,
    /// `ollama_chat/`.
    OllamaChat,
    /// `anthropic/`.
    Anthropic,
    /// `gemini/` (Google AI Studio).
    Gemini,
    /// `vertex_ai/` (also LiteLLM's alias `gemini_vertex/`): Google Cloud's Vertex AI, Gemini
    /// models and Anthropic's on Vertex.
    VertexAi,
    /// `bedrock/`.
    Bedrock,
    /// `watsonx/`: IBM watsonx.ai's chat API, with IAM tokens from an API key.
    Watsonx,
    /// `sagemaker/`: a SageMaker endpoint serving Hugging Face TGI's text generation
    /// (`{"inputs", "parameters"}`), signed with AWS credentials.
    Sagemaker,
    /// `sagemaker_chat/`: a SageMaker endpoint serving OpenAI's chat API (TGI's messages API).
    SagemakerChat,
    /// `replicate/`: Replicate's predictions API.
    Replicate,
    /// A provider that speaks OpenAI's API under its own name (`perplexity/`, `cerebras/`,
    /// ...): a row of [`COMPATIBLE`].
    Compatible(CompatId),
}

/// Every provider with a name of its own, in documentation order; [`ProviderKind::all`] adds
/// the OpenAI-compatible ones of [`COMPATIBLE`].
pub const ALL_PROVIDERS: &[ProviderKind] = &[
    ProviderKind::OpenAi,
    ProviderKind::Azure,
    ProviderKind::HostedVllm,
    ProviderKind::OpenRouter,
    ProviderKind::Groq,
    ProviderKind::Mistral,
    ProviderKind::NvidiaNim,
    ProviderKind::DeepSeek,
    ProviderKind::TogetherAi,
    ProviderKind::FireworksAi,
    ProviderKind::Xai,
    ProviderKind::LmStudio,
    ProviderKind::HuggingFace,
    ProviderKind::Ollama,
    ProviderKind::OllamaChat,
    ProviderKind::Anthropic,
    ProviderKind::Gemini,
    ProviderKind::VertexAi,
    ProviderKind::Bedrock,
    ProviderKind::Watsonx,
    ProviderKind::Sagemaker,
    ProviderKind::SagemakerChat,
    ProviderKind::Replicate,
];

impl ProviderKind {
    /// Every provider: [`ALL_PROVIDERS`], then the rows of [`COMPATIBLE`].
    pub fn all() -> impl Iterator<Item = ProviderKind> {
        ALL_PROVIDERS
            .iter()
            .copied()
            .chain(CompatId::all().map(ProviderKind::Compatible))
    }

    /// The LiteLLM prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Compatible(id) => id.info().prefix,
            ProviderKind::OpenAi => "openai",
            ProviderKind::Azure => "azure",
            ProviderKind::HostedVllm => "hosted_vllm",
            ProviderKind::OpenRouter => "openrouter",
            ProviderKind::Groq => "groq",
            ProviderKind::Mistral => "mistral",
            ProviderKind::NvidiaNim => "nvidia_nim",
            ProviderKind::DeepSeek => "deepseek",
            ProviderKind::TogetherAi => "together_ai",
            ProviderKind::FireworksAi => "fireworks_ai",
            ProviderKind::Xai => "xai",
            ProviderKind::LmStudio => "lm_studio",
            ProviderKind::HuggingFace => "huggingface",
            ProviderKind::Ollama => "ollama",
            ProviderKind::OllamaChat => "ollama_chat",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::VertexAi => "vertex_ai",
            ProviderKind::Bedrock => "bedrock",
            ProviderKind::Watsonx => "watsonx",
            ProviderKind::Sagemaker => "sagemaker",
            ProviderKind::SagemakerChat => "sagemaker_chat",
            ProviderKind::Replicate => "replicate",
        }
    }

    /// The base URL used when a deployment sets no `api_base`; `None` where one is required
    /// (Azure, vLLM, Vertex AI, Bedrock, SageMaker, watsonx derive theirs from the deployment).
    pub fn default_api_base(self) -> Option<&'static str> {
        Some(match self {
            ProviderKind::OpenAi => "https://api.openai.com/v1",
            ProviderKind::OpenRouter => "https://openrouter.ai/api/v1",
            ProviderKind::Groq => "https://api.groq.com/openai/v1",
            ProviderKind::Mistral => "https://api.mistral.ai/v1",
            ProviderKind::NvidiaNim => "https://integrate.api.nvidia.com/v1",
            ProviderKind::DeepSeek => "https://api.deepseek.com/v1",
            ProviderKind::TogetherAi => "https://api.together.xyz/v1",
            ProviderKind::FireworksAi => "https://api.fireworks.ai/inference/v1",
            ProviderKind::Xai => "https://api.x.ai/v1",
            ProviderKind::LmStudio => "http://localhost:1234/v1",
            ProviderKind::HuggingFace => "https://router.huggingface.co/v1",
            ProviderKind::Ollama | ProviderKind::OllamaChat => "http://localhost:11434",
            ProviderKind::Anthropic => "https://api.anthropic.com",
            ProviderKind::Gemini => "https://generativelanguage.googleapis.com",
            ProviderKind::Replicate => "https://api.replicate.com/v1",
            ProviderKind::Compatible(id) => return id.info().api_base,
            ProviderKind::Azure
            | ProviderKind::HostedVllm
            | ProviderKind::VertexAi
            | ProviderKind::Bedrock
            | ProviderKind::Sagemaker
            | ProviderKind::SagemakerChat
            | ProviderKind::Watsonx => return None,
        })
    }

    /// The environment variable LiteLLM reads the API key from when a deployment sets no
    /// `api_key`.
    pub fn api_key_env(self) -> Option<&'static str> {
        Some(match self {
            ProviderKind::OpenAi => "OPENAI_API_KEY",
            ProviderKind::Azure => "AZURE_API_KEY",
            ProviderKind::HostedVllm => "HOSTED_VLLM_API_KEY",
            ProviderKind::OpenRouter => "OPENROUTER_API_KEY",
            ProviderKind::Groq => "GROQ_API_KEY",
            ProviderKind::Mistral => "MISTRAL_API_KEY",
            ProviderKind::NvidiaNim => "NVIDIA_NIM_API_KEY",
            ProviderKind::DeepSeek => "DEEPSEEK_API_KEY",
            ProviderKind::TogetherAi => "TOGETHERAI_API_KEY",
            ProviderKind::FireworksAi => "FIREWORKS_AI_API_KEY",
            ProviderKind::Xai => "XAI_API_KEY",
            ProviderKind::LmStudio => "LM_STUDIO_API_KEY",
            ProviderKind::HuggingFace => "HUGGINGFACE_API_KEY",
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
            ProviderKind::Gemini => "GEMINI_API_KEY",
            ProviderKind::Watsonx => "WATSONX_APIKEY",
            ProviderKind::Replicate => "REPLICATE_API_KEY",
            ProviderKind::Compatible(id) => return id.info().api_key_env,
            ProviderKind::Ollama
            | ProviderKind::OllamaChat
            | ProviderKind::VertexAi
            | ProviderKind::Bedrock
            | ProviderKind::Sagemaker
            | ProviderKind::SagemakerChat => return None,
        })
    }

    /// The environment variable LiteLLM reads the base URL from when a deployment sets no
    /// `api_base`.
    pub fn api_base_env(self) -> Option<&'static str> {
        Some(match self {
            ProviderKind::OpenAi => "OPENAI_API_BASE",
            ProviderKind::Azure => "AZURE_API_BASE",
            ProviderKind::HostedVllm => "HOSTED_VLLM_API_BASE",
            ProviderKind::LmStudio => "LM_STUDIO_API_BASE",
            ProviderKind::Ollama | ProviderKind::OllamaChat => "OLLAMA_API_BASE",
            ProviderKind::Watsonx => "WATSONX_URL",
            ProviderKind::Compatible(id) => return id.info().api_base_env,
            _ => return None,
        })
    }

    /// Splits `litellm_params.model` into provider and upstream model id, as LiteLLM does:
    /// the text before the first `/` names the provider; with no `/`, the provider is OpenAI.
    /// `openrouter/anthropic/claude-3.5-sonnet` is OpenRouter's `anthropic/claude-3.5-sonnet`.
    pub fn split_model(model: &str) -> Result<(ProviderKind, &str), UnknownProvider> {
        match model.split_once('/') {
            None => Ok((ProviderKind::OpenAi, model)),
            Some((prefix, rest)) => Ok((prefix.parse()?, rest)),
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// LiteLLM's other prefix for Vertex AI's Gemini models: parsed as [`ProviderKind::VertexAi`].
pub const VERTEX_ALIAS: &str = "gemini_vertex";

/// A model prefix that names no provider llmgate knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider \"{0}\"")]
pub struct UnknownProvider(pub String);

impl FromStr for ProviderKind {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == VERTEX_ALIAS {
            return Ok(ProviderKind::VertexAi);
        }
        ALL_PROVIDERS
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .or_else(|| CompatId::by_prefix(s).map(ProviderKind::Compatible))
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_litellm() {
        assert_eq!(
            ProviderKind::split_model("gpt-4o").unwrap(),
            (ProviderKind::OpenAi, "gpt-4o")
        );
        assert_eq!(
            ProviderKind::split_model("openrouter/anthropic/claude-3.5-sonnet").unwrap(),
            (ProviderKind::OpenRouter, "anthropic/claude-3.5-sonnet")
        );
        assert_eq!(
            ProviderKind::split_model("foo/bar")
                .unwrap_err()
                .to_string(),
            "unknown provider \"foo\""
        );
        for p in ProviderKind::all() {
            assert_eq!(p.as_str().parse::<ProviderKind>().unwrap(), p);
        }
        let (p, m) = ProviderKind::split_model("perplexity/sonar-pro").unwrap();
        assert_eq!((p.as_str(), m), ("perplexity", "sonar-pro"));
        assert_eq!(p.default_api_base(), Some("https://api.perplexity.ai"));
        assert_eq!(p.api_key_env(), Some("PERPLEXITYAI_API_KEY"));
        assert_eq!(
            ProviderKind::split_model("gemini_vertex/gemini-2.5-flash").unwrap(),
            (ProviderKind::VertexAi, "gemini-2.5-flash")
        );
    }
}

//! The seam between the service and the wire formats providers speak.
//!
//! A dialect knows three things about its providers: how to build the upstream request (URL,
//! auth header, body) from an [`llmgate_core::LlmRequest`] and a deployment; how to read a
//! complete answer back into OpenAI's shape; and how to turn each upstream stream event into
//! OpenAI stream chunks. Everything else (timeouts, the pooled client, error statuses, the
//! response extensions, the SSE relay's framing and error event) lives in [`crate::service`]
//! and [`crate::stream`] and is shared.
//!
//! Two kinds: [`openai_compat`](crate::openai_compat) for the providers that speak OpenAI's API
//! (answers need no translation, only URL and auth quirks), and the native dialects behind
//! [`crate::native::NativeDialect`] (Anthropic, Gemini, Ollama, Bedrock), which translate both
//! ways. Vertex AI has none yet.

use llmgate_core::ProviderKind;

use crate::native::NativeDialect;

/// Which wire format a provider speaks.
#[derive(Clone, Copy)]
pub(crate) enum Dialect {
    /// OpenAI's API (chat completions, completions, embeddings), with per-provider URL and
    /// auth quirks.
    OpenAiCompat(Flavor),
    /// A provider with its own API, translated both ways (see [`crate::native`]).
    Native(&'static dyn NativeDialect),
}

impl std::fmt::Debug for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dialect::OpenAiCompat(flavor) => f.debug_tuple("OpenAiCompat").field(flavor).finish(),
            Dialect::Native(_) => f.write_str("Native"),
        }
    }
}

/// The OpenAI-compatible providers' differences: where the endpoint lives and how the key is
/// sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `{api_base}{path}`, `Authorization: Bearer`.
    Standard,
    /// Mistral: as standard, but its API rejects `stream_options` (422 `extra_forbidden`) and
    /// sends usage in the last chunk of every stream unasked.
    Mistral,
    /// `{api_base}/openai/deployments/{model}{path}?api-version=..`, `api-key` header.
    Azure,
}

impl Dialect {
    /// The dialect `kind` speaks in this release, if any.
    pub(crate) fn of(kind: ProviderKind) -> Option<Dialect> {
        let flavor = match kind {
            ProviderKind::OpenAi
            | ProviderKind::HostedVllm
            | ProviderKind::OpenRouter
            | ProviderKind::Groq
            | ProviderKind::NvidiaNim
            | ProviderKind::DeepSeek
            | ProviderKind::TogetherAi
            | ProviderKind::FireworksAi
            | ProviderKind::Xai
            | ProviderKind::LmStudio
            | ProviderKind::HuggingFace => Flavor::Standard,
            ProviderKind::Mistral => Flavor::Mistral,
            ProviderKind::Azure => Flavor::Azure,
            ProviderKind::Ollama | ProviderKind::OllamaChat => {
                return Some(Dialect::Native(&crate::ollama::DIALECT))
            }
            ProviderKind::Anthropic => return Some(Dialect::Native(&crate::anthropic::DIALECT)),
            ProviderKind::Bedrock => return Some(Dialect::Native(&crate::bedrock::DIALECT)),
            ProviderKind::Gemini => return Some(Dialect::Native(&crate::gemini::DIALECT)),
            // Vertex AI: no dialect yet (config refuses it).
            _ => return None,
        };
        Some(Dialect::OpenAiCompat(flavor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::provider::ALL_PROVIDERS;

    #[test]
    fn openai_compatible_providers_are_served() {
        let served: Vec<_> = ALL_PROVIDERS
            .iter()
            .filter(|p| Dialect::of(**p).is_some())
            .map(|p| p.as_str())
            .collect();
        assert_eq!(served.len(), 18, "{served:?}");
        assert!(!served.contains(&"vertex_ai"));
        assert!(served.contains(&"anthropic"));
        assert!(served.contains(&"gemini"));
        assert!(served.contains(&"bedrock"));
    }
}

//! The providers that speak OpenAI's API under their own name: one row each, the one place to
//! add such a provider. A row gives LiteLLM's prefix, the default base URL (or none where the
//! deployment must say it), the variables LiteLLM reads its key and base URL from, and the
//! request quirks it needs. Requests go out as OpenAI's (`/chat/completions`, `/completions`,
//! `/embeddings` under the base), with `Authorization: Bearer <key>`.

/// What a provider needs beyond OpenAI's API as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Quirk {
    /// None: OpenAI's API as it is.
    None,
    /// Mistral's API: it refuses `stream_options` (so llmgate does not ask for a stream's
    /// usage; Mistral sends it unasked).
    Mistral,
}

/// One OpenAI-compatible provider (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Compatible {
    /// LiteLLM's prefix (`perplexity`).
    pub prefix: &'static str,
    /// The base URL when a deployment sets no `api_base`; `None`: `api_base` is required.
    pub api_base: Option<&'static str>,
    /// The variable LiteLLM reads the key from when a deployment sets no `api_key`.
    pub api_key_env: Option<&'static str>,
    /// The variable LiteLLM reads the base URL from when a deployment sets no `api_base`.
    pub api_base_env: Option<&'static str>,
    /// What its API needs beyond OpenAI's.
    pub quirk: Quirk,
    /// What it is, for the docs and messages.
    pub what: &'static str,
}

const fn row(
    prefix: &'static str,
    api_base: Option<&'static str>,
    api_key_env: Option<&'static str>,
    api_base_env: Option<&'static str>,
    what: &'static str,
) -> Compatible {
    Compatible {
        prefix,
        api_base,
        api_key_env,
        api_base_env,
        quirk: Quirk::None,
        what,
    }
}

/// Every OpenAI-compatible provider without a dialect of its own, in documentation order.
pub const COMPATIBLE: &[Compatible] = &[
    row("perplexity", Some("https://api.perplexity.ai"), Some("PERPLEXITYAI_API_KEY"), None, "Perplexity"),
    row("cerebras", Some("https://api.cerebras.ai/v1"), Some("CEREBRAS_API_KEY"), None, "Cerebras"),
    row("github", Some("https://models.inference.ai.azure.com"), Some("GITHUB_API_KEY"), None, "GitHub Models"),
    row("custom_openai", None, Some("OPENAI_API_KEY"), Some("OPENAI_API_BASE"), "any OpenAI-compatible server"),
    row("openai_like", None, None, None, "any OpenAI-compatible server"),
    row("azure_ai", None, Some("AZURE_AI_API_KEY"), Some("AZURE_AI_API_BASE"), "Azure AI Foundry models (its OpenAI-compatible inference API)"),
    row("deepinfra", Some("https://api.deepinfra.com/v1/openai"), Some("DEEPINFRA_API_KEY"), None, "DeepInfra"),
    row("cloudflare", None, Some("CLOUDFLARE_API_KEY"), Some("CLOUDFLARE_API_BASE"), "Cloudflare Workers AI (its OpenAI-compatible endpoint, https://api.cloudflare.com/client/v4/accounts/<account id>/ai/v1)"),
    row("databricks", None, Some("DATABRICKS_API_KEY"), Some("DATABRICKS_API_BASE"), "Databricks model serving (https://<workspace>/serving-endpoints)"),
    row("dashscope", Some("https://dashscope-intl.aliyuncs.com/compatible-mode/v1"), Some("DASHSCOPE_API_KEY"), Some("DASHSCOPE_API_BASE"), "Alibaba Cloud Model Studio (Qwen)"),
    row("moonshot", Some("https://api.moonshot.ai/v1"), Some("MOONSHOT_API_KEY"), Some("MOONSHOT_API_BASE"), "Moonshot AI (Kimi)"),
    row("cohere", Some("https://api.cohere.ai/compatibility/v1"), Some("COHERE_API_KEY"), None, "Cohere (its OpenAI compatibility API: chat and embeddings)"),
    row("cohere_chat", Some("https://api.cohere.ai/compatibility/v1"), Some("COHERE_API_KEY"), None, "Cohere chat (its OpenAI compatibility API)"),
    row("voyage", Some("https://api.voyageai.com/v1"), Some("VOYAGE_API_KEY"), None, "Voyage AI embeddings"),
    row("jina_ai", Some("https://api.jina.ai/v1"), Some("JINA_AI_API_KEY"), None, "Jina AI embeddings"),
    row("infinity", None, Some("INFINITY_API_KEY"), Some("INFINITY_API_BASE"), "an Infinity embedding server"),
    row("xinference", Some("http://127.0.0.1:9997/v1"), Some("XINFERENCE_API_KEY"), Some("XINFERENCE_API_BASE"), "a Xinference server"),
    Compatible {
        quirk: Quirk::Mistral,
        ..row("codestral", Some("https://codestral.mistral.ai/v1"), Some("CODESTRAL_API_KEY"), Some("CODESTRAL_API_BASE"), "Mistral's Codestral endpoint")
    },
    row("text-completion-openai", Some("https://api.openai.com/v1"), Some("OPENAI_API_KEY"), Some("OPENAI_API_BASE"), "OpenAI, for /v1/completions"),
    row("llamafile", Some("http://127.0.0.1:8080/v1"), Some("LLAMAFILE_API_KEY"), Some("LLAMAFILE_API_BASE"), "a llamafile server"),
    row("litellm_proxy", None, Some("LITELLM_PROXY_API_KEY"), Some("LITELLM_PROXY_API_BASE"), "another LiteLLM (or llmgate) proxy"),
    row("nebius", Some("https://api.studio.nebius.ai/v1"), Some("NEBIUS_API_KEY"), Some("NEBIUS_API_BASE"), "Nebius AI Studio"),
    row("novita", Some("https://api.novita.ai/v3/openai"), Some("NOVITA_API_KEY"), None, "Novita AI"),
    row("sambanova", Some("https://api.sambanova.ai/v1"), Some("SAMBANOVA_API_KEY"), None, "SambaNova Cloud"),
];

/// A row of [`COMPATIBLE`], by its place there: cheap to copy, compare and hash, so
/// [`crate::ProviderKind`] stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompatId(u8);

impl CompatId {
    /// The row.
    pub fn info(self) -> &'static Compatible {
        // Ids are only made by `by_prefix` and `all`, from places in the table.
        &COMPATIBLE[usize::from(self.0) % COMPATIBLE.len()]
    }

    /// The row whose prefix is `prefix`.
    pub fn by_prefix(prefix: &str) -> Option<CompatId> {
        COMPATIBLE
            .iter()
            .position(|c| c.prefix == prefix)
            .and_then(|i| u8::try_from(i).ok())
            .map(CompatId)
    }

    /// Every row, in order.
    pub fn all() -> impl Iterator<Item = CompatId> {
        (0..COMPATIBLE.len()).filter_map(|i| u8::try_from(i).ok().map(CompatId))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_unique_and_every_row_has_an_id() {
        let all: Vec<_> = CompatId::all().collect();
        assert_eq!(all.len(), COMPATIBLE.len());
        for id in all {
            assert_eq!(CompatId::by_prefix(id.info().prefix), Some(id));
        }
        for c in COMPATIBLE {
            if let Some(base) = c.api_base {
                assert!(base.starts_with("http") && !base.ends_with('/'), "{base}");
            }
        }
    }
}

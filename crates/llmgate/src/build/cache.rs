//! Turns `litellm_settings.cache` / `cache_params` into the [`CacheLayer`] (the layer crate
//! never sees config types). See `docs/caching.md`.

use std::sync::Arc;

use llmgate_cache::{CacheLayer, CacheStore, LocalStore, Mode, RedisStore, RedisStoreConfig};
use llmgate_config::{CacheParams, Config};
use llmgate_core::Endpoint;
use llmgate_router::ModelTable;

use crate::gateway::BuildError;

/// Entries the local cache holds unless `max_size_in_memory` says otherwise.
const DEFAULT_MAX_ENTRIES: u64 = 10_000;
/// Bytes the local cache holds unless `max_size_in_memory_mb` says otherwise.
const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// The cache's store, or `None` when `litellm_settings.cache` is not `true` (no layer at all,
/// so a gateway without a cache pays nothing for it). Built once: the entries outlive config
/// reloads.
pub(crate) fn store(config: &Config) -> Result<Option<Arc<dyn CacheStore>>, BuildError> {
    let settings = &config.litellm_settings;
    if settings.cache != Some(true) {
        return Ok(None);
    }
    let default = CacheParams::default();
    let p = settings.cache_params.as_ref().unwrap_or(&default);
    // LiteLLM's proxy uses Redis when `type` is not given.
    let store: Arc<dyn CacheStore> = match p.cache_type.as_deref().unwrap_or("redis") {
        "local" => {
            let bytes = p
                .max_size_in_memory_mb
                .map_or(DEFAULT_MAX_BYTES, |mb| (mb * 1024.0 * 1024.0) as u64);
            Arc::new(LocalStore::new(
                p.max_size_in_memory.unwrap_or(DEFAULT_MAX_ENTRIES),
                bytes,
            ))
        }
        "redis" => Arc::new(redis(p)?),
        other => {
            return Err(BuildError::Cache(format!(
                "unsupported cache type \"{other}\""
            )))
        }
    };
    Ok(Some(store))
}

/// The cache layer over `store` (from [`store`]) with `config`'s settings (ttl, namespace,
/// mode, per-key, call types, entry size), its keys' model groups resolved in `table`.
pub(crate) fn layer(
    config: &Config,
    store: Option<Arc<dyn CacheStore>>,
    table: &Arc<ModelTable>,
) -> Option<CacheLayer> {
    let store = store?;
    let default = CacheParams::default();
    let p = config
        .litellm_settings
        .cache_params
        .as_ref()
        .unwrap_or(&default);
    let mut layer = CacheLayer::new(store)
        .per_key(p.per_key.unwrap_or(false))
        .namespace(p.namespace.as_deref())
        .mode(match p.mode.as_deref() {
            Some("default_off") => Mode::DefaultOff,
            _ => Mode::DefaultOn,
        });
    if let Some(ttl) = p.ttl {
        layer = layer.ttl(ttl);
    }
    if let Some(kb) = p.max_size_per_item {
        layer =
            layer.max_entry_bytes(usize::try_from(kb.saturating_mul(1024)).unwrap_or(usize::MAX));
    }
    if !p.supported_call_types.is_empty() {
        let endpoints: Vec<Endpoint> = p
            .supported_call_types
            .iter()
            .filter_map(|t| endpoint(t))
            .collect();
        layer = layer.endpoints(&endpoints);
    }
    let table = table.clone();
    Some(layer.model_group(Arc::new(move |model: &str| table.resolve(model).cloned())))
}

/// The endpoint a LiteLLM call type caches (`None` for endpoints llmgate does not serve).
fn endpoint(call_type: &str) -> Option<Endpoint> {
    match call_type {
        "completion" | "acompletion" => Some(Endpoint::ChatCompletions),
        "text_completion" | "atext_completion" => Some(Endpoint::Completions),
        "embedding" | "aembedding" => Some(Endpoint::Embeddings),
        _ => None,
    }
}

fn redis(p: &CacheParams) -> Result<RedisStore, BuildError> {
    let mut cfg = RedisStoreConfig::default();
    cfg.url = p.url.as_ref().map(|u| u.expose().to_owned());
    if let Some(host) = &p.host {
        cfg.host.clone_from(host);
    }
    if let Some(port) = p.port {
        cfg.port = port;
    }
    cfg.password = p.password.as_ref().map(|s| s.expose().to_owned());
    RedisStore::new(cfg)
        .map_err(|e| BuildError::Cache(format!("litellm_settings.cache_params: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_types_map_to_endpoints() {
        assert_eq!(endpoint("acompletion"), Some(Endpoint::ChatCompletions));
        assert_eq!(endpoint("text_completion"), Some(Endpoint::Completions));
        assert_eq!(endpoint("aembedding"), Some(Endpoint::Embeddings));
        assert_eq!(endpoint("rerank"), None);
    }
}

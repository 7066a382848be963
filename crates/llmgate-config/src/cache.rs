//! `litellm_settings.cache_params`: the response cache's backend and defaults.

use crate::node::Node;
use crate::problems::key_path;
use crate::schema::CacheParams;
use crate::walk::Walk;

/// LiteLLM's call types, as `supported_call_types` names them. Those of endpoints llmgate does
/// not serve (transcription, rerank, ...) are accepted and cache nothing.
pub(crate) const CALL_TYPES: &[&str] = &[
    "completion",
    "acompletion",
    "text_completion",
    "atext_completion",
    "embedding",
    "aembedding",
    "transcription",
    "atranscription",
    "rerank",
    "arerank",
    "speech",
    "aspeech",
    "responses",
    "aresponses",
];

/// Walks `cache_params`. A Redis cache without `host`/`url` takes `REDIS_URL`, `REDIS_HOST`,
/// `REDIS_PORT` and `REDIS_PASSWORD` from the environment, as LiteLLM does.
pub(crate) fn cache_params(w: &mut Walk<'_>, node: &Node, path: &str) -> CacheParams {
    let mut out = CacheParams::default();
    for (key, value) in w.entries(node, path) {
        let p = key_path(path, key);
        match key {
            "type" => {
                out.cache_type = w.string(value, &p);
                if let Some(t) = &out.cache_type {
                    if !matches!(t.as_str(), "local" | "redis") {
                        w.report.error(
                            &p,
                            format!(
                                "cache type \"{t}\" is not supported by llmgate: use \"local\" \
                                 (in memory) or \"redis\""
                            ),
                        );
                    }
                }
            }
            "host" => out.host = w.string(value, &p),
            "port" => out.port = w.port(value, &p),
            "password" => out.password = w.secret(value, &p),
            "url" | "redis_url" => out.url = w.secret(value, &p),
            "ttl" => out.ttl = w.seconds(value, &p),
            "namespace" => out.namespace = w.string(value, &p),
            "supported_call_types" => {
                out.supported_call_types = w.string_list(value, &p);
                for t in &out.supported_call_types {
                    if !CALL_TYPES.contains(&t.as_str()) {
                        w.report.error(
                            &p,
                            format!(
                                "unknown call type \"{t}\": expected some of {}",
                                CALL_TYPES.join(", ")
                            ),
                        );
                    }
                }
            }
            "mode" => {
                out.mode = w.string(value, &p);
                if let Some(m) = &out.mode {
                    if !matches!(m.as_str(), "default_on" | "default_off") {
                        w.report.error(
                            &p,
                            format!("unknown mode \"{m}\": expected default_on or default_off"),
                        );
                    }
                }
            }
            "max_size_in_memory" => out.max_size_in_memory = w.u64(value, &p),
            "max_size_in_memory_mb" => out.max_size_in_memory_mb = w.mebibytes(value, &p),
            "max_size_per_item" => out.max_size_per_item = w.u64(value, &p),
            "per_key" => out.per_key = w.bool(value, &p),
            // Options of LiteLLM backends llmgate does not have (s3_bucket_name,
            // similarity_threshold, redis_startup_nodes, ...).
            _ => {
                let _ = w.json(value, &p);
                crate::settings::not_yet_active(w, value, &p, "this cache setting");
            }
        }
    }
    if out.cache_type.as_deref().unwrap_or("redis") == "redis" && out.url.is_none() {
        if out.host.is_none() {
            if let Some(url) = w.env.lookup("REDIS_URL") {
                out.url = Some(llmgate_core::Secret::new(url));
            }
            out.host = w.env.lookup("REDIS_HOST");
        }
        if out.port.is_none() {
            out.port = w
                .env
                .lookup("REDIS_PORT")
                .and_then(|p| p.trim().parse().ok());
        }
        if out.password.is_none() {
            out.password = w
                .env
                .lookup("REDIS_PASSWORD")
                .map(llmgate_core::Secret::new);
        }
    }
    out
}

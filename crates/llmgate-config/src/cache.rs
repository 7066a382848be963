//! `litellm_settings.cache_params`: the response cache's backend and defaults.

use crate::node::Node;
use crate::schema::CacheParams;
use crate::table::Handle::Read;
use crate::table::{walk_table, Table};
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

/// The keys of `cache_params` llmgate reads; options of LiteLLM backends llmgate does not have
/// (`s3_bucket_name`, `similarity_threshold`, `redis_startup_nodes`, ...) go to
/// [`backend_option`].
#[rustfmt::skip]
const CACHE: &Table<CacheParams> = &[
    ("type", Read(|w, out, v, p| {
        out.cache_type = w.string(v, p);
        if let Some(t) = &out.cache_type {
            if !matches!(t.as_str(), "local" | "redis") {
                w.report.error(
                    p,
                    format!(
                        "cache type \"{t}\" is not supported by llmgate: use \"local\" \
                     (in memory) or \"redis\""
                    ),
                );
            }
        }
    })),
    ("host", Read(|w, out, v, p| out.host = w.string(v, p))),
    ("port", Read(|w, out, v, p| out.port = w.port(v, p))),
    ("password", Read(|w, out, v, p| out.password = w.secret(v, p))),
    ("url", Read(|w, out, v, p| out.url = w.secret(v, p))),
    ("redis_url", Read(|w, out, v, p| out.url = w.secret(v, p))),
    ("ttl", Read(|w, out, v, p| out.ttl = w.seconds(v, p))),
    ("namespace", Read(|w, out, v, p| out.namespace = w.string(v, p))),
    ("supported_call_types", Read(|w, out, v, p| {
        out.supported_call_types = w.string_list(v, p);
        for t in &out.supported_call_types {
            if !CALL_TYPES.contains(&t.as_str()) {
                w.report.error(
                    p,
                    format!(
                        "unknown call type \"{t}\": expected some of {}",
                        CALL_TYPES.join(", ")
                    ),
                );
            }
        }
    })),
    ("mode", Read(|w, out, v, p| {
        out.mode = w.string(v, p);
        if let Some(m) = &out.mode {
            if !matches!(m.as_str(), "default_on" | "default_off") {
                w.report.error(
                    p,
                    format!("unknown mode \"{m}\": expected default_on or default_off"),
                );
            }
        }
    })),
    ("max_size_in_memory", Read(|w, out, v, p| out.max_size_in_memory = w.u64(v, p))),
    ("max_size_in_memory_mb", Read(|w, out, v, p| out.max_size_in_memory_mb = w.mebibytes(v, p))),
    ("max_size_per_item", Read(|w, out, v, p| out.max_size_per_item = w.u64(v, p))),
    ("per_key", Read(|w, out, v, p| out.per_key = w.bool(v, p))),
];

/// A LiteLLM backend's option: read (so its environment references are checked) and noted
/// as not active yet.
fn backend_option(w: &mut Walk<'_>, _: &mut CacheParams, _: &str, value: &Node, path: &str) {
    let _ = w.json(value, path);
    crate::settings::not_yet_active(w, value, path, "this cache setting");
}

/// Walks `cache_params`. A Redis cache without `host`/`url` takes `REDIS_URL`, `REDIS_HOST`,
/// `REDIS_PORT` and `REDIS_PASSWORD` from the environment, as LiteLLM does.
pub(crate) fn cache_params(w: &mut Walk<'_>, node: &Node, path: &str) -> CacheParams {
    let mut out = CacheParams::default();
    walk_table(w, &mut out, node, path, CACHE, backend_option);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_list_each_key_once() {
        crate::table::assert_each_key_once("cache_params", CACHE);
    }
}

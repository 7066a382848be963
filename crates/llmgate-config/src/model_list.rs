//! `model_list`: each entry's `model_name`, `litellm_params` (`params.rs`) and `model_info`.

use std::collections::HashMap;

use llmgate_core::ModelInfo;

use crate::node::Node;
use crate::params::{litellm_params, Costs};
use crate::problems::{index_path, key_path};
use crate::schema::{LitellmParams, ModelEntry};
use crate::settings::not_yet_active;
use crate::table::Handle::{Read, Unenforced};
use crate::table::{unknown, walk_table, Table};
use crate::walk::Walk;

/// Walks `model_list`. Entries with errors are left out (the load fails anyway).
/// Deployment ids must be unique; a repeated one is reported at the later entry.
pub(crate) fn model_list(w: &mut Walk<'_>, node: &Node, path: &str) -> Vec<ModelEntry> {
    let mut out = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, item) in w.items(node, path).iter().enumerate() {
        let entry_path = index_path(path, i);
        let Some(entry) = entry(w, item, i, &entry_path) else {
            continue;
        };
        if let Some(earlier) = ids.get(&entry.id) {
            w.report.error(
                &key_path(&key_path(&entry_path, "model_info"), "id"),
                format!(
                    "duplicate deployment id \"{}\" (also used by {path}[{earlier}])",
                    entry.id
                ),
            );
            continue;
        }
        ids.insert(entry.id.clone(), i);
        out.push(entry);
    }
    out
}

/// A `model_list` entry as its table reads it.
#[derive(Default)]
struct Entry {
    model_name: Option<String>,
    params: Option<(LitellmParams, Costs)>,
    info: (Option<String>, ModelInfo),
    saw_name: bool,
    saw_params: bool,
}

/// The keys of a `model_list` entry; any other is unknown.
#[rustfmt::skip]
const ENTRY: &Table<Entry> = &[
    ("model_name", Read(|w, e, v, p| {
        e.saw_name = true;
        e.model_name = w.non_empty_string(v, p);
        if let Some(name) = &e.model_name {
            w.group_names.insert(name.clone());
        }
    })),
    ("litellm_params", Read(|w, e, v, p| {
        e.saw_params = true;
        e.params = litellm_params(w, v, p);
    })),
    ("model_info", Read(|w, e, v, p| e.info = model_info(w, v, p))),
];

fn entry(w: &mut Walk<'_>, node: &Node, index: usize, path: &str) -> Option<ModelEntry> {
    let mut read = Entry::default();
    walk_table(w, &mut read, node, path, ENTRY, unknown);
    if !read.saw_name {
        w.report
            .error(&key_path(path, "model_name"), "missing required key");
    }
    if !read.saw_params {
        w.report
            .error(&key_path(path, "litellm_params"), "missing required key");
    }
    let model_name = read.model_name?;
    let (params, costs) = read.params?;
    let (id, mut model_info) = read.info;
    model_info.input_cost_per_token = model_info.input_cost_per_token.or(costs.0);
    model_info.output_cost_per_token = model_info.output_cost_per_token.or(costs.1);
    let id = id.unwrap_or_else(|| format!("{model_name}-{index}"));
    Some(ModelEntry {
        model_name,
        id,
        litellm_params: params,
        model_info,
    })
}

/// `model_info` as its table reads it.
#[derive(Default)]
struct Info {
    id: Option<String>,
    info: ModelInfo,
    max_output_tokens: Option<u64>,
}

const TEAM_MODELS: &str = "team-only models are";

/// The keys of `model_info` llmgate reads; [`info_rest`] decides the others.
#[rustfmt::skip]
const INFO: &Table<Info> = &[
    ("id", Read(|w, i, v, p| i.id = w.non_empty_string(v, p))),
    ("mode", Read(|w, i, v, p| i.info.mode = w.string(v, p))),
    ("base_model", Read(|w, i, v, p| i.info.base_model = w.string(v, p))),
    ("max_input_tokens", Read(|w, i, v, p| i.info.max_input_tokens = w.u64(v, p))),
    ("max_tokens", Read(|w, i, v, p| i.info.max_tokens = w.u64(v, p))),
    ("max_output_tokens", Read(|w, i, v, p| i.max_output_tokens = w.u64(v, p))),
    ("input_cost_per_token", Read(|w, i, v, p| i.info.input_cost_per_token = w.non_negative(v, p))),
    ("output_cost_per_token", Read(|w, i, v, p| {
        i.info.output_cost_per_token = w.non_negative(v, p);
    })),
    ("cache_read_input_token_cost", Read(|w, i, v, p| {
        i.info.cache_read_input_token_cost = w.non_negative(v, p);
    })),
    ("cache_creation_input_token_cost", Read(|w, i, v, p| {
        i.info.cache_creation_input_token_cost = w.non_negative(v, p);
    })),
    ("output_cost_per_reasoning_token", Read(|w, i, v, p| {
        i.info.output_cost_per_reasoning_token = w.non_negative(v, p);
    })),
    ("supported_endpoints", Read(|w, i, v, p| {
        i.info.supported_endpoints = Some(w.string_list(v, p));
    })),
    ("team_id", Unenforced(TEAM_MODELS)),
    ("team_public_model_name", Unenforced(TEAM_MODELS)),
];

/// LiteLLM's model metadata llmgate reads but does not use yet, by name; the rest of the
/// metadata is recognised by [`info_rest`] by prefix or suffix.
const INFO_METADATA: &[&str] = &[
    "description",
    "access_groups",
    "litellm_provider",
    "tier",
    "db_model",
    "output_vector_size",
    "tpm",
    "rpm",
    "health_check_model",
];

/// A key [`INFO`] does not list: LiteLLM's other metadata (`supports_*`, costs, ...) is
/// noted as not active yet; anything else is unknown.
fn info_rest(w: &mut Walk<'_>, _: &mut Info, key: &str, value: &Node, path: &str) {
    if key.starts_with("supports_")
        || key.contains("_cost_per_")
        || key.ends_with("_cost")
        || INFO_METADATA.contains(&key)
    {
        not_yet_active(
            w,
            value,
            path,
            "model metadata beyond mode, base model, limits and cost",
        );
    } else {
        let known = std::mem::take(&mut w.known_keys);
        w.report.unknown_key(path, key, known.iter().copied());
        w.known_keys = known;
    }
}

/// `model_info`: its id, and what the rest says about the deployment.
fn model_info(w: &mut Walk<'_>, node: &Node, path: &str) -> (Option<String>, ModelInfo) {
    let mut read = Info::default();
    walk_table(w, &mut read, node, path, INFO, info_rest);
    let Info {
        id,
        mut info,
        max_output_tokens,
    } = read;
    info.max_tokens = info.max_tokens.or(max_output_tokens);
    (id, info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_list_each_key_once() {
        crate::table::assert_each_key_once("model_list[]", ENTRY);
        crate::table::assert_each_key_once("model_info", INFO);
    }
}

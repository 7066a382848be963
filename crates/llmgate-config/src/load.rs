//! The top of the file: sections, `include`, `environment_variables`; and the sidecar config.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::env::{self, EnvLookup, Sources};
use crate::general::general_settings;
use crate::model_list::model_list;
use crate::node::{self, Node};
use crate::problems::{index_path, key_path, Problem, Problems};
use crate::schema::Config;
use crate::settings::{litellm_settings, router_settings};
use crate::table::Handle::{NotYetActive, Read, Unenforced};
use crate::table::{dispatch, unknown, Table};
use crate::validate::validate;
use crate::walk::Walk;
use crate::Loaded;

/// Walks a parsed document into a [`Config`], collecting every problem.
pub(crate) fn load_tree(
    root: Node,
    base_dir: &Path,
    process: &dyn EnvLookup,
    dotenv: Result<HashMap<String, String>, String>,
) -> Result<Loaded, Problems> {
    let mut w = Walk::new(Sources {
        config: BTreeMap::new(),
        process,
        dotenv: HashMap::new(),
    });
    match dotenv {
        Ok(vars) => w.env.dotenv = vars,
        Err(message) => w.report.error(".env", message),
    }
    let top = top_entries(&mut w, root);
    let top = Node::Map(includes(&mut w, top, base_dir));
    let sections = w.entries(&top, "");

    let mut config = Config {
        config_dir: base_dir.to_path_buf(),
        ..Config::default()
    };
    // First, so references anywhere else can use them.
    if let Some((_, vars)) = sections.iter().find(|(k, _)| *k == "environment_variables") {
        config.environment_variables = environment_variables(&mut w, vars, "environment_variables");
        w.env.config = config.environment_variables.clone();
    }
    for (key, value) in &sections {
        let path = key_path("", key);
        dispatch(&mut w, &mut config, key, value, &path, SECTIONS, unknown);
    }
    if config.general_settings.master_key.is_none() {
        config.general_settings.master_key = w
            .env
            .lookup("LITELLM_MASTER_KEY")
            .map(llmgate_core::Secret::new);
    }
    if config.general_settings.database_url.is_none() {
        config.general_settings.database_url =
            w.env.lookup("DATABASE_URL").map(llmgate_core::Secret::new);
    }
    config.general_settings.ui_username = w.env.lookup("UI_USERNAME");
    config.general_settings.ui_password =
        w.env.lookup("UI_PASSWORD").map(llmgate_core::Secret::new);
    let alerting = &mut config.general_settings.alerting;
    alerting.slack_webhook_url = w
        .env
        .lookup("SLACK_WEBHOOK_URL")
        .map(llmgate_core::Secret::new);
    alerting.webhook_url = w.env.lookup("WEBHOOK_URL").map(llmgate_core::Secret::new);
    crate::alerting::check_urls(alerting, &mut w.report);
    validate(&mut config, &w.group_names, &w.refs, &mut w.report);

    let has_errors = w.report.error_count() > 0;
    let problems = w.report.into_sorted();
    if has_errors {
        Err(Problems(problems))
    } else {
        Ok(Loaded {
            config,
            notices: problems,
        })
    }
}

/// The document's top-level entries; a document that is not a mapping is an error.
fn top_entries(w: &mut Walk<'_>, root: Node) -> Vec<(String, Node)> {
    match root {
        Node::Map(entries) => entries,
        Node::Null => Vec::new(),
        other => {
            w.report.error(
                "",
                format!(
                    "expected a mapping (model_list, router_settings, ...) at the top of the \
                     file, found {}",
                    other.kind()
                ),
            );
            Vec::new()
        }
    }
}

/// A LiteLLM section llmgate has nothing for: a warning.
fn unsupported_section(w: &mut Walk<'_>, _: &mut Config, _: &Node, path: &str) {
    w.report
        .warning(path, "LiteLLM section not supported by llmgate, ignored");
}

/// The sections of the file; any other is unknown. `environment_variables` is read before
/// the others and `include` merged before the walk, so their rows do nothing.
#[rustfmt::skip]
const SECTIONS: &Table<Config> = &[
    ("model_list", Read(|w, c, v, p| c.model_list = model_list(w, v, p))),
    ("router_settings", Read(|w, c, v, p| c.router_settings = router_settings(w, v, p))),
    ("litellm_settings", Read(|w, c, v, p| c.litellm_settings = litellm_settings(w, v, p))),
    ("general_settings", Read(|w, c, v, p| c.general_settings = general_settings(w, v, p))),
    ("environment_variables", Read(|_, _, _, _| {})),
    ("include", Read(|_, _, _, _| {})),
    ("credential_list", NotYetActive("credential_list")),
    ("guardrails", Unenforced("guardrails are")),
    ("callback_settings", Read(unsupported_section)),
    ("mcp_servers", Read(unsupported_section)),
    ("mcp_tools", Read(unsupported_section)),
    ("assistant_settings", Read(unsupported_section)),
    ("files_settings", Read(unsupported_section)),
    ("finetune_settings", Read(unsupported_section)),
    ("vector_store_registry", Read(unsupported_section)),
    ("prompts", Read(unsupported_section)),
    ("search_tools", Read(unsupported_section)),
    ("pass_through_endpoints", Read(unsupported_section)),
];

/// `environment_variables`: names to scalar values. A value may itself reference the process
/// environment or `.env` (`os.environ/NAME`, `${NAME}`), but not the map it belongs to.
fn environment_variables(w: &mut Walk<'_>, node: &Node, path: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in w.entries(node, path) {
        let p = key_path(path, name);
        if !env::is_var_name(name) {
            w.report.error(&p, "not a valid environment variable name");
            continue;
        }
        let Some(text) = value.scalar_text() else {
            if !value.is_null() {
                w.report.error(
                    &p,
                    format!(
                        "expected a string, number or boolean, found {}",
                        value.kind()
                    ),
                );
            }
            continue;
        };
        let resolved = if let Node::Str(_) = value {
            let sources = &w.env;
            match env::resolve(&text, &|n| sources.lookup_outside_config(n)) {
                Ok(v) => Some(v),
                Err(missing) => {
                    for m in missing {
                        w.report.error(&p, m.message());
                    }
                    None
                }
            }
        } else {
            Some(text)
        };
        if let Some(v) = resolved {
            out.insert(name.to_owned(), v);
        }
    }
    out
}

/// LiteLLM's `include: [file.yaml, ...]`: each file (relative to the config's directory) is
/// read and its sections merged in; a list section (`model_list`) is extended, any other
/// section replaced.
fn includes(
    w: &mut Walk<'_>,
    mut top: Vec<(String, Node)>,
    base_dir: &Path,
) -> Vec<(String, Node)> {
    let Some(pos) = top.iter().position(|(k, _)| k == "include") else {
        return top;
    };
    let (_, include) = top.remove(pos);
    let files: Vec<(String, String)> = match &include {
        Node::Str(_) => w
            .string(&include, "include")
            .map(|f| ("include".to_owned(), f))
            .into_iter()
            .collect(),
        _ => w
            .items(&include, "include")
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let p = index_path("include", i);
                w.non_empty_string(item, &p).map(|f| (p, f))
            })
            .collect(),
    };
    for (path, file) in files {
        let full = base_dir.join(&file);
        let text = match std::fs::read_to_string(&full) {
            Ok(text) => text,
            Err(e) => {
                w.report
                    .error(&path, format!("cannot read {}: {e}", full.display()));
                continue;
            }
        };
        let entries = match node::parse(&text) {
            Ok(Node::Map(entries)) => entries,
            Ok(Node::Null) => Vec::new(),
            Ok(other) => {
                w.report.error(
                    &path,
                    format!(
                        "{file}: expected a mapping at the top, found {}",
                        other.kind()
                    ),
                );
                continue;
            }
            Err(problem) => {
                w.report
                    .error(&path, format!("{file}: {}", problem.message));
                continue;
            }
        };
        for (key, value) in entries {
            if key == "include" {
                w.report.error(
                    &path,
                    format!("{file}: an included file cannot include others"),
                );
                continue;
            }
            match top.iter_mut().find(|(k, _)| *k == key) {
                Some((_, existing)) => match (existing, value) {
                    (Node::Seq(have), Node::Seq(more)) => have.extend(more),
                    (slot, value) => *slot = value,
                },
                None => top.push((key, value)),
            }
        }
    }
    top
}

/// The config `litellm --model X --api_base Y` serves; see [`crate::sidecar`].
pub(crate) fn sidecar(
    model: &str,
    api_base: Option<&str>,
    api_key: Option<&str>,
    env: &dyn EnvLookup,
) -> Result<Loaded, Problems> {
    let mut params = vec![("model".to_owned(), Node::Str(model.to_owned()))];
    if let Some(base) = api_base {
        params.push(("api_base".to_owned(), Node::Str(base.to_owned())));
    }
    if let Some(key) = api_key {
        params.push(("api_key".to_owned(), Node::Str(key.to_owned())));
    }
    let entry = |name: &str| {
        Node::Map(vec![
            ("model_name".to_owned(), Node::Str(name.to_owned())),
            ("litellm_params".to_owned(), Node::Map(params.clone())),
        ])
    };
    let root = Node::Map(vec![(
        "model_list".to_owned(),
        Node::Seq(vec![entry(model), entry(crate::validate::CATCH_ALL)]),
    )]);
    match load_tree(root, Path::new(""), env, Ok(HashMap::new())) {
        Ok(mut loaded) => {
            loaded.notices = sidecar_paths(loaded.notices);
            Ok(loaded)
        }
        Err(Problems(problems)) => Err(Problems(sidecar_paths(problems))),
    }
}

/// Names the command-line flags instead of the generated entries; the catch-all entry repeats
/// the first one's problems, so its own are dropped.
fn sidecar_paths(problems: Vec<Problem>) -> Vec<Problem> {
    const FLAGS: &[(&str, &str)] = &[
        ("model_list[0].litellm_params.api_base", "--api_base"),
        ("model_list[0].litellm_params.api_key", "--api_key"),
        ("model_list[0].litellm_params", "--model"),
        ("model_list[0].model_name", "--model"),
    ];
    let mut out: Vec<Problem> = Vec::new();
    for mut p in problems {
        if p.path.starts_with("model_list[1]") {
            continue;
        }
        if let Some((_, flag)) = FLAGS.iter().find(|(prefix, _)| p.path.starts_with(prefix)) {
            p.path = (*flag).to_owned();
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_list_each_key_once() {
        crate::table::assert_each_key_once("sections", SECTIONS);
    }
}

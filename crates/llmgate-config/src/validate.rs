//! Checks across sections, run once the whole file has been walked: every fallback and alias
//! names a model group that exists. (Deployment ids are checked by the `model_list` walk.)

use std::collections::BTreeSet;

use crate::problems::{did_you_mean, key_path, Report};
use crate::schema::Config;

/// A model group named somewhere outside `model_list`, remembered with its path during the walk.
#[derive(Debug, Clone)]
pub(crate) enum GroupRef {
    /// The key of a `fallbacks` item.
    FallbackSource { path: String, name: String },
    /// A group in a `fallbacks` item's list.
    FallbackTarget {
        path: String,
        source: String,
        name: String,
    },
    /// A group in `default_fallbacks`.
    DefaultFallback { path: String, name: String },
    /// A `model_group_alias` target.
    AliasTarget {
        path: String,
        alias: String,
        name: String,
    },
}

/// The model group that catches every name nothing else matches (LiteLLM's wildcard).
pub(crate) const CATCH_ALL: &str = "*";

/// Runs the cross-section checks. `group_names` holds every `model_name` written, including
/// those of entries that failed to load, so one broken entry does not also break its fallbacks.
///
/// A fallback or alias naming a group that does not exist is a warning, with the nearest
/// group's name, and the name is dropped from the config: LiteLLM starts with such a file
/// (and fails over to nothing), and configs copied from its docs name groups the reader has
/// not defined yet.
pub(crate) fn validate(
    config: &mut Config,
    group_names: &BTreeSet<String>,
    refs: &[GroupRef],
    report: &mut Report,
) {
    if group_names.is_empty() {
        report.warning(
            "model_list",
            "no models configured: every model request will be answered with 400 (model_not_found)",
        );
    }
    let groups: BTreeSet<&str> = group_names.iter().map(String::as_str).collect();
    let catch_all = groups.contains(CATCH_ALL);
    let aliases: BTreeSet<String> = config
        .router_settings
        .model_group_alias
        .keys()
        .cloned()
        .collect();
    // A name a request can use: a group, an alias, or anything when a catch-all group exists.
    let servable = |name: &str| catch_all || groups.contains(name) || aliases.contains(name);
    let unknown = |name: &str| {
        let near = did_you_mean(
            name,
            groups
                .iter()
                .copied()
                .chain(aliases.iter().map(String::as_str)),
        );
        match near {
            Some(near) => {
                format!("unknown model group \"{name}\" (did you mean \"{near}\"?): skipped")
            }
            None => format!("unknown model group \"{name}\": skipped"),
        }
    };
    let mut dropped = BTreeSet::new();
    for r in refs {
        match r {
            GroupRef::FallbackSource { path, name } => {
                if !servable(name) {
                    report.warning(
                        path,
                        format!(
                            "\"{name}\" is not a model group or alias, so these fallbacks never apply"
                        ),
                    );
                }
            }
            GroupRef::FallbackTarget { path, source, name } => {
                if name == source {
                    report.error(
                        path,
                        format!(
                            "the fallbacks of \"{source}\" must not contain \"{source}\" itself"
                        ),
                    );
                } else if !servable(name) {
                    report.warning(path, unknown(name));
                    dropped.insert(name.clone());
                }
            }
            GroupRef::DefaultFallback { path, name } => {
                if !servable(name) {
                    report.warning(path, unknown(name));
                    dropped.insert(name.clone());
                }
            }
            GroupRef::AliasTarget { path, alias, name } => {
                if aliases.contains(name) && !groups.contains(name.as_str()) {
                    report.error(
                        path,
                        format!("\"{name}\" is an alias: an alias must name a model group, not another alias"),
                    );
                } else if !groups.contains(name.as_str()) {
                    report.warning(path, unknown(name));
                    dropped.insert(name.clone());
                } else if groups.contains(alias.as_str()) && alias != name {
                    report.warning(
                        &key_path("router_settings.model_group_alias", alias),
                        format!(
                            "the alias hides the model group \"{alias}\": requests for it go to \"{name}\""
                        ),
                    );
                }
            }
        }
    }
    drop_unknown(config, &dropped);
}

/// Takes the names reported as unknown out of every fallback list and alias; an alias left
/// with no group is removed.
fn drop_unknown(config: &mut Config, dropped: &BTreeSet<String>) {
    if dropped.is_empty() {
        return;
    }
    let keep = |name: &String| !dropped.contains(name);
    let rs = &mut config.router_settings;
    let ls = &mut config.litellm_settings;
    for list in [
        &mut rs.fallbacks,
        &mut rs.context_window_fallbacks,
        &mut rs.content_policy_fallbacks,
        &mut ls.fallbacks,
        &mut ls.context_window_fallbacks,
        &mut ls.content_policy_fallbacks,
    ] {
        for f in list.iter_mut() {
            f.fallbacks.retain(keep);
        }
    }
    rs.default_fallbacks.retain(keep);
    ls.default_fallbacks.retain(keep);
    rs.model_group_alias.retain(|_, target| {
        let mut names: Vec<String> = std::iter::once(target.model.clone())
            .chain(target.then.drain(..))
            .filter(keep)
            .collect();
        if names.is_empty() {
            return false;
        }
        target.model = names.remove(0);
        target.then = names;
        true
    });
}

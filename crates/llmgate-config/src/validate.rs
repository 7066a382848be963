//! Checks across sections, run once the whole file has been walked: every fallback and alias
//! names a model group that exists. (Deployment ids are checked by the `model_list` walk.)

use std::collections::BTreeSet;

use crate::problems::{key_path, Report};
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
pub(crate) fn validate(
    config: &Config,
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
    let aliases = &config.router_settings.model_group_alias;
    // A name a request can use: a group, an alias, or anything when a catch-all group exists.
    let servable = |name: &str| catch_all || groups.contains(name) || aliases.contains_key(name);
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
                    report.error(path, format!("unknown model group \"{name}\""));
                }
            }
            GroupRef::DefaultFallback { path, name } => {
                if !servable(name) {
                    report.error(path, format!("unknown model group \"{name}\""));
                }
            }
            GroupRef::AliasTarget { path, alias, name } => {
                if !groups.contains(name.as_str()) {
                    let hint = if aliases.contains_key(name) {
                        " (an alias must name a model group, not another alias)"
                    } else {
                        ""
                    };
                    report.error(path, format!("unknown model group \"{name}\"{hint}"));
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
}

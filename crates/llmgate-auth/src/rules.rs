//! What a virtual key's LiteLLM settings beyond budgets and limits ask of a request: the routes
//! it may call (`key_type`, `allowed_routes`), the fields its requests must carry
//! (`enforced_params`), and the model names it may use for others (`aliases`, and its team's
//! `model_aliases`).

use llmgate_core::{LlmRequest, Team, VirtualKey};

use crate::Error;

/// LiteLLM's `llm_api_routes`: the model endpoints.
const LLM_API_ROUTES: &[&str] = &[
    "/v1/chat/completions",
    "/chat/completions",
    "/v1/completions",
    "/completions",
    "/v1/embeddings",
    "/embeddings",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/responses",
    "/responses",
    "/v1/models",
    "/models",
    "/utils/token_counter",
    "/openai/deployments/",
    "/v1/responses/",
    "/responses/",
];

/// LiteLLM's `info_routes`: reading, never changing.
const INFO_ROUTES: &[&str] = &[
    "/key/info",
    "/key/health",
    "/team/info",
    "/model/info",
    "/v1/model/info",
    "/model_group/info",
    "/v1/models",
    "/models",
    "/spend/logs",
    "/global/spend",
    "/global/spend/",
    "/user/daily/activity",
];

/// LiteLLM's `management_routes`: the admin API.
const MANAGEMENT_ROUTES: &[&str] = &[
    "/key/",
    "/team/",
    "/customer/",
    "/end_user/",
    "/budget/",
    "/spend/logs",
    "/global/spend",
    "/global/spend/",
];

fn in_group(group: &[&str], path: &str) -> bool {
    group
        .iter()
        .any(|r| path == *r || (r.ends_with('/') && path.starts_with(r)))
}

fn matches(route: &str, path: &str) -> bool {
    match route {
        "llm_api_routes" | "openai_routes" => in_group(LLM_API_ROUTES, path),
        "info_routes" => in_group(INFO_ROUTES, path),
        "management_routes" => in_group(MANAGEMENT_ROUTES, path),
        r => r == path || r.strip_suffix('*').is_some_and(|p| path.starts_with(p)),
    }
}

/// Whether `key` may call `path`: its `allowed_routes` when it has any, else its `key_type`'s
/// group (`llm_api`, `management`, `read_only`; `default` or none: every route).
pub(crate) fn check_route(key: &VirtualKey, path: &str) -> Result<(), Error> {
    let x = &key.extras;
    let allowed = if x.allowed_routes.is_empty() {
        match x.key_type.as_deref() {
            Some("llm_api") => matches("llm_api_routes", path),
            Some("management") => matches("management_routes", path),
            Some("read_only") => matches("info_routes", path),
            _ => true,
        }
    } else {
        x.allowed_routes.iter().any(|r| matches(r, path))
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::RouteNotAllowed {
            path: path.to_owned(),
            allowed: if x.allowed_routes.is_empty() {
                vec![format!(
                    "key_type {}",
                    x.key_type.as_deref().unwrap_or("default")
                )]
            } else {
                x.allowed_routes.clone()
            },
        })
    }
}

/// Whether the request carries every field the key's `enforced_params` name: a top-level body
/// field (`user`), or `metadata.<name>` in the request's metadata.
pub(crate) fn check_params(key: &VirtualKey, req: Option<&LlmRequest>) -> Result<(), Error> {
    let want = &key.extras.enforced_params;
    let Some(req) = req.filter(|_| !want.is_empty()) else {
        return Ok(());
    };
    let body = match req.body() {
        llmgate_core::LlmBody::Chat(r) => serde_json::to_value(r),
        llmgate_core::LlmBody::Completion(r) => serde_json::to_value(r),
        llmgate_core::LlmBody::Embedding(r) => serde_json::to_value(r),
    }
    .unwrap_or_default();
    let metadata = req.gateway().metadata.as_ref();
    for p in want {
        let present = match p.strip_prefix("metadata.") {
            Some(name) => metadata
                .and_then(|m| m.get(name))
                .is_some_and(|v| !v.is_null()),
            None => body.get(p).is_some_and(|v| !v.is_null()),
        };
        if !present {
            return Err(Error::MissingParam(p.clone()));
        }
    }
    Ok(())
}

/// The model group an alias of the key (else of its team) names for `model`, if any.
pub(crate) fn alias<'a>(
    key: &'a VirtualKey,
    team: Option<&'a Team>,
    model: &str,
) -> Option<&'a str> {
    key.extras
        .aliases
        .get(model)
        .or_else(|| team.and_then(|t| t.model_aliases.get(model)))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(key_type: Option<&str>, routes: &[&str]) -> VirtualKey {
        let mut k = VirtualKey::default();
        k.extras.key_type = key_type.map(str::to_owned);
        k.extras.allowed_routes = routes.iter().map(|r| (*r).to_owned()).collect();
        k
    }

    /// The route rules as a table: key type or allowed routes, path, allowed.
    #[test]
    fn routes_by_key_type_and_allowed_routes() {
        let cases: &[(Option<&str>, &[&str], &str, bool)] = &[
            (None, &[], "/key/generate", true),
            (Some("default"), &[], "/team/new", true),
            (Some("llm_api"), &[], "/v1/chat/completions", true),
            (Some("llm_api"), &[], "/v1/responses/resp_1", true),
            (Some("llm_api"), &[], "/key/info", false),
            (Some("read_only"), &[], "/key/info", true),
            (Some("read_only"), &[], "/v1/chat/completions", false),
            (Some("management"), &[], "/key/generate", true),
            (Some("management"), &[], "/v1/embeddings", false),
            (None, &["/chat/completions"], "/chat/completions", true),
            (None, &["/chat/completions"], "/v1/chat/completions", false),
            (None, &["llm_api_routes"], "/v1/embeddings", true),
            (None, &["/v1/*"], "/v1/embeddings", true),
            (Some("llm_api"), &["info_routes"], "/key/info", true),
        ];
        for (t, routes, path, want) in cases {
            assert_eq!(
                check_route(&key(*t, routes), path).is_ok(),
                *want,
                "{t:?} {routes:?} {path}"
            );
        }
    }

    #[test]
    fn aliases_of_the_key_come_before_the_teams() {
        let mut k = VirtualKey::default();
        k.extras.aliases.insert("fast".into(), "gpt-mini".into());
        let mut t = Team::default();
        t.model_aliases.insert("fast".into(), "other".into());
        t.model_aliases.insert("smart".into(), "gpt".into());
        assert_eq!(alias(&k, Some(&t), "fast"), Some("gpt-mini"));
        assert_eq!(alias(&k, Some(&t), "smart"), Some("gpt"));
        assert_eq!(alias(&k, None, "smart"), None);
    }
}

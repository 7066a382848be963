//! IBM watsonx.ai's `litellm_params`: `project_id` (or `space_id`) and `token`, else LiteLLM's
//! environment variables (`WATSONX_PROJECT_ID`, `WATSONX_DEPLOYMENT_SPACE_ID` or
//! `WATSONX_SPACE_ID`, `WATSONX_TOKEN`, `WATSONX_IAM_URL`; the key is `WATSONX_APIKEY` or
//! `WATSONX_API_KEY`, the base `WATSONX_URL`).
//!
//! These keys are not in the general table (other providers get them as request parameters,
//! as before): for a watsonx deployment they are taken out of the default parameters here.

use std::sync::Arc;

use llmgate_core::{Secret, WatsonxParams};
use serde_json::{Map, Value};

use crate::problems::key_path;
use crate::walk::Walk;

/// IBM Cloud IAM's token endpoint.
pub(crate) const DEFAULT_IAM_URL: &str = "https://iam.cloud.ibm.com/identity/token";

/// The deployment's [`WatsonxParams`], taking `project_id`, `space_id` and `token` out of
/// `defaults`; `None`, with the error at `project_id`, when there is neither a project nor a
/// space.
pub(crate) fn resolve(
    w: &mut Walk<'_>,
    defaults: &mut Map<String, Value>,
    api_key: &mut Option<Secret>,
    path: &str,
    has_mock: bool,
) -> Option<WatsonxParams> {
    let mut take = |key: &str, vars: &[&str]| {
        let written = match defaults.remove(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(Value::Null) | None => None,
            Some(_) => {
                w.report.error(&key_path(path, key), "expected a string");
                None
            }
        };
        written.or_else(|| {
            vars.iter()
                .find_map(|v| w.env.lookup(v))
                .filter(|s| !s.is_empty())
        })
    };
    let project_id = take("project_id", &["WATSONX_PROJECT_ID"]);
    let space_id = take(
        "space_id",
        &["WATSONX_DEPLOYMENT_SPACE_ID", "WATSONX_SPACE_ID"],
    );
    let token = take("token", &["WATSONX_TOKEN"]).map(Secret::new);
    let iam_url = w
        .env
        .lookup("WATSONX_IAM_URL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_IAM_URL.to_owned());
    if api_key.is_none() {
        *api_key = w
            .env
            .lookup("WATSONX_API_KEY")
            .filter(|s| !s.is_empty())
            .map(Secret::new);
    }
    if project_id.is_none() && space_id.is_none() && !has_mock {
        w.report.error(
            &key_path(path, "project_id"),
            "watsonx needs a project: set project_id (or WATSONX_PROJECT_ID), or space_id (or WATSONX_DEPLOYMENT_SPACE_ID)",
        );
        return None;
    }
    if api_key.is_none() && token.is_none() && !has_mock {
        w.report.warning(
            &key_path(path, "api_key"),
            "no api_key (WATSONX_APIKEY) and no token (WATSONX_TOKEN): watsonx will refuse requests",
        );
    }
    Some(WatsonxParams {
        project_id: project_id.map(Arc::from),
        space_id: space_id.map(Arc::from),
        iam_url: Arc::from(iam_url),
        token,
    })
}

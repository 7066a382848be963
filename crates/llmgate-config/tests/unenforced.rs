//! The **error** keys problems.rs does not cover (docs/configuration.md): `guardrails` at the
//! top and in `litellm_settings`, a deployment's `max_budget`, every Azure AD key and
//! `model_info.team_public_model_name` stop the config from loading when on, and load when off.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns"
)]

mod common;

use common::{env, load_err, load_ok};

const UNENFORCED: &str = "not implemented yet in llmgate; starting would leave this setting unenforced (remove it to run without it)";

fn deployment(params: &str, info: &str) -> String {
    format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: azure/x\n      \
         api_base: https://a\n      api_key: k\n{params}    model_info:\n      id: d\n{info}"
    )
}

#[test]
fn the_other_unenforced_keys_are_errors_when_on() {
    let model = deployment("", "");
    let azure = "Azure AD authentication is";
    let mut cases = vec![
        (
            format!("{model}guardrails:\n  - guardrail_name: g\n"),
            format!("error: guardrails: guardrails are {UNENFORCED}"),
        ),
        (
            format!("{model}litellm_settings:\n  guardrails: [g]\n"),
            format!("error: litellm_settings.guardrails: guardrails are {UNENFORCED}"),
        ),
        (
            deployment("      max_budget: 10\n", ""),
            format!("error: model_list[0].litellm_params.max_budget: deployment budgets are {UNENFORCED}"),
        ),
        (
            deployment("", "      team_public_model_name: shared\n"),
            format!("error: model_list[0].model_info.team_public_model_name: team-only models are {UNENFORCED}"),
        ),
    ];
    for key in [
        "azure_ad_token",
        "azure_ad_token_provider",
        "tenant_id",
        "client_id",
        "client_secret",
        "azure_username",
        "azure_password",
    ] {
        cases.push((
            deployment(&format!("      {key}: v\n"), ""),
            format!("error: model_list[0].litellm_params.{key}: {azure} {UNENFORCED}"),
        ));
    }
    for (yaml, expected) in cases {
        let problems = load_err(&yaml, &env(&[]));
        assert!(problems.contains(&expected), "{yaml}\n{problems:#?}");
    }
}

#[test]
fn turned_off_they_load() {
    let off = format!(
        "{}guardrails: []\nlitellm_settings:\n  guardrails: []\n",
        deployment(
            "      max_budget: null\n      tenant_id: \"\"\n",
            "      team_public_model_name: null\n"
        )
    );
    load_ok(&off, &env(&[]));
}

/// docs/configuration.md: messages never contain a secret's value. Each secret-bearing key gets
/// a value that is wrong in some way (its type, its scheme, an empty host) and holds a marker;
/// every problem is reported, and none shows the marker.
#[test]
fn no_problem_message_shows_a_secret() {
    const MARK: &str = "Zq8MARKsecret";
    let yaml = format!(
        "model_list:
  - model_name: a
    litellm_params:
      model: openai/x
      api_key: [{MARK}]
  - model_name: b
    litellm_params:
      model: bedrock/anthropic.claude
      aws_access_key_id: {{k: {MARK}}}
      aws_secret_access_key: [{MARK}]
      aws_session_token: {{t: {MARK}}}
  - model_name: c
    litellm_params:
      model: azure/x
      api_base: https://a
      api_key: {MARK}
      tenant_id: {MARK}
router_settings:
  redis_url: \"redis://:{MARK}@[::1\"
  redis_password: [{MARK}]
litellm_settings:
  cache: true
  cache_params:
    type: redis
    password: {{p: {MARK}}}
    url: \"rediss://:{MARK}@\"
general_settings:
  master_key: {MARK}
  database_url: \"mysql://user:{MARK}@db/llmgate\"
"
    );
    let problems = load_err(&yaml, &env(&[]));
    assert!(problems.len() >= 8, "{problems:#?}");
    for p in &problems {
        assert!(!p.contains(MARK), "a secret in: {p}");
    }
}

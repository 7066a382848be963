//! Fallbacks and aliases name groups that exist: the checks, list keys and list aliases.

mod common;

use common::check;

#[test]
fn fallbacks_and_aliases_name_existing_groups() {
    let base = "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a}\n  - model_name: b\n    litellm_params: {model: openai/b}\n";
    check(&[
        ("valid", format!("{base}router_settings:\n  fallbacks: [{{a: [b]}}]\n  model_group_alias: {{x: a}}\n"), &[]),
        (
            "target missing, source missing, self",
            format!("{base}router_settings:\n  fallbacks:\n    - a: [a, c]\n    - z: b\n"),
            &[
                "error: router_settings.fallbacks[0].a[0]: the fallbacks of \"a\" must not contain \"a\" itself",
                "warning: router_settings.fallbacks[0].a[1]: unknown model group \"c\" (did you mean \"a\"?): skipped",
                "warning: router_settings.fallbacks[1].z: \"z\" is not a model group or alias, so these fallbacks never apply",
            ],
        ),
        (
            "not a one-key map",
            format!("{base}litellm_settings:\n  fallbacks: [a, {{}}]\n  default_fallbacks: [nope]\n"),
            &[
                "error: litellm_settings.fallbacks[0]: expected a one-key mapping such as `gpt-4o: [\"gpt-4o-mini\"]`, found a string",
                "error: litellm_settings.fallbacks[1]: expected a one-key mapping such as `gpt-4o: [\"gpt-4o-mini\"]`, found a mapping",
                "warning: litellm_settings.default_fallbacks[0]: unknown model group \"nope\": skipped",
            ],
        ),
        (
            "group names with dots are quoted in paths",
            format!("{base}router_settings:\n  fallbacks: [{{\"gpt-4.1\": [a]}}]\n"),
            &[
                "warning: router_settings.fallbacks[0][\"gpt-4.1\"]: \"gpt-4.1\" is not a model group or alias, so these fallbacks never apply",
            ],
        ),
        (
            "fallback to an alias is fine",
            format!("{base}router_settings:\n  model_group_alias: {{x: b}}\n  fallbacks: [{{a: [x]}}]\n"),
            &[],
        ),
        (
            "aliases",
            format!("{base}router_settings:\n  model_group_alias:\n    x: nope\n    x2: {{model: x}}\n    b: a\n    z: {{hidden: true}}\n"),
            &[
                "error: router_settings.model_group_alias.z.model: missing required key",
                "error: router_settings.model_group_alias.x2.model: \"x\" is an alias: an alias must name a model group, not another alias",
                "warning: router_settings.model_group_alias.x: unknown model group \"nope\": skipped",
                "warning: router_settings.model_group_alias.b: the alias hides the model group \"b\": requests for it go to \"a\"",
            ],
        ),
        (
            "a list as a fallback's key (the first seed's chain)",
            format!("{base}router_settings:\n  fallbacks:\n    - [\"a\"]: [\"b\"]\n    - [\"b\"]: [\"a\"]\n"),
            &[],
        ),
        (
            "a list alias names groups in order; unknown ones are skipped",
            format!("{base}router_settings:\n  model_group_alias:\n    smart: [b, nope, a]\n"),
            &["warning: router_settings.model_group_alias.smart[1]: unknown model group \"nope\": skipped"],
        ),
        (
            "a catch-all group serves any fallback",
            "model_list:\n  - model_name: \"*\"\n    litellm_params: {model: openai/a}\nrouter_settings:\n  fallbacks: [{anything: [whatever]}]\n".to_owned(),
            &[],
        ),
    ]);
}

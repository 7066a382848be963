//! Masking a config file's secrets for the Config page.

/// Key names (lowercase, in part) whose values are secrets.
const SECRET_KEYS: &[&str] = &[
    "key",
    "secret",
    "password",
    "token",
    "database_url",
    "redis_url",
    "credentials",
    "webhook",
    "dsn",
];

/// `yaml` with the value of every `name: value` line whose name looks like a secret (`api_key`,
/// `master_key`, `*_secret*`, `*password*`, `*token*`, `database_url`, webhook URLs, ...)
/// replaced by `"****"`. A reference to the environment (`os.environ/NAME`) is kept: it names
/// where the secret is, not the secret. Values that look like keys (`sk-...`) are masked
/// wherever they are.
pub fn mask_secrets(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len());
    for line in yaml.lines() {
        out.push_str(&mask_line(line));
        out.push('\n');
    }
    out
}

fn mask_line(line: &str) -> String {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') {
        return line.to_owned();
    }
    if let Some((name, value)) = line.split_once(':') {
        let bare = name
            .trim()
            .trim_start_matches("- ")
            .trim_matches(['"', '\'']);
        let value_t = value.trim();
        let lower = bare.to_ascii_lowercase();
        let secret_name = SECRET_KEYS.iter().any(|k| lower.contains(k))
            && !lower.ends_with("_keys")
            && !matches!(lower.as_str(), "key_alias" | "max_tokens" | "tpm_tokens");
        if !value_t.is_empty() && (secret_name || looks_like_key(value_t)) && !env_ref(value_t) {
            return format!("{name}: \"****\"");
        }
    }
    if looks_like_key(trimmed.trim_start_matches("- ")) {
        let indent = &line[..line.len() - trimmed.len()];
        return format!("{indent}- \"****\"");
    }
    line.to_owned()
}

fn env_ref(value: &str) -> bool {
    value.trim_matches(['"', '\'']).starts_with("os.environ/")
}

fn looks_like_key(value: &str) -> bool {
    let v = value.trim_matches(['"', '\'']);
    v.starts_with("sk-") || v.starts_with("xai-") || v.starts_with("AKIA")
}

#[cfg(test)]
mod tests {
    use super::mask_secrets;

    #[test]
    fn secrets_are_masked_and_environment_references_kept() {
        let yaml = "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/gpt-4o\n      api_key: sk-live-123\n      aws_secret_access_key: abc\n      api_base: http://x\n  - model_name: b\n    litellm_params:\n      api_key: os.environ/OPENAI_KEY\ngeneral_settings:\n  master_key: \"sk-1234\"\n  database_url: postgres://u:p@h/db\n  alerting_webhook: https://hooks/x\n# api_key: comment\n";
        let masked = mask_secrets(yaml);
        for secret in ["sk-live-123", "abc", "sk-1234", "u:p@h", "hooks/x"] {
            assert!(!masked.contains(secret), "{secret} in\n{masked}");
        }
        assert!(
            masked.contains("api_key: os.environ/OPENAI_KEY"),
            "{masked}"
        );
        assert!(masked.contains("model: openai/gpt-4o"));
        assert!(masked.contains("api_base: http://x"));
        assert!(masked.contains("# api_key: comment"));
        assert!(masked.contains("      api_key: \"****\""));
    }
}

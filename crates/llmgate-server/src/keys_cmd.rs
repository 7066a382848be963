//! `llmgate keys create|list|info|delete --config FILE`: the key API's work, on the config's key
//! store directly, for operators without curl (or without a running gateway).

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use llmgate::keys::KeyAdmin;
use serde_json::{json, Map, Value};

use crate::cli::{KeySettings, KeysAction};

/// Runs one `llmgate keys` action and prints its JSON answer.
pub fn run(config: Option<&Path>, action: KeysAction) -> anyhow::Result<()> {
    let path = config.context(
        "give the config whose keys to manage: llmgate keys --config FILE ... (or set \
         CONFIG_FILE_PATH)",
    )?;
    let loaded = llmgate::load_config(path)
        .map_err(|problems| anyhow::anyhow!("{} is invalid:\n{problems}", path.display()))?;
    if loaded.config.master_key().is_none() {
        anyhow::bail!(
            "{} has no general_settings.master_key (and LITELLM_MASTER_KEY is not set): virtual \
             keys need one",
            path.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime")?;
    let answer = runtime.block_on(async {
        let store = llmgate::store::open_key_store(&loaded.config).await?;
        let admin = KeyAdmin::new(llmgate::auth::Keys::new(Arc::clone(&store)));
        let answer = match action {
            KeysAction::Create(settings) => admin.generate(&settings_body(*settings)).await,
            KeysAction::List {
                user_id,
                team_id,
                page,
                size,
            } => {
                let mut query = vec![
                    ("page".to_string(), page.to_string()),
                    ("size".to_string(), size.to_string()),
                    ("return_full_object".to_string(), "true".to_string()),
                ];
                query.extend(user_id.map(|u| ("user_id".to_string(), u)));
                query.extend(team_id.map(|t| ("team_id".to_string(), t)));
                admin.list(&query).await
            }
            KeysAction::Info { key } => admin.info(&key).await,
            KeysAction::Delete { keys, aliases } => {
                let body = json!({"keys": keys, "key_aliases": aliases});
                admin.delete(body.as_object().unwrap_or(&Map::new())).await
            }
        };
        anyhow::Ok(answer)
    })?;
    let value = answer.map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    Ok(())
}

fn settings_body(s: KeySettings) -> Map<String, Value> {
    let mut body = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            body.insert(k.to_string(), v);
        }
    };
    if !s.models.is_empty() {
        put("models", json!(s.models));
    }
    put("key_alias", json!(s.key_alias));
    // A NaN or infinite budget has no JSON number: pass it as written, for the key API to
    // refuse (json! would make it null, an unlimited key).
    put(
        "max_budget",
        s.max_budget.map_or(Value::Null, |b| {
            serde_json::Number::from_f64(b)
                .map_or_else(|| Value::String(b.to_string()), Value::Number)
        }),
    );
    put("budget_duration", json!(s.budget_duration));
    put("duration", json!(s.duration));
    put("rpm_limit", json!(s.rpm_limit));
    put("tpm_limit", json!(s.tpm_limit));
    put("max_parallel_requests", json!(s.max_parallel_requests));
    put("user_id", json!(s.user_id));
    put("team_id", json!(s.team_id));
    body
}

//! `llmgate import litellm --database-url URL --config FILE [--dry-run]`: a LiteLLM proxy's
//! keys, teams and end users recreated in the config's store (see `docs/keys.md`, "Moving from
//! LiteLLM").

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use llmgate::core::{Clock as _, SystemClock};
use llmgate::store::import::Plan;

use crate::cli::ImportSource;

/// Runs one import and prints what it did (or, with `--dry-run`, what it would do). Fails when
/// anything could not be written, after writing the rest.
pub fn run(source: ImportSource) -> anyhow::Result<()> {
    let ImportSource::Litellm {
        database_url,
        config,
        dry_run,
    } = source;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime")?;
    let now = SystemClock.now();
    let plan = runtime.block_on(Plan::read_litellm(&database_url, now))?;
    let mut out = std::io::stdout().lock();
    if dry_run {
        write!(out, "dry run, nothing written\n{plan}")?;
        return Ok(());
    }
    let path = config.context(
        "give the config whose database receives the keys: llmgate import litellm --config \
         FILE ... (or set CONFIG_FILE_PATH), or --dry-run",
    )?;
    let outcome = runtime.block_on(apply(&path, &plan))?;
    write!(out, "{plan}{outcome}")?;
    if !outcome.failed.is_empty() {
        anyhow::bail!("{} could not be imported", outcome.failed.len());
    }
    Ok(())
}

async fn apply(path: &Path, plan: &Plan) -> anyhow::Result<llmgate::store::import::Outcome> {
    let loaded = llmgate::load_config(path)
        .map_err(|problems| anyhow::anyhow!("{} is invalid:\n{problems}", path.display()))?;
    if loaded.config.master_key().is_none() {
        anyhow::bail!(
            "{} has no general_settings.master_key (and LITELLM_MASTER_KEY is not set): virtual \
             keys need one",
            path.display()
        );
    }
    let db = llmgate::store::open_database(&loaded.config).await?;
    let (keys, records) = (db.key_store(), db.record_store());
    Ok(plan.apply(keys.as_ref(), records.as_ref()).await)
}

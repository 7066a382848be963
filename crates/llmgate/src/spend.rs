//! Spend in the database: the metering layer's sink when the gateway has one
//! ([`StoreSpendSink`]). LiteLLM's spend endpoints over it are in `llmgate-admin`.
//!
//! The sink writes each batch through [`llmgate_store::Store::write_spend`] (records stored and
//! charged to their keys in one transaction, on the database's runtime), then tells this
//! gateway's key cache what each key was charged ([`Keys::note_spend`]), so a budget holds at
//! once rather than after `user_api_key_cache_ttl`. Other instances see the new spend when
//! their cached copy expires.

use std::sync::Arc;

use llmgate_auth::Keys;
use llmgate_config::Config;
use llmgate_core::BoxError;
use llmgate_metering::{SpendRecord, SpendSink};

use crate::store::Database;

/// The metering sink for a gateway with a database: [`StoreSpendSink`], keeping log rows unless
/// `general_settings.disable_spend_logs` (key spend is charged either way).
pub(crate) fn sink(
    config: &Config,
    db: Option<&Database>,
    keys: Option<&Keys>,
) -> Option<Arc<dyn SpendSink>> {
    let keep_logs = !config.general_settings.disable_spend_logs.unwrap_or(false);
    db.map(|db| {
        Arc::new(StoreSpendSink::new(db.clone(), keys.cloned(), keep_logs)) as Arc<dyn SpendSink>
    })
}

/// Writes spend batches into the gateway's database and charges its keys, here and there.
#[derive(Debug, Clone)]
pub struct StoreSpendSink {
    db: Database,
    keys: Option<Keys>,
    keep_logs: bool,
}

impl StoreSpendSink {
    /// Writes into `db`; with `keep_logs` off (`disable_spend_logs`) only keys are charged.
    /// Charges are noted in `keys`' cache when given.
    pub fn new(db: Database, keys: Option<Keys>, keep_logs: bool) -> Self {
        StoreSpendSink {
            db,
            keys,
            keep_logs,
        }
    }
}

#[async_trait::async_trait]
impl SpendSink for StoreSpendSink {
    async fn write(&self, batch: &[SpendRecord]) -> Result<(), BoxError> {
        let records: Arc<[SpendRecord]> = Arc::from(batch);
        let keep_logs = self.keep_logs;
        let charged = self
            .db
            .run(move |store| async move { store.write_spend(&records, keep_logs).await })
            .await?;
        if let Some(keys) = &self.keys {
            for c in &charged {
                keys.note_spend(&c.token, c.cost).await;
                if let Some(team) = &c.team_id {
                    keys.note_team_spend(team, c.cost).await;
                }
                if let Some(user) = &c.user_id {
                    keys.note_user_spend(user, c.cost).await;
                }
            }
        }
        Ok(())
    }
}

//! Deployments' `rpd` counts kept in the database (see `docs/routing.md`, "Deployment
//! limits"), so a provider's daily quota survives restarts: every second, and at a stop, each
//! instance adds the requests it sent today and raises its counts to the day's totals (which
//! also brings in other instances' requests on a shared database). A start reads them before
//! the first request is routed. It follows the config running now: deployments a reload adds
//! with an `rpd` are kept from then on.

use std::sync::Arc;
use std::time::Duration;

use crate::live::Live;
use crate::store::Database;
use llmgate_auth::StoreError;

/// How often counts are written and read back.
pub(crate) const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The router's daily counts and the database that keeps them. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct DailyUsage {
    live: Arc<Live>,
    db: Database,
}

impl DailyUsage {
    /// `None` without a database. With one, a sync while no deployment has an `rpd` does
    /// nothing (a reload may add one).
    pub(crate) fn new(live: &Arc<Live>, db: Option<&Database>) -> Option<Self> {
        Some(DailyUsage {
            live: live.clone(),
            db: db?.clone(),
        })
    }

    /// Writes what was sent since the last sync and reads the day's totals back. On failure
    /// the counts are kept for the next sync.
    pub(crate) async fn sync(&self) -> Result<(), StoreError> {
        let table = self.live.table();
        if !table.has_daily_limits() {
            return Ok(());
        }
        let (day, sent) = table.take_daily_sent();
        let rows: Vec<(String, u64)> = sent.iter().map(|(id, n)| (id.to_string(), *n)).collect();
        let day_i = i64::try_from(day).unwrap_or(i64::MAX);
        let kept = self
            .db
            .run(move |store| async move { store.sync_deployment_usage(day_i, &rows).await })
            .await;
        match kept {
            Ok(totals) => {
                table.restore_daily(day, &totals);
                Ok(())
            }
            Err(e) => {
                table.untake_daily_sent(&sent);
                Err(e)
            }
        }
    }

    /// Syncs every [`SYNC_EVERY`] for as long as the runtime runs.
    pub(crate) async fn run(self) {
        let mut failing = false;
        loop {
            tokio::time::sleep(SYNC_EVERY).await;
            match self.sync().await {
                Ok(()) if failing => {
                    tracing::info!("deployment rpd counts are kept in the database again");
                    failing = false;
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    tracing::warn!(error = %e, "cannot keep deployment rpd counts in the database; they stay in memory and are written when it answers");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }
}

//! Spend in the database: the metering layer's sink when the gateway has one
//! ([`StoreSpendSink`]), and LiteLLM's spend endpoints over it (`api`).
//!
//! The sink writes each batch through [`llmgate_store::Store::write_spend`] (records stored and
//! charged to their keys in one transaction, on the database's runtime), then tells this
//! gateway's key cache what each key was charged ([`Keys::note_spend`]), so a budget holds at
//! once rather than after `user_api_key_cache_ttl`. Other instances see the new spend when
//! their cached copy expires.

pub(crate) mod api;

use std::sync::Arc;

use llmgate_auth::Keys;
use llmgate_config::Config;
use llmgate_core::BoxError;
use llmgate_metering::{SpendRecord, SpendSink};
use time::{Date, Month};
use tower::util::BoxCloneSyncService;

use crate::routes::Stack;
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

/// The spend endpoints (the caller puts auth in front).
pub(crate) fn api(config: &Config, db: Option<Database>) -> Stack {
    BoxCloneSyncService::new(api::SpendApi {
        db,
        max_budget: config.litellm_settings.max_budget,
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
            }
        }
        Ok(())
    }
}

/// `YYYY-MM-DD` (UTC) as Unix milliseconds at its midnight.
pub(crate) fn day_start_ms(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// Unix milliseconds as RFC 3339 in UTC, with milliseconds (`2026-03-10T12:00:00.250Z`).
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::{day_start_ms, rfc3339_ms};

    #[test]
    fn dates_are_utc_midnights() {
        assert_eq!(day_start_ms("1970-01-01"), Some(0));
        assert_eq!(day_start_ms("2026-03-10"), Some(1_773_100_800_000));
        assert_eq!(day_start_ms("2026-02-30"), None);
        assert_eq!(day_start_ms("2026-03"), None);
        assert_eq!(day_start_ms("yesterday"), None);
    }

    #[test]
    fn times_print_as_rfc3339_with_millis() {
        assert_eq!(rfc3339_ms(1_773_144_000_250), "2026-03-10T12:00:00.250Z");
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    }
}

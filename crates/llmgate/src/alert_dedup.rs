//! Alerts deduplicated across instances through the rate limiter's Redis (see
//! `docs/alerting.md`, "Deduplication and rate limits"): each alert's key is claimed with
//! `SET key 1 NX PX ttl`, so of N instances seeing the same thing one sends it. Only the
//! alert dispatcher's task calls it; it fails open (the dispatcher sends the alert and counts
//! the failure).

use std::sync::Arc;
use std::time::Duration;

use llmgate_alerting::{DedupFuture, SharedDedup, CLAIM_TIMEOUT};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Client;
use tokio::sync::OnceCell;

/// The claims in Redis.
pub(crate) struct RedisDedup {
    client: Client,
    conn: OnceCell<ConnectionManager>,
}

impl RedisDedup {
    /// Claims in the Redis at `url`. Connects on first use.
    pub(crate) fn new(url: &str) -> Result<Arc<Self>, String> {
        let client = Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
        Ok(Arc::new(RedisDedup {
            client,
            conn: OnceCell::new(),
        }))
    }

    async fn conn(&self) -> Result<ConnectionManager, String> {
        self.conn
            .get_or_try_init(|| async {
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CLAIM_TIMEOUT))
                    .set_response_timeout(Some(CLAIM_TIMEOUT))
                    .set_number_of_retries(1);
                self.client.get_connection_manager_with_config(cfg).await
            })
            .await
            .cloned()
            .map_err(|e| format!("Redis: {e}"))
    }
}

impl SharedDedup for RedisDedup {
    fn claim(&self, key: &str, ttl: Duration) -> DedupFuture<'_, bool> {
        let key = key.to_owned();
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async(&mut conn)
                .await
                .map_err(|e| format!("Redis: {e}"))?;
            Ok(set.is_some())
        })
    }

    fn clear(&self, key: &str) -> DedupFuture<'_, ()> {
        let key = key.to_owned();
        Box::pin(async move {
            let mut conn = self.conn().await?;
            redis::cmd("DEL")
                .arg(&key)
                .query_async::<i64>(&mut conn)
                .await
                .map(drop)
                .map_err(|e| format!("Redis: {e}"))
        })
    }
}

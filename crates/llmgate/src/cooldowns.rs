//! Cooldowns shared through Redis (see `docs/routing.md`, "Shared cooldowns"): when this
//! instance takes a deployment out of rotation after failures (a 429, 5xx, timeouts), it
//! publishes the cooldown on the Redis channel `{prefix}cooldowns`; every instance subscribed
//! applies it, so N instances learn of a provider's 429 or outage together instead of each
//! calling it until it fails there too. Routing never waits on Redis: the hook only queues the
//! event, one task publishes and subscribes, and with Redis away each instance goes on with
//! its own cooldowns (reconnecting every second).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use llmgate_router::{CooldownEvent, CooldownHook, CooldownReason};
use tokio::sync::mpsc;

use crate::live::Live;

/// Prefix of the channel unless `llmgate_rate_limit_redis_prefix` sets one.
const DEFAULT_PREFIX: &str = "llmgate:";
/// Wait between reconnections.
const RECONNECT: Duration = Duration::from_secs(1);

/// Shares cooldowns through one Redis.
pub(crate) struct SharedCooldowns {
    client: redis::Client,
    channel: String,
    instance: u64,
    rx: mpsc::UnboundedReceiver<CooldownEvent>,
    link: Arc<Link>,
}

/// Whether the cooldown channel is subscribed, and how often its connection failed (for
/// readiness and metrics).
#[derive(Debug, Default)]
pub(crate) struct Link {
    up: AtomicBool,
    failures: AtomicU64,
}

impl Link {
    /// Subscribed now.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    /// Connections or subscriptions that failed since start.
    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Relaxed)
    }
}

/// The hook for the table and the task that shares what it is told, when `url` is set.
pub(crate) fn shared(
    url: &str,
    prefix: Option<&str>,
) -> Result<(CooldownHook, SharedCooldowns), String> {
    let client = redis::Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let hook: CooldownHook = Arc::new(move |event| {
        let _ = tx.send(event);
    });
    let channel = format!("{}cooldowns", prefix.unwrap_or(DEFAULT_PREFIX));
    Ok((
        hook,
        SharedCooldowns {
            client,
            channel,
            instance: fastrand::u64(..),
            rx,
            link: Arc::default(),
        },
    ))
}

/// `instance|until_unix_ms|reason|id` (the id last: it may hold anything).
fn encode(instance: u64, e: &CooldownEvent) -> String {
    format!(
        "{instance:x}|{}|{}|{}",
        e.until_unix_ms,
        e.reason.code(),
        e.id
    )
}

fn decode(text: &str) -> Option<(u64, String, u64, CooldownReason)> {
    let mut parts = text.splitn(4, '|');
    let instance = u64::from_str_radix(parts.next()?, 16).ok()?;
    let until = parts.next()?.parse().ok()?;
    let reason = CooldownReason::from_code(parts.next()?.parse().ok()?)?;
    let id = parts.next()?.to_owned();
    Some((instance, id, until, reason))
}

impl SharedCooldowns {
    /// The channel's state, read by readiness and metrics.
    pub(crate) fn link(&self) -> Arc<Link> {
        self.link.clone()
    }

    /// Publishes this instance's cooldowns and applies the others' to the table running now, until the
    /// runtime stops.
    pub(crate) async fn run(mut self, live: Arc<Live>) {
        let mut failing = false;
        loop {
            match self.session(&live).await {
                Ok(()) => return,
                Err(e) => {
                    self.link.up.store(false, Relaxed);
                    self.link.failures.fetch_add(1, Relaxed);
                    if !failing {
                        tracing::warn!(error = %e, "cannot share cooldowns through Redis; each instance keeps its own until it answers");
                    }
                    failing = true;
                }
            }
            tokio::time::sleep(RECONNECT).await;
        }
    }

    /// One connection's life: subscribe, then relay both ways. `Ok` when the hook is gone.
    async fn session(&mut self, live: &Live) -> redis::RedisResult<()> {
        let mut publish = self.client.get_multiplexed_async_connection().await?;
        let mut sub = self.client.get_async_pubsub().await?;
        sub.subscribe(&self.channel).await?;
        let mut messages = sub.on_message();
        self.link.up.store(true, Relaxed);
        // A connection that stalls (no error, no answer) is found by a ping every second.
        let mut ping = tokio::time::interval(RECONNECT);
        loop {
            tokio::select! {
                event = self.rx.recv() => {
                    let Some(event) = event else { return Ok(()) };
                    let mut publish_cmd = redis::cmd("PUBLISH");
                    publish_cmd.arg(&self.channel).arg(encode(self.instance, &event));
                    within(publish_cmd.query_async::<i64>(&mut publish)).await?;
                }
                _ = ping.tick() => {
                    within(redis::cmd("PING").query_async::<String>(&mut publish)).await?;
                }
                msg = messages.next() => {
                    let Some(msg) = msg else {
                        return Err(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "subscription ended",
                        )));
                    };
                    let Ok(text) = msg.get_payload::<String>() else { continue };
                    if let Some((from, id, until, reason)) = decode(&text) {
                        if from != self.instance {
                            live.table().apply_cooldown(&id, until, reason);
                        }
                    }
                }
            }
        }
    }
}

/// `f`, failed as a timeout after [`RECONNECT`].
async fn within<T>(
    f: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    tokio::time::timeout(RECONNECT, f)
        .await
        .unwrap_or_else(|_| {
            Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "Redis did not answer within a second",
            )))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_the_wire() {
        let e = CooldownEvent {
            id: Arc::from("groq|free-1"),
            until_unix_ms: 1_795_000_000_123,
            reason: CooldownReason::RateLimited,
        };
        let (instance, id, until, reason) = decode(&encode(0xabc, &e)).unwrap();
        assert_eq!(
            (instance, id.as_str(), until, reason),
            (0xabc, "groq|free-1", e.until_unix_ms, e.reason)
        );
        assert!(decode("zz|x|1|1").is_none());
        assert!(decode("1|x|1|9").is_none());
    }
}

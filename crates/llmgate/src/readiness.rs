//! `/health/readiness`: whether this instance can serve requests now, judged by what it
//! depends on (see `docs/health.md`).
//!
//! - **Key store** (with a master key): pinged. Down means virtual keys cannot be checked, so
//!   the answer is 503, unless `allow_requests_on_db_unavailable` lets requests through.
//! - **Rate-limit store** (Redis when configured): pinged. Down is 503 under the `closed`
//!   failure policy (every limited request is refused), a degradation under `open`.
//! - **Cache store** (Redis when configured): pinged. Down is a degradation (a miss).
//! - **Router's shared state** (with Redis): deployments' rpm/tpm/rpd counted in the rate
//!   limiter's store (its ping) and cooldowns on the Redis channel (subscribed or not). Down is
//!   a degradation: routing goes on from this instance's own counters and cooldowns.
//! - **Spend writer**: records not yet written and the sink's last error while it fails (a
//!   degradation); a full queue under `spend_queue_full: reject` refuses requests, so 503.
//!
//! The probes run together, each given up after [`PROBE_TIMEOUT`]; the answer is kept for
//! [`ANSWER_TTL`] and concurrent callers share one run, so a probe storm costs the backends
//! one ping a second. The body keeps LiteLLM's fields (`status`, `db`, `cache`) and adds
//! `checks` with one entry per backend.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Response, StatusCode};
use llmgate_auth::KeyStore;
use llmgate_cache::CacheStore;
use llmgate_core::BoxBody;
use llmgate_metering::{QueueFull, SpendQueue};
use llmgate_ratelimit::{FailurePolicy, LimiterStore};
use serde_json::{json, Map, Value};

/// How long each backend has to answer a ping.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an answer is reused.
pub(crate) const ANSWER_TTL: Duration = Duration::from_secs(1);
/// The longest error text shown.
const MAX_ERROR: usize = 300;

/// The parts readiness looks at. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Readiness {
    inner: Arc<Inner>,
}

pub(crate) struct Parts {
    /// The key store, when there is a master key.
    pub(crate) keys: Option<Arc<dyn KeyStore>>,
    pub(crate) allow_without_keys: bool,
    pub(crate) limiter: Arc<dyn LimiterStore>,
    pub(crate) limiter_policy: FailurePolicy,
    pub(crate) cache: Option<Arc<dyn CacheStore>>,
    pub(crate) spend: SpendQueue,
    /// The router's state shared through Redis, when configured.
    pub(crate) router: Option<RouterShared>,
}

/// What the router shares through Redis.
pub(crate) struct RouterShared {
    /// Deployments' rpm/tpm/rpd are counted in the rate limiter's store.
    pub(crate) usage: bool,
    /// The cooldown channel.
    pub(crate) cooldowns: Option<Arc<crate::cooldowns::Link>>,
}

struct Inner {
    parts: Parts,
    last: tokio::sync::Mutex<Option<(Instant, StatusCode, Bytes)>>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Healthy,
    Degraded,
    Unhealthy,
}

impl Readiness {
    pub(crate) fn new(parts: Parts) -> Self {
        Readiness {
            inner: Arc::new(Inner {
                parts,
                last: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The answer: 200 while the instance can serve, else 503; the same JSON body either way.
    pub(crate) async fn answer(&self) -> Response<BoxBody> {
        let mut last = self.inner.last.lock().await;
        let (status, body) = match &*last {
            Some((at, status, body)) if at.elapsed() < ANSWER_TTL => (*status, body.clone()),
            _ => {
                let (status, body) = self.inner.check().await;
                *last = Some((Instant::now(), status, body.clone()));
                (status, body)
            }
        };
        drop(last);
        let mut res = crate::routes::json(body);
        *res.status_mut() = status;
        res
    }
}

/// Runs `ping` for at most [`PROBE_TIMEOUT`].
async fn probe<E: std::fmt::Display>(
    ping: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, ping).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(shorten(e.to_string())),
        Err(_) => Err(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())),
    }
}

fn shorten(mut s: String) -> String {
    if s.len() > MAX_ERROR {
        let mut end = MAX_ERROR;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// `{"backend", "status": "ok"|"error", "error"?}`.
fn entry(backend: &str, result: &Result<(), String>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("backend".into(), backend.into());
    match result {
        Ok(()) => m.insert("status".into(), "ok".into()),
        Err(e) => {
            m.insert("error".into(), e.as_str().into());
            m.insert("status".into(), "error".into())
        }
    };
    m
}

impl Inner {
    async fn check(&self) -> (StatusCode, Bytes) {
        let p = &self.parts;
        let keys = async {
            match &p.keys {
                Some(store) => Some(probe(store.ping()).await),
                None => None,
            }
        };
        let cache = async {
            match &p.cache {
                Some(store) => Some(probe(store.ping()).await),
                None => None,
            }
        };
        let (keys, limiter, cache) = tokio::join!(keys, probe(p.limiter.ping()), cache);

        let mut level = Level::Healthy;
        let mut checks = Map::new();
        let db = match (&p.keys, &keys) {
            (Some(store), Some(result)) => {
                checks.insert("key_store".into(), entry(store.backend(), result).into());
                if result.is_ok() {
                    "connected"
                } else {
                    level = level.max(if p.allow_without_keys {
                        Level::Degraded
                    } else {
                        Level::Unhealthy
                    });
                    "disconnected"
                }
            }
            _ => "Not connected",
        };

        let mut rl = entry(p.limiter.backend(), &limiter);
        let policy = match p.limiter_policy {
            FailurePolicy::Open => "open",
            FailurePolicy::Closed => "closed",
        };
        rl.insert("failure_policy".into(), policy.into());
        checks.insert("rate_limit".into(), rl.into());
        if limiter.is_err() {
            level = level.max(match p.limiter_policy {
                FailurePolicy::Open => Level::Degraded,
                FailurePolicy::Closed => Level::Unhealthy,
            });
        }

        if let (Some(store), Some(result)) = (&p.cache, &cache) {
            checks.insert("cache".into(), entry(store.kind(), result).into());
            if result.is_err() {
                level = level.max(Level::Degraded);
            }
        }

        if let Some(r) = &p.router {
            let (entry, router_level) = router(r, p.limiter.backend(), &limiter);
            checks.insert("router".into(), entry);
            level = level.max(router_level);
        }

        let (spend, spend_level) = spend_writer(&p.spend);
        checks.insert("spend_writer".into(), spend);
        level = level.max(spend_level);

        let (status, word) = match level {
            Level::Healthy => (StatusCode::OK, "healthy"),
            Level::Degraded => (StatusCode::OK, "degraded"),
            Level::Unhealthy => (StatusCode::SERVICE_UNAVAILABLE, "unhealthy"),
        };
        let body = json!({
            "status": word,
            "db": db,
            "cache": p.cache.as_ref().map(|c| c.kind()),
            "llmgate_version": env!("CARGO_PKG_VERSION"),
            "checks": checks,
        });
        (status, Bytes::from(body.to_string()))
    }
}

/// `{"backend", "status", "shared_usage"?, "cooldowns"?, "error"?}`: `shared_usage` follows the
/// limiter store's ping; `cooldowns` is `subscribed`, `connecting` (never failed yet) or
/// `disconnected`.
fn router(r: &RouterShared, backend: &str, limiter: &Result<(), String>) -> (Value, Level) {
    let mut m = Map::new();
    m.insert("backend".into(), backend.into());
    let mut ok = true;
    if r.usage {
        m.insert(
            "shared_usage".into(),
            if limiter.is_ok() { "ok" } else { "error" }.into(),
        );
        if let Err(e) = limiter {
            m.insert("error".into(), e.as_str().into());
            ok = false;
        }
    }
    if let Some(link) = &r.cooldowns {
        let word = match (link.is_up(), link.failures()) {
            (true, _) => "subscribed",
            (false, 0) => "connecting",
            (false, _) => {
                ok = false;
                "disconnected"
            }
        };
        m.insert("cooldowns".into(), word.into());
    }
    m.insert("status".into(), if ok { "ok" } else { "error" }.into());
    (m.into(), if ok { Level::Healthy } else { Level::Degraded })
}

fn spend_writer(queue: &SpendQueue) -> (Value, Level) {
    let s = queue.status();
    let refusing = s.full && queue.config().on_full == QueueFull::Reject;
    let level = if refusing {
        Level::Unhealthy
    } else if s.failing.is_some() || s.full {
        Level::Degraded
    } else {
        Level::Healthy
    };
    let mut m = Map::new();
    let word = match (&s.failing, s.full) {
        (_, true) => "full",
        (Some(_), false) => "failing",
        (None, false) => "ok",
    };
    m.insert("status".into(), word.into());
    m.insert("unwritten".into(), s.unwritten.into());
    m.insert("capacity".into(), s.capacity.into());
    if let Some(f) = &s.failing {
        let since = f
            .since
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let for_secs = SystemTime::now()
            .duration_since(f.since)
            .map_or(0, |d| d.as_secs());
        m.insert("last_error".into(), shorten(f.error.clone()).into());
        m.insert("failing_since".into(), since.into());
        m.insert("failing_for_seconds".into(), for_secs.into());
        m.insert("failed_writes".into(), f.attempts.into());
    }
    (m.into(), level)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test suite")]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use llmgate_cache::StoreFuture;
    use llmgate_metering::{MemorySink, QueueConfig};
    use llmgate_ratelimit::MemoryStore;

    use super::*;

    /// A cache store whose ping takes 50 ms and is counted: one ping, one run of the checks.
    #[derive(Debug, Default)]
    struct CountedPings(Arc<AtomicUsize>);

    impl CacheStore for CountedPings {
        fn get(&self, _: &str) -> StoreFuture<Option<Bytes>> {
            Box::pin(async { Ok(None) })
        }
        fn put(&self, _: &str, _: Bytes, _: Duration) -> StoreFuture<()> {
            Box::pin(async { Ok(()) })
        }
        fn kind(&self) -> &'static str {
            "counted"
        }
        fn ping(&self) -> StoreFuture<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(())
            })
        }
    }

    fn readiness(pings: &Arc<AtomicUsize>) -> Readiness {
        Readiness::new(Parts {
            keys: None,
            allow_without_keys: false,
            limiter: Arc::new(MemoryStore::new()),
            limiter_policy: FailurePolicy::Open,
            cache: Some(Arc::new(CountedPings(pings.clone()))),
            spend: SpendQueue::new(Arc::new(MemorySink::new()), QueueConfig::default()),
            router: None,
        })
    }

    /// The real clock (`answer` keeps `std::time::Instant`), with margins of 400 ms and more.
    #[tokio::test]
    async fn concurrent_probes_share_one_run_and_its_answer_is_reused_for_1_s() {
        let pings = Arc::new(AtomicUsize::new(0));
        let ready = readiness(&pings);
        let start = Instant::now();
        let answers = futures_util::future::join_all((0..16).map(|_| ready.answer())).await;
        assert!(answers.iter().all(|a| a.status() == StatusCode::OK));
        assert_eq!(
            pings.load(Ordering::SeqCst),
            1,
            "16 concurrent probes, one run"
        );

        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(ready.answer().await.status(), StatusCode::OK);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the test ran too slowly to judge"
        );
        assert_eq!(pings.load(Ordering::SeqCst), 1, "reused within 1 s");

        tokio::time::sleep((start + Duration::from_millis(1_100)).duration_since(Instant::now()))
            .await;
        let answers = futures_util::future::join_all((0..16).map(|_| ready.answer())).await;
        assert!(answers.iter().all(|a| a.status() == StatusCode::OK));
        assert_eq!(
            pings.load(Ordering::SeqCst),
            2,
            "a new run after 1 s, again one"
        );
    }
}

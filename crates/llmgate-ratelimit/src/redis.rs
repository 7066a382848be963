//! [`RedisStore`]: counters in Redis, so that every gateway instance sharing it together admits
//! exactly the limit.
//!
//! Each check is one `EVALSHA` of a Lua script (one round trip, atomic on the server): it reads
//! every counter the request touches, decides with the GCRA formula of
//! [`llmgate_core::gcra`] on the Redis server's clock (`TIME`, so instances' clocks do not
//! matter), and writes them all only when every one admits. Rate counters are a string (the
//! `tat`, in microseconds) whose TTL is the time until the bucket is full again; parallel
//! counters are a sorted set of the requests in flight, each scored with its lease's end
//! (`parallel_lease`, an hour by default), so slots held by an instance that died free
//! themselves. Settlement (slots given back, tokens settled) is a second script, run in the
//! background when a response ends.
//!
//! The connection is opened on first use (a `redis-rs` `ConnectionManager`, which reconnects).
//! After a failure, checks fail at once for a second instead of each waiting for a timeout;
//! the layer's [`FailurePolicy`](crate::FailurePolicy) decides what a failed check means. Redis
//! Cluster is not supported (a request's keys are in different hash slots).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use tokio::sync::OnceCell;

use crate::store::{Acquire, Check, CheckState, Kind, LimiterStore, Settle, StoreError, Verdict};

/// Seconds subtracted from the Redis clock so microsecond times stay small enough for exact
/// Lua (double) arithmetic: 2023-11-14.
const EPOCH_S: u64 = 1_700_000_000;

/// How long checks fail fast after Redis failed.
const BACKOFF: Duration = Duration::from_secs(1);

const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = (tonumber(t[1]) - tonumber(ARGV[1])) * 1e6 + tonumber(t[2])
local member, lease_us = ARGV[2], tonumber(ARGV[3])
local eps = 1e-3
local out, new, denied = {0}, {}, 0
for i = 1, #KEYS do
  local a = 3 + (i - 1) * 4
  local kind, limit = ARGV[a + 1], tonumber(ARGV[a + 2])
  local window, cost = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local ok, remaining, reset, retry = false, 0, 0, -1
  if kind == 'r' then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    local per = window / math.max(limit, 1)
    local base = math.max(tat, now)
    local nxt = base + cost * per
    ok = limit > 0 and nxt - now <= window + eps
    local level = (ok and nxt or base) - now
    remaining = math.max(0, math.min(limit, math.floor((window - level) / per + eps / per)))
    reset = math.ceil(math.max(level, 0))
    if ok then new[i] = nxt elseif cost <= limit then retry = math.ceil(nxt - now - window) end
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    local used = redis.call('ZCARD', KEYS[i])
    ok = used < limit
    remaining = math.max(0, limit - used - (ok and 1 or 0))
  end
  if not ok and denied == 0 then denied = i end
  out[#out + 1] = remaining
  out[#out + 1] = reset
  out[#out + 1] = retry
end
out[1] = denied
if denied == 0 then
  for i = 1, #KEYS do
    if new[i] then
      redis.call('SET', KEYS[i], string.format('%.3f', new[i]), 'PX', math.ceil((new[i] - now) / 1000) + 1000)
    else
      redis.call('ZADD', KEYS[i], now + lease_us, member)
      redis.call('PEXPIRE', KEYS[i], math.ceil(lease_us / 1000) + 1000)
    end
  end
end
return out
";

const SETTLE: &str = r"
local t = redis.call('TIME')
local now = (tonumber(t[1]) - tonumber(ARGV[1])) * 1e6 + tonumber(t[2])
local member, rates = ARGV[2], tonumber(ARGV[3])
for i = 1, #KEYS do
  if i <= rates then
    local a = 3 + (i - 1) * 3
    local limit, window, delta = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    local per = window / math.max(limit, 1)
    local new
    if delta >= 0 then new = math.max(tat, now) + delta * per else new = tat + delta * per end
    if new > now then
      redis.call('SET', KEYS[i], string.format('%.3f', new), 'PX', math.ceil((new - now) / 1000) + 1000)
    else
      redis.call('DEL', KEYS[i])
    end
  else
    redis.call('ZREM', KEYS[i], member)
  end
end
return 0
";

/// Where and how to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]`.
    pub url: String,
    /// Prepended to every key (default `llmgate:rl:`).
    pub prefix: String,
    /// Connect and response timeout (default 500 ms).
    pub timeout: Duration,
    /// How long a parallel slot lasts if its instance never gives it back (default 1 h). A
    /// request running longer stops counting against parallel limits.
    pub parallel_lease: Duration,
}

impl RedisConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: "llmgate:rl:".into(),
            timeout: Duration::from_millis(500),
            parallel_lease: Duration::from_secs(3600),
        }
    }
}

/// Counters in Redis; see the module docs.
#[derive(Debug)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    config: RedisConfig,
    conn: OnceCell<ConnectionManager>,
    acquire: Script,
    settle: Script,
    instance: u64,
    leases: AtomicU64,
    /// Unix ms until which checks fail fast.
    down_until_ms: AtomicU64,
    unsettled: AtomicUsize,
    lost_settlements: AtomicU64,
}

impl RedisStore {
    /// A store for `config`. Checks the URL now; connects on first use (inside a runtime).
    pub fn new(config: RedisConfig) -> Result<Self, StoreError> {
        let client = Client::open(config.url.as_str())
            .map_err(|e| StoreError(format!("invalid Redis URL: {e}")))?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                config,
                conn: OnceCell::new(),
                acquire: Script::new(ACQUIRE),
                settle: Script::new(SETTLE),
                instance: fastrand::u64(..),
                leases: AtomicU64::new(0),
                down_until_ms: AtomicU64::new(0),
                unsettled: AtomicUsize::new(0),
                lost_settlements: AtomicU64::new(0),
            }),
        })
    }

    /// Settlements that failed (Redis down when a response ended); their slots free themselves
    /// when the lease ends, their tokens stay as reserved.
    pub fn lost_settlements(&self) -> u64 {
        self.inner.lost_settlements.load(Ordering::Relaxed)
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Inner {
    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        if unix_ms() < self.down_until_ms.load(Ordering::Relaxed) {
            return Err(StoreError("Redis failed less than a second ago".into()));
        }
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.config.timeout))
                    .set_response_timeout(Some(self.config.timeout))
                    .set_number_of_retries(1);
                self.client.get_connection_manager_with_config(cfg).await
            })
            .await
            .map_err(|e| self.failed(e))?;
        Ok(conn.clone())
    }

    fn failed(&self, e: redis::RedisError) -> StoreError {
        self.down_until_ms
            .store(unix_ms() + BACKOFF.as_millis() as u64, Ordering::Relaxed);
        StoreError(e.to_string())
    }

    fn member(&self, lease: u64) -> String {
        format!("{:016x}:{lease}", self.instance)
    }

    async fn acquire(self: Arc<Self>, checks: Vec<Check>) -> Result<Verdict, StoreError> {
        let mut conn = self.conn().await?;
        let lease = self.leases.fetch_add(1, Ordering::Relaxed);
        let mut inv = self.acquire.prepare_invoke();
        inv.arg(EPOCH_S)
            .arg(self.member(lease))
            .arg(self.config.parallel_lease.as_micros() as u64);
        for c in &checks {
            inv.key(format!("{}{}", self.config.prefix, c.key));
            match c.kind {
                Kind::Rate { window, cost } => inv
                    .arg("r")
                    .arg(c.limit)
                    .arg(window.as_micros() as u64)
                    .arg(cost),
                Kind::Parallel => inv.arg("p").arg(c.limit).arg(0).arg(1),
            };
        }
        let out: Vec<i64> = inv
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.failed(e))?;
        let denied = out.first().copied().unwrap_or(0);
        let states = out[1.min(out.len())..]
            .chunks_exact(3)
            .map(|s| CheckState {
                remaining: s[0].max(0) as u64,
                reset: Duration::from_micros(s[1].max(0) as u64),
                retry_after: (s[2] >= 0).then(|| Duration::from_micros(s[2] as u64)),
            })
            .collect::<Vec<_>>();
        if states.len() != checks.len() {
            return Err(StoreError(
                "unexpected answer from the rate-limit script".into(),
            ));
        }
        Ok(Verdict {
            states,
            denied: usize::try_from(denied)
                .ok()
                .filter(|d| *d > 0)
                .map(|d| d - 1),
            lease,
        })
    }

    async fn settle(self: Arc<Self>, settle: Settle) {
        let run = async {
            let mut conn = self.conn().await?;
            let mut inv = self.settle.prepare_invoke();
            inv.arg(EPOCH_S)
                .arg(self.member(settle.lease))
                .arg(settle.adjust.len());
            for (key, limit, window, delta) in &settle.adjust {
                inv.key(format!("{}{key}", self.config.prefix))
                    .arg(*limit)
                    .arg(window.as_micros() as u64)
                    .arg(*delta);
            }
            for key in &settle.release {
                inv.key(format!("{}{key}", self.config.prefix));
            }
            inv.invoke_async::<i64>(&mut conn)
                .await
                .map_err(|e| self.failed(e))
        };
        if let Err(e) = run.await {
            let n = self.lost_settlements.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(error = %e, lost = n, "rate-limit settlement lost: Redis unavailable; parallel slots free themselves when their lease ends");
        }
        self.unsettled.fetch_sub(1, Ordering::AcqRel);
    }
}

impl LimiterStore for RedisStore {
    fn acquire(&self, checks: &[Check]) -> Acquire {
        Acquire::pending(self.inner.clone().acquire(checks.to_vec()))
    }

    fn finish(&self, settle: Settle) {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                self.inner.unsettled.fetch_add(1, Ordering::AcqRel);
                rt.spawn(self.inner.clone().settle(settle));
            }
            Err(_) => {
                let n = self.inner.lost_settlements.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    lost = n,
                    "rate-limit settlement lost: no runtime to send it to Redis"
                );
            }
        }
    }

    fn unsettled(&self) -> usize {
        self.inner.unsettled.load(Ordering::Acquire)
    }

    fn ping(&self) -> crate::store::Ping {
        let inner = self.inner.clone();
        Box::pin(async move {
            // Past the fail-fast window: readiness asks Redis itself, and a good answer lets
            // requests use it again at once.
            inner.down_until_ms.store(0, Ordering::Relaxed);
            let mut conn = inner.conn().await?;
            redis::cmd("PING")
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| inner.failed(e))
        })
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Redis on 127.0.0.1:6379, or `None` (and a line saying so) when there is none.
    async fn local() -> Option<RedisStore> {
        let up = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect("127.0.0.1:6379"),
        )
        .await
        .is_ok_and(|c| c.is_ok());
        if !up {
            eprintln!("skipped: no Redis on 127.0.0.1:6379");
            return None;
        }
        RedisStore::new(RedisConfig::new("redis://127.0.0.1:6379")).ok()
    }

    fn prefix(test: &str) -> String {
        format!("llmgate-test:rl:{test}:{:x}:", fastrand::u64(..))
    }

    #[tokio::test]
    async fn passes_the_store_suite() {
        let Some(store) = local().await else { return };
        crate::suite::run(Arc::new(store), &prefix("suite")).await;
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error_and_fails_fast_afterwards() {
        // Port 1 on loopback: nothing listens there.
        let store = RedisStore::new(RedisConfig::new("redis://127.0.0.1:1")).unwrap();
        let c = [Check {
            key: "x".into(),
            limit: 1,
            kind: Kind::Parallel,
        }];
        assert!(store.acquire(&c).await.is_err());
        let started = std::time::Instant::now();
        assert!(store.acquire(&c).await.is_err());
        assert!(started.elapsed() < Duration::from_millis(50), "backs off");
    }

    /// Three layers, each with its own store and connection (three gateway instances), one
    /// key with `rpm_limit` 7 and `tpm_limit` 1000: a concurrent burst admits exactly 7.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_instances_admit_exactly_the_limit_together() {
        use http::{Request, Response};
        use llmgate_core::{body, BoxBody, Principal, VirtualKey};
        use tower::{service_fn, Layer, Service, ServiceExt};

        if local().await.is_none() {
            return;
        }
        let p = prefix("three");
        let instances: Vec<_> = (0..3)
            .map(|_| {
                let mut cfg = RedisConfig::new("redis://127.0.0.1:6379");
                cfg.prefix.clone_from(&p);
                let layer = crate::RateLimitLayer::new(Arc::new(RedisStore::new(cfg).unwrap()));
                let inner = service_fn(|_r: Request<()>| async {
                    Ok::<_, std::convert::Infallible>(Response::new(body::full("ok")))
                });
                layer.layer(inner)
            })
            .collect();
        let key = Principal::Key(Arc::new(VirtualKey {
            token: "shared-key".into(),
            rpm_limit: Some(7),
            ..VirtualKey::default()
        }));
        let calls: Vec<_> = (0..30)
            .map(|i| {
                let mut svc = instances[i % 3].clone();
                let key = key.clone();
                tokio::spawn(async move {
                    let mut req = Request::new(());
                    req.extensions_mut().insert(key);
                    let res: Response<BoxBody> =
                        svc.ready().await.unwrap().call(req).await.unwrap();
                    res.status().as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for c in calls {
            statuses.push(c.await.unwrap());
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            7,
            "{statuses:?}"
        );
        assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 23);
    }

    #[test]
    fn a_malformed_url_is_refused_up_front() {
        assert!(RedisStore::new(RedisConfig::new("not a url")).is_err());
    }
}

//! [`RedisStore`]: answers kept in Redis (`cache_params.type: redis`), shared by every
//! instance that points at the same Redis.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionAddr, IntoConnectionInfo};

use crate::store::{CacheStore, StoreFuture};
use crate::Error;

/// How to reach Redis. Start from [`RedisStoreConfig::default`] and set what differs.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisStoreConfig {
    /// `redis://[:password@]host:port[/db]` (or `rediss://`); when set, `host`, `port` and
    /// `password` are not used.
    pub url: Option<String>,
    /// Host (default `127.0.0.1`).
    pub host: String,
    /// Port (default 6379).
    pub port: u16,
    /// Password (`AUTH`), if the server needs one.
    pub password: Option<String>,
    /// Prefix of every key this store writes (default `llmgate:cache:`).
    pub key_prefix: String,
    /// How long to wait for a connection (default 1 s).
    pub connection_timeout: Duration,
    /// How long to wait for an answer to a command (default 500 ms).
    pub response_timeout: Duration,
    /// After a failure, how long requests skip Redis (served as misses) before it is tried
    /// again (default 1 s), so an unreachable Redis does not add a timeout to every request.
    pub retry_after: Duration,
}

impl Default for RedisStoreConfig {
    fn default() -> Self {
        RedisStoreConfig {
            url: None,
            host: "127.0.0.1".to_owned(),
            port: 6379,
            password: None,
            key_prefix: "llmgate:cache:".to_owned(),
            connection_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_millis(500),
            retry_after: Duration::from_secs(1),
        }
    }
}

impl fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

/// The Redis store: `GET` to look up, `SET key value PX <ttl ms>` to store, so Redis expires
/// entries itself. One multiplexed connection (redis-rs's `ConnectionManager`, which
/// reconnects by itself), opened on first use: building the store connects to nothing, so it
/// may be built outside a runtime.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    manager: OnceLock<Result<ConnectionManager, String>>,
    config: RedisStoreConfig,
    epoch: Instant,
    /// Milliseconds since `epoch` until which Redis is skipped after a failure.
    down_until: AtomicU64,
}

impl RedisStore {
    /// A store for `config`. Fails only when the address or URL is invalid.
    pub fn new(config: RedisStoreConfig) -> Result<RedisStore, Error> {
        let info = match &config.url {
            Some(url) => url.as_str().into_connection_info(),
            None => ConnectionAddr::Tcp(config.host.clone(), config.port)
                .into_connection_info()
                .map(|info| match &config.password {
                    Some(pw) => {
                        let settings = info.redis_settings().clone().set_password(pw);
                        info.set_redis_settings(settings)
                    }
                    None => info,
                }),
        }
        .map_err(|e| backend(format!("invalid Redis address: {e}")))?;
        let client = Client::open(info).map_err(|e| backend(e.to_string()))?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                manager: OnceLock::new(),
                config,
                epoch: Instant::now(),
                down_until: AtomicU64::new(0),
            }),
        })
    }
}

impl Inner {
    fn manager(&self) -> Result<ConnectionManager, Error> {
        self.manager
            .get_or_init(|| {
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.config.connection_timeout))
                    .set_response_timeout(Some(self.config.response_timeout))
                    .set_number_of_retries(1);
                ConnectionManager::new_lazy_with_config(self.client.clone(), cfg)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(backend)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn is_down(&self) -> bool {
        self.now_ms() < self.down_until.load(Ordering::Relaxed)
    }

    /// Records a failure: Redis is skipped for `retry_after`. Logged once per outage window.
    fn failed(&self, e: &redis::RedisError) -> Error {
        let until = self
            .now_ms()
            .saturating_add(u64::try_from(self.config.retry_after.as_millis()).unwrap_or(u64::MAX));
        self.down_until.store(until, Ordering::Relaxed);
        backend(e.to_string())
    }

    fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.config.key_prefix.len() + key.len());
        k.push_str(&self.config.key_prefix);
        k.push_str(key);
        k
    }
}

fn backend(message: impl Into<String>) -> Error {
    Error::Backend {
        backend: "redis",
        message: message.into(),
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl CacheStore for RedisStore {
    fn get(&self, key: &str) -> StoreFuture<Option<Bytes>> {
        let inner = self.inner.clone();
        let key = inner.key(key);
        Box::pin(async move {
            if inner.is_down() {
                return Ok(None);
            }
            let mut conn = inner.manager()?;
            redis::cmd("GET")
                .arg(&key)
                .query_async::<Option<Vec<u8>>>(&mut conn)
                .await
                .map(|v| v.map(Bytes::from))
                .map_err(|e| inner.failed(&e))
        })
    }

    fn put(&self, key: &str, value: Bytes, ttl: Duration) -> StoreFuture<()> {
        let inner = self.inner.clone();
        let key = inner.key(key);
        Box::pin(async move {
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            if inner.is_down() || ms == 0 {
                return Ok(());
            }
            let mut conn = inner.manager()?;
            redis::cmd("SET")
                .arg(&key)
                .arg(&value[..])
                .arg("PX")
                .arg(ms)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| inner.failed(&e))
        })
    }

    fn kind(&self) -> &'static str {
        "redis"
    }

    fn ping(&self) -> StoreFuture<()> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut conn = inner.manager()?;
            redis::cmd("PING")
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| inner.failed(&e))?;
            // Answered: requests need not wait out the rest of the skip window.
            inner.down_until.store(0, Ordering::Relaxed);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis at 127.0.0.1:6379, or `None` (with a printed line) when it is not there.
    async fn local_redis() -> Option<()> {
        let addr = "127.0.0.1:6379";
        match tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
            .await
        {
            Ok(Ok(_)) => Some(()),
            _ => {
                // `.ci/run` sets it when it has the machine's backends running: a skip there is a failure.
                assert!(
                    !std::env::var("LLMGATE_REQUIRE_BACKENDS")
                        .unwrap_or_default()
                        .contains("redis"),
                    "redis is not reachable and LLMGATE_REQUIRE_BACKENDS requires it"
                );
                eprintln!("skipped: no Redis at {addr}");
                None
            }
        }
    }

    fn unique_prefix() -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("llmgate-test:cache:{}:{nanos}:", std::process::id())
    }

    #[tokio::test]
    async fn stores_reads_and_expires_in_redis() {
        if local_redis().await.is_none() {
            return;
        }
        let cfg = RedisStoreConfig {
            key_prefix: unique_prefix(),
            ..RedisStoreConfig::default()
        };
        let s = RedisStore::new(cfg).unwrap();
        assert_eq!(s.get("k").await.unwrap(), None);
        s.put(
            "k",
            Bytes::from_static(b"\x00\x01binary"),
            Duration::from_millis(300),
        )
        .await
        .unwrap();
        assert_eq!(
            s.get("k").await.unwrap().as_deref(),
            Some(&b"\x00\x01binary"[..])
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(s.get("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_an_error_then_skipped() {
        let cfg = RedisStoreConfig {
            // A port nothing listens on (connections are refused at once).
            port: 1,
            retry_after: Duration::from_secs(60),
            ..RedisStoreConfig::default()
        };
        let s = RedisStore::new(cfg).unwrap();
        let started = Instant::now();
        assert!(matches!(s.get("k").await, Err(Error::Backend { .. })));
        // Skipped now: answered at once as a miss.
        assert_eq!(s.get("k").await.unwrap(), None);
        s.put("k", Bytes::from_static(b"v"), Duration::from_secs(1))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    /// A Redis that answers errors (not unreachable), with the default skip period. The real
    /// clock (the store keeps `std::time::Instant`), with margins of 300 ms and more.
    #[tokio::test]
    async fn a_redis_answering_errors_is_skipped_for_1_s_by_default() {
        let redis = llmgate_testkit::ErringRedis::start().await.unwrap();
        let cfg = RedisStoreConfig {
            url: Some(redis.url()),
            ..RedisStoreConfig::default()
        };
        let s = RedisStore::new(cfg).unwrap();
        let asked = Instant::now();
        assert!(matches!(s.get("k").await, Err(Error::Backend { .. })));
        let answered = Instant::now();
        assert_eq!(redis.count("GET"), 1);
        // Skipped: a miss at once, a store that does nothing, Redis not asked.
        assert_eq!(s.get("k").await.unwrap(), None);
        s.put("k", Bytes::from_static(b"v"), Duration::from_secs(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(s.get("k").await.unwrap(), None);
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "the test ran too slowly to judge"
        );
        assert_eq!((redis.count("GET"), redis.count("SET")), (1, 0));
        // A second after the failure, Redis is asked again (and, failing, skipped again).
        tokio::time::sleep(
            (answered + Duration::from_millis(1_100)).duration_since(Instant::now()),
        )
        .await;
        assert!(matches!(s.get("k").await, Err(Error::Backend { .. })));
        assert_eq!(s.get("k").await.unwrap(), None);
        assert_eq!(redis.count("GET"), 2);
    }

    #[test]
    fn invalid_addresses_fail_at_build_and_secrets_stay_out_of_debug() {
        let cfg = RedisStoreConfig {
            url: Some("http://nope".into()),
            ..RedisStoreConfig::default()
        };
        assert!(RedisStore::new(cfg).is_err());
        let cfg = RedisStoreConfig {
            password: Some("hunter2".into()),
            ..RedisStoreConfig::default()
        };
        let s = RedisStore::new(cfg).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}

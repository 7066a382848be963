//! Virtual keys through the HTTP API: lifecycle on each backend, model limits, expiry, budgets
//! and their reset, a store outage, and two instances on one PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llmgate_tests::open_gateway as open;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmgate::auth::{Invalidations, KeyFilter, KeyStore, MemoryKeyStore, StoreError};
use llmgate::core::{ManualClock, VirtualKey};
use llmgate_tests::{config_for, postgres_url, MockProvider, TestGateway};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-keys";

fn yaml(mock: &MockProvider, extra: &str) -> String {
    format!(
        "{}{extra}",
        config_for(
            &[("gpt", &mock.v1_url()), ("claude", &mock.v1_url())],
            Some(MASTER)
        )
    )
}

async fn generate(admin: &TestGateway, body: Value) -> (String, Value) {
    let res = admin.post("/key/generate", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    (v["key"].as_str().unwrap().to_string(), v)
}

/// The whole lifecycle through the API, on whichever store the gateway has.
async fn lifecycle(gw: &TestGateway) {
    let admin = gw.handle().with_key(MASTER);
    let (secret, created) = generate(
        &admin,
        json!({"models": ["gpt"], "key_alias": format!("app-{}", &created_suffix()), "metadata": {"team": "search"}, "max_budget": 5}),
    )
    .await;
    assert!(secret.starts_with("sk-") && secret.len() == 35, "{secret}");
    let token = created["token_id"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);
    assert_eq!(created["key_name"], format!("sk-...{}", &secret[31..]));

    let user = gw.handle().with_key(&secret);
    assert_eq!(user.chat("gpt", "hi").await.status, 200);

    let info = admin.get(&format!("/key/info?key={secret}")).await;
    assert_eq!(info.status, 200);
    let text = info.text();
    assert!(!text.contains(&secret), "/key/info leaked the secret");
    let info = info.json();
    assert_eq!(info["key"], token.as_str());
    assert_eq!(info["info"]["models"], json!(["gpt"]));
    assert_eq!(info["info"]["metadata"]["team"], "search");
    // By token as well.
    assert_eq!(
        admin.get(&format!("/key/info?key={token}")).await.status,
        200
    );
    // A key reads its own info, not others'.
    assert_eq!(user.get("/key/info").await.json()["key"], token.as_str());
    user.get("/key/list").await.openai_error(403);
    user.post("/key/generate", &json!({}))
        .await
        .openai_error(403);

    let updated = admin
        .post(
            "/key/update",
            &json!({"key": secret, "models": ["gpt", "claude"], "max_budget": null}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(updated.json()["max_budget"], Value::Null);
    assert_eq!(
        user.chat("claude", "hi").await.status,
        200,
        "update holds at once"
    );

    let list = admin.get("/key/list?size=100").await.json();
    assert!(list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == token.as_str()));

    let regen = admin.post("/key/regenerate", &json!({"key": secret})).await;
    assert_eq!(regen.status, 200, "{}", regen.text());
    let new_secret = regen.json()["key"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    user.chat("gpt", "hi").await.openai_error(401);
    let user = gw.handle().with_key(&new_secret);
    assert_eq!(user.chat("gpt", "hi").await.status, 200);

    admin.post("/key/block", &json!({"key": new_secret})).await;
    assert_eq!(
        user.chat("gpt", "hi").await.openai_error(401)["code"],
        "blocked_api_key"
    );
    admin
        .post("/key/unblock", &json!({"key": new_secret}))
        .await;
    assert_eq!(user.chat("gpt", "hi").await.status, 200);

    let del = admin
        .post("/key/delete", &json!({"keys": [new_secret]}))
        .await;
    assert_eq!(del.json()["deleted_keys"].as_array().unwrap().len(), 1);
    assert_eq!(
        user.chat("gpt", "hi").await.openai_error(401)["code"],
        "invalid_api_key"
    );
    admin
        .get(&format!("/key/info?key={new_secret}"))
        .await
        .openai_error(404);
}

fn created_suffix() -> String {
    llmgate::auth::generate_secret()[3..15].to_string()
}

#[tokio::test]
async fn lifecycle_in_memory() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&yaml(&mock, "")).await;
    lifecycle(&gw).await;
}

#[tokio::test]
async fn lifecycle_on_sqlite_survives_a_restart() {
    let mock = MockProvider::start().await;
    let dir = tempdir();
    let url = format!("sqlite://{}", dir.join("keys.db").display());
    let config = yaml(&mock, &format!("  database_url: {url}\n"));
    let gw = TestGateway::serve(open(&config).await).await;
    lifecycle(&gw).await;
    let (secret, _) = generate(&gw.handle().with_key(MASTER), json!({})).await;
    gw.shutdown().await;
    // A new gateway on the same file knows the key.
    let gw = TestGateway::serve(open(&config).await).await;
    assert_eq!(
        gw.handle().with_key(&secret).chat("gpt", "hi").await.status,
        200
    );
}

#[tokio::test]
async fn lifecycle_on_postgres() {
    let Some(url) = postgres_url().await else {
        return;
    };
    let mock = MockProvider::start().await;
    let gw =
        TestGateway::serve(open(&yaml(&mock, &format!("  database_url: {url}\n"))).await).await;
    lifecycle(&gw).await;
}

#[tokio::test]
async fn bad_requests_are_clear() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&yaml(&mock, "")).await;
    let admin = gw.handle().with_key(MASTER);
    let e = admin
        .post("/key/generate", &json!({"max_budget": -1, "key_colour": 2}))
        .await
        .openai_error(400);
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("max_budget") && msg.contains("key_colour"),
        "{msg}"
    );
    admin
        .post("/key/generate", &json!({"key": "sk-short"}))
        .await
        .openai_error(400);
    admin
        .post("/key/generate", &json!({"duration": "3 years"}))
        .await
        .openai_error(400);
    let e = admin.get("/key/generate").await.openai_error(405);
    assert!(e["message"].as_str().unwrap().contains("POST"));
    admin.get("/key/nothing").await.openai_error(404);
    admin
        .post("/key/delete", &json!({"keys": ["sk-never-existed-000000"]}))
        .await
        .openai_error(404);
    // An alias is unique.
    generate(&admin, json!({"key_alias": "dup"})).await;
    admin
        .post("/key/generate", &json!({"key_alias": "dup"}))
        .await
        .openai_error(409);
    // A caller-chosen key works, once.
    let chosen = "sk-chosen-by-the-caller-1234";
    generate(&admin, json!({"key": chosen})).await;
    admin
        .post("/key/generate", &json!({"key": chosen}))
        .await
        .openai_error(409);
    assert_eq!(
        gw.handle().with_key(chosen).chat("gpt", "hi").await.status,
        200
    );
}

#[tokio::test]
async fn a_key_limited_to_one_model() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&yaml(&mock, "")).await;
    let (secret, _) = generate(&gw.handle().with_key(MASTER), json!({"models": ["gpt"]})).await;
    let user = gw.handle().with_key(&secret);
    assert_eq!(user.chat("gpt", "hi").await.status, 200);
    let before = mock.request_count();
    let e = user.chat("claude", "hi").await.openai_error(403);
    assert_eq!(e["type"], "key_model_access_denied");
    assert_eq!(e["param"], "model");
    assert_eq!(e["code"], "model_not_allowed", "{e}");
    assert!(e["message"].as_str().unwrap().contains("gpt"), "{e}");
    assert_eq!(
        mock.request_count(),
        before,
        "a refused request reached the provider"
    );
    let models = user.get("/v1/models").await.json();
    let ids: Vec<_> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("gpt")]);
}

fn clocked(yaml: &str, clock: &ManualClock) -> llmgate::Gateway {
    let loaded = llmgate_config::from_yaml(
        yaml,
        std::path::Path::new("."),
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap();
    llmgate::Gateway::builder(loaded.config)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let mock = MockProvider::start().await;
    let clock = ManualClock::at(1_800_000_000);
    let gw = TestGateway::serve(clocked(&yaml(&mock, ""), &clock)).await;
    let (secret, v) = generate(&gw.handle().with_key(MASTER), json!({"duration": "1h"})).await;
    assert_eq!(v["expires"], "2027-01-15T09:00:00Z");
    let user = gw.handle().with_key(&secret);
    assert_eq!(user.chat("gpt", "hi").await.status, 200);
    clock.advance(3_600);
    let e = user.chat("gpt", "hi").await.openai_error(401);
    assert_eq!(e["code"], "expired_api_key");
}

#[tokio::test]
async fn budget_exhausted_then_reset() {
    let mock = MockProvider::start().await;
    let clock = ManualClock::at(1_800_000_000);
    let gateway = clocked(&yaml(&mock, ""), &clock);
    let admin_api = gateway.key_admin().unwrap().clone();
    let gw = TestGateway::serve(gateway).await;
    let admin = gw.handle().with_key(MASTER);
    let (secret, v) = generate(&admin, json!({"max_budget": 1.0, "budget_duration": "1h"})).await;
    let token = v["token_id"].as_str().unwrap().to_string();
    let user = gw.handle().with_key(&secret);
    assert_eq!(user.chat("gpt", "hi").await.status, 200);

    admin_api.charge(&token, "gpt", 0.75).await.unwrap();
    assert_eq!(user.chat("gpt", "hi").await.status, 200, "under budget");
    admin_api.charge(&token, "gpt", 0.25).await.unwrap();
    let e = user.chat("gpt", "hi").await.openai_error(400);
    assert_eq!(e["type"], "budget_exceeded");
    assert!(
        e["message"].as_str().unwrap().contains("Max budget: 1"),
        "{e}"
    );
    let info = admin.get(&format!("/key/info?key={secret}")).await.json();
    assert_eq!(info["info"]["spend"], 1.0);
    assert_eq!(info["info"]["budget_reset_at"], "2027-01-15T09:00:00Z");

    clock.advance(3_600);
    assert_eq!(user.chat("gpt", "hi").await.status, 200, "a new period");
    let info = admin.get(&format!("/key/info?key={secret}")).await.json();
    assert_eq!(info["info"]["spend"], 0.0);
    assert_eq!(info["info"]["budget_reset_at"], "2027-01-15T10:00:00Z");
}

/// A store that can be switched off.
#[derive(Debug, Default)]
struct Flaky {
    inner: MemoryKeyStore,
    down: AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("connection refused".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl KeyStore for Flaky {
    async fn insert(&self, key: &VirtualKey) -> Result<(), StoreError> {
        self.check()?;
        self.inner.insert(key).await
    }
    async fn get(&self, token: &str) -> Result<Option<VirtualKey>, StoreError> {
        self.check()?;
        self.inner.get(token).await
    }
    async fn get_by_alias(&self, alias: &str) -> Result<Option<VirtualKey>, StoreError> {
        self.check()?;
        self.inner.get_by_alias(alias).await
    }
    async fn update(&self, key: &VirtualKey) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.update(key).await
    }
    async fn delete(&self, tokens: &[String]) -> Result<Vec<String>, StoreError> {
        self.check()?;
        self.inner.delete(tokens).await
    }
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<VirtualKey>, StoreError> {
        self.check()?;
        self.inner.list(filter).await
    }
    async fn count(&self, filter: &KeyFilter) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.count(filter).await
    }
    async fn rotate(&self, old: &str, new: &str, name: &str, now: i64) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.rotate(old, new, name, now).await
    }
    async fn add_spend(&self, token: &str, model: &str, cost: f64) -> Result<(), StoreError> {
        self.check()?;
        self.inner.add_spend(token, model, cost).await
    }
    async fn reset_budget(&self, token: &str, now: i64, next: i64) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.reset_budget(token, now, next).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()
    }
    fn subscribe(&self) -> Option<Invalidations> {
        None
    }
    fn backend(&self) -> &'static str {
        "flaky"
    }
}

async fn outage(allow: bool) -> (u16, Value) {
    let mock = MockProvider::start().await;
    let extra = if allow {
        "  allow_requests_on_db_unavailable: true\n"
    } else {
        ""
    };
    // Keys are trusted for 1 s, so the outage shows once the cached entry is gone.
    let config = yaml(&mock, &format!("{extra}  user_api_key_cache_ttl: 1\n"));
    let loaded = llmgate_config::from_yaml(
        &config,
        std::path::Path::new("."),
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap();
    let store = Arc::new(Flaky::default());
    let gateway = llmgate::Gateway::builder(loaded.config)
        .key_store(store.clone())
        .build()
        .unwrap();
    let gw = TestGateway::serve(gateway).await;
    let (secret, _) = generate(&gw.handle().with_key(MASTER), json!({})).await;
    let user = gw.handle().with_key(&secret);
    assert_eq!(user.chat("gpt", "hi").await.status, 200);
    store.down.store(true, Ordering::SeqCst);
    assert_eq!(
        user.chat("gpt", "hi").await.status,
        200,
        "a cached key works through an outage"
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let res = user.chat("gpt", "hi").await;
    let status = res.status.as_u16();
    let body = if status == 200 {
        Value::Null
    } else {
        res.openai_error(status)
    };
    // The master key needs no store.
    assert_eq!(
        gw.handle().with_key(MASTER).chat("gpt", "hi").await.status,
        200
    );
    store.down.store(false, Ordering::SeqCst);
    assert_eq!(
        user.chat("gpt", "hi").await.status,
        200,
        "back when the store is"
    );
    (status, body)
}

#[tokio::test]
async fn a_store_outage_fails_closed() {
    let (status, e) = outage(false).await;
    assert_eq!(status, 503);
    assert_eq!(e["code"], "key_store_unavailable");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{e}"
    );
}

#[tokio::test]
async fn a_store_outage_fails_open_when_configured() {
    assert_eq!(outage(true).await.0, 200);
}

#[tokio::test]
async fn two_instances_on_one_postgres() {
    let Some(url) = postgres_url().await else {
        return;
    };
    let mock = MockProvider::start().await;
    let config = yaml(
        &mock,
        &format!("  database_url: {url}\n  user_api_key_cache_ttl: 600\n"),
    );
    let a = TestGateway::serve(open(&config).await).await;
    let b = TestGateway::serve(open(&config).await).await;
    let (secret, _) = generate(&a.handle().with_key(MASTER), json!({"models": ["gpt"]})).await;
    let on_b = b.handle().with_key(&secret);
    assert_eq!(on_b.chat("gpt", "hi").await.status, 200, "B finds A's key");
    on_b.chat("claude", "hi").await.openai_error(403);

    // An update through A holds on B (which has the key cached for 10 minutes) within a second.
    let admin_a = a.handle().with_key(MASTER);
    admin_a
        .post(
            "/key/update",
            &json!({"key": secret, "models": ["gpt", "claude"]}),
        )
        .await;
    within_a_second(|| async { on_b.chat("claude", "hi").await.status == 200 }).await;
    admin_a.post("/key/block", &json!({"key": secret})).await;
    within_a_second(|| async { on_b.chat("gpt", "hi").await.status == 401 }).await;
    admin_a.post("/key/unblock", &json!({"key": secret})).await;
    within_a_second(|| async { on_b.chat("gpt", "hi").await.status == 200 }).await;
    admin_a
        .post("/key/delete", &json!({"keys": [secret]}))
        .await;
    within_a_second(|| async { on_b.chat("gpt", "hi").await.status == 401 }).await;
}

async fn within_a_second<F, Fut>(check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the change did not reach the other instance within a second");
}

#[tokio::test]
async fn concurrent_charges_add_up_on_each_backend() {
    let mut stores: Vec<Arc<dyn KeyStore>> = vec![Arc::new(MemoryKeyStore::new())];
    let dir = tempdir();
    let sqlite = llmgate_store::Store::open_sqlite(&dir.join("spend.db"), &Default::default())
        .await
        .unwrap();
    stores.push(Arc::new(sqlite));
    if let Some(url) = postgres_url().await {
        stores.push(Arc::new(
            llmgate_store::Store::open(&url, &Default::default())
                .await
                .unwrap(),
        ));
    }
    for store in stores {
        let admin = llmgate::keys::KeyAdmin::new(llmgate::auth::Keys::new(store.clone()));
        let v = admin.generate(&serde_json::Map::new()).await.unwrap();
        let token = v["token_id"].as_str().unwrap().to_string();
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (admin, token) = (admin.clone(), token.clone());
                tokio::spawn(async move { admin.charge(&token, "gpt", 0.125).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let info = admin.info(&token).await.unwrap();
        assert_eq!(info["info"]["spend"], 12.5, "{}", store.backend());
    }
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("llmgate-keys-{}", created_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_keys_rate_limits_apply() {
    let mock = MockProvider::start().await;
    let gw = TestGateway::start(&yaml(&mock, "")).await;
    let (secret, _) = generate(&gw.handle().with_key(MASTER), json!({"rpm_limit": 2})).await;
    let user = gw.handle().with_key(&secret);
    let first = user.chat("gpt", "hi").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-ratelimit-limit-requests"), Some("2"));
    assert_eq!(user.chat("gpt", "hi").await.status, 200);
    let e = user.chat("gpt", "hi").await;
    assert_eq!(e.status, 429);
    assert!(e.header("retry-after").is_some());
    // Another key has its own budget of requests; the master key has none.
    let (other, _) = generate(&gw.handle().with_key(MASTER), json!({"rpm_limit": 2})).await;
    assert_eq!(
        gw.handle().with_key(&other).chat("gpt", "hi").await.status,
        200
    );
    assert_eq!(
        gw.handle().with_key(MASTER).chat("gpt", "hi").await.status,
        200
    );
}

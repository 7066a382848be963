//! Alerts about budgets and backends: a key's budget at 80 % and spent, the spend writer
//! failing and recovering (as Slack text), Redis failing and recovering.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use llmgate_tests::{deployment, MockProvider, TestGateway};
use serde_json::json;

use super::{alerting, alerts_total, gateway, stable, Receiver};

const MASTER: &str = "sk-master-alerts";
/// What one "hi" costs (as in spend.rs: 1 input and 4 output tokens at powers of two).
const COST: f64 = 1.0 / 512.0;

/// A SQLite file in the temp dir, removed with its WAL files when dropped.
pub(super) struct TempDb(pub(super) PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

#[tokio::test]
async fn a_keys_budget_at_80_percent_and_spent() {
    let receiver = Receiver::ok().await;
    let mock = MockProvider::start().await;
    let db = TempDb(std::env::temp_dir().join(format!(
        "llmgate-alerts-{}.db",
        &llmgate::auth::generate_secret()[3..15]
    )));
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/gpt-upstream\n      api_base: {}\n      api_key: sk-upstream\n    model_info:\n      id: gpt-0\n      input_cost_per_token: 0.0009765625\n      output_cost_per_token: 0.000244140625\n{}  master_key: {MASTER}\n  database_url: sqlite://{}\n",
        mock.v1_url(),
        alerting("  alert_types: [\"budget_alerts\"]\n"),
        db.0.display()
    );
    let env = HashMap::from([("WEBHOOK_URL".to_owned(), receiver.url.clone())]);
    let loaded = llmgate_config::from_yaml(&yaml, std::path::Path::new("."), &env)
        .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    let gateway = llmgate::Gateway::open(loaded.config).await.unwrap();
    let gw = TestGateway::serve(gateway.clone()).await;
    let admin = gw.handle().with_key(MASTER);
    let res = admin
        .post(
            "/key/generate",
            &json!({"max_budget": 5.0 * COST, "key_alias": "billing-app"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let (secret, token) = (
        res.json()["key"].as_str().unwrap().to_owned(),
        res.json()["token_id"].as_str().unwrap().to_owned(),
    );
    let user = gw.handle().with_key(&secret);
    for _ in 0..3 {
        assert_eq!(user.chat("gpt", "hi").await.status, 200);
    }
    gateway.flush_spend().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.alerts().is_empty(), "60 % is no threshold");
    assert_eq!(user.chat("gpt", "hi").await.status, 200);
    gateway.flush_spend().await;
    let alerts = receiver.wait_for(1).await;
    assert_eq!(
        stable(alerts[0].clone()),
        json!({
            "alert_type": "budget_alerts",
            "level": "Medium",
            "event": "threshold_crossed",
            "event_group": "key",
            "event_message": "Budget of key \"billing-app\" crossed 80%: spend $0.0078 of max_budget $0.0098",
            "token": token,
            "key_alias": "billing-app",
            "team_id": null,
            "user_id": null,
            "customer_id": null,
            "user_email": null,
            "team_alias": null,
            "spend": 4.0 * COST,
            "max_budget": 5.0 * COST,
            "percent": 80,
        })
    );
    assert_eq!(user.chat("gpt", "hi").await.status, 200);
    gateway.flush_spend().await;
    let alerts = receiver.wait_for(2).await;
    let spent = stable(alerts[1].clone());
    assert_eq!(spent["event"], "budget_crossed");
    assert_eq!(spent["level"], "High");
    assert_eq!(spent["spend"], 5.0 * COST);
    assert_eq!(spent["max_budget"], 5.0 * COST);
    assert_eq!(spent["token"], token.as_str());
    assert_eq!(
        spent["event_message"],
        "Budget of key \"billing-app\" is spent: spend $0.0098 of max_budget $0.0098"
    );
    // Refused for its budget: told again, deduplicated for budget_alert_ttl.
    assert_eq!(user.chat("gpt", "hi").await.status, 400);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.alerts().len(), 2);
    assert_eq!(
        alerts_total(&gw, "budget_alerts", "deduplicated").await,
        1.0
    );

    // The recent alerts, for the UI: master key only.
    let denied = user.get("/alerting/recent").await.status.as_u16();
    assert!(denied == 401 || denied == 403, "{denied}");
    let recent = admin.get("/alerting/recent").await.json();
    assert_eq!(recent["enabled"], true);
    let list = recent["alerts"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["event"], "threshold_crossed");
    assert_eq!(list[0]["delivery"]["webhook"], "sent");
    assert_eq!(list[1]["event"], "budget_crossed");
    let counts = recent["counts"].as_array().unwrap();
    let count = |result: &str| {
        counts
            .iter()
            .find(|c| {
                c["alert_type"] == "budget_alerts"
                    && c["channel"] == "webhook"
                    && c["result"] == result
            })
            .map(|c| c["count"].clone())
    };
    assert_eq!(
        (count("sent"), count("deduplicated")),
        (Some(json!(2)), Some(json!(1)))
    );
    // The UI reads the same through /ui/api/ (here as a script, with the master key).
    let via_ui = admin.get("/ui/api/alerting/recent").await;
    assert_eq!(via_ui.status, 200, "{}", via_ui.text());
    assert_eq!(via_ui.json()["alerts"], recent["alerts"]);
}

/// A spend sink that fails while `failing` is set.
struct FlakySink {
    failing: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl llmgate::metering::SpendSink for FlakySink {
    async fn write(
        &self,
        _batch: &[llmgate::metering::SpendRecord],
    ) -> Result<(), llmgate::core::BoxError> {
        if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
            Err("database is away".into())
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn the_spend_writer_failing_and_recovering_on_slack() {
    let receiver = Receiver::ok().await;
    let mock = MockProvider::start().await;
    let yaml = format!(
        "model_list:\n{}general_settings:\n  alerting: [\"slack\"]\n  proxy_batch_write_at: 0.1\n",
        deployment("gpt", "gpt-a", &mock.v1_url(), &[]),
    );
    let env = HashMap::from([("SLACK_WEBHOOK_URL".to_owned(), receiver.url.clone())]);
    let loaded = llmgate_config::from_yaml(&yaml, std::path::Path::new("."), &env)
        .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let gateway = llmgate::Gateway::builder(loaded.config)
        .spend_sink(Arc::new(FlakySink {
            failing: failing.clone(),
        }))
        .build()
        .unwrap();
    let gw = TestGateway::serve(gateway).await;
    assert_eq!(gw.chat("gpt", "hi").await.status, 200);
    // The backend watcher looks every 2 s.
    let text = receiver.wait_for(1).await[0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let (head, rest) = text.split_once("\nTimestamp: `").unwrap();
    assert_eq!(head, "Level: `High`");
    let (_ts, rest) = rest.split_once('`').unwrap();
    assert_eq!(
        rest,
        "\n\nAlert type: `failed_tracking_spend`\n\nMessage: spend_writer is failing: database is away"
    );
    failing.store(false, std::sync::atomic::Ordering::Relaxed);
    let alerts = receiver.wait_for(2).await;
    let text = alerts[1]["text"].as_str().unwrap();
    assert!(text.starts_with("Level: `Low`"), "{text}");
    assert!(
        text.ends_with(
            "Alert type: `failed_tracking_spend`\n\nMessage: spend_writer answers again"
        ),
        "{text}"
    );
    assert_eq!(
        alerts[1].as_object().unwrap().len(),
        1,
        "Slack gets only text"
    );
}

/// A TCP proxy to the real Redis that can be cut (every connection closed, new ones refused)
/// and restored.
pub(super) struct RedisProxy {
    pub(super) addr: std::net::SocketAddr,
    pub(super) up: tokio::sync::watch::Sender<bool>,
}

impl RedisProxy {
    pub(super) async fn start() -> RedisProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, watch) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !*watch.borrow() {
                    continue;
                }
                let mut watch = watch.clone();
                tokio::spawn(async move {
                    let Ok(mut redis) = tokio::net::TcpStream::connect("127.0.0.1:6379").await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut redis) => {}
                        _ = watch.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        RedisProxy { addr, up }
    }
}

#[tokio::test]
async fn redis_failing_and_recovering() {
    let reachable = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect("127.0.0.1:6379"),
    )
    .await
    .is_ok_and(|c| c.is_ok());
    if !reachable {
        // `.ci/run` sets it when it has the machine's backends running: a skip there is a failure.
        assert!(
            !std::env::var("LLMGATE_REQUIRE_BACKENDS")
                .unwrap_or_default()
                .contains("redis"),
            "redis is not reachable and LLMGATE_REQUIRE_BACKENDS requires it"
        );
        eprintln!("redis_failing_and_recovering: no Redis on 127.0.0.1:6379, skipped");
        return;
    }
    let receiver = Receiver::ok().await;
    let proxy = RedisProxy::start().await;
    let mock = MockProvider::start().await;
    let yaml = format!(
        "model_list:\n{}router_settings:\n  redis_url: redis://{}/7\n{}",
        deployment("gpt", "gpt-a", &mock.v1_url(), &[]),
        proxy.addr,
        // A prefix of its own: the alerts' dedup keys of an earlier run are not this run's.
        alerting(&format!(
            "  alert_types: [\"db_exceptions\"]\n  llmgate_rate_limit_redis_prefix: \"t{}:\"\n",
            &llmgate::auth::generate_secret()[3..15]
        ))
    );
    let gw = gateway(&yaml, &receiver).await;
    assert_eq!(gw.chat("gpt", "hi").await.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.alerts().is_empty(), "{:?}", receiver.alerts());
    proxy.up.send_replace(false);
    let down = stable(receiver.wait_for(1).await[0].clone());
    assert_eq!(down["alert_type"], "db_exceptions");
    assert_eq!(down["event"], "backend_down");
    assert_eq!(down["level"], "High");
    assert_eq!(down["backend"], "redis");
    assert!(
        down["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{down}"
    );
    // Requests go on (the rate limiter fails open) and make no second alert.
    assert_eq!(gw.chat("gpt", "hi").await.status, 200);
    proxy.up.send_replace(true);
    let alerts = receiver.wait_for(2).await;
    assert_eq!(
        stable(alerts[1].clone()),
        json!({
            "alert_type": "db_exceptions",
            "level": "Low",
            "event": "backend_up",
            "event_group": "proxy",
            "event_message": "redis answers again",
            "backend": "redis",
        })
    );
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
}

/// The key database (PostgreSQL behind a fault proxy) cut, then restored: one `db_exceptions`
/// `backend_down` alert for `database`, then one `backend_up`.
#[tokio::test]
async fn the_key_database_failing_and_recovering() {
    let Some(url) = llmgate_tests::postgres_url().await else {
        return;
    };
    let database = url.rsplit('/').next().unwrap_or("test").to_owned();
    let proxy = llmgate_testkit::FaultProxy::start("127.0.0.1:5432".parse().unwrap())
        .await
        .unwrap();
    let receiver = Receiver::ok().await;
    let mock = MockProvider::start().await;
    let yaml = format!(
        "model_list:\n{}{}  master_key: {MASTER}\n  database_url: postgres://postgres@{}/{database}\n",
        deployment("gpt", "gpt-a", &mock.v1_url(), &[]),
        alerting("  alert_types: [\"db_exceptions\"]\n"),
        proxy.addr(),
    );
    let env = HashMap::from([("WEBHOOK_URL".to_owned(), receiver.url.clone())]);
    let loaded = llmgate_config::from_yaml(&yaml, std::path::Path::new("."), &env)
        .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    // `open`: the key store in PostgreSQL (`Gateway::new` keeps keys in memory).
    let gw = TestGateway::serve(llmgate::Gateway::open(loaded.config).await.unwrap()).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(receiver.alerts().is_empty(), "{:?}", receiver.alerts());
    proxy.cut();
    let down = stable(receiver.wait_for(1).await[0].clone());
    assert_eq!(down["alert_type"], "db_exceptions");
    assert_eq!(down["event"], "backend_down");
    assert_eq!(down["backend"], "database");
    proxy.restore();
    let alerts = receiver.wait_for(2).await;
    let up = stable(alerts[1].clone());
    assert_eq!(up["event"], "backend_up", "{up}");
    assert_eq!(up["backend"], "database", "{up}");
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    drop(gw);
}

//! Alerts through the real gateway (see `docs/alerting.md`): each alert fired by a mock
//! provider's behaviour (a 429 storm, 500s until a cooldown, an outage, a recovery, a slow
//! answer, fallbacks) or by a key's budget, delivered to a receiver on loopback with its
//! payload checked field by field; a flood of failures making one alert; a failing receiver
//! retried, counted, and never slowing a request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backends;
mod hanging;
mod reports;
mod shared;
mod soft_budgets;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use llmgate_tests::{deployment, Behaviour, MockProvider, TestGateway};
use serde_json::{json, Value};

/// A webhook receiver on 127.0.0.1:0: records each POST's JSON body; answers `status` after
/// `delay`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start(status: StatusCode, delay: Duration) -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        let seen = got.clone();
        tokio::spawn(async move {
            loop {
                let Ok((io, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let v: Value = serde_json::from_slice(&body).unwrap();
                            seen.lock().unwrap().push(v);
                            tokio::time::sleep(delay).await;
                            let mut res = Response::new(Full::new(Bytes::new()));
                            *res.status_mut() = status;
                            Ok::<_, std::convert::Infallible>(res)
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(io);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        Receiver { url, got }
    }

    async fn ok() -> Receiver {
        Self::start(StatusCode::OK, Duration::ZERO).await
    }

    fn alerts(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until `n` alerts arrived; returns them.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.alerts();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} alerts of {n}: {got:#?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `general_settings` turning on the webhook channel, with `extra` lines under it.
fn alerting(extra: &str) -> String {
    format!("general_settings:\n  alerting: [\"webhook\"]\n{extra}")
}

async fn gateway(yaml: &str, receiver: &Receiver) -> TestGateway {
    TestGateway::start_with_env(yaml, &[("WEBHOOK_URL", receiver.url.as_str())]).await
}

/// The value of `llmgate_alerts_total` for these labels on `/metrics` (0 when absent), read
/// by an independent Prometheus parser; the text must end as OpenMetrics does.
async fn alerts_total(gw: &TestGateway, alert_type: &str, result: &str) -> f64 {
    let text = gw.get("/metrics").await.text();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "llmgate_events_dropped_total"),
        "{text}"
    );
    let labels = [
        ("alert_type", alert_type),
        ("channel", "webhook"),
        ("result", result),
    ];
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "llmgate_alerts_total"
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
        .map_or(0.0, |s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

/// The alert's fields without the ones that change every run.
fn stable(mut alert: Value) -> Value {
    let ts = alert["timestamp"].as_str().unwrap().to_owned();
    assert!(ts.ends_with('Z') && ts.contains('T'), "RFC 3339: {ts}");
    alert.as_object_mut().unwrap().remove("timestamp");
    alert
}

#[tokio::test]
async fn a_storm_of_429s_makes_one_rate_limited_alert() {
    let receiver = Receiver::ok().await;
    let mock = MockProvider::start().await;
    mock.set_default(Behaviour::error(429, "slow down"));
    let yaml = format!(
        "model_list:\n{}router_settings:\n  disable_cooldowns: true\n  num_retries: 0\n{}",
        deployment("gpt", "gpt-a", &mock.v1_url(), &[]),
        alerting("  alert_types: [\"llm_exceptions\"]\n")
    );
    let gw = gateway(&yaml, &receiver).await;
    for _ in 0..200 {
        assert_eq!(gw.chat("gpt", "hi").await.status, 429);
    }
    assert_eq!(
        mock.request_count(),
        200,
        "every request reached the provider"
    );
    let alerts = receiver.wait_for(1).await;
    assert_eq!(
        stable(alerts[0].clone()),
        json!({
            "alert_type": "llm_exceptions",
            "level": "High",
            "event": "rate_limited",
            "event_group": "proxy",
            "event_message": "Deployment gpt-a of model group gpt answered 5 429s (rate limited) within 60s",
            "model_group": "gpt",
            "deployment": "gpt-a",
            "count": 5,
            "window_seconds": 60,
        })
    );
    // The other 195 alerts of the storm are counted, not sent.
    let deadline = Instant::now() + Duration::from_secs(5);
    while alerts_total(&gw, "llm_exceptions", "deduplicated").await < 195.0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(alerts_total(&gw, "llm_exceptions", "sent").await, 1.0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.alerts().len(), 1, "one alert, not hundreds");
}

#[tokio::test]
async fn a_cooldown_an_outage_and_their_recovery() {
    let receiver = Receiver::ok().await;
    let mock = MockProvider::start().await;
    mock.set_default(Behaviour::error(500, "upstream broke"));
    let yaml = format!(
        "model_list:\n{}router_settings:\n  allowed_fails: 0\n  cooldown_time: 1\n  num_retries: 0\n{}",
        deployment("gpt", "gpt-a", &mock.v1_url(), &[]),
        alerting("")
    );
    let gw = gateway(&yaml, &receiver).await;
    // The 500 cools gpt-a down; the next request finds no deployment: an outage.
    assert_eq!(gw.chat("gpt", "hi").await.status, 500);
    assert_eq!(gw.chat("gpt", "hi").await.status, 503);
    assert_eq!(gw.chat("gpt", "hi").await.status, 503);
    let alerts = receiver.wait_for(2).await;
    let cooled = stable(alerts[0].clone());
    assert_eq!(
        cooled,
        json!({
            "alert_type": "cooldown_deployment",
            "level": "High",
            "event": "deployment_cooled_down",
            "event_group": "proxy",
            "event_message": "Deployment gpt-a of model group gpt is cooling down for 1s: failing (last status 500)",
            "model_group": "gpt",
            "deployment": "gpt-a",
            "reason": "failing",
            "status": 500,
            "cooldown_seconds": 1.0,
        })
    );
    assert_eq!(
        stable(alerts[1].clone()),
        json!({
            "alert_type": "outage_alerts",
            "level": "High",
            "event": "outage",
            "event_group": "proxy",
            "event_message": "Model group gpt has no healthy deployment (all 1 cooling down or at their limits)",
            "model_group": "gpt",
            "deployments": 1,
        })
    );
    // The provider heals; after the cooldown the next answer is both recoveries.
    mock.set_default(Behaviour::Ok);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(gw.chat("gpt", "hi").await.status, 200);
    let alerts = receiver.wait_for(4).await;
    assert_eq!(
        stable(alerts[2].clone()),
        json!({
            "alert_type": "cooldown_deployment",
            "level": "Low",
            "event": "deployment_recovered",
            "event_group": "proxy",
            "event_message": "Deployment gpt-a of model group gpt answers again",
            "model_group": "gpt",
            "deployment": "gpt-a",
        })
    );
    assert_eq!(
        stable(alerts[3].clone()),
        json!({
            "alert_type": "outage_alerts",
            "level": "Low",
            "event": "outage_recovered",
            "event_group": "proxy",
            "event_message": "Model group gpt answers again",
            "model_group": "gpt",
        })
    );
    assert_eq!(alerts.len(), 4, "{alerts:#?}");
    assert_eq!(alerts_total(&gw, "outage_alerts", "sent").await, 2.0);
}

#[tokio::test]
async fn a_slow_answer_and_a_spike_of_fallbacks() {
    let receiver = Receiver::ok().await;
    let (slow, broken, backup) = (
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
    );
    slow.set_default(Behaviour::Delay(
        Duration::from_millis(400),
        Box::new(Behaviour::Ok),
    ));
    broken.set_default(Behaviour::error(500, "down"));
    let yaml = format!(
        "model_list:\n{}{}{}router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n  fallbacks: [{{\"primary\": [\"backup\"]}}]\n{}",
        deployment("slow", "slow-a", &slow.v1_url(), &[]),
        deployment("primary", "primary-a", &broken.v1_url(), &[]),
        deployment("backup", "backup-a", &backup.v1_url(), &[]),
        alerting("  alert_types: [\"llm_too_slow\", \"fallback_reports\"]\n  alerting_threshold: 0.2\n  alerting_args:\n    llmgate_fallback_alert_threshold: 3\n")
    );
    let gw = gateway(&yaml, &receiver).await;
    assert_eq!(gw.chat("slow", "hi").await.status, 200);
    let slow_alert = stable(receiver.wait_for(1).await[0].clone());
    let latency = slow_alert["latency_seconds"].as_f64().unwrap();
    assert!((0.4..5.0).contains(&latency), "{slow_alert}");
    assert_eq!(slow_alert["alert_type"], "llm_too_slow");
    assert_eq!(slow_alert["level"], "Medium");
    assert_eq!(slow_alert["event"], "slow_response");
    assert_eq!(slow_alert["model_group"], "slow");
    assert_eq!(slow_alert["deployment"], "slow-a");
    assert_eq!(slow_alert["alerting_threshold"], 0.2);

    for _ in 0..2 {
        assert_eq!(gw.chat("primary", "hi").await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.alerts().len(), 1, "two fallbacks are not a spike");
    assert_eq!(gw.chat("primary", "hi").await.status, 200);
    assert_eq!(
        stable(receiver.wait_for(2).await[1].clone()),
        json!({
            "alert_type": "fallback_reports",
            "level": "Medium",
            "event": "fallback_spike",
            "event_group": "proxy",
            "event_message": "3 requests fell back from model group primary within 60s (the last to backup)",
            "model_group": "primary",
            "fallback_group": "backup",
            "count": 3,
            "window_seconds": 60,
        })
    );
}

#[tokio::test]
async fn a_failing_receiver_is_retried_and_counted_and_requests_do_not_wait() {
    // Every POST takes 300 ms and fails: with three retries, one alert holds the sender for
    // about 5 s.
    let receiver =
        Receiver::start(StatusCode::SERVICE_UNAVAILABLE, Duration::from_millis(300)).await;
    let mock = MockProvider::start().await;
    mock.set_default(Behaviour::error(429, "slow down"));
    let yaml = format!(
        "model_list:\n{}router_settings:\n  disable_cooldowns: true\n  num_retries: 0\n{}",
        deployment("gpt", "gpt-a", &mock.v1_url(), &[]),
        alerting("  alerting_args:\n    minor_outage_alert_threshold: 1\n")
    );
    let gw = gateway(&yaml, &receiver).await;
    assert_eq!(gw.chat("gpt", "hi").await.status, 429);
    receiver.wait_for(1).await;
    // While the receiver stalls, requests (each making an alert) answer at once.
    let mut slowest = Duration::ZERO;
    for _ in 0..50 {
        let t = Instant::now();
        assert_eq!(gw.chat("gpt", "hi").await.status, 429);
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(250),
        "slowest request took {slowest:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while alerts_total(&gw, "llm_exceptions", "failed").await < 1.0 {
        assert!(Instant::now() < deadline, "never counted failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        receiver.alerts().len(),
        4,
        "the first try and three retries"
    );
    assert_eq!(alerts_total(&gw, "llm_exceptions", "sent").await, 0.0);
    assert_eq!(
        alerts_total(&gw, "llm_exceptions", "deduplicated").await,
        50.0
    );
}

#[tokio::test]
async fn a_deployment_at_90_percent_of_its_daily_quota() {
    let receiver = Receiver::ok().await;
    let mock = MockProvider::start().await;
    let yaml = format!(
        "model_list:\n{}{}",
        deployment("gpt", "gpt-a", &mock.v1_url(), &["rpd: 10"]),
        alerting("")
    );
    let gw = gateway(&yaml, &receiver).await;
    for _ in 0..8 {
        assert_eq!(gw.chat("gpt", "hi").await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.alerts().is_empty(), "80 % is not nearly used");
    assert_eq!(gw.chat("gpt", "hi").await.status, 200);
    assert_eq!(gw.chat("gpt", "hi").await.status, 200);
    assert_eq!(
        stable(receiver.wait_for(1).await[0].clone()),
        json!({
            "alert_type": "daily_quota_alerts",
            "level": "Medium",
            "event": "daily_quota_nearly_used",
            "event_group": "proxy",
            "event_message": "Deployment gpt-a of model group gpt used 9 of its 10 requests today (UTC)",
            "model_group": "gpt",
            "deployment": "gpt-a",
            "used": 9,
            "rpd": 10,
        })
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.alerts().len(), 1, "told once a day");
}

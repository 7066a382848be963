//! The rules' windows, and the dispatcher against a receiver on loopback: dedup, retries.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use llmgate_core::events::{Event, Events};
use serde_json::Value;

use crate::*;

fn rate_limited() -> Event {
    Event::UpstreamRateLimited {
        group: "gpt".into(),
        deployment: "gpt-a".into(),
    }
}

#[test]
fn a_burst_is_the_thresholds_count_within_the_window() {
    let mut rules = Rules::new(AlertingSettings::default());
    let t0 = Instant::now();
    let fired: Vec<bool> = (0..12)
        .map(|_| rules.alert(&rate_limited(), t0).is_some())
        .collect();
    assert!(!fired[..4].iter().any(|f| *f), "{fired:?}");
    assert!(
        fired[4..].iter().all(|f| *f),
        "the fifth 429 makes the burst: {fired:?}"
    );
    // A new window counts from zero.
    let later = t0 + Duration::from_secs(61);
    assert!((0..4).all(|_| rules.alert(&rate_limited(), later).is_none()));
    assert!(rules.alert(&rate_limited(), later).is_some());
    assert!(rules.alert(&rate_limited(), later).is_some());
}

#[test]
fn types_not_listed_are_not_made() {
    let mut rules = Rules::new(AlertingSettings {
        alert_types: vec![AlertType::BudgetAlerts],
        ..AlertingSettings::default()
    });
    let outage = Event::GroupOutage {
        group: "g".into(),
        deployments: 1,
    };
    assert!(rules.alert(&outage, Instant::now()).is_none());
}

/// A receiver that answers `status` to each POST and records its body.
async fn receiver(status: StatusCode) -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = got.clone();
    tokio::spawn(async move {
        loop {
            let (io, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        seen.lock()
                            .unwrap()
                            .push(serde_json::from_slice(&body).unwrap());
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
    (url, got)
}

async fn start(url: &str) -> (Events, Alerting) {
    let events = Events::new();
    let (alerting, dispatcher) = Alerting::new(AlertingSettings {
        channels: vec![Channel {
            kind: ChannelKind::Webhook,
            url: url.into(),
        }],
        backoff: Duration::from_millis(10),
        ..AlertingSettings::default()
    })
    .unwrap();
    tokio::spawn(dispatcher.run(events.subscribe().unwrap()));
    (events, alerting)
}

async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_flood_of_one_outage_sends_one_alert_and_counts_the_rest() {
    const N: u64 = 1000;
    let (url, got) = receiver(StatusCode::OK).await;
    let (events, alerting) = start(&url).await;
    let outage = || Event::GroupOutage {
        group: "gpt".into(),
        deployments: 2,
    };
    for _ in 0..N {
        events.emit(outage);
        // Yield now and then so the dispatcher keeps up (the bus holds 1,024).
        tokio::task::yield_now().await;
    }
    let counted = |o: Outcome| {
        alerting
            .counts()
            .iter()
            .filter(|c| c.2 == o)
            .map(|c| c.3)
            .sum::<u64>()
    };
    until("the counts", || {
        counted(Outcome::Sent) + counted(Outcome::Deduplicated) == N
    })
    .await;
    assert_eq!(counted(Outcome::Sent), 1);
    assert_eq!(got.lock().unwrap().len(), 1);
    let a = got.lock().unwrap()[0].clone();
    assert_eq!(a["alert_type"], "outage_alerts");
    assert_eq!(a["event"], "outage");
    assert_eq!(a["model_group"], "gpt");
    // Its recovery is sent, and clears the dedup: the next outage is told at once.
    events.emit(|| Event::GroupRecovered {
        group: "gpt".into(),
    });
    events.emit(outage);
    until("three alerts", || got.lock().unwrap().len() == 3).await;
    assert_eq!(got.lock().unwrap()[1]["event"], "outage_recovered");
    assert_eq!(got.lock().unwrap()[2]["event"], "outage");
    // And the outage clears its recovery's: the next recovery is told at once too.
    events.emit(|| Event::GroupRecovered {
        group: "gpt".into(),
    });
    until("four alerts", || got.lock().unwrap().len() == 4).await;
    assert_eq!(got.lock().unwrap()[3]["event"], "outage_recovered");
    assert_eq!(alerting.recent().len(), 4);
}

#[tokio::test]
async fn a_failing_receiver_is_retried_then_counted_failed() {
    let (url, got) = receiver(StatusCode::SERVICE_UNAVAILABLE).await;
    let (events, alerting) = start(&url).await;
    events.emit(|| Event::GroupOutage {
        group: "gpt".into(),
        deployments: 1,
    });
    until("a failure", || {
        alerting.counts().iter().any(|c| c.2 == Outcome::Failed)
    })
    .await;
    assert_eq!(
        got.lock().unwrap().len(),
        4,
        "the first try and three retries"
    );
    assert_eq!(alerting.recent()[0]["delivery"]["webhook"], "failed");
}

fn outage(group: &str) -> Event {
    Event::GroupOutage {
        group: group.into(),
        deployments: 1,
    }
}

async fn start_with(settings: AlertingSettings) -> (Events, Alerting) {
    let events = Events::new();
    let (alerting, dispatcher) = Alerting::new(settings).unwrap();
    tokio::spawn(dispatcher.run(events.subscribe().unwrap()));
    (events, alerting)
}

fn total(alerting: &Alerting, o: Outcome) -> u64 {
    alerting
        .counts()
        .iter()
        .filter(|c| c.2 == o)
        .map(|c| c.3)
        .sum()
}

#[tokio::test]
async fn slack_gets_text_and_alert_to_webhook_url_picks_the_url_per_type() {
    let (default_url, default_got) = receiver(StatusCode::OK).await;
    let (outage_url, outage_got) = receiver(StatusCode::OK).await;
    let (events, _alerting) = start_with(AlertingSettings {
        channels: vec![Channel {
            kind: ChannelKind::Slack,
            url: default_url,
        }],
        slack_url_by_type: [(AlertType::OutageAlerts, outage_url)]
            .into_iter()
            .collect(),
        ..AlertingSettings::default()
    })
    .await;
    events.emit(|| outage("gpt"));
    events.emit(|| Event::DeploymentRecovered {
        group: "gpt".into(),
        deployment: "gpt-a".into(),
    });
    until("both", || {
        outage_got.lock().unwrap().len() == 1 && default_got.lock().unwrap().len() == 1
    })
    .await;
    let text = outage_got.lock().unwrap()[0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.starts_with("Level: `High`\nTimestamp: `"), "{text}");
    assert!(
        text.ends_with("`\n\nAlert type: `outage_alerts`\n\nMessage: Model group gpt has no healthy deployment (all 1 cooling down or at their limits)"),
        "{text}"
    );
    let other = default_got.lock().unwrap()[0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(other.contains("`cooldown_deployment`"), "{other}");
}

#[tokio::test]
async fn past_the_minutes_cap_alerts_are_dropped_and_counted() {
    let (url, got) = receiver(StatusCode::OK).await;
    let (events, alerting) = start_with(AlertingSettings {
        channels: vec![Channel {
            kind: ChannelKind::Webhook,
            url,
        }],
        max_per_minute: 2,
        ..AlertingSettings::default()
    })
    .await;
    for g in ["a", "b", "c", "d", "e"] {
        events.emit(|| outage(g));
    }
    until("five counted", || {
        total(&alerting, Outcome::Sent) + total(&alerting, Outcome::Dropped) == 5
    })
    .await;
    assert_eq!(total(&alerting, Outcome::Sent), 2);
    assert_eq!(got.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_full_queue_drops_new_alerts_and_counts_them() {
    let (url, _got) = slow_receiver(Duration::from_millis(500)).await;
    let (events, alerting) = start_with(AlertingSettings {
        channels: vec![Channel {
            kind: ChannelKind::Webhook,
            url,
        }],
        queue_capacity: 1,
        ..AlertingSettings::default()
    })
    .await;
    for g in ["a", "b", "c", "d", "e"] {
        events.emit(|| outage(g));
    }
    // One is being sent (or waits), one waits, the rest find the queue full.
    until("three dropped", || total(&alerting, Outcome::Dropped) >= 3).await;
    until("the rest sent", || {
        total(&alerting, Outcome::Sent) + total(&alerting, Outcome::Dropped) == 5
    })
    .await;
    assert!(total(&alerting, Outcome::Sent) >= 1);
}

/// A receiver that takes `delay` to answer 200.
async fn slow_receiver(delay: Duration) -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = got.clone();
    tokio::spawn(async move {
        loop {
            let (io, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        seen.lock()
                            .unwrap()
                            .push(serde_json::from_slice(&body).unwrap());
                        tokio::time::sleep(delay).await;
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(io);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    (url, got)
}

//! `llm_requests_hanging`: a request, and a stream, still running after `alerting_threshold`
//! alerted once each while they run, naming group, deployment, key alias and request id; a
//! quick request alerts nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use llmgate_tests::{chat_body, deployment, Behaviour, MockProvider, TestGateway};
use serde_json::json;

use super::backends::TempDb;
use super::{alerting, stable, Receiver};

const MASTER: &str = "sk-master-hanging";

#[tokio::test]
async fn a_hanging_request_and_stream_alert_once_each_while_they_run() {
    let receiver = Receiver::ok().await;
    let (stalled, paced) = (MockProvider::start().await, MockProvider::start().await);
    stalled.set_default(Behaviour::Delay(
        Duration::from_millis(2500),
        Box::new(Behaviour::Ok),
    ));
    // A stream whose head comes at once and whose events take 2.5 s in all.
    paced.set_default(Behaviour::Paced(
        Duration::from_millis(500),
        Box::new(Behaviour::Ok),
    ));
    let db = TempDb(std::env::temp_dir().join(format!(
        "llmgate-hanging-{}.db",
        &llmgate::auth::generate_secret()[3..15]
    )));
    let yaml = format!(
        "model_list:\n{}{}{}  master_key: {MASTER}\n  database_url: sqlite://{}\n",
        deployment("stalled", "stalled-a", &stalled.v1_url(), &[]),
        deployment("paced", "paced-a", &paced.v1_url(), &[]),
        alerting("  alert_types: [\"llm_requests_hanging\"]\n  alerting_threshold: 1\n"),
        db.0.display()
    );
    let env = HashMap::from([("WEBHOOK_URL".to_owned(), receiver.url.clone())]);
    let loaded = llmgate_config::from_yaml(&yaml, std::path::Path::new("."), &env)
        .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    let gateway = llmgate::Gateway::open(loaded.config).await.unwrap();
    let gw = TestGateway::serve(gateway.clone()).await;
    let res = gw
        .handle()
        .with_key(MASTER)
        .post("/key/generate", &json!({"key_alias": "hang-app"}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let user = gw.handle().with_key(res.json()["key"].as_str().unwrap());

    let started = Instant::now();
    let pending = tokio::spawn({
        let user = user.handle();
        async move { user.chat("stalled", "hi").await }
    });
    let alert = stable(receiver.wait_for(1).await[0].clone());
    let told_after = started.elapsed();
    assert!(!pending.is_finished(), "told while it still runs");
    assert!(
        told_after >= Duration::from_secs(1) && told_after < Duration::from_millis(2400),
        "{told_after:?}"
    );
    let res = pending.await.unwrap();
    assert_eq!(res.status, 200);
    let id = res.header("x-llmgate-request-id").unwrap().to_owned();
    let elapsed = alert["elapsed_seconds"].as_f64().unwrap();
    assert!((1.0..2.4).contains(&elapsed), "{alert}");
    let mut expected = json!({
        "alert_type": "llm_requests_hanging",
        "level": "Medium",
        "event": "request_hanging",
        "event_group": "proxy",
        "model_group": "stalled",
        "deployment": "stalled-a",
        "key_alias": "hang-app",
        "request_id": id,
        "stream": false,
        "alerting_threshold": 1.0,
    });
    expected["elapsed_seconds"] = alert["elapsed_seconds"].clone();
    expected["event_message"] = format!(
        "Requests are hanging - 1s+ request time: request {id} to deployment stalled-a of model group stalled (key \"hang-app\") has run {elapsed:.1}s"
    )
    .into();
    assert_eq!(alert, expected);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.alerts().len(), 1, "told once");

    // A stream that answered at once but runs on: told while it streams.
    let mut stream = user
        .stream("/v1/chat/completions", &{
            let mut b = chat_body("paced", "one two three four five");
            b["stream"] = true.into();
            b
        })
        .await;
    assert_eq!(stream.status, 200);
    let id = stream.headers["x-llmgate-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let alert = stable(receiver.wait_for(2).await[1].clone());
    assert_eq!(alert["request_id"], id.as_str());
    assert_eq!(alert["stream"], true);
    assert_eq!(alert["model_group"], "paced");
    assert_eq!(alert["deployment"], "paced-a");
    let rest = stream.rest().await;
    assert!(rest.iter().any(|d| d == "[DONE]"), "{rest:?}");
    assert_eq!(receiver.alerts().len(), 2);

    // Quick requests: none.
    for _ in 0..3 {
        assert_eq!(user.chat("paced", "hi").await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.alerts().len(), 2, "{:#?}", receiver.alerts());
}

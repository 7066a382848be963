//! `daily_reports`: every `daily_report_frequency`, the slowest deployments and those failing
//! most over the period since the last report.

use std::time::Duration;

use llmgate_tests::{deployment, Behaviour, MockProvider};
use serde_json::json;

use super::{alerting, gateway, stable, Receiver};

#[tokio::test]
async fn a_report_each_period_names_the_slowest_and_the_failing_deployments() {
    let receiver = Receiver::ok().await;
    let (slow, fast, broken) = (
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
    );
    slow.set_default(Behaviour::Delay(
        Duration::from_millis(300),
        Box::new(Behaviour::Ok),
    ));
    broken.set_default(Behaviour::error(500, "down"));
    let yaml = format!(
        "model_list:\n{}{}{}router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n{}",
        deployment("slow", "slow-a", &slow.v1_url(), &[]),
        deployment("fast", "fast-a", &fast.v1_url(), &[]),
        deployment("broken", "broken-a", &broken.v1_url(), &[]),
        alerting(
            "  alert_types: [\"daily_reports\"]\n  alerting_args:\n    daily_report_frequency: 3\n"
        )
    );
    let gw = gateway(&yaml, &receiver).await;
    for _ in 0..2 {
        assert_eq!(gw.chat("slow", "hi").await.status, 200);
    }
    assert_eq!(gw.chat("fast", "hi").await.status, 200);
    for _ in 0..3 {
        assert_eq!(gw.chat("broken", "hi").await.status, 500);
    }
    let report = stable(receiver.wait_for(1).await[0].clone());
    assert_eq!(report["alert_type"], "daily_reports");
    assert_eq!(report["event"], "daily_report");
    assert_eq!(report["level"], "Low");
    assert_eq!(report["period_seconds"], 3.0);
    let slowest = report["slowest_deployments"].as_array().unwrap();
    assert_eq!(slowest.len(), 2, "{report:#}");
    assert_eq!(slowest[0]["deployment"], "slow-a");
    assert_eq!(slowest[0]["requests"], 2);
    let avg = slowest[0]["avg_latency_seconds"].as_f64().unwrap();
    assert!((0.3..2.0).contains(&avg), "{report:#}");
    assert_eq!(slowest[1]["deployment"], "fast-a");
    assert_eq!(
        report["failing_deployments"],
        json!([{"model_group": "broken", "deployment": "broken-a", "requests": 3, "failures": 3,
                "failure_rate": 1.0, "avg_latency_seconds": null}])
    );
    let text = report["event_message"].as_str().unwrap();
    assert!(
        text.contains("Top 5 Slowest Deployments:\n1. Deployment: `slow-a` (model group `slow`)"),
        "{text}"
    );
    assert!(
        text.contains(
            "1. Deployment: `broken-a` (model group `broken`), Failed Requests: `3` of 3"
        ),
        "{text}"
    );
    // The next period saw nothing: an empty report, not the same numbers again.
    let next = stable(receiver.wait_for(2).await[1].clone());
    assert_eq!(next["slowest_deployments"], json!([]), "{next:#}");
    assert_eq!(next["failing_deployments"], json!([]), "{next:#}");
}

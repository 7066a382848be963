//! Routing through the real gateway: model groups and aliases, each strategy, deployment
//! limits (rpm, tpm, rpd) and cooldowns. Each `MockProvider` is one deployment; the tests
//! assert which mock got how many requests and what the client saw. A deployment's `rpm` under
//! concurrency and failures is in `routing/rpm.rs`.

mod rpm;

use std::time::Duration;

use llmgate_tests::{chat_body, deployment, Behaviour, Gate, MockProvider, TestGateway};
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;

fn config(entries: &[String], rest: &str) -> String {
    format!("model_list:\n{}{rest}", entries.concat())
}

#[tokio::test]
async fn groups_aliases_and_the_catch_all() {
    let (a, b, any) = (
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
    );
    let yaml = config(
        &[
            deployment("gpt", "gpt-a", &a.v1_url(), &[]),
            deployment("gpt", "gpt-b", &b.v1_url(), &[]),
            deployment("\"*\"", "anything", &any.v1_url(), &[]),
        ],
        "router_settings:\n  model_group_alias:\n    fast: gpt\n    secret: {model: gpt, hidden: true}\n",
    );
    let gw = TestGateway::start(&yaml).await;

    for model in ["gpt", "fast", "secret"] {
        let res = gw.chat(model, "hi").await;
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(res.header("x-llmgate-model-group"), Some("gpt"));
        let (dep, attempts, fallbacks) = res.served_by();
        assert!(dep == "gpt-a" || dep == "gpt-b", "{dep}");
        assert_eq!((attempts.as_str(), fallbacks.as_str()), ("1", "0"));
    }
    assert_eq!(a.request_count() + b.request_count(), 3);

    // A name no group or alias has goes to the catch-all.
    let res = gw.chat("llama-3.3-70b", "hi").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-llmgate-model-group"), Some("*"));
    assert_eq!(res.header("x-llmgate-deployment"), Some("anything"));
    assert_eq!(any.request_count(), 1);

    // /v1/models: the group and the visible alias; neither the catch-all nor the hidden alias.
    let ids: Vec<String> = gw.get("/v1/models").await.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["gpt", "fast"]);
}

#[tokio::test]
async fn weights_split_traffic_within_five_percent_over_1000_requests() {
    let (light, heavy) = (MockProvider::start().await, MockProvider::start().await);
    let yaml = config(
        &[
            deployment("gpt", "light", &light.v1_url(), &["weight: 1"]),
            deployment("gpt", "heavy", &heavy.v1_url(), &["weight: 3"]),
        ],
        "",
    );
    let gw = TestGateway::start(&yaml).await;

    let mut by_header = [0usize; 2];
    for _ in 0..20 {
        let mut batch = JoinSet::new();
        for _ in 0..50 {
            let gw = gw.handle();
            batch.spawn(async move { gw.chat("gpt", "hi").await });
        }
        while let Some(res) = batch.join_next().await {
            let res = res.unwrap();
            assert_eq!(res.status, 200, "{}", res.text());
            match res.header("x-llmgate-deployment") {
                Some("light") => by_header[0] += 1,
                Some("heavy") => by_header[1] += 1,
                other => panic!("answered by {other:?}"),
            }
        }
    }
    assert_eq!(by_header, [light.request_count(), heavy.request_count()]);
    assert_eq!(by_header[0] + by_header[1], 1000);
    // Expected 25 % / 75 %; 5 points either way is 3.6 standard deviations.
    let share = by_header[0] as f64 / 1000.0;
    assert!((0.20..=0.30).contains(&share), "light got {share}");
}

#[tokio::test]
async fn least_busy_sends_new_requests_to_the_idle_deployment() {
    let (a, b) = (MockProvider::start().await, MockProvider::start().await);
    let (gate_a, gate_b) = (Gate::new(), Gate::new());
    a.set_default(Behaviour::gated(&gate_a, 0));
    b.set_default(Behaviour::gated(&gate_b, 0));
    let yaml = config(
        &[
            deployment("gpt", "a", &a.v1_url(), &[]),
            deployment("gpt", "b", &b.v1_url(), &[]),
        ],
        "router_settings:\n  routing_strategy: least-busy\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let spawn = |gw: TestGateway| tokio::spawn(async move { gw.chat("gpt", "hold").await });

    // The first request goes to either; it is held there.
    let first = spawn(gw.handle());
    while gate_a.arrivals() + gate_b.arrivals() < 1 {
        tokio::task::yield_now().await;
    }
    let (busy, busy_gate, idle, idle_gate) = if gate_a.arrivals() == 1 {
        (&a, &gate_a, &b, &gate_b)
    } else {
        (&b, &gate_b, &a, &gate_a)
    };
    // The second goes to the other one, which had nothing in flight.
    let second = spawn(gw.handle());
    idle_gate.wait_for_arrivals(1).await;
    assert_eq!((busy.request_count(), idle.request_count()), (1, 1));

    // Once the second finishes, the idle one takes every new request while the first is held.
    idle_gate.release();
    assert_eq!(second.await.unwrap().status, 200);
    for _ in 0..10 {
        let res = gw.chat("gpt", "quick").await;
        assert_eq!(res.status, 200, "{}", res.text());
    }
    assert_eq!((busy.request_count(), idle.request_count()), (1, 11));
    busy_gate.release();
    assert_eq!(first.await.unwrap().status, 200);
}

#[tokio::test]
async fn least_busy_counts_a_stream_in_flight_until_it_ends() {
    let (a, b) = (MockProvider::start().await, MockProvider::start().await);
    let gate = Gate::new();
    let yaml = config(
        &[
            deployment("gpt", "a", &a.v1_url(), &[]),
            deployment("gpt", "b", &b.v1_url(), &[]),
        ],
        "router_settings:\n  routing_strategy: least-busy\n",
    );
    a.set_default(Behaviour::gated(&gate, 1));
    b.set_default(Behaviour::gated(&gate, 1));
    let gw = TestGateway::start(&yaml).await;

    // A stream whose head and first event arrived, and whose rest is held upstream.
    let mut body = chat_body("gpt", "stream");
    body["stream"] = json!(true);
    let mut held = gw.stream("/v1/chat/completions", &body).await;
    assert_eq!(held.status, 200);
    assert!(held.next_data().await.is_some());
    let (busy, idle) = match held.headers["x-llmgate-deployment"].to_str().unwrap() {
        "a" => (&a, &b),
        _ => (&b, &a),
    };
    idle.set_default(Behaviour::Ok);
    for _ in 0..5 {
        assert_eq!(gw.chat("gpt", "quick").await.status, 200);
    }
    assert_eq!((busy.request_count(), idle.request_count()), (1, 5));
    gate.release();
    assert_eq!(held.rest().await.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test(start_paused = true)]
async fn latency_based_prefers_the_fast_deployment_and_remeasures_after_ttl() {
    let (slow, fast) = (MockProvider::start().await, MockProvider::start().await);
    slow.set_default(Behaviour::Ok.delayed(Duration::from_millis(200)));
    let yaml = config(
        &[
            deployment("gpt", "slow", &slow.v1_url(), &[]),
            deployment("gpt", "fast", &fast.v1_url(), &[]),
        ],
        "router_settings:\n  routing_strategy: latency-based-routing\n  routing_strategy_args:\n    ttl: 60\n",
    );
    let gw = TestGateway::start(&yaml).await;

    // Unmeasured deployments go first, so the first two requests measure both.
    for _ in 0..2 {
        assert_eq!(gw.chat("gpt", "measure").await.status, 200);
    }
    assert_eq!((slow.request_count(), fast.request_count()), (1, 1));
    let start = Instant::now();
    for _ in 0..20 {
        let res = gw.chat("gpt", "hi").await;
        assert_eq!(res.header("x-llmgate-deployment"), Some("fast"));
    }
    assert_eq!((slow.request_count(), fast.request_count()), (1, 21));
    assert!(start.elapsed() < Duration::from_millis(200));

    // Past the ttl both measurements are stale: both are measured again.
    tokio::time::sleep(Duration::from_secs(61)).await;
    for _ in 0..2 {
        assert_eq!(gw.chat("gpt", "measure").await.status, 200);
    }
    assert_eq!((slow.request_count(), fast.request_count()), (2, 22));
}

/// On the real clock: a paused one jumps to the relay's idle timer while the mock's bytes are
/// still on their way over loopback, which ends the stream with a spurious idle timeout.
#[tokio::test]
async fn latency_based_ranks_streams_by_time_to_first_byte() {
    // "late" answers its head after 200 ms; "steady" at once, then one event every 100 ms,
    // so its whole answer is the slower one.
    let (late, steady) = (MockProvider::start().await, MockProvider::start().await);
    late.set_default(Behaviour::Ok.delayed(Duration::from_millis(200)));
    steady.set_default(Behaviour::Ok.paced(Duration::from_millis(100)));
    let yaml = config(
        &[
            deployment("gpt", "late", &late.v1_url(), &[]),
            deployment("gpt", "steady", &steady.v1_url(), &[]),
        ],
        "router_settings:\n  routing_strategy: latency-based-routing\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let mut body = chat_body("gpt", "stream");
    body["stream"] = json!(true);
    for _ in 0..12 {
        let events = gw.stream("/v1/chat/completions", &body).await.rest().await;
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    }
    assert_eq!((late.request_count(), steady.request_count()), (1, 11));
}

#[tokio::test]
async fn usage_based_routing_sends_the_next_request_to_the_less_used_deployment() {
    let (a, b) = (MockProvider::start().await, MockProvider::start().await);
    let yaml = config(
        &[
            deployment("gpt", "a", &a.v1_url(), &["tpm: 100000"]),
            deployment("gpt", "b", &b.v1_url(), &["tpm: 100000"]),
        ],
        "router_settings:\n  routing_strategy: usage-based-routing-v2\n",
    );
    let gw = TestGateway::start(&yaml).await;
    for _ in 0..2 {
        assert_eq!(gw.chat("gpt", "count my tokens").await.status, 200);
    }
    assert_eq!((a.request_count(), b.request_count()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_deployment_at_its_rpm_limit_is_skipped_until_its_requests_leave_the_window() {
    let (limited, spare) = (MockProvider::start().await, MockProvider::start().await);
    // Weights come from rpm, so "spare" (no rpm) weighs 0: picked only when "limited" is out.
    let yaml = config(
        &[
            deployment("gpt", "limited", &limited.v1_url(), &["rpm: 2"]),
            deployment("gpt", "spare", &spare.v1_url(), &[]),
        ],
        "",
    );
    let gw = TestGateway::start(&yaml).await;
    let served: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            let res = gw.chat("gpt", "hi").await;
            assert_eq!(res.status, 200, "{}", res.text());
            v.push(res.served_by());
        }
        v.into_iter().map(|(d, a, _)| format!("{d}/{a}")).collect()
    };
    // Never called past its limit, and no failed attempt either: it is skipped, not tried.
    assert_eq!(
        served,
        ["limited/1", "limited/1", "spare/1", "spare/1", "spare/1"]
    );
    assert_eq!((limited.request_count(), spare.request_count()), (2, 3));

    // rpm is a sliding window (counted in one-second granules): the two leave it 61 s later,
    // not at the start of a new minute.
    tokio::time::sleep(Duration::from_secs(59)).await;
    let res = gw.chat("gpt", "hi").await;
    assert_eq!(res.header("x-llmgate-deployment"), Some("spare"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let res = gw.chat("gpt", "hi").await;
    assert_eq!(res.header("x-llmgate-deployment"), Some("limited"));
}

#[tokio::test(start_paused = true)]
async fn a_deployment_at_its_daily_quota_is_skipped_and_the_answer_says_why() {
    let free = MockProvider::start().await;
    let yaml = config(
        &[deployment("free", "groq-free", &free.v1_url(), &["rpd: 3"])],
        "",
    );
    let gw = TestGateway::start(&yaml).await;
    for _ in 0..3 {
        assert_eq!(gw.chat("free", "hi").await.status, 200);
    }
    let start = Instant::now();
    let res = gw.chat("free", "hi").await;
    let e = res.openai_error(429);
    assert_eq!(e["code"], "no_deployment_available");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("groq-free") && msg.contains("rpd"), "{msg}");
    assert_eq!(free.request_count(), 3, "never called past its quota");
    assert_eq!(start.elapsed(), Duration::ZERO, "answered at once");

    // A new UTC day.
    tokio::time::sleep(Duration::from_secs(86_400)).await;
    assert_eq!(gw.chat("free", "hi").await.status, 200);
    assert_eq!(free.request_count(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_deployment_past_its_tpm_is_skipped() {
    let (small, spare) = (MockProvider::start().await, MockProvider::start().await);
    // Weights from tpm: "spare" (no tpm) weighs 0, so "small" takes requests while it can.
    let yaml = config(
        &[
            deployment("gpt", "small", &small.v1_url(), &["tpm: 10"]),
            deployment("gpt", "spare", &spare.v1_url(), &[]),
        ],
        "",
    );
    let gw = TestGateway::start(&yaml).await;
    // "mock reply to: one two three four five" plus the prompt: more than 10 tokens.
    let res = gw.chat("gpt", "one two three four five").await;
    assert_eq!(res.header("x-llmgate-deployment"), Some("small"));
    assert!(res.json()["usage"]["total_tokens"].as_u64().unwrap() >= 10);
    for _ in 0..3 {
        let res = gw.chat("gpt", "hi").await;
        assert_eq!(res.header("x-llmgate-deployment"), Some("spare"));
    }
    assert_eq!(small.request_count(), 1);
    // The tokens leave the sliding window 61 s after they were counted.
    tokio::time::sleep(Duration::from_secs(61)).await;
    let res = gw.chat("gpt", "hi").await;
    assert_eq!(res.header("x-llmgate-deployment"), Some("small"));
}

// ---- cooldowns ----

/// Group `primary` (deployment "primary") falls back to group `backup` (deployment "backup").
fn primary_and_backup(primary: &MockProvider, backup: &MockProvider, settings: &str) -> String {
    config(
        &[
            deployment("primary", "primary", &primary.v1_url(), &[]),
            deployment("backup", "backup", &backup.v1_url(), &[]),
        ],
        &format!("router_settings:\n  fallbacks:\n    - primary: [backup]\n{settings}"),
    )
}

/// Sends one request for `primary` and returns `deployment/attempts/fallbacks`, checking that
/// it was answered at once.
async fn served(gw: &TestGateway) -> String {
    let start = Instant::now();
    let res = gw.chat("primary", "hi").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(
        start.elapsed() < Duration::from_millis(10),
        "{:?}",
        start.elapsed()
    );
    let (d, a, f) = res.served_by();
    format!("{d}/{a}/{f}")
}

#[tokio::test(start_paused = true)]
async fn a_429_takes_the_deployment_out_for_cooldown_time_then_it_returns() {
    let (primary, backup) = (MockProvider::start().await, MockProvider::start().await);
    primary.push(Behaviour::error(429, "Rate limit reached"));
    let gw = TestGateway::start(&primary_and_backup(
        &primary,
        &backup,
        "  cooldown_time: 30\n",
    ))
    .await;
    let t0 = Instant::now();

    assert_eq!(served(&gw).await, "backup/2/1");
    // Cooling down: skipped at once (the skipped group counts as an attempt, not a call).
    for at in [1, 10, 29] {
        tokio::time::sleep_until(t0 + Duration::from_secs(at)).await;
        assert_eq!(served(&gw).await, "backup/2/1", "at {at}s");
    }
    assert_eq!(primary.request_count(), 1, "no request during the cooldown");

    tokio::time::sleep_until(t0 + Duration::from_secs(31)).await;
    assert_eq!(served(&gw).await, "primary/1/0");
    assert_eq!((primary.request_count(), backup.request_count()), (2, 4));
}

#[tokio::test(start_paused = true)]
async fn a_429s_retry_after_sets_the_cooldown() {
    let (primary, backup) = (MockProvider::start().await, MockProvider::start().await);
    primary.push(Behaviour::error(429, "slow down").with_header("retry-after", "10"));
    let gw = TestGateway::start(&primary_and_backup(
        &primary,
        &backup,
        "  cooldown_time: 600\n",
    ))
    .await;
    let t0 = Instant::now();
    assert_eq!(served(&gw).await, "backup/2/1");
    tokio::time::sleep_until(t0 + Duration::from_secs(9)).await;
    assert_eq!(served(&gw).await, "backup/2/1");
    tokio::time::sleep_until(t0 + Duration::from_secs(11)).await;
    assert_eq!(served(&gw).await, "primary/1/0");
}

#[tokio::test(start_paused = true)]
async fn server_errors_cool_down_only_past_allowed_fails() {
    let (primary, backup) = (MockProvider::start().await, MockProvider::start().await);
    primary.set_default(Behaviour::error(500, "boom"));
    let settings = "  allowed_fails: 1\n  cooldown_time: 5\n  num_retries: 0\n";
    let gw = TestGateway::start(&primary_and_backup(&primary, &backup, settings)).await;
    // First failure: allowed. Second: over the limit, cooling down. Third: skipped.
    for _ in 0..3 {
        assert_eq!(served(&gw).await, "backup/2/1");
    }
    assert_eq!(primary.request_count(), 2);
    tokio::time::sleep(Duration::from_secs(6)).await;
    primary.set_default(Behaviour::Ok);
    assert_eq!(served(&gw).await, "primary/1/0");
}

#[tokio::test(start_paused = true)]
async fn allowed_fails_policy_sets_the_limit_per_error_class() {
    let (primary, backup) = (MockProvider::start().await, MockProvider::start().await);
    primary.set_default(Behaviour::error(500, "boom"));
    let settings = "  num_retries: 0\n  allowed_fails: 5\n  allowed_fails_policy:\n    InternalServerErrorAllowedFails: 0\n";
    let gw = TestGateway::start(&primary_and_backup(&primary, &backup, settings)).await;
    for _ in 0..3 {
        assert_eq!(served(&gw).await, "backup/2/1");
    }
    assert_eq!(primary.request_count(), 1, "one 500 was enough");
}

#[tokio::test(start_paused = true)]
async fn a_wrong_key_takes_the_deployment_out_at_once() {
    let (primary, backup) = (MockProvider::start().await, MockProvider::start().await);
    primary.set_default(Behaviour::error(401, "Incorrect API key provided"));
    let gw = TestGateway::start(&primary_and_backup(&primary, &backup, "")).await;
    for _ in 0..3 {
        assert_eq!(served(&gw).await, "backup/2/1");
    }
    assert_eq!(primary.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn disable_cooldowns_keeps_calling_a_failing_deployment() {
    let (primary, backup) = (MockProvider::start().await, MockProvider::start().await);
    primary.set_default(Behaviour::error(429, "Rate limit reached"));
    let gw = TestGateway::start(&primary_and_backup(
        &primary,
        &backup,
        "  disable_cooldowns: true\n",
    ))
    .await;
    for _ in 0..3 {
        assert_eq!(served(&gw).await, "backup/2/1");
    }
    assert_eq!(primary.request_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn within_a_group_a_cooling_deployment_is_skipped_and_returns_afterwards() {
    let (flaky, steady) = (MockProvider::start().await, MockProvider::start().await);
    flaky.set_default(Behaviour::error(429, "Rate limit reached"));
    let yaml = config(
        &[
            deployment("gpt", "flaky", &flaky.v1_url(), &[]),
            deployment("gpt", "steady", &steady.v1_url(), &[]),
        ],
        "router_settings:\n  cooldown_time: 30\n",
    );
    let gw = TestGateway::start(&yaml).await;

    // Until "flaky" is picked once: that request is retried on "steady" at once.
    let mut tries = 0;
    while flaky.request_count() == 0 {
        tries += 1;
        assert!(tries < 60, "flaky never picked");
        let start = Instant::now();
        let res = gw.chat("gpt", "hi").await;
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(start.elapsed(), Duration::ZERO);
        let (d, a, f) = res.served_by();
        assert_eq!(d, "steady");
        let expected = if flaky.request_count() == 1 { "2" } else { "1" };
        assert_eq!((a.as_str(), f.as_str()), (expected, "0"));
    }
    for _ in 0..20 {
        let res = gw.chat("gpt", "hi").await;
        assert_eq!(res.served_by().1, "1", "flaky is skipped, not tried");
    }
    assert_eq!(flaky.request_count(), 1);

    tokio::time::sleep(Duration::from_secs(31)).await;
    flaky.set_default(Behaviour::Ok);
    let mut tries = 0;
    while flaky.request_count() == 1 {
        tries += 1;
        assert!(tries < 60, "flaky never came back");
        assert_eq!(gw.chat("gpt", "hi").await.status, 200);
    }
}

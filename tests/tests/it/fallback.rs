//! Retries and fallbacks through the real gateway: the seed chain, the kinds of fallbacks,
//! chains without loops, the final error, retries from config, and testing fallbacks on
//! purpose. Retries are in `fallback/retries.rs`, testing fallbacks on purpose in
//! `fallback/on_purpose.rs`, timeouts and streams in `fallback/timeouts.rs`, what a provider
//! cannot take (never retried, cooled or fallen back) in `fallback/unsupported.rs`.

mod on_purpose;
mod retries;
mod seeds;
mod timeouts;
mod unsupported;

use std::time::Duration;

use llmgate_tests::{chat_body, deployment, Behaviour, MockProvider, TestGateway};
use serde_json::json;
use tokio::time::Instant;

fn config(entries: &[String], rest: &str) -> String {
    format!("model_list:\n{}{rest}", entries.concat())
}

/// `x-llmgate-deployment/attempts/fallbacks`.
fn served(res: &llmgate_tests::TestResponse) -> String {
    assert_eq!(res.status, 200, "{}", res.text());
    let (d, a, f) = res.served_by();
    format!("{d}/{a}/{f}")
}

/// The seed chain: OpenRouter key 1, OpenRouter key 2, local Ollama, as three groups.
struct Seed {
    primary: MockProvider,
    second: MockProvider,
    local: MockProvider,
}

impl Seed {
    async fn start() -> Seed {
        Seed {
            primary: MockProvider::start().await,
            second: MockProvider::start().await,
            local: MockProvider::start().await,
        }
    }

    fn yaml(&self, settings: &str) -> String {
        config(
            &[
                deployment("smart", "openrouter-primary", &self.primary.v1_url(), &[]),
                deployment("smart-2", "openrouter-second", &self.second.v1_url(), &[]),
                deployment("local", "ollama-local", &self.local.v1_url(), &[]),
            ],
            &format!("router_settings:\n  fallbacks:\n    - smart: [smart-2, local]\n{settings}"),
        )
    }

    fn counts(&self) -> (usize, usize, usize) {
        (
            self.primary.request_count(),
            self.second.request_count(),
            self.local.request_count(),
        )
    }
}

#[tokio::test(start_paused = true)]
async fn seed_chain_answers_from_local_in_one_request_without_sleeping() {
    let seed = Seed::start().await;
    seed.primary.push(Behaviour::error(
        429,
        "Rate limit exceeded: free-models-per-min",
    ));
    seed.second.push(Behaviour::error(
        429,
        "Rate limit exceeded: free-models-per-day",
    ));
    let gw = TestGateway::start(&seed.yaml("")).await;

    let start = Instant::now();
    let res = gw.chat("smart", "hello").await;
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no sleeping on a 429 with a fallback left"
    );
    assert_eq!(served(&res), "ollama-local/3/2");
    assert_eq!(res.header("x-llmgate-model-group"), Some("local"));
    assert_eq!(
        res.json()["choices"][0]["message"]["content"],
        "mock reply to: hello"
    );
    assert_eq!(seed.counts(), (1, 1, 1));
    // Each key was used for its own attempt.
    assert_eq!(
        seed.primary.last_request().unwrap().bearer_token(),
        Some("sk-openrouter-primary")
    );
    assert_eq!(
        seed.second.last_request().unwrap().bearer_token(),
        Some("sk-openrouter-second")
    );

    // Both keys are cooling down now: the next request skips them without calling them.
    let res = gw.chat("smart", "again").await;
    assert_eq!(served(&res), "ollama-local/3/2");
    assert_eq!(seed.counts(), (1, 1, 2));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn seed_chain_with_both_keys_in_one_group() {
    // The other way to write it: two keys load-balanced in one group, the local model after.
    let (key1, key2, local) = (
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
    );
    key1.push(Behaviour::error(429, "Rate limit exceeded"));
    key2.push(Behaviour::error(429, "Rate limit exceeded"));
    let yaml = config(
        &[
            deployment("smart", "openrouter-key-1", &key1.v1_url(), &[]),
            deployment("smart", "openrouter-key-2", &key2.v1_url(), &[]),
            deployment("local", "ollama-local", &local.v1_url(), &[]),
        ],
        "litellm_settings:\n  fallbacks: [{smart: [local]}]\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let start = Instant::now();
    let res = gw.chat("smart", "hello").await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    // A retry on the group's other key, then one fallback.
    assert_eq!(served(&res), "ollama-local/3/1");
    assert_eq!(
        (
            key1.request_count(),
            key2.request_count(),
            local.request_count()
        ),
        (1, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn when_everything_fails_the_error_lists_every_attempt() {
    let seed = Seed::start().await;
    seed.primary
        .push(Behaviour::error(429, "primary is rate limited"));
    seed.second
        .set_default(Behaviour::error(503, "second is overloaded"));
    seed.local
        .push(Behaviour::error(429, "local is busy").with_header("retry-after", "2"));
    let gw = TestGateway::start(&seed.yaml("  num_retries: 0\n")).await;

    let res = gw.chat("smart", "hello").await;
    let e = res.openai_error(429);
    let msg = e["message"].as_str().unwrap();
    assert!(msg.starts_with("all 3 attempts failed:"), "{msg}");
    for part in [
        "openrouter-primary (smart) -> 429",
        "primary is rate limited",
        "openrouter-second (smart-2) -> 503",
        "second is overloaded",
        "ollama-local (local) -> 429",
        "local is busy",
    ] {
        assert!(msg.contains(part), "{part:?} missing from {msg}");
    }
    // The last failure's type and status, as the provider sent them.
    assert_eq!(e["type"], "requests");
    assert_eq!(res.header("retry-after"), Some("2"));
    assert_eq!(seed.counts(), (1, 1, 1));

    // Now the two rate-limited deployments are cooling down: the next answer says so, having
    // called only the one that was not.
    let res = gw.chat("smart", "hello").await;
    let e = res.openai_error(429);
    let msg = e["message"].as_str().unwrap();
    assert!(msg.starts_with("all 3 attempts failed:"), "{msg}");
    assert!(msg.contains("openrouter-primary: cooling down"), "{msg}");
    assert!(msg.contains("openrouter-second (smart-2) -> 503"), "{msg}");
    assert!(msg.contains("ollama-local: cooling down"), "{msg}");
    assert_eq!(e["code"], "no_deployment_available");
    assert_eq!(res.header("retry-after"), Some("2"));
    assert_eq!(seed.counts(), (1, 2, 1));
}

#[tokio::test]
async fn context_window_errors_take_the_context_window_fallback() {
    let (small, general, large) = (
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
    );
    small.push(Behaviour::error_typed(
        400,
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
        "invalid_request_error",
        Some("context_length_exceeded"),
    ));
    let yaml = config(
        &[
            deployment("small", "small-8k", &small.v1_url(), &[]),
            deployment("general", "general", &general.v1_url(), &[]),
            deployment("large", "large-128k", &large.v1_url(), &[]),
        ],
        "router_settings:\n  fallbacks: [{small: [general]}]\n  context_window_fallbacks: [{small: [large]}]\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let res = gw.chat("small", "a long prompt").await;
    assert_eq!(served(&res), "large-128k/2/1");
    assert_eq!(
        (
            small.request_count(),
            general.request_count(),
            large.request_count()
        ),
        (1, 0, 1),
        "not retried on small, not sent to the ordinary fallback"
    );
}

#[tokio::test]
async fn a_prompt_known_to_be_too_long_goes_to_the_context_window_fallback_up_front() {
    let (small, large) = (MockProvider::start().await, MockProvider::start().await);
    let mut small_entry = deployment("small", "small-8k", &small.v1_url(), &[]);
    small_entry.push_str("      max_input_tokens: 10\n");
    let yaml = config(
        &[
            small_entry,
            deployment("large", "large-128k", &large.v1_url(), &[]),
        ],
        "router_settings:\n  context_window_fallbacks: [{small: [large]}]\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let res = gw.chat("small", &"word ".repeat(200)).await;
    assert_eq!(served(&res), "large-128k/2/1");
    assert_eq!((small.request_count(), large.request_count()), (0, 1));
    // A short prompt still goes to small.
    assert_eq!(served(&gw.chat("small", "hi").await), "small-8k/1/0");
}

#[tokio::test]
async fn content_policy_refusals_take_the_content_policy_fallback() {
    let (strict, lenient, general) = (
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
    );
    strict.push(Behaviour::error_typed(
        400,
        "Your request was rejected as a result of our safety system.",
        "invalid_request_error",
        Some("content_policy_violation"),
    ));
    let yaml = config(
        &[
            deployment("strict", "strict", &strict.v1_url(), &[]),
            deployment("lenient", "lenient", &lenient.v1_url(), &[]),
            deployment("general", "general", &general.v1_url(), &[]),
        ],
        "router_settings:\n  default_fallbacks: [general]\n  content_policy_fallbacks: [{strict: [lenient]}]\n",
    );
    let gw = TestGateway::start(&yaml).await;
    assert_eq!(served(&gw.chat("strict", "hi").await), "lenient/2/1");
    assert_eq!(general.request_count(), 0);
}

#[tokio::test]
async fn a_clients_own_mistake_is_neither_retried_nor_fallen_back() {
    let (primary, backup) = (MockProvider::start().await, MockProvider::start().await);
    primary.push(Behaviour::error(400, "Invalid value for 'temperature'"));
    let yaml = config(
        &[
            deployment("primary", "primary", &primary.v1_url(), &[]),
            deployment("backup", "backup", &backup.v1_url(), &[]),
        ],
        "router_settings:\n  fallbacks: [{primary: [backup]}]\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let e = gw.chat("primary", "hi").await.openai_error(400);
    assert!(
        e["message"].as_str().unwrap().contains("temperature"),
        "{e}"
    );
    assert_eq!((primary.request_count(), backup.request_count()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn fallback_chains_do_not_loop() {
    let mocks = [
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
    ];
    for m in &mocks {
        m.set_default(Behaviour::error(500, "down"));
    }
    // a -> b -> a, and a three-group cycle c -> a -> b -> c (through a's and b's own lists).
    let yaml = config(
        &[
            deployment("a", "a", &mocks[0].v1_url(), &[]),
            deployment("b", "b", &mocks[1].v1_url(), &[]),
            deployment("c", "c", &mocks[2].v1_url(), &[]),
        ],
        "router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n  fallbacks:\n    - a: [b]\n    - b: [a, c]\n    - c: [a]\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let start = Instant::now();

    let e = gw.chat("a", "hi").await.openai_error(500);
    let msg = e["message"].as_str().unwrap();
    assert!(msg.starts_with("all 3 attempts failed:"), "{msg}");
    assert!(
        msg.contains("a (a) -> 500")
            && msg.contains("b (b) -> 500")
            && msg.contains("c (c) -> 500"),
        "{msg}"
    );
    let counts: Vec<usize> = mocks.iter().map(MockProvider::request_count).collect();
    assert_eq!(counts, [1, 1, 1], "each group once");

    let e = gw.chat("c", "hi").await.openai_error(500);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("all 3 attempts failed:"),
        "{e}"
    );
    let counts: Vec<usize> = mocks.iter().map(MockProvider::request_count).collect();
    assert_eq!(counts, [2, 2, 2]);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn router_settings_and_litellm_settings_fallbacks_are_both_honoured() {
    let m: Vec<MockProvider> = vec![
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
    ];
    m[0].set_default(Behaviour::error(503, "down"));
    m[2].set_default(Behaviour::error(503, "down"));
    let yaml = config(
        &[
            deployment("a", "a", &m[0].v1_url(), &[]),
            deployment("a-backup", "a-backup", &m[1].v1_url(), &[]),
            deployment("c", "c", &m[2].v1_url(), &[]),
            deployment("c-backup", "c-backup", &m[3].v1_url(), &[]),
            deployment("c-other", "c-other", &m[4].v1_url(), &[]),
        ],
        // For the same group, router_settings wins.
        "router_settings:\n  num_retries: 0\n  fallbacks: [{c: [c-backup]}]\nlitellm_settings:\n  fallbacks: [{a: [a-backup]}, {c: [c-other]}]\n",
    );
    let gw = TestGateway::start(&yaml).await;
    assert_eq!(served(&gw.chat("a", "hi").await), "a-backup/2/1");
    assert_eq!(served(&gw.chat("c", "hi").await), "c-backup/2/1");
    assert_eq!(m[4].request_count(), 0);
}

#[tokio::test]
async fn a_fallback_may_name_an_alias() {
    let (primary, backup) = (MockProvider::start().await, MockProvider::start().await);
    primary.set_default(Behaviour::error(503, "down"));
    let yaml = config(
        &[
            deployment("primary", "primary", &primary.v1_url(), &[]),
            deployment("backup", "backup", &backup.v1_url(), &[]),
        ],
        "router_settings:\n  num_retries: 0\n  model_group_alias:\n    spare: {model: backup, hidden: true}\n  fallbacks: [{primary: [spare]}]\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let res = gw.chat("primary", "hi").await;
    assert_eq!(served(&res), "backup/2/1");
    assert_eq!(res.header("x-llmgate-model-group"), Some("backup"));
}

#[tokio::test]
async fn default_fallbacks_and_the_requests_own_fallbacks() {
    let (primary, general, chosen) = (
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
    );
    primary.set_default(Behaviour::error(503, "down"));
    let yaml = config(
        &[
            deployment("primary", "primary", &primary.v1_url(), &[]),
            deployment("general", "general", &general.v1_url(), &[]),
            deployment("chosen", "chosen", &chosen.v1_url(), &[]),
        ],
        "router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n  default_fallbacks: [general]\n",
    );
    let gw = TestGateway::start(&yaml).await;
    assert_eq!(served(&gw.chat("primary", "hi").await), "general/2/1");

    let mut body = chat_body("primary", "hi");
    body["fallbacks"] = json!(["chosen"]);
    let res = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(served(&res), "chosen/2/1");
    assert_eq!(general.request_count(), 1);
    assert!(chosen
        .last_request()
        .unwrap()
        .json
        .get("fallbacks")
        .is_none());
}

//! The seeds' ways of writing fallbacks, served: a list as a fallback's key (the first seed's
//! chain, which PyYAML refuses), an alias written as a list of groups, and `retry_after`.

use std::time::Duration;

use llmgate_tests::{deployment, Behaviour, MockProvider, TestGateway};
use tokio::time::Instant;

use super::{config, served};

#[tokio::test(start_paused = true)]
async fn the_first_seeds_chain_with_lists_as_keys_falls_back_in_order() {
    let (primary, second, local) = (
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
    );
    primary.set_default(Behaviour::error(
        429,
        "Rate limit exceeded: free-models-per-min",
    ));
    second.set_default(Behaviour::error(
        429,
        "Rate limit exceeded: free-models-per-day",
    ));
    let yaml = config(
        &[
            deployment("\"openrouter/primary\"", "primary", &primary.v1_url(), &[]),
            deployment(
                "\"openrouter/fallback1\"",
                "fallback1",
                &second.v1_url(),
                &[],
            ),
            deployment("\"ollama/llama3.1:8b\"", "llama", &local.v1_url(), &[]),
        ],
        concat!(
            "router_settings:\n",
            "  routing_strategy: \"simple-shuffle\"\n",
            "  fallbacks:\n",
            "    - [\"openrouter/primary\"]: [\"openrouter/fallback1\"]\n",
            "    - [\"openrouter/fallback1\"]: [\"ollama/llama3.1:8b\"]\n",
        ),
    );
    let gw = TestGateway::start(&yaml).await;
    let res = gw.chat("openrouter/primary", "hello").await;
    assert_eq!(served(&res), "llama/3/2");
    assert_eq!(
        (
            primary.request_count(),
            second.request_count(),
            local.request_count()
        ),
        (1, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn an_alias_written_as_a_list_tries_its_groups_in_order() {
    let (a, b, c) = (
        MockProvider::start().await,
        MockProvider::start().await,
        MockProvider::start().await,
    );
    a.set_default(Behaviour::error(503, "down"));
    b.set_default(Behaviour::error(429, "busy"));
    let yaml = config(
        &[
            deployment("gpt-4o", "gpt-4o", &a.v1_url(), &[]),
            deployment("claude-3-5-sonnet", "claude", &b.v1_url(), &[]),
            deployment("mistral-7b-local", "mistral", &c.v1_url(), &[]),
        ],
        concat!(
            "router_settings:\n",
            "  num_retries: 0\n",
            "  model_group_alias:\n",
            "    \"gpt-4-fallback\":\n",
            "      - \"gpt-4o\"\n",
            "      - \"claude-3-5-sonnet\"\n",
            "      - \"mistral-7b-local\"\n",
        ),
    );
    let gw = TestGateway::start(&yaml).await;
    let res = gw.chat("gpt-4-fallback", "hi").await;
    assert_eq!(served(&res), "mistral/3/2");
    // The group itself keeps no such chain.
    let res = gw.chat("gpt-4o", "hi").await;
    assert_eq!(res.status, 503, "{}", res.text());
}

#[tokio::test(start_paused = true)]
async fn retry_after_in_litellm_settings_is_the_wait_before_the_same_deployment_again() {
    let only = MockProvider::start().await;
    only.push(Behaviour::error(503, "warming up"));
    let yaml = config(
        &[deployment("m", "only", &only.v1_url(), &[])],
        "litellm_settings:\n  num_retries: 1\n  retry_after: 5\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let start = Instant::now();
    let res = gw.chat("m", "hi").await;
    assert_eq!(served(&res), "only/2/0");
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

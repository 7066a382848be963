//! Responses stored upstream are pinned to the deployment that made them: a follow-up with
//! `previous_response_id`, `GET`/`DELETE /v1/responses/{id}` and `/input_items` reach that
//! deployment (and its key) every time, with the upstream's own id; one whose deployment left
//! the config is a clear 404.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::Method;
use llmgate::metering::MemorySink;
use llmgate_tests::{Behaviour, MockProvider, TestGateway};
use serde_json::{json, Value};

use super::native::{native, unpin, with_key};
use super::{post, text_of, KEY};

/// Two native deployments of group `gpt`, each on its own mock (which stores its responses
/// only), shuffled evenly.
async fn two() -> (MockProvider, MockProvider, TestGateway, String) {
    let (a, b) = (
        MockProvider::start_responses().await,
        MockProvider::start_responses().await,
    );
    let models = format!(
        "{}{}",
        native("gpt", "gpt-a", &a.v1_url()),
        native("gpt", "gpt-b", &b.v1_url())
    );
    let y = with_key(&models, "router_settings:\n  num_retries: 0\n");
    let gw = TestGateway::start(&y).await.with_key(KEY);
    (a, b, gw, y)
}

#[tokio::test]
async fn follow_ups_land_on_the_deployment_that_stored_the_response() {
    let (a, b, gw, _) = two().await;
    let first = post(&gw, &json!({"model": "gpt", "input": "one"})).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let mut id = first.json()["id"].as_str().unwrap().to_owned();
    let (dep, _) = unpin(&id);
    let (home, away) = if dep == "gpt-a" { (&a, &b) } else { (&b, &a) };
    let mut previous_text = text_of(&first.json());
    // Unpinned, each follow-up would reach the other mock half the time, which answers 400
    // previous_response_not_found.
    for turn in 0..8 {
        let stream = turn % 2 == 1;
        let body = json!({"model": "gpt", "input": format!("turn {turn}"),
            "previous_response_id": id, "stream": stream});
        let v = if stream {
            let mut s = gw.stream("/v1/responses", &body).await;
            assert_eq!(s.status, 200);
            let mut last = Value::Null;
            while let Some((_, data)) = s.next_event().await {
                last = serde_json::from_str(&data).unwrap();
            }
            assert_eq!(last["type"], "response.completed", "{last}");
            last["response"].clone()
        } else {
            let res = post(&gw, &body).await;
            assert_eq!(res.status, 200, "turn {turn}: {}", res.text());
            res.json()
        };
        // The upstream continued its own conversation, and the client sees its own ids.
        assert_eq!(
            text_of(&v),
            format!("mock reply to: turn {turn} (after: {previous_text})")
        );
        assert_eq!(v["previous_response_id"], id.as_str());
        let sent = home.last_request().unwrap();
        assert_eq!(sent.json["previous_response_id"], unpin(&id).1.as_str());
        assert_eq!(
            sent.headers["authorization"],
            format!("Bearer sk-{dep}").as_str()
        );
        previous_text = text_of(&v);
        id = v["id"].as_str().unwrap().to_owned();
        assert_eq!(unpin(&id).0, dep);
    }
    assert_eq!(home.request_count(), 9);
    assert_eq!(away.request_count(), 0);
}

#[tokio::test]
async fn get_input_items_and_delete_reach_the_pinned_deployment() {
    let (a, b, gw, y) = two().await;
    let res = post(&gw, &json!({"model": "gpt", "input": "hello there"})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let id = res.json()["id"].as_str().unwrap().to_owned();
    let (dep, upstream) = unpin(&id);
    let home = if dep == "gpt-a" { &a } else { &b };
    let path = format!("/v1/responses/{id}");

    let got = gw.get(&path).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["id"], id.as_str());
    assert_eq!(text_of(&got.json()), "mock reply to: hello there");
    let sent = home.last_request().unwrap();
    assert_eq!(
        (sent.method, sent.path),
        (Method::GET, format!("/v1/responses/{upstream}"))
    );

    let items = gw.get(&format!("{path}/input_items?limit=5")).await;
    assert_eq!(items.status, 200, "{}", items.text());
    assert_eq!(items.json()["data"][0]["content"], "hello there");
    assert_eq!(
        home.last_request().unwrap().path_and_query,
        format!("/v1/responses/{upstream}/input_items?limit=5")
    );

    // Behind auth like every stored response.
    let anonymous = TestGateway::start(&y).await;
    assert_eq!(anonymous.get(&path).await.status, 401);

    // Only GET and DELETE reach the upstream.
    assert_eq!(
        gw.send(Method::PUT, &path, String::new(), &[]).await.status,
        405
    );
    let deleted = gw.send(Method::DELETE, &path, String::new(), &[]).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(
        deleted.json(),
        json!({"id": id, "object": "response", "deleted": true})
    );
    let gone = gw.get(&path).await;
    assert_eq!(gone.status, 404, "{}", gone.text());
    assert_eq!(a.request_count() + b.request_count(), 5);
}

#[tokio::test]
async fn a_response_whose_deployment_left_the_config_is_a_clear_404() {
    let (_a, _b, gw, _) = two().await;
    let id = format!(
        "resp_{}",
        URL_SAFE_NO_PAD.encode("llmgate;deployment:gpt-old;response_id:resp_x")
    );
    let res = post(
        &gw,
        &json!({"model": "gpt", "input": "again", "previous_response_id": id}),
    )
    .await;
    assert_eq!(res.status, 404, "{}", res.text());
    let e = &res.json()["error"];
    assert_eq!(e["code"], "deployment_not_found");
    assert!(
        e["message"].as_str().unwrap().contains("\"gpt-old\""),
        "{e}"
    );
    let got = gw.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(got.status, 404);
    assert_eq!(got.json()["error"]["code"], "deployment_not_found");
}

/// A gateway over `y` whose spend records go to the returned sink (virtual keys in memory).
fn with_sink(y: &str) -> (llmgate::Gateway, MemorySink) {
    let loaded = llmgate_config::from_yaml(y, Path::new("."), &HashMap::<String, String>::new())
        .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    let sink = MemorySink::new();
    let gateway = llmgate::Gateway::builder(loaded.config)
        .spend_sink(Arc::new(sink.clone()))
        .build()
        .unwrap();
    (gateway, sink)
}

/// A pinned follow-up is taken from its deployment's `rpm` and `rpd` like any request: with a
/// limit of 2, the first answer and one follow-up pass and the next follow-up is refused
/// without reaching the upstream.
#[tokio::test]
async fn a_pinned_follow_up_counts_toward_the_deployments_rpm_and_rpd() {
    for limit in ["rpm", "rpd"] {
        let mock = MockProvider::start_responses().await;
        let models = native("gpt", "gpt-a", &mock.v1_url()).replace(
            "      api_key:",
            &format!("      {limit}: 2\n      api_key:"),
        );
        let y = with_key(&models, "router_settings:\n  num_retries: 0\n");
        let gw = TestGateway::start(&y).await.with_key(KEY);
        let first = post(&gw, &json!({"model": "gpt", "input": "one"})).await;
        assert_eq!(first.status, 200, "{limit}: {}", first.text());
        let id = first.json()["id"].as_str().unwrap().to_owned();
        let second = post(
            &gw,
            &json!({"model": "gpt", "input": "two", "previous_response_id": id}),
        )
        .await;
        assert_eq!(second.status, 200, "{limit}: {}", second.text());
        let id = second.json()["id"].as_str().unwrap().to_owned();
        let third = post(
            &gw,
            &json!({"model": "gpt", "input": "three", "previous_response_id": id}),
        )
        .await;
        // A 429, as an unpinned request at its deployments' limits gets.
        assert_eq!(third.status, 429, "{limit}: {}", third.text());
        let e = &third.json()["error"];
        assert_eq!(e["code"], "no_deployment_available", "{limit}: {e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains(&format!("gpt-a: at its {limit} limit")),
            "{e}"
        );
        assert_eq!(mock.request_count(), 2, "{limit}");
    }
}

/// A deployment cooling down (its own 429) is skipped by unpinned requests, but a follow-up
/// pinned to it still goes there: there is nowhere else to go.
#[tokio::test]
async fn a_cooldown_does_not_keep_a_pinned_follow_up_away() {
    let mock = MockProvider::start_responses().await;
    let y = with_key(
        &native("gpt", "gpt-a", &mock.v1_url()),
        "router_settings:\n  num_retries: 0\n  cooldown_time: 60\n",
    );
    let gw = TestGateway::start(&y).await.with_key(KEY);
    let first = post(&gw, &json!({"model": "gpt", "input": "one"})).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let id = first.json()["id"].as_str().unwrap().to_owned();
    mock.push(Behaviour::error(429, "slow down"));
    post(&gw, &json!({"model": "gpt", "input": "two"}))
        .await
        .openai_error(429);
    // Cooling down: an unpinned request is refused without a call.
    let skipped = post(&gw, &json!({"model": "gpt", "input": "three"})).await;
    assert_eq!(skipped.openai_error(429)["code"], "no_deployment_available");
    assert_eq!(mock.request_count(), 2);
    let pinned = post(
        &gw,
        &json!({"model": "gpt", "input": "four", "previous_response_id": id}),
    )
    .await;
    assert_eq!(pinned.status, 200, "{}", pinned.text());
    assert_eq!(
        text_of(&pinned.json()),
        "mock reply to: four (after: mock reply to: one)"
    );
    assert_eq!(mock.request_count(), 3);
}

/// The caller's key must be allowed the pinned deployment's model group, whatever model the
/// follow-up names: a key allowed only `other` is refused (403) without a call.
#[tokio::test]
async fn a_pinned_follow_up_needs_access_to_the_deployments_group() {
    let (gpt, other) = (
        MockProvider::start_responses().await,
        MockProvider::start_responses().await,
    );
    let models = format!(
        "{}{}",
        native("gpt", "gpt-a", &gpt.v1_url()),
        native("other", "other-a", &other.v1_url())
    );
    let (gateway, _sink) = with_sink(&with_key(&models, ""));
    let gw = TestGateway::serve(gateway).await;
    let master = gw.handle().with_key(KEY);
    let first = post(&master, &json!({"model": "gpt", "input": "one"})).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let key_for = |models: Value| {
        let master = master.handle();
        async move {
            let made = master
                .post("/key/generate", &json!({"models": models}))
                .await;
            assert_eq!(made.status, 200, "{}", made.text());
            made.json()["key"].as_str().unwrap().to_owned()
        }
    };
    let narrow = gw.handle().with_key(&key_for(json!(["other"])).await);
    let refused = post(
        &narrow,
        &json!({"model": "other", "input": "two", "previous_response_id": id}),
    )
    .await;
    let e = refused.openai_error(403);
    assert_eq!(e["code"], "model_not_allowed", "{e}");
    assert_eq!(gpt.request_count() + other.request_count(), 1);
    // A key allowed the group continues the conversation.
    let wide = gw.handle().with_key(&key_for(json!(["gpt"])).await);
    let continued = post(
        &wide,
        &json!({"model": "gpt", "input": "two", "previous_response_id": id}),
    )
    .await;
    assert_eq!(continued.status, 200, "{}", continued.text());
    assert_eq!(gpt.request_count(), 2);
}

/// `GET`, `/input_items` and `DELETE` on a pinned id cost nothing and are not rate limited,
/// metered or cached: a key with `rpm_limit: 2` reads its response six times and still makes
/// its second request (the third is refused); with the cache on, each read reaches the
/// upstream; the spend sink sees the two requests only.
#[tokio::test]
async fn pinned_reads_cost_nothing_and_are_not_rate_limited_metered_or_cached() {
    let mock = MockProvider::start_responses().await;
    let y = with_key(
        &native("gpt", "gpt-a", &mock.v1_url()),
        "litellm_settings:\n  cache: true\n  cache_params:\n    type: local\n",
    );
    let (gateway, sink) = with_sink(&y);
    let gw = TestGateway::serve(gateway.clone()).await;
    let made = gw
        .handle()
        .with_key(KEY)
        .post("/key/generate", &json!({"rpm_limit": 2}))
        .await;
    let user = gw.handle().with_key(made.json()["key"].as_str().unwrap());
    let first = post(&user, &json!({"model": "gpt", "input": "one"})).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(first.header("x-llmgate-response-cost").is_some());
    let path = format!("/v1/responses/{}", first.json()["id"].as_str().unwrap());
    for round in 0..3 {
        for p in [path.clone(), format!("{path}/input_items")] {
            let read = user.get(&p).await;
            assert_eq!(read.status, 200, "{p} ({round}): {}", read.text());
            assert_eq!(read.header("x-llmgate-response-cost"), None, "{p}");
            assert_ne!(read.header("x-llmgate-cache"), Some("hit"), "{p}");
        }
    }
    assert_eq!(mock.request_count(), 7, "every read reached the upstream");
    let deleted = user.send(Method::DELETE, &path, String::new(), &[]).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let second = post(&user, &json!({"model": "gpt", "input": "two"})).await;
    assert_eq!(
        second.status,
        200,
        "the reads took nothing: {}",
        second.text()
    );
    let third = post(&user, &json!({"model": "gpt", "input": "three"})).await;
    assert_eq!(third.openai_error(429)["type"], "rate_limit_error");
    gateway.flush_spend().await;
    let records = sink.records();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().all(|r| r.cost.unwrap() > 0.0), "{records:?}");
}

/// A read on a pinned id is routed to its deployment like a follow-up, so it takes from the
/// deployment's `rpm` (the caller's limits are not asked): with `rpm: 2`, the answer and one
/// read pass and the next read is refused without reaching the upstream.
#[tokio::test]
async fn pinned_reads_take_from_the_deployments_rpm() {
    let mock = MockProvider::start_responses().await;
    let models = native("gpt", "gpt-a", &mock.v1_url())
        .replace("      api_key:", "      rpm: 2\n      api_key:");
    let gw = TestGateway::start(&with_key(&models, ""))
        .await
        .with_key(KEY);
    let first = post(&gw, &json!({"model": "gpt", "input": "one"})).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let path = format!("/v1/responses/{}", first.json()["id"].as_str().unwrap());
    assert_eq!(gw.get(&path).await.status, 200);
    let refused = gw.get(&path).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(
        refused.json()["error"]["code"],
        "no_deployment_available",
        "{}",
        refused.text()
    );
    assert_eq!(mock.request_count(), 2);
}

//! Responses stored upstream are pinned to the deployment that made them: a follow-up with
//! `previous_response_id`, `GET`/`DELETE /v1/responses/{id}` and `/input_items` reach that
//! deployment (and its key) every time, with the upstream's own id; one whose deployment left
//! the config is a clear 404.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::Method;
use llmgate_tests::{MockProvider, TestGateway};
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

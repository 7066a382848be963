//! Replicate through the gateway: predictions created with `Prefer: wait`, polled when they
//! are not finished, streamed from their stream URL, and the errors a failed prediction or a
//! poll URL elsewhere give, against the mock Replicate API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use llmgate_testkit::replicate::API_TOKEN;
use llmgate_tests::{chat_body, Behaviour, MockProvider, TestGateway};
use serde_json::{json, Value};

fn config(base: &str, model: &str) -> String {
    format!(
        "model_list:
  - model_name: llama
    litellm_params:
      model: replicate/{model}
      api_base: {base}
      num_retries: 0
"
    )
}

async fn gateway(mock: &MockProvider, model: &str) -> TestGateway {
    TestGateway::start_with_env(
        &config(&mock.v1_url(), model),
        &[("REPLICATE_API_TOKEN", API_TOKEN)],
    )
    .await
}

#[tokio::test]
async fn a_prediction_answers_and_streams() {
    let mock = MockProvider::start_replicate(0).await;
    let gw = gateway(&mock, "meta/meta-llama-3-8b-instruct").await;

    let mut body = chat_body("llama", "hello replicate");
    body["max_tokens"] = json!(20);
    body["stop"] = json!(["\n", "User:"]);
    let res = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock reply to: hello replicate"
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7})
    );
    let up = mock.last_request().unwrap();
    assert_eq!(
        up.path,
        "/v1/models/meta/meta-llama-3-8b-instruct/predictions"
    );
    assert_eq!(up.header("prefer"), Some("wait"));
    assert_eq!(up.bearer_token(), Some(API_TOKEN));
    assert_eq!(
        up.json,
        json!({"input": {"prompt": "hello replicate", "max_new_tokens": 20,
                         "stop_sequences": "\n,User:"}})
    );
    assert_eq!(mock.request_count(), 1);

    let mut body = chat_body("llama", "hello stream");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let mut s = gw.stream("/v1/chat/completions", &body).await;
    assert_eq!(s.status, 200);
    let events = s.rest().await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let chunks: Vec<Value> = events
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "mock reply to: hello stream");
    let usage = &chunks
        .iter()
        .rev()
        .find(|c| c["usage"].is_object())
        .unwrap()["usage"];
    // Replicate's stream reports no usage: estimated from the prompt and the text.
    assert_eq!(
        *usage,
        json!({"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10})
    );
    let requests = mock.requests();
    let create = &requests[1];
    assert_eq!(create.json["stream"], true);
    assert!(create.header("prefer").is_none());
    let read = &requests[2];
    assert!(read.path.starts_with("/v1/streams/"), "{}", read.path);
    assert_eq!(
        read.header("authorization"),
        None,
        "the key stays on the API"
    );
}

#[tokio::test]
async fn an_unfinished_prediction_is_polled_until_it_succeeds() {
    let mock = MockProvider::start_replicate(2).await;
    let gw = gateway(
        &mock,
        "meta/llama-2-70b-chat:02e509c789964a7ea8736978a43525956ef40397be9033abf9fd2badfe68c9e3",
    )
    .await;
    let started = Instant::now();
    let res = gw.chat("llama", "hello poll").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(
        started.elapsed() >= Duration::from_millis(750),
        "{:?}",
        started.elapsed()
    );
    // Llama 2's chat format for a llama-2 chat model.
    assert_eq!(
        res.json()["choices"][0]["message"]["content"],
        "mock reply to: [INST] hello poll [/INST]\n"
    );
    let requests = mock.requests();
    assert_eq!(requests.len(), 3, "created, then polled twice");
    assert_eq!(requests[0].path, "/v1/predictions");
    assert_eq!(
        requests[0].json["version"],
        "02e509c789964a7ea8736978a43525956ef40397be9033abf9fd2badfe68c9e3"
    );
    assert!(requests[1].path.starts_with("/v1/predictions/mockpred"));
    assert_eq!(requests[2].bearer_token(), Some(API_TOKEN));
}

#[tokio::test]
async fn failed_predictions_and_foreign_poll_urls_are_errors() {
    let mock = MockProvider::start_replicate(0).await;
    let gw = gateway(&mock, "deployments/acme/my-llm").await;
    mock.push(Behaviour::json(
        201,
        &json!({"id": "p1", "status": "failed", "output": null,
                "error": "CUDA error: out of memory", "urls": {}}),
    ));
    let e = gw.chat("llama", "hi").await.openai_error(502);
    assert_eq!(e["code"], "prediction_failed");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("CUDA error: out of memory"),
        "{e}"
    );
    assert_eq!(
        mock.last_request().unwrap().path,
        "/v1/deployments/acme/my-llm/predictions"
    );

    // A poll URL on another host would carry the key there: refused, nothing sent.
    mock.push(Behaviour::json(
        201,
        &json!({"id": "p2", "status": "starting",
                "urls": {"get": "http://169.254.169.254/latest/meta-data"}}),
    ));
    let e = gw.chat("llama", "hi").await.openai_error(502);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("not on the api_base's origin"),
        "{e}"
    );
    assert_eq!(mock.request_count(), 2);

    // A wrong token: Replicate's 401.
    let wrong = TestGateway::start_with_env(
        &config(&mock.v1_url(), "meta/m"),
        &[("REPLICATE_API_KEY", "r8_wrong")],
    )
    .await;
    let e = wrong.chat("llama", "hi").await.openai_error(401);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("valid authentication token"),
        "{e}"
    );
}

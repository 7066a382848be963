//! `llmgate --model ollama/llama3.2 --api_base URL`: the sidecar config, served by the real
//! gateway, against a mock Ollama speaking its native API.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure is the test failing"
)]

use std::collections::HashMap;

use llmgate_tests::{chat_body, MockProvider, TestGateway};
use serde_json::{json, Value};

/// The gateway `llmgate --model ollama/llama3.2 --api_base <mock>` starts.
async fn sidecar(mock: &MockProvider) -> TestGateway {
    let env: HashMap<String, String> = HashMap::new();
    let loaded = llmgate_config::sidecar("ollama/llama3.2", Some(&mock.base_url()), None, &env)
        .unwrap_or_else(|p| panic!("sidecar config rejected:\n{p}"));
    TestGateway::serve(llmgate::Gateway::new(loaded.config).expect("gateway builds")).await
}

#[tokio::test]
async fn sidecar_chat_reaches_api_chat() {
    let mock = MockProvider::start_ollama().await;
    let gw = sidecar(&mock).await;

    let res = gw.chat("ollama/llama3.2", "why is the sky blue").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "llama3.2");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": "mock reply to: why is the sky blue"})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 8, "total_tokens": 13})
    );
    let got = mock.last_request().unwrap();
    assert_eq!(got.path, "/api/chat");
    assert_eq!(got.header("authorization"), None);
    assert_eq!(
        got.json,
        json!({"model": "llama3.2", "stream": false,
               "messages": [{"role": "user", "content": "why is the sky blue"}]})
    );

    // The catch-all entry serves any model name the client's SDK sends.
    let res = gw.chat("gpt-4o-mini", "hi").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(mock.last_request().unwrap().model(), Some("llama3.2"));
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn sidecar_stream_reaches_api_chat() {
    let mock = MockProvider::start_ollama().await;
    let gw = sidecar(&mock).await;

    let mut body = chat_body("ollama/llama3.2", "hello there");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let mut stream = gw.stream("/v1/chat/completions", &body).await;
    assert_eq!(stream.status, 200);
    assert_eq!(
        stream.headers["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let events = stream.rest().await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "mock reply to: hello there");
    let finish: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [&json!("stop")]);
    assert_eq!(
        chunks.last().unwrap()["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7})
    );
    let got = mock.last_request().unwrap();
    assert_eq!(got.path, "/api/chat");
    assert_eq!(got.json["stream"], true);
}

#[tokio::test]
async fn sidecar_embeddings_reach_api_embed() {
    let mock = MockProvider::start_ollama().await;
    let gw = sidecar(&mock).await;

    let res = gw
        .post(
            "/v1/embeddings",
            &json!({"model": "ollama/llama3.2", "input": ["hello world", "bye"]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    let got = mock.last_request().unwrap();
    assert_eq!(got.path, "/api/embed");
    assert_eq!(
        got.json,
        json!({"model": "llama3.2", "input": ["hello world", "bye"]})
    );
}

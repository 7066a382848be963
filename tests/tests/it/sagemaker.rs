//! SageMaker endpoints through the gateway: `sagemaker/` (TGI's text generation) and
//! `sagemaker_chat/` (TGI's messages API) on the mock SageMaker runtime, which checks each
//! request's SigV4 signature for the service `sagemaker` and streams TGI's events cut across
//! `PayloadPart` messages; errors as SageMaker sends them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llmgate_testkit::{bedrock, sagemaker};
use llmgate_tests::{chat_body, MockProvider, TestGateway};
use serde_json::{json, Value};

fn config(base: &str) -> String {
    format!(
        "model_list:
  - model_name: tgi
    litellm_params:
      model: sagemaker/my-tgi-endpoint
      api_base: {base}
      aws_access_key_id: {key}
      aws_secret_access_key: \"{secret}\"
      aws_region_name: us-west-2
      num_retries: 0
  - model_name: chat
    litellm_params:
      model: sagemaker_chat/my-chat-endpoint
      api_base: {base}
      aws_access_key_id: {key}
      aws_secret_access_key: \"{secret}\"
      aws_region_name: us-west-2
      model_id: ic-chat
      num_retries: 0
",
        key = bedrock::ACCESS_KEY_ID,
        secret = bedrock::SECRET_ACCESS_KEY,
    )
}

async fn stream(gw: &TestGateway, model: &str) -> (String, Value) {
    let mut body = chat_body(model, "hello stream");
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
    let text = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    let usage = chunks
        .iter()
        .rev()
        .find(|c| c["usage"].is_object())
        .unwrap()["usage"]
        .clone();
    (text, usage)
}

#[tokio::test]
async fn tgi_endpoint_chat_and_stream_signed_for_sagemaker() {
    let mock = MockProvider::start_sagemaker().await;
    let gw = TestGateway::start(&config(&mock.base_url())).await;

    let mut body = chat_body("tgi", "hello tgi");
    body["max_tokens"] = json!(20);
    body["top_k"] = json!(10);
    let res = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock reply to: hello tgi"
    );
    // TGI reports no usage: one token per 4 bytes of the prompt and of the answer.
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9})
    );
    let up = mock.last_request().unwrap();
    assert_eq!(up.path, "/endpoints/my-tgi-endpoint/invocations");
    let auth = up.header("authorization").unwrap();
    assert!(auth.contains("/us-west-2/sagemaker/aws4_request"), "{auth}");
    assert_eq!(
        up.json,
        json!({"inputs": "hello tgi", "parameters": {"max_new_tokens": 20, "top_k": 10}})
    );

    let (text, usage) = stream(&gw, "tgi").await;
    assert_eq!(text, "mock reply to: hello stream");
    // The completion is the tokens TGI streamed (five words and its end-of-sequence token).
    assert_eq!(
        usage,
        json!({"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9})
    );
    let up = mock.last_request().unwrap();
    assert_eq!(
        up.path,
        "/endpoints/my-tgi-endpoint/invocations-response-stream"
    );
    assert_eq!(up.json["stream"], true);
    assert_eq!(
        up.header("accept"),
        Some("application/vnd.amazon.eventstream")
    );
}

#[tokio::test]
async fn chat_endpoint_passes_openai_bodies_with_its_inference_component() {
    let mock = MockProvider::start_sagemaker().await;
    let gw = TestGateway::start(&config(&mock.base_url())).await;

    let res = gw.chat("chat", "hello chat").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock reply to: hello chat"
    );
    assert_eq!(v["usage"]["prompt_tokens"], 2);
    let up = mock.last_request().unwrap();
    assert_eq!(up.path, "/endpoints/my-chat-endpoint/invocations");
    assert_eq!(
        up.header("x-amzn-sagemaker-inference-component"),
        Some("ic-chat")
    );
    assert_eq!(up.json["model"], "my-chat-endpoint");
    assert!(up.json.get("model_id").is_none(), "{}", up.json);

    let (text, usage) = stream(&gw, "chat").await;
    assert_eq!(text, "mock reply to: hello stream");
    // No usage in TGI's chat stream: estimated, never zero.
    assert_eq!(
        usage,
        json!({"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10})
    );
    let up = mock.last_request().unwrap();
    assert_eq!(up.json["stream"], true);
    assert!(up.json.get("stream_options").is_none(), "{}", up.json);
}

#[tokio::test]
async fn sagemaker_errors_keep_their_status_and_message() {
    let mock = MockProvider::start_sagemaker().await;
    let gw = TestGateway::start(&config(&mock.base_url())).await;

    mock.push(sagemaker::model_error(
        422,
        "Input validation error: `inputs` must have less than 4096 tokens",
    ));
    let e = gw.chat("tgi", "hi").await.openai_error(424);
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("Received client error (422) from primary"),
        "{message}"
    );

    // Wrong credentials: SageMaker's 403.
    let yaml = config(&mock.base_url()).replace(bedrock::ACCESS_KEY_ID, "AKIDWRONG");
    let wrong = TestGateway::start(&yaml).await;
    let e = wrong.chat("tgi", "hi").await.openai_error(403);
    assert!(
        e["message"].as_str().unwrap().contains("security token"),
        "{e}"
    );

    // A model error in the middle of a stream ends it with an error event.
    let first = br#"data:{"index":0,"token":{"id":1,"text":"Hel","special":false},"generated_text":null,"details":null}"#;
    let mut parts = sagemaker::payload_parts(first);
    parts.extend(sagemaker::payload_parts(b"\n\n"));
    parts.push(sagemaker::stream_exception(
        "ModelStreamError",
        "CUDA out of memory",
    ));
    mock.push(bedrock::stream(parts));
    let mut body = chat_body("tgi", "hi");
    body["stream"] = json!(true);
    let mut s = gw.stream("/v1/chat/completions", &body).await;
    assert_eq!(s.status, 200);
    let events = s.rest().await;
    assert!(events[0].contains("\"Hel\""), "{events:?}");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CUDA out of memory"),
        "{events:?}"
    );
}

//! Vertex AI through the gateway: Gemini and Claude models on the mock Vertex, authenticated
//! with a test service account whose JWTs the mock Google token endpoint checks; one token
//! exchange for many requests, refreshes, and the errors a bad key file gives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use llmgate_testkit::{service_account_json, AccessTokens};
use llmgate_tests::{chat_body, Behaviour, MockProvider, TestGateway};
use serde_json::{json, Value};

/// A key file in the temp dir, removed on drop.
struct KeyFile(PathBuf);

impl KeyFile {
    fn new(contents: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "llmgate-vertex-key-{}-{}.json",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).unwrap();
        KeyFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A token endpoint issuing tokens that live `lifetime`, a Vertex mock accepting only them,
/// and a key file for the test service account.
struct Google {
    tokens: AccessTokens,
    token: MockProvider,
    vertex: MockProvider,
    key: KeyFile,
}

impl Google {
    async fn start(lifetime: Duration) -> Self {
        let tokens = AccessTokens::new(lifetime);
        let token = MockProvider::start_google_token(tokens.clone()).await;
        let vertex = MockProvider::start_vertex(Some(tokens.clone())).await;
        let key = KeyFile::new(&service_account_json(&token.token_url(), "key-project"));
        Google {
            tokens,
            token,
            vertex,
            key,
        }
    }

    /// One deployment `model_name` of `model` on the mock Vertex with the key file.
    fn config(&self, model_name: &str, model: &str) -> String {
        format!(
            "model_list:
  - model_name: {model_name}
    litellm_params:
      model: {model}
      vertex_project: proj
      vertex_location: us-east5
      vertex_credentials: {key}
      api_base: {base}
      num_retries: 0
",
            key = self.key.path(),
            base = self.vertex.base_url(),
        )
    }
}

fn tool_body(model: &str) -> Value {
    let mut body = chat_body(model, "what is the weather in Paris?");
    body["tools"] = json!([{"type": "function", "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]);
    body["tool_choice"] = json!("required");
    body
}

async fn stream_text(gw: &TestGateway, model: &str) -> String {
    let mut body = chat_body(model, "hello stream");
    body["stream"] = json!(true);
    let mut s = gw.stream("/v1/chat/completions", &body).await;
    assert_eq!(s.status, 200);
    let events = s.rest().await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    events
        .iter()
        .filter(|e| *e != "[DONE]")
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn gemini_on_vertex_chat_stream_and_tools_with_one_token() {
    let g = Google::start(Duration::from_secs(3600)).await;
    let gw = TestGateway::start(&g.config("flash", "vertex_ai/gemini-2.5-flash")).await;

    let res = gw.chat("flash", "hello vertex").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock reply to: hello vertex"
    );
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let up = g.vertex.last_request().unwrap();
    assert_eq!(
        up.path,
        "/v1/projects/proj/locations/us-east5/publishers/google/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(up.bearer_token(), Some("ya29.mock-1"));
    assert_eq!(up.header("x-goog-api-key"), None);
    assert_eq!(up.json["contents"][0]["parts"][0]["text"], "hello vertex");

    assert_eq!(
        stream_text(&gw, "flash").await,
        "mock reply to: hello stream"
    );
    let up = g.vertex.last_request().unwrap();
    assert!(
        up.path_and_query
            .ends_with(":streamGenerateContent?alt=sse"),
        "{}",
        up.path_and_query
    );

    let res = gw.post("/v1/chat/completions", &tool_body("flash")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["city"], "mock");
    let up = g.vertex.last_request().unwrap();
    assert_eq!(
        up.json["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );

    // Three requests, one token exchange.
    assert_eq!(g.vertex.request_count(), 3);
    assert_eq!(g.token.request_count(), 1);
    assert_eq!(g.tokens.issued(), 1);
}

#[tokio::test]
async fn claude_on_vertex_chat_stream_and_tools() {
    let g = Google::start(Duration::from_secs(3600)).await;
    let gw = TestGateway::start(&g.config("claude", "vertex_ai/claude-sonnet-4@20250514")).await;

    let res = gw.chat("claude", "hello claude").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock reply to: hello claude"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let up = g.vertex.last_request().unwrap();
    assert_eq!(
        up.path,
        "/v1/projects/proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict"
    );
    assert_eq!(up.bearer_token(), Some("ya29.mock-1"));
    assert_eq!(up.json["anthropic_version"], "vertex-2023-10-16");
    assert!(up.json.get("model").is_none(), "{}", up.json);
    assert_eq!(up.header("x-api-key"), None);
    assert_eq!(up.header("anthropic-version"), None);
    assert_eq!(up.json["max_tokens"], 4096);

    assert_eq!(
        stream_text(&gw, "claude").await,
        "mock reply to: hello stream"
    );
    let up = g.vertex.last_request().unwrap();
    assert!(up.path.ends_with(":streamRawPredict"), "{}", up.path);
    assert_eq!(up.json["stream"], true);

    let mut body = tool_body("claude");
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    let res = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    let up = g.vertex.last_request().unwrap();
    assert_eq!(up.json["tools"][0]["name"], "get_weather");
    assert_eq!(
        up.json["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );

    assert_eq!(g.token.request_count(), 1);
}

#[tokio::test]
async fn concurrent_requests_share_one_exchange_and_tokens_are_refreshed() {
    // Tokens live 2 s: stale after 1 s (refreshed in the background), expired for the gateway
    // after 1.8 s (refreshed before the request), for the mock after 2 s.
    let g = Google::start(Duration::from_secs(2)).await;
    let gw = TestGateway::start(&g.config("flash", "gemini_vertex/gemini-2.5-flash")).await;

    let requests = (0..8).map(|i| {
        let gw = gw.handle();
        tokio::spawn(async move { gw.chat("flash", &format!("hi {i}")).await.status })
    });
    for r in requests {
        assert_eq!(r.await.unwrap(), 200);
    }
    assert_eq!(
        g.token.request_count(),
        1,
        "eight concurrent requests, one exchange"
    );

    // Stale: the request goes out with the current token and a refresh starts behind it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = gw.chat("flash", "stale").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        g.vertex.last_request().unwrap().bearer_token(),
        Some("ya29.mock-1")
    );
    for _ in 0..50 {
        if g.token.request_count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(g.token.request_count(), 2, "one background refresh");
    let res = gw.chat("flash", "fresh").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        g.vertex.last_request().unwrap().bearer_token(),
        Some("ya29.mock-2")
    );

    // Past expiry (the mock now refuses the old tokens): the request waits for a new one.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = gw.chat("flash", "expired").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        g.vertex.last_request().unwrap().bearer_token(),
        Some("ya29.mock-3")
    );
    assert_eq!(g.token.request_count(), 3);
}

#[tokio::test]
async fn a_bad_key_file_is_a_clear_error() {
    let g = Google::start(Duration::from_secs(3600)).await;
    let secret = "-----BEGIN PRIVATE KEY-----\\nnot-a-key-sekrit\\n-----END PRIVATE KEY-----";
    let bad = KeyFile::new(&format!(
        r#"{{"type": "service_account", "client_email": "a@b", "private_key": "{secret}"}}"#
    ));
    let yaml = g
        .config("flash", "vertex_ai/gemini-2.5-flash")
        .replace(g.key.path(), bad.path());
    let gw = TestGateway::start(&yaml).await;
    let res = gw.chat("flash", "hi").await;
    let e = res.openai_error(401);
    let message = e["message"].as_str().unwrap();
    assert!(message.contains(bad.path()), "{message}");
    assert!(
        message.contains("has a `private_key` that is not a PKCS#8 PEM key"),
        "{message}"
    );
    assert!(!message.contains("sekrit"), "{message}");
    assert_eq!(e["type"], "authentication_error");
    assert_eq!(e["code"], "vertex_credentials");
    assert_eq!(g.vertex.request_count(), 0, "nothing sent to Vertex");

    // A file that is not there.
    let yaml = g
        .config("flash", "vertex_ai/gemini-2.5-flash")
        .replace(g.key.path(), "/nonexistent/llmgate/key.json");
    let gw = TestGateway::start(&yaml).await;
    let message = gw.chat("flash", "hi").await.openai_error(401)["message"].clone();
    assert!(
        message
            .as_str()
            .unwrap()
            .contains("the credentials file /nonexistent/llmgate/key.json: it cannot be read"),
        "{message}"
    );

    // The token endpoint refuses the key. (No cooldown: the same deployment is asked again.)
    let yaml = g
        .config("flash", "vertex_ai/gemini-2.5-flash")
        .replace("num_retries: 0", "num_retries: 0\n      cooldown_time: 0");
    let gw = TestGateway::start(&yaml).await;
    g.token.push(Behaviour::json(
        400,
        &json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
    ));
    let message = gw.chat("flash", "hi").await.openai_error(401)["message"].clone();
    assert!(
        message.as_str().unwrap().contains(
            "the token endpoint answered 400 Bad Request: invalid_grant (Invalid JWT Signature.)"
        ),
        "{message}"
    );
    // The token endpoint fails: a 503, and the next request tries again.
    g.token.push(Behaviour::error(500, "backend error"));
    let e = gw.chat("flash", "hi").await.openai_error(503);
    assert!(e["message"].as_str().unwrap().contains(g.key.path()), "{e}");
    assert_eq!(gw.chat("flash", "hi").await.status, 200);
}

#[tokio::test]
async fn a_token_endpoint_that_does_not_answer_is_a_503_within_the_timeout() {
    let g = Google::start(Duration::from_secs(3600)).await;
    let yaml = g
        .config("flash", "vertex_ai/gemini-2.5-flash")
        .replace("num_retries: 0", "num_retries: 0\n      timeout: 1");
    let gw = TestGateway::start(&yaml).await;
    g.token.push(Behaviour::Ok.delayed(Duration::from_secs(5)));
    let started = std::time::Instant::now();
    let e = gw.chat("flash", "hi").await.openai_error(503);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("the token endpoint did not answer within 1s"),
        "{message}"
    );
    assert_eq!(g.vertex.request_count(), 0);
}

#[tokio::test]
async fn express_mode_key_and_embeddings() {
    let vertex = MockProvider::start_vertex(None).await;
    let yaml = format!(
        "model_list:
  - model_name: emb
    litellm_params:
      model: vertex_ai/text-embedding-005
      api_key: AIza-test-key
      api_base: {base}
",
        base = vertex.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    let res = gw
        .post(
            "/v1/embeddings",
            &json!({"model": "emb", "input": ["one two", "three"], "dimensions": 8}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(v["usage"]["prompt_tokens"], 3);
    let up = vertex.last_request().unwrap();
    assert_eq!(
        up.path,
        "/v1/publishers/google/models/text-embedding-005:predict"
    );
    assert_eq!(up.header("x-goog-api-key"), Some("AIza-test-key"));
    assert_eq!(
        up.json,
        json!({"instances": [{"content": "one two"}, {"content": "three"}],
               "parameters": {"outputDimensionality": 8}})
    );
}

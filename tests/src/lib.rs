//! A small DSL for llmgate's integration tests: start the real gateway (the facade's hyper
//! `serve`) on `127.0.0.1:0` from a LiteLLM config, talk to it like a client would, read
//! streams event by event.
//!
//! ```no_run
//! # async fn t() {
//! use llmgate_tests::TestGateway;
//! let gw = TestGateway::start("model_list: []").await;
//! let res = gw.get("/health/liveliness").await;
//! assert_eq!(res.status, 200);
//! # }
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::oneshot;

pub use llmgate_testkit::{Behaviour, Gate, MockProvider};

/// A running gateway; stopped when dropped.
pub struct TestGateway {
    pub addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The key sent by default (`None`: no Authorization header).
    pub key: Option<String>,
}

/// A complete response.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts an OpenAI-shaped error with this status, and returns its `error` object.
    pub fn openai_error(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        let v = self.json();
        let e = v["error"].clone();
        assert!(e["message"].is_string(), "no error.message: {v}");
        assert!(e["type"].is_string(), "no error.type: {v}");
        assert!(e.get("param").is_some() && e.get("code").is_some(), "{v}");
        e
    }
}

/// A streamed response, read frame by frame.
pub struct TestStream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Incoming,
    buf: String,
}

impl TestStream {
    /// The next complete SSE event's `data:` payload, or `None` at the end of the body.
    /// Panics on a body error (the gateway must end streams cleanly).
    pub async fn next_data(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..i + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:").map(str::trim_start))
                    .collect();
                if data.is_empty() {
                    continue;
                }
                return Some(data.join("\n"));
            }
            match self.body.frame().await {
                None => {
                    assert!(
                        self.buf.trim().is_empty(),
                        "unterminated event: {:?}",
                        self.buf
                    );
                    return None;
                }
                Some(Err(e)) => panic!("stream body error: {e}"),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.push_str(std::str::from_utf8(&data).unwrap());
                    }
                }
            }
        }
    }

    /// Every remaining event's data.
    pub async fn rest(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(d) = self.next_data().await {
            out.push(d);
        }
        out
    }
}

impl TestGateway {
    /// Starts a gateway from config YAML, with an empty environment (plus `env`).
    pub async fn start(yaml: &str) -> TestGateway {
        Self::start_with_env(yaml, &[]).await
    }

    pub async fn start_with_env(yaml: &str, env: &[(&str, &str)]) -> TestGateway {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let loaded = llmgate_config::from_yaml(yaml, Path::new("."), &env)
            .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
        let gateway = llmgate::Gateway::new(loaded.config).expect("gateway builds");
        Self::serve(gateway).await
    }

    pub async fn serve(gateway: llmgate::Gateway) -> TestGateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            llmgate::serve(listener, gateway, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestGateway {
            addr,
            client: Client::builder(TokioExecutor::new()).build_http(),
            stop: Some(tx),
            task: Some(task),
            key: None,
        }
    }

    /// Another client of the same gateway (it does not stop the gateway when dropped).
    pub fn handle(&self) -> TestGateway {
        TestGateway {
            addr: self.addr,
            client: self.client.clone(),
            stop: None,
            task: None,
            key: self.key.clone(),
        }
    }

    /// Sends `key` as `Authorization: Bearer` on every request from now on.
    #[must_use]
    pub fn with_key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Request<Full<Bytes>> {
        let mut req = Request::builder().method(method).uri(self.url(path));
        if let Some(k) = &self.key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(Full::new(body)).unwrap()
    }

    /// Sends a request and reads the whole response.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: impl Into<Bytes>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let res = self
            .client
            .request(self.request(method, path, body.into(), headers))
            .await
            .expect("gateway reachable");
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("body reads").to_bytes();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Method::GET, path, Bytes::new(), &[]).await
    }

    pub async fn post(&self, path: &str, json: &Value) -> TestResponse {
        self.send(Method::POST, path, json.to_string(), &[]).await
    }

    /// `POST /v1/chat/completions` with one user message.
    pub async fn chat(&self, model: &str, content: &str) -> TestResponse {
        self.post("/v1/chat/completions", &chat_body(model, content))
            .await
    }

    /// Sends a request and returns as soon as the response head arrives.
    pub async fn stream(&self, path: &str, json: &Value) -> TestStream {
        let res = self
            .client
            .request(self.request(Method::POST, path, Bytes::from(json.to_string()), &[]))
            .await
            .expect("gateway reachable");
        let (parts, body) = res.into_parts();
        TestStream {
            status: parts.status,
            headers: parts.headers,
            body,
            buf: String::new(),
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A chat request body with one user message.
pub fn chat_body(model: &str, content: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": content}]})
}

/// A config with one OpenAI-compatible deployment per `(model_name, api_base)`.
pub fn config_for(entries: &[(&str, &str)], master_key: Option<&str>) -> String {
    let mut y = String::from("model_list:\n");
    for (name, base) in entries {
        y.push_str(&format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/{name}-upstream\n      api_base: {base}\n      api_key: sk-upstream-{name}\n"
        ));
    }
    if let Some(k) = master_key {
        y.push_str(&format!("general_settings:\n  master_key: {k}\n"));
    }
    y
}

/// One `model_list` entry (indented to follow `model_list:`) for an OpenAI-compatible
/// deployment with a readable id: `model_info.id: <id>`, upstream model `<id>`, key
/// `sk-<id>`. `params` are extra `litellm_params` lines, such as `"timeout: 3"` or `"rpm: 2"`.
pub fn deployment(model_name: &str, id: &str, api_base: &str, params: &[&str]) -> String {
    let mut y = format!(
        "  - model_name: {model_name}\n    litellm_params:\n      model: openai/{id}\n      api_base: {api_base}\n      api_key: sk-{id}\n"
    );
    for p in params {
        y.push_str(&format!("      {p}\n"));
    }
    y.push_str(&format!("    model_info:\n      id: {id}\n"));
    y
}

impl TestResponse {
    /// `(x-llmgate-deployment, x-llmgate-attempts, x-llmgate-fallbacks)`, as strings ("" when
    /// a header is missing).
    pub fn served_by(&self) -> (String, String, String) {
        let h = |n: &str| self.header(n).unwrap_or_default().to_owned();
        (
            h("x-llmgate-deployment"),
            h("x-llmgate-attempts"),
            h("x-llmgate-fallbacks"),
        )
    }
}

impl TestGateway {
    /// Like [`TestGateway::stream`], with extra request headers (`x-api-key`,
    /// `anthropic-version`, ...).
    pub async fn stream_with(
        &self,
        path: &str,
        json: &Value,
        headers: &[(&str, &str)],
    ) -> TestStream {
        let res = self
            .client
            .request(self.request(Method::POST, path, Bytes::from(json.to_string()), headers))
            .await
            .expect("gateway reachable");
        let (parts, body) = res.into_parts();
        TestStream {
            status: parts.status,
            headers: parts.headers,
            body,
            buf: String::new(),
        }
    }
}

impl TestStream {
    /// The next complete SSE event as `(event name, data)` (the name is `message` when the
    /// event has no `event:` line), or `None` at the end of the body. Panics on a body error.
    pub async fn next_event(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..i + 2).collect();
                let mut name = "message".to_owned();
                let mut data = Vec::new();
                for line in event.lines() {
                    if let Some(n) = line.strip_prefix("event:") {
                        name = n.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push(d.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some((name, data.join("\n")));
            }
            match self.body.frame().await {
                None => {
                    assert!(
                        self.buf.trim().is_empty(),
                        "unterminated event: {:?}",
                        self.buf
                    );
                    return None;
                }
                Some(Err(e)) => panic!("stream body error: {e}"),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.push_str(std::str::from_utf8(&data).unwrap());
                    }
                }
            }
        }
    }
}

/// The gateway `yaml` configures, opened as the binary opens it (`Gateway::open`: the key
/// store and spend log in its database), with an empty environment.
pub async fn open_gateway(yaml: &str) -> llmgate::Gateway {
    let loaded = llmgate_config::from_yaml(
        yaml,
        std::path::Path::new("."),
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    llmgate::Gateway::open(loaded.config)
        .await
        .expect("gateway opens")
}

/// The machine's PostgreSQL (`LLMGATE_TEST_POSTGRES`, else `LLMGATE_TEST_PG_URL` as the
/// other crates' tests read it, default `postgres://postgres@127.0.0.1:5432/test`) when it
/// answers within a second; `None` (and a line saying the test is skipped) when it does not,
/// so the suite passes without it.
pub async fn postgres_url() -> Option<String> {
    let url = std::env::var("LLMGATE_TEST_POSTGRES")
        .or_else(|_| std::env::var("LLMGATE_TEST_PG_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let reachable = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        tokio::net::TcpStream::connect("127.0.0.1:5432"),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if !reachable {
        // `.ci/run` sets it when it has the machine's backends running: a skip there is a failure.
        assert!(
            !std::env::var("LLMGATE_REQUIRE_BACKENDS")
                .unwrap_or_default()
                .contains("postgres"),
            "postgres is not reachable and LLMGATE_REQUIRE_BACKENDS requires it"
        );
        eprintln!("skipped: PostgreSQL is not reachable at 127.0.0.1:5432");
        return None;
    }
    Some(url)
}

/// A SQLite file in the temp dir for one test's gateway, removed with its WAL files when
/// dropped. `url()` is what `general_settings.database_url` takes.
#[derive(Debug)]
pub struct TempDb(pub std::path::PathBuf);

impl TempDb {
    /// A fresh file name under the temp dir, tagged with `what` for whoever finds one left.
    pub fn new(what: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        TempDb(std::env::temp_dir().join(format!("llmgate-{what}-{pid}-{n}-{nanos}.db")))
    }

    /// `sqlite://<path>`.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

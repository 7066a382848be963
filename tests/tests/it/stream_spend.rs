//! Streams are always charged (issue 12, items 2 and 13): a stream the client drops, an
//! upstream that never reports usage, a stream the upstream cuts, a `/v1/messages` stream
//! dropped early. Each is charged by the usage the upstream reported, else by an estimate
//! (prompt tokens counted from the request, completion tokens from the text relayed), marked
//! `usage_estimated` in the spend log, with its real outcome (`status: failure` and
//! `outcome: client_closed` / `upstream_error` for a stream that did not finish).
//!
//! Each test runs the gateway on its own SQLite file with a key, and reads what it recorded
//! through `GET /spend/logs`, as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use llmgate_tests::{Behaviour, Gate, MockProvider, TestGateway};
use serde_json::{json, Value};

const MASTER: &str = "sk-master-stream-spend";
/// USD per input and output token: every request's cost is far above 0.
const INPUT: f64 = 0.00001;
const OUTPUT: f64 = 0.00003;

fn unique() -> String {
    llmgate::auth::generate_secret()[3..15].to_ascii_lowercase()
}

/// A SQLite file in the temp dir, removed with its WAL files when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        TempDb(std::env::temp_dir().join(format!("llmgate-stream-spend-{}.db", unique())))
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

/// A gateway on its own database with one priced deployment `gpt` (OpenAI-compatible at
/// `api_base`, upstream model `private-x`, which no tokenizer knows: the estimate is one token
/// per 4 bytes) and an Anthropic one, `claude`, when given.
struct Setup {
    gw: TestGateway,
    gateway: llmgate::Gateway,
    key: String,
    _db: TempDb,
}

async fn setup(openai: &MockProvider, anthropic: Option<&MockProvider>, key: Value) -> Setup {
    let db = TempDb::new();
    let prices =
        format!("    model_info:\n      input_cost_per_token: {INPUT}\n      output_cost_per_token: {OUTPUT}\n");
    let mut y = format!(
        "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/private-x\n      api_base: {}\n      api_key: sk-upstream\n{prices}",
        openai.v1_url()
    );
    if let Some(a) = anthropic {
        y.push_str(&format!(
            "  - model_name: claude\n    litellm_params:\n      model: anthropic/private-claude\n      api_base: {}\n      api_key: sk-upstream\n{prices}",
            a.base_url()
        ));
    }
    // Spend is written when the test flushes it, not before: the budget test sees every
    // stream admitted first.
    y.push_str(&format!(
        "general_settings:\n  master_key: {MASTER}\n  database_url: sqlite://{}\n  proxy_batch_write_at: 3600\n",
        db.0.display()
    ));
    let loaded = llmgate_config::from_yaml(
        &y,
        std::path::Path::new("."),
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap_or_else(|p| panic!("config rejected:\n{p}"));
    let gateway = llmgate::Gateway::open(loaded.config)
        .await
        .expect("gateway opens");
    let gw = TestGateway::serve(gateway.clone()).await;
    let res = gw
        .handle()
        .with_key(MASTER)
        .post("/key/generate", &key)
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let key = res.json()["key"].as_str().unwrap().to_owned();
    Setup {
        gw,
        gateway,
        key,
        _db: db,
    }
}

impl Setup {
    fn user(&self) -> TestGateway {
        self.gw.handle().with_key(&self.key)
    }

    /// The spend log rows, once `n` are written (a dropped stream is recorded when the
    /// gateway notices the client has gone).
    async fn logs(&self, n: usize) -> Vec<Value> {
        let admin = self.gw.handle().with_key(MASTER);
        for _ in 0..200 {
            self.gateway.flush_spend().await;
            let rows = admin.get("/spend/logs").await.json();
            let rows = rows.as_array().unwrap().clone();
            if rows.len() >= n {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("fewer than {n} spend log rows");
    }

    async fn key_spend(&self) -> f64 {
        let admin = self.gw.handle().with_key(MASTER);
        let info = admin
            .get(&format!("/key/info?key={}", self.key))
            .await
            .json();
        info["info"]["spend"].as_f64().unwrap()
    }
}

/// A chat body asking for a stream of the mock's default reply (13 words) to 10 words.
fn stream_body(model: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user",
        "content": "please write a short story about a brave little cat"}]})
}

/// The estimated prompt of [`stream_body`]: 3 + 3 framing, 52 bytes of text.
const PROMPT_ESTIMATE: i64 = 6 + 13;

/// An upstream's event stream, sent whole: these chunks, then `[DONE]`, and no usage.
fn sse_without_usage(pieces: &[&str]) -> Behaviour {
    let mut body = String::new();
    body.push_str("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"private-x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n");
    for p in pieces {
        let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1,
            "model": "private-x", "choices": [{"index": 0, "delta": {"content": p},
            "finish_reason": null}]});
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    body.push_str("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"private-x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    body.push_str("data: [DONE]\n\n");
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    Behaviour::Status {
        status: StatusCode::OK,
        body: Bytes::from(body),
        headers,
    }
}

fn assert_charged_by_estimate(row: &Value) {
    assert_eq!(row["usage_estimated"], true, "{row}");
    let (p, c) = (
        row["prompt_tokens"].as_i64().unwrap(),
        row["completion_tokens"].as_i64().unwrap(),
    );
    let cost = row["spend"].as_f64().unwrap();
    let expected = p as f64 * INPUT + c as f64 * OUTPUT;
    assert!(
        (cost - expected).abs() < 1e-12,
        "{cost} != {expected}: {row}"
    );
    assert!(cost > 0.0, "{row}");
    assert_eq!(row["cost"], row["spend"], "{row}");
}

/// The scenario: a key with `max_budget: 0.0001`, streams read to about 90 % and
/// dropped by the client before the upstream's usage chunk. Each is charged by the estimate,
/// the key's spend passes its budget, and the next request is refused with `budget_exceeded`:
/// here the first stream's estimated cost (0.00067) spends the budget, so the second is
/// refused at once (the budget ledger settles a stream when it ends, not at the next spend
/// write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_the_client_drops_are_charged_and_the_budget_fires() {
    let mock = MockProvider::start().await;
    let s = setup(&mock, None, json!({"max_budget": 0.0001})).await;
    // The mock's events: the role chunk, 13 words, the finish chunk, usage, [DONE]. The upstream
    // holds the stream after the 13th word: the client reads those and goes away.
    let gate = Gate::new();
    let mut admitted = 0;
    for _ in 0..10 {
        mock.push(Behaviour::gated(&gate, 13));
        let mut stream = s
            .user()
            .stream("/v1/chat/completions", &stream_body("gpt"))
            .await;
        if admitted > 0 && stream.status == 400 {
            mock.clear_queue();
            break;
        }
        assert_eq!(stream.status, 200);
        admitted += 1;
        for _ in 0..13 {
            let data = stream.next_data().await.unwrap();
            assert!(!data.contains("\"usage\":{"), "{data}");
        }
        drop(stream);
    }
    assert_eq!(admitted, 1, "the first stream's cost spends the budget");
    let rows = s.logs(1).await;
    for row in &rows {
        assert_charged_by_estimate(row);
        assert_eq!(row["prompt_tokens"], PROMPT_ESTIMATE, "{row}");
        // "mock reply to: please write ... little " relayed: 12 of 13 words, 63 bytes.
        assert_eq!(row["completion_tokens"], 16, "{row}");
        assert_eq!(row["status"], "failure", "{row}");
        assert_eq!(row["outcome"], "client_closed", "{row}");
        assert_eq!(row["status_code"], 200, "{row}");
    }
    let spend = s.key_spend().await;
    assert!(spend > 0.0001, "key spend {spend}");
    let err = s.user().chat("gpt", "hi").await.openai_error(400);
    assert_eq!(err["type"], "budget_exceeded", "{err}");
    gate.release();
    s.gw.shutdown().await;
}

/// An upstream that never sends usage: the stream and a complete answer are charged by the
/// estimate and marked so; the stream that finished is a success.
#[tokio::test]
async fn an_upstream_that_never_reports_usage_is_charged_by_an_estimate() {
    let mock = MockProvider::start().await;
    let s = setup(&mock, None, json!({})).await;
    mock.push(sse_without_usage(&["Hello", " there,", " friend!"]));
    let mut stream = s
        .user()
        .stream("/v1/chat/completions", &stream_body("gpt"))
        .await;
    assert_eq!(stream.status, 200);
    let events = stream.rest().await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));

    // A complete answer without `usage`, as some OpenAI-compatible servers send.
    mock.push(Behaviour::json(
        200,
        &json!({"id": "c2", "object": "chat.completion", "created": 1, "model": "private-x",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Twelve bytes"}}]}),
    ));
    let res = s
        .user()
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());

    let rows = s.logs(2).await;
    let (answer, stream) = (&rows[0], &rows[1]);
    assert_charged_by_estimate(stream);
    assert_eq!(stream["prompt_tokens"], PROMPT_ESTIMATE, "{stream}");
    // "Hello there, friend!": 20 bytes.
    assert_eq!(stream["completion_tokens"], 5, "{stream}");
    assert_eq!(stream["status"], "success", "{stream}");
    assert_eq!(stream["outcome"], "success", "{stream}");

    assert_charged_by_estimate(answer);
    // "hi": 3 + 3 + 1.
    assert_eq!(answer["prompt_tokens"], 7, "{answer}");
    assert_eq!(answer["completion_tokens"], 3, "{answer}");
    assert_eq!(answer["outcome"], "success", "{answer}");
    let spend = s.key_spend().await;
    let total = stream["spend"].as_f64().unwrap() + answer["spend"].as_f64().unwrap();
    assert!((spend - total).abs() < 1e-12, "{spend} != {total}");
    s.gw.shutdown().await;
}

/// An upstream that cuts the stream after a few events: the client gets an error event; the
/// record says the upstream failed, and still charges what was relayed.
#[tokio::test]
async fn a_stream_the_upstream_cuts_is_a_failure_with_a_cost() {
    let mock = MockProvider::start().await;
    let s = setup(&mock, None, json!({})).await;
    // The role chunk and 4 words ("mock reply to: please "), then the connection drops.
    mock.push(Behaviour::cut_after(5));
    let mut stream = s
        .user()
        .stream("/v1/chat/completions", &stream_body("gpt"))
        .await;
    assert_eq!(stream.status, 200);
    let events = stream.rest().await;
    assert!(
        events.last().unwrap().contains("\"error\""),
        "no error event: {events:?}"
    );
    let rows = s.logs(1).await;
    let row = &rows[0];
    assert_charged_by_estimate(row);
    // 22 bytes relayed.
    assert_eq!(row["completion_tokens"], 6, "{row}");
    assert_eq!(row["status"], "failure", "{row}");
    assert_eq!(row["outcome"], "upstream_error", "{row}");
    s.gw.shutdown().await;
}

/// A `/v1/messages` stream (Anthropic's API in, an Anthropic upstream) the client drops after
/// a few events: charged by the estimate, recorded as closed by the client.
#[tokio::test]
async fn a_messages_stream_dropped_early_is_charged() {
    let mock = MockProvider::start().await;
    let anthropic = MockProvider::start_anthropic().await;
    let s = setup(&mock, Some(&anthropic), json!({})).await;
    let gate = Gate::new();
    anthropic.push(Behaviour::gated(&gate, 5));
    let body = json!({"model": "claude", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "please write a short story about a brave little cat"}]});
    let mut stream = s
        .user()
        .stream_with(
            "/v1/messages",
            &body,
            &[("anthropic-version", "2023-06-01")],
        )
        .await;
    assert_eq!(stream.status, 200);
    let mut texts = 0;
    while texts < 2 {
        let (name, data) = stream.next_event().await.unwrap();
        if name == "content_block_delta" {
            assert!(data.contains("text_delta"), "{data}");
            texts += 1;
        }
    }
    drop(stream);
    let rows = s.logs(1).await;
    let row = &rows[0];
    assert_charged_by_estimate(row);
    assert_eq!(row["prompt_tokens"], PROMPT_ESTIMATE, "{row}");
    assert!(row["completion_tokens"].as_i64().unwrap() > 0, "{row}");
    assert_eq!(row["outcome"], "client_closed", "{row}");
    assert!(s.key_spend().await > 0.0);
    gate.release();
    s.gw.shutdown().await;
}

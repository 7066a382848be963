//! Replicate's predictions API for language models, as it answers.
//!
//! | request | answer |
//! |---|---|
//! | `POST /v1/models/{owner}/{name}/predictions`, `POST /v1/deployments/{owner}/{name}/predictions`, `POST /v1/predictions` (with `version`) | 201, the prediction: `{"id", "model", "version", "input", "status", "output", "error", "logs", "metrics", "urls": {"get", "cancel", "stream"}, ...}` |
//! | `GET /v1/predictions/{id}` | the prediction as it stands |
//! | `GET /v1/streams/{id}` | SSE: `event: output` / `id` / `data: <piece>` per word, then `event: done` / `data: {}` |
//!
//! Predictions need `Authorization: Bearer` [`API_TOKEN`] (401 `{"title", "detail",
//! "status"}` otherwise, the stream URL excepted, as on Replicate) and an `input` object with
//! a string `prompt` (422 `Input validation failed`). The output is `"mock reply to:
//! <prompt>"` (or the [`Behaviour::Reply`] text) as a list of word pieces, with
//! `metrics.input_token_count` and `output_token_count` (words).
//!
//! A creation with `Prefer: wait` comes back `succeeded` unless the mock was started with
//! polls ([`MockProvider::start_replicate`]): then it is `starting`, and each `GET` of it
//! moves it on (`processing`, ...) until that many polls have been made, when it is
//! `succeeded`. A creation without `Prefer: wait` is `starting`, its stream ready.
//!
//! [`Behaviour::Reply`]: crate::Behaviour::Reply

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use crate::openai::{count_tokens, pieces};
use crate::server::{Ctx, Dialect, MockProvider, Recorded, Reply};

/// The API token the mock accepts.
pub const API_TOKEN: &str = "r8_llmgate_testkit_token";

impl MockProvider {
    /// Starts a mock Replicate API whose predictions finish after `polls` polls (`0`: at once
    /// under `Prefer: wait`); its [`v1_url`](MockProvider::v1_url) is a `replicate/`
    /// deployment's `api_base`.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: failing to bind loopback means the test cannot run at all"
    )]
    pub async fn start_replicate(polls: u32) -> Self {
        Self::try_start_replicate(polls)
            .await
            .expect("llmgate-testkit: could not bind 127.0.0.1:0")
    }

    /// Starts a mock Replicate API, returning the bind error.
    pub async fn try_start_replicate(polls: u32) -> io::Result<Self> {
        let r = Replicate {
            polls,
            predictions: Mutex::default(),
        };
        Self::start_dialect(Arc::new(r)).await
    }
}

struct Prediction {
    json: Value,
    text: String,
    polls_left: u32,
}

struct Replicate {
    polls: u32,
    predictions: Mutex<HashMap<String, Prediction>>,
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    Reply::Full {
        status,
        headers,
        body: Bytes::from(
            json!({"title": title, "detail": detail, "status": status.as_u16()}).to_string(),
        ),
    }
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Reply::Full {
        status,
        headers,
        body: Bytes::from(body.to_string()),
    }
}

/// Marks `p` succeeded with its output.
fn succeed(p: &mut Prediction) {
    let output: Vec<&str> = pieces(&p.text);
    let prompt = p.json["input"]["prompt"].as_str().map_or(0, count_tokens);
    p.json["status"] = json!("succeeded");
    p.json["output"] = json!(output);
    p.json["completed_at"] = json!("2024-10-27T00:00:02.000Z");
    p.json["metrics"] = json!({"predict_time": 0.5, "input_token_count": prompt,
                               "output_token_count": count_tokens(&p.text)});
}

impl Replicate {
    fn create(&self, req: &Recorded, content: Option<&str>, ctx: &Ctx) -> Reply {
        let model = if req.path == "/v1/predictions" {
            match req.json["version"].as_str() {
                Some(v) => format!("version:{v}"),
                None => {
                    return problem(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid version or not permitted",
                        "version is required",
                    )
                }
            }
        } else {
            req.path
                .trim_start_matches("/v1/")
                .trim_end_matches("/predictions")
                .to_owned()
        };
        let Some(prompt) = req.json["input"]["prompt"].as_str() else {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Input validation failed",
                "input: prompt is required",
            );
        };
        let id = format!("mockpred{:06}", ctx.seq);
        let host = req.header("host").unwrap_or("127.0.0.1");
        let json = json!({
            "id": id, "model": model, "version": req.json["version"], "input": req.json["input"],
            "logs": "", "output": null, "data_removed": false, "error": null, "status": "starting",
            "created_at": "2024-10-27T00:00:00.000Z",
            "urls": {
                "cancel": format!("http://{host}/v1/predictions/{id}/cancel"),
                "get": format!("http://{host}/v1/predictions/{id}"),
                "stream": format!("http://{host}/v1/streams/{id}"),
            },
        });
        let mut p = Prediction {
            json,
            text: content.map_or_else(|| format!("mock reply to: {prompt}"), str::to_owned),
            polls_left: self.polls,
        };
        let wait = req.header("prefer").is_some_and(|v| v.starts_with("wait"));
        if wait && self.polls == 0 {
            succeed(&mut p);
        }
        let answer = p.json.clone();
        self.predictions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, p);
        json_reply(StatusCode::CREATED, &answer)
    }

    fn poll(&self, id: &str) -> Reply {
        let mut all = self
            .predictions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(p) = all.get_mut(id) else {
            return problem(
                StatusCode::NOT_FOUND,
                "Not found",
                "The requested resource could not be found.",
            );
        };
        if p.json["status"] != "succeeded" {
            p.polls_left = p.polls_left.saturating_sub(1);
            if p.polls_left == 0 {
                succeed(p);
            } else {
                p.json["status"] = json!("processing");
            }
        }
        json_reply(StatusCode::OK, &p.json)
    }

    fn stream(&self, id: &str) -> Reply {
        let text = {
            let mut all = self
                .predictions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(p) = all.get_mut(id) else {
                return problem(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "The requested resource could not be found.",
                );
            };
            succeed(p);
            p.text.clone()
        };
        let mut events: Vec<Bytes> = pieces(&text)
            .into_iter()
            .enumerate()
            .map(|(i, piece)| Bytes::from(format!("event: output\nid: {i}:0\ndata: {piece}\n\n")))
            .collect();
        events.push(Bytes::from_static(b"event: done\ndata: {}\n\n"));
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        Reply::Events { headers, events }
    }
}

impl Dialect for Replicate {
    fn default_models(&self) -> Vec<String> {
        Vec::new()
    }

    fn is_stream(&self, req: &Recorded) -> bool {
        req.path.starts_with("/v1/streams/")
    }

    fn respond(&self, req: &Recorded, content: Option<&str>, ctx: &Ctx) -> Reply {
        if let Some(id) = req.path.strip_prefix("/v1/streams/") {
            return self.stream(id);
        }
        if req.bearer_token() != Some(API_TOKEN) {
            return problem(
                StatusCode::UNAUTHORIZED,
                "Unauthenticated",
                "You did not pass a valid authentication token",
            );
        }
        match (&req.method, req.path.strip_prefix("/v1/predictions/")) {
            (&Method::GET, Some(id)) => self.poll(id),
            (&Method::POST, None) if req.path.ends_with("/predictions") => {
                self.create(req, content, ctx)
            }
            _ => problem(
                StatusCode::NOT_FOUND,
                "Not found",
                "The requested resource could not be found.",
            ),
        }
    }
}

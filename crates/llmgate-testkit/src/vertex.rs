//! Vertex AI (`{location}-aiplatform.googleapis.com`) as it answers Gemini and Anthropic's
//! models.
//!
//! | request | answer |
//! |---|---|
//! | `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent` | Gemini's answer (the Gemini mock's) |
//! | `...:streamGenerateContent?alt=sse` | Gemini's SSE stream |
//! | `.../publishers/google/models/{m}:predict` | `{"predictions": [{"embeddings": {"values", "statistics": {"truncated", "token_count"}}}]}` |
//! | `.../publishers/anthropic/models/{m}:rawPredict` | Anthropic's Messages answer (the Anthropic mock's) |
//! | `...:streamRawPredict` | Anthropic's SSE stream |
//!
//! Express mode's `/v1/publishers/google/models/{m}:...` (no project) is served too. Auth:
//! with [`AccessTokens`] the mock accepts only `Authorization: Bearer` tokens they issued and
//! have not expired; without, any bearer token or `x-goog-api-key`. Otherwise 401
//! `UNAUTHENTICATED` in Google's error shape. Anthropic's body must carry
//! `"anthropic_version": "vertex-2023-10-16"` and no `model` (400 `INVALID_ARGUMENT`
//! otherwise, as Vertex answers). Other paths are 404 `NOT_FOUND`.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use crate::anthropic::Anthropic;
use crate::gemini::Gemini;
use crate::google::AccessTokens;
use crate::server::{Ctx, Dialect, MockProvider, Recorded, Reply};

impl MockProvider {
    /// Starts a mock Vertex AI on `127.0.0.1:0`; its [`base_url`](MockProvider::base_url) is
    /// what a `vertex_ai/` deployment's `api_base` takes. With `tokens`, only the access
    /// tokens they issued (and have not expired) are accepted.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    #[expect(
        clippy::expect_used,
        reason = "a test fixture: failing to bind loopback means the test cannot run at all"
    )]
    pub async fn start_vertex(tokens: Option<AccessTokens>) -> Self {
        Self::try_start_vertex(tokens)
            .await
            .expect("llmgate-testkit: could not bind 127.0.0.1:0")
    }

    /// Starts a mock Vertex AI, returning the bind error.
    pub async fn try_start_vertex(tokens: Option<AccessTokens>) -> io::Result<Self> {
        Self::start_dialect(Arc::new(Vertex { tokens })).await
    }
}

struct Vertex {
    tokens: Option<AccessTokens>,
}

/// What a request's path names.
struct Target<'a> {
    publisher: &'a str,
    model: &'a str,
    method: &'a str,
}

fn target(path: &str) -> Option<Target<'_>> {
    let rest = path.strip_prefix("/v1/")?;
    let rest = match rest.strip_prefix("projects/") {
        Some(r) => {
            let mut it = r.splitn(4, '/');
            let (_project, loc, _location, rest) = (it.next()?, it.next()?, it.next()?, it.next()?);
            (loc == "locations").then_some(rest)?
        }
        None => rest,
    };
    let rest = rest.strip_prefix("publishers/")?;
    let (publisher, rest) = rest.split_once('/')?;
    let (model, method) = rest.strip_prefix("models/")?.rsplit_once(':')?;
    (!model.is_empty() && !model.contains('/')).then_some(Target {
        publisher,
        model,
        method,
    })
}

fn google_error(status: StatusCode, message: &str) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    let body = json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "status": crate::gemini::google_status(status.as_u16()),
    }});
    Reply::Full {
        status,
        headers,
        body: Bytes::from(body.to_string()),
    }
}

impl Vertex {
    /// Google's reason to refuse the request's credentials, if any.
    fn refuse(&self, req: &Recorded) -> Option<&'static str> {
        const MISSING: &str = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.";
        match (&self.tokens, req.bearer_token()) {
            (Some(tokens), Some(token)) => tokens.check(token),
            (None, Some(t)) if !t.is_empty() => None,
            (None, _) if req.header("x-goog-api-key").is_some_and(|k| !k.is_empty()) => None,
            _ => Some(MISSING),
        }
    }

    fn anthropic(&self, req: &Recorded, t: &Target<'_>, content: Option<&str>, ctx: &Ctx) -> Reply {
        if req.json.get("model").is_some() {
            return google_error(
                StatusCode::BAD_REQUEST,
                "model: Extra inputs are not permitted",
            );
        }
        if req.json["anthropic_version"] != "vertex-2023-10-16" {
            return google_error(
                StatusCode::BAD_REQUEST,
                "anthropic_version: Input should be 'vertex-2023-10-16'",
            );
        }
        let mut inner = req.clone();
        inner.path = "/v1/messages".to_owned();
        inner.path_and_query = inner.path.clone();
        inner
            .headers
            .insert("x-api-key", HeaderValue::from_static("vertex"));
        inner
            .headers
            .insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        if let Some(body) = inner.json.as_object_mut() {
            body.remove("anthropic_version");
            body.insert("model".to_owned(), json!(t.model));
            if t.method == "streamRawPredict" {
                body.insert("stream".to_owned(), json!(true));
            }
        }
        Anthropic.respond(&inner, content, ctx)
    }
}

impl Dialect for Vertex {
    fn default_models(&self) -> Vec<String> {
        [
            "gemini-2.5-flash",
            "claude-sonnet-4@20250514",
            "text-embedding-005",
        ]
        .map(String::from)
        .to_vec()
    }

    fn is_stream(&self, req: &Recorded) -> bool {
        req.path.ends_with(":streamGenerateContent") || req.path.ends_with(":streamRawPredict")
    }

    fn respond(&self, req: &Recorded, content: Option<&str>, ctx: &Ctx) -> Reply {
        let Some(t) = target(&req.path).filter(|_| req.method == Method::POST) else {
            return google_error(
                StatusCode::NOT_FOUND,
                &format!(
                    "The requested URL {} was not found on this server.",
                    req.path
                ),
            );
        };
        if let Some(why) = self.refuse(req) {
            return google_error(StatusCode::UNAUTHORIZED, why);
        }
        match (t.publisher, t.method) {
            ("anthropic", "rawPredict" | "streamRawPredict") => {
                self.anthropic(req, &t, content, ctx)
            }
            ("google", "predict") => predict(&req.json),
            ("google", "generateContent" | "streamGenerateContent") => {
                let mut inner = req.clone();
                inner.path = format!("/v1beta/models/{}:{}", t.model, t.method);
                let query = req.path_and_query.split_once('?').map(|(_, q)| q);
                inner.path_and_query = match query {
                    Some(q) => format!("{}?{q}", inner.path),
                    None => inner.path.clone(),
                };
                Gemini.respond(&inner, content, ctx)
            }
            _ => google_error(
                StatusCode::NOT_FOUND,
                &format!(
                    "Publisher model `{}/{}` does not serve {}",
                    t.publisher, t.model, t.method
                ),
            ),
        }
    }
}

/// Text-embedding models' `:predict`.
fn predict(body: &Value) -> Reply {
    let Some(instances) = body["instances"].as_array().filter(|i| !i.is_empty()) else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "Invalid JSON payload: instances is required",
        );
    };
    let dims = body
        .pointer("/parameters/outputDimensionality")
        .and_then(Value::as_u64)
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(16);
    let predictions: Vec<Value> = instances
        .iter()
        .map(|i| {
            let text = i["content"].as_str().unwrap_or_default();
            json!({"embeddings": {
                "values": crate::openai::embeddings::embed(text, dims),
                "statistics": {"truncated": false, "token_count": crate::openai::count_tokens(text)},
            }})
        })
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    Reply::Full {
        status: StatusCode::OK,
        headers,
        body: Bytes::from(json!({"predictions": predictions}).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = target("/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent").unwrap();
        assert_eq!(
            (t.publisher, t.model, t.method),
            ("google", "gemini-2.5-flash", "generateContent")
        );
        let t = target("/v1/publishers/anthropic/models/claude@1:rawPredict").unwrap();
        assert_eq!(
            (t.publisher, t.model, t.method),
            ("anthropic", "claude@1", "rawPredict")
        );
        assert!(target("/v1/projects/p/regions/x/publishers/google/models/m:predict").is_none());
        assert!(target("/v1beta/models/m:generateContent").is_none());
    }
}

//! What the mock upstream answers: fixed OpenAI-shaped bodies, built once at start-up.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;

use crate::body::Canned;

/// The model id the upstream reports, whatever the request asked for.
pub const MODEL: &str = "bench-model";
/// Unix time stamped on every answer (fixed, so bodies can be built once).
const CREATED: u64 = 1_700_000_000;
/// Chunks in a stream unless `--stream-chunks` says otherwise: the role, the six pieces, the
/// finish reason.
pub const DEFAULT_CHUNKS: usize = 8;
/// The streamed answer, one content delta per piece.
const PIECES: [&str; 6] = ["Hello", " from", " the", " bench", " upstream", "."];
const USAGE: &str = r#"{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15}"#;

/// Every body the upstream sends, built once and leaked so responses never copy them.
#[derive(Debug)]
pub struct Answers {
    completion: [Bytes; 1],
    stream: Vec<Bytes>,
    stream_with_usage: Vec<Bytes>,
    models: [Bytes; 1],
    not_found: [Bytes; 1],
    bad_request: [Bytes; 1],
    /// The pause between two events of a stream (`--stream-interval-ms`).
    interval: Duration,
}

impl Answers {
    /// Builds the bodies (streams of [`DEFAULT_CHUNKS`]) and leaks them.
    #[cfg(test)]
    pub fn leak() -> &'static Self {
        Self::leak_with(DEFAULT_CHUNKS, Duration::ZERO)
    }

    /// Builds the bodies and leaks them: the upstream answers with them until the process ends.
    /// Streams have `chunks` chunks (at least 3: the role, one content piece or more, the
    /// finish reason), then the usage chunk when asked and `[DONE]`; after the first event, each
    /// one leaves `interval` after the one before.
    pub fn leak_with(chunks: usize, interval: Duration) -> &'static Self {
        Box::leak(Box::new(Self::build(chunks.max(3), interval)))
    }

    fn build(chunks: usize, interval: Duration) -> Self {
        let chunk = |delta: &str, finish: &str| {
            format!(
                r#"{{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":{CREATED},"model":"{MODEL}","choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]}}"#
            )
        };
        // The role, `chunks - 2` content pieces (the answer's six, repeated), the finish reason.
        let mut events = vec![chunk(r#"{"role":"assistant","content":""}"#, "null")];
        events.extend(
            PIECES
                .iter()
                .cycle()
                .take(chunks - 2)
                .map(|piece| chunk(&format!(r#"{{"content":"{piece}"}}"#), "null")),
        );
        events.push(chunk("{}", r#""stop""#));
        let usage = format!(
            r#"{{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":{CREATED},"model":"{MODEL}","choices":[],"usage":{USAGE}}}"#
        );

        let sse = |events: &[String]| -> Vec<Bytes> {
            events
                .iter()
                .map(|event| format!("data: {event}\n\n"))
                .chain(std::iter::once("data: [DONE]\n\n".to_owned()))
                .map(leak)
                .collect()
        };
        let stream = sse(&events);
        events.push(usage);
        let stream_with_usage = sse(&events);

        let completion = format!(
            r#"{{"id":"chatcmpl-bench","object":"chat.completion","created":{CREATED},"model":"{MODEL}","choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"logprobs":null,"finish_reason":"stop"}}],"usage":{USAGE}}}"#,
            PIECES.concat()
        );
        let models = format!(
            r#"{{"object":"list","data":[{{"id":"{MODEL}","object":"model","created":{CREATED},"owned_by":"llmgate-bench"}}]}}"#
        );
        let error = |status: StatusCode, kind: &str, message: &str| {
            leak(format!(
                r#"{{"error":{{"message":"{message}","type":"{kind}","param":null,"code":"{}"}}}}"#,
                status.as_u16()
            ))
        };
        Self {
            completion: [leak(completion)],
            stream,
            stream_with_usage,
            models: [leak(models)],
            not_found: [error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "bench-upstream serves POST /v1/chat/completions and GET /v1/models",
            )],
            bad_request: [error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "could not read the request body",
            )],
            interval,
        }
    }

    /// Answers one request.
    pub async fn answer<B>(
        &'static self,
        request: Request<B>,
    ) -> Result<Response<Canned>, Infallible>
    where
        B: Body,
    {
        let (parts, body) = request.into_parts();
        let response = match (&parts.method, parts.uri.path()) {
            (&Method::POST, "/v1/chat/completions" | "/chat/completions") => {
                match body.collect().await {
                    Ok(body) => self.chat(&body.to_bytes()),
                    Err(_) => json(StatusCode::BAD_REQUEST, &self.bad_request),
                }
            }
            (&Method::GET, "/v1/models" | "/models") => json(StatusCode::OK, &self.models),
            _ => json(StatusCode::NOT_FOUND, &self.not_found),
        };
        Ok(response)
    }

    fn chat(&'static self, request: &[u8]) -> Response<Canned> {
        if !json_flag(request, "stream") {
            return json(StatusCode::OK, &self.completion);
        }
        let events = if json_flag(request, "include_usage") {
            &self.stream_with_usage
        } else {
            &self.stream
        };
        let mut response = Response::new(Canned::paced(events, self.interval));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

fn json(status: StatusCode, body: &'static [Bytes]) -> Response<Canned> {
    let mut response = Response::new(Canned::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn leak(text: String) -> Bytes {
    Bytes::from_static(Box::leak(text.into_boxed_str()).as_bytes())
}

/// Whether the JSON text has `"key": true` somewhere (any nesting, any spacing).
///
/// A cheap substring check instead of a parse: good enough for a mock that must stay out of the
/// measurement, and wrong only for bodies that put such text inside a string value.
pub fn json_flag(json: &[u8], key: &str) -> bool {
    let key = key.as_bytes();
    let mut from = 0;
    while let Some(at) = json.get(from..).and_then(|rest| find(rest, key)) {
        let start = from + at;
        from = start + key.len();
        let quoted =
            start > 0 && json.get(start - 1) == Some(&b'"') && json.get(from) == Some(&b'"');
        if !quoted {
            continue;
        }
        let after = json.get(from + 1..).unwrap_or_default().trim_ascii_start();
        if let Some(value) = after.strip_prefix(b":") {
            if value.trim_ascii_start().starts_with(b"true") {
                return true;
            }
        }
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use serde_json::Value;

    fn post(body: &'static str) -> Request<Full<Bytes>> {
        Request::post("/v1/chat/completions")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    async fn text(response: Response<Canned>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// The JSON payloads of an SSE body, and whether it ended with `data: [DONE]`.
    fn events(sse: &str) -> (Vec<Value>, bool) {
        let mut done = false;
        let mut values = Vec::new();
        for event in sse.split_terminator("\n\n") {
            let data = event.strip_prefix("data: ").unwrap();
            assert!(!done, "an event after [DONE]");
            if data == "[DONE]" {
                done = true;
            } else {
                values.push(serde_json::from_str(data).unwrap());
            }
        }
        (values, done)
    }

    #[test]
    fn json_flag_finds_true_values_with_any_spacing() {
        assert!(json_flag(br#"{"model":"m","stream":true}"#, "stream"));
        assert!(json_flag(b"{\"stream\" :\n true}", "stream"));
        assert!(!json_flag(br#"{"stream":false}"#, "stream"));
        assert!(!json_flag(br#"{"model":"m"}"#, "stream"));
        let body = br#"{"stream_options":{"include_usage":true}}"#;
        assert!(!json_flag(body, "stream"));
        assert!(json_flag(body, "include_usage"));
        assert!(json_flag(
            br#"{"stream":false,"x":{"stream":true}}"#,
            "stream"
        ));
    }

    #[tokio::test]
    async fn completion_is_an_openai_chat_completion() {
        let response = Answers::leak()
            .answer(post(r#"{"model":"m"}"#))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let value: Value = serde_json::from_str(&text(response).await).unwrap();
        assert_eq!(value["object"], "chat.completion");
        assert_eq!(
            value["choices"][0]["message"]["content"],
            "Hello from the bench upstream."
        );
        assert_eq!(value["usage"]["total_tokens"], 15);
    }

    #[tokio::test]
    async fn stream_sends_eight_chunks_then_done() {
        let response = Answers::leak()
            .answer(post(r#"{"model":"m","stream": true}"#))
            .await
            .unwrap();
        assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
        let (chunks, done) = events(&text(response).await);
        assert!(done);
        assert_eq!(chunks.len(), 8);
        assert!(chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk"));
        assert!(chunks.iter().all(|c| c.get("usage").is_none()));
        assert_eq!(chunks[7]["choices"][0]["finish_reason"], "stop");
    }

    #[tokio::test]
    async fn stream_ends_with_a_usage_chunk_when_asked() {
        let body = r#"{"stream":true,"stream_options":{"include_usage":true}}"#;
        let response = Answers::leak().answer(post(body)).await.unwrap();
        let (chunks, done) = events(&text(response).await);
        assert!(done);
        assert_eq!(chunks.len(), 9);
        assert_eq!(chunks[8]["choices"], Value::Array(vec![]));
        assert_eq!(chunks[8]["usage"]["completion_tokens"], 6);
    }

    #[tokio::test]
    async fn longer_streams_repeat_the_pieces() {
        let body = r#"{"stream":true,"stream_options":{"include_usage":true}}"#;
        let response = Answers::leak_with(24, Duration::ZERO)
            .answer(post(body))
            .await
            .unwrap();
        let (chunks, done) = events(&text(response).await);
        assert!(done);
        assert_eq!(chunks.len(), 25);
        assert_eq!(chunks[22]["choices"][0]["delta"]["content"], " bench");
        assert_eq!(chunks[23]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[24]["usage"]["total_tokens"], 15);
    }

    #[tokio::test]
    async fn models_and_unknown_paths() {
        let answers = Answers::leak();
        let models = Request::get("/v1/models")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = answers.answer(models).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let value: Value = serde_json::from_str(&text(response).await).unwrap();
        assert_eq!(value["data"][0]["id"], MODEL);

        let other = Request::get("/v1/nothing")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = answers.answer(other).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let value: Value = serde_json::from_str(&text(response).await).unwrap();
        assert_eq!(value["error"]["code"], "404");
    }
}

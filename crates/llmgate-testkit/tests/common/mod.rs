//! A small hyper-util client for the testkit's own tests.

#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request with an optional JSON body and returns the response with its body unread.
pub async fn send(method: Method, url: &str, body: Option<&Value>) -> Response<Incoming> {
    let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-test")
        .body(Full::new(bytes))
        .unwrap();
    client().request(req).await.unwrap()
}

/// POSTs JSON and reads the whole answer.
pub async fn post(url: &str, body: &Value) -> (StatusCode, HeaderMap, Bytes) {
    let resp = send(Method::POST, url, Some(body)).await;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, bytes)
}

/// GETs and reads the whole answer as JSON.
pub async fn get_json(url: &str) -> (StatusCode, Value) {
    let resp = send(Method::GET, url, None).await;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// The `data:` payloads of a complete SSE body, checking the framing on the way.
pub fn sse_data(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(
        text.ends_with("\n\n"),
        "an SSE body ends with a blank line: {text:?}"
    );
    text.split_terminator("\n\n")
        .map(|event| {
            event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {event:?}"))
                .to_owned()
        })
        .collect()
}

/// The JSON chunks of a complete OpenAI stream, checking it ends with `[DONE]`.
pub fn chunks(body: &[u8]) -> Vec<Value> {
    let mut data = sse_data(body);
    assert_eq!(data.pop().as_deref(), Some("[DONE]"));
    data.iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// Reads a streamed body event by event.
pub struct EventReader {
    body: Incoming,
    buf: BytesMut,
}

impl EventReader {
    pub fn new(body: Incoming) -> Self {
        Self {
            body,
            buf: BytesMut::new(),
        }
    }

    /// The next complete event's text (`Ok(None)` at the end), or the body's error.
    pub async fn next(&mut self) -> Result<Option<String>, hyper::Error> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let event = self.buf.split_to(end + 2);
                return Ok(Some(String::from_utf8(event.to_vec()).unwrap()));
            }
            match self.body.frame().await {
                None => {
                    assert!(self.buf.is_empty(), "body ended inside an event");
                    return Ok(None);
                }
                Some(Err(e)) => return Err(e),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

pub fn chat_body(content: &str, stream: bool) -> Value {
    serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": content}
        ],
        "stream": stream
    })
}

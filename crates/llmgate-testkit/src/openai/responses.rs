//! OpenAI's Responses API on the mock (`MockProvider::start_responses`): `POST /responses`
//! (streamed and not), `GET` / `DELETE /responses/{id}`, `GET /responses/{id}/input_items`,
//! `POST /responses/compact` (see [`compact`]), with and without `/v1`, and Azure's `/openai/v1/responses` and
//! `/openai/responses?api-version=..`.
//!
//! Responses are stored in this mock only (unless `store: false`), under ids unique in the
//! process, so a follow-up (`previous_response_id`) sent to another mock fails with OpenAI's
//! 400 `previous_response_not_found`, and a read of another mock's response is a 404.
//!
//! The answer is `"mock reply to: <input text>"`, with ` (after: <previous answer>)` when it
//! continues a stored response; usage counts words (`input_tokens`: the input's, with
//! `input_tokens_details.cached_tokens: 0`; `output_tokens`: the reply's, with
//! `output_tokens_details.reasoning_tokens: 0`). A stream is OpenAI's named events, each with
//! its `sequence_number`: `response.created`, `response.in_progress`,
//! `response.output_item.added`, `response.content_part.added`, one
//! `response.output_text.delta` per word, `response.output_text.done`,
//! `response.content_part.done`, `response.output_item.done`, `response.completed`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use super::{count_tokens, error_reply, invalid_url, json_reply, now, OpenAi};
use crate::server::{Ctx, Dialect, Recorded, Reply};

/// Ids unique across every mock of the process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// OpenAI's API with the Responses API and a store of its own.
#[derive(Debug, Default)]
pub(crate) struct WithResponses {
    /// id -> (response object, its input items).
    store: Mutex<HashMap<String, (Value, Vec<Value>)>>,
}

impl WithResponses {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn store(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Value, Vec<Value>)>> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Dialect for WithResponses {
    fn default_models(&self) -> Vec<String> {
        OpenAi.default_models()
    }

    fn is_stream(&self, req: &Recorded) -> bool {
        OpenAi.is_stream(req)
    }

    fn respond(&self, req: &Recorded, content: Option<&str>, ctx: &Ctx) -> Reply {
        let path = req.path.strip_prefix("/openai").unwrap_or(&req.path);
        let path = path.strip_prefix("/v1").unwrap_or(path);
        let Some(rest) = path.strip_prefix("/responses") else {
            return OpenAi.respond(req, content, ctx);
        };
        match (req.method.clone(), rest) {
            (Method::POST, "") => self.create(req, content, ctx),
            (Method::POST, "/compact") => compact(req, ctx),
            (Method::GET, r) => match r.strip_prefix('/') {
                Some(id) => match id.strip_suffix("/input_items") {
                    Some(id) => self.input_items(id, ctx),
                    None => self.retrieve(id, ctx),
                },
                None => invalid_url(req),
            },
            (Method::DELETE, r) => match r.strip_prefix('/') {
                Some(id) => self.delete(id, ctx),
                None => invalid_url(req),
            },
            _ => invalid_url(req),
        }
    }
}

impl WithResponses {
    fn create(&self, req: &Recorded, content: Option<&str>, ctx: &Ctx) -> Reply {
        let body = &req.json;
        let Some(model) = body.get("model").and_then(Value::as_str) else {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "Missing required parameter: 'model'.",
                Some("model"),
            );
        };
        let items = match body.get("input") {
            Some(Value::String(s)) => {
                vec![json!({"type": "message", "role": "user", "content": s})]
            }
            Some(Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        };
        let said = items
            .iter()
            .filter_map(|i| match i.get("content") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Array(parts)) => Some(
                    parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(" ");
        let previous = body.get("previous_response_id").and_then(Value::as_str);
        let after = match previous {
            None => None,
            Some(prev) => match self.store().get(prev) {
                Some((r, _)) => Some(output_text(r)),
                None => {
                    let mut reply = error_reply(
                        StatusCode::BAD_REQUEST,
                        &format!("Previous response with id '{prev}' not found."),
                        Some("previous_response_id"),
                    );
                    if let Reply::Full { body, .. } = &mut reply {
                        let mut v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                        v["error"]["code"] = json!("previous_response_not_found");
                        *body = Bytes::from(v.to_string());
                    }
                    return reply;
                }
            },
        };
        let text = match (content, after) {
            (Some(c), _) => c.to_owned(),
            (None, None) => format!("mock reply to: {said}"),
            (None, Some(a)) => format!("mock reply to: {said} (after: {a})"),
        };
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let id = format!("resp_mock{n:08}");
        let input_tokens = count_tokens(&said);
        let output_tokens = count_tokens(&text);
        let message = json!({"type": "message", "id": format!("msg_mock{n:08}"), "status": "completed",
            "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]});
        let response = json!({
            "id": id, "object": "response", "created_at": now(), "status": "completed",
            "completed_at": now(), "error": null, "incomplete_details": null,
            "instructions": body.get("instructions").cloned().unwrap_or(Value::Null),
            "model": model, "output": [message], "parallel_tool_calls": true,
            "previous_response_id": previous, "store": body.get("store").and_then(Value::as_bool) != Some(false),
            "temperature": 1.0, "top_p": 1.0, "tools": [], "tool_choice": "auto", "truncation": "disabled",
            "text": {"format": {"type": "text"}}, "metadata": body.get("metadata").cloned().unwrap_or(json!({})),
            "usage": {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens},
        });
        if body.get("store").and_then(Value::as_bool) != Some(false) {
            self.store().insert(id, (response.clone(), items));
        }
        if body.get("stream").and_then(Value::as_bool) == Some(true) {
            stream(response, &text, ctx)
        } else {
            json_reply(StatusCode::OK, &response, ctx)
        }
    }

    fn retrieve(&self, id: &str, ctx: &Ctx) -> Reply {
        match self.store().get(id) {
            Some((r, _)) => json_reply(StatusCode::OK, r, ctx),
            None => not_found(id),
        }
    }

    fn input_items(&self, id: &str, ctx: &Ctx) -> Reply {
        match self.store().get(id) {
            Some((_, items)) => json_reply(
                StatusCode::OK,
                &json!({"object": "list", "data": items, "first_id": null, "last_id": null, "has_more": false}),
                ctx,
            ),
            None => not_found(id),
        }
    }

    fn delete(&self, id: &str, ctx: &Ctx) -> Reply {
        match self.store().remove(id) {
            Some(_) => json_reply(
                StatusCode::OK,
                &json!({"id": id, "object": "response", "deleted": true}),
                ctx,
            ),
            None => not_found(id),
        }
    }
}

fn not_found(id: &str) -> Reply {
    error_reply(
        StatusCode::NOT_FOUND,
        &format!("Response with id '{id}' not found."),
        None,
    )
}

/// `POST /responses/compact`: the input's user messages kept (as message items with their
/// content as `input_text` parts), then one `compaction` item whose
/// `encrypted_content` is the base64 of the whole input (the mock's stand-in for OpenAI's
/// encrypted summary); usage counts the input's words.
fn compact(req: &Recorded, ctx: &Ctx) -> Reply {
    use base64::Engine as _;
    let body = &req.json;
    if body.get("model").and_then(Value::as_str).is_none() {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: 'model'.",
            Some("model"),
        );
    }
    let items = match body.get("input") {
        Some(Value::String(s)) => vec![json!({"type": "message", "role": "user", "content": s})],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    // The user's messages kept as output items: an id, a status, the content as parts.
    let mut output: Vec<Value> = items
        .iter()
        .filter(|i| i.get("role").and_then(Value::as_str) == Some("user"))
        .enumerate()
        .map(|(k, i)| {
            let content = match i.get("content") {
                Some(Value::String(s)) => json!([{"type": "input_text", "text": s}]),
                Some(parts) => parts.clone(),
                None => json!([]),
            };
            json!({"id": format!("msg_cmp_mock{n:08}_{k}"), "type": "message",
                "status": "completed", "role": "user", "content": content})
        })
        .collect();
    let sealed =
        base64::engine::general_purpose::STANDARD.encode(Value::Array(items.clone()).to_string());
    output.push(
        json!({"type": "compaction", "id": format!("cmp_mock{n:08}"), "encrypted_content": sealed}),
    );
    let words: u64 = items
        .iter()
        .map(|i| count_tokens(&i.get("content").map(Value::to_string).unwrap_or_default()))
        .sum();
    let compaction = json!({
        "id": format!("resp_cmp_mock{n:08}"), "object": "response.compaction", "created_at": now(),
        "output": output,
        "usage": {"input_tokens": words, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 0, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": words},
    });
    json_reply(StatusCode::OK, &compaction, ctx)
}

fn output_text(response: &Value) -> String {
    response
        .pointer("/output/0/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The stream of `response` (complete) answering `text`, as OpenAI sends it.
fn stream(response: Value, text: &str, ctx: &Ctx) -> Reply {
    let mut started = response.clone();
    started["status"] = json!("in_progress");
    started["output"] = json!([]);
    started["usage"] = Value::Null;
    started["completed_at"] = Value::Null;
    let message = response["output"][0].clone();
    let item_id = message["id"].clone();
    let mut item = message.clone();
    item["status"] = json!("in_progress");
    item["content"] = json!([]);
    let part = json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
    let mut events = vec![
        json!({"type": "response.created", "response": started}),
        json!({"type": "response.in_progress", "response": started}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": item}),
        json!({"type": "response.content_part.added", "item_id": item_id, "output_index": 0, "content_index": 0, "part": part}),
    ];
    for (i, word) in text.split(' ').enumerate() {
        let delta = if i == 0 {
            word.to_owned()
        } else {
            format!(" {word}")
        };
        events.push(
            json!({"type": "response.output_text.delta", "item_id": item_id, "output_index": 0,
            "content_index": 0, "delta": delta, "logprobs": []}),
        );
    }
    events.push(
        json!({"type": "response.output_text.done", "item_id": item_id, "output_index": 0,
        "content_index": 0, "text": text, "logprobs": []}),
    );
    events.push(
        json!({"type": "response.content_part.done", "item_id": item_id, "output_index": 0,
        "content_index": 0, "part": message["content"][0]}),
    );
    events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": message}));
    events.push(json!({"type": "response.completed", "response": response}));
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    super::request_id_header(&mut headers, ctx);
    let events = events
        .into_iter()
        .enumerate()
        .map(|(seq, mut e)| {
            e["sequence_number"] = json!(seq);
            let name = e["type"].as_str().unwrap_or_default().to_owned();
            Bytes::from(format!("event: {name}\ndata: {e}\n\n"))
        })
        .collect();
    Reply::Events { headers, events }
}

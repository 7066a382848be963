//! The Responses API served natively (see [`llmgate_core::native`]): the call handed down
//! beside the chat translation, and the upstream's answer passed back with its response ids
//! made the gateway's ([`crate::pinned`]), byte for byte otherwise.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use http::header::CONTENT_LENGTH;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyDataStream;
use llmgate_core::sse::{self, EventStream};
use llmgate_core::wire::ChatCompletionRequest;
use llmgate_core::{
    ApiError, BoxBody, BoxError, Deployment, GatewayParams, NativeResponses, PinnedDeployment,
    ResponsesCall,
};
use serde_json::{Map, Value};

use crate::pinned;
use crate::request::{self, Parsed};

/// The `POST /responses` call for `parsed`: the client's fields and `input` as sent, gateway
/// keys out, `previous_response_id` the upstream's (`upstream_previous`), and `metadata` only
/// when it is what the Responses API takes (a map of strings; LiteLLM's tags and trace ids
/// are the gateway's).
fn create(parsed: &Parsed, upstream_previous: Option<&str>) -> ResponsesCall {
    let mut fields: Map<String, Value> = parsed.fields.clone();
    if let Some(input) = &parsed.raw_input {
        fields.insert("input".to_owned(), input.clone());
    }
    if let Some(prev) = upstream_previous {
        fields.insert(
            "previous_response_id".to_owned(),
            Value::String(prev.to_owned()),
        );
    }
    let strings_only = |m: &Value| {
        m.as_object()
            .is_some_and(|o| o.values().all(Value::is_string))
    };
    if fields.get("metadata").is_some_and(|m| !strings_only(m)) {
        fields.remove("metadata");
    }
    ResponsesCall::Create(fields)
}

/// What the layer hands down for `parsed` (after `history`, the gateway's stored turns): the
/// chat request every layer reads and the gateway parameters it carries, with the native call
/// ([`NativeResponses`]) and, for a follow-up of a response stored upstream, the deployment it
/// is pinned to ([`PinnedDeployment`]) put in `ext`. A request the translation refuses, a
/// pinned follow-up or a compaction (`compact`: `POST /v1/responses/compact`) gets a stand-in
/// chat request ([`request::placeholder`] when needed), never a cache entry, and is refused by
/// any deployment that translates.
pub(crate) fn hand_down(
    parsed: &Parsed,
    history: &[Value],
    compact: bool,
    ext: &mut http::Extensions,
) -> (ChatCompletionRequest, GatewayParams) {
    let pin = parsed.previous().and_then(pinned::decode);
    let (chat, untranslatable) = match (&pin, request::to_chat(parsed, history)) {
        (_, translated) if compact => (
            translated.unwrap_or_else(|_| request::placeholder(parsed)),
            Some(compaction_is_native()),
        ),
        (None, Ok(chat)) => (chat, None),
        (None, Err(e)) => (request::placeholder(parsed), Some(e)),
        (Some(p), translated) => (
            translated.unwrap_or_else(|_| request::placeholder(parsed)),
            Some(pinned_elsewhere(p)),
        ),
    };
    let call = match create(parsed, pin.as_ref().map(|p| p.response.as_str())) {
        ResponsesCall::Create(fields) if compact => ResponsesCall::Compact(fields),
        call => call,
    };
    let mut gateway = parsed.gateway.clone();
    let native = match untranslatable {
        Some(why) => {
            // The chat request is not the whole request: never a cache key.
            bypass_cache(&mut gateway);
            NativeResponses::only_native(call, why)
        }
        None => NativeResponses::new(call),
    };
    if let Some(p) = &pin {
        ext.insert(PinnedDeployment(p.deployment.as_str().into()));
    }
    ext.insert(native);
    (chat, gateway)
}

/// Why a deployment that translates to chat completions cannot compact.
fn compaction_is_native() -> ApiError {
    ApiError::bad_request(
        "POST /v1/responses/compact needs a deployment that serves the Responses API itself \
         (OpenAI, Azure, or model_info.supported_endpoints listing /v1/responses): the \
         compaction is the upstream's own",
    )
}

/// Why a follow-up of a response stored upstream cannot be translated for another deployment.
fn pinned_elsewhere(p: &pinned::Pinned) -> ApiError {
    ApiError::bad_request(format!(
        "previous_response_id names a response stored upstream by deployment \"{}\", which \
         serves the Responses API itself; only it can continue the conversation",
        p.deployment
    ))
    .with_param("previous_response_id")
}

/// Sets the `cache` controls `no-cache` and `no-store`, keeping the client's others.
fn bypass_cache(gateway: &mut llmgate_core::GatewayParams) {
    let mut controls = match gateway.cache.take() {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    controls.insert("no-cache".to_owned(), Value::Bool(true));
    controls.insert("no-store".to_owned(), Value::Bool(true));
    gateway.cache = Some(Value::Object(controls));
}

/// Replaces the upstream's response ids in an answer with the ids the client sees.
#[derive(Debug, Default)]
struct Ids {
    /// `"upstream"` -> `"ours"`, quoted, so only whole JSON strings are replaced.
    pairs: Vec<(String, String)>,
}

impl Ids {
    /// Learns the ids of `object` (a response object, a deletion): `id` and
    /// `previous_response_id`.
    fn learn(&mut self, dep: &str, object: &Value) {
        for key in ["id", "previous_response_id"] {
            let Some(id) = object.get(key).and_then(Value::as_str) else {
                continue;
            };
            if !self
                .pairs
                .iter()
                .any(|(from, _)| from[1..from.len() - 1] == *id)
            {
                self.pairs.push((
                    format!("\"{id}\""),
                    format!("\"{}\"", pinned::encode(dep, id)),
                ));
            }
        }
    }

    fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (from, to) in &self.pairs {
            if out.contains(from.as_str()) {
                out = out.replace(from.as_str(), to);
            }
        }
        out
    }
}

/// A complete native answer (a response object, a deletion, an item list) with its response
/// ids made the client's; anything that is not a JSON object passes as it is.
pub(crate) fn complete(dep: &Deployment, body: &Bytes) -> Bytes {
    let Ok(text) = std::str::from_utf8(body) else {
        return body.clone();
    };
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return body.clone();
    };
    // An item list and a compaction have no response id of their own.
    if let Some("list" | "response.compaction") = v.get("object").and_then(Value::as_str) {
        return body.clone();
    }
    let mut ids = Ids::default();
    ids.learn(&dep.id, &v);
    Bytes::from(ids.apply(text))
}

/// The answer `res` (complete, collected as `body`) with its ids made the client's.
pub(crate) fn complete_response(
    mut parts: http::response::Parts,
    body: &Bytes,
) -> Response<BoxBody> {
    let body = match parts.extensions.get::<Deployment>() {
        Some(dep) => complete(dep, body),
        None => body.clone(),
    };
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, llmgate_core::body::full(body))
}

/// A native stream with its response ids made the client's, event by event as each arrives.
pub(crate) fn stream(res: Response<BoxBody>) -> Response<BoxBody> {
    let (mut parts, body) = res.into_parts();
    let Some(dep) = parts
        .extensions
        .get::<Deployment>()
        .map(|d| d.id.to_string())
    else {
        return Response::from_parts(parts, body);
    };
    parts.headers.remove(CONTENT_LENGTH);
    let body = IdStream {
        events: sse::decode(BodyDataStream::new(body)),
        dep,
        ids: Ids::default(),
        pending: VecDeque::new(),
        done: false,
    };
    Response::from_parts(parts, BoxBody::new(body))
}

struct IdStream {
    events: EventStream<BodyDataStream<BoxBody>>,
    dep: String,
    ids: Ids,
    pending: VecDeque<Bytes>,
    done: bool,
}

impl IdStream {
    fn event(&mut self, name: &str, data: &str) -> Bytes {
        // The lifecycle events carry the response object: its ids are learned from the first.
        if data.contains("\"response\"") {
            if let Ok(v) = serde_json::from_str::<Value>(data) {
                if let Some(r) = v.get("response") {
                    self.ids.learn(&self.dep, r);
                }
            }
        }
        let data = self.ids.apply(data);
        let mut out = BytesMut::with_capacity(data.len() + name.len() + 16);
        if !name.is_empty() && name != "message" {
            out.put_slice(b"event: ");
            out.put_slice(name.as_bytes());
            out.put_u8(b'\n');
        }
        for line in data.split('\n') {
            out.put_slice(b"data: ");
            out.put_slice(line.as_bytes());
            out.put_u8(b'\n');
        }
        out.put_u8(b'\n');
        out.freeze()
    }
}

impl Body for IdStream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(bytes) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.events).poll_next(cx)) {
                Some(Ok(event)) if event.data.is_empty() => {}
                Some(Ok(event)) => {
                    let bytes = this.event(&event.event, &event.data);
                    this.pending.push_back(bytes);
                }
                Some(Err(e)) => {
                    // The provider's relay ends every stream cleanly; a break here is local.
                    this.done = true;
                    return Poll::Ready(Some(Err(e.to_string().into())));
                }
                None => this.done = true,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.pending.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn ids_are_replaced_whole_and_only_them() {
        let dep = Deployment(Arc::new(llmgate_core::DeploymentSpec::new(
            "d-1",
            "g",
            llmgate_core::ProviderKind::OpenAi,
            "m",
        )));
        let body = Bytes::from_static(
            br#"{"id":"resp_1","object":"response","previous_response_id":"resp_0","output":[{"id":"msg_1","content":[{"text":"resp_1 is my id"}]}]}"#,
        );
        let out = complete(&dep, &body);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], pinned::encode("d-1", "resp_1"));
        assert_eq!(v["previous_response_id"], pinned::encode("d-1", "resp_0"));
        assert_eq!(v["output"][0]["id"], "msg_1");
        assert_eq!(v["output"][0]["content"][0]["text"], "resp_1 is my id");
    }
}

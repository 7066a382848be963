//! The upstream steps every dialect shares, in the order a call takes them: pick the attempt's
//! [`Deadline`], [`call`] the provider (send, and turn a non-2xx answer into an error from as
//! much of its body as is worth reading), [`collect`] a complete answer under the size limit,
//! and set the response's headers and extensions ([`answer`], [`stream`]).
//!
//! A leaf: it knows the pooled client, the crate's errors and redaction, and nothing of the
//! dialects or the service that calls it.
//!
//! Deadlines: the request's `timeout` wins; else, for a stream, the deployment's
//! `stream_timeout`, then its `timeout`; else the client's default. For a complete answer the
//! deadline covers the response head and body; for a stream, the time to the response head
//! (after that, events flow as the provider sends them, each within the stream's idle timeout:
//! see [`crate::watch`]).

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use llmgate_core::{
    body, headers, BoxBody, Deployment, DeploymentSpec, LlmRequest, StreamFailure, TextCount,
    Usage, UsageSlot,
};

use crate::client::UpstreamClient;
use crate::error::{chain, Error};
use crate::redact;
use crate::upstream_error::{self, ERROR_BODY_LIMIT};

/// An attempt's deadline and the setting that chose it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    limit: Duration,
    setting: &'static str,
}

impl Deadline {
    /// The deadline for `llm` on `dep` (see the module docs); `None` when nothing sets one.
    pub(crate) fn pick(
        llm: &LlmRequest,
        dep: &DeploymentSpec,
        stream: bool,
        default: Option<Duration>,
    ) -> Option<Deadline> {
        let (limit, setting) = if let Some(t) = llm.gateway().timeout {
            (t, crate::error::REQUEST_TIMEOUT)
        } else if let (true, Some(t)) = (stream, dep.stream_timeout) {
            (t, "stream_timeout")
        } else if let Some(t) = dep.timeout {
            (t, "timeout")
        } else {
            (default?, "default timeout")
        };
        Some(Deadline { limit, setting })
    }

    /// Runs `fut` within the deadline, if there is one; past it, [`Error::Timeout`].
    pub(crate) async fn run<T>(
        this: Option<Deadline>,
        dep: &DeploymentSpec,
        fut: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let Some(d) = this else {
            return fut.await;
        };
        match tokio::time::timeout(d.limit, fut).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                provider: dep.provider,
                deployment: dep.id.clone(),
                limit: d.limit,
                setting: d.setting,
            }),
        }
    }
}

/// Sends `req` over the pooled client. A transport failure is [`Error::Unreachable`],
/// redacted of `dep`'s secrets.
async fn send(
    client: &UpstreamClient,
    req: Request<Full<Bytes>>,
    dep: &DeploymentSpec,
) -> Result<Response<Incoming>, Error> {
    client.inner.request(req).await.map_err(|e| {
        let err = redact::error(
            upstream_error::transport(dep.provider, dep.id.clone(), &e),
            dep,
        );
        tracing::debug!(deployment = %dep.id, error = %err, "upstream unreachable");
        err
    })
}

/// How a dialect reads a non-2xx answer: the deployment, the status, the headers and up to
/// [`ERROR_BODY_LIMIT`] bytes of the body.
pub(crate) type ReadError<'a> =
    &'a (dyn Fn(&DeploymentSpec, StatusCode, &HeaderMap, &[u8]) -> Error + Sync);

/// The OpenAI-shaped reading of a non-2xx answer (also common error bodies).
pub(crate) fn openai_error(
    dep: &DeploymentSpec,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Error {
    upstream_error::from_response(dep.provider, dep.id.clone(), status, headers, body)
}

/// Sends `req`; a 2xx answer comes back as it is, any other becomes the error `read_error`
/// makes of it, redacted of `dep`'s secrets.
pub(crate) async fn call(
    client: &UpstreamClient,
    req: Request<Full<Bytes>>,
    dep: &DeploymentSpec,
    read_error: ReadError<'_>,
) -> Result<Response<Incoming>, Error> {
    let res = send(client, req, dep).await?;
    if res.status().is_success() {
        return Ok(res);
    }
    let (parts, body) = res.into_parts();
    let buf = read_error_body(body).await;
    tracing::debug!(deployment = %dep.id, status = %parts.status, "upstream answered with an error");
    Err(redact::error(
        read_error(dep, parts.status, &parts.headers, &buf),
        dep,
    ))
}

/// A complete answer's body, at most `limit` bytes: a larger `Content-Length` is refused before
/// anything is read, and reading stops as soon as the body passes the limit.
pub(crate) async fn collect(
    dep: &DeploymentSpec,
    headers: &HeaderMap,
    mut body: Incoming,
    limit: usize,
) -> Result<Bytes, Error> {
    let too_large = || Error::ResponseTooLarge {
        provider: dep.provider,
        deployment: dep.id.clone(),
        limit: u64::try_from(limit).unwrap_or(u64::MAX),
    };
    let length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if length.is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return Err(too_large());
    }
    let capacity = length
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
        .min(limit);
    let mut buf = BytesMut::with_capacity(capacity);
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| Error::invalid(dep, format!("the body broke off: {}", chain(&e))))?;
        if let Ok(data) = frame.into_data() {
            if buf.len().saturating_add(data.len()) > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Up to [`ERROR_BODY_LIMIT`] bytes of an error answer's body: what was read is what there is,
/// the status says enough on its own.
async fn read_error_body(mut body: Incoming) -> BytesMut {
    let mut buf = BytesMut::new();
    while buf.len() < ERROR_BODY_LIMIT {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = ERROR_BODY_LIMIT - buf.len();
                    buf.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    buf
}

/// A complete answer: `json` as the body, `content-type: application/json`, the
/// [`UsageSlot`] filled with `usage` (when known) and the [`Deployment`] that answered.
pub(crate) fn answer(json: Bytes, usage: Option<Usage>, dep: Deployment) -> Response<BoxBody> {
    let slot = UsageSlot::new();
    if let Some(u) = usage {
        slot.set(u);
    }
    let mut res = Response::new(body::full(json));
    *res.headers_mut() = headers::answer_map();
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.extensions_mut().insert(dep);
    res.extensions_mut().insert(slot);
    res
}

/// The parts a stream's body reports to: the [`UsageSlot`] it fills when usage passes, and the
/// [`StreamFailure`] it sets when it ends with an error.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamSlots {
    /// Filled when the stream's usage passes.
    pub(crate) usage: UsageSlot,
    /// Set when the stream ends with an error after its head.
    pub(crate) failure: StreamFailure,
    /// The text the relay counted, when it counts every event it relays (see
    /// [`llmgate_core::text`]); metering counts it itself otherwise.
    pub(crate) text: Option<TextCount>,
}

/// A streamed answer: `body` (already framed as OpenAI's SSE), `text/event-stream`,
/// `cache-control: no-cache`, and the slots and [`Deployment`] as extensions.
pub(crate) fn stream(body: BoxBody, slots: StreamSlots, dep: Deployment) -> Response<BoxBody> {
    let mut out = Response::new(body);
    *out.headers_mut() = headers::answer_map();
    let headers = out.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.extensions_mut().insert(dep);
    out.extensions_mut().insert(slots.usage);
    out.extensions_mut().insert(slots.failure);
    if let Some(text) = slots.text {
        out.extensions_mut().insert(text);
    }
    out
}

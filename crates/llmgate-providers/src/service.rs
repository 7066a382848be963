//! [`ProviderService`]: the Tower service at the bottom of the stack.
//!
//! Per request: read [`LlmRequest`] and [`Deployment`] from the extensions; answer a
//! `mock_response` locally; otherwise build the upstream request with the provider's dialect,
//! send it over the pooled [`UpstreamClient`] under the attempt's deadline, and answer with the
//! provider's body (complete) or a [`Relay`] of its events (stream).
//!
//! Deadlines: the request's `timeout` wins; else, for a stream, the deployment's
//! `stream_timeout`, then its `timeout`; else the client's default. For a complete answer the
//! deadline covers the response head and body; for a stream, the time to the response head
//! (after that, events flow as the provider sends them, each within the stream's idle timeout:
//! see [`crate::watch`]).
//!
//! Sizes: a complete answer larger than [`ProviderService::max_response_bytes`] (64 MiB by
//! default, `general_settings.max_response_size_mb`) is refused with a 502
//! `upstream_response_too_large`, judged by its `Content-Length` before anything is read and
//! by counting while reading (never buffering past the limit); the same limit bounds one
//! stream event.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Request, Response, StatusCode};
use llmgate_core::{BoxBody, BoxError, Deployment, LlmRequest, StreamCutoff};

use crate::client::UpstreamClient;
use crate::dialect::Dialect;
use crate::error::Error;
use crate::mock;
use crate::openai_compat::{self, Answer};
use crate::redact;
use crate::stream::Relay;
use crate::upstream::{self, Deadline, StreamSlots};
use crate::upstream_error;
use crate::watch::StreamWatch;

/// The largest complete upstream answer (and stream event) read by default: 64 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// The terminal service: calls the deployment's provider and answers in OpenAI's shape.
///
/// Cheap to clone (one `Arc`); always ready. The request body `B` is ignored: the body was
/// parsed into the [`LlmRequest`] extension by the layers above.
#[derive(Clone)]
pub struct ProviderService {
    inner: Arc<Inner>,
}

#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) client: UpstreamClient,
    /// The largest complete answer, and stream event, read.
    pub(crate) max_response: usize,
    /// Fired when the gateway stops: every stream in flight ends.
    pub(crate) cutoff: StreamCutoff,
}

impl Inner {
    /// The watch for a stream of `dep` whose head just arrived.
    pub(crate) fn watch(&self, dep: &llmgate_core::DeploymentSpec) -> StreamWatch {
        StreamWatch::new(dep, &self.cutoff)
    }
}

impl fmt::Debug for ProviderService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderService")
            .field("client", &self.inner.client)
            .field("max_response", &self.inner.max_response)
            .finish_non_exhaustive()
    }
}

impl ProviderService {
    /// A service calling providers over `client`.
    pub fn new(client: UpstreamClient) -> Self {
        ProviderService {
            inner: Arc::new(Inner {
                client,
                max_response: DEFAULT_MAX_RESPONSE_BYTES,
                cutoff: StreamCutoff::new(),
            }),
        }
    }

    /// The largest complete answer (and stream event) read from a provider, in bytes (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`]). A larger answer fails with a 502
    /// `upstream_response_too_large`; a larger stream event ends its stream with that error.
    #[must_use]
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.inner).max_response = limit;
        self
    }

    /// Streams watch `cutoff`: once it fires, each ends at once with a 503
    /// `gateway_shutting_down` error event and a clean end of its body.
    #[must_use]
    pub fn stream_cutoff(mut self, cutoff: StreamCutoff) -> Self {
        Arc::make_mut(&mut self.inner).cutoff = cutoff;
        self
    }
}

impl ProviderService {
    /// A health probe cheaper than a completion, for providers that have one: Ollama's
    /// `GET /api/tags` (a one-token chat would load the model into memory). `None` for the
    /// others, which a caller checks with a one-token request instead.
    pub async fn probe(&self, dep: &llmgate_core::DeploymentSpec) -> Option<Result<(), BoxError>> {
        if !matches!(
            dep.provider,
            llmgate_core::ProviderKind::Ollama | llmgate_core::ProviderKind::OllamaChat
        ) {
            return None;
        }
        Some(self.probe_ollama(dep).await.map_err(Error::into_box))
    }

    async fn probe_ollama(&self, dep: &llmgate_core::DeploymentSpec) -> Result<(), Error> {
        let mut req = Request::new(http_body_util::Full::new(Bytes::new()));
        *req.method_mut() = http::Method::GET;
        *req.uri_mut() = crate::ollama::tags_url(dep)?;
        let dep = Deployment(Arc::new(dep.clone()));
        upstream::call(&self.inner.client, req, &dep, &upstream::openai_error).await?;
        Ok(())
    }
}

impl<B> tower::Service<Request<B>> for ProviderService {
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        let llm = req.extensions().get::<LlmRequest>().cloned();
        let dep = req.extensions().get::<Deployment>().cloned();
        drop(req);
        let inner = Arc::clone(&self.inner);
        ResponseFuture {
            inner: Box::pin(async move {
                let llm = llm.ok_or(Error::MissingExtension("LlmRequest"))?;
                let dep = dep.ok_or(Error::MissingExtension("Deployment"))?;
                serve(&inner, llm, dep).await
            }),
        }
    }
}

/// The future of [`ProviderService`]'s response. Boxed: it holds the upstream call's future,
/// which hyper already boxes, and it is the stack's innermost future, allocated once per
/// attempt.
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Result<Response<BoxBody>, Error>> + Send>>,
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx).map_err(Error::into_box)
    }
}

async fn serve(
    inner: &Inner,
    llm: LlmRequest,
    dep: Deployment,
) -> Result<Response<BoxBody>, Error> {
    let client = &inner.client;
    if let Some(m) = mock::pick(&llm, &dep) {
        return mock::respond(m, &llm, &dep);
    }
    let flavor = match Dialect::of(dep.provider) {
        Some(Dialect::OpenAiCompat(flavor)) => flavor,
        Some(Dialect::Native(dialect)) => {
            return crate::native::service::serve(inner, dialect, llm, dep).await
        }
        None => {
            return Err(Error::Unsupported {
                provider: dep.provider,
                deployment: dep.id.clone(),
            })
        }
    };
    let req = openai_compat::build(flavor, &dep, &llm)?;
    let stream = llm.is_stream();
    let deadline = Deadline::pick(&llm, &dep, stream, client.default_timeout);
    tracing::debug!(
        deployment = %dep.id,
        provider = %dep.provider,
        endpoint = llm.endpoint().as_str(),
        stream,
        "calling upstream",
    );
    if stream {
        call_stream(inner, req, &llm, dep, deadline).await
    } else {
        call_complete(inner, req, dep, deadline).await
    }
}

async fn call_complete(
    inner: &Inner,
    req: Request<http_body_util::Full<Bytes>>,
    dep: Deployment,
    deadline: Option<Deadline>,
) -> Result<Response<BoxBody>, Error> {
    let bytes = Deadline::run(deadline, &dep, async {
        let res = upstream::call(&inner.client, req, &dep, &upstream::openai_error).await?;
        let (parts, body) = res.into_parts();
        upstream::collect(&dep, &parts.headers, body, inner.max_response).await
    })
    .await?;

    let usage = match openai_compat::read_answer(&bytes) {
        Answer::Ok(usage) => usage,
        Answer::Error => {
            // A 200 carrying an error object: the provider failed after all.
            let e = upstream_error::from_response(
                dep.provider,
                dep.id.clone(),
                StatusCode::BAD_GATEWAY,
                &http::HeaderMap::new(),
                &bytes,
            );
            return Err(redact::error(e, &dep));
        }
        Answer::Invalid(detail) => {
            return Err(Error::InvalidResponse {
                provider: dep.provider,
                deployment: dep.id.clone(),
                detail,
            })
        }
    };
    Ok(upstream::answer(bytes, usage, dep))
}

async fn call_stream(
    inner: &Inner,
    req: Request<http_body_util::Full<Bytes>>,
    llm: &LlmRequest,
    dep: Deployment,
    deadline: Option<Deadline>,
) -> Result<Response<BoxBody>, Error> {
    let res = Deadline::run(
        deadline,
        &dep,
        upstream::call(&inner.client, req, &dep, &upstream::openai_error),
    )
    .await?;

    let is_sse = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .get(..17)
                .is_some_and(|p| p.eq_ignore_ascii_case("text/event-stream"))
        });
    if !is_sse {
        let ct = res
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        return Err(Error::InvalidResponse {
            provider: dep.provider,
            deployment: dep.id.clone(),
            detail: format!(
                "a streaming request was answered with content-type `{ct}`, not an event stream"
            ),
        });
    }

    let slots = StreamSlots::default();
    let relay = Relay::new(
        res.into_body(),
        slots.usage.clone(),
        !llm.include_usage(),
        inner.watch(&dep),
        inner.max_response,
        dep.clone(),
        slots.failure.clone(),
    );
    Ok(upstream::stream(BoxBody::new(relay), slots, dep))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clone_send_sync<T: Clone + Send + Sync + 'static>() {}
    fn send<T: Send + 'static>() {}

    #[test]
    fn service_and_future_are_what_hosts_need() {
        clone_send_sync::<ProviderService>();
        send::<ResponseFuture>();
        send::<Response<BoxBody>>();
    }
}

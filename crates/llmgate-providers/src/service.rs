//! [`ProviderService`]: the Tower service at the bottom of the stack, and its one `serve`.
//!
//! Per request: read [`LlmRequest`] and [`Deployment`] from the extensions; answer a
//! `mock_response` locally; otherwise find the provider's [`Dialect`], let it build the
//! upstream request, send it over the pooled [`UpstreamClient`] under the attempt's deadline
//! ([`crate::upstream`]), and answer with what the dialect reads from the complete body, or
//! with the stream relayed as the dialect says ([`Streaming`]).
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

use http::{HeaderMap, Request, Response};
use hyper::body::Incoming;
use llmgate_core::{
    BoxBody, BoxError, Deployment, DeploymentSpec, Endpoint, LlmRequest, NativeResponses,
    StreamCutoff,
};

use crate::client::UpstreamClient;
use crate::dialect::passthrough::{self, Relay};
use crate::dialect::relay::{self, TranslatedRelay};
use crate::dialect::{self, Ctx, Dialect, Follow, Streaming};
use crate::error::Error;
use crate::mock;
use crate::upstream::{self, Deadline, StreamSlots};
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
    /// Access tokens (Vertex AI, watsonx), shared by the deployments using the same
    /// credentials.
    pub(crate) tokens: crate::tokens::Tokens,
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
                tokens: crate::tokens::Tokens::default(),
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
    pub async fn probe(&self, dep: &DeploymentSpec) -> Option<Result<(), BoxError>> {
        let req = dialect::of(dep.provider)?.probe(dep)?;
        let probed = match req {
            Ok(req) => upstream::call(&self.inner.client, req, dep, &upstream::openai_error)
                .await
                .map(drop),
            Err(e) => Err(e),
        };
        Some(probed.map_err(Error::into_box))
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
        // The Responses API call, when the deployment serves it itself.
        let native = req.extensions().get::<NativeResponses>().cloned();
        drop(req);
        let inner = Arc::clone(&self.inner);
        ResponseFuture {
            inner: Box::pin(async move {
                let llm = llm.ok_or_else(|| Error::MissingExtension("LlmRequest").into_box())?;
                let dep = dep.ok_or_else(|| Error::MissingExtension("Deployment").into_box())?;
                // A `mock_response` answers locally, in chat's shape, whatever was asked.
                let native = native.filter(|_| mock::pick(&llm, &dep).is_none());
                let served = match native {
                    Some(native) if crate::responses::serves_responses(&dep) => {
                        crate::responses::serve(&inner, &native, &llm, dep).await
                    }
                    Some(native) => match native.untranslatable() {
                        // Only a deployment serving the Responses API itself can take it.
                        Some(why) => return Err(why.clone().boxed()),
                        None => serve(&inner, llm, dep).await,
                    },
                    None => serve(&inner, llm, dep).await,
                };
                served.map_err(Error::into_box)
            }),
        }
    }
}

/// The future of [`ProviderService`]'s response. Boxed: it holds the upstream call's future,
/// which hyper already boxes, and it is the stack's innermost future, allocated once per
/// attempt.
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Result<Response<BoxBody>, BoxError>> + Send>>,
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

/// Serves `llm` on `dep`: a mock answers locally; otherwise the deployment's dialect builds the
/// upstream request, [`upstream`] sends it under the attempt's deadline, and the dialect reads
/// the answer (complete) or says how its stream reaches the client.
async fn serve(
    inner: &Inner,
    llm: LlmRequest,
    dep: Deployment,
) -> Result<Response<BoxBody>, Error> {
    if let Some(m) = mock::pick(&llm, &dep) {
        return mock::respond(m, &llm, &dep);
    }
    let Some(dialect) = dialect::of(dep.provider) else {
        return Err(Error::Unsupported {
            provider: dep.provider,
            deployment: dep.id.clone(),
        });
    };
    let token = match dialect.credentials(&dep) {
        Some(credentials) => Some(
            inner
                .tokens
                .bearer(&inner.client, &credentials, &dep)
                .await?,
        ),
        None => None,
    };
    let ctx = Ctx::new(&llm, &dep).with_token(token.as_ref());
    let stream = llm.is_stream();
    if stream
        && llm.endpoint() == Endpoint::Completions
        && matches!(dialect.stream(), Streaming::Translate { .. })
    {
        // The translating relay frames chat chunks; a `text_completion` stream would need its
        // own.
        return Err(ctx.unsupported_endpoint("/v1/completions with stream: true"));
    }
    let req = dialect.build(&ctx)?;
    let deadline = Deadline::pick(&llm, &dep, stream, inner.client.default_timeout);
    if dialect.follows() {
        return serve_job(inner, dialect, &ctx, req, deadline, &dep).await;
    }
    tracing::debug!(
        deployment = %dep.id,
        provider = %dep.provider,
        endpoint = llm.endpoint().as_str(),
        stream,
        "calling upstream",
    );
    let read_error = |d: &DeploymentSpec, status, headers: &HeaderMap, body: &[u8]| {
        dialect.error(d, status, headers, body)
    };
    let call = upstream::call(&inner.client, req, &dep, &read_error);
    if stream {
        let res = Deadline::run(deadline, &dep, call).await?;
        let mut slots = StreamSlots::default();
        let body = stream_body(inner, dialect, &ctx, res, &mut slots, &dep)?;
        return Ok(upstream::stream(body, slots, dep));
    }
    let bytes = Deadline::run(deadline, &dep, async {
        let (parts, body) = call.await?.into_parts();
        upstream::collect(&dep, &parts.headers, body, inner.max_response).await
    })
    .await?;
    let answered = dialect.read_answer(&ctx, bytes)?;
    Ok(upstream::answer(answered.json, answered.usage, dep))
}

/// What a followed job ends in.
enum Job {
    /// The complete answer's body.
    Answer(bytes::Bytes),
    /// The stream's answer.
    Stream(Response<Incoming>),
}

/// Serves a provider whose requests start a job: sends `req`, then what
/// [`Dialect::follow`] asks for, until an answer or a stream, all under `deadline`.
async fn serve_job(
    inner: &Inner,
    dialect: &'static dyn Dialect,
    ctx: &Ctx<'_>,
    req: http::Request<http_body_util::Full<bytes::Bytes>>,
    deadline: Option<Deadline>,
    dep: &Deployment,
) -> Result<Response<BoxBody>, Error> {
    let read_error = |d: &DeploymentSpec, status, headers: &HeaderMap, body: &[u8]| {
        dialect.error(d, status, headers, body)
    };
    let job = Deadline::run(deadline, dep, async {
        let (mut req, mut polls) = (req, 0);
        loop {
            let res = upstream::call(&inner.client, req, dep, &read_error).await?;
            let (parts, body) = res.into_parts();
            let bytes = upstream::collect(dep, &parts.headers, body, inner.max_response).await?;
            let next = dialect.follow(ctx, &bytes, polls);
            match next.map_err(|e| crate::redact::error(e, dep))? {
                Follow::Done => return Ok(Job::Answer(bytes)),
                Follow::Poll { req: next, after } => {
                    tokio::time::sleep(after).await;
                    req = next;
                    polls += 1;
                }
                Follow::Stream(next) => {
                    let res = upstream::call(&inner.client, next, dep, &read_error).await?;
                    return Ok(Job::Stream(res));
                }
            }
        }
    })
    .await?;
    match job {
        Job::Answer(bytes) => {
            let answered = dialect.read_answer(ctx, bytes)?;
            Ok(upstream::answer(answered.json, answered.usage, dep.clone()))
        }
        Job::Stream(res) => {
            let mut slots = StreamSlots::default();
            let body = stream_body(inner, dialect, ctx, res, &mut slots, dep)?;
            Ok(upstream::stream(body, slots, dep.clone()))
        }
    }
}

/// The client's body for a 2xx stream answer, as the dialect's [`Streaming`] says.
fn stream_body(
    inner: &Inner,
    dialect: &'static dyn Dialect,
    ctx: &Ctx<'_>,
    res: Response<Incoming>,
    slots: &mut StreamSlots,
    dep: &Deployment,
) -> Result<BoxBody, Error> {
    match dialect.stream() {
        Streaming::PassThrough => {
            passthrough::check_content_type(res.headers(), ctx.dep)?;
            let reports = passthrough::Reports {
                usage: slots.usage.clone(),
                text: slots.text.insert(llmgate_core::TextCount::new()).clone(),
                failure: slots.failure.clone(),
            };
            Ok(BoxBody::new(Relay::new(
                res.into_body(),
                reports,
                !ctx.llm.include_usage(),
                inner.watch(ctx.dep),
                inner.max_response,
                dep.clone(),
            )))
        }
        Streaming::Translate {
            framing,
            translator,
        } => {
            let events = relay::decode(dialect, framing, res.into_body(), inner.max_response)
                .ok_or_else(|| ctx.invalid("the dialect cannot decode its stream framing"))?;
            Ok(BoxBody::new(TranslatedRelay::new(
                events,
                translator(ctx),
                slots.usage.clone(),
                ctx.llm.include_usage(),
                inner.watch(ctx.dep),
                inner.max_response,
                dep.clone(),
                slots.failure.clone(),
            )))
        }
    }
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

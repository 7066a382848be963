//! The Pingora host: serves any Tower HTTP service through Pingora's [`HttpServerApp`].
//!
//! Pingora's own `ServeHttp` wants the whole response as a `Vec<u8>`, which would buffer every
//! stream. [`Host`] instead forwards the service's response body frame by frame, as frames
//! arrive, so each SSE event reaches the client when the upstream sends it.
//!
//! Per connection, [`Host`] counts the connections open and refuses one past
//! `llmgate_max_connections` with a 503 (OpenAI's JSON error shape, `Retry-After`,
//! `Connection: close`) written before reading anything, then closes it. It wraps the
//! connection's stream in a [`conn::Conn`] that lets it bound the header Pingora reads.
//!
//! Per request, [`Host`]:
//!
//! 1. reads the request header within `llmgate_request_header_timeout` (from the accept of a new
//!    connection, or from the first byte of a kept-alive connection's next request), at most
//!    `llmgate_max_header_bytes` and `llmgate_max_headers` fields; then the whole request body
//!    within `llmgate_request_body_timeout` and capped at `max_request_body_bytes`. Every
//!    refusal is an OpenAI-shaped JSON error after which the connection is closed: 408 for a
//!    deadline (a connection that sent nothing is closed without one), 431 for the header
//!    caps, 413 for the body cap, 400 for anything Pingora cannot parse (bad request line,
//!    invalid `Content-Length`, a TLS ClientHello on the plain port). Where Pingora's session
//!    cannot answer (its header read failed), the answer is written under it on the stream;
//!    [`error`] has them all. Requests pipelined behind another (HTTP/1.1) are kept and served
//!    in order, each after the previous answer;
//! 2. builds an `http::Request<Full<Bytes>>` (method, URI, version, headers; the peer address as
//!    a [`std::net::SocketAddr`] extension when the connection has one);
//! 3. calls a clone of the service with `oneshot`;
//! 4. writes the response header with the body's framing set from its `size_hint`
//!    (`Content-Length` when exact, else `Transfer-Encoding: chunked` on HTTP/1.1), HTTP/1.1 as
//!    the version on HTTP/1 connections;
//! 5. writes each body frame as it comes, joined with the frames the body already has behind it
//!    ([`ready`]: one write for events that arrived together; nothing waits longer than one
//!    turn of the scheduler); a body error mid-stream is logged and the response is aborted
//!    (the HTTP/1 connection is closed, the HTTP/2 stream is reset), because the client must be
//!    able to tell a cut stream from a finished one;
//! 6. hands the connection back to Pingora for keep-alive when it is reusable.
//!
//! While it waits for the service and for body frames, it also watches the client: when the
//! client goes away, the service's future and body are dropped, which cancels the upstream call.
//!
//! HTTP/2 works through the same code: over TLS when ALPN picks h2, and in cleartext with prior
//! knowledge (`h2c`) when enabled with [`Host::h2c`].

use std::convert::Infallible;
use std::fmt::Display;
use std::pin::pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use llmgate::{raw_answer, HostError, HttpLimits, OpenConnections};
use pingora_core::apps::{
    HttpPersistentSettings, HttpServerApp, HttpServerOptions, ReusedHttpStream, ServerApp,
};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use tower::{Service, ServiceExt};

use crate::host::conn::Conn;
use crate::host::header::{read_header, refuse, Header};
use crate::shutdown::InFlight;

mod conn;
mod error;
mod header;
mod ready;

/// How long (seconds) an idle HTTP/1 connection stays open for its next request.
const KEEPALIVE_SECONDS: u64 = 60;

/// A Pingora [`ServerApp`] that serves a Tower HTTP service and streams its responses.
///
/// `S` is called once per request with the whole (size-capped) request body; its response
/// body is forwarded frame by frame.
pub struct Host<S> {
    requests: Arc<Requests<S>>,
    open: OpenConnections,
    /// The 503 for a connection past the cap, rendered once.
    refusal: Bytes,
}

/// The per-request half of [`Host`]: Pingora's HTTP/1 and HTTP/2 sessions call it.
#[derive(Clone)]
pub struct Requests<S> {
    service: S,
    max_request_body_bytes: usize,
    limits: HttpLimits,
    options: HttpServerOptions,
    in_flight: InFlight,
}

impl<S: Clone> Host<S> {
    /// Serve `service`, refusing request bodies larger than `max_request_body_bytes` with a 413,
    /// with the default [`HttpLimits`].
    pub fn new(service: S, max_request_body_bytes: usize) -> Self {
        Self::from_requests(Requests {
            service,
            max_request_body_bytes,
            limits: HttpLimits::default(),
            options: HttpServerOptions::default(),
            in_flight: InFlight::default(),
        })
    }

    fn from_requests(requests: Requests<S>) -> Self {
        let refusal = raw_answer(
            &HostError::TooManyConnections(requests.limits.max_connections),
            false,
        );
        Self {
            requests: Arc::new(requests),
            open: OpenConnections::default(),
            refusal,
        }
    }

    fn with(self, change: impl FnOnce(&mut Requests<S>)) -> Self {
        let mut requests = Arc::unwrap_or_clone(self.requests);
        change(&mut requests);
        Self::from_requests(requests)
    }

    /// Bound clients by `limits` (deadlines for the request header and body, header size and
    /// count, open connections).
    #[must_use]
    pub fn limits(self, limits: HttpLimits) -> Self {
        self.with(|r| r.limits = limits)
    }

    /// Accept cleartext HTTP/2 with prior knowledge (h2c) besides HTTP/1.x. Off by default.
    ///
    /// When on, Pingora peeks the first 24 bytes of every new connection for the HTTP/2
    /// preface, so an HTTP/1 request shorter than that (only a header-less HTTP/1.0 one can be)
    /// waits until the client sends more, gives up, or the header deadline passes.
    #[must_use]
    pub fn h2c(self, enabled: bool) -> Self {
        self.with(|r| r.options.h2c = enabled)
    }

    /// The count of requests being served, for a graceful shutdown to wait on.
    pub fn in_flight(&self) -> InFlight {
        self.requests.in_flight.clone()
    }

    /// The count of client connections open, for an upgrade's drain to wait on.
    pub fn open_connections(&self) -> OpenConnections {
        self.open.clone()
    }
}

#[async_trait]
impl<S> ServerApp for Host<S>
where
    Requests<S>: HttpServerApp + Send + Sync + 'static,
    S: Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let limits = &self.requests.limits;
        let Some(_open) = self.open.try_open(limits.max_connections) else {
            tracing::debug!(
                max = limits.max_connections,
                "connection refused: llmgate_max_connections are open"
            );
            let mut refused = Conn::refused(stream, self.refusal.clone());
            pingora_core::protocols::Shutdown::shutdown(&mut refused).await;
            return None;
        };
        let conn: Stream = Box::new(Conn::new(stream, limits.request_header_timeout));
        // Pingora's HTTP handling (h2c and ALPN, the HTTP/1 keep-alive loop) on the wrapped
        // stream; it hands each request to `Requests::process_new_http`.
        self.requests.process_new(conn, shutdown).await
    }

    async fn cleanup(&self) {
        self.requests.cleanup().await;
    }
}

#[async_trait]
impl<S, B> HttpServerApp for Requests<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Display,
{
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        // Requests written behind this one (HTTP/1.1 pipelining) are kept for the next round
        // instead of closing the connection; each is answered after this one, in order.
        session.set_pipelining_enabled(true);
        let conn = session.stream().and_then(Conn::state_of);
        match read_header(&mut session, conn.as_deref(), &self.limits).await {
            Header::Read => {}
            Header::Closed => return None,
            Header::Refused(error) => return refuse(session, conn.as_deref(), &error).await,
        }
        if *shutdown.borrow() {
            // Shutting down: answer this request, then close the connection.
            session.set_keepalive(None);
        } else if session.get_keepalive().is_some() {
            // The client allows reuse (HTTP/1.1, or 1.0 with `Connection: keep-alive`):
            // bound the idle time instead of Pingora's default of forever.
            session.set_keepalive(Some(KEEPALIVE_SECONDS));
        }
        let _in_flight = self.in_flight.enter();

        let limit = self.max_request_body_bytes;
        let deadline = self.limits.request_body_timeout;
        let read = tokio::time::timeout(deadline, read_body(&mut session, limit)).await;
        let refused = match read {
            Ok(Ok(body)) => return self.serve(session, body, shutdown).await,
            Ok(Err(ReadBodyError::TooLarge)) => too_large(limit),
            Err(_elapsed) => HostError::BodyTimeout(deadline).to_response(),
            Ok(Err(ReadBodyError::Read(e))) => {
                tracing::debug!(error = %e, "failed to read the request body");
                return None;
            }
        };
        session.set_keepalive(None);
        if let Some(conn) = &conn {
            // The unread body may still be arriving.
            conn.linger_on_close();
        }
        // Do not watch the client for the end of the unread body. The connection is closed
        // either way; nothing more to do on error.
        let _ = write_response(&mut session, refused, false).await;
        finish(session).await
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        Some(&self.options)
    }
}

impl<S, B> Requests<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible> + Clone,
    B: Body<Data = Bytes> + Send,
    B::Error: Display,
{
    /// Call the service with the request and write its response, watching the client. When
    /// the server started shutting down meanwhile, the answer closes the HTTP/1 connection
    /// (`Connection: close`), so the client's next request goes to the listener (after an
    /// upgrade, the new process) instead of to a process about to exit.
    async fn serve(
        &self,
        mut session: ServerSession,
        body: Bytes,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let request = to_request(&session, body);
        let call = self.service.clone().oneshot(request);
        let response = tokio::select! {
            biased;
            response = call => match response {
                Ok(response) => response,
                Err(never) => match never {},
            },
            gone = session.read_body_or_idle(true) => {
                tracing::debug!(reason = ?gone.err(), "client went away before the response");
                return None;
            }
        };
        if *shutdown.borrow() {
            session.set_keepalive(None);
        }
        match write_response(&mut session, response, true).await {
            Ok(()) => finish(session).await,
            Err(Aborted) => None,
        }
    }
}

/// Why the request body could not be handed to the service.
enum ReadBodyError {
    /// Larger than the cap (declared or read).
    TooLarge,
    /// The client's bytes could not be read.
    Read(pingora_core::BError),
}

impl From<pingora_core::BError> for ReadBodyError {
    fn from(e: pingora_core::BError) -> Self {
        Self::Read(e)
    }
}

/// Read the whole request body, refusing more than `limit` bytes.
async fn read_body(session: &mut ServerSession, limit: usize) -> Result<Bytes, ReadBodyError> {
    let declared = session
        .get_header(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ReadBodyError::TooLarge);
    }
    if expects_continue(session) && !session.is_body_empty() {
        session.write_continue_response().await?;
    }
    // Most bodies arrive in one chunk: keep it without copying.
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let mut total = 0usize;
    while let Some(chunk) = session.read_request_body().await? {
        total = total.saturating_add(chunk.len());
        if total > limit {
            return Err(ReadBodyError::TooLarge);
        }
        match first.take() {
            None if rest.is_empty() => first = Some(chunk),
            None => rest.extend_from_slice(&chunk),
            Some(earlier) => {
                rest.reserve(earlier.len() + chunk.len());
                rest.extend_from_slice(&earlier);
                rest.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| rest.freeze()))
}

/// An HTTP/1.1 request with `Expect: 100-continue`.
fn expects_continue(session: &ServerSession) -> bool {
    let header = session.req_header();
    header.version == Version::HTTP_11
        && header
            .headers
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// The request the service sees: the session's head, the peer address, and the body.
fn to_request(session: &ServerSession, body: Bytes) -> Request<Full<Bytes>> {
    let mut parts = session.req_header().as_owned_parts();
    if let Some(peer) = session.client_addr().and_then(|a| a.as_inet()) {
        parts.extensions.insert(*peer);
    }
    if session.digest().is_some_and(|d| d.ssl_digest.is_some()) {
        // Over our own TLS: say so the way a TLS-ending proxy would (the admin UI marks its
        // session cookie `Secure` on it). A client cannot unsay it.
        parts.headers.insert(
            http::HeaderName::from_static("x-forwarded-proto"),
            http::HeaderValue::from_static("https"),
        );
    }
    Request::from_parts(parts, Full::new(body))
}

/// The 413 answer for a body over the cap: the gateway's own error, with a request id like
/// every other response.
fn too_large(limit: usize) -> Response<llmgate::core::BoxBody> {
    let mut response = llmgate::core::ApiError::payload_too_large(limit).to_response();
    if let Some(id) = llmgate::request_id::header_value() {
        response
            .headers_mut()
            .insert(llmgate::core::headers::REQUEST_ID, id);
    }
    response
}

/// The response was cut short; the connection must not be reused.
struct Aborted;

/// Write the response head, then each body frame as it arrives. With `watch_client`, stop as
/// soon as the client goes away (which needs the request body to have been read).
async fn write_response<B>(
    session: &mut ServerSession,
    response: Response<B>,
    watch_client: bool,
) -> Result<(), Aborted>
where
    B: Body<Data = Bytes> + Send,
    B::Error: Display,
{
    let (mut head, body) = response.into_parts();
    set_framing(session, &mut head, &body.size_hint());
    if let Err(e) = session.write_response_header(Box::new(head.into())).await {
        tracing::debug!(error = %e, "failed to write the response header");
        return Err(Aborted);
    }
    let mut body = pin!(body);
    // A frame that `ready::gather` read behind the data it gathered: handled next.
    let mut held: Option<ready::Polled> = None;
    loop {
        let frame = match held.take() {
            Some(frame) => frame,
            None => tokio::select! {
                biased;
                // The error becomes text here: `B::Error` need not be `Send`.
                frame = body.frame() => frame.map(|f| f.map_err(|e| e.to_string())),
                gone = session.read_body_or_idle(true), if watch_client => {
                    tracing::debug!(reason = ?gone.err(), "client went away during the response body");
                    return Err(Aborted);
                }
            },
        };
        let frame = match frame {
            None => return Ok(()),
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                tracing::warn!(
                    error = %e,
                    request = %session.request_summary(),
                    "response body failed mid-stream; aborting the response"
                );
                break;
            }
        };
        let written = match frame.into_data() {
            // Mark the last frame as such when the body knows (a `Full` body does): HTTP/2
            // then ends the stream with it instead of with an extra empty DATA frame.
            Ok(data) => {
                // With the data the body already has behind it: one write, not one per event.
                let data = ready::gather(body.as_mut(), data, &mut held).await;
                let end = match &held {
                    None => body.is_end_stream(),
                    Some(next) => next.is_none(),
                };
                session.write_response_body(data, end).await
            }
            Err(frame) => match frame.into_trailers() {
                // HTTP/1 trailers are dropped by Pingora; HTTP/2 sends them.
                Ok(trailers) => session.write_response_trailers(trailers).await,
                Err(_) => Ok(()),
            },
        };
        if let Err(e) = written {
            tracing::debug!(error = %e, "failed to write the response body");
            return Err(Aborted);
        }
    }
    // Close the HTTP/1 connection (a chunked body then lacks its last chunk, a sized one its
    // remaining bytes) or reset the HTTP/2 stream, so the client sees the cut.
    session.shutdown().await;
    Err(Aborted)
}

/// Set the version and the body framing headers: Pingora adds neither `Content-Length` nor
/// `Transfer-Encoding`, and its HTTP/1 writer refuses any version but 0.9, 1.0 and 1.1.
fn set_framing(
    session: &ServerSession,
    head: &mut http::response::Parts,
    hint: &http_body::SizeHint,
) {
    let request = session.req_header();
    let http2 = session.is_http2();
    head.version = if http2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    let status = head.status;
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        head.headers.remove(CONTENT_LENGTH);
        head.headers.remove(TRANSFER_ENCODING);
        return;
    }
    if request.method == Method::HEAD {
        // No body follows; the service's headers describe the GET it stands for.
        return;
    }
    head.headers.remove(TRANSFER_ENCODING);
    if let Some(len) = hint.exact() {
        head.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        return;
    }
    head.headers.remove(CONTENT_LENGTH);
    // HTTP/2 frames the body itself; an HTTP/1.0 client gets a body delimited by the close.
    if !http2 && request.version == Version::HTTP_11 {
        head.headers
            .insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    }
}

/// End the response and return the connection to Pingora if it can carry another request.
async fn finish(session: ServerSession) -> Option<ReusedHttpStream> {
    let settings = HttpPersistentSettings::for_session(&session);
    match session.finish().await {
        Ok(stream) => stream.map(|s| ReusedHttpStream::from_reusable_stream(s, settings)),
        Err(e) => {
            tracing::debug!(error = %e, "failed to finish the response");
            None
        }
    }
}

#[cfg(test)]
mod tests;

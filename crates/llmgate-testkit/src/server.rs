//! The machinery every dialect shares: the listener, the request log, the behaviour queue,
//! and the delivery of an answer (delays, pacing, cuts and gates).
//!
//! A dialect ([`Dialect`]) only turns a recorded request into a [`Reply`]: a complete body or
//! a list of stream events. Everything about *how* the reply goes out lives here.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::behaviour::{Behaviour, Gate, Plan, Terminal};

/// The response body type the mock serves.
pub(crate) type MockBody = UnsyncBoxBody<Bytes, io::Error>;

/// One request as the mock received it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Recorded {
    /// The request method.
    pub method: Method,
    /// The path, without the query (e.g. `/v1/chat/completions`).
    pub path: String,
    /// The path and the query, as sent (e.g. `/v1/models?limit=2`).
    pub path_and_query: String,
    /// The request headers, as received.
    pub headers: HeaderMap,
    /// The request body, as received.
    pub body: Bytes,
    /// The body parsed as JSON; [`Value::Null`] when it is empty or not JSON.
    pub json: Value,
}

impl Recorded {
    pub(crate) fn new(parts: &http::request::Parts, body: Bytes) -> Self {
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Self {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
            headers: parts.headers.clone(),
            body,
            json,
        }
    }

    /// A header's value, if present and visible ASCII.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of an `Authorization: Bearer <token>` header.
    #[must_use]
    pub fn bearer_token(&self) -> Option<&str> {
        self.headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
    }

    /// The body's `"model"` field, when it is a string.
    #[must_use]
    pub fn model(&self) -> Option<&str> {
        self.json.get("model").and_then(Value::as_str)
    }
}

/// What a dialect answers, before delivery.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A complete body.
    Full {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    /// A `200 OK` stream: each item is one framed event (e.g. `data: {...}\n\n`).
    Events {
        headers: HeaderMap,
        events: Vec<Bytes>,
    },
}

/// What a dialect may know about the mock when it answers.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// The request's number on this mock, from 1.
    pub(crate) seq: u64,
    /// The models the mock lists.
    pub(crate) models: Vec<String>,
}

/// A provider's wire format.
pub(crate) trait Dialect: Send + Sync + 'static {
    /// The models listed until the test sets others.
    fn default_models(&self) -> Vec<String>;

    /// Whether the request asks for a streamed answer.
    fn is_stream(&self, req: &Recorded) -> bool;

    /// The answer to `req`; `content` replaces the default reply text.
    fn respond(&self, req: &Recorded, content: Option<&str>, ctx: &Ctx) -> Reply;

    /// A `200 OK` whose body does not parse as the dialect's JSON.
    fn invalid_body(&self, req: &Recorded) -> Reply {
        let mut headers = HeaderMap::new();
        if self.is_stream(req) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            Reply::Events {
                headers,
                events: vec![
                    Bytes::from_static(b"data: {\"id\": this is not json\n\n"),
                    Bytes::from_static(b"data: [DONE]\n\n"),
                ],
            }
        } else {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Reply::Full {
                status: StatusCode::OK,
                headers,
                body: Bytes::from_static(b"{\"id\": this is not json"),
            }
        }
    }
}

struct State {
    dialect: Arc<dyn Dialect>,
    behaviours: Mutex<Behaviours>,
    requests: Mutex<Vec<Recorded>>,
    models: Mutex<Vec<String>>,
    seq: AtomicU64,
}

#[derive(Default)]
struct Behaviours {
    default: Behaviour,
    queue: VecDeque<Behaviour>,
}

/// A lock that survives a panicking test thread: the data is a plain log, never half-updated.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    fn next_behaviour(&self) -> Behaviour {
        let mut b = lock(&self.behaviours);
        match b.queue.pop_front() {
            Some(next) => next,
            None => b.default.clone(),
        }
    }
}

/// An in-process mock LLM provider listening on `127.0.0.1:<ephemeral port>`.
///
/// It serves in a spawned tokio task until it is dropped or [`MockProvider::shutdown`] is
/// called. It records every request ([`MockProvider::requests`]) and answers each one
/// with a [`Behaviour`]: the next one queued with [`MockProvider::push`], else the default
/// ([`MockProvider::set_default`], initially [`Behaviour::Ok`]).
///
/// Start one with a dialect's constructor, e.g. [`MockProvider::start`] (OpenAI). Share it
/// between tasks with an `Arc`: all methods take `&self`.
pub struct MockProvider {
    addr: SocketAddr,
    state: Arc<State>,
    // Dropping the sender is the shutdown signal for the accept loop and every connection.
    shutdown: watch::Sender<()>,
    task: JoinHandle<()>,
}

impl fmt::Debug for MockProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockProvider")
            .field("addr", &self.addr)
            .field("request_count", &self.request_count())
            .finish_non_exhaustive()
    }
}

impl MockProvider {
    /// Binds `127.0.0.1:0` and serves `dialect` in a spawned task.
    pub(crate) async fn start_dialect(dialect: Arc<dyn Dialect>) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            models: Mutex::new(dialect.default_models()),
            dialect,
            behaviours: Mutex::new(Behaviours::default()),
            requests: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
        });
        let (shutdown, rx) = watch::channel(());
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&state), rx));
        Ok(Self {
            addr,
            state,
            shutdown,
            task,
        })
    }

    /// The address it listens on (`127.0.0.1:PORT`).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`: what an OpenAI client takes as its `base_url`/`api_base`.
    #[must_use]
    pub fn v1_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Sets the behaviour used when the queue is empty (initially [`Behaviour::Ok`]).
    pub fn set_default(&self, behaviour: Behaviour) {
        lock(&self.state.behaviours).default = behaviour;
    }

    /// Queues a one-shot behaviour: the next request that finds the queue non-empty takes
    /// the oldest one (FIFO).
    pub fn push(&self, behaviour: Behaviour) {
        lock(&self.state.behaviours).queue.push_back(behaviour);
    }

    /// Queues several one-shot behaviours, in order.
    pub fn push_all(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        lock(&self.state.behaviours).queue.extend(behaviours);
    }

    /// How many one-shot behaviours are still queued.
    #[must_use]
    pub fn queued(&self) -> usize {
        lock(&self.state.behaviours).queue.len()
    }

    /// Drops the queued one-shot behaviours (the default stays).
    pub fn clear_queue(&self) {
        lock(&self.state.behaviours).queue.clear();
    }

    /// Sets the model ids listed by the models endpoint.
    pub fn set_models<I, S>(&self, models: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        *lock(&self.state.models) = models.into_iter().map(Into::into).collect();
    }

    /// Every request received so far, oldest first. A request is recorded as soon as its
    /// body has been read, before any delay or gate of its behaviour.
    #[must_use]
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.requests).clone()
    }

    /// The most recent request, if any.
    #[must_use]
    pub fn last_request(&self) -> Option<Recorded> {
        lock(&self.state.requests).last().cloned()
    }

    /// How many requests were received so far.
    #[must_use]
    pub fn request_count(&self) -> usize {
        lock(&self.state.requests).len()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.state.requests).clear();
    }

    /// Stops accepting connections, drops the open ones and waits until the listener is
    /// closed. Dropping the mock does the same without waiting.
    pub async fn shutdown(self) {
        let Self { shutdown, task, .. } = self;
        drop(shutdown);
        // The accept loop only ends by the signal; a join error means it panicked, and
        // there is nothing left to stop either way.
        let _ = task.await;
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut shutdown: watch::Receiver<()>) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // E.g. too many open files: back off instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let state = Arc::clone(&state);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                // A connection error (client gone, body cut on purpose) ends it: nothing to do.
                _ = conn => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<MockBody> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return plain(
                StatusCode::BAD_REQUEST,
                "mock: could not read the request body",
            )
        }
    };
    let recorded = Recorded::new(&parts, body);
    lock(&state.requests).push(recorded.clone());
    let seq = state.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let plan = Plan::from_behaviour(state.next_behaviour());

    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    let ctx = || Ctx {
        seq,
        models: lock(&state.models).clone(),
    };
    let dialect = &state.dialect;
    let mut stop = None;
    let reply = match plan.terminal {
        Terminal::Status {
            status,
            body,
            mut headers,
        } => {
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Reply::Full {
                status,
                headers,
                body,
            }
        }
        Terminal::InvalidBody => dialect.invalid_body(&recorded),
        Terminal::Ok => dialect.respond(&recorded, None, &ctx()),
        Terminal::Reply(content) => dialect.respond(&recorded, Some(&content), &ctx()),
        Terminal::Cut(after) => {
            stop = Some(Stop::Cut(after));
            dialect.respond(&recorded, None, &ctx())
        }
        Terminal::Gated(gate, after) => {
            stop = Some(Stop::Gate(gate, after));
            dialect.respond(&recorded, None, &ctx())
        }
    };
    deliver(reply, plan.headers, plan.pace, stop).await
}

/// Where a delivery stops early.
enum Stop {
    /// Drop the connection after this many events.
    Cut(usize),
    /// Wait for the gate after this many events.
    Gate(Gate, usize),
}

async fn deliver(
    reply: Reply,
    extra: HeaderMap,
    pace: Option<Duration>,
    stop: Option<Stop>,
) -> Response<MockBody> {
    let (status, mut headers, body) = match (reply, stop) {
        (
            Reply::Full {
                status,
                headers,
                body,
            },
            Some(Stop::Cut(_)),
        ) => {
            // Promise the whole body, send half, then fail: the client sees a short body.
            let mut headers = headers;
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            let half = body.slice(..body.len() / 2);
            let feed = Feed::new(vec![half], None, Some(Stop::Cut(1)));
            (status, headers, feed.into_body())
        }
        (
            Reply::Full {
                status,
                headers,
                body,
            },
            stop,
        ) => {
            if let Some(Stop::Gate(gate, _)) = stop {
                gate.pass().await;
            }
            (status, headers, full(body))
        }
        (Reply::Events { headers, events }, stop) => {
            let feed = Feed::new(events, pace, stop);
            (StatusCode::OK, headers, feed.into_body())
        }
    };
    for (name, value) in &extra {
        headers.append(name.clone(), value.clone());
    }
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The events of a streamed answer, handed out one frame at a time.
struct Feed {
    events: VecDeque<Bytes>,
    sent: usize,
    pace: Option<Duration>,
    stop: Option<Stop>,
    gate_passed: bool,
    finished: bool,
}

impl Feed {
    fn new(events: Vec<Bytes>, pace: Option<Duration>, stop: Option<Stop>) -> Self {
        Self {
            events: events.into(),
            sent: 0,
            pace,
            stop,
            gate_passed: false,
            finished: false,
        }
    }

    fn into_body(self) -> MockBody {
        let stream = futures_util::stream::unfold(self, Feed::next);
        BodyExt::boxed_unsync(StreamBody::new(stream))
    }

    async fn next(mut self) -> Option<(Result<Frame<Bytes>, io::Error>, Self)> {
        if self.finished {
            return None;
        }
        match &self.stop {
            Some(Stop::Cut(after)) if self.sent >= *after || self.events.is_empty() => {
                self.finished = true;
                // Return `Pending` once first, so hyper flushes the head and the events
                // sent so far to the socket before the error makes it drop the connection.
                tokio::task::yield_now().await;
                let error = io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "llmgate-testkit: connection cut mid-stream on purpose",
                );
                return Some((Err(error), self));
            }
            Some(Stop::Gate(gate, after)) if self.sent == *after && !self.gate_passed => {
                gate.pass().await;
                self.gate_passed = true;
            }
            _ => {}
        }
        let event = self.events.pop_front()?;
        if let (Some(pace), true) = (self.pace, self.sent > 0) {
            tokio::time::sleep(pace).await;
        }
        self.sent += 1;
        Some((Ok(Frame::data(event)), self))
    }
}

fn full(body: Bytes) -> MockBody {
    BodyExt::boxed_unsync(Full::new(body).map_err(|never: Infallible| match never {}))
}

fn plain(status: StatusCode, text: &'static str) -> Response<MockBody> {
    let mut response = Response::new(full(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn drain(body: MockBody) -> (Vec<Bytes>, Option<io::Error>) {
        let mut body = body;
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => frames.push(f.into_data().unwrap()),
                Err(e) => return (frames, Some(e)),
            }
        }
        (frames, None)
    }

    fn events(n: usize) -> Vec<Bytes> {
        (0..n).map(|i| Bytes::from(format!("e{i}"))).collect()
    }

    #[tokio::test]
    async fn feed_sends_everything_without_stop() {
        let (frames, err) = drain(Feed::new(events(3), None, None).into_body()).await;
        assert_eq!(frames, events(3));
        assert!(err.is_none());
    }

    #[tokio::test]
    async fn feed_cut_fails_after_n_events_even_past_the_end() {
        let (frames, err) = drain(Feed::new(events(3), None, Some(Stop::Cut(2))).into_body()).await;
        assert_eq!(frames, events(2));
        assert_eq!(err.unwrap().kind(), io::ErrorKind::ConnectionAborted);

        let (frames, err) = drain(Feed::new(events(3), None, Some(Stop::Cut(9))).into_body()).await;
        assert_eq!(frames, events(3));
        assert!(err.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn feed_paces_between_events() {
        let start = tokio::time::Instant::now();
        let pace = Some(Duration::from_millis(10));
        let (frames, _) = drain(Feed::new(events(4), pace, None).into_body()).await;
        assert_eq!(frames.len(), 4);
        assert_eq!(start.elapsed(), Duration::from_millis(30));
    }

    #[test]
    fn recorded_helpers() {
        let req = Request::post("/v1/chat/completions?x=1")
            .header("authorization", "Bearer sk-test")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let r = Recorded::new(&parts, Bytes::from_static(br#"{"model":"m"}"#));
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(r.path_and_query, "/v1/chat/completions?x=1");
        assert_eq!(r.bearer_token(), Some("sk-test"));
        assert_eq!(r.model(), Some("m"));
        let r = Recorded::new(&parts, Bytes::from_static(b"not json"));
        assert_eq!(r.json, Value::Null);
    }
}

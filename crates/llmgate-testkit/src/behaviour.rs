//! What the mock does with a request: [`Behaviour`] and the [`Gate`] that holds a response.
//!
//! A behaviour is chosen per request: the next one queued with
//! [`MockProvider::push`](crate::MockProvider::push), else the default set with
//! [`MockProvider::set_default`](crate::MockProvider::set_default) (initially
//! [`Behaviour::Ok`]). Wrappers ([`Behaviour::Delay`], [`Behaviour::Paced`],
//! [`Behaviour::WithHeaders`]) nest around any other behaviour and compose.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use tokio::sync::watch;

use crate::openai;

/// What the mock provider answers to one request.
///
/// "Events" below are the frames of a streamed answer, in order: for OpenAI's chat
/// completions the role chunk, one chunk per content piece, the chunk with
/// `finish_reason`, the usage chunk (when asked for) and `data: [DONE]`.
#[derive(Clone, Debug, Default)]
pub enum Behaviour {
    /// The default, deterministic answer of the dialect (for OpenAI chat:
    /// `"mock reply to: <last user message text>"`), streamed when the request asks for it.
    #[default]
    Ok,
    /// Like [`Behaviour::Ok`], with this text as the reply content (chat and completions;
    /// other endpoints answer as with `Ok`).
    Reply(String),
    /// Exactly this status, body and headers, whatever the request was; never streamed.
    /// `content-type: application/json` is added unless `headers` has a content type.
    Status {
        /// The response status.
        status: StatusCode,
        /// The response body, sent as is.
        body: Bytes,
        /// Response headers.
        headers: HeaderMap,
    },
    /// Sleep this long before doing the inner behaviour (before the response head is sent).
    Delay(Duration, Box<Behaviour>),
    /// Sleep this long between two events of a streamed answer produced by the inner
    /// behaviour. Ignored for answers that are not streamed.
    Paced(Duration, Box<Behaviour>),
    /// Add these headers to whatever response the inner behaviour produces.
    WithHeaders(HeaderMap, Box<Behaviour>),
    /// Answer as [`Behaviour::Ok`] would, but drop the connection abruptly after
    /// `after_events` events of a stream (no `[DONE]`, no clean end of the body), so the
    /// client sees a body error. For an answer that is not streamed, the head and the
    /// first half of the body are sent (with the full `content-length`), then the
    /// connection is dropped.
    CutMidStream {
        /// How many events are sent before the connection is dropped.
        after_events: usize,
    },
    /// A `200 OK` whose body is not JSON: for a non-streaming request an
    /// `application/json` body that does not parse; for a streaming request an event
    /// stream whose first event's data does not parse, followed by `data: [DONE]`.
    InvalidBody,
    /// Answer as [`Behaviour::Ok`] would, but wait for [`Gate::release`] after sending
    /// `after_events` events of a stream. For an answer that is not streamed, the whole
    /// response (head included) waits for the gate.
    Gated {
        /// The gate to wait for; keep a clone in the test to release it.
        gate: Gate,
        /// How many events are sent before waiting.
        after_events: usize,
    },
}

impl Behaviour {
    /// [`Behaviour::Reply`] with this content.
    #[must_use]
    pub fn reply(content: impl Into<String>) -> Self {
        Self::Reply(content.into())
    }

    /// An error in OpenAI's shape, `{"error":{"message","type","param":null,"code"}}`,
    /// with `type` and `code` chosen from the status as OpenAI does:
    ///
    /// | status | `type` | `code` |
    /// |---|---|---|
    /// | 400, 422 | `invalid_request_error` | `null` |
    /// | 401 | `invalid_request_error` | `invalid_api_key` |
    /// | 403 | `invalid_request_error` | `permission_denied` |
    /// | 404 | `invalid_request_error` | `model_not_found` |
    /// | 408 | `timeout` | `timeout` |
    /// | 413 | `invalid_request_error` | `request_too_large` |
    /// | 429 | `requests` | `rate_limit_exceeded` |
    /// | 503 | `server_error` | `service_unavailable` |
    /// | other 5xx | `server_error` | `null` |
    /// | other | `invalid_request_error` (4xx) or `api_error` | `null` |
    ///
    /// A number that is not a valid HTTP status becomes 500.
    ///
    /// ```
    /// use llmgate_testkit::Behaviour;
    /// let b = Behaviour::error(429, "Rate limit reached for gpt-4o").with_header("retry-after", "1");
    /// ```
    #[must_use]
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        let status = status_from_u16(status);
        let (kind, code) = openai::error_kind(status);
        Self::error_typed(status.as_u16(), message, kind, code)
    }

    /// An error in OpenAI's shape with an explicit `type` and `code`.
    #[must_use]
    pub fn error_typed(
        status: u16,
        message: impl Into<String>,
        kind: &str,
        code: Option<&str>,
    ) -> Self {
        let body = openai::error_body(&message.into(), kind, code);
        Self::json(status, &body)
    }

    /// This status with this JSON body (e.g. a hand-written completion with tool calls).
    #[must_use]
    pub fn json(status: u16, body: &Value) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Self::Status {
            status: status_from_u16(status),
            body: Bytes::from(body.to_string()),
            headers,
        }
    }

    /// [`Behaviour::CutMidStream`] after `after_events` events.
    #[must_use]
    pub fn cut_after(after_events: usize) -> Self {
        Self::CutMidStream { after_events }
    }

    /// [`Behaviour::Gated`] on `gate` after `after_events` events.
    #[must_use]
    pub fn gated(gate: &Gate, after_events: usize) -> Self {
        Self::Gated {
            gate: gate.clone(),
            after_events,
        }
    }

    /// Wraps `self` in [`Behaviour::Delay`].
    #[must_use]
    pub fn delayed(self, delay: Duration) -> Self {
        Self::Delay(delay, Box::new(self))
    }

    /// Wraps `self` in [`Behaviour::Paced`]: `interval` between two stream events.
    #[must_use]
    pub fn paced(self, interval: Duration) -> Self {
        Self::Paced(interval, Box::new(self))
    }

    /// Adds a response header: into a [`Behaviour::Status`]'s headers (also through
    /// `Delay`, `Paced` and `WithHeaders` wrappers), else by wrapping `self` in
    /// [`Behaviour::WithHeaders`]. Appends, so a name can be given several values.
    ///
    /// # Panics
    ///
    /// If `name` or `value` is not a valid header name or value: that is a bug in the test.
    #[must_use]
    #[expect(
        clippy::expect_used,
        reason = "a test helper: an invalid header literal is a bug in the calling test"
    )]
    pub fn with_header(self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("invalid header name");
        let value = HeaderValue::from_str(value).expect("invalid header value");
        self.add_header(name, value)
    }

    fn add_header(self, name: HeaderName, value: HeaderValue) -> Self {
        match self {
            Self::Status {
                status,
                body,
                mut headers,
            } => {
                headers.append(name, value);
                Self::Status {
                    status,
                    body,
                    headers,
                }
            }
            Self::Delay(d, inner) => Self::Delay(d, Box::new(inner.add_header(name, value))),
            Self::Paced(d, inner) => Self::Paced(d, Box::new(inner.add_header(name, value))),
            Self::WithHeaders(mut headers, inner) => {
                headers.append(name, value);
                Self::WithHeaders(headers, inner)
            }
            other => {
                let mut headers = HeaderMap::new();
                headers.append(name, value);
                Self::WithHeaders(headers, Box::new(other))
            }
        }
    }
}

fn status_from_u16(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The innermost behaviour, once the wrappers are peeled off.
#[derive(Debug)]
pub(crate) enum Terminal {
    Ok,
    Reply(String),
    Status {
        status: StatusCode,
        body: Bytes,
        headers: HeaderMap,
    },
    Cut(usize),
    InvalidBody,
    Gated(Gate, usize),
}

/// A behaviour flattened: what to wait, how to pace, extra headers, then what to answer.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) delay: Duration,
    pub(crate) pace: Option<Duration>,
    pub(crate) headers: HeaderMap,
    pub(crate) terminal: Terminal,
}

impl Plan {
    /// Peels the wrappers off a behaviour iteratively (no recursion: nesting depth is the
    /// test's business). Nested delays add up; the innermost pace wins.
    pub(crate) fn from_behaviour(mut behaviour: Behaviour) -> Self {
        let mut delay = Duration::ZERO;
        let mut pace = None;
        let mut headers = HeaderMap::new();
        let terminal = loop {
            behaviour = match behaviour {
                Behaviour::Delay(d, inner) => {
                    delay = delay.saturating_add(d);
                    *inner
                }
                Behaviour::Paced(d, inner) => {
                    pace = Some(d);
                    *inner
                }
                Behaviour::WithHeaders(h, inner) => {
                    for (name, value) in &h {
                        headers.append(name.clone(), value.clone());
                    }
                    *inner
                }
                Behaviour::Ok => break Terminal::Ok,
                Behaviour::Reply(s) => break Terminal::Reply(s),
                Behaviour::Status {
                    status,
                    body,
                    headers,
                } => {
                    break Terminal::Status {
                        status,
                        body,
                        headers,
                    }
                }
                Behaviour::CutMidStream { after_events } => break Terminal::Cut(after_events),
                Behaviour::InvalidBody => break Terminal::InvalidBody,
                Behaviour::Gated { gate, after_events } => {
                    break Terminal::Gated(gate, after_events)
                }
            };
        };
        Self {
            delay,
            pace,
            headers,
            terminal,
        }
    }
}

/// Holds a response of [`Behaviour::Gated`] until the test calls [`Gate::release`].
///
/// Clones share one gate. Once released, a gate stays open: every request gated on it,
/// now or later, passes. Built on `tokio::sync::watch`, so no test needs to sleep.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use llmgate_testkit::{Behaviour, Gate, MockProvider};
/// let mock = MockProvider::start().await;
/// let gate = Gate::new();
/// mock.push(Behaviour::gated(&gate, 1)); // the role chunk goes out, then the stream waits
/// // ... send a streaming request, read its first event, then:
/// gate.release();
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Gate {
    state: Arc<watch::Sender<GateState>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct GateState {
    released: bool,
    arrivals: usize,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    /// A closed gate.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(GateState::default())),
        }
    }

    /// Opens the gate: every response waiting on it goes on, and later ones do not wait.
    pub fn release(&self) {
        self.state.send_modify(|s| s.released = true);
    }

    /// Whether [`Gate::release`] was called.
    #[must_use]
    pub fn is_released(&self) -> bool {
        self.state.borrow().released
    }

    /// How many responses reached the gate so far (waiting or, once released, passed).
    #[must_use]
    pub fn arrivals(&self) -> usize {
        self.state.borrow().arrivals
    }

    /// Waits until at least `n` responses have reached the gate: the requests are then
    /// in flight at the provider, with their first `after_events` events sent.
    pub async fn wait_for_arrivals(&self, n: usize) {
        let mut rx = self.state.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|s| s.arrivals >= n).await;
    }

    /// Counts one arrival, then waits until the gate is released.
    pub(crate) async fn pass(&self) {
        let mut rx = self.state.subscribe();
        self.state.send_modify(|s| s.arrivals += 1);
        let _ = rx.wait_for(|s| s.released).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_helper_builds_openai_shape() {
        let b =
            Behaviour::error(429, "Rate limit reached for gpt-4o").with_header("retry-after", "1");
        let Behaviour::Status {
            status,
            body,
            headers,
        } = b
        else {
            panic!("expected Status, got {b:?}");
        };
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(headers["content-type"], "application/json");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {
                "message": "Rate limit reached for gpt-4o",
                "type": "requests",
                "param": null,
                "code": "rate_limit_exceeded"
            }})
        );
    }

    #[test]
    fn invalid_status_becomes_500() {
        let Behaviour::Status { status, .. } = Behaviour::error(42, "x") else {
            panic!("expected Status");
        };
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn with_header_reaches_status_through_wrappers_and_wraps_others() {
        let b = Behaviour::error(500, "boom")
            .delayed(Duration::from_millis(5))
            .with_header("x-a", "1");
        let plan = Plan::from_behaviour(b);
        assert_eq!(plan.delay, Duration::from_millis(5));
        assert!(plan.headers.is_empty());
        let Terminal::Status { headers, .. } = plan.terminal else {
            panic!("expected Status");
        };
        assert_eq!(headers["x-a"], "1");

        let plan = Plan::from_behaviour(Behaviour::Ok.with_header("x-b", "2"));
        assert_eq!(plan.headers["x-b"], "2");
        assert!(matches!(plan.terminal, Terminal::Ok));
    }

    #[test]
    fn plan_adds_delays_and_keeps_pace() {
        let b = Behaviour::cut_after(3)
            .paced(Duration::from_millis(2))
            .delayed(Duration::from_millis(1))
            .delayed(Duration::from_millis(1));
        let plan = Plan::from_behaviour(b);
        assert_eq!(plan.delay, Duration::from_millis(2));
        assert_eq!(plan.pace, Some(Duration::from_millis(2)));
        assert!(matches!(plan.terminal, Terminal::Cut(3)));
    }

    #[tokio::test]
    async fn gate_counts_arrivals_and_releases_everyone() {
        let gate = Gate::new();
        let g = gate.clone();
        let waiter = tokio::spawn(async move { g.pass().await });
        gate.wait_for_arrivals(1).await;
        assert_eq!(gate.arrivals(), 1);
        assert!(!waiter.is_finished());
        gate.release();
        waiter.await.unwrap();
        assert!(gate.is_released());
        gate.pass().await; // an open gate does not wait
        assert_eq!(gate.arrivals(), 2);
    }
}

//! Reading a request header within the host's deadline and caps, and answering a request
//! refused there.

use llmgate::{raw_answer, HostError, HttpLimits};
use pingora_core::apps::ReusedHttpStream;
use pingora_core::protocols::http::ServerSession;

use super::conn::ConnState;
use super::error::header_error;
use super::write_response;

/// How reading a request header ended.
pub(super) enum Header {
    /// Read and within the caps.
    Read,
    /// The client left (or sent nothing before the deadline): close without an answer.
    Closed,
    /// Answer this, then close.
    Refused(HostError),
}

/// Read the request header within the header deadline and caps. `conn` is `None` on HTTP/2
/// (its header is already read) and on streams the host did not wrap.
pub(super) async fn read_header(
    session: &mut ServerSession,
    conn: Option<&ConnState>,
    limits: &HttpLimits,
) -> Header {
    let Some(conn) = conn else {
        return match session.read_request().await {
            Ok(true) => within_caps(session, limits),
            Ok(false) => Header::Closed,
            Err(e) => {
                tracing::debug!(error = %e, "failed to read the request header");
                Header::Closed
            }
        };
    };
    let seen = conn.received();
    conn.start_header(limits.max_header_bytes);
    // From the accept on a new connection; from the first byte of the next request on a
    // kept-alive one (waiting for it is bounded by the keep-alive timeout).
    let deadline = async {
        if seen > 0 {
            conn.received_more_than(seen).await;
        }
        tokio::time::sleep(limits.request_header_timeout).await;
    };
    let read = tokio::select! {
        biased;
        read = session.read_request() => Some(read),
        () = deadline => None,
    };
    conn.end_header();
    match read {
        Some(Ok(true)) => within_caps(session, limits),
        Some(Ok(false)) => Header::Closed,
        None if conn.received() > seen => {
            Header::Refused(HostError::HeaderTimeout(limits.request_header_timeout))
        }
        None => Header::Closed,
        Some(Err(_)) if conn.header_over_budget() => {
            Header::Refused(HostError::HeaderTooLarge(limits.max_header_bytes))
        }
        Some(Err(e)) if *e.etype() == pingora_core::ErrorType::ReadError => {
            tracing::debug!(error = %e, "failed to read the request header");
            Header::Closed
        }
        Some(Err(e)) => Header::Refused(header_error(
            &e,
            limits.max_header_bytes,
            limits.max_headers,
        )),
    }
}

/// Answer `error` to a request whose header could not be read (or broke a cap), then close.
pub(super) async fn refuse(
    mut session: ServerSession,
    conn: Option<&ConnState>,
    error: &HostError,
) -> Option<ReusedHttpStream> {
    tracing::debug!(%error, "request refused at its header");
    match conn {
        // Pingora's HTTP/1 session may hold no request to answer: write under it.
        Some(conn) => {
            conn.answer_on_close(raw_answer(error, true));
            session.shutdown().await;
        }
        None => {
            session.set_keepalive(None);
            let _ = write_response(&mut session, error.to_response(), false).await;
        }
    }
    None
}

/// A header Pingora read, against `llmgate_max_header_bytes` and `llmgate_max_headers`.
fn within_caps(session: &ServerSession, limits: &HttpLimits) -> Header {
    if let Some(h1) = session.as_http1() {
        if h1.get_headers_raw_bytes().len() > limits.max_header_bytes {
            return Header::Refused(HostError::HeaderTooLarge(limits.max_header_bytes));
        }
    }
    if session.req_header().headers.len() > limits.max_headers {
        return Header::Refused(HostError::TooManyHeaders(limits.max_headers));
    }
    Header::Read
}

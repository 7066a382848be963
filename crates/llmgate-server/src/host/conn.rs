//! [`Conn`]: the client's transport, wrapped so the host can bound what Pingora reads from it.
//!
//! Pingora reads the request header inside `read_request` and keeps what it read to itself, and
//! its HTTP/1 session cannot write a response once reading the header failed. The wrapper
//! gives the host what it needs for that, through a [`ConnState`] shared with it:
//!
//! - a count of the bytes received, so a header deadline can start at the first byte of a
//!   kept-alive connection's next request and the host knows whether anything arrived (a 408)
//!   or nothing did (a silent close);
//! - a byte budget while a header is read: once more than the cap has arrived and Pingora asks
//!   for more (so the header is still incomplete), the read fails and the host answers 431,
//!   instead of Pingora buffering up to its own 1 MiB per connection;
//! - an answer to write when the connection is shut down, and a lingering close: after an
//!   error answer, the write side is shut (FIN) and what the client still sends is read and
//!   dropped for a moment, so the kernel does not reset the connection (which can destroy the
//!   answer before the client reads it) because unread bytes were left behind.
//!
//! Everything else is passed through to the wrapped stream unchanged.

use std::fmt;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::tls::TlsRef;
use pingora_core::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Sleep;

/// The longest a lingering close reads what the client still sends.
const LINGER_FOR: Duration = Duration::from_secs(2);
/// The longest a connection refused at the cap lingers: it must cost almost nothing.
const REFUSED_LINGER_FOR: Duration = Duration::from_millis(250);
/// The most a lingering close reads and drops.
const LINGER_BYTES: usize = 1024 * 1024;
/// No header being read: no byte budget.
const NO_BUDGET: u64 = u64::MAX;

/// What the host and the wrapped stream share about one connection.
#[derive(Default)]
pub(crate) struct ConnState {
    /// Bytes received on the connection so far.
    received: AtomicU64,
    /// While a header is read: `received` may not pass this before another read is refused.
    budget: AtomicU64,
    /// A read was refused because the header passed its budget.
    over_budget: AtomicBool,
    /// The host waits for the next byte.
    waiting: AtomicBool,
    arrived: Notify,
    /// The answer to write before the connection closes.
    reply: OnceLock<Bytes>,
    /// Close with a lingering read (after an error answer).
    linger: AtomicBool,
}

impl fmt::Debug for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnState")
            .field("received", &self.received())
            .finish_non_exhaustive()
    }
}

impl ConnState {
    /// Bytes received on the connection so far.
    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Acquire)
    }

    /// A header is read from now on: refuse to read more once more than `max` bytes arrived
    /// from now on and the header is still incomplete.
    pub(crate) fn start_header(&self, max: usize) {
        let max = u64::try_from(max).unwrap_or(u64::MAX);
        self.over_budget.store(false, Ordering::Release);
        self.budget
            .store(self.received().saturating_add(max), Ordering::Release);
    }

    /// The header is read (or given up on): no budget any more.
    pub(crate) fn end_header(&self) {
        self.budget.store(NO_BUDGET, Ordering::Release);
    }

    /// Whether a read was refused because the header grew past its budget.
    pub(crate) fn header_over_budget(&self) -> bool {
        self.over_budget.load(Ordering::Acquire)
    }

    /// Resolves once more than `seen` bytes have been received.
    pub(crate) async fn received_more_than(&self, seen: u64) {
        loop {
            let notified = self.arrived.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            self.waiting.store(true, Ordering::Release);
            if self.received() > seen {
                return;
            }
            notified.await;
        }
    }

    /// Write `answer` when the connection is shut down, then close it lingering.
    pub(crate) fn answer_on_close(&self, answer: Bytes) {
        let _ = self.reply.set(answer);
        self.linger_on_close();
    }

    /// Close the connection lingering: the client may still be sending.
    pub(crate) fn linger_on_close(&self) {
        self.linger.store(true, Ordering::Release);
    }

    fn note_received(&self, n: usize) {
        self.received.fetch_add(n as u64, Ordering::AcqRel);
        if self.waiting.swap(false, Ordering::AcqRel) {
            self.arrived.notify_one();
        }
    }

    /// Whether another read must be refused: the header is incomplete and over its budget.
    fn refuse_read(&self) -> bool {
        let budget = self.budget.load(Ordering::Acquire);
        if budget != NO_BUDGET && self.received() > budget {
            self.over_budget.store(true, Ordering::Release);
            return true;
        }
        false
    }
}

/// Where a closing connection is.
enum Closing {
    /// Not closing.
    Open,
    /// Writing the answer, from this offset.
    Answer(usize),
    Flush,
    /// Sending FIN.
    ShutWrite,
    /// Reading and dropping what the client still sends.
    Linger {
        until: Pin<Box<Sleep>>,
        left: usize,
    },
    Done,
}

/// A client connection's stream with the host's [`ConnState`] beside it.
pub(crate) struct Conn {
    inner: Stream,
    state: Arc<ConnState>,
    closing: Closing,
    /// How long a lingering close lasts at most.
    linger_for: Duration,
    /// How long a peek (h2c detection) may wait for the client's first bytes.
    peek_timeout: Duration,
}

impl Conn {
    /// Wrap `inner`; the host finds `state` again with [`Conn::state_of`].
    pub(crate) fn new(inner: Stream, peek_timeout: Duration) -> Self {
        Self {
            inner,
            state: Arc::new(ConnState {
                budget: AtomicU64::new(NO_BUDGET),
                ..ConnState::default()
            }),
            closing: Closing::Open,
            linger_for: LINGER_FOR,
            peek_timeout,
        }
    }

    /// A connection refused before anything is read from it: `answer` is written when it is
    /// shut down, and it lingers only briefly.
    pub(crate) fn refused(inner: Stream, answer: Bytes) -> Self {
        let mut conn = Self::new(inner, Duration::ZERO);
        conn.linger_for = REFUSED_LINGER_FOR;
        conn.state.answer_on_close(answer);
        conn
    }

    /// The state of the connection under `stream`, when it is a [`Conn`].
    pub(crate) fn state_of(stream: &Stream) -> Option<Arc<ConnState>> {
        stream
            .as_any()
            .downcast_ref::<Conn>()
            .map(|conn| conn.state.clone())
    }

    /// Write the answer, shut the write side, linger; each step once.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            self.closing = match &mut self.closing {
                Closing::Open => match self.state.reply.get() {
                    Some(_) => Closing::Answer(0),
                    None => Closing::Flush,
                },
                Closing::Answer(at) => {
                    let answer = self.state.reply.get().map_or(&[][..], |b| &b[..]);
                    if *at >= answer.len() {
                        Closing::Flush
                    } else {
                        match ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*at..])) {
                            Ok(0) | Err(_) => Closing::Done,
                            Ok(n) => Closing::Answer(*at + n),
                        }
                    }
                }
                Closing::Flush => match ready!(Pin::new(&mut self.inner).poll_flush(cx)) {
                    Ok(()) => Closing::ShutWrite,
                    Err(_) => Closing::Done,
                },
                Closing::ShutWrite => {
                    let shut = ready!(Pin::new(&mut self.inner).poll_shutdown(cx));
                    if shut.is_ok() && self.state.linger.load(Ordering::Acquire) {
                        Closing::Linger {
                            until: Box::pin(tokio::time::sleep(self.linger_for)),
                            left: LINGER_BYTES,
                        }
                    } else {
                        Closing::Done
                    }
                }
                Closing::Linger { until, left } => {
                    if until.as_mut().poll(cx).is_ready() {
                        Closing::Done
                    } else {
                        let mut scratch = [0u8; 4096];
                        let mut buf = ReadBuf::new(&mut scratch);
                        match ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf)) {
                            Ok(()) if !buf.filled().is_empty() && buf.filled().len() < *left => {
                                *left -= buf.filled().len();
                                continue;
                            }
                            _ => Closing::Done,
                        }
                    }
                }
                Closing::Done => return Poll::Ready(Ok(())),
            };
        }
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("inner", &self.inner)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.state.refuse_read() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request header larger than llmgate_max_header_bytes",
            )));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            this.state.note_received(read);
        }
        polled
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_close(cx)
    }
}

#[async_trait]
impl Shutdown for Conn {
    async fn shutdown(&mut self) {
        let _ = std::future::poll_fn(|cx| self.poll_close(cx)).await;
    }
}

impl UniqueID for Conn {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Conn {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora_core::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for Conn {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for Conn {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for Conn {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for Conn {
    /// Pingora peeks a new connection for the HTTP/2 preface (with h2c on) and waits for it
    /// without a deadline: bound the wait by the header deadline.
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        match tokio::time::timeout(self.peek_timeout, self.inner.try_peek(buf)).await {
            Ok(peeked) => peeked,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request within llmgate_request_header_timeout",
            )),
        }
    }
}

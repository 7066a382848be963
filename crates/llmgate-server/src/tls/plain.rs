//! [`PlainHttpAnswer`]: a 400 for a plain-HTTP request sent to the TLS port.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use llmgate::HostError;
use pingora_core::listeners::PreTlsProcess;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::Peek as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// After the 400 on the TLS port, how long what the client still sends is read and dropped, so
/// the kernel does not reset the connection (and destroy the answer) over unread bytes.
const LINGER_FOR: Duration = Duration::from_secs(2);
/// The most read and dropped in that time.
const LINGER_BYTES: usize = 64 * 1024;

/// Pingora's pre-TLS hook on the TLS listener: when a connection's first byte is an ASCII
/// letter (an HTTP method) instead of a TLS record type, it answers a 400 in OpenAI's error shape
/// ("this port speaks HTTPS"), closes the connection and fails the handshake. Anything else is
/// left to rustls. The wait for the first byte is bounded by Pingora's handshake timeout (60 s),
/// as the handshake itself is.
#[derive(Debug, Default)]
pub struct PlainHttpAnswer;

#[async_trait]
impl PreTlsProcess for PlainHttpAnswer {
    async fn process(&self, stream: &mut L4Stream) -> pingora_core::Result<()> {
        let mut first = [0u8; 1];
        // Closed before a byte: the handshake reports it as before.
        if stream.try_peek(&mut first).await.is_err() || !first[0].is_ascii_alphabetic() {
            return Ok(());
        }
        let answer = llmgate::raw_answer(
            &HostError::Malformed(
                "this port speaks HTTPS (TLS), and a plain HTTP request was sent to it: use \
                 https://"
                    .into(),
            ),
            true,
        );
        answer_and_close(stream, answer).await;
        pingora_core::Error::e_explain(
            pingora_core::ErrorType::InvalidHTTPHeader,
            "a plain HTTP request on the TLS port (answered 400)",
        )
    }
}

/// Write `answer`, shut the write side, and read and drop what the client still sends for a
/// moment (a lingering close). Failures end it early: the connection is dropped either way.
async fn answer_and_close(stream: &mut L4Stream, answer: Bytes) {
    if stream.write_all(&answer).await.is_err() || stream.flush().await.is_err() {
        return;
    }
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut scratch = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while let Ok(n @ 1..) = stream.read(&mut scratch).await {
            left = left.saturating_sub(n);
            if left == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_FOR, drain).await;
}

//! A stored answer: what it is (JSON or an event stream), when it was stored, and its bytes.
//!
//! Layout (all backends store these bytes as they are):
//!
//! ```text
//! byte 0      format version (1)
//! byte 1      kind: 0 = JSON body, 1 = event stream (SSE, ending in `data: [DONE]`)
//! bytes 2..10 stored at, Unix milliseconds, big-endian
//! bytes 10..  the response body exactly as the client received it
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

const VERSION: u8 = 1;
const HEADER: usize = 10;

/// What a stored body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An `application/json` body.
    Json,
    /// A `text/event-stream` body.
    Sse,
}

/// A decoded entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) kind: Kind,
    pub(crate) stored_at_ms: u64,
    pub(crate) body: Bytes,
}

impl Entry {
    /// Encodes `body` (given as the frames it passed in) as stored now.
    pub(crate) fn encode(kind: Kind, frames: &[Bytes], len: usize) -> Bytes {
        let mut out = BytesMut::with_capacity(HEADER + len);
        out.put_u8(VERSION);
        out.put_u8(match kind {
            Kind::Json => 0,
            Kind::Sse => 1,
        });
        out.put_u64(now_ms());
        for f in frames {
            out.put_slice(f);
        }
        out.freeze()
    }

    /// Decodes stored bytes; `None` for anything this version did not write.
    pub(crate) fn decode(stored: Bytes) -> Option<Entry> {
        if stored.len() < HEADER || stored[0] != VERSION {
            return None;
        }
        let kind = match stored[1] {
            0 => Kind::Json,
            1 => Kind::Sse,
            _ => return None,
        };
        let mut at = [0u8; 8];
        at.copy_from_slice(&stored[2..HEADER]);
        Some(Entry {
            kind,
            stored_at_ms: u64::from_be_bytes(at),
            body: stored.slice(HEADER..),
        })
    }

    /// How old the entry is (zero if the clocks disagree).
    pub(crate) fn age(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.stored_at_ms))
    }
}

/// Wall-clock milliseconds: entries are shared between instances through Redis, so their time
/// must be comparable across processes.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let frames = [
            Bytes::from_static(b"data: 1\n\n"),
            Bytes::from_static(b"data: [DONE]\n\n"),
        ];
        let stored = Entry::encode(Kind::Sse, &frames, 23);
        let e = Entry::decode(stored).unwrap();
        assert_eq!(e.kind, Kind::Sse);
        assert_eq!(&e.body[..], b"data: 1\n\ndata: [DONE]\n\n");
        assert!(e.age() < Duration::from_secs(5));
        assert_eq!(Entry::decode(Bytes::from_static(b"\x02\x00........")), None);
        assert_eq!(Entry::decode(Bytes::from_static(b"\x01")), None);
    }
}

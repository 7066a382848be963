//! Newline-delimited JSON framing (Ollama's stream): one [`RawEvent::Line`] per line.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use pin_project_lite::pin_project;

use super::relay::Broken;
use super::RawEvent;

pin_project! {
    /// Splits a byte stream into lines; blank lines are skipped, a last line without a newline
    /// is still a line. A line longer than the limit ends the stream with
    /// [`Broken::TooLarge`].
    pub(crate) struct Lines<S> {
        #[pin]
        inner: S,
        buf: BytesMut,
        done: bool,
        limit: usize,
    }
}

impl<S> Lines<S> {
    pub(crate) fn new(inner: S, limit: usize) -> Self {
        Lines {
            inner,
            buf: BytesMut::new(),
            done: false,
            limit,
        }
    }
}

fn take_line(buf: &mut BytesMut) -> Option<Bytes> {
    loop {
        let i = buf.iter().position(|b| *b == b'\n')?;
        let mut line = buf.split_to(i + 1).freeze();
        line.truncate(i);
        if line.last() == Some(&b'\r') {
            line.truncate(i - 1);
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            return Some(line);
        }
    }
}

impl<S, E> Stream for Lines<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    type Item = Result<RawEvent, Broken>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if let Some(line) = take_line(this.buf) {
                return Poll::Ready(Some(Ok(RawEvent::Line(line))));
            }
            if this.buf.len() > *this.limit {
                *this.done = true;
                this.buf.clear();
                return Poll::Ready(Some(Err(Broken::TooLarge)));
            }
            if *this.done {
                let rest = this.buf.split().freeze();
                if rest.iter().all(u8::is_ascii_whitespace) {
                    return Poll::Ready(None);
                }
                return Poll::Ready(Some(Ok(RawEvent::Line(rest))));
            }
            match ready!(this.inner.as_mut().poll_next(cx)) {
                Some(Ok(mut data)) => {
                    while data.has_remaining() {
                        let chunk = data.chunk();
                        this.buf.extend_from_slice(chunk);
                        let n = chunk.len();
                        data.advance(n);
                    }
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(Broken::Cause(e.to_string())))),
                None => *this.done = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{stream, StreamExt};

    #[tokio::test]
    async fn splits_lines_across_reads() {
        let parts: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"{\"a\":1}\n{\"b\"")),
            Ok(Bytes::from_static(b":2}\r\n\n")),
            Ok(Bytes::from_static(b"{\"c\":3}")),
        ];
        let lines: Vec<_> = Lines::new(stream::iter(parts), 1024)
            .map(|l| match l.unwrap() {
                RawEvent::Line(b) => String::from_utf8(b.to_vec()).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect()
            .await;
        assert_eq!(lines, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]);
    }

    #[tokio::test]
    async fn an_endless_line_ends_the_stream_at_the_limit() {
        let endless =
            stream::iter((0..100).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 100]))));
        let got: Vec<_> = Lines::new(endless, 1000).collect().await;
        assert_eq!(got, [Err(Broken::TooLarge)]);
    }
}

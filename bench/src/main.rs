//! `bench-upstream`: a mock OpenAI upstream fast enough to stay out of the benchmark's way.
//!
//! Run with: `cargo run --release -p llmgate-bench --bin bench-upstream -- --port 0 --threads 1`
//!
//! Once bound it prints `listening on http://ADDR` on stdout (bench/run reads the port from it).
//! It speaks HTTP/1.1 with keep-alive and answers:
//! - `POST /v1/chat/completions` (and `/chat/completions`): a fixed `chat.completion`, or with
//!   `"stream": true` in the body an SSE stream of 8 `chat.completion.chunk` events
//!   (`--stream-chunks N` for N), a usage chunk
//!   when `"include_usage": true`, then `data: [DONE]`. The body is not parsed, only searched.
//!   With `--stream-interval-ms N` the first event leaves at once and each later one N ms after
//!   the one before (a slow model: `bench/streams` holds many streams open with it).
//! - `GET /v1/models` (and `/models`): one model, `bench-model`.
//!
//! Every body is built once at start-up; a response copies no bytes.

mod accept;
mod body;
mod responses;

use std::io::{self, Write};
use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;
use hyper::service::service_fn;
use tokio::net::TcpListener;

use responses::Answers;

/// A fast mock OpenAI upstream for llmgate's benchmark.
#[derive(Debug, Parser)]
#[command(name = "bench-upstream", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on; 0 picks a free one (the bound address is printed).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Worker threads of the (multi-thread) tokio runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Chunks in a streamed answer (at least 3), before the usage chunk and `[DONE]`.
    #[arg(long, default_value_t = responses::DEFAULT_CHUNKS)]
    stream_chunks: usize,
    /// Milliseconds between two events of a stream (0: all at once).
    #[arg(long, default_value_t = 0)]
    stream_interval_ms: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind((args.host, args.port)).await?;
        let mut out = io::stdout().lock();
        writeln!(out, "listening on http://{}", listener.local_addr()?)?;
        out.flush()?;
        drop(out);
        let interval = Duration::from_millis(args.stream_interval_ms);
        serve(listener, Answers::leak_with(args.stream_chunks, interval)).await
    })
}

/// Serves `answers` on `listener` forever.
async fn serve(listener: TcpListener, answers: &'static Answers) -> anyhow::Result<()> {
    accept::serve(listener, "bench-upstream", move || {
        service_fn(move |request| answers.answer(request))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    use http::Request;
    use http_body_util::{BodyExt, Full};
    use hyper::client::conn::http1 as client;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpStream;

    #[tokio::test]
    async fn serves_both_shapes_over_one_keep_alive_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Answers::leak()));

        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = client::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);

        let post = |body: &'static str| {
            Request::post("/v1/chat/completions")
                .header("host", "bench")
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap()
        };

        let response = sender.send_request(post(r#"{"model":"m"}"#)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key(CONTENT_LENGTH));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(body.starts_with(br#"{"id":"chatcmpl-bench","object":"chat.completion""#));

        let response = sender
            .send_request(post(r#"{"model":"m","stream":true}"#))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[TRANSFER_ENCODING], "chunked");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(body.ends_with(b"data: [DONE]\n\n"));
    }
}

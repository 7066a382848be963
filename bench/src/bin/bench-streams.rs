//! `bench-streams`: holds many streaming requests open at once (one HTTP/1.1 connection each)
//! and reports the time to first token under that load and, given `--pid`, that process's
//! resident memory before, during and after. `bench/streams` drives it.
//!
//! Run with: `cargo run --release -p llmgate-bench --bin bench-streams -- --url URL --key KEY
//! --body JSON --streams 1000 --pid PID`
//!
//! Every stream is started within `--ramp-ms` (evenly spread), each on its own connection; the
//! time to first token of a stream runs from its connect to the first body bytes. A stream
//! counts as ok when it answered 200 and its last 8 KiB hold `--end-marker`. The
//! last line on stdout is `STREAMS_RESULT key=value ...` (times in µs, memory in KiB).

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Holds many streams open and measures them.
#[derive(Debug, Parser)]
#[command(name = "bench-streams", version)]
struct Args {
    /// The URL to POST to (http only).
    #[arg(long)]
    url: http::Uri,
    /// Bearer token.
    #[arg(long)]
    key: String,
    /// The request body (JSON, with `"stream": true`).
    #[arg(long)]
    body: String,
    /// Streams to hold open at once.
    #[arg(long, default_value_t = 1000)]
    streams: usize,
    /// Start the streams evenly over this many milliseconds.
    #[arg(long, default_value_t = 1000)]
    ramp_ms: u64,
    /// The text a complete stream has in its last 8 KiB.
    #[arg(long, default_value = "[DONE]")]
    end_marker: String,
    /// A process whose resident memory to sample (every 100 ms) while the streams run.
    #[arg(long)]
    pid: Option<u32>,
    /// Seconds to wait after the last stream ended before reading the idle memory.
    #[arg(long, default_value_t = 5)]
    idle_after: u64,
    /// Give up on a stream after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// What the streams saw, shared by their tasks.
#[derive(Debug, Default)]
struct Tally {
    open: AtomicUsize,
    max_open: AtomicUsize,
    ok: AtomicUsize,
    first_tokens: Mutex<Vec<Duration>>,
    errors: Mutex<Vec<String>>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let host = args.url.host().context("the URL has no host")?.to_owned();
    let addr = format!("{host}:{}", args.url.port_u16().unwrap_or(80));
    let rss_before = args.pid.and_then(|pid| memory(pid, "VmRSS"));
    let tally = Arc::new(Tally::default());
    let request = Arc::new((
        args.url.clone(),
        args.key.clone(),
        Bytes::from(args.body.clone()),
    ));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = args.pid.map(|pid| tokio::spawn(sample(pid, peak.clone())));
    let start = Instant::now();
    let spacing = Duration::from_millis(args.ramp_ms) / u32::try_from(args.streams.max(1))?;
    let mut tasks = Vec::with_capacity(args.streams);
    for i in 0..args.streams {
        let at = tokio::time::Instant::from_std(start + spacing * u32::try_from(i)?);
        let (tally, request, addr) = (tally.clone(), request.clone(), addr.clone());
        let (marker, limit) = (args.end_marker.clone(), Duration::from_secs(args.timeout));
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let outcome = tokio::time::timeout(limit, one(&addr, &request, &marker, &tally)).await;
            let error = match outcome {
                Ok(Ok(())) => {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(Err(e)) => format!("{e:#}"),
                Err(_) => format!("no end within {} s", limit.as_secs()),
            };
            lock(&tally.errors).push(error);
        }));
    }
    for task in tasks {
        task.await?;
    }
    let elapsed = start.elapsed();
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    tokio::time::sleep(Duration::from_secs(args.idle_after)).await;
    let idle = args.pid.and_then(|pid| memory(pid, "VmRSS"));
    let hwm = args.pid.and_then(|pid| memory(pid, "VmHWM"));
    report(
        &args,
        &tally,
        elapsed,
        [rss_before, Some(peak.load(Ordering::Relaxed)), idle, hwm],
    )
}

/// The data behind `mutex`, even when a task panicked holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One stream on its own connection: connect, POST, read to the end.
async fn one(
    addr: &str,
    (url, key, body): &(http::Uri, String, Bytes),
    marker: &str,
    tally: &Tally,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let tcp = TcpStream::connect(addr).await.context("connect")?;
    tcp.set_nodelay(true)?;
    let (mut sender, connection) = http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(connection);
    let request = http::Request::post(url.path())
        .header(
            http::header::HOST,
            url.authority().map_or("", |a| a.as_str()),
        )
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Full::new(body.clone()))?;
    let response = sender.send_request(request).await.context("request")?;
    let status = response.status();
    let open = tally.open.fetch_add(1, Ordering::Relaxed) + 1;
    tally.max_open.fetch_max(open, Ordering::Relaxed);
    let read = read_stream(response.into_body(), start, tally).await;
    tally.open.fetch_sub(1, Ordering::Relaxed);
    let tail = read?;
    let end = String::from_utf8_lossy(&tail[tail.len().saturating_sub(300)..]).into_owned();
    anyhow::ensure!(status == 200, "HTTP {status}: {end}");
    anyhow::ensure!(
        tail.windows(marker.len()).any(|w| w == marker.as_bytes()),
        "the stream did not end with {marker}: ...{end}"
    );
    Ok(())
}

/// Reads the body to its end; records the first bytes' arrival; returns the last 8 KiB.
async fn read_stream(
    mut body: hyper::body::Incoming,
    start: Instant,
    tally: &Tally,
) -> anyhow::Result<Vec<u8>> {
    let mut first = true;
    let mut tail = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.context("reading the stream")?.into_data() else {
            continue;
        };
        if first && !data.is_empty() {
            first = false;
            lock(&tally.first_tokens).push(start.elapsed());
        }
        tail.extend_from_slice(&data);
        let cut = tail.len().saturating_sub(8192);
        tail.drain(..cut);
    }
    Ok(tail)
}

/// Samples `pid`'s resident memory every 100 ms, keeping the largest in `peak` (KiB).
async fn sample(pid: u32, peak: Arc<AtomicUsize>) {
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        every.tick().await;
        if let Some(kib) = memory(pid, "VmRSS") {
            peak.fetch_max(kib, Ordering::Relaxed);
        }
    }
}

/// A `/proc/PID/status` memory line (`VmRSS`, `VmHWM`) in KiB.
fn memory(pid: u32, field: &str) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Prints the summary on stderr and the `STREAMS_RESULT` line on stdout.
fn report(
    args: &Args,
    tally: &Tally,
    elapsed: Duration,
    rss: [Option<usize>; 4],
) -> anyhow::Result<()> {
    let mut firsts = lock(&tally.first_tokens).clone();
    firsts.sort();
    let pct = |p: usize| {
        firsts
            .get((firsts.len() * p / 100).min(firsts.len().saturating_sub(1)))
            .map_or(0, |d| d.as_micros())
    };
    let errors = lock(&tally.errors);
    if let Some(first) = errors.first() {
        eprintln!(
            "bench-streams: {} streams failed; the first: {first}",
            errors.len()
        );
    }
    let kib = |v: Option<usize>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(-1));
    writeln!(
        std::io::stdout().lock(),
        "STREAMS_RESULT streams={} ok={} failed={} max_open={} ttft_p50_us={} ttft_p99_us={} ttft_max_us={} elapsed_ms={} rss_before_kib={} rss_peak_kib={} rss_idle_kib={} rss_hwm_kib={}",
        args.streams,
        tally.ok.load(Ordering::Relaxed),
        errors.len(),
        tally.max_open.load(Ordering::Relaxed),
        pct(50),
        pct(99),
        firsts.last().map_or(0, |d| d.as_micros()),
        elapsed.as_millis(),
        kib(rss[0]),
        kib(rss[1]),
        kib(rss[2]),
        kib(rss[3]),
    )?;
    Ok(())
}

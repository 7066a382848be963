//! The clients of `upgrade.rs`: each records every whole answer with the process that served
//! it, and every connection error or failed answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;

/// The reply of the old process's upstream (one word: a stream sends it as one piece).
pub const OLD: &str = "answered-by-old";
/// The reply of the new process's upstream.
pub const NEW: &str = "answered-by-new";
/// One kept-alive client of the load waits this long between requests: its connection to the
/// old process is idle when the old process's requests have drained (about 10 s after
/// SIGQUIT), and the old process must wait for its next request to close it.
pub const IDLE_CLIENT_THINKS: Duration = Duration::from_secs(20);

/// One whole answer: who served it, when its request was sent and its answer ended, and how.
#[derive(Debug)]
pub struct Answer {
    pub by: &'static str,
    pub sent: Instant,
    pub done: Instant,
    pub fresh_connection: bool,
    pub stream: bool,
}

/// What the clients saw.
#[derive(Default)]
pub struct Tally {
    pub answers: Vec<Answer>,
    pub errors: Vec<String>,
}

pub type Shared = Arc<Mutex<Tally>>;

pub fn error(tally: &Shared, what: String) {
    tally.lock().unwrap().errors.push(what);
}

pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

pub fn chat(key: &str, stream: bool) -> Request<Full<Bytes>> {
    let body = json!({"model": "chat", "stream": stream,
        "messages": [{"role": "user", "content": "hi"}]});
    Request::post("/v1/chat/completions")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Reads the whole answer and records who served it, or an error if it is not a whole `200`
/// (a stream must end with `data: [DONE]`).
pub async fn record(tally: &Shared, response: Response<Incoming>, sent: Instant, fresh: bool) {
    let status = response.status();
    let text = match response.into_body().collect().await {
        Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        Err(e) => return error(tally, format!("body cut: {e}")),
    };
    let stream = text.starts_with("data:");
    let by = match (text.contains(OLD), text.contains(NEW)) {
        (true, false) => OLD,
        (false, true) => NEW,
        _ => return error(tally, format!("{status}: {text}")),
    };
    if status != StatusCode::OK || stream && !text.ends_with("data: [DONE]\n\n") {
        return error(tally, format!("{status}: {text}"));
    }
    let answer = Answer {
        by,
        sent,
        done: Instant::now(),
        fresh_connection: fresh,
        stream,
    };
    tally.lock().unwrap().answers.push(answer);
}

/// Sleeps `think`, or less if `stop` is set meanwhile.
async fn pause(think: Duration, stop: &AtomicBool) {
    let end = Instant::now() + think;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(think.min(Duration::from_millis(100))).await;
    }
}

/// Requests on one kept-alive connection, `think` apart; a new connection only after an answer
/// that said `Connection: close`. Anything else that ends a connection is an error.
async fn keep_alive_client(
    addr: SocketAddr,
    key: String,
    think: Duration,
    tally: Shared,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let mut sender = match connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                error(&tally, e);
                continue;
            }
        };
        let mut fresh = true;
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = sender.ready().await {
                error(&tally, format!("kept-alive connection closed unasked: {e}"));
                break;
            }
            let sent = Instant::now();
            let response = match sender.send_request(chat(&key, false)).await {
                Ok(r) => r,
                Err(e) => {
                    error(&tally, format!("request on a kept-alive connection: {e}"));
                    break;
                }
            };
            let close = response
                .headers()
                .get("connection")
                .is_some_and(|v| v == "close");
            record(&tally, response, sent, fresh).await;
            fresh = false;
            if close {
                break;
            }
            pause(think, &stop).await;
        }
    }
}

/// One request per new connection: a chat answer, or with `stream` a whole stream.
async fn fresh_client(
    addr: SocketAddr,
    key: String,
    stream: bool,
    tally: Shared,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        match connect(addr).await {
            Ok(mut sender) => match sender.send_request(chat(&key, stream)).await {
                Ok(response) => record(&tally, response, sent, true).await,
                Err(e) => error(&tally, format!("request on a new connection: {e}")),
            },
            Err(e) => error(&tally, e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The load: 6 kept-alive clients, 2 clients opening a connection per request, 4 clients each
/// holding a stream at all times, and one kept-alive client idle for [`IDLE_CLIENT_THINKS`]
/// between two requests. Stops when `stop` is set.
pub fn start_load(
    addr: SocketAddr,
    key: &str,
    tally: &Shared,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let thinks = [Duration::from_millis(10); 6];
    for think in thinks.into_iter().chain([IDLE_CLIENT_THINKS]) {
        let client = keep_alive_client(addr, key.to_owned(), think, tally.clone(), stop.clone());
        tasks.push(tokio::spawn(client));
    }
    for stream in [false, false, true, true, true, true] {
        let client = fresh_client(addr, key.to_owned(), stream, tally.clone(), stop.clone());
        tasks.push(tokio::spawn(client));
    }
    tasks
}

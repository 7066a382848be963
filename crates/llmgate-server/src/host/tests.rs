//! The host served by Pingora's real listening service on a pre-bound `127.0.0.1:0` socket,
//! driven by hyper clients.

use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use http::header::CONTENT_TYPE;
use http_body_util::channel::Channel;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pingora_core::server::{Fds, ListenFds};
use pingora_core::services::listening;
use pingora_core::services::Service as _;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::*;

type StreamBody = Channel<Bytes, std::io::Error>;

/// Serve `host` in this runtime; returns its address and the shutdown switch.
fn serve<S>(host: Host<S>) -> (SocketAddr, watch::Sender<bool>)
where
    Host<S>: ServerApp + Send + Sync + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    // Hand Pingora the bound socket as if inherited from an upgrade: no port race.
    let fds = ListenFds::new(Fds::new().into());
    fds.lock().add(addr.to_string(), listener.into_raw_fd());
    let mut service = listening::Service::new("test".to_string(), host);
    service.add_tcp(&addr.to_string());
    let (shutdown, watch) = watch::channel(false);
    tokio::spawn(async move { service.start_service(Some(fds), watch, 1).await });
    (addr, shutdown)
}

async fn http1(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

fn post(path: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "llmgate.test")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

async fn text(response: Response<Incoming>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Echoes the method, path, body and peer address; `x-seen-peer` says whether it had one.
fn echo() -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + Sync
       + 'static {
    tower::service_fn(|request: Request<Full<Bytes>>| async move {
        let peer = request.extensions().get::<SocketAddr>().copied();
        let head = format!("{} {} ", request.method(), request.uri().path());
        let body = request.into_body().collect().await?.to_bytes();
        let mut response = Response::new(Full::new(Bytes::from(format!(
            "{head}{}",
            String::from_utf8_lossy(&body)
        ))));
        if let Some(peer) = peer {
            let value = HeaderValue::from_str(&peer.to_string()).unwrap();
            response.headers_mut().insert("x-seen-peer", value);
        }
        Ok::<_, Infallible>(response)
    })
}

#[tokio::test]
async fn plain_response_has_content_length_and_the_peer_address() {
    let (addr, _shutdown) = serve(Host::new(echo(), 1024));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);

    let response = sender
        .send_request(post("/v1/echo", "{\"a\":1}"))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.headers()["content-length"], "21");
    assert!(response.headers().get("transfer-encoding").is_none());
    assert_eq!(
        response.headers()["x-seen-peer"],
        local.to_string().as_str()
    );
    assert_eq!(text(response).await, "POST /v1/echo {\"a\":1}");
}

#[tokio::test]
async fn keep_alive_serves_two_requests_on_one_connection() {
    let (addr, _shutdown) = serve(Host::new(echo(), 1024));
    let mut sender = http1(addr).await;

    let first = sender.send_request(post("/one", "1")).await.unwrap();
    assert_eq!(first.headers()["connection"], "keep-alive");
    assert_eq!(text(first).await, "POST /one 1");

    sender.ready().await.unwrap();
    let second = sender.send_request(post("/two", "2")).await.unwrap();
    assert_eq!(text(second).await, "POST /two 2");
}

/// A service whose response body is fed by the test through a channel.
fn streaming(
    feed: StreamBody,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<StreamBody>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + Sync
       + 'static {
    let feed = Arc::new(Mutex::new(Some(feed)));
    tower::service_fn(move |_request: Request<Full<Bytes>>| {
        let body = feed.lock().unwrap().take().expect("one request only");
        async move {
            let mut response = Response::new(body);
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            Ok::<_, Infallible>(response)
        }
    })
}

async fn next_data(body: &mut Incoming) -> Bytes {
    let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("a frame within 5 s")
        .expect("a frame, not the end")
        .expect("no body error");
    frame.into_data().unwrap()
}

#[tokio::test]
async fn streamed_body_reaches_the_client_frame_by_frame() {
    let (mut feed, body) = Channel::<Bytes, std::io::Error>::new(4);
    let host = Host::new(streaming(body), 1024);
    let in_flight = host.in_flight();
    let (addr, _shutdown) = serve(host);
    let mut sender = http1(addr).await;

    feed.send_data(Bytes::from_static(b"data: one\n\n"))
        .await
        .unwrap();
    let response = sender.send_request(post("/stream", "{}")).await.unwrap();
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    assert!(response.headers().get("content-length").is_none());
    let mut body = response.into_body();

    // The first event arrives while the service has not finished the body.
    assert_eq!(next_data(&mut body).await, "data: one\n\n");
    assert_eq!(in_flight.count(), 1);

    feed.send_data(Bytes::from_static(b"data: [DONE]\n\n"))
        .await
        .unwrap();
    assert_eq!(next_data(&mut body).await, "data: [DONE]\n\n");
    drop(feed);
    assert!(body.frame().await.is_none(), "the body ends cleanly");

    // The connection is still good for another request.
    sender.ready().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), in_flight.idle())
        .await
        .unwrap();
}

#[tokio::test]
async fn events_already_there_leave_in_one_chunk() {
    let (mut feed, body) = Channel::<Bytes, std::io::Error>::new(4);
    let (addr, _shutdown) = serve(Host::new(streaming(body), 1024));
    let mut sender = http1(addr).await;
    for event in ["data: one\n\n", "data: two\n\n", "data: [DONE]\n\n"] {
        feed.send_data(Bytes::from_static(event.as_bytes()))
            .await
            .unwrap();
    }
    drop(feed);
    let response = sender.send_request(post("/stream", "{}")).await.unwrap();
    let mut body = response.into_body();
    // One chunk on the wire (a write per event would make three).
    assert_eq!(
        next_data(&mut body).await,
        "data: one\n\ndata: two\n\ndata: [DONE]\n\n"
    );
    assert!(body.frame().await.is_none(), "the body ends cleanly");
}

#[tokio::test]
async fn body_error_mid_stream_aborts_the_response() {
    let (mut feed, body) = Channel::<Bytes, std::io::Error>::new(4);
    let (addr, _shutdown) = serve(Host::new(streaming(body), 1024));
    let mut sender = http1(addr).await;

    feed.send_data(Bytes::from_static(b"data: one\n\n"))
        .await
        .unwrap();
    let response = sender.send_request(post("/stream", "{}")).await.unwrap();
    let mut body = response.into_body();
    assert_eq!(next_data(&mut body).await, "data: one\n\n");

    feed.abort(std::io::Error::other("upstream reset"));
    let end = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .unwrap();
    assert!(
        matches!(end, Some(Err(_))),
        "the client must see an incomplete body, got {end:?}"
    );
}

#[tokio::test]
async fn oversize_body_gets_413_without_calling_the_service() {
    let called = Arc::new(AtomicBool::new(false));
    let service = tower::service_fn({
        let called = called.clone();
        move |_request: Request<Full<Bytes>>| {
            called.store(true, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
        }
    });
    let (addr, _shutdown) = serve(Host::new(service, 16));

    // Declared too large by Content-Length.
    let mut sender = http1(addr).await;
    let response = sender
        .send_request(post(
            "/v1/chat/completions",
            "{\"model\":\"a-long-model-name\"}",
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["connection"], "close");
    assert!(response.headers().contains_key("x-llmgate-request-id"));
    assert_eq!(
        text(response).await,
        "{\"error\":{\"message\":\"request body is larger than 16 bytes\",\
         \"type\":\"invalid_request_error\",\"param\":null,\"code\":\"request_too_large\"}}"
    );

    // Found too large while reading a chunked body.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (mut feed, body) = Channel::<Bytes, Infallible>::new(4);
    let request = Request::post("/v1/chat/completions")
        .header("host", "llmgate.test")
        .body(body)
        .unwrap();
    let pending = tokio::spawn(async move { sender.send_request(request).await });
    feed.send_data(Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    feed.send_data(Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    let response = pending.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    assert!(!called.load(Ordering::SeqCst));
}

#[tokio::test]
async fn h2c_streams_too() {
    let (mut feed, body) = Channel::<Bytes, std::io::Error>::new(4);
    let (addr, _shutdown) = serve(Host::new(streaming(body), 1024).h2c(true));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);

    feed.send_data(Bytes::from_static(b"data: one\n\n"))
        .await
        .unwrap();
    let request = Request::post("http://llmgate.test/stream")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    let mut body = response.into_body();
    assert_eq!(next_data(&mut body).await, "data: one\n\n");
    feed.send_data(Bytes::from_static(b"data: [DONE]\n\n"))
        .await
        .unwrap();
    drop(feed);
    assert_eq!(next_data(&mut body).await, "data: [DONE]\n\n");
    // HTTP/2 may end the stream with an empty DATA frame.
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        assert!(data.is_empty(), "unexpected data after the end: {data:?}");
    }
}

#[tokio::test]
async fn a_client_that_leaves_cancels_the_response_body() {
    let (mut feed, body) = Channel::<Bytes, std::io::Error>::new(1);
    let host = Host::new(streaming(body), 1024);
    let in_flight = host.in_flight();
    let (addr, _shutdown) = serve(host);
    let mut sender = http1(addr).await;

    feed.send_data(Bytes::from_static(b"data: one\n\n"))
        .await
        .unwrap();
    let response = sender.send_request(post("/stream", "{}")).await.unwrap();
    let mut body = response.into_body();
    assert_eq!(next_data(&mut body).await, "data: one\n\n");
    drop(body);
    drop(sender);

    // The host stops polling and drops the body: the feed sees its receiver gone.
    tokio::time::timeout(Duration::from_secs(5), async {
        while feed
            .send_data(Bytes::from_static(b"data: more\n\n"))
            .await
            .is_ok()
        {}
    })
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(5), in_flight.idle())
        .await
        .unwrap();
}

/// A request in flight when the server starts shutting down gets `Connection: close`, and its
/// connection is closed after the answer: the client's next request opens a new connection
/// (after an upgrade, to the new process). Before the shutdown the same answer keeps the
/// connection (`keep_alive_serves_two_requests_on_one_connection`).
#[tokio::test]
async fn an_answer_written_while_shutting_down_closes_the_connection() {
    let (release, released) = watch::channel(false);
    let held = tower::service_fn(move |_request: Request<Full<Bytes>>| {
        let mut released = released.clone();
        async move {
            released.wait_for(|r| *r).await.unwrap();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"done"))))
        }
    });
    let host = Host::new(held, 1024);
    let in_flight = host.in_flight();
    let connections = host.open_connections();
    let (addr, shutdown) = serve(host);

    let mut sender = http1(addr).await;
    let answer = tokio::spawn(async move {
        let response = sender.send_request(post("/one", "1")).await.unwrap();
        (response, sender)
    });
    tokio::time::timeout(Duration::from_secs(5), async {
        while in_flight.count() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    shutdown.send(true).unwrap();
    release.send(true).unwrap();

    let (response, mut sender) = answer.await.unwrap();
    assert_eq!(response.headers()["connection"], "close");
    assert_eq!(text(response).await, "done");
    assert!(sender.ready().await.is_err(), "the connection is closed");
    tokio::time::timeout(Duration::from_secs(5), async {
        while connections.count() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
}

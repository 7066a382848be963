//! The layer over a counting fake provider.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use llmgate_core::{
    body, BoxBody, BoxError, CacheStatus, Endpoint, LlmRequest, Principal, VirtualKey,
};
use serde_json::{json, Value};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

use crate::{CacheLayer, LocalStore, Mode};

/// What the fake provider answers next.
#[derive(Clone)]
enum Answer {
    Json(u16, &'static str),
    /// These frames, then the end of the body.
    Sse(Vec<&'static str>),
    /// These frames, then a body error.
    SseBroken(Vec<&'static str>),
}

struct Fake {
    calls: Arc<AtomicUsize>,
    answer: Arc<Mutex<Answer>>,
}

type Svc = tower::util::BoxCloneSyncService<Request<()>, Response<BoxBody>, Infallible>;

fn stack(layer: CacheLayer) -> (Svc, Fake) {
    let calls = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(Mutex::new(Answer::Json(200, r#"{"id":"chatcmpl-1"}"#)));
    let (c, a) = (calls.clone(), answer.clone());
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(move |_req: Request<()>| {
            c.fetch_add(1, Ordering::SeqCst);
            let answer = a.lock().unwrap().clone();
            async move { Ok::<_, Infallible>(respond(answer)) }
        }));
    (Svc::new(svc), Fake { calls, answer })
}

fn respond(answer: Answer) -> Response<BoxBody> {
    let (ct, body) = match answer {
        Answer::Json(status, b) => {
            let mut r = Response::new(body::full(b));
            *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            return r;
        }
        Answer::Sse(frames) => ("text/event-stream", frames_body(frames, false)),
        Answer::SseBroken(frames) => ("text/event-stream", frames_body(frames, true)),
    };
    let mut r = Response::new(body);
    r.headers_mut().insert("content-type", ct.parse().unwrap());
    r
}

fn frames_body(frames: Vec<&'static str>, broken: bool) -> BoxBody {
    let mut items: Vec<Result<Frame<Bytes>, BoxError>> = frames
        .into_iter()
        .map(|f| Ok(Frame::data(Bytes::from_static(f.as_bytes()))))
        .collect();
    if broken {
        items.push(Err("connection reset".into()));
    }
    BoxBody::new(StreamBody::new(futures_util::stream::iter(items)))
}

fn request(endpoint: Endpoint, body: &Value) -> Request<()> {
    let llm = LlmRequest::parse(endpoint, body.to_string().as_bytes()).unwrap();
    let mut req = Request::new(());
    req.extensions_mut().insert(llm);
    req
}

fn chat(content: &str) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": content}]})
}

/// Sends a request, reads the whole body; returns (cache header, status ext, body).
async fn send(svc: &mut Svc, req: Request<()>) -> (Option<String>, Option<CacheStatus>, String) {
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    let header = res
        .headers()
        .get("x-llmgate-cache")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = res.extensions().get::<CacheStatus>().copied();
    let body = res.into_body().collect().await.map(|b| b.to_bytes());
    let body = body
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .unwrap_or_else(|e| format!("ERR {e}"));
    (header, status, body)
}

fn local() -> CacheLayer {
    CacheLayer::new(Arc::new(LocalStore::new(100, 1 << 20)))
}

#[tokio::test]
async fn miss_then_hit_with_the_same_bytes() {
    let (mut svc, fake) = stack(local());
    let first = send(&mut svc, request(Endpoint::ChatCompletions, &chat("hi"))).await;
    assert_eq!(
        first,
        (
            Some("miss".into()),
            Some(CacheStatus::Miss),
            r#"{"id":"chatcmpl-1"}"#.into()
        )
    );
    let second = send(&mut svc, request(Endpoint::ChatCompletions, &chat("hi"))).await;
    assert_eq!(
        second,
        (Some("hit".into()), Some(CacheStatus::Hit), first.2)
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    // Another question is another entry.
    let other = send(&mut svc, request(Endpoint::ChatCompletions, &chat("ho"))).await;
    assert_eq!(other.0.as_deref(), Some("miss"));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn errors_are_not_stored() {
    let (mut svc, fake) = stack(local());
    *fake.answer.lock().unwrap() = Answer::Json(429, r#"{"error":{}}"#);
    for _ in 0..2 {
        let (h, _, _) = send(&mut svc, request(Endpoint::ChatCompletions, &chat("hi"))).await;
        assert_eq!(h.as_deref(), Some("miss"));
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn no_cache_no_store_and_cache_control() {
    let (mut svc, fake) = stack(local());
    let mut no_store = chat("hi");
    no_store["cache"] = json!({"no-store": true});
    send(&mut svc, request(Endpoint::ChatCompletions, &no_store)).await;
    let (h, _, _) = send(&mut svc, request(Endpoint::ChatCompletions, &chat("hi"))).await;
    assert_eq!(h.as_deref(), Some("miss"), "no-store stored");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);

    // Stored now; no-cache skips it (and refreshes it).
    let mut no_cache = chat("hi");
    no_cache["cache"] = json!({"no-cache": true});
    let (h, _, _) = send(&mut svc, request(Endpoint::ChatCompletions, &no_cache)).await;
    assert_eq!(h.as_deref(), Some("miss"));
    let mut req = request(Endpoint::ChatCompletions, &chat("hi"));
    req.headers_mut()
        .insert("cache-control", "no-cache".parse().unwrap());
    let (h, _, _) = send(&mut svc, req).await;
    assert_eq!(h.as_deref(), Some("miss"));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 4);
    let (h, _, _) = send(&mut svc, request(Endpoint::ChatCompletions, &chat("hi"))).await;
    assert_eq!(h.as_deref(), Some("hit"));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 4);

    let mut bad = chat("hi");
    bad["cache"] = json!({"ttl": "soon"});
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(request(Endpoint::ChatCompletions, &bad))
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn ttl_and_s_maxage() {
    let (mut svc, fake) = stack(local().ttl(Duration::from_millis(300)));
    send(&mut svc, request(Endpoint::ChatCompletions, &chat("hi"))).await;
    let mut long = chat("long");
    long["cache"] = json!({"ttl": 60});
    send(&mut svc, request(Endpoint::ChatCompletions, &long)).await;
    assert_eq!(
        send(&mut svc, request(Endpoint::ChatCompletions, &chat("hi")))
            .await
            .0
            .as_deref(),
        Some("hit")
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    // The default TTL passed; the request's own TTL did not.
    assert_eq!(
        send(&mut svc, request(Endpoint::ChatCompletions, &chat("hi")))
            .await
            .0
            .as_deref(),
        Some("miss")
    );
    assert_eq!(
        send(&mut svc, request(Endpoint::ChatCompletions, &long))
            .await
            .0
            .as_deref(),
        Some("hit")
    );
    // Too old for this caller: a miss, and the fresh answer replaces the entry.
    let mut young = long.clone();
    young["cache"] = json!({"s-maxage": 0.2});
    assert_eq!(
        send(&mut svc, request(Endpoint::ChatCompletions, &young))
            .await
            .0
            .as_deref(),
        Some("miss")
    );
    assert_eq!(
        send(&mut svc, request(Endpoint::ChatCompletions, &young))
            .await
            .0
            .as_deref(),
        Some("hit")
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn default_off_needs_use_cache() {
    let (mut svc, fake) = stack(local().mode(Mode::DefaultOff));
    for _ in 0..2 {
        let (h, s, _) = send(&mut svc, request(Endpoint::ChatCompletions, &chat("hi"))).await;
        assert_eq!((h, s), (None, None));
    }
    let mut opt_in = chat("hi");
    opt_in["cache"] = json!({"use-cache": true});
    send(&mut svc, request(Endpoint::ChatCompletions, &opt_in)).await;
    assert_eq!(
        send(&mut svc, request(Endpoint::ChatCompletions, &opt_in))
            .await
            .0
            .as_deref(),
        Some("hit")
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn supported_call_types_and_mock_response_bypass() {
    let (mut svc, fake) = stack(local().endpoints(&[Endpoint::Embeddings]));
    let emb = json!({"model": "e", "input": ["a", "b"]});
    send(&mut svc, request(Endpoint::Embeddings, &emb)).await;
    assert_eq!(
        send(&mut svc, request(Endpoint::Embeddings, &emb))
            .await
            .0
            .as_deref(),
        Some("hit")
    );
    assert_eq!(
        send(&mut svc, request(Endpoint::ChatCompletions, &chat("hi")))
            .await
            .0,
        None
    );
    let mut mock = json!({"model": "e", "input": ["a", "b"]});
    mock["mock_response"] = json!("x");
    assert_eq!(
        send(&mut svc, request(Endpoint::Embeddings, &mock)).await.0,
        None
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
}

const STREAM: &[&str] = &[
    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"hel\"}}]}\n\ndata: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n",
    "data: [DONE]\n\n",
];

fn stream_req() -> Request<()> {
    let mut b = chat("stream");
    b["stream"] = json!(true);
    request(Endpoint::ChatCompletions, &b)
}

#[tokio::test]
async fn a_clean_stream_is_replayed_identically_and_only_to_streams() {
    let (mut svc, fake) = stack(local());
    *fake.answer.lock().unwrap() = Answer::Sse(STREAM.to_vec());
    let first = send(&mut svc, stream_req()).await;
    assert_eq!(first.0.as_deref(), Some("miss"));
    assert_eq!(first.2, STREAM.concat());
    let res = svc.ready().await.unwrap().call(stream_req()).await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["x-llmgate-cache"], "hit");
    let replay = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(replay, STREAM.concat().as_bytes());
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    // The same question without `stream` is another entry.
    *fake.answer.lock().unwrap() = Answer::Json(200, "{}");
    let plain = send(
        &mut svc,
        request(Endpoint::ChatCompletions, &chat("stream")),
    )
    .await;
    assert_eq!((plain.0.as_deref(), plain.2.as_str()), (Some("miss"), "{}"));
}

#[tokio::test]
async fn interrupted_streams_are_not_stored() {
    let cases = [
        // The provider relay's ending for a broken upstream: an error event, no [DONE].
        Answer::Sse(vec![
            STREAM[0],
            "data: {\"error\":{\"message\":\"cut\"}}\n\n",
        ]),
        // A body error.
        Answer::SseBroken(STREAM.to_vec()),
        // An end without [DONE].
        Answer::Sse(STREAM[..2].to_vec()),
    ];
    for answer in cases {
        let (mut svc, fake) = stack(local());
        *fake.answer.lock().unwrap() = answer;
        send(&mut svc, stream_req()).await;
        *fake.answer.lock().unwrap() = Answer::Sse(STREAM.to_vec());
        assert_eq!(
            send(&mut svc, stream_req()).await.0.as_deref(),
            Some("miss")
        );
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
    }

    // A client that goes away after the first frame.
    let (mut svc, fake) = stack(local());
    *fake.answer.lock().unwrap() = Answer::Sse(STREAM.to_vec());
    let res = svc.ready().await.unwrap().call(stream_req()).await.unwrap();
    let mut body = res.into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);
    assert_eq!(
        send(&mut svc, stream_req()).await.0.as_deref(),
        Some("miss")
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn oversized_answers_are_not_stored() {
    let (mut svc, fake) = stack(local().max_entry_bytes(8));
    send(&mut svc, request(Endpoint::ChatCompletions, &chat("hi"))).await;
    assert_eq!(
        send(&mut svc, request(Endpoint::ChatCompletions, &chat("hi")))
            .await
            .0
            .as_deref(),
        Some("miss")
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn keys_shared_by_callers_unless_per_key() {
    fn as_key(token: &str) -> Request<()> {
        let mut r = request(Endpoint::ChatCompletions, &chat("hi"));
        let k = VirtualKey {
            token: token.into(),
            ..VirtualKey::default()
        };
        r.extensions_mut().insert(Principal::Key(Arc::new(k)));
        r
    }
    let (mut shared, _) = stack(local());
    send(&mut shared, as_key("a")).await;
    assert_eq!(
        send(&mut shared, as_key("b")).await.0.as_deref(),
        Some("hit")
    );

    let (mut isolated, fake) = stack(local().per_key(true));
    send(&mut isolated, as_key("a")).await;
    assert_eq!(
        send(&mut isolated, as_key("b")).await.0.as_deref(),
        Some("miss")
    );
    assert_eq!(
        send(&mut isolated, as_key("a")).await.0.as_deref(),
        Some("hit")
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn aliases_share_their_groups_entries() {
    let layer = local().model_group(Arc::new(|m: &str| {
        matches!(m, "alias" | "m").then(|| Arc::from("m"))
    }));
    let (mut svc, fake) = stack(layer);
    send(&mut svc, request(Endpoint::ChatCompletions, &chat("hi"))).await;
    let mut via_alias = chat("hi");
    via_alias["model"] = json!("alias");
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(request(Endpoint::ChatCompletions, &via_alias))
        .await
        .unwrap();
    assert_eq!(res.headers()["x-llmgate-cache"], "hit");
    assert_eq!(res.headers()["x-llmgate-model-group"], "m");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

/// A model no group serves (never configured, or removed by a reload) bypasses the cache: the
/// service behind answers it each time (in the gateway, the router's 400), never an answer
/// stored while the model was configured.
#[tokio::test]
async fn a_model_no_group_serves_bypasses_the_cache() {
    let layer = local().model_group(Arc::new(|m: &str| (m == "m").then(|| Arc::from("m"))));
    let (mut svc, fake) = stack(layer);
    let mut gone = chat("hi");
    gone["model"] = json!("gone");
    for _ in 0..2 {
        let res = svc
            .ready()
            .await
            .unwrap()
            .call(request(Endpoint::ChatCompletions, &gone))
            .await
            .unwrap();
        assert!(res.headers().get("x-llmgate-cache").is_none());
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
}

//! The layer over a `service_fn`: each limit hit and recovered on a paused clock, headers,
//! token settlement, parallel slots given back, store failures under each policy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, StreamBody};
use llmgate_core::{
    body, BoxBody, BoxError, Endpoint, LlmRequest, Principal, Usage, UsageSlot, VirtualKey,
};
use tokio::sync::mpsc;
use tower::{service_fn, Service, ServiceExt};

use crate::store::{Acquire, Check, LimiterStore, Settle, StoreError};
use crate::{FailurePolicy, RateLimitLayer};

type Svc = tower::util::BoxCloneService<Request<()>, Response<BoxBody>, BoxError>;

/// An upstream that answers `ok` and reports `usage` total tokens (when given).
fn layer_over(layer: RateLimitLayer, usage: Option<u64>) -> Svc {
    let inner = service_fn(move |_req: Request<()>| async move {
        let mut res = Response::new(body::full("ok"));
        if let Some(total) = usage {
            let slot = UsageSlot::new();
            slot.set(Usage {
                total_tokens: total,
                ..Usage::default()
            });
            res.extensions_mut().insert(slot);
        }
        Ok::<_, BoxError>(res)
    });
    tower::util::BoxCloneService::new(tower::Layer::layer(&layer, inner))
}

fn key(f: impl FnOnce(&mut VirtualKey)) -> Principal {
    let mut k = VirtualKey {
        token: format!("key-{}", fastrand::u64(..)),
        ..VirtualKey::default()
    };
    f(&mut k);
    Principal::Key(Arc::new(k))
}

fn req(who: &Principal, model: &str, max_tokens: Option<u64>) -> Request<()> {
    let mut body =
        serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    if let Some(m) = max_tokens {
        body["max_tokens"] = m.into();
    }
    let llm = LlmRequest::parse(Endpoint::ChatCompletions, body.to_string().as_bytes()).unwrap();
    let mut r = Request::new(());
    r.extensions_mut().insert(who.clone());
    r.extensions_mut().insert(llm);
    r
}

async fn call(svc: &mut Svc, r: Request<()>) -> Response<BoxBody> {
    svc.ready().await.unwrap().call(r).await.unwrap()
}

/// Calls and reads the whole body (which settles the request).
async fn done(svc: &mut Svc, r: Request<()>) -> (u16, HashMap<String, String>, serde_json::Value) {
    let res = call(svc, r).await;
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, v)
}

#[tokio::test(start_paused = true)]
async fn rpm_is_hit_with_an_openai_429_and_recovers() {
    let mut svc = layer_over(RateLimitLayer::in_memory(), None);
    let who = key(|k| k.rpm_limit = Some(3));
    for left in ["2", "1", "0"] {
        let (s, h, _) = done(&mut svc, req(&who, "m", None)).await;
        assert_eq!(s, 200);
        assert_eq!(h["x-ratelimit-limit-requests"], "3");
        assert_eq!(h["x-ratelimit-remaining-requests"], left);
    }
    let (s, h, v) = done(&mut svc, req(&who, "m", None)).await;
    assert_eq!(s, 429);
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("the key's rpm_limit (3 requests per minute)"),
        "{msg}"
    );
    // A sliding window: the three leave it a minute (and at most a one-second granule) later.
    assert_eq!(h["retry-after"], "61");
    assert_eq!(h["x-ratelimit-remaining-requests"], "0");
    assert_eq!(h["x-ratelimit-reset-requests"], "1m1s");
    assert!(
        !h.contains_key("x-ratelimit-limit-tokens"),
        "no token limit applies"
    );

    // Nothing refills before then (a token bucket would admit one every 20 s).
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(done(&mut svc, req(&who, "m", None)).await.0, 429);
    tokio::time::advance(Duration::from_secs(41)).await;
    for _ in 0..3 {
        assert_eq!(done(&mut svc, req(&who, "m", None)).await.0, 200);
    }
    assert_eq!(done(&mut svc, req(&who, "m", None)).await.0, 429);
    // Another key is not affected.
    let other = key(|k| k.rpm_limit = Some(3));
    assert_eq!(done(&mut svc, req(&other, "m", None)).await.0, 200);
}

#[tokio::test(start_paused = true)]
async fn model_limits_apply_to_their_model_only() {
    let mut svc = layer_over(RateLimitLayer::in_memory(), Some(5));
    let who = key(|k| {
        k.model_rpm_limit.insert("gpt-x".into(), 1);
        k.model_tpm_limit.insert("big".into(), 50);
    });
    assert_eq!(done(&mut svc, req(&who, "gpt-x", None)).await.0, 200);
    let (s, _, v) = done(&mut svc, req(&who, "gpt-x", None)).await;
    assert_eq!(s, 429);
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("model_rpm_limit for model \"gpt-x\""), "{msg}");
    assert_eq!(done(&mut svc, req(&who, "other", None)).await.0, 200);
    // 60 tokens of max_tokens can never fit a 50-token budget: not retryable, no Retry-After.
    let (s, h, v) = done(&mut svc, req(&who, "big", Some(60))).await;
    assert_eq!(s, 429);
    assert!(!h.contains_key("retry-after"));
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("request too large") && msg.contains("model_tpm_limit"),
        "{msg}"
    );
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(done(&mut svc, req(&who, "gpt-x", None)).await.0, 200);
}

#[tokio::test(start_paused = true)]
async fn tokens_are_reserved_up_front_and_settled_with_real_usage() {
    // The upstream reports 10 tokens used; each request reserves ~7 + max_tokens 40 = 47.
    let mut svc = layer_over(RateLimitLayer::in_memory(), Some(10));
    let who = key(|k| k.tpm_limit = Some(100));
    let first = call(&mut svc, req(&who, "llama", Some(40))).await;
    assert_eq!(first.headers()["x-ratelimit-limit-tokens"], "100");
    let reserved = 100
        - first.headers()["x-ratelimit-remaining-tokens"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap();
    assert!((45..=50).contains(&reserved), "{reserved}");
    // While the first is in flight, its reservation counts: a burst cannot overshoot.
    let second = call(&mut svc, req(&who, "llama", Some(40))).await;
    assert_eq!(second.status(), 200);
    let (s, _, v) = done(&mut svc, req(&who, "llama", Some(40))).await;
    assert_eq!(s, 429);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("tpm_limit (100 tokens per minute)"));
    // Both end having used 10 each: the rest is given back.
    drop(first.into_body().collect().await.unwrap());
    drop(second.into_body().collect().await.unwrap());
    let (s, h, _) = done(&mut svc, req(&who, "llama", Some(40))).await;
    assert_eq!(s, 200);
    let left: u64 = h["x-ratelimit-remaining-tokens"].parse().unwrap();
    assert_eq!(left, 100 - 20 - reserved);
}

#[tokio::test(start_paused = true)]
async fn failed_calls_give_their_tokens_back() {
    let layer = RateLimitLayer::in_memory();
    let inner = service_fn(|_r: Request<()>| async {
        Err::<Response<BoxBody>, BoxError>("upstream down".into())
    });
    let mut svc = tower::Layer::layer(&layer, inner);
    let who = key(|k| k.tpm_limit = Some(100));
    for _ in 0..5 {
        let r = svc
            .ready()
            .await
            .unwrap()
            .call(req(&who, "llama", Some(80)))
            .await;
        assert!(
            r.is_err(),
            "the error passes through, and the 87 tokens come back"
        );
    }
}

/// The provider's own `x-ratelimit-*` headers (about the gateway's provider key) are replaced
/// by the caller's, never sent beside them.
#[tokio::test(start_paused = true)]
async fn the_callers_headers_replace_the_providers() {
    let layer = RateLimitLayer::in_memory();
    let inner = service_fn(|_r: Request<()>| async {
        let mut res = Response::new(body::full("ok"));
        let h = res.headers_mut();
        h.insert("x-ratelimit-limit-requests", "10000".parse().unwrap());
        h.append("x-ratelimit-remaining-requests", "9999".parse().unwrap());
        h.append("x-ratelimit-remaining-requests", "9998".parse().unwrap());
        Ok::<_, BoxError>(res)
    });
    let mut svc = tower::Layer::layer(&layer, inner);
    let who = key(|k| k.rpm_limit = Some(3));
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(req(&who, "m", None))
        .await
        .unwrap();
    let all = |name: &str| -> Vec<String> {
        res.headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(all("x-ratelimit-limit-requests"), ["3"]);
    assert_eq!(all("x-ratelimit-remaining-requests"), ["2"]);
    assert_eq!(all("x-ratelimit-reset-requests").len(), 1);
}

/// An upstream whose body streams until the test drops the sender.
type Frames = mpsc::Sender<Result<http_body::Frame<Bytes>, BoxError>>;

fn streaming() -> (Svc, RateLimitLayer, mpsc::UnboundedReceiver<Frames>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let layer = RateLimitLayer::in_memory();
    let inner = service_fn(move |_r: Request<()>| {
        let tx = tx.clone();
        async move {
            let (ftx, frx) = mpsc::channel(4);
            tx.send(ftx).unwrap();
            let stream = futures_stream(frx);
            Ok::<_, BoxError>(Response::new(StreamBody::new(stream).boxed_unsync()))
        }
    });
    (
        tower::util::BoxCloneService::new(tower::Layer::layer(&layer, inner)),
        layer,
        rx,
    )
}

fn futures_stream(
    mut rx: mpsc::Receiver<Result<http_body::Frame<Bytes>, BoxError>>,
) -> impl futures_util::Stream<Item = Result<http_body::Frame<Bytes>, BoxError>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test(start_paused = true)]
async fn parallel_slots_are_held_by_streams_until_they_end_or_are_dropped() {
    let (mut svc, _layer, mut upstream) = streaming();
    let who = key(|k| k.max_parallel_requests = Some(1));
    let first = call(&mut svc, req(&who, "m", None)).await;
    let frames = upstream.recv().await.unwrap();
    let (s, h, v) = done(&mut svc, req(&who, "m", None)).await;
    assert_eq!(s, 429);
    assert_eq!(h["retry-after"], "1");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_parallel_requests (1 requests in flight at once)"));

    // The stream ends: the slot is free.
    frames
        .send(Ok(http_body::Frame::data(Bytes::from("data: x\n\n"))))
        .await
        .unwrap();
    drop(frames);
    let body = first.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "data: x\n\n");
    let second = call(&mut svc, req(&who, "m", None)).await;
    assert_eq!(second.status(), 200);
    let _frames = upstream.recv().await.unwrap();
    assert_eq!(call(&mut svc, req(&who, "m", None)).await.status(), 429);

    // The client goes away mid-stream (the body is dropped): the slot is free.
    drop(second);
    assert_eq!(call(&mut svc, req(&who, "m", None)).await.status(), 200);
}

#[tokio::test(start_paused = true)]
async fn a_streams_error_frame_gives_its_parallel_slot_back_at_once() {
    let (mut svc, _layer, mut upstream) = streaming();
    let who = key(|k| k.max_parallel_requests = Some(1));
    let mut first = call(&mut svc, req(&who, "m", None)).await.into_body();
    let frames = upstream.recv().await.unwrap();
    assert_eq!(call(&mut svc, req(&who, "m", None)).await.status(), 429);

    frames.send(Err("upstream reset".into())).await.unwrap();
    assert!(first.frame().await.unwrap().is_err());
    // The body is still held (not dropped, not read to its end): before the one body
    // wrapper, the slot waited for the drop.
    let second = call(&mut svc, req(&who, "m", None)).await;
    assert_eq!(second.status(), 200, "an error frame ends the stream");
    drop(first);
}

#[tokio::test(start_paused = true)]
async fn global_and_default_parallel_limits() {
    let (tx, mut rx) = mpsc::unbounded_channel::<tokio::sync::oneshot::Sender<()>>();
    let layer = RateLimitLayer::in_memory()
        .max_parallel_requests(Some(1))
        .global_max_parallel_requests(Some(2));
    let inner = service_fn(move |_r: Request<()>| {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        tx.send(done_tx).unwrap();
        async move {
            let _ = done_rx.await;
            Ok::<_, BoxError>(Response::new(body::full("ok")))
        }
    });
    let svc = tower::util::BoxCloneService::new(tower::Layer::layer(&layer, inner));
    let start = |who: Principal| {
        let svc = svc.clone();
        tokio::spawn(async move {
            svc.oneshot(req(&who, "m", None))
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    // The master key: one at a time (the default per caller).
    let m1 = start(Principal::Master);
    let release_m1 = rx.recv().await.unwrap();
    assert_eq!(start(Principal::Master).await.unwrap(), 429);
    // A key with its own limit of 5 is bound by the global 2.
    let k = key(|k| k.max_parallel_requests = Some(5));
    let k1 = start(k.clone());
    let release_k1 = rx.recv().await.unwrap();
    let mut svc2 = svc.clone();
    let (s, _, v) = done(&mut svc2, req(&k, "m", None)).await;
    assert_eq!(s, 429);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("global_max_parallel_requests"));
    release_m1.send(()).unwrap();
    release_k1.send(()).unwrap();
    assert_eq!((m1.await.unwrap(), k1.await.unwrap()), (200, 200));
    let again = start(Principal::Master);
    rx.recv().await.unwrap().send(()).unwrap();
    assert_eq!(again.await.unwrap(), 200);
}

#[tokio::test]
async fn no_limits_means_no_headers_and_no_store() {
    let layer = RateLimitLayer::new(Arc::new(Failing));
    let mut svc = layer_over(layer.clone(), None);
    let (s, h, _) = done(&mut svc, req(&Principal::Anonymous, "m", None)).await;
    assert_eq!(s, 200);
    assert!(!h.keys().any(|k| k.starts_with("x-ratelimit")));
    assert_eq!(layer.stats().store_errors(), 0, "the store was not asked");
}

/// A store that is always down.
#[derive(Debug)]
struct Failing;

impl LimiterStore for Failing {
    fn acquire(&self, _checks: &[Check]) -> Acquire {
        Acquire::ready(Err(StoreError("connection refused".into())))
    }
    fn finish(&self, _settle: Settle) {
        panic!("nothing was acquired");
    }
}

#[tokio::test]
async fn a_failing_store_fails_open_or_closed_as_configured_and_counts() {
    let who = key(|k| k.rpm_limit = Some(1));
    let open = RateLimitLayer::new(Arc::new(Failing));
    let mut svc = layer_over(open.clone(), None);
    for _ in 0..3 {
        let (s, h, _) = done(&mut svc, req(&who, "m", None)).await;
        assert_eq!(s, 200);
        assert!(!h.contains_key("x-ratelimit-limit-requests"));
    }
    assert_eq!(
        (open.stats().failed_open(), open.stats().failed_closed()),
        (3, 0)
    );

    let closed = RateLimitLayer::new(Arc::new(Failing)).on_store_failure(FailurePolicy::Closed);
    let mut svc = layer_over(closed.clone(), None);
    let (s, h, v) = done(&mut svc, req(&who, "m", None)).await;
    assert_eq!(s, 503);
    assert_eq!(v["error"]["code"], "rate_limiter_unavailable");
    assert_eq!(h["retry-after"], "1");
    assert_eq!(closed.stats().failed_closed(), 1);
}

#[test]
fn is_always_ready() {
    // The layer never waits in poll_ready: tower's own `RateLimit` would queue here.
    let inner =
        service_fn(|_r: Request<()>| async { Ok::<_, Infallible>(Response::new(body::empty())) });
    let mut svc = tower::Layer::layer(&RateLimitLayer::in_memory(), inner);
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(Service::<Request<()>>::poll_ready(&mut svc, &mut cx).is_ready());
}

//! How a metered stream ended, and what it is charged when the provider reported no usage:
//! through the layer alone, with a stream body written by hand (what the providers' relays
//! send: OpenAI chunks, an error event on a failure).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use llmgate_core::{
    BoxBody, BoxError, Deployment, DeploymentSpec, Endpoint, LlmRequest, ModelInfo, ProviderKind,
    UsageSlot,
};
use llmgate_metering::{MemorySink, Meter, Outcome, SpendRecord};
use tower::{service_fn, ServiceBuilder, ServiceExt};

const CHUNK: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"abcdefgh\"}}]}\n\n";
const SHUTDOWN: &str = "data: {\"error\":{\"message\":\"the gateway is shutting down\",\"type\":\"server_error\",\"param\":null,\"code\":\"gateway_shutting_down\"}}\n\n";

/// Meters one request whose answer streams `frames` (and reports no usage); returns its record.
async fn meter(frames: &[&'static str], read: usize) -> SpendRecord {
    let sink = MemorySink::new();
    let meter = Meter::builder(Arc::new(sink.clone())).build();
    let frames: Vec<Bytes> = frames
        .iter()
        .map(|f| Bytes::from_static(f.as_bytes()))
        .collect();
    let svc = ServiceBuilder::new()
        .layer(meter.layer())
        .service(service_fn(move |_req: Request<()>| {
            let frames = frames.clone();
            async move {
                let stream = futures_util::stream::iter(
                    frames
                        .into_iter()
                        .map(|b| Ok::<_, BoxError>(http_body::Frame::data(b))),
                );
                let mut res = Response::new(BoxBody::new(http_body_util::StreamBody::new(stream)));
                let mut spec =
                    DeploymentSpec::new("m-0", "m", ProviderKind::OpenAi, "private-model");
                spec.model_info = ModelInfo {
                    input_cost_per_token: Some(1e-6),
                    output_cost_per_token: Some(2e-6),
                    ..ModelInfo::default()
                };
                res.extensions_mut().insert(Deployment(Arc::new(spec)));
                res.extensions_mut().insert(UsageSlot::new());
                Ok::<_, BoxError>(res)
            }
        }));
    let mut req = Request::new(());
    req.extensions_mut().insert(
        LlmRequest::parse(
            Endpoint::ChatCompletions,
            br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"12345678"}]}"#,
        )
        .unwrap(),
    );
    let res = svc.oneshot(req).await.unwrap();
    let mut body = res.into_body();
    for _ in 0..read {
        if body.frame().await.is_none() {
            break;
        }
    }
    drop(body);
    meter.flush().await;
    let mut records = sink.records();
    assert_eq!(records.len(), 1);
    meter.shutdown().await;
    records.remove(0)
}

fn assert_estimated(r: &SpendRecord, completion: u64) {
    assert!(r.usage_estimated, "{r:?}");
    // 3 + 3 framing + 8 bytes of text.
    assert_eq!(r.tokens.prompt, 8);
    assert_eq!(r.tokens.completion, completion);
    let cost = 8.0 * 1e-6 + completion as f64 * 2e-6;
    assert!((r.cost.unwrap() - cost).abs() < 1e-15, "{r:?}");
}

/// A stream the gateway's shutdown cut (its error event, then the end of the body): a
/// failure recorded as such, charged for what was relayed.
#[tokio::test]
async fn a_stream_cut_at_shutdown_is_recorded_as_cut_and_charged() {
    let r = meter(&[CHUNK, CHUNK, SHUTDOWN], usize::MAX).await;
    assert_eq!(r.outcome, Outcome::GatewayShutdown);
    assert!(!r.succeeded());
    assert_eq!(r.status, 200);
    assert_estimated(&r, 4);
}

#[tokio::test]
async fn streams_end_as_success_client_closed_or_upstream_error() {
    let done = meter(&[CHUNK, "data: [DONE]\n\n"], usize::MAX).await;
    assert_eq!(done.outcome, Outcome::Success);
    assert_estimated(&done, 2);
    // The client read one frame of three and went away.
    let dropped = meter(&[CHUNK, CHUNK, CHUNK], 1).await;
    assert_eq!(dropped.outcome, Outcome::ClientClosed);
    assert_estimated(&dropped, 2);
    let broken = meter(
        &[
            CHUNK,
            "data: {\"error\":{\"message\":\"upstream stream ended before completion\"}}\n\n",
        ],
        usize::MAX,
    )
    .await;
    assert_eq!(broken.outcome, Outcome::UpstreamError);
    assert_estimated(&broken, 2);
}

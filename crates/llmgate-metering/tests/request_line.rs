//! The request's log line (target `llmgate::request`): written once when the response ends,
//! with the spend record's fields; a failure's with its class and its message, secrets
//! replaced; nothing at all when the target is filtered out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use llmgate_core::{
    body, ApiError, Attribution, BoxError, Deployment, DeploymentSpec, Endpoint, LlmRequest,
    Origin, ProviderKind, RequestId, Secret, Usage, UsageSlot,
};
use llmgate_metering::{MemorySink, Meter};
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tracing_subscriber::EnvFilter;

/// What the subscriber wrote.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn deployment() -> Deployment {
    let mut spec = DeploymentSpec::new("gpt-4o-0", "gpt-4o", ProviderKind::OpenAi, "gpt-4o");
    spec.api_key = Some(Secret::new("provider-key-0123456789"));
    Deployment(Arc::new(spec))
}

/// One request through a meter, `fail` making the inner service fail, logged under `filter`.
async fn logged(filter: &str, fail: bool) -> String {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let meter = Meter::builder(Arc::new(MemorySink::new())).build();
    let svc = ServiceBuilder::new()
        .layer(meter.layer())
        .service(service_fn(move |_req: Request<()>| async move {
            if fail {
                let e = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    Origin::Upstream,
                    "openai (deployment gpt-4o-0): bad key provider-key-0123456789, \
                     Authorization: Bearer abcdefghijklmnop",
                )
                .with_attribution(Attribution::attempt(
                    Arc::from("gpt-4o"),
                    Some(deployment()),
                ));
                return Err::<Response<_>, BoxError>(e.boxed());
            }
            let mut res = Response::new(body::full("{}"));
            res.extensions_mut().insert(deployment());
            let usage = UsageSlot::new();
            usage.set(Usage {
                prompt_tokens: 1000,
                completion_tokens: 100,
                ..Usage::default()
            });
            res.extensions_mut().insert(usage);
            Ok(res)
        }));
    let mut req = Request::new(());
    req.extensions_mut().insert(
        LlmRequest::parse(
            Endpoint::ChatCompletions,
            br#"{"model":"gpt-4o","messages":[]}"#,
        )
        .unwrap(),
    );
    req.extensions_mut()
        .insert(RequestId(Arc::from("req-0123")));
    if let Ok(res) = svc.oneshot(req).await {
        let _ = res.into_body().collect().await;
    }
    meter.shutdown().await;
    buffer.text()
}

#[tokio::test(flavor = "current_thread")]
async fn one_line_with_the_records_fields() {
    let out = logged("llmgate::request=info", false).await;
    assert_eq!(out.lines().count(), 1, "{out}");
    for field in [
        "INFO llmgate::request: request succeeded",
        "request_id=\"req-0123\"",
        "model=\"gpt-4o\"",
        "deployment=\"gpt-4o-0\"",
        "provider=\"openai\"",
        "status=200",
        "prompt_tokens=1000",
        "completion_tokens=100",
        "attempts=",
        "cost=",
    ] {
        assert!(out.contains(field), "{field} in {out}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_failure_says_why_without_secrets() {
    let out = logged("llmgate::request=info", true).await;
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("request failed"), "{out}");
    assert!(out.contains("status=401"), "{out}");
    assert!(out.contains("error_class=\"auth\""), "{out}");
    assert!(out.contains("bad key [REDACTED]"), "{out}");
    assert!(!out.contains("provider-key-0123456789"), "{out}");
    assert!(!out.contains("abcdefghijklmnop"), "{out}");
}

#[tokio::test(flavor = "current_thread")]
async fn nothing_when_the_target_is_off() {
    let out = logged("info,llmgate::request=off", false).await;
    assert!(!out.contains("llmgate::request"), "{out}");
    let out = logged("warn", true).await;
    assert!(!out.contains("llmgate::request"), "{out}");
}

//! `GET /health`: calls every deployment the cheapest way that proves it answers — Ollama's
//! `GET /api/tags`, else a one-token chat completion (an embedding of "ping" for embedding
//! models), as LiteLLM does — and lists `healthy_endpoints` and `unhealthy_endpoints`.
//!
//! With `general_settings.background_health_checks: true`, the same checks run every
//! `health_check_interval` seconds (LiteLLM's default: 300) in the background: a deployment that
//! fails is taken out of rotation until the next check passes, and `/health` answers with the
//! last results instead of calling every provider on each request.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use http::Request;
use llmgate_core::{ApiError, Deployment, DeploymentSpec, Endpoint, LlmRequest, MockResponse};
use llmgate_providers::ProviderService;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::live::Live;

/// How long one deployment's check may take when the deployment sets no `timeout`.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// The health checker: the deployments, the provider service to call them with, and the
/// background results when background checks are on.
#[derive(Clone)]
pub(crate) struct Health {
    /// The deployments of the config running now.
    live: Arc<Live>,
    provider: ProviderService,
    background: Option<Duration>,
    last: Arc<Mutex<Option<Bytes>>>,
    started: Arc<OnceLock<()>>,
}

impl Health {
    pub(crate) fn new(
        live: Arc<Live>,
        provider: ProviderService,
        background: Option<Duration>,
    ) -> Self {
        Health {
            live,
            provider,
            background,
            last: Arc::default(),
            started: Arc::default(),
        }
    }

    /// Starts the background loop once, from inside the host's runtime (the first request).
    pub(crate) fn start_background(&self) {
        let Some(every) = self.background else { return };
        if self.started.set(()).is_err() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let report = this.check_all(Some(every)).await;
                if let Ok(mut last) = this.last.lock() {
                    *last = Some(report);
                }
            }
        });
    }

    /// The `/health` answer: the background results when there are some, else fresh checks
    /// (which, with background checks on, count as a round: they feed the cooldowns too).
    pub(crate) async fn report(&self) -> Bytes {
        self.start_background();
        if let Some(last) = self.last.lock().ok().and_then(|l| l.clone()) {
            return last;
        }
        let report = self.check_all(self.background).await;
        if self.background.is_some() {
            if let Ok(mut last) = self.last.lock() {
                *last = Some(report.clone());
            }
        }
        report
    }

    /// Checks every deployment at once. With `feed_cooldowns`, a failed one is taken out of
    /// rotation for that long and a passing one is put back.
    async fn check_all(&self, feed_cooldowns: Option<Duration>) -> Bytes {
        let table = self.live.table();
        let all = table.all();
        let results = join_all(all.iter().map(|(spec, _)| self.check(spec.clone()))).await;
        let mut healthy = Vec::new();
        let mut unhealthy = Vec::new();
        for ((spec, _), result) in all.iter().zip(results) {
            let mut entry = describe(spec);
            match result {
                Ok(()) => {
                    if feed_cooldowns.is_some() {
                        table.mark_healthy(&spec.id);
                    }
                    healthy.push(entry);
                }
                Err(e) => {
                    if let Some(for_) = feed_cooldowns {
                        table.mark_unhealthy(&spec.id, for_);
                    }
                    tracing::warn!(deployment = %spec.id, error = %e, "health check failed");
                    entry["error"] = Value::String(e.message().to_owned());
                    unhealthy.push(entry);
                }
            }
        }
        let body = json!({
            "healthy_endpoints": healthy,
            "unhealthy_endpoints": unhealthy,
            "healthy_count": healthy.len(),
            "unhealthy_count": unhealthy.len(),
        });
        Bytes::from(body.to_string())
    }

    async fn check(&self, spec: Arc<DeploymentSpec>) -> Result<(), ApiError> {
        if matches!(spec.mock_response, Some(MockResponse::Text(_))) {
            return Ok(());
        }
        let limit = spec.timeout.unwrap_or(CHECK_TIMEOUT);
        if let Ok(Some(probed)) = tokio::time::timeout(limit, self.provider.probe(&spec)).await {
            // A cheaper probe than a completion (Ollama's /api/tags).
            return probed.map_err(ApiError::from_box);
        }
        let embedding = spec.model_info.mode.as_deref() == Some("embedding");
        let (endpoint, body) = if embedding {
            (
                Endpoint::Embeddings,
                json!({"model": &*spec.model_name, "input": "ping"}),
            )
        } else {
            (
                Endpoint::ChatCompletions,
                json!({"model": &*spec.model_name, "max_tokens": 1,
                       "messages": [{"role": "user", "content": "ping"}]}),
            )
        };
        let llm = LlmRequest::parse(endpoint, body.to_string().as_bytes())?;
        let mut req = Request::new(Bytes::new());
        req.extensions_mut().insert(llm);
        req.extensions_mut().insert(Deployment(spec.clone()));
        let call = self.provider.clone().oneshot(req);
        match tokio::time::timeout(limit, call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ApiError::from_box(e)),
            Err(_) => Err(ApiError::new(
                http::StatusCode::REQUEST_TIMEOUT,
                llmgate_core::Origin::Upstream,
                format!("no answer within {}s", limit.as_secs_f64()),
            )),
        }
    }
}

/// What `/health` says about a deployment (never its key).
fn describe(spec: &DeploymentSpec) -> Value {
    json!({
        "model_name": &*spec.model_name,
        "id": &*spec.id,
        "provider": spec.provider.as_str(),
        "model": format!("{}/{}", spec.provider, spec.model),
        "api_base": spec.api_base.as_deref(),
    })
}

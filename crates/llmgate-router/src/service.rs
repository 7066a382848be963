use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use llmgate_core::{ApiError, BoxBody, Deployment, LlmRequest, ModelGroup, Origin};
use tower::Service;

use crate::{ModelTable, ResponseFuture};

/// Routes each request to a deployment; see the crate docs.
#[derive(Debug, Clone)]
pub struct Router<S> {
    inner: S,
    table: Arc<ModelTable>,
}

impl<S> Router<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, table: Arc<ModelTable>) -> Self {
        Router { inner, table }
    }
}

impl<S, B> Service<Request<B>> for Router<S>
where
    S: Service<Request<B>, Response = Response<BoxBody>> + Clone,
{
    type Response = Response<BoxBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let reject = |e: ApiError| ResponseFuture::Reject {
            response: Some(e.to_response()),
        };
        let Some(llm) = req.extensions().get::<LlmRequest>() else {
            return reject(ApiError::internal(
                "router: the request has no parsed body (is the parse layer mounted?)",
            ));
        };
        let model = llm.model();
        let Some(group) = self.table.resolve(model).cloned() else {
            return reject(unknown_model(model));
        };
        let Some(deployment) = self.table.pick(&group).cloned() else {
            return reject(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Origin::Internal,
                format!("model group \"{group}\" has no deployments"),
            ));
        };
        let span = tracing::Span::current();
        span.record("model", &*group);
        span.record("deployment", &*deployment.id);
        let deployment_id = deployment.id.clone();
        req.extensions_mut().insert(ModelGroup(group.clone()));
        req.extensions_mut().insert(Deployment(deployment));
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::Inner {
            fut: inner.call(req),
            group,
            deployment: deployment_id,
        }
    }
}

fn unknown_model(model: &str) -> ApiError {
    ApiError::bad_request(format!(
        "model \"{model}\" is not served by this gateway; call /v1/models for the available models"
    ))
    .with_code("model_not_found")
    .with_param("model")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use llmgate_core::{body, DeploymentSpec, Endpoint, ProviderKind};
    use tower::{service_fn, ServiceExt};

    #[tokio::test]
    async fn unknown_model_is_a_400_that_points_at_models() {
        let table = Arc::new(ModelTable::new(
            [Arc::new(DeploymentSpec::new(
                "a",
                "gpt",
                ProviderKind::OpenAi,
                "m",
            ))],
            [],
        ));
        let svc = Router::new(
            service_fn(|_req: Request<()>| async {
                Ok::<_, std::convert::Infallible>(Response::new(body::empty()))
            }),
            table,
        );
        let mut req = Request::new(());
        req.extensions_mut().insert(
            LlmRequest::parse(Endpoint::Embeddings, br#"{"model":"nope","input":"x"}"#).unwrap(),
        );
        let res = svc.oneshot(req).await.unwrap();
        assert_eq!(res.status(), 400);
        let v: serde_json::Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["param"], "model");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("\"nope\"") && msg.contains("/v1/models"),
            "{msg}"
        );
    }
}

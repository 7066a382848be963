//! The fallback layer over a scripted router stand-in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use llmgate_core::{
    body, ApiError, BoxBody, BoxError, Deployment, DeploymentSpec, Endpoint, ErrorContract,
    LlmRequest, Origin, ProviderKind, RouteHint, RouteSlot, Routed,
};
use tower::{service_fn, Service, ServiceExt};

use crate::{FallbackLayer, FallbackPolicy};

pub(crate) mod table;

/// A stand-in router: groups of deployment ids, each scripted to fail with a status or answer.
#[derive(Clone, Default)]
struct Script {
    groups: HashMap<&'static str, Vec<&'static str>>,
    fail: HashMap<&'static str, (u16, Option<&'static str>)>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Script {
    fn group(mut self, g: &'static str, ids: &[&'static str]) -> Self {
        self.groups.insert(g, ids.to_vec());
        self
    }
    fn fail(mut self, id: &'static str, status: u16) -> Self {
        self.fail.insert(id, (status, None));
        self
    }
    fn fail_code(mut self, id: &'static str, status: u16, code: &'static str) -> Self {
        self.fail.insert(id, (status, Some(code)));
        self
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn service(
        &self,
    ) -> impl Service<
        Request<()>,
        Response = Response<BoxBody>,
        Error = BoxError,
        Future = impl std::future::Future<Output = Result<Response<BoxBody>, BoxError>> + Send,
    > + Clone
           + Send
           + 'static {
        let s = self.clone();
        service_fn(move |req: Request<()>| {
            let s = s.clone();
            async move {
                let hint = req
                    .extensions()
                    .get::<RouteHint>()
                    .cloned()
                    .unwrap_or_default();
                let group: Arc<str> = hint.group.clone().unwrap_or_else(|| "primary".into());
                let ids = s.groups.get(&*group).cloned().unwrap_or_default();
                let fresh: Vec<_> = ids
                    .iter()
                    .filter(|i| !hint.exclude.iter().any(|e| **e == ***i))
                    .collect();
                let pick = fresh.first().copied().or(ids.first()).copied().unwrap();
                let spec = DeploymentSpec::new(pick, &*group, ProviderKind::OpenAi, "m");
                req.extensions().get::<RouteSlot>().unwrap().set(Routed {
                    group: group.clone(),
                    deployment: Some(Deployment(Arc::new(spec))),
                    alternatives: fresh.len().saturating_sub(1),
                });
                s.calls.lock().unwrap().push(pick.to_owned());
                if let Some(status) = hint.fail_with {
                    return Err(ApiError::new(
                        StatusCode::from_u16(status).unwrap(),
                        Origin::Upstream,
                        "mock",
                    )
                    .boxed());
                }
                match s.fail.get(pick) {
                    Some((status, code)) => {
                        let mut e = ApiError::new(
                            StatusCode::from_u16(*status).unwrap(),
                            Origin::Upstream,
                            format!("{pick} failed"),
                        );
                        if let Some(c) = code {
                            e = e.with_code(*c);
                        }
                        Err(e.boxed())
                    }
                    None => Ok(Response::new(body::full(pick))),
                }
            }
        })
    }
}

fn req(extra: &str) -> Request<()> {
    let mut r = Request::new(());
    let body =
        format!(r#"{{"model":"primary","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#);
    r.extensions_mut()
        .insert(LlmRequest::parse(Endpoint::ChatCompletions, body.as_bytes()).unwrap());
    r
}

fn policy(fallbacks: &[(&str, &[&str])]) -> FallbackPolicy {
    let mut p = FallbackPolicy::default();
    for (from, to) in fallbacks {
        p.fallbacks.insert(
            (*from).to_owned(),
            to.iter().map(|s| (*s).to_owned()).collect(),
        );
    }
    p
}

async fn call(
    script: &Script,
    p: FallbackPolicy,
    r: Request<()>,
) -> Result<(String, String, String), ApiError> {
    let svc = tower::ServiceBuilder::new()
        .layer(FallbackLayer::new(p))
        .service(script.service());
    match svc.oneshot(r).await {
        Ok(res) => {
            let a = res.headers()["x-llmgate-attempts"]
                .to_str()
                .unwrap()
                .to_owned();
            let f = res.headers()["x-llmgate-fallbacks"]
                .to_str()
                .unwrap()
                .to_owned();
            let b = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec())
                .unwrap();
            Ok((b, a, f))
        }
        Err(e) => Err(ApiError::from_box(e)),
    }
}

#[tokio::test(start_paused = true)]
async fn the_seed_chain_answers_from_the_local_deployment_without_sleeping() {
    // primary 429 -> second key 429 -> local OK, one request, no waiting.
    let script = Script::default()
        .group("primary", &["openrouter-key1"])
        .group("second", &["openrouter-key2"])
        .group("local", &["ollama"])
        .fail("openrouter-key1", 429)
        .fail("openrouter-key2", 429);
    let started = tokio::time::Instant::now();
    let got = call(
        &script,
        policy(&[("primary", &["second", "local"])]),
        req(""),
    )
    .await
    .unwrap();
    assert_eq!(got, ("ollama".to_owned(), "3".to_owned(), "2".to_owned()));
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no backoff sleep when a fallback exists"
    );
    assert_eq!(
        script.calls(),
        ["openrouter-key1", "openrouter-key2", "ollama"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_goes_to_another_deployment_of_the_group_first() {
    let script = Script::default()
        .group("primary", &["a", "b"])
        .fail("a", 500);
    let got = call(&script, policy(&[]), req("")).await.unwrap();
    assert_eq!(got.0, "b");
    assert_eq!(script.calls(), ["a", "b"]);
}

#[tokio::test(start_paused = true)]
async fn without_fallbacks_the_same_deployment_is_retried_after_a_backoff_honouring_retry_after() {
    let script = Script::default().group("primary", &["a"]).fail("a", 503);
    let started = tokio::time::Instant::now();
    let e = call(&script, policy(&[]), req("")).await.unwrap_err();
    assert_eq!(
        script.calls(),
        ["a", "a", "a"],
        "num_retries = 2 by default"
    );
    assert!(started.elapsed() > Duration::ZERO);
    assert_eq!(e.status(), 503);
    assert!(
        e.message()
            .starts_with("all 3 attempts failed: a (primary) -> 503"),
        "{e}"
    );
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_not_retried_nor_fallen_back() {
    let script = Script::default()
        .group("primary", &["a", "b"])
        .group("backup", &["c"])
        .fail("a", 400);
    let e = call(&script, policy(&[("primary", &["backup"])]), req(""))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 400);
    assert_eq!(
        e.message(),
        "a failed",
        "a single failure is passed on as it was"
    );
    assert_eq!(script.calls(), ["a"]);
}

#[tokio::test]
async fn a_wrong_key_is_retried_on_another_deployment_only() {
    let script = Script::default()
        .group("primary", &["a", "b"])
        .fail("a", 401);
    let got = call(&script, policy(&[]), req("")).await.unwrap();
    assert_eq!(got.0, "b");
    assert_eq!(script.calls(), ["a", "b"]);

    // Alone in its group: not the same deployment again.
    let script = Script::default().group("primary", &["a"]).fail("a", 401);
    let e = call(&script, policy(&[]), req("")).await.unwrap_err();
    assert_eq!(e.status(), 401);
    assert_eq!(script.calls(), ["a"]);
}

#[tokio::test(start_paused = true)]
async fn context_window_errors_take_the_context_window_fallback() {
    let script = Script::default()
        .group("primary", &["small", "small2"])
        .group("general", &["g"])
        .group("long", &["big"])
        .fail_code("small", 400, "context_length_exceeded");
    let mut p = policy(&[("primary", &["general"])]);
    p.context_window_fallbacks
        .insert("primary".into(), vec!["long".into()]);
    let got = call(&script, p, req("")).await.unwrap();
    assert_eq!(got.0, "big");
    assert_eq!(
        script.calls(),
        ["small", "big"],
        "not retried in the group, not the general fallback"
    );
}

#[tokio::test]
async fn the_routers_up_front_context_window_error_takes_the_context_window_fallback() {
    // The router's check fails before any deployment is picked, as the client's side of the line.
    let router = service_fn(|req: Request<()>| async move {
        let group = req
            .extensions()
            .get::<RouteHint>()
            .and_then(|h| h.group.clone())
            .unwrap_or_else(|| "primary".into());
        let slot = req.extensions().get::<RouteSlot>().unwrap();
        if &*group == "primary" {
            slot.set(Routed {
                group,
                deployment: None,
                alternatives: 0,
            });
            let e = ApiError::new(StatusCode::BAD_REQUEST, Origin::Downstream, "too long")
                .with_code("context_length_exceeded");
            return Err::<Response<BoxBody>, BoxError>(e.boxed());
        }
        let spec = DeploymentSpec::new("big", &*group, ProviderKind::OpenAi, "m");
        slot.set(Routed {
            group: group.clone(),
            deployment: Some(Deployment(Arc::new(spec))),
            alternatives: 0,
        });
        Ok(Response::new(body::full(group.to_string())))
    });
    let mut p = policy(&[("primary", &["general"])]);
    p.context_window_fallbacks
        .insert("primary".into(), vec!["long".into()]);
    let svc = tower::ServiceBuilder::new()
        .layer(FallbackLayer::new(p))
        .service(router);
    let res = svc.oneshot(req("")).await.unwrap();
    assert_eq!(res.headers()["x-llmgate-fallbacks"], "1");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"long");
}

#[tokio::test(start_paused = true)]
async fn fallback_chains_do_not_loop() {
    let script = Script::default()
        .group("primary", &["a"])
        .group("b", &["bb"])
        .fail("a", 429)
        .fail("bb", 429);
    let mut p = policy(&[("primary", &["b"]), ("b", &["primary"])]);
    p.num_retries = 0;
    let e = call(&script, p, req("")).await.unwrap_err();
    assert_eq!(script.calls(), ["a", "bb"]);
    assert_eq!(e.status(), 429);
    assert!(
        e.message().contains("a (primary) -> 429") && e.message().contains("bb (b) -> 429"),
        "{e}"
    );
}

#[tokio::test(start_paused = true)]
async fn request_fallbacks_and_mock_testing_fallbacks() {
    let script = Script::default()
        .group("primary", &["a"])
        .group("other", &["o"]);
    let got = call(
        &script,
        policy(&[]),
        req(r#","mock_testing_fallbacks":true,"fallbacks":["other"]"#),
    )
    .await
    .unwrap();
    assert_eq!(got.0, "o");
    assert_eq!(got.2, "1");
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_bounds_extra_load() {
    let script = Script::default().group("primary", &["a"]).fail("a", 500);
    let mut p = policy(&[]);
    p.budget = Arc::new(crate::RetryBudget::new(Duration::from_secs(10), 0, 0.0));
    let e = call(&script, p, req("")).await.unwrap_err();
    assert_eq!(e.status(), 500);
    assert_eq!(script.calls(), ["a"], "an empty budget allows no retry");
}

#[tokio::test(start_paused = true)]
async fn a_fallback_takes_from_the_retry_budget_and_is_refused_when_it_is_empty() {
    let script = Script::default()
        .group("primary", &["a"])
        .group("backup", &["b"])
        .fail("a", 500);
    let chain: &[(&str, &[&str])] = &[("primary", &["backup"])];
    // An empty budget: the request ends with the primary's error, the fallback never called.
    let mut p = policy(chain);
    p.budget = Arc::new(crate::RetryBudget::new(Duration::from_secs(10), 0, 0.0));
    let e = call(&script, p, req("")).await.unwrap_err();
    assert_eq!(e.status(), 500);
    assert_eq!(script.calls(), ["a"], "an empty budget allows no fallback");
    // A budget of one (1 a second over 1 s, no ratio): the first request's fallback takes
    // it, so the second request's fallback is refused.
    let script = Script {
        calls: Arc::default(),
        ..script
    };
    let budget = Arc::new(crate::RetryBudget::new(Duration::from_secs(1), 1, 0.0));
    let mut p = policy(chain);
    p.budget = budget.clone();
    let got = call(&script, p, req("")).await.unwrap();
    assert_eq!((got.0.as_str(), got.2.as_str()), ("b", "1"));
    let mut p = policy(chain);
    p.budget = budget;
    let e = call(&script, p, req("")).await.unwrap_err();
    assert_eq!(e.status(), 500);
    assert_eq!(script.calls(), ["a", "b", "a"]);
}

#[tokio::test]
async fn forced_errors_need_the_master_key_and_a_valid_header() {
    let script = Script::default().group("primary", &["a"]);
    let mut r = req("");
    r.headers_mut()
        .insert("x-llmgate-mock-error", "a=oops".parse().unwrap());
    assert_eq!(
        call(&script, policy(&[]), r).await.unwrap_err().status(),
        400
    );
}

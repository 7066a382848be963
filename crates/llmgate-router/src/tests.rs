//! The router's behaviour, driven through the service with a stub provider.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use llmgate_core::{
    body, ApiError, BoxBody, BoxError, Deployment, DeploymentSpec, Endpoint, ErrorContract,
    LlmRequest, Origin, ProviderKind, RouteHint, RouteSlot,
};
use tower::{service_fn, Service, ServiceExt};

use crate::{CooldownPolicy, ModelTable, Router, Strategy};

pub(crate) fn d(id: &str, group: &str) -> DeploymentSpec {
    DeploymentSpec::new(id, group, ProviderKind::OpenAi, "m")
}

pub(crate) fn req(model: &str) -> Request<()> {
    let mut r = Request::new(());
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    r.extensions_mut()
        .insert(LlmRequest::parse(Endpoint::ChatCompletions, body.as_bytes()).unwrap());
    r
}

/// A provider stub: answers with the deployment id, or fails as `fail` says for that id.
pub(crate) fn stub(
    fail: impl Fn(&str) -> Option<ApiError> + Clone + Send + 'static,
) -> impl Service<
    Request<()>,
    Response = Response<BoxBody>,
    Error = BoxError,
    Future = impl std::future::Future<Output = Result<Response<BoxBody>, BoxError>> + Send,
> + Clone {
    service_fn(move |r: Request<()>| {
        let fail = fail.clone();
        async move {
            let id = r.extensions().get::<Deployment>().unwrap().id.to_string();
            match fail(&id) {
                Some(e) => Err(e.boxed()),
                None => Ok(Response::new(body::full(id))),
            }
        }
    })
}

pub(crate) async fn served_by<S>(svc: &mut S, model: &str) -> Result<String, ApiError>
where
    S: Service<Request<()>, Response = Response<BoxBody>, Error = BoxError>,
{
    let res = svc.ready().await.unwrap().call(req(model)).await;
    match res {
        Ok(r) => Ok(
            String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap(),
        ),
        Err(e) => Err(ApiError::from_box(e)),
    }
}

fn table(ds: Vec<DeploymentSpec>) -> ModelTable {
    ModelTable::new(ds.into_iter().map(Arc::new), [])
}

#[tokio::test]
async fn resolves_alias_then_group_then_catch_all() {
    let t = ModelTable::new(
        [
            Arc::new(d("a", "gpt")),
            Arc::new(d("b", "mini")),
            Arc::new(d("c", "*")),
        ],
        [
            ("gpt".into(), "mini".into(), false),
            ("small".into(), "mini".into(), true),
        ],
    );
    assert_eq!(
        t.resolve("gpt").map(|s| &**s),
        Some("mini"),
        "an alias hides a group, as in LiteLLM"
    );
    assert_eq!(t.resolve("small").map(|s| &**s), Some("mini"));
    assert_eq!(t.resolve("anything").map(|s| &**s), Some("*"));
    assert_eq!(
        t.visible_models(),
        vec![
            ("gpt".into(), "openai".into()),
            ("mini".into(), "openai".into()),
            ("gpt".into(), "openai".into())
        ]
    );
}

#[tokio::test]
async fn unknown_model_is_a_400_naming_it() {
    let mut svc = Router::new(stub(|_| None), Arc::new(table(vec![d("a", "gpt")])));
    let res = svc.ready().await.unwrap().call(req("nope")).await.unwrap();
    assert_eq!(res.status(), 400);
    let v: serde_json::Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/v1/models"));
}

#[tokio::test]
async fn weights_split_traffic_within_five_percent() {
    let mut a = d("a", "g");
    a.weight = Some(3.0);
    let mut b = d("b", "g");
    b.weight = Some(1.0);
    let mut svc = Router::new(stub(|_| None), Arc::new(table(vec![a, b])));
    fastrand::seed(42);
    let mut n_a = 0;
    for _ in 0..1000 {
        if served_by(&mut svc, "g").await.unwrap() == "a" {
            n_a += 1;
        }
    }
    // Expected 750; 5 % of 1000 either way.
    assert!((700..=800).contains(&n_a), "{n_a}");
}

#[tokio::test]
async fn least_busy_picks_the_idle_deployment() {
    let t = Arc::new(table(vec![d("a", "g"), d("b", "g")]).with_strategy(Strategy::LeastBusy));
    // Hold two streams open on whichever deployments they get, then see where the next goes.
    let slow = service_fn(|r: Request<()>| async move {
        let id = r.extensions().get::<Deployment>().unwrap().id.to_string();
        Ok::<_, BoxError>(Response::new(body::full(id)))
    });
    let mut svc = Router::new(slow, t.clone());
    // Occupy "a" with an in-flight count by hand through the state.
    let state = t.all().into_iter().find(|(s, _)| &*s.id == "a").unwrap().1;
    state.in_flight.fetch_add(5, Ordering::Relaxed);
    for _ in 0..50 {
        assert_eq!(served_by(&mut svc, "g").await.unwrap(), "b");
    }
    assert_eq!(
        state.in_flight(),
        5,
        "completed requests leave the count as they found it"
    );
}

#[tokio::test(start_paused = true)]
async fn latency_based_prefers_the_fast_deployment() {
    let t = Arc::new(table(vec![d("fast", "g"), d("slow", "g")]).with_strategy(
        Strategy::LatencyBased {
            ttl: Duration::from_secs(3600),
            buffer: 0.0,
        },
    ));
    let svc = service_fn(|r: Request<()>| async move {
        let id = r.extensions().get::<Deployment>().unwrap().id.to_string();
        let delay = if id == "fast" { 10 } else { 200 };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        Ok::<_, BoxError>(Response::new(body::full(id)))
    });
    let mut svc = Router::new(svc, t);
    // The first two requests measure both (unmeasured deployments go first).
    let mut seen = vec![
        served_by(&mut svc, "g").await.unwrap(),
        served_by(&mut svc, "g").await.unwrap(),
    ];
    seen.sort();
    assert_eq!(seen, ["fast", "slow"]);
    for _ in 0..20 {
        assert_eq!(served_by(&mut svc, "g").await.unwrap(), "fast");
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_cools_the_deployment_down_for_its_retry_after_then_it_returns() {
    let fail_a = Arc::new(AtomicUsize::new(1));
    let f = fail_a.clone();
    let mut svc = Router::new(
        stub(move |id| {
            (id == "a" && f.fetch_sub(1, Ordering::SeqCst) > 0).then(|| {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, Origin::Upstream, "slow down")
                    .with_retry_after(Some(Duration::from_secs(30)))
            })
        }),
        Arc::new(table(vec![d("a", "g"), d("b", "g")])),
    );
    // Find "a" failing once.
    let mut failed = false;
    for _ in 0..50 {
        if served_by(&mut svc, "g").await.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed);
    // Now "a" is skipped for 30 s: everything goes to "b", instantly.
    for _ in 0..50 {
        assert_eq!(served_by(&mut svc, "g").await.unwrap(), "b");
    }
    tokio::time::advance(Duration::from_secs(31)).await;
    let mut back = false;
    for _ in 0..100 {
        if served_by(&mut svc, "g").await.unwrap() == "a" {
            back = true;
            break;
        }
    }
    assert!(back, "a returns after its cooldown");
}

#[tokio::test(start_paused = true)]
async fn server_errors_cool_down_after_allowed_fails_and_every_group_member_cooling_is_a_503() {
    let policy = CooldownPolicy {
        allowed_fails: 1,
        cooldown_time: Duration::from_secs(5),
        ..Default::default()
    };
    let t = Arc::new(table(vec![d("a", "g")]).with_cooldown_policy(policy));
    let mut svc = Router::new(
        stub(|_| {
            Some(ApiError::new(
                StatusCode::BAD_GATEWAY,
                Origin::Upstream,
                "down",
            ))
        }),
        t,
    );
    assert_eq!(served_by(&mut svc, "g").await.unwrap_err().status(), 502);
    assert_eq!(
        served_by(&mut svc, "g").await.unwrap_err().status(),
        502,
        "second failure: over allowed_fails"
    );
    let e = served_by(&mut svc, "g").await.unwrap_err();
    assert_eq!(e.status(), 503, "{e}");
    assert!(e.message().contains("a: cooling down"), "{e}");
    assert_eq!(e.code().as_deref(), Some("no_deployment_available"));
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(
        served_by(&mut svc, "g").await.unwrap_err().status(),
        502,
        "called again after the cooldown"
    );
}

/// A cooldown lasts at most an hour, whether its length comes from a `Retry-After` (two hours
/// here) or from `cooldown_time` (two hours): still cooling a second before the hour, back
/// just after it.
#[tokio::test(start_paused = true)]
async fn any_cooldown_is_at_most_one_hour() {
    let two_hours = Duration::from_secs(7200);
    for (status, policy) in [
        (StatusCode::TOO_MANY_REQUESTS, CooldownPolicy::default()),
        (
            StatusCode::BAD_GATEWAY,
            CooldownPolicy {
                allowed_fails: 0,
                cooldown_time: two_hours,
                ..Default::default()
            },
        ),
    ] {
        let failed = Arc::new(AtomicUsize::new(0));
        let f = failed.clone();
        let t = Arc::new(table(vec![d("a", "g")]).with_cooldown_policy(policy));
        let mut svc = Router::new(
            stub(move |_| {
                (f.fetch_add(1, Ordering::SeqCst) == 0).then(|| {
                    ApiError::new(status, Origin::Upstream, "away")
                        .with_retry_after(Some(two_hours))
                })
            }),
            t,
        );
        assert_eq!(served_by(&mut svc, "g").await.unwrap_err().status(), status);
        tokio::time::advance(Duration::from_secs(3599)).await;
        let e = served_by(&mut svc, "g").await.unwrap_err();
        assert!(e.message().contains("a: cooling down"), "{status}: {e}");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(served_by(&mut svc, "g").await.unwrap(), "a", "{status}");
    }
}

#[tokio::test]
async fn client_errors_never_cool_down_and_cooldowns_can_be_disabled() {
    let t = Arc::new(table(vec![d("a", "g")]));
    let mut svc = Router::new(
        stub(|_| {
            Some(ApiError::new(
                StatusCode::BAD_REQUEST,
                Origin::Upstream,
                "bad",
            ))
        }),
        t,
    );
    for _ in 0..10 {
        assert_eq!(served_by(&mut svc, "g").await.unwrap_err().status(), 400);
    }
    let t = Arc::new(
        table(vec![d("a", "g")]).with_cooldown_policy(CooldownPolicy {
            disabled: true,
            ..Default::default()
        }),
    );
    let mut svc = Router::new(
        stub(|_| {
            Some(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                Origin::Upstream,
                "slow",
            ))
        }),
        t,
    );
    for _ in 0..10 {
        assert_eq!(served_by(&mut svc, "g").await.unwrap_err().status(), 429);
    }
}

#[tokio::test(start_paused = true)]
async fn rpm_and_rpd_limits_skip_the_deployment_instead_of_calling_it() {
    let mut a = d("a", "g");
    a.rpm = Some(2);
    let mut b = d("b", "g");
    b.rpd = Some(3);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let mut svc = Router::new(
        stub(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            None
        }),
        Arc::new(table(vec![a, b])),
    );
    let mut served = Vec::new();
    for _ in 0..5 {
        served.push(served_by(&mut svc, "g").await.unwrap());
    }
    assert_eq!(served.iter().filter(|s| *s == "a").count(), 2);
    assert_eq!(served.iter().filter(|s| *s == "b").count(), 3);
    let e = served_by(&mut svc, "g").await.unwrap_err();
    assert_eq!(
        e.status(),
        429,
        "every deployment at its own limit is a rate limit: {e}"
    );
    assert!(
        e.message().contains("a: at its rpm limit") && e.message().contains("b: at its rpd limit"),
        "{e}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        5,
        "a deployment at its limit is not called"
    );
    // A new minute gives "a" its rpm back; "b" stays at its daily quota.
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(served_by(&mut svc, "g").await.unwrap(), "a");
}

/// A deployment's `rpm` is the same sliding window as a key's `rpm_limit`: a burst of 30
/// late in a minute, then one request a second, reaches the provider no more than 30 times in
/// any 60 s (fixed minutes let 30 more through as the next minute began).
#[tokio::test(start_paused = true)]
async fn deployment_rpm_holds_in_any_minute() {
    let mut a = d("a", "g");
    a.rpm = Some(30);
    let mut svc = Router::new(stub(|_| None), Arc::new(table(vec![a])));
    let start = tokio::time::Instant::now();
    tokio::time::advance(Duration::from_secs(50)).await;
    let mut served = Vec::new();
    for _ in 0..30 {
        if served_by(&mut svc, "g").await.is_ok() {
            served.push(start.elapsed());
        }
    }
    assert_eq!(served.len(), 30);
    for _ in 0..150 {
        tokio::time::advance(Duration::from_secs(1)).await;
        if served_by(&mut svc, "g").await.is_ok() {
            served.push(start.elapsed());
        }
    }
    let worst = served
        .iter()
        .map(|&t| {
            served
                .iter()
                .filter(|&&u| u >= t && u < t + Duration::from_secs(60))
                .count()
        })
        .max()
        .unwrap();
    assert_eq!(worst, 30, "{served:?}");
    assert!(served.len() >= 55, "the rate comes back: {}", served.len());
}

#[tokio::test]
async fn a_retry_prefers_another_deployment_and_reports_what_it_picked() {
    let mut svc = Router::new(
        stub(|_| None),
        Arc::new(table(vec![d("a", "g"), d("b", "g")])),
    );
    for _ in 0..20 {
        let mut r = req("g");
        let slot = RouteSlot::new();
        r.extensions_mut().insert(RouteHint {
            exclude: vec!["a".into()],
            ..Default::default()
        });
        r.extensions_mut().insert(slot.clone());
        let res = svc.ready().await.unwrap().call(r).await.unwrap();
        assert_eq!(res.headers()["x-llmgate-deployment"], "b");
        let routed = slot.get().unwrap();
        assert_eq!(&*routed.group, "g");
        assert_eq!(routed.alternatives, 0);
    }
    // With every deployment tried, one of them is tried again.
    let mut r = req("g");
    r.extensions_mut().insert(RouteHint {
        exclude: vec!["a".into(), "b".into()],
        ..Default::default()
    });
    assert!(svc.ready().await.unwrap().call(r).await.is_ok());
}

#[tokio::test]
async fn a_prompt_longer_than_every_deployment_accepts_is_a_context_length_error_up_front() {
    let mut small = d("small", "g");
    small.model_info.max_input_tokens = Some(10);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let mut svc = Router::new(
        stub(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            None
        }),
        Arc::new(table(vec![small])),
    );
    assert_eq!(served_by(&mut svc, "g").await.unwrap(), "small");
    let mut r = Request::new(());
    let long = "word ".repeat(100);
    let body = format!(r#"{{"model":"g","messages":[{{"role":"user","content":"{long}"}}]}}"#);
    r.extensions_mut()
        .insert(LlmRequest::parse(Endpoint::ChatCompletions, body.as_bytes()).unwrap());
    let e = ApiError::from_box(svc.ready().await.unwrap().call(r).await.unwrap_err());
    assert_eq!(e.status(), 400);
    assert_eq!(e.code().as_deref(), Some("context_length_exceeded"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the long prompt never reached the provider"
    );
}

#[tokio::test]
async fn forced_failures_do_not_count_against_the_deployment() {
    let mut svc = Router::new(stub(|_| None), Arc::new(table(vec![d("a", "g")])));
    for _ in 0..10 {
        let mut r = req("g");
        r.extensions_mut().insert(RouteHint {
            fail_with: Some(429),
            ..Default::default()
        });
        let e = ApiError::from_box(svc.ready().await.unwrap().call(r).await.unwrap_err());
        assert_eq!(e.status(), 429);
    }
    assert_eq!(served_by(&mut svc, "g").await.unwrap(), "a");
}

#[tokio::test]
async fn a_retry_that_tried_every_deployment_may_pick_one_it_put_in_cooldown() {
    use std::sync::atomic::AtomicBool;
    let fail_once = Arc::new(AtomicBool::new(true));
    let f = fail_once.clone();
    let mut svc = Router::new(
        stub(move |_| {
            f.swap(false, Ordering::SeqCst).then(|| {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, Origin::Upstream, "slow down")
            })
        }),
        Arc::new(table(vec![d("a", "g")])),
    );
    let retry = |exclude: &[&str]| {
        let mut r = req("g");
        r.extensions_mut().insert(RouteHint {
            exclude: exclude.iter().map(|&e| e.into()).collect(),
            ..Default::default()
        });
        r
    };
    assert_eq!(served_by(&mut svc, "g").await.unwrap_err().status(), 429);
    // Cooling down: a new request is not routed to it ...
    let e = served_by(&mut svc, "g").await.unwrap_err();
    assert_eq!(e.code().as_deref(), Some("no_deployment_available"));
    // ... but the request that tried it, retrying after its backoff with nothing else left, is.
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(retry(&["a"]))
        .await
        .unwrap();
    assert_eq!(res.headers()["x-llmgate-deployment"], "a");

    // Not when a health check took it out: that was not this request's doing.
    let t = Arc::new(table(vec![d("a", "g")]));
    let mut svc = Router::new(stub(|_| None), t.clone());
    t.mark_unhealthy("a", Duration::from_secs(60));
    let e = ApiError::from_box(
        svc.ready()
            .await
            .unwrap()
            .call(retry(&["a"]))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code().as_deref(), Some("no_deployment_available"));

    // In a group where another deployment is cooling down without this request having tried
    // it, the retry does not go back to the one it tried.
    let mut svc = Router::new(
        stub(|_| {
            Some(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                Origin::Upstream,
                "slow down",
            ))
        }),
        Arc::new(table(vec![d("a", "g"), d("b", "g")])),
    );
    for _ in 0..2 {
        let _ = served_by(&mut svc, "g").await;
    }
    let e = ApiError::from_box(
        svc.ready()
            .await
            .unwrap()
            .call(retry(&["a"]))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code().as_deref(), Some("no_deployment_available"));
}

#[tokio::test]
async fn a_fallback_target_may_be_an_alias_or_a_name_the_catch_all_serves() {
    let t = ModelTable::new(
        [Arc::new(d("a", "gpt")), Arc::new(d("c", "*"))],
        [("spare".into(), "gpt".into(), true)],
    );
    let mut svc = Router::new(stub(|_| None), Arc::new(t));
    for (target, served) in [("spare", "a"), ("gpt", "a"), ("anything", "c")] {
        let mut r = req("x");
        r.extensions_mut().insert(RouteHint {
            group: Some(target.into()),
            ..Default::default()
        });
        let res = svc.ready().await.unwrap().call(r).await.unwrap();
        assert_eq!(res.headers()["x-llmgate-deployment"], served, "{target}");
    }
}

//! The fallback decision as a table: error class x alternatives x budget (x the fallbacks
//! configured and the retries allowed) -> what happens after the first failed attempt.
//!
//! Every row is checked here through the whole layer, over a router stand-in whose first
//! attempt fails as the row says; the rows were derived from the behaviour `tests.rs` pins
//! (and from the rules in the crate docs), one per branch of the decision.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use llmgate_core::{
    body, ApiError, BoxBody, BoxError, Deployment, DeploymentSpec, ErrorContract, Origin,
    ProviderKind, RouteHint, RouteSlot, Routed,
};
use tower::{service_fn, ServiceExt};

use crate::{FallbackLayer, FallbackPolicy, RetryBudget};

/// A failed attempt's error: its status, its code, and the provider's `Retry-After`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fault {
    status: u16,
    code: Option<&'static str>,
    retry_after_secs: u64,
}

impl Fault {
    const fn new(status: u16, code: Option<&'static str>) -> Self {
        Fault {
            status,
            code,
            retry_after_secs: 2,
        }
    }

    /// The error the attempt fails with, as the router or provider would raise it.
    pub(crate) fn error(&self, origin: Origin) -> ApiError {
        let status = StatusCode::from_u16(self.status).unwrap();
        let mut e = ApiError::new(status, origin, "p-0 failed")
            .with_retry_after(Some(Duration::from_secs(self.retry_after_secs)));
        if let Some(c) = self.code {
            e = e.with_code(c);
        }
        e
    }
}

const BAD_REQUEST: Fault = Fault::new(400, None);
const CONTEXT_WINDOW: Fault = Fault::new(400, Some("context_length_exceeded"));
const CONTENT_POLICY: Fault = Fault::new(400, Some("content_policy_violation"));
const AUTH: Fault = Fault::new(401, None);
const NOT_FOUND: Fault = Fault::new(404, None);
const TIMEOUT: Fault = Fault::new(408, None);
const RATE_LIMIT: Fault = Fault::new(429, None);
/// A 429 whose `Retry-After` is longer than `max_retry_after` (60 s by default).
const LONG_WAIT: Fault = Fault {
    status: 429,
    code: None,
    retry_after_secs: 120,
};
const SERVER: Fault = Fault::new(500, None);

const UP: Origin = Origin::Upstream;
const DOWN: Origin = Origin::Downstream;

/// How much retry budget is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    Empty,
    Plenty,
}
const EMPTY: Budget = Budget::Empty;
const PLENTY: Budget = Budget::Plenty;

/// Which fallbacks exist for the requested group `primary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fallbacks {
    /// None at all.
    None,
    /// `fallbacks: primary -> backup`, `context_window_fallbacks: primary -> long`,
    /// `content_policy_fallbacks: primary -> safe`.
    Configured,
    /// Only `default_fallbacks: [backup]`.
    Default,
    /// `Configured`, and the request's own `"fallbacks": ["mine"]`.
    Request,
}
const NONE: Fallbacks = Fallbacks::None;
const CONFIGURED: Fallbacks = Fallbacks::Configured;
const DEFAULT_ONLY: Fallbacks = Fallbacks::Default;
const REQUEST: Fallbacks = Fallbacks::Request;

/// The retries allowed in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retries {
    /// `num_retries` left at LiteLLM's default, 2.
    Default,
    /// `num_retries: 0`.
    Zero,
    /// `retry_policy: {BadRequestErrorRetries: 1}`.
    BadRequestOnce,
}
const TWO: Retries = Retries::Default;
const ZERO: Retries = Retries::Zero;
const BAD_REQUEST_ONCE: Retries = Retries::BadRequestOnce;

/// What happens after the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Another deployment of the group, at once.
    RetryOther,
    /// The same deployment again, after this many seconds.
    RetrySame(u64),
    /// This fallback group, at once.
    FallBack(&'static str),
    /// The client gets the failure, with this status.
    GiveUp(u16),
}
use Expect::{FallBack, GiveUp, RetryOther, RetrySame};

/// One row: the failure and the situation it happens in, and what must follow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub(crate) fault: Fault,
    pub(crate) origin: Origin,
    /// `None`: the router picked no deployment (the whole group is cooling down, or its
    /// up-front check failed); `Some(n)`: it picked one, and `n` healthy others are left.
    pub(crate) alternatives: Option<usize>,
    pub(crate) budget: Budget,
    pub(crate) fallbacks: Fallbacks,
    pub(crate) retries: Retries,
    pub(crate) expect: Expect,
}

const fn r(
    fault: Fault,
    origin: Origin,
    alternatives: Option<usize>,
    budget: Budget,
    fallbacks: Fallbacks,
    retries: Retries,
    expect: Expect,
) -> Row {
    Row {
        fault,
        origin,
        alternatives,
        budget,
        fallbacks,
        retries,
        expect,
    }
}

#[rustfmt::skip]
pub(crate) const ROWS: &[Row] = &[
    //  fault           origin  picked    budget  fallbacks     retries           then
    // 5xx: another deployment first, then a fallback group, the same deployment only when
    // neither is left; nothing without budget or retries.
    r(SERVER,          UP,   Some(1), PLENTY, NONE,         TWO,              RetryOther),
    r(SERVER,          UP,   Some(1), PLENTY, CONFIGURED,   TWO,              RetryOther),
    r(SERVER,          UP,   Some(0), PLENTY, NONE,         TWO,              RetrySame(2)),
    r(SERVER,          UP,   Some(0), PLENTY, CONFIGURED,   TWO,              FallBack("backup")),
    r(SERVER,          UP,   Some(0), PLENTY, DEFAULT_ONLY, TWO,              FallBack("backup")),
    r(SERVER,          UP,   Some(0), PLENTY, REQUEST,      TWO,              FallBack("mine")),
    r(SERVER,          UP,   Some(1), EMPTY,  CONFIGURED,   TWO,              GiveUp(500)),
    r(SERVER,          UP,   Some(0), EMPTY,  NONE,         TWO,              GiveUp(500)),
    r(SERVER,          UP,   Some(1), PLENTY, NONE,         ZERO,             GiveUp(500)),
    r(SERVER,          UP,   Some(1), PLENTY, CONFIGURED,   ZERO,             FallBack("backup")),
    r(SERVER,          UP,   None,    PLENTY, CONFIGURED,   TWO,              FallBack("backup")),
    r(SERVER,          UP,   None,    PLENTY, NONE,         TWO,              GiveUp(500)),
    // 429: the same, and a Retry-After too long to wait for is not waited for.
    r(RATE_LIMIT,      UP,   Some(1), PLENTY, NONE,         TWO,              RetryOther),
    r(RATE_LIMIT,      UP,   Some(0), PLENTY, NONE,         TWO,              RetrySame(2)),
    r(RATE_LIMIT,      UP,   Some(0), PLENTY, CONFIGURED,   TWO,              FallBack("backup")),
    r(LONG_WAIT,       UP,   Some(1), PLENTY, NONE,         TWO,              RetryOther),
    r(LONG_WAIT,       UP,   Some(0), PLENTY, NONE,         TWO,              GiveUp(429)),
    r(LONG_WAIT,       UP,   Some(0), PLENTY, CONFIGURED,   TWO,              FallBack("backup")),
    // Timeouts, like 5xx.
    r(TIMEOUT,         UP,   Some(1), PLENTY, NONE,         TWO,              RetryOther),
    r(TIMEOUT,         UP,   Some(0), PLENTY, NONE,         TWO,              RetrySame(2)),
    r(TIMEOUT,         UP,   Some(0), PLENTY, CONFIGURED,   TWO,              FallBack("backup")),
    // A wrong key: another deployment (it may hold a valid key), never the same one.
    r(AUTH,            UP,   Some(1), PLENTY, NONE,         TWO,              RetryOther),
    r(AUTH,            UP,   Some(1), EMPTY,  NONE,         TWO,              GiveUp(401)),
    r(AUTH,            UP,   Some(0), PLENTY, NONE,         TWO,              GiveUp(401)),
    r(AUTH,            UP,   Some(0), PLENTY, CONFIGURED,   TWO,              FallBack("backup")),
    // 404: not retried in the group, but fallen back.
    r(NOT_FOUND,       UP,   Some(1), PLENTY, NONE,         TWO,              GiveUp(404)),
    r(NOT_FOUND,       UP,   Some(1), PLENTY, CONFIGURED,   TWO,              FallBack("backup")),
    // A bad request: neither, unless `retry_policy` names it (then another deployment only).
    r(BAD_REQUEST,     UP,   Some(1), PLENTY, CONFIGURED,   TWO,              GiveUp(400)),
    r(BAD_REQUEST,     UP,   Some(1), PLENTY, CONFIGURED,   BAD_REQUEST_ONCE, RetryOther),
    r(BAD_REQUEST,     UP,   Some(0), PLENTY, CONFIGURED,   BAD_REQUEST_ONCE, GiveUp(400)),
    // A prompt too long: its own fallbacks only, never retried in the group; also when the
    // router's up-front check (the client's side of the line, no deployment) says so.
    r(CONTEXT_WINDOW,  UP,   Some(1), PLENTY, CONFIGURED,   TWO,              FallBack("long")),
    r(CONTEXT_WINDOW,  UP,   Some(1), PLENTY, REQUEST,      TWO,              FallBack("long")),
    r(CONTEXT_WINDOW,  UP,   Some(1), PLENTY, NONE,         TWO,              GiveUp(400)),
    r(CONTEXT_WINDOW,  UP,   Some(1), PLENTY, DEFAULT_ONLY, TWO,              GiveUp(400)),
    r(CONTEXT_WINDOW,  UP,   Some(1), EMPTY,  CONFIGURED,   TWO,              GiveUp(400)),
    r(CONTEXT_WINDOW,  DOWN, None,    PLENTY, CONFIGURED,   TWO,              FallBack("long")),
    // A content-policy refusal: the same, with its own list.
    r(CONTENT_POLICY,  UP,   Some(1), PLENTY, CONFIGURED,   TWO,              FallBack("safe")),
    r(CONTENT_POLICY,  UP,   Some(1), PLENTY, DEFAULT_ONLY, TWO,              GiveUp(400)),
    // The client's own mistakes fail the same everywhere, whatever their status.
    r(BAD_REQUEST,     DOWN, None,    PLENTY, CONFIGURED,   TWO,              GiveUp(400)),
    r(RATE_LIMIT,      DOWN, Some(1), PLENTY, CONFIGURED,   TWO,              GiveUp(429)),
    r(SERVER,          DOWN, Some(1), PLENTY, CONFIGURED,   TWO,              GiveUp(500)),
];

impl Row {
    /// The policy for the row's fallbacks, retries and budget.
    pub(crate) fn policy(&self) -> FallbackPolicy {
        let mut p = FallbackPolicy::default();
        let one = |from: &str, to: &str| {
            std::iter::once((from.to_owned(), vec![to.to_owned()])).collect()
        };
        match self.fallbacks {
            Fallbacks::None => {}
            Fallbacks::Configured | Fallbacks::Request => {
                p.fallbacks = one("primary", "backup");
                p.context_window_fallbacks = one("primary", "long");
                p.content_policy_fallbacks = one("primary", "safe");
            }
            Fallbacks::Default => p.default_fallbacks = vec!["backup".to_owned()],
        }
        match self.retries {
            Retries::Default => {}
            Retries::Zero => p.num_retries = 0,
            Retries::BadRequestOnce => {
                p.retry_policy =
                    std::iter::once((llmgate_core::ErrorClass::BadRequest, 1)).collect();
            }
        }
        if self.budget == Budget::Empty {
            p.budget = Arc::new(RetryBudget::new(Duration::from_secs(10), 0, 0.0));
        }
        p
    }

    /// The request's extra body fields.
    pub(crate) fn request_extra(&self) -> &'static str {
        match self.fallbacks {
            Fallbacks::Request => r#","fallbacks":["mine"]"#,
            _ => "",
        }
    }

    /// What the router reports for the failed attempt.
    pub(crate) fn routed(&self) -> Routed {
        Routed {
            group: "primary".into(),
            deployment: self.alternatives.map(|_| deployment("p-0", "primary")),
            alternatives: self.alternatives.unwrap_or(0),
        }
    }
}

fn deployment(id: &str, group: &str) -> Deployment {
    Deployment(Arc::new(DeploymentSpec::new(
        id,
        group,
        ProviderKind::OpenAi,
        "m",
    )))
}

/// A fallback group's name as the tests spell it.
pub(crate) fn known(group: &str) -> &'static str {
    [
        "backup", "long", "safe", "mine", "second", "local", "b", "closed", "open", "other",
    ]
    .into_iter()
    .find(|k| *k == group)
    .unwrap_or("(unexpected group)")
}

/// Runs the row through the layer: the first attempt fails as the row says, a second one (if
/// any) answers; what the second attempt asked for, and when, is the decision.
async fn through_the_layer(row: Row) -> Expect {
    let hints: Arc<Mutex<Vec<RouteHint>>> = Arc::default();
    let seen = hints.clone();
    let router = service_fn(move |req: Request<()>| {
        let seen = seen.clone();
        async move {
            let hint = req.extensions().get::<RouteHint>().cloned().unwrap();
            let slot = req.extensions().get::<RouteSlot>().cloned().unwrap();
            let first = {
                let mut seen = seen.lock().unwrap();
                seen.push(hint.clone());
                seen.len() == 1
            };
            if first {
                slot.set(row.routed());
                return Err::<Response<BoxBody>, BoxError>(row.fault.error(row.origin).boxed());
            }
            let group = hint.group.unwrap_or_else(|| "primary".into());
            slot.set(Routed {
                deployment: Some(deployment("x-0", &group)),
                group,
                alternatives: 0,
            });
            Ok(Response::new(body::full("ok")))
        }
    });
    let svc = tower::ServiceBuilder::new()
        .layer(FallbackLayer::new(row.policy()))
        .service(router);
    let started = tokio::time::Instant::now();
    let result = svc.oneshot(super::req(row.request_extra())).await;
    let waited = started.elapsed();
    let hints = hints.lock().unwrap().clone();
    match (result, hints.get(1)) {
        (Err(e), None) => GiveUp(ApiError::from_box(e).status().as_u16()),
        (Ok(_), Some(second)) => match &second.group {
            Some(g) => {
                assert!(second.exclude.is_empty(), "a fallback group starts afresh");
                FallBack(known(g))
            }
            None => {
                let excluded: Vec<&str> = second.exclude.iter().map(|e| &**e).collect();
                assert_eq!(excluded, ["p-0"], "the failed deployment is excluded");
                if waited.is_zero() {
                    RetryOther
                } else {
                    RetrySame(waited.as_secs())
                }
            }
        },
        (result, second) => panic!("unexpected: {:?} then {second:?}", result.map(|_| ())),
    }
}

#[tokio::test(start_paused = true)]
async fn every_row_through_the_layer() {
    for (i, row) in ROWS.iter().enumerate() {
        let got = through_the_layer(*row).await;
        assert_eq!(got, row.expect, "row {i}: {row:?}");
    }
}

//! The plan alone: no service, no clock. The table of `tests/table.rs` (error class x
//! alternatives x budget x fallbacks x retries), then the sequences `tests.rs` runs through the
//! layer, step by step.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use http::{Response, StatusCode};
use llmgate_core::{
    ApiError, Deployment, DeploymentSpec, Endpoint, ErrorContract, LlmRequest, Origin,
    ProviderKind, Routed,
};

use super::{Asked, Budget, Failure, Plan, Step};
use crate::tests::table::{self, Expect, ROWS};
use crate::FallbackPolicy;

/// A fixed allowance of retries.
struct Tokens(Cell<u32>);

impl Tokens {
    fn new(n: u32) -> Self {
        Tokens(Cell::new(n))
    }
}

impl Budget for Tokens {
    fn withdraw(&self) -> bool {
        let n = self.0.get();
        self.0.set(n.saturating_sub(1));
        n > 0
    }
}

fn asked(policy: &FallbackPolicy, model: &str, extra: &str) -> Asked {
    let body =
        format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#);
    Asked::of(
        Some(&LlmRequest::parse(Endpoint::ChatCompletions, body.as_bytes()).unwrap()),
        policy,
    )
}

/// The plan for a request for `primary`, with the backoff's jitter at its top, so waits are
/// exact.
fn plan<'p>(policy: &'p FallbackPolicy, extra: &str) -> Plan<'p> {
    plan_for(policy, "primary", extra)
}

fn plan_for<'p>(policy: &'p FallbackPolicy, model: &str, extra: &str) -> Plan<'p> {
    let mut p = Plan::new(policy, asked(policy, model, extra));
    p.jitter = || 1.0;
    p
}

fn expect(step: &Step) -> Expect {
    match step {
        Step::RetryOther => Expect::RetryOther,
        Step::RetrySame(d) => {
            assert_eq!(d.subsec_nanos(), 0, "{d:?}");
            Expect::RetrySame(d.as_secs())
        }
        Step::FallBack(g) => Expect::FallBack(table::known(g)),
        Step::GiveUp(e) => Expect::GiveUp(e.status().as_u16()),
    }
}

#[test]
fn every_row_against_the_plan() {
    for (i, row) in ROWS.iter().enumerate() {
        let policy = row.policy();
        let mut plan = plan(&policy, row.request_extra());
        plan.attempt();
        let budget = Tokens::new(if row.budget == table::Budget::Empty {
            0
        } else {
            100
        });
        let failure = Failure {
            error: row.fault.error(row.origin),
            routed: Some(row.routed()),
            denied: false,
        };
        let got = expect(&plan.next(failure, &budget));
        assert_eq!(got, row.expect, "row {i}: {row:?}");
    }
}

/// An upstream failure of deployment `id` of `group`, with `alternatives` healthy others left.
fn fails(status: u16, id: &str, group: &str, alternatives: usize) -> Failure {
    let spec = DeploymentSpec::new(id, group, ProviderKind::OpenAi, "m");
    Failure {
        error: ApiError::new(
            StatusCode::from_u16(status).unwrap(),
            Origin::Upstream,
            format!("{id} failed"),
        ),
        routed: Some(Routed {
            group: group.into(),
            deployment: Some(Deployment(Arc::new(spec))),
            alternatives,
        }),
        denied: false,
    }
}

/// Runs `failures` through a plan, one attempt each; returns the steps.
fn steps(plan: &mut Plan<'_>, budget: &Tokens, failures: Vec<Failure>) -> Vec<Step> {
    failures
        .into_iter()
        .map(|f| {
            plan.attempt();
            plan.next(f, budget)
        })
        .collect()
}

fn given_up(step: &Step) -> &ApiError {
    match step {
        Step::GiveUp(e) => e,
        other => panic!("not given up: {other:?}"),
    }
}

fn fallbacks(table: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    table
        .iter()
        .map(|(from, to)| {
            (
                (*from).to_owned(),
                to.iter().map(|s| (*s).to_owned()).collect(),
            )
        })
        .collect()
}

#[test]
fn the_seed_chain_falls_back_twice_without_waiting() {
    let policy =
        FallbackPolicy::default().fallbacks(fallbacks(&[("primary", &["second", "local"])]));
    let mut plan = plan(&policy, "");
    let budget = Tokens::new(10);
    let got = steps(
        &mut plan,
        &budget,
        vec![
            fails(429, "key1", "primary", 0),
            fails(429, "key2", "second", 0),
        ],
    );
    let got: Vec<Expect> = got.iter().map(expect).collect();
    assert_eq!(got, [Expect::FallBack("second"), Expect::FallBack("local")]);
    plan.attempt();
    let mut res = Response::new(());
    plan.answered(&mut res);
    assert_eq!(res.headers()["x-llmgate-attempts"], "3");
    assert_eq!(res.headers()["x-llmgate-fallbacks"], "2");
}

#[test]
fn the_same_deployment_waits_longer_each_time_then_gives_up_listing_every_attempt() {
    let policy = FallbackPolicy::default();
    let mut plan = plan(&policy, "");
    let failure = || fails(503, "a", "primary", 0);
    let got = steps(
        &mut plan,
        &Tokens::new(10),
        vec![failure(), failure(), failure()],
    );
    assert!(matches!(got[0], Step::RetrySame(d) if d == Duration::from_millis(500)));
    assert!(matches!(got[1], Step::RetrySame(d) if d == Duration::from_secs(1)));
    let e = given_up(&got[2]);
    assert_eq!(e.status(), 503);
    assert!(
        e.message()
            .starts_with("all 3 attempts failed: a (primary) -> 503"),
        "{e}"
    );
}

#[test]
fn retries_are_counted_per_group_and_start_afresh_in_a_fallback_group() {
    let policy = FallbackPolicy::default()
        .num_retries(1)
        .fallbacks(fallbacks(&[("primary", &["backup"])]));
    let mut plan = plan(&policy, "");
    let got = steps(
        &mut plan,
        &Tokens::new(10),
        vec![
            fails(500, "a", "primary", 2),
            fails(500, "b", "primary", 1),
            fails(500, "c", "backup", 1),
            fails(500, "d", "backup", 1),
        ],
    );
    let got: Vec<Expect> = got.iter().map(expect).collect();
    assert_eq!(
        got,
        [
            Expect::RetryOther,
            Expect::FallBack("backup"),
            Expect::RetryOther,
            Expect::GiveUp(500)
        ]
    );
}

#[test]
fn fallback_chains_do_not_loop() {
    let policy = FallbackPolicy::default()
        .num_retries(0)
        .fallbacks(fallbacks(&[("primary", &["b"]), ("b", &["primary"])]));
    let mut plan = plan(&policy, "");
    let got = steps(
        &mut plan,
        &Tokens::new(10),
        vec![fails(429, "a", "primary", 0), fails(429, "bb", "b", 0)],
    );
    assert_eq!(expect(&got[0]), Expect::FallBack("b"));
    let e = given_up(&got[1]);
    assert_eq!(e.status(), 429);
    assert!(
        e.message().contains("a (primary) -> 429") && e.message().contains("bb (b) -> 429"),
        "{e}"
    );
}

#[test]
fn a_budget_of_one_allows_one_retry() {
    let policy = FallbackPolicy::default();
    let mut plan = plan(&policy, "");
    let got = steps(
        &mut plan,
        &Tokens::new(1),
        vec![fails(500, "a", "primary", 2), fails(500, "b", "primary", 1)],
    );
    let got: Vec<Expect> = got.iter().map(expect).collect();
    assert_eq!(got, [Expect::RetryOther, Expect::GiveUp(500)]);
}

#[test]
fn a_fallback_the_caller_may_not_reach_is_skipped_without_budget_and_named() {
    let policy = FallbackPolicy::default()
        .num_retries(0)
        .fallbacks(fallbacks(&[("primary", &["closed", "open"])]));
    let mut plan = plan(&policy, "");
    let mut refused = fails(403, "x", "closed", 0);
    refused.denied = true;
    let got = steps(
        &mut plan,
        &Tokens::new(1),
        vec![
            fails(500, "a", "primary", 0),
            refused,
            fails(500, "o", "open", 0),
        ],
    );
    assert_eq!(expect(&got[0]), Expect::FallBack("closed"));
    assert_eq!(
        expect(&got[1]),
        Expect::FallBack("open"),
        "no budget needed"
    );
    let e = given_up(&got[2]);
    assert!(
        e.message()
            .starts_with("all 2 attempts failed: a (primary) -> 500"),
        "{e}"
    );
    assert!(
        e.message()
            .ends_with("; fallbacks skipped because this key may not call them: closed"),
        "{e}"
    );
}

#[test]
fn a_refused_or_unrouted_first_attempt_gives_up_with_its_error_as_it_is() {
    let policy = FallbackPolicy::default().fallbacks(fallbacks(&[("primary", &["backup"])]));
    let mut refused = fails(403, "a", "primary", 1);
    refused.denied = true;
    let mut unrouted = fails(500, "a", "primary", 1);
    unrouted.routed = None;
    for failure in [refused, unrouted] {
        let mut plan = plan(&policy, "");
        let got = steps(&mut plan, &Tokens::new(10), vec![failure]);
        assert_eq!(given_up(&got[0]).message(), "a failed");
    }
}

#[test]
fn mock_testing_fallbacks_fails_the_requested_group_only() {
    let policy = FallbackPolicy::default();
    let mut plan = plan(
        &policy,
        r#","mock_testing_fallbacks":true,"fallbacks":["other"]"#,
    );
    assert_eq!(plan.attempt().fail_with, Some(500));
    let step = plan.next(fails(500, "a", "primary", 0), &Tokens::new(10));
    assert_eq!(expect(&step), Expect::FallBack("other"));
    assert_eq!(plan.attempt().fail_with, None);
}

#[test]
fn the_requests_num_retries_wins_over_retry_policy_and_the_deployments_max_retries() {
    let policy =
        FallbackPolicy::default().retry_policy([(llmgate_core::ErrorClass::InternalServer, 3)]);
    let mut plan = plan(&policy, r#","num_retries":0"#);
    let step = plan.next(fails(500, "a", "primary", 2), &Tokens::new(10));
    assert_eq!(expect(&step), Expect::GiveUp(500));
}

fn group_of(step: &Step) -> &str {
    match step {
        Step::FallBack(g) => g,
        other => panic!("not a fallback: {other:?}"),
    }
}

#[test]
fn a_list_alias_tries_its_groups_in_order_then_the_first_groups_fallbacks() {
    // `model_group_alias: {smart: [primary, second, third]}`, and primary's own fallback.
    let policy = FallbackPolicy::default()
        .num_retries(0)
        .fallbacks(fallbacks(&[("primary", &["local"])]))
        .alias_fallbacks(fallbacks(&[("smart", &["second", "third"])]));
    let mut plan = plan_for(&policy, "smart", "");
    let got = steps(
        &mut plan,
        &Tokens::new(10),
        vec![
            fails(500, "a", "primary", 0),
            fails(500, "b", "second", 0),
            fails(500, "c", "third", 0),
        ],
    );
    let groups: Vec<&str> = got.iter().map(group_of).collect();
    assert_eq!(groups, ["second", "third", "local"]);

    // A request for the group itself does not take the alias's chain.
    let mut plan = plan_for(&policy, "primary", "");
    let got = steps(
        &mut plan,
        &Tokens::new(10),
        vec![fails(500, "a", "primary", 0)],
    );
    assert_eq!(group_of(&got[0]), "local");
}

#[test]
fn retry_after_is_the_least_wait_before_the_same_deployment_again() {
    let policy = FallbackPolicy::default().min_retry_wait(Duration::from_secs(5));
    let mut plan = plan(&policy, "");
    let got = steps(
        &mut plan,
        &Tokens::new(10),
        vec![fails(503, "a", "primary", 0), fails(503, "a", "primary", 1)],
    );
    assert!(
        matches!(got[0], Step::RetrySame(d) if d == Duration::from_secs(5)),
        "{got:?}"
    );
    // Another healthy deployment is still tried at once.
    assert!(matches!(got[1], Step::RetryOther), "{got:?}");
}

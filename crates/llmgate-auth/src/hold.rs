//! [`Budgets`]: reserving a request's estimated cost against its key's budgets in a
//! [`BudgetLedger`] when it is admitted, and settling it through a [`BudgetHold`] when metering
//! knows its cost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use llmgate_core::{BudgetHold, LlmRequest, VirtualKey};

use crate::{
    Admission, Budget, BudgetLedger, Error, TeamView, UserView, TEAM_INVALIDATION_PREFIX,
    USER_INVALIDATION_PREFIX,
};

/// Estimates a request's cost in USD before it is sent (its prompt at the model's input
/// price, its `max_tokens`, or a default, at the output price). Only the reservation uses it;
/// the real cost is settled later.
pub type CostEstimate = Arc<dyn Fn(&LlmRequest) -> f64 + Send + Sync>;

/// How long a ledger entry outlives its period (or, without one, lasts after its last use).
const ENTRY_SLACK: i64 = 86_400;
const NO_PERIOD_TTL: i64 = 7 * 86_400;
/// Settlements are tried this many times, waiting 250 ms doubling in between (about 32 s
/// of waiting in all), so a ledger blip does not leave a reservation behind.
const SETTLE_TRIES: u32 = 8;

/// A ledger and how requests are estimated for it. Cheap to clone.
#[derive(Clone)]
pub struct Budgets {
    ledger: Arc<dyn BudgetLedger>,
    estimate: CostEstimate,
    proxy: Option<ProxyBudget>,
    errors: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
}

/// The gateway's own budget (`litellm_settings.max_budget`, `budget_duration`): every request,
/// whoever makes it, is held to it. Its periods are whole multiples of the duration since the
/// Unix epoch, UTC (`1d` is a UTC day), so every instance and every restart agree on the period
/// without storing it. Cheap to clone; clones share the spend last read from the spend log.
#[derive(Clone, Debug)]
pub struct ProxyBudget {
    max: f64,
    duration: Option<i64>,
    known: Arc<AtomicU64>,
}

impl ProxyBudget {
    /// A budget of `max` USD, reset every `duration` seconds (never, without one).
    pub fn new(max: f64, duration: Option<i64>) -> Self {
        ProxyBudget {
            max,
            duration: duration.filter(|d| *d > 0),
            known: Arc::new(AtomicU64::new(0f64.to_bits())),
        }
    }

    /// The budget, USD.
    pub fn max(&self) -> f64 {
        self.max
    }

    /// The period containing `now`: its start and its end (Unix seconds); `(0, None)` when
    /// the budget never resets.
    pub fn period(&self, now: i64) -> (i64, Option<i64>) {
        match self.duration {
            Some(d) => {
                let start = now.div_euclid(d) * d;
                (start, Some(start.saturating_add(d)))
            }
            None => (0, None),
        }
    }

    /// Records the period's spend as the spend log shows it (the ledger's entry never falls
    /// below it, so a fresh ledger, after a restart, starts from it).
    pub fn set_known(&self, spend: f64) {
        if spend.is_finite() && spend >= 0.0 {
            self.known.store(spend.to_bits(), Ordering::Relaxed);
        }
    }

    fn budget(&self, now: i64) -> Budget {
        let (start, end) = self.period(now);
        Budget {
            id: format!("{PROXY_PREFIX}{start}"),
            max: self.max,
            known: f64::from_bits(self.known.load(Ordering::Relaxed)),
            expires_at: end.map_or(now.saturating_add(NO_PERIOD_TTL), |t| {
                t.saturating_add(ENTRY_SLACK)
            }),
        }
    }
}

/// The ledger id of the gateway's budget, before its period's start.
const PROXY_PREFIX: &str = "proxy:";

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets")
            .field("ledger", &self.ledger)
            .finish_non_exhaustive()
    }
}

impl Budgets {
    /// Budgets counted in `ledger`, each request reserving `estimate`'s USD when admitted.
    pub fn new(ledger: Arc<dyn BudgetLedger>, estimate: CostEstimate) -> Self {
        Budgets {
            ledger,
            estimate,
            proxy: None,
            errors: Arc::default(),
            lost: Arc::default(),
        }
    }

    /// Holds every request to `proxy` too.
    #[must_use]
    pub fn with_proxy_budget(mut self, proxy: ProxyBudget) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// The gateway's own budget, when it has one.
    pub fn proxy_budget(&self) -> Option<&ProxyBudget> {
        self.proxy.as_ref()
    }

    /// The ledger.
    pub fn ledger(&self) -> &Arc<dyn BudgetLedger> {
        &self.ledger
    }

    /// Reservations the ledger could not answer (the request was judged by the key's cached
    /// record alone).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Settlements given up after every retry (their reservation stays until the entry expires).
    pub fn lost_settlements(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// The request's estimated cost.
    pub fn estimate(&self, req: Option<&LlmRequest>) -> f64 {
        let e = req.map_or(0.0, |r| (self.estimate)(r));
        if e.is_finite() && e > 0.0 {
            e
        } else {
            0.0
        }
    }

    /// Reserves `estimate()` against `key`'s budgets (for `model` too, when it has one) and,
    /// for a call to a model (`model` is `Some`), the gateway's: the admin API and
    /// `/v1/models` stay open when the gateway's budget is spent. `None` when there is no
    /// budget to hold (then `estimate` is not called: it counts the prompt's tokens), or the
    /// ledger did not answer (logged, counted). Without a key (the master key, or no auth),
    /// only the gateway's.
    pub async fn hold(
        &self,
        key: Option<&VirtualKey>,
        holders: Holders<'_>,
        model: Option<&str>,
        estimate: impl FnOnce() -> f64,
        now: i64,
    ) -> Result<Option<BudgetHold>, Error> {
        let mut budgets = key.map_or_else(Vec::new, |k| budgets_of(k, model, now));
        let end_user_at = holders.end_user.map(|u| {
            budgets.push(u.budget(now));
            (budgets.len() - 1, u)
        });
        let team_at = holders.team.and_then(|t| {
            let b = team_budget(t, now)?;
            budgets.push(b);
            Some((budgets.len() - 1, t))
        });
        let user_at = holders.user.and_then(|u| {
            let b = user_budget(u, now)?;
            budgets.push(b);
            Some((budgets.len() - 1, u))
        });
        let proxy = self.proxy.as_ref().filter(|_| model.is_some());
        if let Some(proxy) = proxy {
            budgets.push(proxy.budget(now));
        }
        if budgets.is_empty() {
            return Ok(None);
        }
        let estimate = estimate();
        match self.ledger.reserve(&budgets, estimate).await {
            Ok(Admission::Admitted) => Ok(Some(self.settler(budgets, estimate))),
            Ok(Admission::Denied { index, spend }) => match (proxy, key) {
                _ if end_user_at.is_some_and(|(i, _)| i == index) => {
                    Err(Error::EndUserBudgetExceeded {
                        end_user: end_user_at.map(|(_, u)| u.id.clone()).unwrap_or_default(),
                        spend,
                        max_budget: budgets[index].max,
                    })
                }
                _ if team_at.is_some_and(|(i, _)| i == index) => {
                    let team = team_at.map(|(_, t)| &t.item);
                    Err(Error::TeamBudgetExceeded {
                        team_id: team.map(|t| t.team_id.clone()).unwrap_or_default(),
                        spend,
                        max_budget: budgets[index].max,
                        reset_at: team.and_then(|t| t.budget_reset_at),
                    })
                }
                _ if user_at.is_some_and(|(i, _)| i == index) => {
                    let user = user_at.map(|(_, u)| &u.item);
                    Err(Error::UserBudgetExceeded {
                        user_id: user.map(|u| u.user_id.clone()).unwrap_or_default(),
                        spend,
                        max_budget: budgets[index].max,
                        reset_at: user.and_then(|u| u.budget_reset_at),
                    })
                }
                (Some(proxy), _) if index + 1 == budgets.len() => Err(Error::ProxyBudgetExceeded {
                    spend,
                    max_budget: proxy.max,
                    reset_at: proxy.period(now).1,
                }),
                (_, Some(key)) => Err(denied(key, &budgets, index, spend, model)),
                (_, None) => Err(Error::ProxyBudgetExceeded {
                    spend,
                    max_budget: budgets.get(index).map_or(0.0, |b| b.max),
                    reset_at: None,
                }),
            },
            Err(e) => {
                let n = self.errors.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() || n == 0 {
                    tracing::warn!(error = %e, errors = n + 1, "budget ledger unavailable; judging the key's budget by its cached record");
                }
                Ok(None)
            }
        }
    }

    fn settler(&self, budgets: Vec<Budget>, estimate: f64) -> BudgetHold {
        let ledger = self.ledger.clone();
        let lost = self.lost.clone();
        BudgetHold::new(move |cost| {
            let cost = cost.filter(|c| c.is_finite() && *c > 0.0).unwrap_or(0.0);
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                lost.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("budget settlement lost: no runtime to send it on");
                return;
            };
            rt.spawn(async move {
                let mut wait = Duration::from_millis(250);
                for attempt in 1..=SETTLE_TRIES {
                    match ledger.settle(&budgets, estimate, cost).await {
                        Ok(()) => return,
                        Err(e) if attempt == SETTLE_TRIES => {
                            lost.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(error = %e, "budget settlement lost after retries; its reservation stays until the entry expires");
                        }
                        Err(_) => {
                            tokio::time::sleep(wait).await;
                            wait *= 2;
                        }
                    }
                }
            });
        })
    }
}

/// The budgets `key` holds a request for `model` to, named with their period.
fn budgets_of(key: &VirtualKey, model: Option<&str>, now: i64) -> Vec<Budget> {
    let period = key.budget_reset_at.unwrap_or(0);
    let expires_at = key
        .budget_reset_at
        .map_or(now.saturating_add(NO_PERIOD_TTL), |t| {
            t.saturating_add(ENTRY_SLACK)
        });
    let mut out = Vec::new();
    if let Some(max) = key.max_budget {
        out.push(Budget {
            id: format!("{}:{period}", key.token),
            max,
            known: key.spend,
            expires_at,
        });
    }
    if let Some((model, max)) = model.and_then(|m| key.model_max_budget.get_key_value(m)) {
        out.push(Budget {
            id: format!("{}:{period}:m:{model}", key.token),
            max: *max,
            known: key.model_spend.get(model).copied().unwrap_or(0.0),
            expires_at,
        });
    }
    out
}

/// An end user's budget for one request: its own `max_budget`, else the gateway's
/// `max_end_user_budget`.
#[derive(Debug, Clone)]
pub struct EndUserBudget {
    /// The end user's id.
    pub id: String,
    /// The budget, USD.
    pub max: f64,
    /// Spend in its period as this instance knows it.
    pub spend: f64,
    /// When its period ends, if it has one.
    pub reset_at: Option<i64>,
}

impl EndUserBudget {
    fn budget(&self, now: i64) -> Budget {
        Budget {
            id: format!("end_user:{}:{}", self.id, self.reset_at.unwrap_or(0)),
            max: self.max,
            known: self.spend,
            expires_at: self
                .reset_at
                .map_or(now.saturating_add(NO_PERIOD_TTL), |t| {
                    t.saturating_add(ENTRY_SLACK)
                }),
        }
    }
}

/// Whose budgets a request is held to beside its key's: the key's team and user (when they
/// are stored ones) and the end user the request names.
#[derive(Debug, Clone, Copy, Default)]
pub struct Holders<'a> {
    /// The key's team.
    pub team: Option<&'a TeamView>,
    /// The key's user.
    pub user: Option<&'a UserView>,
    /// The request's end user.
    pub end_user: Option<&'a EndUserBudget>,
}

/// The team's budget, named with its period (`team:<id>:<reset>`), when it has one.
fn team_budget(view: &TeamView, now: i64) -> Option<Budget> {
    let team = &view.item;
    let id = format!("{TEAM_INVALIDATION_PREFIX}{}", team.team_id);
    period_budget(id, team.max_budget?, view.spend, team.budget_reset_at, now)
}

/// The user's budget, named with its period (`user:<id>:<reset>`), when they have one.
fn user_budget(view: &UserView, now: i64) -> Option<Budget> {
    let user = &view.item;
    let id = format!("{USER_INVALIDATION_PREFIX}{}", user.user_id);
    period_budget(id, user.max_budget?, view.spend, user.budget_reset_at, now)
}

/// A budget of `max` USD named `<id>:<reset>`, whose ledger entry lives a little past `reset`.
fn period_budget(
    id: String,
    max: f64,
    known: f64,
    reset_at: Option<i64>,
    now: i64,
) -> Option<Budget> {
    Some(Budget {
        id: format!("{id}:{}", reset_at.unwrap_or(0)),
        max,
        known,
        expires_at: reset_at.map_or(now.saturating_add(NO_PERIOD_TTL), |t| {
            t.saturating_add(ENTRY_SLACK)
        }),
    })
}

fn denied(
    key: &VirtualKey,
    budgets: &[Budget],
    index: usize,
    spend: f64,
    model: Option<&str>,
) -> Error {
    let max_budget = budgets.get(index).map_or(0.0, |b| b.max);
    match (index, key.max_budget, model) {
        (0, Some(_), _) | (_, _, None) => Error::BudgetExceeded {
            spend,
            max_budget,
            reset_at: key.budget_reset_at,
        },
        (_, _, Some(model)) => Error::ModelBudgetExceeded {
            model: model.to_string(),
            spend,
            max_budget,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_named_by_key_period_and_model() {
        let key = VirtualKey {
            token: "t".into(),
            max_budget: Some(1.0),
            spend: 0.25,
            budget_reset_at: Some(1_000),
            model_max_budget: [("m".to_string(), 0.5)].into_iter().collect(),
            model_spend: [("m".to_string(), 0.125)].into_iter().collect(),
            ..VirtualKey::default()
        };
        let b = budgets_of(&key, Some("m"), 10);
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].id.as_str(), b[0].max, b[0].known),
            ("t:1000", 1.0, 0.25)
        );
        assert_eq!(
            (b[1].id.as_str(), b[1].max, b[1].known),
            ("t:1000:m:m", 0.5, 0.125)
        );
        assert_eq!(b[0].expires_at, 1_000 + ENTRY_SLACK);
        assert!(budgets_of(&key, Some("other"), 10).len() == 1);
        let open = VirtualKey::default();
        assert!(budgets_of(&open, Some("m"), 10).is_empty());
        assert!(matches!(
            denied(&key, &b, 1, 0.5, Some("m")),
            Error::ModelBudgetExceeded { .. }
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test suite")]
mod retry_tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    use tokio::time::Instant;

    use super::*;
    use crate::StoreError;

    /// A ledger that admits every reservation (or fails it, with `reserve_fails`) and fails
    /// its first `failing_settles` settlements, noting when each settlement was tried.
    #[derive(Debug, Default)]
    struct FlakyLedger {
        reserve_fails: bool,
        failing_settles: usize,
        settles: Mutex<Vec<Instant>>,
    }

    #[async_trait::async_trait]
    impl BudgetLedger for FlakyLedger {
        async fn reserve(&self, _: &[Budget], _: f64) -> Result<Admission, StoreError> {
            if self.reserve_fails {
                return Err(StoreError::Unavailable("ledger down".into()));
            }
            Ok(Admission::Admitted)
        }

        async fn settle(&self, _: &[Budget], _: f64, _: f64) -> Result<(), StoreError> {
            let mut settles = self.settles.lock().unwrap();
            settles.push(Instant::now());
            if settles.len() <= self.failing_settles {
                return Err(StoreError::Unavailable("ledger down".into()));
            }
            Ok(())
        }

        fn backend(&self) -> &'static str {
            "flaky"
        }
    }

    fn key() -> VirtualKey {
        VirtualKey {
            token: "t".into(),
            max_budget: Some(1.0),
            ..VirtualKey::default()
        }
    }

    /// Holds and settles one request against `ledger`, then lets a minute pass; returns the
    /// settlements' offsets from the first, in ms, and the settlements counted as lost.
    async fn settle_through(ledger: FlakyLedger) -> (Vec<u128>, u64) {
        let ledger = Arc::new(ledger);
        let budgets = Budgets::new(ledger.clone(), Arc::new(|_| 0.0));
        let hold = budgets
            .hold(Some(&key()), Holders::default(), None, || 0.5, 0)
            .await
            .unwrap()
            .unwrap();
        hold.settle(Some(0.25));
        tokio::time::sleep(Duration::from_secs(60)).await;
        let settles = ledger.settles.lock().unwrap().clone();
        let first = settles[0];
        let offsets = settles.iter().map(|t| (*t - first).as_millis()).collect();
        (offsets, budgets.lost_settlements())
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_settlement_is_tried_8_times_250ms_doubling_then_counted_lost() {
        let ledger = FlakyLedger {
            failing_settles: usize::MAX,
            ..FlakyLedger::default()
        };
        let (offsets, lost) = settle_through(ledger).await;
        // Waits of 250, 500, 1000, 2000, 4000, 8000 and 16000 ms: 31.75 s in all.
        assert_eq!(
            offsets,
            [0, 250, 750, 1_750, 3_750, 7_750, 15_750, 31_750],
            "8 tries, 250 ms doubling in between"
        );
        assert_eq!(lost, 1, "given up once, after the last try");
    }

    #[tokio::test(start_paused = true)]
    async fn a_settlement_that_succeeds_on_a_retry_stops_retrying() {
        let ledger = FlakyLedger {
            failing_settles: 2,
            ..FlakyLedger::default()
        };
        let (offsets, lost) = settle_through(ledger).await;
        assert_eq!(offsets, [0, 250, 750], "the third try succeeded: no fourth");
        assert_eq!(lost, 0);
    }

    /// Counts the events logged at `warn` on this thread.
    struct CountWarnings(Arc<AtomicUsize>);

    impl tracing::Subscriber for CountWarnings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[tokio::test]
    async fn an_unreachable_ledger_admits_and_is_logged_once_per_power_of_two_failures() {
        let warnings = Arc::new(AtomicUsize::new(0));
        let _guard = tracing::subscriber::set_default(CountWarnings(warnings.clone()));
        let ledger = FlakyLedger {
            reserve_fails: true,
            ..FlakyLedger::default()
        };
        let budgets = Budgets::new(Arc::new(ledger), Arc::new(|_| 0.0));
        let mut logged_at = Vec::new();
        for failure in 1..=100 {
            let before = warnings.load(Ordering::Relaxed);
            let held = budgets
                .hold(Some(&key()), Holders::default(), None, || 0.5, 0)
                .await;
            assert!(matches!(held, Ok(None)), "judged by the record alone");
            if warnings.load(Ordering::Relaxed) > before {
                logged_at.push(failure);
            }
        }
        assert_eq!(budgets.errors(), 100, "every failure counted");
        // One log in each interval (2^k, 2^(k+1)]: 8 lines for 100 failures.
        assert_eq!(logged_at, [1, 2, 3, 5, 9, 17, 33, 65]);
    }
}

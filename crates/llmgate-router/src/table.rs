use std::collections::HashMap;

/// The table's maps hash with foldhash (seeded at random per process): they are read on
/// every request, where SipHash cost 200 instructions a lookup.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use llmgate_core::events::Events;
use llmgate_core::{DeploymentSpec, ResolveModel};

use crate::shared::SharedUsage;
use crate::state::{Clock, CooldownReason, DeploymentState};
use crate::strategy::{CooldownPolicy, Strategy};

/// The name of LiteLLM's wildcard group: requests for models no other group or alias names go
/// to it. Hidden from `/v1/models`.
pub const CATCH_ALL: &str = "*";

/// The model groups, their deployments and live state, the aliases, the strategy and the
/// cooldown policy. Share it in an `Arc`; its state is atomics, so every request reads it
/// without locking.
#[derive(Debug)]
pub struct ModelTable {
    pub(crate) groups: Map<Arc<str>, Group>,
    /// Group names in config order, for `/v1/models`.
    order: Vec<Arc<str>>,
    aliases: Map<String, Alias>,
    pub(crate) strategy: Strategy,
    policy: CooldownPolicy,
    pub(crate) clock: Clock,
    /// Told of each cooldown this instance starts (to share it with other instances).
    cooldown_hook: Option<Hook>,
    /// Deployment counters shared with other instances (see `shared.rs`).
    pub(crate) shared: Option<Arc<dyn SharedUsage>>,
    /// Takes and settlements the shared store could not answer.
    pub(crate) shared_errors: AtomicU64,
    /// Where cooldowns, recoveries, outages, 429s, slow answers and daily quotas are told.
    pub(crate) events: Events,
    /// An answer slower than this is an [`llmgate_core::events::Event::SlowResponse`].
    pub(crate) slow_after: Option<Duration>,
    /// Where attempts in flight are watched for hanging ([`ModelTable::with_hanging`]).
    pub(crate) hanging: Option<Arc<crate::Hanging>>,
}

struct Hook(CooldownHook);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CooldownHook")
    }
}

/// A cooldown this instance started: deployment `id` out of rotation until `until_unix_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CooldownEvent {
    /// The deployment id.
    pub id: Arc<str>,
    /// When it ends, Unix milliseconds.
    pub until_unix_ms: u64,
    /// Why.
    pub reason: CooldownReason,
}

/// Called with each [`CooldownEvent`], on the request path: it must not block.
pub type CooldownHook = Arc<dyn Fn(CooldownEvent) + Send + Sync>;

#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) members: Vec<Member>,
    /// Some member declares `model_info.max_input_tokens`, so prompts are sized before picking.
    pub(crate) sized: bool,
    /// No deployment could be picked since the group last answered.
    pub(crate) out: Arc<AtomicBool>,
}

/// One deployment and its live state.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) spec: Arc<DeploymentSpec>,
    pub(crate) state: Arc<DeploymentState>,
    /// Its simple-shuffle weight.
    pub(crate) weight: f64,
    /// Its group had no deployment to pick since the last answer (shared by the group's
    /// members), so the next answer is a recovery.
    pub(crate) group_out: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Alias {
    target: Arc<str>,
    hidden: bool,
}

impl ModelTable {
    /// Builds the table from deployments (grouped by `model_name`, in order) and aliases
    /// `(alias, target group, hidden)`, with simple-shuffle and LiteLLM's default cooldowns.
    /// Aliases whose target is not a group are ignored (config validation reports them).
    pub fn new(
        deployments: impl IntoIterator<Item = Arc<DeploymentSpec>>,
        aliases: impl IntoIterator<Item = (String, String, bool)>,
    ) -> Self {
        let mut table = ModelTable {
            groups: Map::default(),
            order: Vec::new(),
            aliases: Map::default(),
            strategy: Strategy::default(),
            policy: CooldownPolicy::default(),
            clock: Clock::new(),
            cooldown_hook: None,
            shared: None,
            shared_errors: AtomicU64::new(0),
            events: Events::none(),
            slow_after: None,
            hanging: None,
        };
        for spec in deployments {
            let name = spec.model_name.clone();
            let group = table.groups.entry(name.clone()).or_insert_with(|| {
                table.order.push(name);
                Group {
                    members: Vec::new(),
                    sized: false,
                    out: Arc::default(),
                }
            });
            group.members.push(Member {
                spec,
                state: Arc::default(),
                weight: 0.0,
                group_out: group.out.clone(),
            });
        }
        for group in table.groups.values_mut() {
            set_weights(&mut group.members);
            group.sized = group
                .members
                .iter()
                .any(|m| m.spec.model_info.max_input_tokens.is_some());
        }
        for (alias, target, hidden) in aliases {
            if let Some((name, _)) = table.groups.get_key_value(target.as_str()) {
                let target = name.clone();
                table.aliases.insert(alias, Alias { target, hidden });
            }
        }
        table
    }

    /// Sets the routing strategy.
    #[must_use]
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets the cooldown policy.
    #[must_use]
    pub fn with_cooldown_policy(mut self, policy: CooldownPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Tells `events` of cooldowns, recoveries, outages (a group with nothing to pick), 429s
    /// from providers and deployments at 90 % of their `rpd` (see
    /// [`llmgate_core::events::Event`]); of answers slower than `slow_after` too, when set.
    #[must_use]
    pub fn with_events(mut self, events: Events, slow_after: Option<Duration>) -> Self {
        self.events = events;
        self.slow_after = slow_after;
        self
    }

    /// Watches every attempt in `hanging` while it runs (a stream: until its body ends), for
    /// [`crate::Hanging::watch`] to tell the ones running too long. Share one registry across
    /// the tables a reload builds.
    #[must_use]
    pub fn with_hanging(mut self, hanging: Arc<crate::Hanging>) -> Self {
        self.hanging = Some(hanging);
        self
    }

    pub(crate) fn policy(&self) -> &CooldownPolicy {
        &self.policy
    }

    /// The group a requested model name resolves to: alias (LiteLLM checks aliases first, so
    /// an alias may hide a group of the same name), exact group name, then the catch-all.
    pub fn resolve(&self, model: &str) -> Option<&Arc<str>> {
        if let Some(alias) = self.aliases.get(model) {
            return Some(&alias.target);
        }
        if let Some((name, _)) = self.groups.get_key_value(model) {
            return Some(name);
        }
        self.groups.get_key_value(CATCH_ALL).map(|(name, _)| name)
    }

    /// The group's name as stored, if it exists.
    pub fn group(&self, name: &str) -> Option<&Arc<str>> {
        self.groups.get_key_value(name).map(|(n, _)| n)
    }

    /// `exclude` and every deployment of `group` that does not serve the Responses API
    /// itself ([`DeploymentSpec::serves_responses`]).
    pub(crate) fn excluding_translated(&self, group: &str, exclude: &[Arc<str>]) -> Vec<Arc<str>> {
        let mut out = exclude.to_vec();
        if let Some(g) = self.groups.get(group) {
            out.extend(
                g.members
                    .iter()
                    .filter(|m| !m.spec.serves_responses())
                    .map(|m| m.spec.id.clone()),
            );
        }
        out
    }

    /// Every deployment with its state, in config order of groups.
    pub fn all(&self) -> Vec<(Arc<DeploymentSpec>, Arc<DeploymentState>)> {
        self.order
            .iter()
            .filter_map(|n| self.groups.get(n))
            .flat_map(|g| g.members.iter().map(|m| (m.spec.clone(), m.state.clone())))
            .collect()
    }

    /// Calls `hook` with each cooldown this instance starts after a failure, so other instances
    /// can learn of it ([`ModelTable::apply_cooldown`]).
    #[must_use]
    pub fn with_cooldown_hook(mut self, hook: CooldownHook) -> Self {
        self.cooldown_hook = Some(Hook(hook));
        self
    }

    pub(crate) fn announce_cooldown(&self, id: &Arc<str>, until_ms: u64, reason: CooldownReason) {
        if let Some(Hook(hook)) = &self.cooldown_hook {
            hook(CooldownEvent {
                id: id.clone(),
                until_unix_ms: self.clock.unix_ms(until_ms),
                reason,
            });
        }
    }

    /// Applies a cooldown another instance started: deployment `id` is skipped until
    /// `until_unix_ms` (a later end already running here wins). Not announced again.
    pub fn apply_cooldown(&self, id: &str, until_unix_ms: u64, reason: CooldownReason) {
        let now = self.clock.now_ms();
        let until = self.clock.table_ms(until_unix_ms);
        if let Some(m) = self.member(id).filter(|_| until > now) {
            m.state
                .cool_down(now, Duration::from_millis(until - now), reason);
        }
    }

    /// For keeping `rpd` counts across restarts (and sharing them through a database): today
    /// (UTC days since the epoch) and, for each deployment with an `rpd`, the requests it took
    /// since the last call. Hand back what could not be kept with
    /// [`ModelTable::untake_daily_sent`].
    pub fn take_daily_sent(&self) -> (u64, Vec<(Arc<str>, u64)>) {
        let day = self.clock.day(self.clock.now_ms());
        let sent = self
            .rpd_members()
            .map(|m| (m.spec.id.clone(), m.state.usage.take_unsynced()))
            .collect();
        (day, sent)
    }

    /// Gives back counts from [`ModelTable::take_daily_sent`] that were not kept: the next call
    /// hands them out again.
    pub fn untake_daily_sent(&self, sent: &[(Arc<str>, u64)]) {
        for (id, n) in sent {
            if let Some(m) = self.member(id) {
                m.state.usage.untake_unsynced(*n);
            }
        }
    }

    /// Raises each deployment's `rpd` count for `day` to the kept total (every instance's
    /// requests that day), if `day` is still today.
    pub fn restore_daily(&self, day: u64, totals: &[(String, u64)]) {
        if self.clock.day(self.clock.now_ms()) != day {
            return;
        }
        for (id, total) in totals {
            if let Some(m) = self.member(id).filter(|m| m.spec.rpd.is_some()) {
                m.state.usage.raise_daily(day, *total);
            }
        }
    }

    /// Whether any deployment has an `rpd`.
    pub fn has_daily_limits(&self) -> bool {
        self.rpd_members().next().is_some()
    }

    fn rpd_members(&self) -> impl Iterator<Item = &Member> {
        self.groups
            .values()
            .flat_map(|g| g.members.iter())
            .filter(|m| m.spec.rpd.is_some())
    }

    /// Every deployment with whether it is cooling down now, and why (`None`: in rotation);
    /// for metrics scraped now and then, not for the request path.
    pub fn cooldowns(&self) -> Vec<(Arc<DeploymentSpec>, Option<CooldownReason>)> {
        let now = self.clock.now_ms();
        self.all()
            .into_iter()
            .map(|(spec, state)| (spec, state.cooling(now).map(|(_, r)| r)))
            .collect()
    }

    /// Takes deployment `id` out of rotation for `for_` (background health checks).
    pub fn mark_unhealthy(&self, id: &str, for_: Duration) {
        if let Some(m) = self.member(id) {
            m.state
                .cool_down(self.clock.now_ms(), for_, CooldownReason::Unhealthy);
        }
    }

    /// Puts deployment `id` back in rotation if a health check had taken it out.
    pub fn mark_healthy(&self, id: &str) {
        if let Some(m) = self.member(id) {
            if m.state.cooling(self.clock.now_ms()).map(|(_, r)| r)
                == Some(CooldownReason::Unhealthy)
            {
                m.state.clear_cooldown();
            }
        }
    }

    fn member(&self, id: &str) -> Option<&Member> {
        self.groups
            .values()
            .flat_map(|g| &g.members)
            .find(|m| &*m.spec.id == id)
    }

    /// The names clients may send, for `/v1/models`: groups in config order, then visible
    /// aliases; the catch-all is left out. Each comes with the provider of its first deployment.
    pub fn visible_models(&self) -> Vec<(String, String)> {
        let owner = |group: &str| {
            self.groups
                .get(group)
                .and_then(|g| g.members.first())
                .map(|m| m.spec.provider.as_str().to_owned())
                .unwrap_or_default()
        };
        let mut out: Vec<(String, String)> = self
            .order
            .iter()
            .filter(|n| &***n != CATCH_ALL)
            .map(|n| (n.to_string(), owner(n)))
            .collect();
        let mut aliases: Vec<_> = self.aliases.iter().filter(|(_, a)| !a.hidden).collect();
        aliases.sort_by(|a, b| a.0.cmp(b.0));
        out.extend(
            aliases
                .into_iter()
                .map(|(name, a)| (name.clone(), owner(&a.target))),
        );
        out
    }
}

/// The auth layer judges a requested model by the group it resolves to, as the router will.
impl ResolveModel for ModelTable {
    fn resolve_group(&self, model: &str) -> Option<Arc<str>> {
        self.resolve(model).cloned()
    }
}

/// LiteLLM's simple-shuffle weights: `weight` if any deployment sets one, else `rpm`, else
/// `tpm`; all zero means uniform.
fn set_weights(ms: &mut [Member]) {
    let by = |ms: &[Member], f: &dyn Fn(&DeploymentSpec) -> Option<f64>| {
        ms.iter().any(|m| f(&m.spec).is_some()).then(|| {
            ms.iter()
                .map(|m| f(&m.spec).unwrap_or(0.0).max(0.0))
                .collect::<Vec<_>>()
        })
    };
    let weights = by(ms, &|d| d.weight)
        .or_else(|| by(ms, &|d| d.rpm.map(|r| r as f64)))
        .or_else(|| by(ms, &|d| d.tpm.map(|t| t as f64)))
        .unwrap_or_else(|| vec![0.0; ms.len()]);
    for (m, w) in ms.iter_mut().zip(weights) {
        m.weight = w;
    }
}

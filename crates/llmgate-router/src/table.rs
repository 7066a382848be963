use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use llmgate_core::{DeploymentSpec, ResolveModel};

use crate::shared::SharedUsage;
use crate::state::{Clock, CooldownReason, DeploymentState};
use crate::strategy::{CooldownPolicy, Strategy};
use crate::usage::LocalTake;

/// The name of LiteLLM's wildcard group: requests for models no other group or alias names go
/// to it. Hidden from `/v1/models`.
pub const CATCH_ALL: &str = "*";

/// The model groups, their deployments and live state, the aliases, the strategy and the
/// cooldown policy. Share it in an `Arc`; its state is atomics, so every request reads it
/// without locking.
#[derive(Debug)]
pub struct ModelTable {
    groups: HashMap<Arc<str>, Group>,
    /// Group names in config order, for `/v1/models`.
    order: Vec<Arc<str>>,
    aliases: HashMap<String, Alias>,
    strategy: Strategy,
    policy: CooldownPolicy,
    pub(crate) clock: Clock,
    /// Told of each cooldown this instance starts (to share it with other instances).
    cooldown_hook: Option<Hook>,
    /// Deployment counters shared with other instances (see `shared.rs`).
    pub(crate) shared: Option<Arc<dyn SharedUsage>>,
    /// Takes and settlements the shared store could not answer.
    pub(crate) shared_errors: AtomicU64,
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
struct Group {
    members: Vec<Member>,
    /// Some member declares `model_info.max_input_tokens`, so prompts are sized before picking.
    sized: bool,
}

/// One deployment and its live state.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) spec: Arc<DeploymentSpec>,
    pub(crate) state: Arc<DeploymentState>,
    /// Its simple-shuffle weight.
    weight: f64,
}

#[derive(Debug)]
struct Alias {
    target: Arc<str>,
    hidden: bool,
}

/// A pick: the deployment, and how many other healthy untried ones the group has.
#[derive(Debug, Clone)]
pub(crate) struct Picked {
    pub(crate) member: Member,
    pub(crate) alternatives: usize,
    /// What was taken from its local counters, and on which UTC day.
    pub(crate) local: LocalTake,
    pub(crate) day: u64,
}

impl Picked {
    /// Whether the pick must also be taken from the shared store: it has one, and the
    /// deployment sets a limit.
    pub(crate) fn shared<'a>(&self, table: &'a ModelTable) -> Option<&'a Arc<dyn SharedUsage>> {
        let s = &self.member.spec;
        table
            .shared
            .as_ref()
            .filter(|_| s.rpm.is_some() || s.tpm.is_some() || s.rpd.is_some())
    }
}

/// Why nothing could be picked: each deployment and its reason.
#[derive(Debug, Clone, Default)]
pub(crate) struct Unavailable {
    pub(crate) reasons: Vec<(Arc<str>, String)>,
    /// Every deployment is rate limited (429s or its own rpm/tpm/rpd), so the answer is a 429.
    pub(crate) all_rate_limited: bool,
    /// Every deployment was skipped because the prompt is longer than its `max_input_tokens`.
    pub(crate) context_window: Option<u64>,
    /// The soonest a deployment comes back, if known.
    pub(crate) retry_after: Option<Duration>,
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
            groups: HashMap::new(),
            order: Vec::new(),
            aliases: HashMap::new(),
            strategy: Strategy::default(),
            policy: CooldownPolicy::default(),
            clock: Clock::new(),
            cooldown_hook: None,
            shared: None,
            shared_errors: AtomicU64::new(0),
        };
        for spec in deployments {
            let name = spec.model_name.clone();
            let group = table.groups.entry(name.clone()).or_insert_with(|| {
                table.order.push(name);
                Group {
                    members: Vec::new(),
                    sized: false,
                }
            });
            group.members.push(Member {
                spec,
                state: Arc::default(),
                weight: 0.0,
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

    /// Picks a deployment of `group`: the healthy ones (not cooling down, under their
    /// rpm/tpm/rpd) not in `exclude`, by the strategy; when every healthy one was already tried,
    /// one of those again. Takes one request from the picked deployment's rpm and rpd.
    pub(crate) fn pick(
        &self,
        group: &str,
        exclude: &[Arc<str>],
        stream: bool,
        prompt_tokens: impl FnOnce() -> u64,
    ) -> Result<Picked, Unavailable> {
        let Some(g) = self.groups.get(group) else {
            return Err(Unavailable::default());
        };
        let prompt = g.sized.then(prompt_tokens);
        let mut too_long = 0;
        let now = self.clock.now_ms();
        let now_us = self.clock.now_us();
        let day = self.clock.day(now);
        let mut unavailable = Unavailable {
            all_rate_limited: true,
            ..Unavailable::default()
        };
        let mut fresh = Vec::with_capacity(g.members.len());
        let mut tried = Vec::new();
        let was_tried = |m: &Member| exclude.iter().any(|e| **e == *m.spec.id);
        // Cooling down after failing this request's own attempts; see `candidates` below.
        let mut tried_cooling = Vec::new();
        for (i, m) in g.members.iter().enumerate() {
            if let Some((until, reason)) = m.state.cooling(now) {
                let by_failures = matches!(
                    reason,
                    CooldownReason::RateLimited | CooldownReason::Failing
                );
                if by_failures && was_tried(m) {
                    tried_cooling.push(i);
                }
                let wait = Duration::from_millis(until - now);
                unavailable.retry_after =
                    Some(unavailable.retry_after.map_or(wait, |w| w.min(wait)));
                unavailable.all_rate_limited &= reason == CooldownReason::RateLimited;
                unavailable.reasons.push((
                    m.spec.id.clone(),
                    format!(
                        "cooling down for {:.1}s: {}",
                        wait.as_secs_f64(),
                        reason.as_str()
                    ),
                ));
                continue;
            }
            if let (Some(p), Some(max)) = (prompt, m.spec.model_info.max_input_tokens) {
                if p > max {
                    too_long += 1;
                    unavailable.reasons.push((
                        m.spec.id.clone(),
                        format!("the prompt (~{p} tokens) exceeds its max_input_tokens ({max})"),
                    ));
                    continue;
                }
            }
            if let Some(why) = at_limit(m, now_us) {
                unavailable.reasons.push((m.spec.id.clone(), why));
                continue;
            }
            if was_tried(m) {
                tried.push(i);
            } else {
                fresh.push(i);
            }
        }
        // A request that has tried every deployment of the group and retries anyway (the
        // fallback layer backed off, with no fallback left) may have one cooling down after
        // failures again: it failed this request too, and the cooldown exists to send traffic
        // elsewhere, of which there is none. A health check's verdict still stands.
        let candidates = if !fresh.is_empty() {
            fresh
        } else if !tried.is_empty() {
            tried
        } else if g.members.iter().all(was_tried) {
            tried_cooling
        } else {
            Vec::new()
        };
        // Take rpm/rpd from the chosen one; if another request took the last slot meanwhile,
        // choose again among the rest.
        let mut candidates = candidates;
        while !candidates.is_empty() {
            let k = self.choose(&g.members, &candidates, stream, now, now_us);
            let m = &g.members[candidates[k]];
            match m
                .state
                .usage
                .take_request(m.spec.rpm, m.spec.rpd, now_us, day)
            {
                Ok(local) => {
                    return Ok(Picked {
                        member: m.clone(),
                        alternatives: candidates.len() - 1,
                        local,
                        day,
                    })
                }
                Err(why) => unavailable
                    .reasons
                    .push((m.spec.id.clone(), why.to_owned())),
            }
            candidates.swap_remove(k);
        }
        if unavailable.reasons.is_empty() || too_long > 0 {
            unavailable.all_rate_limited = false;
        }
        if too_long == g.members.len() {
            unavailable.context_window = prompt;
        }
        Err(unavailable)
    }

    /// Index into `candidates` chosen by the strategy.
    fn choose(
        &self,
        members: &[Member],
        candidates: &[usize],
        stream: bool,
        now: u64,
        now_us: u64,
    ) -> usize {
        if candidates.len() == 1 {
            return 0;
        }
        let random = || fastrand::usize(..candidates.len());
        match &self.strategy {
            Strategy::SimpleShuffle => {
                let total: f64 = candidates.iter().map(|&i| members[i].weight).sum();
                if total <= 0.0 {
                    return random();
                }
                let mut x = fastrand::f64() * total;
                for (k, &i) in candidates.iter().enumerate() {
                    x -= members[i].weight;
                    if x < 0.0 {
                        return k;
                    }
                }
                candidates.len() - 1
            }
            Strategy::LeastBusy => {
                let min = candidates
                    .iter()
                    .map(|&i| members[i].state.in_flight())
                    .min()
                    .unwrap_or(0);
                pick_among(candidates, |i| members[i].state.in_flight() == min)
            }
            Strategy::LatencyBased { ttl, buffer } => {
                let lat = |i: usize| members[i].state.latency(stream, now, *ttl);
                // Unmeasured deployments first: that is how they get measured.
                if candidates.iter().any(|&i| lat(i).is_none()) {
                    return pick_among(candidates, |i| lat(i).is_none());
                }
                let best = candidates.iter().filter_map(|&i| lat(i)).min().unwrap_or(0);
                let cutoff = best as f64 * (1.0 + buffer.max(0.0));
                pick_among(candidates, |i| lat(i).is_some_and(|l| l as f64 <= cutoff))
            }
            Strategy::UsageBased => {
                let load = |i: usize| {
                    let m = &members[i];
                    let used = m.state.usage.tokens(now_us) as f64;
                    m.spec.tpm.map_or(used, |t| used / t.max(1) as f64)
                };
                let min = candidates
                    .iter()
                    .map(|&i| load(i))
                    .fold(f64::INFINITY, f64::min);
                pick_among(candidates, |i| load(i) <= min)
            }
        }
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

/// A random index of `candidates` whose member satisfies `keep` (one always does).
fn pick_among(candidates: &[usize], keep: impl Fn(usize) -> bool) -> usize {
    let n = candidates.iter().filter(|&&i| keep(i)).count().max(1);
    let mut nth = fastrand::usize(..n);
    for (k, &i) in candidates.iter().enumerate() {
        if keep(i) {
            if nth == 0 {
                return k;
            }
            nth -= 1;
        }
    }
    0
}

/// Why a deployment is at its tpm limit (rpm and rpd are taken on pick), or at a limit the
/// shared store counts across instances.
fn at_limit(m: &Member, now_us: u64) -> Option<String> {
    if let Some(limit) = m.state.usage.blocked(now_us) {
        return Some(format!(
            "at its {limit} limit across the instances sharing its counters"
        ));
    }
    let tpm = m.spec.tpm?;
    let used = m.state.usage.tokens(now_us);
    (used >= tpm).then(|| format!("at its tpm limit ({used}/{tpm} tokens in the last minute)"))
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

//! Picking a deployment of a group: which deployments may take the request now (not cooling
//! down, the prompt within their context window, under their limits), the strategy's choice
//! among them, and the take of one request from the chosen one's rpm and rpd.

use std::sync::Arc;
use std::time::Duration;

use crate::shared::SharedUsage;
use crate::state::CooldownReason;
use crate::strategy::Strategy;
use crate::table::{Group, Member, ModelTable};
use crate::usage::LocalTake;

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

impl Unavailable {
    /// Notes `m` cooling down for `wait` more.
    fn cooling(&mut self, m: &Member, wait: Duration, reason: CooldownReason) {
        self.retry_after = Some(self.retry_after.map_or(wait, |w| w.min(wait)));
        self.all_rate_limited &= reason == CooldownReason::RateLimited;
        self.reasons.push((
            m.spec.id.clone(),
            format!(
                "cooling down for {:.1}s: {}",
                wait.as_secs_f64(),
                reason.as_str()
            ),
        ));
    }
}

/// A group's deployments that may take the request, by whether this request tried them.
#[derive(Default)]
struct Sorted {
    fresh: Vec<usize>,
    tried: Vec<usize>,
    /// Tried, and cooling down after failures (this request's own among them).
    tried_cooling: Vec<usize>,
}

/// Why a deployment is skipped now.
enum Skip {
    Cooling { until: u64, reason: CooldownReason },
    TooLong(String),
    AtLimit(String),
}

/// Whether `m` is skipped at `now` (table ms) / `now_us` for a prompt of `prompt` tokens.
fn skip(m: &Member, now: u64, now_us: u64, prompt: Option<u64>) -> Option<Skip> {
    if let Some((until, reason)) = m.state.cooling(now) {
        return Some(Skip::Cooling { until, reason });
    }
    if let (Some(p), Some(max)) = (prompt, m.spec.model_info.max_input_tokens) {
        if p > max {
            return Some(Skip::TooLong(format!(
                "the prompt (~{p} tokens) exceeds its max_input_tokens ({max})"
            )));
        }
    }
    at_limit(m, now_us).map(Skip::AtLimit)
}

impl ModelTable {
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
        let was_tried = |m: &Member| exclude.iter().any(|e| **e == *m.spec.id);
        let mut sorted = Sorted::default();
        for (i, m) in g.members.iter().enumerate() {
            match skip(m, now, now_us, prompt) {
                Some(Skip::Cooling { until, reason }) => {
                    // Cooling down after failing this request's own attempts; see below.
                    if reason.by_failures() && was_tried(m) {
                        sorted.tried_cooling.push(i);
                    }
                    unavailable.cooling(m, Duration::from_millis(until - now), reason);
                }
                Some(Skip::TooLong(why)) => {
                    too_long += 1;
                    unavailable.reasons.push((m.spec.id.clone(), why));
                }
                Some(Skip::AtLimit(why)) => unavailable.reasons.push((m.spec.id.clone(), why)),
                None if was_tried(m) => sorted.tried.push(i),
                None => sorted.fresh.push(i),
            }
        }
        // A request that has tried every deployment of the group and retries anyway (the
        // fallback layer backed off, with no fallback left) may have one cooling down after
        // failures again: it failed this request too, and the cooldown exists to send traffic
        // elsewhere, of which there is none. A health check's verdict still stands.
        let candidates = if !sorted.fresh.is_empty() {
            sorted.fresh
        } else if !sorted.tried.is_empty() {
            sorted.tried
        } else if g.members.iter().all(was_tried) {
            sorted.tried_cooling
        } else {
            Vec::new()
        };
        if let Some(picked) = self.take_one(g, candidates, stream, day, &mut unavailable) {
            return Ok(picked);
        }
        if too_long == 0 {
            self.tell_outage(g);
        }
        if unavailable.reasons.is_empty() || too_long > 0 {
            unavailable.all_rate_limited = false;
        }
        if too_long == g.members.len() {
            unavailable.context_window = prompt;
        }
        Err(unavailable)
    }

    /// Chooses among `candidates` by the strategy and takes one request from the chosen one's
    /// rpm and rpd; if another request took the last of one meanwhile, chooses again among the
    /// rest.
    fn take_one(
        &self,
        g: &Group,
        mut candidates: Vec<usize>,
        stream: bool,
        day: u64,
        unavailable: &mut Unavailable,
    ) -> Option<Picked> {
        let now = self.clock.now_ms();
        let now_us = self.clock.now_us();
        while !candidates.is_empty() {
            let k = self.choose(&g.members, &candidates, stream, now, now_us);
            let m = &g.members[candidates[k]];
            match m
                .state
                .usage
                .take_request(m.spec.rpm, m.spec.rpd, now_us, day)
            {
                Ok(local) => {
                    self.tell_daily(m, day);
                    return Some(Picked {
                        member: m.clone(),
                        alternatives: candidates.len() - 1,
                        local,
                        day,
                    });
                }
                Err(why) => unavailable
                    .reasons
                    .push((m.spec.id.clone(), why.to_owned())),
            }
            candidates.swap_remove(k);
        }
        None
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
}

impl ModelTable {
    /// The deployment `id` and its group, for a request pinned to it
    /// ([`llmgate_core::PinnedDeployment`]): taken from its rpm and rpd like any pick, but
    /// whether it is cooling down does not matter (the request has nowhere else to go).
    /// `None` when no group has it.
    pub(crate) fn pin(&self, id: &str) -> Option<(Arc<str>, Result<Picked, Unavailable>)> {
        let (group, m) = self.groups.iter().find_map(|(name, g)| {
            g.members
                .iter()
                .find(|m| *m.spec.id == *id)
                .map(|m| (name.clone(), m))
        })?;
        let now_us = self.clock.now_us();
        let day = self.clock.day(self.clock.now_ms());
        // Refused only at its own limits: a 429, as an unpinned request at its deployments'.
        let refused = |why: String| Unavailable {
            reasons: vec![(m.spec.id.clone(), why)],
            all_rate_limited: true,
            ..Unavailable::default()
        };
        if let Some(why) = at_limit(m, now_us) {
            return Some((group, Err(refused(why))));
        }
        let taken = match m
            .state
            .usage
            .take_request(m.spec.rpm, m.spec.rpd, now_us, day)
        {
            Ok(local) => {
                self.tell_daily(m, day);
                Ok(Picked {
                    member: m.clone(),
                    alternatives: 0,
                    local,
                    day,
                })
            }
            Err(why) => Err(refused(why.to_owned())),
        };
        Some((group, taken))
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

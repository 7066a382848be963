//! Which limits apply to a request, as store [`Check`]s, and what each one is called.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use llmgate_core::{LlmRequest, Principal, Team};

use crate::store::{Check, Kind};

/// rpm and tpm windows.
pub(crate) const MINUTE: Duration = Duration::from_secs(60);

/// A configured limit, named as the user configured it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitName {
    /// The key's `rpm_limit`.
    KeyRpm,
    /// The key's `tpm_limit`.
    KeyTpm,
    /// The key's `max_parallel_requests`.
    KeyParallel,
    /// The key's `model_rpm_limit` for this model.
    ModelRpm(Arc<str>),
    /// The key's `model_tpm_limit` for this model.
    ModelTpm(Arc<str>),
    /// The key's team's `rpm_limit` (all its keys together).
    TeamRpm,
    /// The key's team's `tpm_limit` (all its keys together).
    TeamTpm,
    /// The key's team's `max_parallel_requests` (all its keys together).
    TeamParallel,
    /// `general_settings.max_parallel_requests`, for a caller without a limit of its own.
    CallerParallel,
    /// `general_settings.global_max_parallel_requests`: the whole gateway.
    GlobalParallel,
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Requests,
    Tokens,
    Parallel,
}

impl LimitName {
    pub(crate) fn unit(&self) -> Unit {
        match self {
            LimitName::KeyRpm | LimitName::ModelRpm(_) | LimitName::TeamRpm => Unit::Requests,
            LimitName::KeyTpm | LimitName::ModelTpm(_) | LimitName::TeamTpm => Unit::Tokens,
            LimitName::KeyParallel
            | LimitName::TeamParallel
            | LimitName::CallerParallel
            | LimitName::GlobalParallel => Unit::Parallel,
        }
    }

    /// A stable name for logs and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            LimitName::KeyRpm => "rpm_limit",
            LimitName::KeyTpm => "tpm_limit",
            LimitName::KeyParallel => "max_parallel_requests",
            LimitName::TeamRpm => "team_rpm_limit",
            LimitName::TeamTpm => "team_tpm_limit",
            LimitName::TeamParallel => "team_max_parallel_requests",
            LimitName::ModelRpm(_) => "model_rpm_limit",
            LimitName::ModelTpm(_) => "model_tpm_limit",
            LimitName::CallerParallel => "general_settings.max_parallel_requests",
            LimitName::GlobalParallel => "global_max_parallel_requests",
        }
    }
}

impl fmt::Display for LimitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitName::KeyRpm | LimitName::KeyTpm | LimitName::KeyParallel => {
                write!(f, "the key's {}", self.as_str())
            }
            LimitName::TeamRpm | LimitName::TeamTpm | LimitName::TeamParallel => {
                let name = self.as_str().trim_start_matches("team_");
                write!(f, "the team's {name}")
            }
            LimitName::ModelRpm(m) | LimitName::ModelTpm(m) => {
                write!(f, "the key's {} for model \"{m}\"", self.as_str())
            }
            LimitName::CallerParallel => f.write_str("general_settings.max_parallel_requests"),
            LimitName::GlobalParallel => {
                f.write_str("general_settings.global_max_parallel_requests")
            }
        }
    }
}

/// Gateway-wide limits, from `general_settings`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Globals {
    pub(crate) caller_parallel: Option<u64>,
    pub(crate) global_parallel: Option<u64>,
}

/// The checks for one request.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) checks: Vec<Check>,
    pub(crate) names: Vec<LimitName>,
    /// Tokens reserved by each tpm check.
    pub(crate) reserved: u64,
}

impl Plan {
    fn push(&mut self, name: LimitName, key: String, limit: u64, kind: Kind) {
        self.checks.push(Check {
            key: key.into(),
            limit,
            kind,
        });
        self.names.push(name);
    }

    /// The team's rpm and tpm, counted for all its keys together (`t:<team_id>:...`).
    fn team_rates(&mut self, t: &Team) {
        let id = &t.team_id;
        if let Some(l) = t.rpm_limit {
            let kind = Kind::Rate {
                window: MINUTE,
                cost: 1,
            };
            self.push(LimitName::TeamRpm, format!("t:{id}:rpm"), l, kind);
        }
        if let Some(l) = t.tpm_limit {
            let kind = Kind::Rate {
                window: MINUTE,
                cost: 0,
            };
            self.push(LimitName::TeamTpm, format!("t:{id}:tpm"), l, kind);
        }
    }

    /// The limits that apply to `principal` (and its key's `team`) calling with `req`.
    pub(crate) fn build(
        principal: Option<&Principal>,
        req: Option<&LlmRequest>,
        team: Option<&Team>,
        globals: Globals,
    ) -> Plan {
        let mut plan = Plan::default();
        let rate = |cost| Kind::Rate {
            window: MINUTE,
            cost,
        };
        let key = principal.and_then(Principal::key);
        if let Some(k) = key {
            let id = &k.token;
            if let Some(l) = k.rpm_limit {
                plan.push(LimitName::KeyRpm, format!("k:{id}:rpm"), l, rate(1));
            }
            if let Some(l) = k.tpm_limit {
                plan.push(LimitName::KeyTpm, format!("k:{id}:tpm"), l, rate(0));
            }
            if let Some(model) = req.map(LlmRequest::model) {
                if let Some(&l) = k.model_rpm_limit.get(model) {
                    let m: Arc<str> = model.into();
                    plan.push(
                        LimitName::ModelRpm(m),
                        format!("k:{id}:m:{model}:rpm"),
                        l,
                        rate(1),
                    );
                }
                if let Some(&l) = k.model_tpm_limit.get(model) {
                    let m: Arc<str> = model.into();
                    plan.push(
                        LimitName::ModelTpm(m),
                        format!("k:{id}:m:{model}:tpm"),
                        l,
                        rate(0),
                    );
                }
            }
        }
        if let Some(t) = team {
            plan.team_rates(t);
        }
        // Parallel limits come last: a request denied by a rate takes no slot even briefly.
        match (
            key.and_then(|k| k.max_parallel_requests),
            globals.caller_parallel,
        ) {
            (Some(l), _) => {
                let id = key.map_or("", |k| k.token.as_str());
                plan.push(
                    LimitName::KeyParallel,
                    format!("k:{id}:par"),
                    l,
                    Kind::Parallel,
                );
            }
            (None, Some(l)) => {
                let who = match principal {
                    Some(Principal::Key(k)) => format!("k:{}", k.token),
                    Some(Principal::Master) => "master".to_owned(),
                    _ => "anon".to_owned(),
                };
                plan.push(
                    LimitName::CallerParallel,
                    format!("{who}:par"),
                    l,
                    Kind::Parallel,
                );
            }
            (None, None) => {}
        }
        if let Some(l) = team.and_then(|t| t.max_parallel_requests) {
            let id = team.map_or("", |t| t.team_id.as_str());
            plan.push(
                LimitName::TeamParallel,
                format!("t:{id}:par"),
                l,
                Kind::Parallel,
            );
        }
        if let Some(l) = globals.global_parallel {
            plan.push(
                LimitName::GlobalParallel,
                "global:par".to_owned(),
                l,
                Kind::Parallel,
            );
        }
        if plan.names.iter().any(|n| n.unit() == Unit::Tokens) {
            plan.reserved = req.map_or(0, crate::tokens::reserve);
            for (c, n) in plan.checks.iter_mut().zip(&plan.names) {
                if let (Kind::Rate { cost, .. }, Unit::Tokens) = (&mut c.kind, n.unit()) {
                    *cost = plan.reserved;
                }
            }
        }
        plan
    }
}

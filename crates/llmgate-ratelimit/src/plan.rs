//! Which limits apply to a request, as store [`Check`]s, and what each one is called.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use llmgate_core::{EndUser, LlmRequest, Principal, Team, User};

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
    /// The key's user's `rpm_limit` (all their keys together).
    UserRpm,
    /// The key's user's `tpm_limit` (all their keys together).
    UserTpm,
    /// The key's user's `max_parallel_requests` (all their keys together).
    UserParallel,
    /// The request's end user's `rpm_limit` (whoever calls).
    EndUserRpm,
    /// The request's end user's `tpm_limit` (whoever calls).
    EndUserTpm,
    /// The request's end user's `max_parallel_requests` (whoever calls).
    EndUserParallel,
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
            LimitName::KeyRpm
            | LimitName::ModelRpm(_)
            | LimitName::TeamRpm
            | LimitName::UserRpm
            | LimitName::EndUserRpm => Unit::Requests,
            LimitName::KeyTpm
            | LimitName::ModelTpm(_)
            | LimitName::TeamTpm
            | LimitName::UserTpm
            | LimitName::EndUserTpm => Unit::Tokens,
            LimitName::KeyParallel
            | LimitName::TeamParallel
            | LimitName::UserParallel
            | LimitName::EndUserParallel
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
            LimitName::UserRpm => "user_rpm_limit",
            LimitName::UserTpm => "user_tpm_limit",
            LimitName::UserParallel => "user_max_parallel_requests",
            LimitName::EndUserRpm => "end_user_rpm_limit",
            LimitName::EndUserTpm => "end_user_tpm_limit",
            LimitName::EndUserParallel => "end_user_max_parallel_requests",
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
            LimitName::UserRpm | LimitName::UserTpm | LimitName::UserParallel => {
                let name = self.as_str().trim_start_matches("user_");
                write!(f, "the user's {name}")
            }
            LimitName::EndUserRpm | LimitName::EndUserTpm | LimitName::EndUserParallel => {
                let name = self.as_str().trim_start_matches("end_user_");
                write!(f, "the end user's {name}")
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

    /// A group's rpm and tpm, counted for all its keys together (`t:<team_id>:...`,
    /// `u:<user_id>:...`).
    fn group_rates(&mut self, g: &Group<'_>) {
        let (rpm, tpm, _) = g.names();
        if let Some(l) = g.rpm {
            let kind = Kind::Rate {
                window: MINUTE,
                cost: 1,
            };
            self.push(rpm, [g.tag, ":", g.id, ":rpm"].concat(), l, kind);
        }
        if let Some(l) = g.tpm {
            let kind = Kind::Rate {
                window: MINUTE,
                cost: 0,
            };
            self.push(tpm, [g.tag, ":", g.id, ":tpm"].concat(), l, kind);
        }
    }

    /// The limits that apply to `principal` (and its key's team and user, `groups`) calling
    /// with `req`.
    pub(crate) fn build(
        principal: Option<&Principal>,
        req: Option<&LlmRequest>,
        groups: &[Option<Group<'_>>],
        globals: Globals,
    ) -> Plan {
        let mut plan = Plan::default();
        let rate = |cost| Kind::Rate {
            window: MINUTE,
            cost,
        };
        let key = principal.and_then(Principal::key);
        if let Some(k) = key {
            let id = k.token.as_str();
            if let Some(l) = k.rpm_limit {
                plan.push(LimitName::KeyRpm, ["k:", id, ":rpm"].concat(), l, rate(1));
            }
            if let Some(l) = k.tpm_limit {
                plan.push(LimitName::KeyTpm, ["k:", id, ":tpm"].concat(), l, rate(0));
            }
            if let Some(model) = req.map(LlmRequest::model) {
                if let Some(&l) = k.model_rpm_limit.get(model) {
                    let m: Arc<str> = model.into();
                    plan.push(
                        LimitName::ModelRpm(m),
                        ["k:", id, ":m:", model, ":rpm"].concat(),
                        l,
                        rate(1),
                    );
                }
                if let Some(&l) = k.model_tpm_limit.get(model) {
                    let m: Arc<str> = model.into();
                    plan.push(
                        LimitName::ModelTpm(m),
                        ["k:", id, ":m:", model, ":tpm"].concat(),
                        l,
                        rate(0),
                    );
                }
            }
        }
        for g in groups.iter().flatten() {
            plan.group_rates(g);
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
                    ["k:", id, ":par"].concat(),
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
        for g in groups.iter().flatten() {
            if let Some(l) = g.par {
                let key = [g.tag, ":", g.id, ":par"].concat();
                plan.push(g.names().2, key, l, Kind::Parallel);
            }
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

/// A group of requests whose limits count for all of them together: a key's team or its
/// user, or the request's end user.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Group<'a> {
    /// `t` for a team, `u` for a user, `e` for an end user.
    tag: &'static str,
    id: &'a str,
    rpm: Option<u64>,
    tpm: Option<u64>,
    par: Option<u64>,
}

impl<'a> Group<'a> {
    pub(crate) fn team(t: &'a Team) -> Self {
        Group {
            tag: "t",
            id: &t.team_id,
            rpm: t.rpm_limit,
            tpm: t.tpm_limit,
            par: t.max_parallel_requests,
        }
    }

    pub(crate) fn user(u: &'a User) -> Self {
        Group {
            tag: "u",
            id: &u.user_id,
            rpm: u.rpm_limit,
            tpm: u.tpm_limit,
            par: u.max_parallel_requests,
        }
    }

    pub(crate) fn end_user(u: &'a EndUser) -> Self {
        Group {
            tag: "e",
            id: &u.user_id,
            rpm: u.rpm_limit,
            tpm: u.tpm_limit,
            par: u.max_parallel_requests,
        }
    }

    /// The names of its rpm, tpm and parallel limits.
    fn names(&self) -> (LimitName, LimitName, LimitName) {
        match self.tag {
            "t" => (
                LimitName::TeamRpm,
                LimitName::TeamTpm,
                LimitName::TeamParallel,
            ),
            "e" => (
                LimitName::EndUserRpm,
                LimitName::EndUserTpm,
                LimitName::EndUserParallel,
            ),
            _ => (
                LimitName::UserRpm,
                LimitName::UserTpm,
                LimitName::UserParallel,
            ),
        }
    }
}

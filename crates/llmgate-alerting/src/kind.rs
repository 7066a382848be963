//! [`AlertType`]: LiteLLM's `alert_types` names (what `general_settings.alert_types` lists),
//! plus llmgate's one extension.

/// One kind of alert, named as LiteLLM names it in `alert_types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AlertType {
    /// `llm_exceptions`: a burst of 429s from one deployment.
    LlmExceptions,
    /// `llm_too_slow`: an answer slower than `alerting_threshold`.
    LlmTooSlow,
    /// `budget_alerts`: a key at its budget threshold, or its budget spent.
    BudgetAlerts,
    /// `failed_tracking_spend`: the spend writer failing, and recovering.
    FailedTrackingSpend,
    /// `db_exceptions`: the database or Redis failing, and recovering.
    DbExceptions,
    /// `cooldown_deployment`: a deployment cooled down, and recovered.
    CooldownDeployment,
    /// `outage_alerts`: a model group with no healthy deployment, and its recovery.
    OutageAlerts,
    /// `fallback_reports`: a spike of fallbacks away from one group.
    FallbackReports,
    /// `daily_quota_alerts` (llmgate's own): a deployment near its `rpd`.
    DailyQuotaAlerts,
    /// `llm_requests_hanging`: a request (or stream) still running after `alerting_threshold`.
    LlmRequestsHanging,
    /// `daily_reports`: the slowest deployments and those failing most, every
    /// `daily_report_frequency`.
    DailyReports,
}

impl AlertType {
    /// Every type llmgate sends.
    pub const ALL: [AlertType; 11] = [
        AlertType::LlmExceptions,
        AlertType::LlmTooSlow,
        AlertType::BudgetAlerts,
        AlertType::FailedTrackingSpend,
        AlertType::DbExceptions,
        AlertType::CooldownDeployment,
        AlertType::OutageAlerts,
        AlertType::FallbackReports,
        AlertType::DailyQuotaAlerts,
        AlertType::LlmRequestsHanging,
        AlertType::DailyReports,
    ];

    /// LiteLLM's LiteLLM-side names that llmgate accepts in `alert_types` but never sends
    /// (reports and admin events it does not produce).
    pub const NOT_SENT: [&'static str; 11] = [
        "spend_reports",
        "new_model_added",
        "model_deprecation_warnings",
        "region_outage_alerts",
        "new_virtual_key_created",
        "virtual_key_updated",
        "virtual_key_deleted",
        "new_team_created",
        "team_updated",
        "team_deleted",
        "new_internal_user_created",
    ];

    /// The name in `alert_types` and in payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertType::LlmExceptions => "llm_exceptions",
            AlertType::LlmTooSlow => "llm_too_slow",
            AlertType::BudgetAlerts => "budget_alerts",
            AlertType::FailedTrackingSpend => "failed_tracking_spend",
            AlertType::DbExceptions => "db_exceptions",
            AlertType::CooldownDeployment => "cooldown_deployment",
            AlertType::OutageAlerts => "outage_alerts",
            AlertType::FallbackReports => "fallback_reports",
            AlertType::DailyQuotaAlerts => "daily_quota_alerts",
            AlertType::LlmRequestsHanging => "llm_requests_hanging",
            AlertType::DailyReports => "daily_reports",
        }
    }

    /// The type named `name`, if llmgate sends it.
    pub fn parse(name: &str) -> Option<AlertType> {
        AlertType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// How bad, as LiteLLM's Slack alerts say it (`Level: ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Recoveries.
    Low,
    /// Thresholds, slow answers.
    Medium,
    /// Outages, failures, spent budgets.
    High,
}

impl Level {
    /// `Low`, `Medium`, `High`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "Low",
            Level::Medium => "Medium",
            Level::High => "High",
        }
    }
}

use std::borrow::Cow;

use http::StatusCode;
use llmgate_core::{ErrorContract, ErrorType, Origin};

/// Why a request was not let through.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No credential in any header the gateway reads.
    #[error("missing API key: send it as `Authorization: Bearer <key>` (or `x-api-key: <key>`)")]
    MissingKey,
    /// A credential that matches no key (or a deleted one).
    #[error("invalid API key")]
    InvalidKey,
    /// An `Authorization` header that is not `Bearer <key>`.
    #[error("malformed Authorization header: expected `Bearer <key>`")]
    MalformedHeader,
    /// The key's `expires` has passed.
    #[error("API key expired at {0} (Unix seconds); ask for a new one")]
    Expired(i64),
    /// The key is blocked.
    #[error("API key is blocked")]
    Blocked,
    /// The key may not call this model.
    #[error(
        "key not allowed to access model {model}. This key can only access models={allowed:?}"
    )]
    ModelNotAllowed {
        /// The model asked for.
        model: String,
        /// The models the key may call.
        allowed: Vec<String>,
    },
    /// The key spent its budget for this period (LiteLLM: 400, `budget_exceeded`).
    #[error("Budget has been exceeded! Current cost: {spend}, Max budget: {max_budget}{}", reset_note(*.reset_at))]
    BudgetExceeded {
        /// Spend in this period, USD.
        spend: f64,
        /// The budget, USD.
        max_budget: f64,
        /// When spend resets, if it does.
        reset_at: Option<i64>,
    },
    /// The key spent its budget for this model in this period.
    #[error("Budget has been exceeded for model {model}! Current cost: {spend}, Max budget: {max_budget}")]
    ModelBudgetExceeded {
        /// The model group.
        model: String,
        /// Spend on it in this period, USD.
        spend: f64,
        /// The budget for it, USD.
        max_budget: f64,
    },
    /// The whole gateway spent `litellm_settings.max_budget` for this period (LiteLLM: 400,
    /// `budget_exceeded`, "LiteLLM Proxy has exceeded its budget").
    #[error("ExceededBudget: the gateway has exceeded its budget (litellm_settings.max_budget). Current spend: {spend}; Max Budget: {max_budget}{}", reset_note(*.reset_at))]
    ProxyBudgetExceeded {
        /// Spend in this period, USD.
        spend: f64,
        /// The budget, USD.
        max_budget: f64,
        /// When spend resets, if it does.
        reset_at: Option<i64>,
    },
    /// The key's team is blocked (`/team/block`).
    #[error("Team={0} is blocked. Update via /team/unblock if you are an admin.")]
    TeamBlocked(String),
    /// The key's team may not call this model.
    #[error("team not allowed to access model. This team can only access models={allowed:?}. Tried to access {model} (team_id={team_id})")]
    TeamModelNotAllowed {
        /// The team.
        team_id: String,
        /// The model asked for.
        model: String,
        /// The models the team may call.
        allowed: Vec<String>,
    },
    /// The key's team spent its budget for this period (LiteLLM: 400, `budget_exceeded`).
    #[error("Budget has been exceeded! Team={team_id} Current cost: {spend}, Max budget: {max_budget}{}", reset_note(*.reset_at))]
    TeamBudgetExceeded {
        /// The team.
        team_id: String,
        /// The team's spend in this period, USD.
        spend: f64,
        /// The team's budget, USD.
        max_budget: f64,
        /// When spend resets, if it does.
        reset_at: Option<i64>,
    },
    /// The key's user may not call this model.
    #[error("user not allowed to access model. This user can only access models={allowed:?}. Tried to access {model} (user_id={user_id})")]
    UserModelNotAllowed {
        /// The user.
        user_id: String,
        /// The model asked for.
        model: String,
        /// The models the user may call.
        allowed: Vec<String>,
    },
    /// The key's user spent their budget for this period (LiteLLM: 400, `budget_exceeded`).
    #[error("Budget has been exceeded! User={user_id} Current cost: {spend}, Max budget: {max_budget}{}", reset_note(*.reset_at))]
    UserBudgetExceeded {
        /// The user.
        user_id: String,
        /// The user's spend in this period, USD.
        spend: f64,
        /// The user's budget, USD.
        max_budget: f64,
        /// When spend resets, if it does.
        reset_at: Option<i64>,
    },
    /// The key may not call this route (`key_type`, `allowed_routes`).
    #[error("key not allowed to access route {path}; this key can only access {allowed:?}")]
    RouteNotAllowed {
        /// The path called.
        path: String,
        /// The key's `allowed_routes` (or its `key_type`).
        allowed: Vec<String>,
    },
    /// A field the key's `enforced_params` requires is missing from the request.
    #[error("this key requires the request to set {0} (the key's enforced_params)")]
    MissingParam(String),
    /// The request's end user (`user`) is blocked (`/customer/block`).
    #[error("end user {0} is blocked; unblock it with /customer/unblock")]
    EndUserBlocked(String),
    /// The request's end user spent its budget (LiteLLM: 400, `budget_exceeded`).
    #[error("ExceededBudget: End User={end_user} over budget. Spend={spend}, Budget={max_budget}")]
    EndUserBudgetExceeded {
        /// The end user.
        end_user: String,
        /// Its spend, USD.
        spend: f64,
        /// Its budget, USD.
        max_budget: f64,
    },
    /// The key store did not answer and `allow_requests_on_db_unavailable` is off.
    #[error("cannot check the API key: {0}")]
    StoreUnavailable(String),
}

fn reset_note(at: Option<i64>) -> String {
    at.map(|t| format!("; spend resets at {t} (Unix seconds)"))
        .unwrap_or_default()
}

impl ErrorContract for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::ModelNotAllowed { .. }
            | Error::TeamModelNotAllowed { .. }
            | Error::UserModelNotAllowed { .. }
            | Error::RouteNotAllowed { .. }
            | Error::EndUserBlocked(_) => StatusCode::FORBIDDEN,
            Error::MissingParam(_) => StatusCode::BAD_REQUEST,
            Error::BudgetExceeded { .. }
            | Error::TeamBudgetExceeded { .. }
            | Error::UserBudgetExceeded { .. }
            | Error::EndUserBudgetExceeded { .. }
            | Error::ModelBudgetExceeded { .. }
            | Error::ProxyBudgetExceeded { .. } => StatusCode::BAD_REQUEST,
            Error::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
    fn error_type(&self) -> ErrorType {
        match self {
            Error::ModelNotAllowed { .. } => ErrorType::other("key_model_access_denied"),
            Error::TeamModelNotAllowed { .. } => ErrorType::other("team_model_access_denied"),
            Error::UserModelNotAllowed { .. } => ErrorType::other("user_model_access_denied"),
            Error::RouteNotAllowed { .. } | Error::EndUserBlocked(_) => ErrorType::PERMISSION,
            Error::MissingParam(_) => ErrorType::INVALID_REQUEST,
            Error::BudgetExceeded { .. }
            | Error::TeamBudgetExceeded { .. }
            | Error::UserBudgetExceeded { .. }
            | Error::EndUserBudgetExceeded { .. }
            | Error::ModelBudgetExceeded { .. }
            | Error::ProxyBudgetExceeded { .. } => ErrorType::other("budget_exceeded"),
            Error::StoreUnavailable(_) => ErrorType::SERVER,
            _ => ErrorType::AUTHENTICATION,
        }
    }
    fn code(&self) -> Option<Cow<'static, str>> {
        Some(Cow::Borrowed(match self {
            Error::MissingKey => "missing_api_key",
            Error::InvalidKey | Error::MalformedHeader => "invalid_api_key",
            Error::Expired(_) => "expired_api_key",
            Error::Blocked => "blocked_api_key",
            Error::ModelNotAllowed { .. }
            | Error::TeamModelNotAllowed { .. }
            | Error::UserModelNotAllowed { .. } => "model_not_allowed",
            Error::TeamBlocked(_) => "team_blocked",
            Error::EndUserBlocked(_) => "end_user_blocked",
            Error::RouteNotAllowed { .. } => "route_not_allowed",
            Error::MissingParam(_) => "missing_enforced_param",
            Error::BudgetExceeded { .. }
            | Error::TeamBudgetExceeded { .. }
            | Error::UserBudgetExceeded { .. }
            | Error::EndUserBudgetExceeded { .. }
            | Error::ModelBudgetExceeded { .. }
            | Error::ProxyBudgetExceeded { .. } => "budget_exceeded",
            Error::StoreUnavailable(_) => "key_store_unavailable",
        }))
    }
    fn param(&self) -> Option<Cow<'static, str>> {
        matches!(
            self,
            Error::ModelNotAllowed { .. }
                | Error::TeamModelNotAllowed { .. }
                | Error::UserModelNotAllowed { .. }
        )
        .then_some(Cow::Borrowed("model"))
    }
    fn retryable(&self) -> bool {
        false
    }
    fn origin(&self) -> Origin {
        Origin::Downstream
    }
}

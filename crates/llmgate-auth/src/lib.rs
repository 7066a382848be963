//! Authentication for llmgate: [`AuthLayer`] turns the caller's credential into a
//! [`Principal`](llmgate_core::Principal) in the request's extensions, or answers 401 itself.
//!
//! Credentials are read, in order, from `Authorization: Bearer <key>` (OpenAI SDKs),
//! `x-api-key` (Anthropic SDKs) and `api-key` (Azure OpenAI SDKs). The master key is compared in
//! constant time. With no master key configured, every caller is
//! [`Principal::Anonymous`](llmgate_core::Principal::Anonymous).
//!
//! Virtual keys ([`AuthLayer::with_keys`]) are looked up by their SHA-256 ([`hash_key`]) in a
//! [`KeyStore`] through [`Keys`], a bounded cache with a short TTL, so the request path does not
//! wait on a database. A key that is unknown, deleted, blocked or expired is a 401; a model the
//! key may not call is a 403 naming the models it may; a spent budget is LiteLLM's 400
//! `budget_exceeded`; a store that cannot be reached is a 503 (see `docs/keys.md`).
//!
//! ```
//! use http::{Request, Response};
//! use llmgate_auth::AuthLayer;
//! use llmgate_core::{body, BoxBody, Principal, Secret};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let svc = ServiceBuilder::new()
//!     .layer(AuthLayer::new(Some(Secret::new("sk-master"))))
//!     .service(service_fn(|req: Request<()>| async move {
//!         let who = req.extensions().get::<Principal>().cloned();
//!         Ok::<_, std::convert::Infallible>(Response::new(body::full(format!("{who:?}"))))
//!     }));
//!
//! let denied = svc.clone().oneshot(Request::new(())).await.unwrap();
//! assert_eq!(denied.status(), 401);
//!
//! let req = Request::builder().header("authorization", "Bearer sk-master").body(()).unwrap();
//! let ok: Response<BoxBody> = svc.oneshot(req).await.unwrap();
//! assert_eq!(ok.status(), 200);
//! # }
//! ```

mod budgets;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod error;
mod future;
mod hold;
mod keys;
mod layer;
mod ledger;
mod records;
mod rules;
mod secret;
mod service;
mod store;
mod teams;
mod tell;
mod users;

pub use budgets::{linked_budget, BUDGET_INVALIDATION_PREFIX};
pub use error::Error;
pub use future::ResponseFuture;
pub use hold::{Budgets, CostEstimate, EndUserBudget, Holders, ProxyBudget};
pub use keys::{
    Authenticated, EndUserFound, Keys, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL,
    END_USER_INVALIDATION_PREFIX,
};
pub use layer::AuthLayer;
#[cfg(any(test, feature = "conformance"))]
pub use ledger::conformance as ledger_conformance;
pub use ledger::{Admission, Budget, BudgetLedger, MemoryLedger};
pub use records::{MemoryRecordStore, Record, RecordKind, RecordPage, RecordStore};
pub use secret::{generate_secret, hash_key, key_name};
pub use service::{credential, Auth, END_USER_HEADERS};
pub use store::{
    alias_conflict, matches_filter, Invalidation, Invalidations, KeyFilter, KeyStore,
    MemoryKeyStore, StoreError,
};
pub use teams::{
    Cached, EndUserView, EndUsers, RecordCache, TeamView, Teams, UserView, Users, View,
    TEAM_INVALIDATION_PREFIX,
};
pub use tell::DEFAULT_BUDGET_ALERT_PERCENT;
pub use users::USER_INVALIDATION_PREFIX;

//! The gateway's paths: which requests go through the LLM stack, which are answered directly.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::{self, Either, Ready};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use llmgate_core::{body, ApiError, BoxBody, BoxError, ErrorType, Origin};
use tower::util::BoxCloneSyncService;
use tower::Service;

use crate::ReqBody;

/// A boxed inner stack.
pub(crate) type Stack = BoxCloneSyncService<Request<ReqBody>, Response<BoxBody>, BoxError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Llm,
    Messages,
    CountTokens,
    /// `POST /v1/responses` and `POST /v1/responses/compact`.
    Responses,
    /// `GET`/`DELETE /v1/responses/{id}`.
    StoredResponse,
    Models,
    Liveliness,
    Readiness,
    Health,
    #[cfg_attr(
        not(feature = "admin"),
        allow(dead_code, reason = "built with the admin feature")
    )]
    Keys,
    Metrics,
    Alerting,
    #[cfg_attr(
        not(feature = "admin"),
        allow(dead_code, reason = "built with the admin feature")
    )]
    Spend,
    /// `POST /config/reload`.
    #[cfg_attr(
        not(feature = "admin"),
        allow(dead_code, reason = "built with the admin feature")
    )]
    Reload,
    /// The web UI, `/ui` and below (it checks its own methods).
    #[cfg_attr(
        not(feature = "admin"),
        allow(dead_code, reason = "built with the admin feature")
    )]
    Ui,
}

/// The admin APIs under a prefix (each checks its own methods): keys, teams, users, end users,
/// budgets.
#[cfg(feature = "admin")]
pub(crate) fn is_admin_prefix(path: &str) -> bool {
    [
        "/key/",
        "/team/",
        "/user/",
        "/customer/",
        "/end_user/",
        "/budget/",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

fn route(path: &str) -> Option<(Route, Method)> {
    Some(match path {
        "/v1/chat/completions"
        | "/chat/completions"
        | "/v1/completions"
        | "/completions"
        | "/v1/embeddings"
        | "/embeddings" => (Route::Llm, Method::POST),
        "/v1/messages" => (Route::Messages, Method::POST),
        "/v1/messages/count_tokens" => (Route::CountTokens, Method::POST),
        "/v1/responses" | "/responses" | "/v1/responses/compact" | "/responses/compact" => {
            (Route::Responses, Method::POST)
        }
        // GET or DELETE, checked below.
        p if llmgate_responses::response_id(p).is_some() => (Route::StoredResponse, Method::GET),
        "/v1/models" | "/models" => (Route::Models, Method::GET),
        p if crate::info::is_info_path(p) => (Route::Models, crate::info::method_of(p)),
        "/health/liveliness" | "/health/liveness" => (Route::Liveliness, Method::GET),
        "/health/readiness" => (Route::Readiness, Method::GET),
        "/health" => (Route::Health, Method::GET),
        // The key API checks its own methods (GET for info and list, POST for the rest).
        #[cfg(feature = "admin")]
        p if is_admin_prefix(p) => (Route::Keys, Method::POST),
        "/metrics" | "/metrics/" => (Route::Metrics, Method::GET),
        "/alerting/recent" => (Route::Alerting, Method::GET),
        #[cfg(feature = "admin")]
        p if llmgate_admin::is_spend_path(p) => (Route::Spend, Method::GET),
        #[cfg(feature = "admin")]
        llmgate_admin::RELOAD_PATH => (Route::Reload, Method::POST),
        #[cfg(feature = "admin")]
        p if llmgate_admin::ui::is_ui_path(p) => (Route::Ui, Method::GET),
        _ => return None,
    })
}

/// Sends each request where its path says.
/// The routes of one config, shared: the gateway clones its service for every request, and a
/// clone of this is one reference count (the chosen stack alone is cloned, in `call`), not a
/// clone of every stack and admin service (21 boxed clones and their drops, ~25,000
/// instructions a request, before).
#[derive(Clone)]
pub(crate) struct Dispatch(Arc<Routes>);

pub(crate) struct Routes {
    pub(crate) llm: Stack,
    /// `/v1/messages`: Anthropic-format clients, over the same stack as `llm`.
    pub(crate) messages: Stack,
    /// `/v1/messages/count_tokens`.
    pub(crate) count_tokens: Stack,
    /// `POST /v1/responses`: OpenAI's Responses API, over the same stack as `llm`.
    pub(crate) responses: Stack,
    /// `GET`/`DELETE /v1/responses/{id}`, behind auth.
    pub(crate) stored_responses: Stack,
    /// `/v1/models`, and with the `admin` feature `/key/*` and the spend paths, behind one
    /// auth.
    pub(crate) api: Stack,
    /// `/health/readiness`: pings the backends (see `readiness.rs`).
    pub(crate) readiness: Stack,
    /// `/health` (behind the master key), and the background checks' lazy start.
    pub(crate) health: Stack,
    pub(crate) health_checks: crate::health::Health,
    /// Tasks started with the first request.
    pub(crate) background: crate::background::Background,
    /// Started with the first request, like the health checks.
    pub(crate) meter: llmgate_metering::Meter,
    /// For `/metrics`: deployment states.
    pub(crate) table: std::sync::Arc<llmgate_router::ModelTable>,
    /// For `/metrics`: the rate limiter's fault counters.
    pub(crate) limiter: crate::metrics::LimiterView,
    /// `GET /alerting/recent`, behind the master key.
    pub(crate) alerting: Stack,
    /// The web UI at `/ui`.
    #[cfg(feature = "admin")]
    pub(crate) ui: Stack,
}

impl Dispatch {
    /// Dispatch over the LLM stacks, the admin routes, and the parts `/metrics` and the lazy
    /// starts need.
    pub(crate) fn new(
        llm: crate::stack::LlmStacks,
        admin: &crate::admin::AdminRoutes,
        parts: &crate::parts::Parts,
    ) -> Self {
        let ratelimit = &parts.ratelimit;
        Dispatch(Arc::new(Routes {
            llm: llm.openai,
            messages: llm.messages,
            count_tokens: llm.count_tokens,
            responses: llm.responses,
            stored_responses: llm.stored_responses,
            api: admin.api.clone(),
            readiness: admin.readiness.clone(),
            health: admin.health.clone(),
            health_checks: parts.health.clone(),
            background: parts.tasks.clone(),
            meter: parts.meter.clone(),
            table: parts.table.clone(),
            limiter: crate::metrics::LimiterView {
                stats: ratelimit.stats(),
                store: ratelimit.store().clone(),
                budgets: parts.keys.as_ref().and_then(|k| k.budget_ledger().cloned()),
                cooldowns: parts.cooldowns.clone(),
                alerts: parts.alert_view.clone(),
            },
            alerting: admin.alerting.clone(),
            #[cfg(feature = "admin")]
            ui: admin.ui.clone(),
        }))
    }
}

type Fut = Either<
    <Stack as Service<Request<ReqBody>>>::Future,
    Ready<Result<Response<BoxBody>, BoxError>>,
>;

impl Service<Request<ReqBody>> for Dispatch {
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = Fut;

    /// Always ready, and the chosen stack is called without polling it: every service behind
    /// a route is always ready (each layer's `poll_ready` delegates and the innermost services,
    /// the provider and the `service_fn`s, are always ready; limits answer 429 in `call`, never
    /// by holding requests in `poll_ready`), so polling the chosen one would only cost a clone
    /// per request. A service that could be unready must not be mounted here without changing
    /// this.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Fut {
        let routes = &*self.0;
        let call = |stack: &Stack, req| Either::Left(stack.clone().call(req));
        // Background health checks start with the first request, inside the host's runtime.
        routes.health_checks.start_background();
        routes.background.start();
        routes.meter.start();
        let ready = |res| Either::Right(future::ready(Ok(res)));
        crate::azure_path::rewrite(&mut req);
        let Some((route, method)) = route(req.uri().path()) else {
            return ready(not_found(req.uri().path()));
        };
        let method_ok = matches!(route, Route::Keys | Route::Ui)
            || (route == Route::StoredResponse && req.method() == Method::DELETE)
            || req.method() == method
            || (method == Method::GET && req.method() == Method::HEAD);
        if !method_ok {
            return ready(method_not_allowed(req.method(), &method));
        }
        match route {
            Route::Llm => call(&routes.llm, req),
            Route::Messages => call(&routes.messages, req),
            Route::CountTokens => call(&routes.count_tokens, req),
            Route::Responses => call(&routes.responses, req),
            Route::StoredResponse => call(&routes.stored_responses, req),
            Route::Models | Route::Keys | Route::Spend | Route::Reload => call(&routes.api, req),
            // LiteLLM answers the JSON string "I'm alive!"; clients and probes check for it.
            Route::Liveliness => ready(json(Bytes::from_static(b"\"I'm alive!\""))),
            Route::Readiness => call(&routes.readiness, req),
            Route::Health => call(&routes.health, req),
            Route::Alerting => call(&routes.alerting, req),
            #[cfg(feature = "admin")]
            Route::Ui => call(&routes.ui, req),
            #[cfg(not(feature = "admin"))]
            Route::Ui => ready(not_found(req.uri().path())),
            Route::Metrics => ready(crate::metrics::render(
                routes.meter.metrics(),
                &routes.table,
                &routes.limiter,
            )),
        }
    }
}

/// A 200 JSON response.
pub(crate) fn json(bytes: Bytes) -> Response<BoxBody> {
    let mut res = Response::new(body::full(bytes));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// LiteLLM's endpoints llmgate does not serve (yet), by path prefix, with what they are: a
/// client calling one is told so by name, not with a bare 404.
const NOT_SERVED: &[(&str, &str)] = &[
    ("/v1/images/", "image generation"),
    ("/images/", "image generation"),
    ("/v1/audio/", "the audio API (speech, transcriptions)"),
    ("/audio/", "the audio API (speech, transcriptions)"),
    ("/v1/moderations", "moderations"),
    ("/moderations", "moderations"),
    ("/v1/rerank", "rerank"),
    ("/v2/rerank", "rerank"),
    ("/rerank", "rerank"),
    ("/v1/batches", "the Batch API"),
    ("/batches", "the Batch API"),
    ("/v1/files", "the Files API"),
    ("/files", "the Files API"),
    ("/v1/fine_tuning/", "fine-tuning"),
    ("/v1/assistants", "the Assistants API"),
    ("/v1/threads", "the Assistants API"),
    ("/v1/realtime", "the Realtime API"),
    ("/v1/vector_stores", "vector stores"),
    ("/organization/", "organizations"),
    ("/global/spend", "LiteLLM's global spend reports"),
    (
        "/model/new",
        "adding models over the API (llmgate reads models from its config: edit it and reload)",
    ),
    (
        "/model/update",
        "changing models over the API (llmgate reads models from its config: edit it and reload)",
    ),
    (
        "/model/delete",
        "deleting models over the API (llmgate reads models from its config: edit it and reload)",
    ),
    // Only without the `admin` feature: with it, dispatch sends `/ui` to the UI first.
    ("/ui", "the admin UI"),
    ("/sso/", "SSO sign-in"),
    ("/guardrails", "guardrails"),
    ("/mcp", "MCP servers"),
];

fn not_found(path: &str) -> Response<BoxBody> {
    if path.starts_with("/v1/messages/") {
        // Anthropic's clients read Anthropic's error shape on every /v1/messages path.
        return llmgate_messages::error_response(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("{path} is not served by llmgate: it serves POST /v1/messages"),
        );
    }
    let message = match NOT_SERVED.iter().find(|(prefix, _)| path.starts_with(prefix)) {
        Some((_, what)) => format!("{path} is LiteLLM's endpoint for {what}, which llmgate does not serve (yet); see docs/endpoints.md for what it serves"),
        None => format!("no route for {path}; llmgate serves /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/messages, /v1/responses, /v1/models, /model/info, /model_group/info, /utils/token_counter, /health/*, /metrics, /key/*, /team/*, /user/*, /customer/*, /budget/*, the spend endpoints, /config/reload and the admin UI at /ui (docs/endpoints.md)"),
    };
    ApiError::new(StatusCode::NOT_FOUND, Origin::Downstream, message)
        .with_type(ErrorType::NOT_FOUND)
        .with_code("not_found")
        .to_response()
}

fn method_not_allowed(got: &Method, allowed: &Method) -> Response<BoxBody> {
    let mut res = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Origin::Downstream,
        format!("method {got} is not allowed here; use {allowed}"),
    )
    .with_code("method_not_allowed")
    .to_response();
    if let Ok(v) = HeaderValue::from_str(allowed.as_str()) {
        res.headers_mut().insert(header::ALLOW, v);
    }
    res
}

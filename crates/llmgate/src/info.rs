//! The model-information endpoints LiteLLM's clients and dashboards call, behind the caller's
//! key: `GET /v1/models/{id}` (OpenAI's), `GET /model/info` and `/v1/model/info` (each
//! deployment, never its key), `GET /model_group/info` (each group), and
//! `POST /utils/token_counter` (a prompt's tokens, counted as the rate limiter counts them).
//!
//! A virtual key limited to some models sees only those, by the rule a call follows (the name
//! or the group it names). Built from the config, so a reload rebuilds them.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use llmgate_config::Config;
use llmgate_core::{
    tokens, ApiError, BoxBody, BoxError, DeploymentSpec, Endpoint, ErrorType, LlmRequest,
    ModelAccess, Origin, Principal,
};
use llmgate_metering::PriceTable;
use llmgate_router::ModelTable;
use serde_json::{json, Value};
use tower::service_fn;
use tower::util::BoxCloneSyncService;

use crate::routes::{self, Stack};
use crate::ReqBody;

/// `/v1/models/` and `/models/`: the prefixes of one model's path.
const MODEL_PREFIXES: [&str; 2] = ["/v1/models/", "/models/"];

/// Whether `path` is one of this module's.
pub(crate) fn is_info_path(path: &str) -> bool {
    matches!(
        path,
        "/model/info" | "/v1/model/info" | "/model_group/info" | "/utils/token_counter"
    ) || MODEL_PREFIXES
        .iter()
        .any(|p| path.strip_prefix(p).is_some_and(|id| !id.is_empty()))
}

/// The method each path takes.
pub(crate) fn method_of(path: &str) -> Method {
    match path {
        "/utils/token_counter" => Method::POST,
        _ => Method::GET,
    }
}

/// The token counter's body being read.
type ReadBody = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Bytes, llmgate_core::ApiError>> + Send>,
>;

/// What the endpoints answer, worked out once per config.
struct Info {
    /// `/model/info` entries, each with its group.
    deployments: Vec<(Arc<str>, Value)>,
    /// `/model_group/info` entries by group.
    groups: Vec<(Arc<str>, Value)>,
    /// Names clients may use, with the model object `/v1/models/{id}` answers.
    models: BTreeMap<String, Value>,
    /// Each group's first deployment's model id: what a prompt is counted for.
    first_model: BTreeMap<Arc<str>, String>,
    table: Arc<ModelTable>,
    max_body: usize,
}

/// The endpoints for `config`'s deployments, priced by `prices`.
pub(crate) fn routes(
    config: &Config,
    table: &Arc<ModelTable>,
    prices: &PriceTable,
    max_body: usize,
) -> Stack {
    let specs = config.deployments();
    let created = crate::admin::started_at();
    let models = table
        .visible_models()
        .into_iter()
        .map(|(name, owner)| {
            let object =
                json!({"id": name, "object": "model", "created": created, "owned_by": owner});
            (name, object)
        })
        .collect();
    let info = Arc::new(Info {
        deployments: specs
            .iter()
            .map(|d| (d.model_name.clone(), deployment_info(d, prices)))
            .collect(),
        groups: group_info(&specs, prices),
        models,
        first_model: specs
            .iter()
            .rev()
            .map(|d| (d.model_name.clone(), d.model.to_string()))
            .collect(),
        table: table.clone(),
        max_body,
    });
    BoxCloneSyncService::new(service_fn(move |req: Request<ReqBody>| {
        let info = info.clone();
        let (parts, body) = req.into_parts();
        // Only the token counter reads a body.
        let read: Option<ReadBody> = (parts.uri.path() == "/utils/token_counter")
            .then(|| Box::pin(llmgate_core::body::read_capped(body, info.max_body)) as ReadBody);
        async move {
            let body = match read {
                Some(read) => match read.await {
                    Ok(body) => body,
                    Err(e) => return Ok::<_, BoxError>(e.to_response()),
                },
                None => Bytes::new(),
            };
            Ok::<_, BoxError>(info.answer(&parts, &body))
        }
    }))
}

impl Info {
    fn answer(&self, req: &Parts, body: &Bytes) -> Response<BoxBody> {
        let path = req.uri.path();
        let permits = |name: &str| permitted(req, &self.table, name);
        match path {
            "/model/info" | "/v1/model/info" => {
                let data: Vec<&Value> = self
                    .deployments
                    .iter()
                    .filter(|(group, _)| permits(group))
                    .map(|(_, v)| v)
                    .collect();
                ok(&json!({ "data": data }))
            }
            "/model_group/info" => {
                let data: Vec<&Value> = self
                    .groups
                    .iter()
                    .filter(|(group, _)| permits(group))
                    .map(|(_, v)| v)
                    .collect();
                ok(&json!({ "data": data }))
            }
            "/utils/token_counter" => self.count(body),
            _ => {
                let id = MODEL_PREFIXES
                    .iter()
                    .find_map(|p| path.strip_prefix(p))
                    .unwrap_or_default();
                match self.models.get(id) {
                    Some(object) if permits(id) => ok(object),
                    _ => not_found(format!("model \"{id}\" is not served by this gateway; call /v1/models for the available models")),
                }
            }
        }
    }

    /// `POST /utils/token_counter`: `{"model", "messages"}` (or `"prompt"`) in, LiteLLM's
    /// `{"total_tokens", "request_model", "model_used", "tokenizer_type"}` out.
    fn count(&self, body: &Bytes) -> Response<BoxBody> {
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return bad_request(format!("the body is not JSON: {e}")),
        };
        let endpoint = match value.get("prompt") {
            Some(_) => Endpoint::Completions,
            None => Endpoint::ChatCompletions,
        };
        let llm = match LlmRequest::parse(endpoint, body) {
            Ok(llm) => llm,
            Err(e) => return bad_request(e.to_string()),
        };
        let requested = llm.model().to_owned();
        // Counted for the model the group's first deployment calls, as the rate limiter does.
        let used = self
            .table
            .resolve(&requested)
            .and_then(|g| self.first_model.get(g))
            .cloned()
            .unwrap_or_else(|| requested.clone());
        ok(&json!({
            "total_tokens": tokens::prompt_tokens(&llm, &used),
            "request_model": requested,
            "model_used": used,
            "tokenizer_type": tokens::tokenizer_of(&used),
        }))
    }
}

/// `POST /v1/messages/count_tokens` behind the Messages layer and auth: the translated request's
/// prompt tokens for the model it names, as `{"input_tokens": N}` (Anthropic's shape). Anthropic's
/// own tokenizer is not public: Claude models are counted at 4 bytes a token, as the rate limiter
/// counts them.
pub(crate) async fn count_tokens(req: Request<Bytes>) -> Result<Response<BoxBody>, BoxError> {
    let Some(llm) = req.extensions().get::<LlmRequest>() else {
        return Ok(
            llmgate_core::ApiError::internal("count_tokens without a parsed request").to_response(),
        );
    };
    let n = tokens::prompt_tokens(llm, llm.model());
    let mut res = ok(&json!({ "input_tokens": n }));
    res.extensions_mut().insert(llmgate_messages::Untranslated);
    Ok(res)
}

/// Whether the caller may call `name` (a group or an alias), by a call's rule.
fn permitted(req: &Parts, table: &ModelTable, name: &str) -> bool {
    match req.extensions.get::<Principal>().and_then(Principal::key) {
        Some(key) if !key.models.is_empty() => {
            let group = table.resolve(name);
            req.extensions
                .get::<ModelAccess>()
                .is_none_or(|a| a.permits(name, group.map_or(name, |g| &**g)))
        }
        _ => true,
    }
}

/// One `/model/info` entry: LiteLLM's shape, with no credential.
fn deployment_info(d: &DeploymentSpec, prices: &PriceTable) -> Value {
    let price = prices.price(d);
    let p = price.as_deref();
    let mi = &d.model_info;
    json!({
        "model_name": d.model_name,
        "litellm_params": {
            "model": format!("{}/{}", d.provider.as_str(), d.model),
            "api_base": d.api_base,
            "api_version": d.api_version,
            "rpm": d.rpm,
            "tpm": d.tpm,
            "rpd": d.rpd,
        },
        "model_info": {
            "id": d.id,
            "db_model": false,
            "mode": mi.mode.as_deref().unwrap_or("chat"),
            "base_model": mi.base_model,
            "litellm_provider": d.provider.as_str(),
            "max_input_tokens": mi.max_input_tokens.or_else(|| p.and_then(|p| whole(p.max_input_tokens))),
            "max_output_tokens": mi.max_tokens.or_else(|| p.and_then(|p| whole(p.max_output_tokens))),
            "max_tokens": mi.max_tokens.or_else(|| p.and_then(|p| whole(p.max_output_tokens))),
            "input_cost_per_token": mi.input_cost_per_token.or_else(|| p.and_then(|p| p.input_cost_per_token)),
            "output_cost_per_token": mi.output_cost_per_token.or_else(|| p.and_then(|p| p.output_cost_per_token)),
        },
    })
}

fn whole(v: Option<f64>) -> Option<u64> {
    v.filter(|v| v.is_finite() && *v >= 0.0).map(|v| v as u64)
}

/// `/model_group/info`: per group, its providers, the smallest context and output limits of
/// its deployments, the highest prices, the summed rpm/tpm.
fn group_info(specs: &[DeploymentSpec], prices: &PriceTable) -> Vec<(Arc<str>, Value)> {
    let mut order: Vec<Arc<str>> = Vec::new();
    let mut by_group: BTreeMap<Arc<str>, Vec<Value>> = BTreeMap::new();
    for d in specs {
        if !by_group.contains_key(&d.model_name) {
            order.push(d.model_name.clone());
        }
        by_group
            .entry(d.model_name.clone())
            .or_default()
            .push(deployment_info(d, prices));
    }
    order
        .into_iter()
        .map(|group| {
            let entries = by_group.remove(&group).unwrap_or_default();
            let value = summarize(&group, &entries);
            (group, value)
        })
        .collect()
}

fn summarize(group: &str, entries: &[Value]) -> Value {
    let infos = || entries.iter().map(|e| &e["model_info"]);
    let params = || entries.iter().map(|e| &e["litellm_params"]);
    let min = |key: &str| infos().filter_map(|i| i[key].as_u64()).min();
    let max = |key: &str| infos().filter_map(|i| i[key].as_f64()).reduce(f64::max);
    let sum = |key: &str| {
        let all: Vec<u64> = params().filter_map(|p| p[key].as_u64()).collect();
        (all.len() == entries.len() && !all.is_empty()).then(|| all.iter().sum::<u64>())
    };
    let mut providers: Vec<&str> = infos()
        .filter_map(|i| i["litellm_provider"].as_str())
        .collect();
    providers.dedup();
    json!({
        "model_group": group,
        "providers": providers,
        "max_input_tokens": min("max_input_tokens"),
        "max_output_tokens": min("max_output_tokens"),
        "input_cost_per_token": max("input_cost_per_token"),
        "output_cost_per_token": max("output_cost_per_token"),
        "mode": infos().next().map_or(json!("chat"), |i| i["mode"].clone()),
        "tpm": sum("tpm"),
        "rpm": sum("rpm"),
    })
}

fn ok(value: &Value) -> Response<BoxBody> {
    routes::json(Bytes::from(serde_json::to_vec(value).unwrap_or_default()))
}

fn bad_request(message: String) -> Response<BoxBody> {
    ApiError::new(StatusCode::BAD_REQUEST, Origin::Downstream, message).to_response()
}

fn not_found(message: String) -> Response<BoxBody> {
    ApiError::new(StatusCode::NOT_FOUND, Origin::Downstream, message)
        .with_type(ErrorType::INVALID_REQUEST)
        .with_code("model_not_found")
        .to_response()
}

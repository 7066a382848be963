//! `model_list`: each entry's `model_name`, `litellm_params` and `model_info`, resolved.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use llmgate_core::{AwsParams, MockResponse, ModelInfo, ProviderKind, Secret};
use serde_json::Map;

use crate::node::Node;
use crate::problems::{index_path, key_path};
use crate::schema::{LitellmParams, ModelEntry};
use crate::settings::{not_yet_active, unenforced};
use crate::walk::Walk;

/// LiteLLM's exception names accepted as `mock_response`, and the status each one fails with.
pub const MOCK_ERRORS: &[(&str, u16)] = &[
    ("litellm.RateLimitError", 429),
    ("litellm.InternalServerError", 500),
    ("litellm.ServiceUnavailableError", 503),
    ("litellm.Timeout", 408),
    ("litellm.BadRequestError", 400),
    ("litellm.AuthenticationError", 401),
    ("litellm.ContextWindowExceededError", 400),
    ("litellm.ContentPolicyViolationError", 400),
    ("litellm.NotFoundError", 404),
    ("litellm.APIConnectionError", 500),
];

/// Whether llmgate serves `provider` (all but Vertex AI, known by name only).
fn is_served(provider: ProviderKind) -> bool {
    !matches!(provider, ProviderKind::VertexAi)
}

/// Walks `model_list`. Entries with errors are left out (the load fails anyway).
/// Deployment ids must be unique; a repeated one is reported at the later entry.
pub(crate) fn model_list(w: &mut Walk<'_>, node: &Node, path: &str) -> Vec<ModelEntry> {
    let mut out = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, item) in w.items(node, path).iter().enumerate() {
        let entry_path = index_path(path, i);
        let Some(entry) = entry(w, item, i, &entry_path) else {
            continue;
        };
        if let Some(earlier) = ids.get(&entry.id) {
            w.report.error(
                &key_path(&key_path(&entry_path, "model_info"), "id"),
                format!(
                    "duplicate deployment id \"{}\" (also used by {path}[{earlier}])",
                    entry.id
                ),
            );
            continue;
        }
        ids.insert(entry.id.clone(), i);
        out.push(entry);
    }
    out
}

fn entry(w: &mut Walk<'_>, node: &Node, index: usize, path: &str) -> Option<ModelEntry> {
    let mut model_name = None;
    let mut params = None;
    let mut info = (None, ModelInfo::default());
    let mut saw_name = false;
    let mut saw_params = false;
    for (key, value) in w.entries(node, path) {
        let p = key_path(path, key);
        match key {
            "model_name" => {
                saw_name = true;
                model_name = w.non_empty_string(value, &p);
                if let Some(name) = &model_name {
                    w.group_names.insert(name.clone());
                }
            }
            "litellm_params" => {
                saw_params = true;
                params = litellm_params(w, value, &p);
            }
            "model_info" => info = model_info(w, value, &p),
            _ => w.report.unknown_key(&p),
        }
    }
    if !saw_name {
        w.report
            .error(&key_path(path, "model_name"), "missing required key");
    }
    if !saw_params {
        w.report
            .error(&key_path(path, "litellm_params"), "missing required key");
    }
    let model_name = model_name?;
    let (params, costs) = params?;
    let (id, mut model_info) = info;
    model_info.input_cost_per_token = model_info.input_cost_per_token.or(costs.0);
    model_info.output_cost_per_token = model_info.output_cost_per_token.or(costs.1);
    let id = id.unwrap_or_else(|| format!("{model_name}-{index}"));
    Some(ModelEntry {
        model_name,
        id,
        litellm_params: params,
        model_info,
    })
}

/// Per-token costs given in `litellm_params` (LiteLLM accepts them there as well).
type Costs = (Option<f64>, Option<f64>);

#[derive(Default)]
struct Raw {
    model: Option<String>,
    saw_model: bool,
    /// `api_key`/`api_base` written (even if unresolvable): no default applies then.
    saw_api_key: bool,
    saw_api_base: bool,
    custom_llm_provider: Option<String>,
    api_key: Option<Secret>,
    api_base: Option<String>,
    api_version: Option<String>,
    organization: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    extra_headers: Vec<(HeaderName, HeaderValue)>,
    mock_response: Option<MockResponse>,
}

fn litellm_params(w: &mut Walk<'_>, node: &Node, path: &str) -> Option<(LitellmParams, Costs)> {
    match node {
        Node::Map(_) => {}
        Node::Null => {
            w.report
                .error(&key_path(path, "model"), "missing required key");
            return None;
        }
        other => {
            w.report
                .error(path, format!("expected a mapping, found {}", other.kind()));
            return None;
        }
    }
    let mut raw = Raw::default();
    let mut out = LitellmParams {
        model: String::new(),
        provider: ProviderKind::OpenAi,
        upstream_model: String::new(),
        api_base: None,
        api_key: None,
        api_version: None,
        organization: None,
        timeout: None,
        stream_timeout: None,
        max_retries: None,
        rpm: None,
        tpm: None,
        rpd: None,
        weight: None,
        headers: Vec::new(),
        mock_response: None,
        tags: Vec::new(),
        region_name: None,
        cooldown_time: None,
        max_parallel_requests: None,
        default_params: Map::new(),
        drop_params: None,
        aws: None,
    };
    let mut costs: Costs = (None, None);
    let mut aws = AwsParams::default();
    let errors_before = w.report.error_count();
    for (key, value) in w.entries(node, path) {
        let p = key_path(path, key);
        match key {
            "model" => {
                raw.saw_model = true;
                raw.model = w.non_empty_string(value, &p);
            }
            "custom_llm_provider" => raw.custom_llm_provider = w.string(value, &p),
            "api_key" => {
                raw.saw_api_key = !value.is_null();
                raw.api_key = w.secret(value, &p);
            }
            "api_base" | "base_url" => {
                raw.saw_api_base = !value.is_null();
                raw.api_base = w.non_empty_string(value, &p);
            }
            "api_version" => raw.api_version = w.string(value, &p),
            "organization" => raw.organization = w.string(value, &p),
            "timeout" | "request_timeout" => out.timeout = w.seconds(value, &p),
            "stream_timeout" => out.stream_timeout = w.seconds(value, &p),
            "max_retries" | "num_retries" => {
                out.max_retries = w.u32(value, &p);
            }
            "rpm" => out.rpm = w.u64(value, &p),
            "tpm" => out.tpm = w.u64(value, &p),
            "rpd" => out.rpd = w.u64(value, &p),
            "drop_params" => out.drop_params = w.bool(value, &p),
            "extra_body" => {
                // LiteLLM merges extra_body's fields into the request body.
                if let serde_json::Value::Object(fields) = w.json(value, &p) {
                    out.default_params.extend(fields);
                } else if !value.is_null() {
                    w.report.error(&p, "expected a map of body fields");
                }
            }
            "weight" => out.weight = w.non_negative(value, &p),
            "mock_response" => raw.mock_response = mock_response(w, value, &p),
            "headers" => raw.headers = headers(w, value, &p),
            "extra_headers" => raw.extra_headers = headers(w, value, &p),
            "tags" => {
                out.tags = w.string_list(value, &p);
                not_yet_active(w, value, &p, "tag-based routing");
            }
            "region_name" => {
                out.region_name = w.string(value, &p);
                not_yet_active(w, value, &p, "region-based routing");
            }
            "cooldown_time" => {
                out.cooldown_time = w.non_negative_seconds(value, &p);
            }
            "max_parallel_requests" => {
                out.max_parallel_requests = w.u64(value, &p);
                not_yet_active(w, value, &p, "per-deployment parallel request limits");
            }
            "input_cost_per_token" => costs.0 = w.non_negative(value, &p),
            "output_cost_per_token" => costs.1 = w.non_negative(value, &p),
            "use_in_pass_through"
            | "merge_reasoning_content_in_choices"
            | "input_cost_per_second"
            | "output_cost_per_second"
            | "metadata"
            | "budget_duration" => not_yet_active(w, value, &p, "this LiteLLM deployment setting"),
            "max_budget" => unenforced(w, value, &p, "deployment budgets are"),
            "litellm_credential_name" => {
                unenforced(w, value, &p, "credential_list credentials are")
            }
            "azure_ad_token"
            | "azure_ad_token_provider"
            | "tenant_id"
            | "client_id"
            | "client_secret"
            | "azure_username"
            | "azure_password" => unenforced(w, value, &p, "Azure AD authentication is"),
            "aws_access_key_id" => aws.access_key_id = w.secret(value, &p),
            "aws_secret_access_key" => aws.secret_access_key = w.secret(value, &p),
            "aws_session_token" => aws.session_token = w.secret(value, &p),
            "aws_region_name" => aws.region = w.string(value, &p).map(Arc::from),
            k if k.starts_with("aws_") || k.starts_with("vertex_") => {
                not_yet_active(w, value, &p, "this provider's credentials")
            }
            _ => {
                if !value.is_null() {
                    let json = w.json(value, &p);
                    out.default_params.insert(key.to_owned(), json);
                }
            }
        }
    }
    if !raw.saw_model {
        w.report
            .error(&key_path(path, "model"), "missing required key");
    }
    let model_path = key_path(path, "model");
    let model = raw.model.take()?;
    let (provider, upstream) = match split_provider(&model, raw.custom_llm_provider.as_deref()) {
        Ok(split) => split,
        Err(message) => {
            w.report.error(&model_path, message);
            return None;
        }
    };
    if upstream.trim().is_empty() {
        w.report.error(
            &model_path,
            format!("no model id after the provider prefix \"{provider}/\""),
        );
        return None;
    }
    if !is_served(provider) {
        w.report.error(
            &model_path,
            format!("provider \"{provider}\" is not supported yet"),
        );
        return None;
    }
    let has_mock = raw.mock_response.is_some();
    // Defaults apply only to keys not written: an unresolvable value is an error, not a default.
    out.api_key = raw.api_key.take().or_else(|| {
        (!raw.saw_api_key)
            .then(|| provider.api_key_env().and_then(|var| w.env.lookup(var)))
            .flatten()
            .map(Secret::new)
    });
    if provider == ProviderKind::Bedrock {
        let env = |names: &[&str]| names.iter().find_map(|n| w.env.lookup(n));
        let secret = |v: Option<String>| v.filter(|s| !s.is_empty()).map(Secret::new);
        aws.access_key_id = aws
            .access_key_id
            .or_else(|| secret(env(&["AWS_ACCESS_KEY_ID"])));
        aws.secret_access_key = aws
            .secret_access_key
            .or_else(|| secret(env(&["AWS_SECRET_ACCESS_KEY"])));
        aws.session_token = aws
            .session_token
            .or_else(|| secret(env(&["AWS_SESSION_TOKEN"])));
        aws.region = aws.region.or_else(|| {
            env(&["AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"]).map(Arc::from)
        });
        if raw.api_base.is_none() && !raw.saw_api_base {
            // Bedrock's runtime endpoint is derived from the region.
            raw.api_base = aws
                .region
                .as_ref()
                .map(|r| format!("https://bedrock-runtime.{r}.amazonaws.com"));
        }
        if aws.region.is_none() && raw.api_base.is_none() && !has_mock {
            w.report.error(
                &key_path(path, "aws_region_name"),
                "bedrock needs a region: set aws_region_name (or AWS_REGION), or api_base",
            );
        }
        // An `api_key` is sent as a Bedrock API key (bearer) instead of signing.
        if (aws.access_key_id.is_none() || aws.secret_access_key.is_none())
            && out.api_key.is_none()
            && !has_mock
        {
            w.report.warning(
                &key_path(path, "aws_access_key_id"),
                "no AWS credentials (aws_access_key_id/aws_secret_access_key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and no api_key (a Bedrock API key): requests will be sent unsigned and refused",
            );
        }
        out.aws = Some(aws);
    }
    out.api_base = raw.api_base.take().or_else(|| {
        (!raw.saw_api_base)
            .then(|| {
                provider
                    .api_base_env()
                    .and_then(|var| w.env.lookup(var))
                    .or_else(|| provider.default_api_base().map(str::to_owned))
            })
            .flatten()
    });
    if let Some(base) = &out.api_base {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            w.report.error(
                &key_path(path, "api_base"),
                format!("\"{base}\" is not an http:// or https:// URL"),
            );
        }
    }
    match &out.api_base {
        None if raw.saw_api_base => {}
        // Bedrock's missing region was reported above.
        None if !has_mock && provider != ProviderKind::Bedrock => w.report.error(
            &key_path(path, "api_base"),
            format!("api_base is required for {provider}"),
        ),
        Some(base) if out.api_key.is_none() && !raw.saw_api_key && !has_mock => {
            let public =
                provider.default_api_base() == Some(base.as_str()) && base.starts_with("https://");
            if let (true, Some(var)) = (public, provider.api_key_env()) {
                w.report.warning(
                    &key_path(path, "api_key"),
                    format!("no api_key, and {var} is not set: the provider will refuse requests"),
                );
            }
        }
        _ => {}
    }
    out.api_version = raw.api_version.take().or_else(|| {
        (provider == ProviderKind::Azure)
            .then(|| w.env.lookup("AZURE_API_VERSION"))
            .flatten()
    });
    out.headers = merge_headers(raw.headers, raw.extra_headers);
    if let Some(org) = raw.organization.take() {
        let name = HeaderName::from_static("openai-organization");
        match HeaderValue::from_str(&org) {
            Ok(value) if !out.headers.iter().any(|(n, _)| *n == name) => {
                out.headers.push((name, value));
            }
            Ok(_) => {}
            Err(_) => w.report.error(
                &key_path(path, "organization"),
                "not valid in an HTTP header (OpenAI-Organization)",
            ),
        }
        out.organization = Some(org);
    }
    out.mock_response = raw.mock_response;
    out.model = model;
    out.provider = provider;
    out.upstream_model = upstream;
    (w.report.error_count() == errors_before).then_some((out, costs))
}

fn split_provider(model: &str, custom: Option<&str>) -> Result<(ProviderKind, String), String> {
    match custom {
        Some(name) => {
            let provider: ProviderKind = name
                .parse()
                .map_err(|e: llmgate_core::UnknownProvider| format!("custom_llm_provider: {e}"))?;
            let prefix = format!("{name}/");
            let upstream = model.strip_prefix(&prefix).unwrap_or(model);
            Ok((provider, upstream.to_owned()))
        }
        None => ProviderKind::split_model(model)
            .map(|(p, m)| (p, m.to_owned()))
            .map_err(|e| e.to_string()),
    }
}

/// `headers` first, then `extra_headers`, which replaces a header of the same name.
fn merge_headers(
    headers: Vec<(HeaderName, HeaderValue)>,
    extra: Vec<(HeaderName, HeaderValue)>,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out: Vec<(HeaderName, HeaderValue)> = headers
        .into_iter()
        .filter(|(name, _)| !extra.iter().any(|(n, _)| n == name))
        .collect();
    out.extend(extra);
    out
}

fn headers(w: &mut Walk<'_>, node: &Node, path: &str) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    for (key, value) in w.entries(node, path) {
        let p = key_path(path, key);
        let name = HeaderName::from_bytes(key.as_bytes());
        let text = match value {
            Node::Bool(b) => Some(b.to_string()),
            other => w.string(other, &p),
        };
        let Ok(name) = name else {
            w.report.error(&p, "not a valid HTTP header name");
            continue;
        };
        let Some(text) = text else { continue };
        match HeaderValue::from_str(&text) {
            Ok(v) => out.push((name, v)),
            Err(_) => w.report.error(
                &p,
                "not a valid HTTP header value (control characters or non-ASCII text)",
            ),
        }
    }
    out
}

fn mock_response(w: &mut Walk<'_>, node: &Node, path: &str) -> Option<MockResponse> {
    let text = match node {
        Node::Null => return None,
        Node::Str(_) => w.string(node, path)?,
        other => {
            w.report.error(
                path,
                format!(
                    "expected a string (text, or a LiteLLM exception name such as \
                     litellm.RateLimitError), found {}",
                    other.kind()
                ),
            );
            return None;
        }
    };
    let name = text.trim();
    if let Some((_, status)) = MOCK_ERRORS.iter().find(|(n, _)| *n == name) {
        return Some(MockResponse::Error {
            status: *status,
            message: Arc::from(format!("{name}: mock_response from the config")),
        });
    }
    if name.starts_with("litellm.") && !name.contains(char::is_whitespace) {
        let known: Vec<&str> = MOCK_ERRORS.iter().map(|(n, _)| *n).collect();
        w.report.warning(
            path,
            format!(
                "\"{name}\" looks like a LiteLLM exception but is not one llmgate maps to a \
                 status ({}); it is answered as text",
                known.join(", ")
            ),
        );
    }
    Some(MockResponse::Text(Arc::from(text)))
}

/// `model_info`: its id, and what the rest says about the deployment.
fn model_info(w: &mut Walk<'_>, node: &Node, path: &str) -> (Option<String>, ModelInfo) {
    let mut id = None;
    let mut info = ModelInfo::default();
    let mut max_output_tokens = None;
    for (key, value) in w.entries(node, path) {
        let p = key_path(path, key);
        match key {
            "id" => id = w.non_empty_string(value, &p),
            "mode" => info.mode = w.string(value, &p),
            "base_model" => info.base_model = w.string(value, &p),
            "max_input_tokens" => info.max_input_tokens = w.u64(value, &p),
            "max_tokens" => info.max_tokens = w.u64(value, &p),
            "max_output_tokens" => max_output_tokens = w.u64(value, &p),
            "input_cost_per_token" => info.input_cost_per_token = w.non_negative(value, &p),
            "output_cost_per_token" => info.output_cost_per_token = w.non_negative(value, &p),
            "cache_read_input_token_cost" => {
                info.cache_read_input_token_cost = w.non_negative(value, &p)
            }
            "cache_creation_input_token_cost" => {
                info.cache_creation_input_token_cost = w.non_negative(value, &p)
            }
            "output_cost_per_reasoning_token" => {
                info.output_cost_per_reasoning_token = w.non_negative(value, &p)
            }
            "team_id" | "team_public_model_name" => {
                unenforced(w, value, &p, "team-only models are")
            }
            k if k.starts_with("supports_")
                || k.contains("_cost_per_")
                || k.ends_with("_cost")
                || matches!(
                    k,
                    "description"
                        | "access_groups"
                        | "litellm_provider"
                        | "tier"
                        | "db_model"
                        | "output_vector_size"
                        | "tpm"
                        | "rpm"
                        | "health_check_model"
                ) =>
            {
                not_yet_active(
                    w,
                    value,
                    &p,
                    "model metadata beyond mode, base model, limits and cost",
                )
            }
            _ => w.report.unknown_key(&p),
        }
    }
    info.max_tokens = info.max_tokens.or(max_output_tokens);
    (id, info)
}

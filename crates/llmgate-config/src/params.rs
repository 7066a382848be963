//! `litellm_params`: one table of the keys llmgate reads (the rest are passed to the provider
//! as default request parameters), then what needs the provider first: its credentials and
//! `api_base` defaults and checks, headers.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use llmgate_core::{AwsParams, MockResponse, ProviderKind, Secret};
use serde_json::Map;

use crate::node::Node;
use crate::problems::key_path;
use crate::schema::LitellmParams;
use crate::settings::not_yet_active;
use crate::table::Handle::{NotYetActive, Read, Unenforced};
use crate::table::{walk_table, Table};
use crate::walk::Walk;

mod headers;
use headers::{headers, resolve_headers};

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

/// Per-token costs given in `litellm_params` (LiteLLM accepts them there as well).
pub(crate) type Costs = (Option<f64>, Option<f64>);

/// `litellm_params` as its table reads it: what is final goes to `out`; what needs the
/// provider first (defaults, checks) waits in the other fields.
struct Params {
    out: LitellmParams,
    costs: Costs,
    aws: AwsParams,
    vertex: crate::vertex::Written,
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

impl Params {
    fn new() -> Self {
        Params {
            out: LitellmParams {
                model: String::new(),
                provider: ProviderKind::OpenAi,
                upstream_model: String::new(),
                api_base: None,
                api_key: None,
                api_version: None,
                organization: None,
                timeout: None,
                stream_timeout: None,
                stream_idle_timeout: None,
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
                vertex: None,
                watsonx: None,
            },
            costs: (None, None),
            aws: AwsParams::default(),
            vertex: crate::vertex::Written::default(),
            model: None,
            saw_model: false,
            saw_api_key: false,
            saw_api_base: false,
            custom_llm_provider: None,
            api_key: None,
            api_base: None,
            api_version: None,
            organization: None,
            headers: Vec::new(),
            extra_headers: Vec::new(),
            mock_response: None,
        }
    }
}

const DEPLOYMENT_SETTING: &str = "this LiteLLM deployment setting";
const AZURE_AD: &str = "Azure AD authentication is";

/// The keys of `litellm_params` llmgate knows. Any other key is passed to the provider as a
/// default request parameter ([`params_rest`]).
#[rustfmt::skip]
const PARAMS: &Table<Params> = &[
    ("model", Read(|w, r, v, p| {
        r.saw_model = true;
        r.model = w.non_empty_string(v, p);
    })),
    ("custom_llm_provider", Read(|w, r, v, p| r.custom_llm_provider = w.string(v, p))),
    ("api_key", Read(|w, r, v, p| {
        r.saw_api_key = !v.is_null();
        r.api_key = w.secret(v, p);
    })),
    ("api_base", Read(api_base)),
    ("base_url", Read(api_base)),
    ("api_version", Read(|w, r, v, p| r.api_version = w.string(v, p))),
    ("organization", Read(|w, r, v, p| r.organization = w.string(v, p))),
    ("timeout", Read(|w, r, v, p| r.out.timeout = w.seconds(v, p))),
    ("request_timeout", Read(|w, r, v, p| r.out.timeout = w.seconds(v, p))),
    ("stream_timeout", Read(|w, r, v, p| r.out.stream_timeout = w.seconds(v, p))),
    ("stream_idle_timeout", Read(|w, r, v, p| r.out.stream_idle_timeout = w.seconds(v, p))),
    ("max_retries", Read(|w, r, v, p| r.out.max_retries = w.u32(v, p))),
    ("num_retries", Read(|w, r, v, p| r.out.max_retries = w.u32(v, p))),
    ("rpm", Read(|w, r, v, p| r.out.rpm = w.u64(v, p))),
    ("tpm", Read(|w, r, v, p| r.out.tpm = w.u64(v, p))),
    ("rpd", Read(|w, r, v, p| r.out.rpd = w.u64(v, p))),
    ("drop_params", Read(|w, r, v, p| r.out.drop_params = w.bool(v, p))),
    ("extra_body", Read(extra_body)),
    ("weight", Read(|w, r, v, p| r.out.weight = w.non_negative(v, p))),
    ("mock_response", Read(|w, r, v, p| r.mock_response = mock_response(w, v, p))),
    ("headers", Read(|w, r, v, p| r.headers = headers(w, v, p))),
    ("extra_headers", Read(|w, r, v, p| r.extra_headers = headers(w, v, p))),
    ("tags", Read(|w, r, v, p| {
        r.out.tags = w.string_list(v, p);
        not_yet_active(w, v, p, "tag-based routing");
    })),
    ("region_name", Read(|w, r, v, p| {
        r.out.region_name = w.string(v, p);
        not_yet_active(w, v, p, "region-based routing");
    })),
    ("cooldown_time", Read(|w, r, v, p| r.out.cooldown_time = w.non_negative_seconds(v, p))),
    ("max_parallel_requests", Read(|w, r, v, p| {
        r.out.max_parallel_requests = w.u64(v, p);
        not_yet_active(w, v, p, "per-deployment parallel request limits");
    })),
    ("input_cost_per_token", Read(|w, r, v, p| r.costs.0 = w.non_negative(v, p))),
    ("output_cost_per_token", Read(|w, r, v, p| r.costs.1 = w.non_negative(v, p))),
    ("use_in_pass_through", NotYetActive(DEPLOYMENT_SETTING)),
    ("merge_reasoning_content_in_choices", NotYetActive(DEPLOYMENT_SETTING)),
    ("input_cost_per_second", NotYetActive(DEPLOYMENT_SETTING)),
    ("output_cost_per_second", NotYetActive(DEPLOYMENT_SETTING)),
    ("metadata", NotYetActive(DEPLOYMENT_SETTING)),
    ("budget_duration", NotYetActive(DEPLOYMENT_SETTING)),
    ("max_budget", Unenforced("deployment budgets are")),
    ("litellm_credential_name", Unenforced("credential_list credentials are")),
    ("azure_ad_token", Unenforced(AZURE_AD)),
    ("azure_ad_token_provider", Unenforced(AZURE_AD)),
    ("tenant_id", Unenforced(AZURE_AD)),
    ("client_id", Unenforced(AZURE_AD)),
    ("client_secret", Unenforced(AZURE_AD)),
    ("azure_username", Unenforced(AZURE_AD)),
    ("azure_password", Unenforced(AZURE_AD)),
    ("aws_access_key_id", Read(|w, r, v, p| r.aws.access_key_id = w.secret(v, p))),
    ("aws_secret_access_key", Read(|w, r, v, p| r.aws.secret_access_key = w.secret(v, p))),
    ("aws_session_token", Read(|w, r, v, p| r.aws.session_token = w.secret(v, p))),
    ("aws_region_name", Read(|w, r, v, p| r.aws.region = w.string(v, p).map(Arc::from))),
    ("vertex_project", Read(|w, r, v, p| {
        r.vertex.seen.get_or_insert("vertex_project");
        r.vertex.project = w.non_empty_string(v, p);
    })),
    ("vertex_ai_project", Read(|w, r, v, p| {
        r.vertex.seen.get_or_insert("vertex_ai_project");
        r.vertex.project = w.non_empty_string(v, p);
    })),
    ("vertex_location", Read(|w, r, v, p| {
        r.vertex.seen.get_or_insert("vertex_location");
        r.vertex.location = w.non_empty_string(v, p);
    })),
    ("vertex_ai_location", Read(|w, r, v, p| {
        r.vertex.seen.get_or_insert("vertex_ai_location");
        r.vertex.location = w.non_empty_string(v, p);
    })),
    ("vertex_credentials", Read(|w, r, v, p| {
        r.vertex.seen.get_or_insert("vertex_credentials");
        r.vertex.credentials = crate::vertex::credentials(w, v, p);
    })),
];

fn api_base(w: &mut Walk<'_>, r: &mut Params, value: &Node, path: &str) {
    r.saw_api_base = !value.is_null();
    r.api_base = w.non_empty_string(value, path);
}

/// LiteLLM merges `extra_body`'s fields into the request body.
fn extra_body(w: &mut Walk<'_>, r: &mut Params, value: &Node, path: &str) {
    if let serde_json::Value::Object(fields) = w.json(value, path) {
        r.out.default_params.extend(fields);
    } else if !value.is_null() {
        w.report.error(path, "expected a map of body fields");
    }
}

/// The keys that say where a deployment's requests go and with which credentials: a
/// near-miss of one (`api_bse`) is an error, never a parameter sent upstream, or the requests
/// (and the key) would go to the provider's default URL instead of the one meant.
const CONNECTION_KEYS: &[&str] = &[
    "model",
    "custom_llm_provider",
    "api_key",
    "api_base",
    "base_url",
    "api_version",
    "organization",
    "headers",
    "extra_headers",
    "region_name",
];

/// A key [`PARAMS`] does not list: other providers' credentials are noted, a near-miss of a
/// connection key is an error, anything else is sent to the provider as a default request
/// parameter (with a warning when it is near a key llmgate reads).
fn params_rest(w: &mut Walk<'_>, r: &mut Params, key: &str, value: &Node, path: &str) {
    if key.starts_with("aws_") || key.starts_with("vertex_") {
        not_yet_active(w, value, path, "this provider's credentials");
        return;
    }
    if let Some(near) = crate::problems::did_you_mean(key, CONNECTION_KEYS.iter().copied()) {
        w.report.error(
            path,
            format!("unknown key (did you mean `{near}`?): a misspelled connection key is not sent upstream, so this deployment would not reach the place it names"),
        );
        return;
    }
    let known = PARAMS.iter().map(|(k, _)| *k);
    if let Some(near) = crate::problems::did_you_mean(key, known) {
        w.report.warning(
            path,
            format!("not a key llmgate reads, so it is sent to the provider as a request parameter (did you mean `{near}`?)"),
        );
    }
    if !value.is_null() {
        let json = w.json(value, path);
        r.out.default_params.insert(key.to_owned(), json);
    }
}

pub(crate) fn litellm_params(
    w: &mut Walk<'_>,
    node: &Node,
    path: &str,
) -> Option<(LitellmParams, Costs)> {
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
    let mut r = Params::new();
    let errors_before = w.report.error_count();
    walk_table(w, &mut r, node, path, PARAMS, params_rest);
    if !r.saw_model {
        w.report
            .error(&key_path(path, "model"), "missing required key");
    }
    let model = r.model.take()?;
    let (provider, upstream) = provider_and_model(w, &model, &r, path)?;
    let has_mock = r.mock_response.is_some();
    // Defaults apply only to keys not written: an unresolvable value is an error, not a default.
    r.out.api_key = r.api_key.take().or_else(|| {
        (!r.saw_api_key)
            .then(|| provider.api_key_env().and_then(|var| w.env.lookup(var)))
            .flatten()
            .map(Secret::new)
    });
    if matches!(
        provider,
        ProviderKind::Bedrock | ProviderKind::Sagemaker | ProviderKind::SagemakerChat
    ) {
        aws(w, &mut r, provider, path, has_mock);
    }
    if provider == ProviderKind::Replicate && r.out.api_key.is_none() && !r.saw_api_key {
        // LiteLLM reads either name.
        r.out.api_key = w.env.lookup("REPLICATE_API_TOKEN").map(Secret::new);
    }
    if provider == ProviderKind::Watsonx {
        let (defaults, key) = (&mut r.out.default_params, &mut r.out.api_key);
        r.out.watsonx = Some(crate::watsonx::resolve(w, defaults, key, path, has_mock)?);
    }
    let written = std::mem::take(&mut r.vertex);
    if provider == ProviderKind::VertexAi {
        let has_key = r.out.api_key.is_some();
        r.out.vertex = Some(crate::vertex::resolve(w, written, has_key, path, has_mock)?);
    } else {
        crate::vertex::unused(w, &written, path);
    }
    resolve_api_base(w, &mut r, provider, path, has_mock);
    r.out.api_version = r.api_version.take().or_else(|| {
        (provider == ProviderKind::Azure)
            .then(|| w.env.lookup("AZURE_API_VERSION"))
            .flatten()
    });
    resolve_headers(w, &mut r, path);
    let Params {
        mut out,
        costs,
        mock_response,
        ..
    } = r;
    out.mock_response = mock_response;
    out.model = model;
    out.provider = provider;
    out.upstream_model = upstream;
    (w.report.error_count() == errors_before).then_some((out, costs))
}

/// The provider and the upstream model id from `model` (and `custom_llm_provider`); `None`,
/// with the error at `model`, when either is missing.
fn provider_and_model(
    w: &mut Walk<'_>,
    model: &str,
    r: &Params,
    path: &str,
) -> Option<(ProviderKind, String)> {
    let model_path = key_path(path, "model");
    let split = match r.custom_llm_provider {
        None if model.starts_with(NVIDIA_MODEL_PREFIX) => {
            w.report.warning(
                &model_path,
                format!("read as `nvidia_nim/{model}`: NVIDIA's API (LiteLLM's prefix is `nvidia_nim/`), with the model id as written"),
            );
            Ok((ProviderKind::NvidiaNim, model.to_owned()))
        }
        _ => split_provider(model, r.custom_llm_provider.as_deref()),
    };
    let (provider, upstream) = match split {
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
    Some((provider, upstream))
}

/// AWS credentials and region (Bedrock, SageMaker), else the standard `AWS_*` variables; the
/// runtime endpoint from the region when no `api_base` is written.
fn aws(w: &mut Walk<'_>, r: &mut Params, provider: ProviderKind, path: &str, has_mock: bool) {
    let mut aws = std::mem::take(&mut r.aws);
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
    aws.region = aws
        .region
        .or_else(|| env(&["AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"]).map(Arc::from));
    let bedrock = provider == ProviderKind::Bedrock;
    if r.api_base.is_none() && !r.saw_api_base {
        // The runtime endpoint is derived from the region.
        r.api_base = aws.region.as_ref().map(|region| {
            if bedrock {
                format!("https://bedrock-runtime.{region}.amazonaws.com")
            } else {
                format!("https://runtime.sagemaker.{region}.amazonaws.com")
            }
        });
    }
    if aws.region.is_none() && r.api_base.is_none() && !has_mock {
        w.report.error(
            &key_path(path, "aws_region_name"),
            format!("{provider} needs a region: set aws_region_name (or AWS_REGION), or api_base"),
        );
    }
    // Bedrock sends an `api_key` as a Bedrock API key (bearer) instead of signing.
    let no_keys = aws.access_key_id.is_none() || aws.secret_access_key.is_none();
    if no_keys && !has_mock && bedrock && r.out.api_key.is_none() {
        w.report.warning(
            &key_path(path, "aws_access_key_id"),
            "no AWS credentials (aws_access_key_id/aws_secret_access_key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and no api_key (a Bedrock API key): requests will be sent unsigned and refused",
        );
    } else if no_keys && !has_mock && !bedrock {
        w.report.warning(
            &key_path(path, "aws_access_key_id"),
            "no AWS credentials (aws_access_key_id/aws_secret_access_key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY): requests will be sent unsigned and refused",
        );
    }
    r.out.aws = Some(aws);
}

/// `api_base` as written, else the provider's base variable, else its default URL; checked to
/// be an http(s) URL, required where the provider has no default, and warned about when a
/// public provider is reached with no key.
fn resolve_api_base(
    w: &mut Walk<'_>,
    r: &mut Params,
    provider: ProviderKind,
    path: &str,
    has_mock: bool,
) {
    r.out.api_base = r.api_base.take().or_else(|| {
        (!r.saw_api_base)
            .then(|| {
                provider
                    .api_base_env()
                    .and_then(|var| w.env.lookup(var))
                    .or_else(|| provider.default_api_base().map(str::to_owned))
            })
            .flatten()
    });
    if let Some(base) = &r.out.api_base {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            w.report.error(
                &key_path(path, "api_base"),
                format!("\"{base}\" is not an http:// or https:// URL"),
            );
        }
    }
    match &r.out.api_base {
        None if r.saw_api_base => {}
        // AWS's missing region was reported above; Vertex's URL comes from its location.
        None if !has_mock
            && !matches!(
                provider,
                ProviderKind::Bedrock
                    | ProviderKind::Sagemaker
                    | ProviderKind::SagemakerChat
                    | ProviderKind::VertexAi
            ) =>
        {
            w.report.error(
                &key_path(path, "api_base"),
                format!("api_base is required for {provider}"),
            );
        }
        Some(base) if r.out.api_key.is_none() && !r.saw_api_key && !has_mock => {
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
}

/// NVIDIA's own model ids start with `nvidia/` (`nvidia/llama-3.1-nemotron-70b-instruct`), so a
/// config that writes one without LiteLLM's `nvidia_nim/` prefix means NVIDIA's API.
const NVIDIA_MODEL_PREFIX: &str = "nvidia/";

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
            .map_err(|e| unknown_provider(&e.0)),
    }
}

/// "unknown provider", with the nearest prefix llmgate serves and the way to reach any
/// OpenAI-compatible API.
fn unknown_provider(name: &str) -> String {
    let known = || ProviderKind::all().map(ProviderKind::as_str);
    let near = crate::problems::did_you_mean(name, known())
        // `nvidi/...`: the start of a provider's name.
        .or_else(|| known().find(|p| name.len() >= 4 && p.starts_with(name)))
        .map(|p| format!(" (did you mean \"{p}\"?)"))
        .unwrap_or_default();
    format!(
        "unknown provider \"{name}\"{near}; if it speaks OpenAI's API, write `model: openai/<model id>` with its `api_base` (see docs/providers.md)"
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_list_each_key_once() {
        crate::table::assert_each_key_once("litellm_params", PARAMS);
    }
}

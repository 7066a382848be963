//! The Responses API served natively: a deployment whose upstream serves `/responses` itself
//! gets the client's Responses call as it is ([`llmgate_core::NativeResponses`]), not the chat
//! translation, and its answer goes back untranslated, marked [`NativeAnswer`].
//!
//! # Which deployments
//!
//! [`serves_responses`] ([`DeploymentSpec::serves_responses`], in core so the router can
//! prefer them): OpenAI's API (`openai/` without `api_base` or on `api.openai.com`) and
//! `azure/` by default; any provider speaking OpenAI's API (or Ollama) whose
//! `model_info.supported_endpoints` lists `/v1/responses`; none whose list leaves it out;
//! never Anthropic, Gemini, Vertex AI, Bedrock or watsonx.
//!
//! # The upstream call
//!
//! `POST {api_base}/responses` (Ollama: `{api_base}/v1/responses`; Azure: `{api_base}/openai/v1/responses`
//! without an `api_version`, or with `v1`/`latest`/`preview`, else
//! `{api_base}/openai/responses?api-version={api_version}`); `GET` and `DELETE` on
//! `.../responses/{id}` and `GET .../responses/{id}/input_items` for a stored response;
//! `POST .../responses/compact` for a compaction (the body with the deployment's `model`). The
//! key as the OpenAI-compatible dialect sends it (Azure's `api-key`, else
//! `Authorization: Bearer`), the deployment's headers last. The body is the client's with
//! `model` set to the deployment's and the deployment's `temperature`, `top_p` and
//! `max_tokens` (as `max_output_tokens`) added where the client sent none.
//!
//! A complete answer passes through byte for byte (its `usage` read for metering); a stream is
//! relayed event by event ([`stream`]), its usage taken from the terminal
//! `response.completed` / `response.incomplete` / `response.failed` event.

use bytes::Bytes;
use http::header::HeaderName;
use http::{Method, Request, Response};
use http_body_util::Full;
use llmgate_core::{
    BoxBody, Deployment, DeploymentSpec, LlmRequest, NativeAnswer, NativeResponses, ProviderKind,
    ResponsesCall, Usage,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::dialect::{api_base, json_post, upstream_uri, KeyHeader};
use crate::error::Error;
use crate::service::Inner;
use crate::upstream::{self, Deadline, StreamSlots};

mod stream;

/// Whether `dep` serves OpenAI's Responses API itself
/// ([`DeploymentSpec::serves_responses`]; see the module docs for the table).
pub fn serves_responses(dep: &DeploymentSpec) -> bool {
    dep.serves_responses()
}

/// Serves `native`'s call on `dep`, which serves the Responses API itself.
pub(crate) async fn serve(
    inner: &Inner,
    native: &NativeResponses,
    llm: &LlmRequest,
    dep: Deployment,
) -> Result<Response<BoxBody>, Error> {
    let (req, stream) = build(&dep, native.call())?;
    let deadline = Deadline::pick(llm, &dep, stream, inner.client.default_timeout);
    tracing::debug!(deployment = %dep.id, provider = %dep.provider, stream, "calling upstream /responses");
    let call = upstream::call(&inner.client, req, &dep, &upstream::openai_error);
    let mut res = if stream {
        let res = Deadline::run(deadline, &dep, call).await?;
        crate::dialect::passthrough::check_content_type(res.headers(), &dep)?;
        let slots = StreamSlots::default();
        let body = stream::Relay::new(
            res.into_body(),
            &slots,
            inner.watch(&dep),
            inner.max_response,
            dep.clone(),
        );
        upstream::stream(BoxBody::new(body), slots, dep)
    } else {
        let bytes = Deadline::run(deadline, &dep, async {
            let (parts, body) = call.await?.into_parts();
            upstream::collect(&dep, &parts.headers, body, inner.max_response).await
        })
        .await?;
        let usage = read_usage(&dep, &bytes)?;
        upstream::answer(bytes, usage, dep)
    };
    res.extensions_mut().insert(NativeAnswer);
    Ok(res)
}

/// The upstream request for `call` on `dep`, and whether its answer is a stream.
fn build(
    dep: &DeploymentSpec,
    call: &ResponsesCall,
) -> Result<(Request<Full<Bytes>>, bool), Error> {
    let key = match dep.provider {
        ProviderKind::Azure => KeyHeader::Plain(HeaderName::from_static("api-key")),
        _ => KeyHeader::Bearer,
    };
    let (method, tail, query, body, stream) = match call {
        ResponsesCall::Create(fields) => {
            let body = body(dep, fields)?;
            let stream = fields.get("stream").and_then(Value::as_bool) == Some(true);
            (Method::POST, String::new(), None, body, stream)
        }
        ResponsesCall::Retrieve {
            id,
            input_items,
            query,
        } => {
            let tail = if *input_items {
                format!("/{id}/input_items")
            } else {
                format!("/{id}")
            };
            (Method::GET, tail, query.as_deref(), Bytes::new(), false)
        }
        ResponsesCall::Delete { id } => {
            (Method::DELETE, format!("/{id}"), None, Bytes::new(), false)
        }
        ResponsesCall::Compact(fields) => {
            // The deployment's model only: compaction takes no sampling parameters.
            let mut out = fields.clone();
            out.insert("model".to_owned(), Value::String(dep.model.to_string()));
            let body = serialise(dep, &out)?;
            (Method::POST, "/compact".to_owned(), None, body, false)
        }
    };
    let uri = upstream_uri(dep, url(dep, &tail, query)?)?;
    let mut req = json_post(dep, uri, body, key, &[])?;
    if method != Method::POST {
        req.headers_mut().remove(http::header::CONTENT_TYPE);
    }
    *req.method_mut() = method;
    Ok((req, stream))
}

/// The URL of `/responses{tail}` on `dep`, with `query` (the client's) added.
pub(crate) fn url(dep: &DeploymentSpec, tail: &str, query: Option<&str>) -> Result<String, Error> {
    let base = api_base(dep).ok_or_else(|| {
        Error::config(
            dep,
            format!("`api_base` is required for provider `{}`", dep.provider),
        )
    })?;
    let mut params: Vec<String> = Vec::new();
    let path = match dep.provider {
        ProviderKind::Azure if base.ends_with("/openai/v1") => format!("{base}/responses{tail}"),
        ProviderKind::Azure => match dep.api_version.as_deref() {
            None | Some("v1" | "latest") => format!("{base}/openai/v1/responses{tail}"),
            Some("preview") => {
                params.push("api-version=preview".to_owned());
                format!("{base}/openai/v1/responses{tail}")
            }
            Some(v) => {
                params.push(format!("api-version={v}"));
                format!("{base}/openai/responses{tail}")
            }
        },
        ProviderKind::Ollama | ProviderKind::OllamaChat if !base.ends_with("/v1") => {
            format!("{base}/v1/responses{tail}")
        }
        _ => format!("{base}/responses{tail}"),
    };
    params.extend(query.filter(|q| !q.is_empty()).map(str::to_owned));
    Ok(if params.is_empty() {
        path
    } else {
        format!("{path}?{}", params.join("&"))
    })
}

/// The body sent upstream: the client's, `model` the deployment's, and the deployment's
/// defaults the Responses API has under the same meaning where the client sent none.
fn body(dep: &DeploymentSpec, fields: &Map<String, Value>) -> Result<Bytes, Error> {
    let mut out = fields.clone();
    out.insert("model".to_owned(), Value::String(dep.model.to_string()));
    let defaults = &dep.default_params;
    for (ours, theirs) in [
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("max_output_tokens", "max_tokens"),
        ("max_output_tokens", "max_output_tokens"),
    ] {
        if let Some(v) = defaults.get(theirs).filter(|_| !out.contains_key(ours)) {
            out.insert(ours.to_owned(), v.clone());
        }
    }
    serialise(dep, &out)
}

fn serialise(dep: &DeploymentSpec, body: &Map<String, Value>) -> Result<Bytes, Error> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|e| Error::config(dep, format!("could not serialise the request body: {e}")))
}

/// A complete answer's usage (checking it is JSON); `None` for answers without one (a
/// deletion, an item list).
fn read_usage(dep: &DeploymentSpec, bytes: &[u8]) -> Result<Option<Usage>, Error> {
    #[derive(Deserialize)]
    struct Partial<'a> {
        #[serde(borrow, default)]
        usage: Option<&'a RawValue>,
    }
    let partial: Partial<'_> =
        serde_json::from_slice(bytes).map_err(|e| Error::invalid(dep, e.to_string()))?;
    Ok(partial
        .usage
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
        .and_then(|v| usage(&v)))
}

/// The Responses API's `usage` as the gateway's: `input_tokens` (with
/// `input_tokens_details.cached_tokens`), `output_tokens` (with
/// `output_tokens_details.reasoning_tokens`), `total_tokens`.
pub(crate) fn usage(v: &Value) -> Option<Usage> {
    let n = |key: &str| v.get(key).and_then(Value::as_u64);
    let input = n("input_tokens")?;
    let output = n("output_tokens").unwrap_or(0);
    let mut u = Usage {
        prompt_tokens: input,
        completion_tokens: output,
        total_tokens: n("total_tokens").unwrap_or(input + output),
        ..Usage::default()
    };
    let detail = |outer: &str, inner: &str| {
        v.get(outer)
            .and_then(|d| d.get(inner))
            .and_then(Value::as_u64)
    };
    if let Some(cached) = detail("input_tokens_details", "cached_tokens") {
        u.prompt_tokens_details = Some(llmgate_core::wire::PromptTokensDetails {
            cached_tokens: Some(cached),
            ..Default::default()
        });
    }
    if let Some(reasoning) = detail("output_tokens_details", "reasoning_tokens") {
        u.completion_tokens_details = Some(llmgate_core::wire::CompletionTokensDetails {
            reasoning_tokens: Some(reasoning),
            ..Default::default()
        });
    }
    Some(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(provider: ProviderKind, base: Option<&str>) -> DeploymentSpec {
        let mut d = DeploymentSpec::new("d", "g", provider, "m");
        d.api_base = base.map(Into::into);
        d
    }

    #[test]
    fn which_deployments_are_native() {
        assert!(serves_responses(&dep(ProviderKind::OpenAi, None)));
        assert!(serves_responses(&dep(
            ProviderKind::OpenAi,
            Some("https://api.openai.com/v1")
        )));
        assert!(!serves_responses(&dep(
            ProviderKind::OpenAi,
            Some("http://127.0.0.1:9/v1")
        )));
        assert!(serves_responses(&dep(
            ProviderKind::Azure,
            Some("https://x.openai.azure.com")
        )));
        assert!(!serves_responses(&dep(
            ProviderKind::HostedVllm,
            Some("http://v/v1")
        )));
        let mut declared = dep(ProviderKind::HostedVllm, Some("http://v/v1"));
        declared.model_info.supported_endpoints = Some(vec!["/v1/responses".into()]);
        assert!(serves_responses(&declared));
        let mut opted_out = dep(ProviderKind::OpenAi, None);
        opted_out.model_info.supported_endpoints = Some(vec!["/v1/chat/completions".into()]);
        assert!(!serves_responses(&opted_out));
        let mut anthropic = dep(ProviderKind::Anthropic, None);
        anthropic.model_info.supported_endpoints = Some(vec!["/v1/responses".into()]);
        assert!(!serves_responses(&anthropic));
    }

    #[test]
    fn urls() {
        let u = |d: &DeploymentSpec, tail: &str, q: Option<&str>| url(d, tail, q).unwrap();
        assert_eq!(
            u(&dep(ProviderKind::OpenAi, None), "", None),
            "https://api.openai.com/v1/responses"
        );
        let ollama = dep(ProviderKind::OllamaChat, Some("http://o:11434/"));
        assert_eq!(
            u(&ollama, "/r1/input_items", Some("limit=2")),
            "http://o:11434/v1/responses/r1/input_items?limit=2"
        );
        let mut azure = dep(ProviderKind::Azure, Some("https://x.openai.azure.com"));
        assert_eq!(
            u(&azure, "", None),
            "https://x.openai.azure.com/openai/v1/responses"
        );
        azure.api_version = Some("2025-04-01-preview".into());
        assert_eq!(
            u(&azure, "/r1", None),
            "https://x.openai.azure.com/openai/responses/r1?api-version=2025-04-01-preview"
        );
        assert_eq!(
            u(&azure, "/r1/input_items", Some("order=asc")),
            "https://x.openai.azure.com/openai/responses/r1/input_items?api-version=2025-04-01-preview&order=asc"
        );
    }

    #[test]
    fn usage_and_body() {
        let u = usage(&json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
            "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 17}))
        .unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (10, 7, 17)
        );
        assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, Some(4));
        assert_eq!(
            u.completion_tokens_details.unwrap().reasoning_tokens,
            Some(3)
        );
        let mut d = dep(ProviderKind::OpenAi, None);
        d.default_params.insert("max_tokens".into(), json!(50));
        d.default_params.insert("temperature".into(), json!(0.1));
        let fields = json!({"model": "group", "input": "hi", "temperature": 0.9});
        let Value::Object(fields) = fields else {
            unreachable!()
        };
        let sent: Value = serde_json::from_slice(&body(&d, &fields).unwrap()).unwrap();
        assert_eq!(
            sent,
            json!({"model": "m", "input": "hi", "temperature": 0.9, "max_output_tokens": 50})
        );
    }
}

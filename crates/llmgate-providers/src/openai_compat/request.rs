//! The upstream request of the OpenAI-compatible dialect: URL, auth and body.
//!
//! The body is written straight from the client's typed request (no copy of the messages):
//! `model` replaced by the deployment's upstream model id, the deployment's `default_params`
//! added for keys the client did not send, and for streams `stream_options.include_usage: true`
//! so that usage can be metered (the usage-only chunk is removed again from what the client
//! sees when it did not ask for it; see [`crate::dialect::passthrough`]).

use bytes::Bytes;
use http::header::HeaderName;
use http::{Request, Uri};
use http_body_util::Full;
use llmgate_core::wire::chat::{Message, MessageContent, StreamOptions};
use llmgate_core::wire::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest};
use llmgate_core::{DeploymentSpec, Endpoint, LlmBody, LlmRequest};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

use super::Flavor;
use crate::dialect::{api_base, json_post, upstream_uri, KeyHeader};
use crate::error::Error;
use crate::AZURE_DEFAULT_API_VERSION;

/// Azure's auth header.
const API_KEY: HeaderName = HeaderName::from_static("api-key");

/// The upstream request for `llm` on `dep`.
pub(crate) fn build(
    flavor: Flavor,
    dep: &DeploymentSpec,
    llm: &LlmRequest,
) -> Result<Request<Full<Bytes>>, Error> {
    let uri = url(flavor, dep, llm.endpoint())?;
    let body = body(flavor, dep, llm)?;

    let key = match flavor {
        Flavor::Azure => KeyHeader::Plain(API_KEY),
        _ => KeyHeader::Bearer,
    };
    json_post(dep, uri, body, key, &[])
}

/// The endpoint's URL for the deployment.
pub(crate) fn url(flavor: Flavor, dep: &DeploymentSpec, endpoint: Endpoint) -> Result<Uri, Error> {
    let base = api_base(dep).ok_or_else(|| {
        Error::config(
            dep,
            format!("`api_base` is required for provider `{}`", dep.provider),
        )
    })?;
    let path = endpoint.path();
    let mut url = String::with_capacity(base.len() + path.len() + 64);
    url.push_str(base);
    match flavor {
        Flavor::Standard | Flavor::Mistral => url.push_str(path),
        Flavor::Azure => {
            url.push_str("/openai/deployments/");
            url.push_str(&dep.model);
            url.push_str(path);
            url.push_str("?api-version=");
            url.push_str(
                dep.api_version
                    .as_deref()
                    .unwrap_or(AZURE_DEFAULT_API_VERSION),
            );
        }
    }
    upstream_uri(dep, url)
}

/// What to do with `stream_options`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamOpts {
    /// Send the client's, if any.
    Keep,
    /// Send the client's with `include_usage: true` (a stream we meter).
    Inject,
    /// Send none (Mistral rejects the field and reports usage unasked).
    Drop,
}

/// The JSON body sent upstream.
pub(crate) fn body(flavor: Flavor, dep: &DeploymentSpec, llm: &LlmRequest) -> Result<Bytes, Error> {
    let stream_opts = match (flavor, llm.body()) {
        (Flavor::Mistral, _) => StreamOpts::Drop,
        (_, LlmBody::Chat(_) | LlmBody::Completion(_)) if llm.is_stream() => StreamOpts::Inject,
        _ => StreamOpts::Keep,
    };
    let out = Outgoing {
        body: llm.body(),
        model: &dep.model,
        defaults: &dep.default_params,
        stream_opts,
    };
    let mut buf = Vec::with_capacity(1024);
    serde_json::to_writer(&mut buf, &out)
        .map_err(|e| Error::config(dep, format!("could not serialise the request body: {e}")))?;
    Ok(Bytes::from(buf))
}

/// The client's typed body, seen through the deployment: serialised without copying it.
struct Outgoing<'a> {
    body: &'a LlmBody,
    model: &'a str,
    defaults: &'a Map<String, Value>,
    stream_opts: StreamOpts,
}

/// Top-level keys of a chat request that are typed fields (never taken from `extra`).
const CHAT_KEYS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "response_format",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "seed",
    "user",
];
const COMPLETION_KEYS: &[&str] = &["model", "prompt", "stream", "stream_options", "max_tokens"];
const EMBEDDING_KEYS: &[&str] = &["model", "input", "encoding_format", "dimensions"];

impl Serialize for Outgoing<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.defaults;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("model", self.model)?;
        // Destructured without `..`: a field added to a wire type in core fails to compile
        // here instead of being silently dropped from what goes upstream.
        match self.body {
            LlmBody::Chat(r) => {
                let ChatCompletionRequest {
                    model: _,
                    messages,
                    stream,
                    stream_options,
                    tools,
                    tool_choice,
                    response_format,
                    max_tokens,
                    max_completion_tokens,
                    temperature,
                    top_p,
                    n,
                    stop,
                    seed,
                    user,
                    extra,
                } = r;
                // Anthropic-only fields (from Anthropic-format clients) are not sent to
                // OpenAI-compatible providers, which reject them; the copy is made only when
                // one is present.
                if messages.iter().any(has_anthropic_only) {
                    map.serialize_entry("messages", &strip_messages(messages))?;
                } else {
                    map.serialize_entry("messages", messages)?;
                }
                self.stream(&mut map, *stream, stream_options.as_ref())?;
                match tools {
                    Some(t) if t.iter().any(|t| t.extra.contains_key("cache_control")) => {
                        let t: Vec<_> = t
                            .iter()
                            .cloned()
                            .map(|mut t| {
                                t.extra.remove("cache_control");
                                t
                            })
                            .collect();
                        map.serialize_entry("tools", &t)?;
                    }
                    _ => field(&mut map, d, "tools", tools.as_ref())?,
                }
                field(&mut map, d, "tool_choice", tool_choice.as_ref())?;
                field(&mut map, d, "response_format", response_format.as_ref())?;
                field(&mut map, d, "max_tokens", max_tokens.as_ref())?;
                field(
                    &mut map,
                    d,
                    "max_completion_tokens",
                    max_completion_tokens.as_ref(),
                )?;
                field(&mut map, d, "temperature", temperature.as_ref())?;
                field(&mut map, d, "top_p", top_p.as_ref())?;
                field(&mut map, d, "n", n.as_ref())?;
                field(&mut map, d, "stop", stop.as_ref())?;
                field(&mut map, d, "seed", seed.as_ref())?;
                field(&mut map, d, "user", user.as_ref())?;
                rest(&mut map, d, extra, CHAT_KEYS)?;
            }
            LlmBody::Completion(r) => {
                let CompletionRequest {
                    model: _,
                    prompt,
                    stream,
                    stream_options,
                    max_tokens,
                    extra,
                } = r;
                map.serialize_entry("prompt", prompt)?;
                self.stream(&mut map, *stream, stream_options.as_ref())?;
                field(&mut map, d, "max_tokens", max_tokens.as_ref())?;
                rest(&mut map, d, extra, COMPLETION_KEYS)?;
            }
            LlmBody::Embedding(r) => {
                let EmbeddingRequest {
                    model: _,
                    input,
                    encoding_format,
                    dimensions,
                    extra,
                } = r;
                map.serialize_entry("input", input)?;
                field(&mut map, d, "encoding_format", encoding_format.as_ref())?;
                field(&mut map, d, "dimensions", dimensions.as_ref())?;
                rest(&mut map, d, extra, EMBEDDING_KEYS)?;
            }
        }
        map.end()
    }
}

impl Outgoing<'_> {
    fn stream<M: SerializeMap>(
        &self,
        map: &mut M,
        stream: Option<bool>,
        opts: Option<&StreamOptions>,
    ) -> Result<(), M::Error> {
        if let Some(stream) = stream {
            map.serialize_entry("stream", &stream)?;
        }
        match (self.stream_opts, opts) {
            (StreamOpts::Keep, Some(opts)) => map.serialize_entry("stream_options", opts),
            (StreamOpts::Keep | StreamOpts::Drop, _) => Ok(()),
            (StreamOpts::Inject, opts) => map.serialize_entry(
                "stream_options",
                &InjectedOptions {
                    include_usage: true,
                    extra: opts.map(|o| &o.extra),
                },
            ),
        }
    }
}

/// Message fields only Anthropic understands.
const ANTHROPIC_ONLY: [&str; 2] = ["cache_control", "thinking_blocks"];

fn has_anthropic_only(m: &Message) -> bool {
    ANTHROPIC_ONLY.iter().any(|k| m.extra.contains_key(*k))
        || matches!(&m.content, Some(MessageContent::Parts(parts))
            if parts.iter().any(|p| p.extra.contains_key("cache_control")))
}

fn strip_messages(messages: &[Message]) -> Vec<Message> {
    messages
        .iter()
        .cloned()
        .map(|mut m| {
            for k in ANTHROPIC_ONLY {
                m.extra.remove(k);
            }
            if let Some(MessageContent::Parts(parts)) = &mut m.content {
                for p in parts {
                    p.extra.remove("cache_control");
                }
            }
            m
        })
        .collect()
}

#[derive(Serialize)]
struct InjectedOptions<'a> {
    include_usage: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    extra: Option<&'a Map<String, Value>>,
}

/// The client's value, else the deployment's default for that key.
fn field<M: SerializeMap, T: Serialize>(
    map: &mut M,
    defaults: &Map<String, Value>,
    key: &'static str,
    value: Option<&T>,
) -> Result<(), M::Error> {
    match value {
        Some(v) => map.serialize_entry(key, v),
        None => match defaults.get(key) {
            Some(v) => map.serialize_entry(key, v),
            None => Ok(()),
        },
    }
}

/// The client's other fields, then the defaults for keys nobody sent.
fn rest<M: SerializeMap>(
    map: &mut M,
    defaults: &Map<String, Value>,
    extra: &Map<String, Value>,
    typed: &[&str],
) -> Result<(), M::Error> {
    for (k, v) in extra {
        if !typed.contains(&k.as_str()) {
            map.serialize_entry(k, v)?;
        }
    }
    for (k, v) in defaults {
        if !typed.contains(&k.as_str()) && !extra.contains_key(k) {
            map.serialize_entry(k, v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::ProviderKind;
    use serde_json::json;

    fn dep(provider: ProviderKind) -> DeploymentSpec {
        let mut d = DeploymentSpec::new("d-0", "group", provider, "upstream-model");
        d.api_base = Some("https://example.test/v1/".into());
        d
    }

    fn req(endpoint: Endpoint, v: Value) -> LlmRequest {
        LlmRequest::parse(endpoint, v.to_string().as_bytes()).unwrap()
    }

    fn sent(flavor: Flavor, d: &DeploymentSpec, llm: &LlmRequest) -> Value {
        serde_json::from_slice(&body(flavor, d, llm).unwrap()).unwrap()
    }

    #[test]
    fn urls_per_flavor() {
        let d = dep(ProviderKind::OpenAi);
        assert_eq!(
            url(Flavor::Standard, &d, Endpoint::ChatCompletions).unwrap(),
            "https://example.test/v1/chat/completions"
        );
        let mut d = dep(ProviderKind::Azure);
        d.api_base = Some("https://res.openai.azure.com/".into());
        assert_eq!(
            url(Flavor::Azure, &d, Endpoint::ChatCompletions).unwrap(),
            "https://res.openai.azure.com/openai/deployments/upstream-model/chat/completions\
             ?api-version=2024-10-21"
        );
        d.api_version = Some("2025-01-01-preview".into());
        assert!(url(Flavor::Azure, &d, Endpoint::ChatCompletions)
            .unwrap()
            .to_string()
            .ends_with("?api-version=2025-01-01-preview"));
        // The provider's default base.
        let mut d = dep(ProviderKind::Groq);
        d.api_base = None;
        assert_eq!(
            url(Flavor::Standard, &d, Endpoint::ChatCompletions).unwrap(),
            "https://api.groq.com/openai/v1/chat/completions"
        );
    }

    #[test]
    fn bad_bases_are_config_errors() {
        let mut d = dep(ProviderKind::HostedVllm);
        d.api_base = None;
        let e = url(Flavor::Standard, &d, Endpoint::ChatCompletions).unwrap_err();
        assert!(e.to_string().contains("`api_base` is required"), "{e}");
        d.api_base = Some("/v1".into());
        let e = url(Flavor::Standard, &d, Endpoint::ChatCompletions).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
        d.api_base = Some("localhost:8000".into());
        let e = url(Flavor::Standard, &d, Endpoint::ChatCompletions).unwrap_err();
        assert!(e.to_string().contains("valid URL"), "{e}");
        d.api_base = Some("http://exa mple/".into());
        assert!(url(Flavor::Standard, &d, Endpoint::ChatCompletions).is_err());
    }

    #[test]
    fn body_replaces_model_merges_defaults_and_keeps_everything_else() {
        let mut d = dep(ProviderKind::OpenAi);
        d.default_params.insert("temperature".into(), json!(0.2));
        d.default_params.insert("max_tokens".into(), json!(64));
        d.default_params
            .insert("presence_penalty".into(), json!(0.5));
        d.default_params
            .insert("logit_bias".into(), json!({"9": 1}));
        d.default_params.insert("stream".into(), json!(true));
        d.default_params.insert("model".into(), json!("nope"));
        let llm = req(
            Endpoint::ChatCompletions,
            json!({"model": "group", "messages": [{"role": "user", "content": "hi"}],
                   "max_tokens": 10, "logit_bias": {"1": 2}, "metadata": {"a": 1},
                   "mock_testing_fallbacks": false, "tools": [{"type": "function",
                   "function": {"name": "f"}}]}),
        );
        let v = sent(Flavor::Standard, &d, &llm);
        assert_eq!(
            v,
            json!({"model": "upstream-model", "messages": [{"role": "user", "content": "hi"}],
                   "max_tokens": 10, "temperature": 0.2, "presence_penalty": 0.5,
                   "logit_bias": {"1": 2}, "tools": [{"type": "function",
                   "function": {"name": "f"}}]})
        );
    }

    #[test]
    fn streams_ask_for_usage_except_on_mistral() {
        let d = dep(ProviderKind::OpenAi);
        let llm = req(
            Endpoint::ChatCompletions,
            json!({"model": "g", "messages": [], "stream": true}),
        );
        let v = sent(Flavor::Standard, &d, &llm);
        assert_eq!(v["stream_options"], json!({"include_usage": true}));
        let llm = req(
            Endpoint::Completions,
            json!({"model": "g", "prompt": "x", "stream": true,
                   "stream_options": {"include_usage": false, "other": 1}}),
        );
        let v = sent(Flavor::Standard, &d, &llm);
        assert_eq!(
            v["stream_options"],
            json!({"include_usage": true, "other": 1})
        );
        assert_eq!(v["prompt"], "x");
        let v = sent(Flavor::Mistral, &d, &llm);
        assert!(v.get("stream_options").is_none(), "{v}");
        // Not a stream: the client's options as sent.
        let llm = req(
            Endpoint::ChatCompletions,
            json!({"model": "g", "messages": [], "stream_options": {"include_usage": false}}),
        );
        let v = sent(Flavor::Standard, &d, &llm);
        assert_eq!(v["stream_options"], json!({"include_usage": false}));
    }

    #[test]
    fn embeddings_body() {
        let mut d = dep(ProviderKind::OpenAi);
        d.default_params.insert("dimensions".into(), json!(256));
        let llm = req(
            Endpoint::Embeddings,
            json!({"model": "g", "input": ["a", "b"], "encoding_format": "float"}),
        );
        let v = sent(Flavor::Standard, &d, &llm);
        assert_eq!(
            v,
            json!({"model": "upstream-model", "input": ["a", "b"],
                   "encoding_format": "float", "dimensions": 256})
        );
    }
}

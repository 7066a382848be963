//! The upstream request: URL, headers and the translated body.

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;
use llmgate_core::wire::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest};
use llmgate_core::{DeploymentSpec, Endpoint, LlmBody};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

use super::messages::{self, OutMessage};
use super::params::{self, Resolved};
use crate::dialect::{api_base, upstream_uri, Ctx, KeyHeader};
use crate::error::Error;

/// The upstream request for `ctx.llm`.
pub(super) fn build(ctx: &Ctx<'_>) -> Result<Request<Full<Bytes>>, Error> {
    let dep = ctx.dep;
    let (path, body) = match ctx.llm.body() {
        LlmBody::Chat(r) => ("/api/chat", chat(ctx, r)?),
        LlmBody::Completion(r) => ("/api/generate", generate(ctx, r)?),
        LlmBody::Embedding(r) => ("/api/embed", embed(ctx, r)?),
    };
    crate::dialect::json_post(dep, url(dep, path)?, body, KeyHeader::Bearer, &[])
}

/// `{api_base}{path}`, ignoring a trailing `/` or `/v1` on the base.
pub(super) fn url(dep: &DeploymentSpec, path: &str) -> Result<Uri, Error> {
    let base = api_base(dep).unwrap_or("http://localhost:11434");
    let base = base.strip_suffix("/v1").unwrap_or(base);
    upstream_uri(dep, format!("{base}{path}"))
}

fn to_bytes(ctx: &Ctx<'_>, body: &impl Serialize) -> Result<Bytes, Error> {
    let mut buf = Vec::with_capacity(1024);
    serde_json::to_writer(&mut buf, body)
        .map_err(|e| ctx.config(format!("could not serialise the request body: {e}")))?;
    Ok(Bytes::from(buf))
}

/// A present typed field as a parameter.
fn typed<T: Serialize>(key: &'static str, v: Option<&T>) -> Option<(&'static str, Value)> {
    v.and_then(|v| serde_json::to_value(v).ok())
        .map(|v| (key, v))
}

/// `/api/chat`'s body.
fn chat(ctx: &Ctx<'_>, r: &ChatCompletionRequest) -> Result<Bytes, Error> {
    // Destructured without `..`: a field added to the wire type fails to compile here
    // instead of being silently dropped.
    let ChatCompletionRequest {
        model: _,
        messages,
        stream,
        stream_options: _,
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
    let fields = [
        typed("tools", tools.as_ref()),
        typed("tool_choice", tool_choice.as_ref()),
        typed("response_format", response_format.as_ref()),
        typed("max_tokens", max_tokens.as_ref()),
        typed("max_completion_tokens", max_completion_tokens.as_ref()),
        typed("temperature", temperature.as_ref()),
        typed("top_p", top_p.as_ref()),
        typed("n", n.as_ref()),
        typed("stop", stop.as_ref()),
        typed("seed", seed.as_ref()),
        typed("user", user.as_ref()),
    ];
    let client = fields
        .into_iter()
        .flatten()
        .chain(extra.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let params = params::map(ctx, Endpoint::ChatCompletions, client)?;
    let body = Body {
        model: &ctx.dep.model,
        payload: Payload::Chat(messages::translate(ctx, messages)?),
        stream: Some(*stream == Some(true)),
        params,
    };
    to_bytes(ctx, &body)
}

/// `/api/generate`'s body, for one string prompt.
fn generate(ctx: &Ctx<'_>, r: &CompletionRequest) -> Result<Bytes, Error> {
    let CompletionRequest {
        model: _,
        prompt,
        stream: _,
        stream_options: _,
        max_tokens,
        extra,
    } = r;
    // A streamed completion is refused before this (service::serve).
    let prompt = match prompt {
        Value::String(s) => s.as_str(),
        Value::Array(items) => match items.as_slice() {
            [Value::String(s)] => s.as_str(),
            _ => {
                return Err(
                    ctx.unsupported_endpoint("/v1/completions with several prompts or token ids")
                )
            }
        },
        _ => {
            return Err(
                ctx.unsupported_endpoint("/v1/completions with a prompt that is not a string")
            )
        }
    };
    let client = typed("max_tokens", max_tokens.as_ref())
        .into_iter()
        .chain(extra.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let params = params::map(ctx, Endpoint::Completions, client)?;
    let body = Body {
        model: &ctx.dep.model,
        payload: Payload::Prompt(prompt),
        stream: Some(false),
        params,
    };
    to_bytes(ctx, &body)
}

/// `/api/embed`'s body: a string or a list of strings.
fn embed(ctx: &Ctx<'_>, r: &EmbeddingRequest) -> Result<Bytes, Error> {
    let EmbeddingRequest {
        model: _,
        input,
        encoding_format: _,
        dimensions,
        extra,
    } = r;
    let strings = match input {
        Value::String(_) => true,
        Value::Array(items) => items.iter().all(Value::is_string),
        _ => false,
    };
    if !strings {
        return Err(ctx.unsupported_endpoint("/v1/embeddings with token ids (Ollama embeds text)"));
    }
    let client = typed("dimensions", dimensions.as_ref())
        .into_iter()
        .chain(extra.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let params = params::map(ctx, Endpoint::Embeddings, client)?;
    let body = Body {
        model: &ctx.dep.model,
        payload: Payload::Input(input),
        stream: None,
        params,
    };
    to_bytes(ctx, &body)
}

enum Payload<'a> {
    Chat(Vec<OutMessage<'a>>),
    Prompt(&'a str),
    Input(&'a Value),
}

/// The body Ollama receives: the payload, `stream`, then what the parameters mapped to.
struct Body<'a> {
    model: &'a str,
    payload: Payload<'a>,
    stream: Option<bool>,
    params: Resolved,
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("model", self.model)?;
        match &self.payload {
            Payload::Chat(messages) => map.serialize_entry("messages", messages)?,
            Payload::Prompt(prompt) => map.serialize_entry("prompt", prompt)?,
            Payload::Input(input) => map.serialize_entry("input", input)?,
        }
        if let Some(stream) = self.stream {
            map.serialize_entry("stream", &stream)?;
        }
        let p = &self.params;
        if let Some(tools) = &p.tools {
            map.serialize_entry("tools", tools)?;
        }
        if let Some(format) = &p.format {
            map.serialize_entry("format", format)?;
        }
        if !p.options.is_empty() {
            map.serialize_entry("options", &p.options)?;
        }
        for (k, v) in &p.top {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{LlmRequest, ProviderKind};
    use serde_json::json;

    fn dep() -> DeploymentSpec {
        let mut d = DeploymentSpec::new("o-0", "g", ProviderKind::Ollama, "llama3.2");
        d.api_base = Some("http://localhost:11434".into());
        d
    }

    fn body(endpoint: Endpoint, v: Value, d: &DeploymentSpec) -> Result<Value, Error> {
        let llm = LlmRequest::parse(endpoint, v.to_string().as_bytes()).unwrap();
        let req = build(&Ctx::new(&llm, d))?;
        let bytes = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(
            req.into_body(),
        ))
        .unwrap()
        .unwrap()
        .to_bytes();
        Ok(serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn urls() {
        let mut d = dep();
        assert_eq!(
            url(&d, "/api/chat").unwrap(),
            "http://localhost:11434/api/chat"
        );
        d.api_base = Some("http://ollama:11434/v1/".into());
        assert_eq!(
            url(&d, "/api/embed").unwrap(),
            "http://ollama:11434/api/embed"
        );
        d.api_base = None;
        assert_eq!(
            url(&d, "/api/generate").unwrap(),
            "http://localhost:11434/api/generate"
        );
        d.api_base = Some("ollama:11434".into());
        assert!(url(&d, "/api/chat").is_err());
    }

    #[test]
    fn chat_body_is_translated() {
        let mut d = dep();
        d.default_params.insert("num_ctx".into(), json!(8192));
        d.default_params.insert("temperature".into(), json!(0.1));
        let v = body(
            Endpoint::ChatCompletions,
            json!({"model": "g", "messages": [{"role": "user", "content": "hi"}],
                   "temperature": 0.7, "max_tokens": 5, "stop": ["a", "b"],
                   "response_format": {"type": "json_object"}, "keep_alive": "1m",
                   "stream_options": {"include_usage": true}}),
            &d,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}],
                   "stream": false, "format": "json", "keep_alive": "1m",
                   "options": {"temperature": 0.7, "num_predict": 5, "stop": ["a", "b"],
                               "num_ctx": 8192}})
        );
    }

    #[test]
    fn completions_and_embeddings() {
        let d = dep();
        let v = body(
            Endpoint::Completions,
            json!({"model": "g", "prompt": ["Once upon"], "max_tokens": 3, "raw": true}),
            &d,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"model": "llama3.2", "prompt": "Once upon", "stream": false,
                   "options": {"num_predict": 3}, "raw": true})
        );
        for bad in [
            json!({"model": "g", "prompt": ["a", "b"]}),
            json!({"model": "g", "prompt": [1, 2]}),
        ] {
            let e = body(Endpoint::Completions, bad, &d).unwrap_err();
            assert!(matches!(e, Error::UnsupportedEndpoint { .. }), "{e}");
        }
        let v = body(
            Endpoint::Embeddings,
            json!({"model": "g", "input": ["a", "b"], "dimensions": 8,
                   "encoding_format": "base64"}),
            &d,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"model": "llama3.2", "input": ["a", "b"], "dimensions": 8})
        );
        let e = body(
            Endpoint::Embeddings,
            json!({"model": "g", "input": [1, 2]}),
            &d,
        )
        .unwrap_err();
        assert!(matches!(e, Error::UnsupportedEndpoint { .. }), "{e}");
    }
}

//! Replicate's predictions API (`replicate/`), for its language models, as LiteLLM calls it.
//!
//! | model | creates the prediction with |
//! |---|---|
//! | `replicate/<owner>/<name>` | `POST {api_base}/models/{owner}/{name}/predictions` |
//! | `replicate/<owner>/<name>:<version>` | `POST {api_base}/predictions` with `"version"` |
//! | `replicate/deployments/<owner>/<name>` | `POST {api_base}/deployments/{owner}/{name}/predictions` |
//!
//! `api_base` defaults to `https://api.replicate.com/v1`; the key (`api_key`, else
//! `REPLICATE_API_KEY` or `REPLICATE_API_TOKEN`) goes in `Authorization: Bearer`.
//!
//! - **Input**: `{"input": {"prompt", ...}}`, the prompt built from the messages by
//!   [`crate::prompt`] (a deployment with `supports_system_prompt: true` sends the first
//!   system message as `system_prompt` instead). `max_tokens` (or `max_completion_tokens`) is
//!   `max_new_tokens`, `stop` is `stop_sequences` (comma-separated), `temperature`, `top_p`
//!   and `seed` keep their names, the client's other fields and the deployment's defaults go
//!   into `input` as they are; OpenAI's parameters a text model has no use for are refused.
//! - **Answer**: the creation asks `Prefer: wait`, so it usually comes back finished. While
//!   the prediction is `starting` or `processing`, its `urls.get` (which must be on the
//!   `api_base`'s origin, as the key is sent there) is polled, after 250 ms and then twice
//!   as long each time, at most 2 s, within the attempt's `timeout`. `succeeded`: `output`
//!   (a list of strings, joined, or a string) is the assistant message; `failed` or
//!   `canceled`: a 502 with the prediction's `error`.
//! - **Stream**: the prediction is created with `"stream": true` (no wait), and its
//!   `urls.stream` is read as server-sent events ([`stream`]): `output` events are text,
//!   `done` ends the stream, `error` fails it. The key is not sent to the stream URL (it
//!   needs none).
//! - **Usage**: the prediction's `metrics.input_token_count` and `output_token_count` when it
//!   reports them; else (and always for streams) estimated at one token per 4 bytes of the
//!   prompt and of the output ([`llmgate_core::tokens::estimate`]).
//! - **Errors**: Replicate's `{"title", "detail", "status"}` bodies, read by the common
//!   reader (`detail` is the message).
//!
//! Legacy completions and embeddings are not served (400 `unsupported_endpoint`).

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CACHE_CONTROL};
use http::{HeaderName, Method, Request, Uri};
use http_body_util::Full;
use llmgate_core::wire::ChatCompletionRequest;
use llmgate_core::{DeploymentSpec, Endpoint, LlmBody};
use serde_json::{json, Map, Value};

use crate::dialect::{
    api_base, json_post, now, upstream_uri, Answered, Ctx, Dialect, Follow, Framing, KeyHeader,
    Streaming,
};
use crate::error::Error;
use crate::prompt;

mod stream;

/// Replicate.
#[derive(Debug)]
pub(crate) struct Replicate;

/// The dialect `replicate/` deployments speak.
pub(crate) static DIALECT: Replicate = Replicate;

/// The first wait before polling, doubled each time up to [`MAX_POLL_WAIT`].
const FIRST_POLL_WAIT: Duration = Duration::from_millis(250);
const MAX_POLL_WAIT: Duration = Duration::from_secs(2);

const PREFER: HeaderName = HeaderName::from_static("prefer");

/// What a `replicate/` model names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    /// `owner/name`: the model's latest version.
    Model(&'a str),
    /// `owner/name:version`.
    Version(&'a str),
    /// `deployments/owner/name`.
    Deployment(&'a str),
}

fn target(model: &str) -> Target<'_> {
    if let Some(d) = model.strip_prefix("deployments/") {
        Target::Deployment(d)
    } else if let Some((_, version)) = model.split_once(':') {
        Target::Version(version)
    } else {
        Target::Model(model)
    }
}

impl Dialect for Replicate {
    fn build(&self, ctx: &Ctx<'_>) -> Result<Request<Full<Bytes>>, Error> {
        let r = match (ctx.llm.endpoint(), ctx.llm.body()) {
            (Endpoint::ChatCompletions, LlmBody::Chat(r)) => r,
            (Endpoint::Embeddings, _) => return Err(ctx.unsupported_endpoint("/v1/embeddings")),
            (Endpoint::Completions, _) => return Err(ctx.unsupported_endpoint("/v1/completions")),
            (Endpoint::ChatCompletions, _) => {
                return Err(ctx.unsupported_endpoint("/v1/chat/completions"))
            }
        };
        let stream = ctx.llm.is_stream();
        let base = api_base(ctx.dep).ok_or_else(|| ctx.config("`api_base` is required"))?;
        let mut body = json!({ "input": input(ctx, r)? });
        let url = match target(&ctx.dep.model) {
            Target::Model(m) => format!("{base}/models/{m}/predictions"),
            Target::Deployment(d) => format!("{base}/deployments/{d}/predictions"),
            Target::Version(v) => {
                body["version"] = json!(v);
                format!("{base}/predictions")
            }
        };
        if stream {
            body["stream"] = json!(true);
        }
        let body = serde_json::to_vec(&body)
            .map(Bytes::from)
            .map_err(|e| ctx.config(format!("could not serialise the request body: {e}")))?;
        let extra = if stream {
            Vec::new()
        } else {
            vec![(PREFER, HeaderValue::from_static("wait"))]
        };
        json_post(
            ctx.dep,
            upstream_uri(ctx.dep, url)?,
            body,
            KeyHeader::Bearer,
            &extra,
        )
    }

    fn follows(&self) -> bool {
        true
    }

    fn follow(&self, ctx: &Ctx<'_>, body: &Bytes, polls: u32) -> Result<Follow, Error> {
        let p: Value = serde_json::from_slice(body)
            .map_err(|e| ctx.invalid(format!("not a prediction: {e}")))?;
        let status = p["status"].as_str().unwrap_or_default();
        if matches!(status, "failed" | "canceled" | "aborted") {
            return Err(failed(ctx, &p));
        }
        if ctx.llm.is_stream() {
            let url = p
                .pointer("/urls/stream")
                .and_then(Value::as_str)
                .ok_or_else(|| ctx.invalid("the prediction has no `urls.stream`"))?;
            return Ok(Follow::Stream(get(ctx, url, false)?));
        }
        match status {
            "succeeded" => Ok(Follow::Done),
            "starting" | "processing" => {
                let url = p
                    .pointer("/urls/get")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ctx.invalid("the prediction has no `urls.get`"))?;
                let after = FIRST_POLL_WAIT
                    .saturating_mul(2u32.saturating_pow(polls.min(8)))
                    .min(MAX_POLL_WAIT);
                Ok(Follow::Poll {
                    req: get(ctx, url, true)?,
                    after,
                })
            }
            other => Err(ctx.invalid(format!("unknown prediction status {other:?}"))),
        }
    }

    fn read_answer(&self, ctx: &Ctx<'_>, body: Bytes) -> Result<Answered, Error> {
        let p: Value = serde_json::from_slice(&body)
            .map_err(|e| ctx.invalid(format!("not a prediction: {e}")))?;
        let text = match &p["output"] {
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<String>(),
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let estimate = || match ctx.llm.body() {
            LlmBody::Chat(r) => {
                llmgate_core::tokens::estimate(&prompt::build(ctx.dep, &r.messages))
            }
            _ => 0,
        };
        let metrics = &p["metrics"];
        let usage = crate::text_stream::usage(
            metrics["input_token_count"]
                .as_u64()
                .unwrap_or_else(estimate),
            metrics["output_token_count"]
                .as_u64()
                .unwrap_or_else(|| llmgate_core::tokens::estimate(&text)),
        );
        let out = json!({
            "id": p["id"].as_str().map_or_else(|| crate::bedrock::new_id("chatcmpl"), str::to_owned),
            "object": "chat.completion",
            "created": now(),
            "model": &*ctx.dep.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": usage,
        });
        let json = serde_json::to_vec(&out)
            .map_err(|e| ctx.invalid(format!("could not serialise the answer: {e}")))?;
        Ok(Answered {
            json: Bytes::from(json),
            usage: Some(usage),
        })
    }

    fn stream(&self) -> Streaming {
        Streaming::Translate {
            framing: Framing::Sse,
            translator: |ctx| Box::new(stream::PredictionStream::new(ctx)),
        }
    }
}

/// The prediction's `input` (see the module docs).
fn input(ctx: &Ctx<'_>, r: &ChatCompletionRequest) -> Result<Map<String, Value>, Error> {
    let s = prompt::sampling(ctx, r)?;
    let mut input = s.other;
    let system_prompt = input
        .remove("supports_system_prompt")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let mut messages = r.messages.clone();
    if system_prompt {
        if let Some(i) = messages.iter().position(|m| m.role == "system") {
            let system = messages.remove(i);
            let text = system.content.map(|c| c.text()).unwrap_or_default();
            input.insert("system_prompt".into(), json!(text));
        }
    }
    input.insert("prompt".into(), json!(prompt::build(ctx.dep, &messages)));
    if let Some(max) = s.max_tokens {
        input.insert("max_new_tokens".into(), json!(max));
    }
    if let Some(t) = s.temperature {
        input.insert("temperature".into(), json!(t));
    }
    if let Some(p) = s.top_p {
        input.insert("top_p".into(), json!(p));
    }
    if let Some(stop) = s.stop {
        input.insert("stop_sequences".into(), json!(stop.join(",")));
    }
    if let Some(seed) = s.seed {
        input.insert("seed".into(), json!(seed));
    }
    if s.n.is_some_and(|n| n > 1) {
        ctx.unsupported("n")?;
    }
    Ok(input)
}

/// A failed or canceled prediction's error.
fn failed(ctx: &Ctx<'_>, p: &Value) -> Error {
    let why = match &p["error"] {
        Value::String(s) => s.clone(),
        Value::Null => format!(
            "the prediction {}",
            p["status"].as_str().unwrap_or("failed")
        ),
        other => other.to_string(),
    };
    Error::Upstream {
        provider: ctx.dep.provider,
        deployment: ctx.dep.id.clone(),
        status: http::StatusCode::BAD_GATEWAY,
        message: format!("the Replicate prediction did not succeed: {why}"),
        error_type: None,
        code: Some(Box::from("prediction_failed")),
        param: None,
        retry_after: None,
    }
}

/// `GET url`: a poll (with the key, on the `api_base`'s origin only) or the stream (no key).
fn get(ctx: &Ctx<'_>, url: &str, poll: bool) -> Result<Request<Full<Bytes>>, Error> {
    let uri = Uri::try_from(url)
        .map_err(|_| ctx.invalid(format!("the prediction's URL {url:?} is not a URL")))?;
    let mut req = Request::new(Full::new(Bytes::new()));
    *req.method_mut() = Method::GET;
    let headers = req.headers_mut();
    if poll {
        check_origin(ctx.dep, &uri)?;
        if let Some(key) = ctx.dep.api_key.as_ref().filter(|k| !k.expose().is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                .map_err(|_| ctx.config("`api_key` is not a valid header value"))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in &ctx.dep.headers {
            headers.insert(name.clone(), value.clone());
        }
    } else {
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    *req.uri_mut() = uri;
    Ok(req)
}

/// The key goes only where the `api_base` is: a poll URL elsewhere is refused.
fn check_origin(dep: &DeploymentSpec, uri: &Uri) -> Result<(), Error> {
    let base = api_base(dep)
        .and_then(|b| Uri::try_from(b).ok())
        .ok_or_else(|| Error::config(dep, "`api_base` is not a URL"))?;
    if base.scheme() == uri.scheme() && base.authority() == uri.authority() {
        return Ok(());
    }
    Err(Error::invalid(
        dep,
        format!("refused to poll {uri}: not on the api_base's origin"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{LlmRequest, ProviderKind};

    #[test]
    fn targets() {
        assert_eq!(target("meta/llama-3-8b"), Target::Model("meta/llama-3-8b"));
        assert_eq!(
            target("meta/llama-2-70b-chat:02e5"),
            Target::Version("02e5")
        );
        assert_eq!(
            target("deployments/acme/my-llm"),
            Target::Deployment("acme/my-llm")
        );
    }

    #[test]
    fn inputs() {
        let mut dep = DeploymentSpec::new("r", "g", ProviderKind::Replicate, "meta/m");
        dep.default_params = json!({"supports_system_prompt": true, "top_k": 50})
            .as_object()
            .cloned()
            .unwrap();
        let llm = LlmRequest::parse(
            Endpoint::ChatCompletions,
            br#"{"model":"g","max_tokens":20,"stop":["a","b"],"messages":[
                {"role":"system","content":"sys"},{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        let LlmBody::Chat(r) = llm.body() else {
            unreachable!()
        };
        let v = input(&Ctx::new(&llm, &dep), r).unwrap();
        assert_eq!(
            Value::Object(v),
            json!({"prompt": "hi", "system_prompt": "sys", "max_new_tokens": 20,
                   "stop_sequences": "a,b", "top_k": 50})
        );
    }

    #[test]
    fn polls_stay_on_the_api_base() {
        let mut dep = DeploymentSpec::new("r", "g", ProviderKind::Replicate, "meta/m");
        assert!(check_origin(
            &dep,
            &Uri::from_static("https://api.replicate.com/v1/predictions/x")
        )
        .is_ok());
        assert!(check_origin(&dep, &Uri::from_static("http://169.254.169.254/latest")).is_err());
        dep.api_base = Some("http://127.0.0.1:9/v1".into());
        assert!(check_origin(
            &dep,
            &Uri::from_static("http://127.0.0.1:9/v1/predictions/x")
        )
        .is_ok());
    }
}

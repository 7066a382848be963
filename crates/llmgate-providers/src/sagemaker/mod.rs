//! Amazon SageMaker real-time endpoints, with LiteLLM's two prefixes:
//!
//! | prefix | body sent | answer |
//! |---|---|---|
//! | `sagemaker/<endpoint>` | Hugging Face TGI's `{"inputs": prompt, "parameters"}` ([`tgi`]) | `[{"generated_text"}]` |
//! | `sagemaker_chat/<endpoint>` | OpenAI's chat body (TGI's messages API) | OpenAI's `chat.completion` |
//!
//! - **URL**: `POST {api_base}/endpoints/{endpoint}/invocations`, or
//!   `.../invocations-response-stream` for a stream, where `api_base` is
//!   `https://runtime.sagemaker.{region}.amazonaws.com` (from `aws_region_name` or the
//!   `AWS_REGION` variables) unless set.
//! - **Auth**: AWS Signature Version 4 for the service `sagemaker`, with the deployment's
//!   credentials (`aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`, else the
//!   `AWS_*` variables), signed as Bedrock's requests are ([`crate::bedrock::sign`]). A
//!   deployment `model_id` is sent as `X-Amzn-SageMaker-Inference-Component` (an endpoint
//!   hosting several inference components), never as a parameter.
//! - **Streams** are AWS event streams of `PayloadPart` events carrying the container's SSE
//!   ([`stream`]).
//! - **Errors**: `x-amzn-errortype` and `{"message"}` (or `{"Message"}`, as SageMaker's
//!   `ModelError` has it) as Bedrock's ([`crate::bedrock::error`]).
//!
//! Legacy completions and embeddings are not served (400 `unsupported_endpoint`).

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use llmgate_core::{DeploymentSpec, Endpoint, LlmBody};
use serde_json::{Map, Value};

use crate::bedrock::sign::{self, EVENT_STREAM};
use crate::dialect::relay::EventStreamBox;
use crate::dialect::{upstream_uri, Answered, Ctx, Dialect, Framing, Streaming};
use crate::error::Error;

mod stream;
mod tgi;

/// The header naming an endpoint's inference component.
const INFERENCE_COMPONENT: HeaderName =
    HeaderName::from_static("x-amzn-sagemaker-inference-component");

/// A SageMaker endpoint, speaking TGI's text generation or OpenAI's chat.
#[derive(Debug)]
pub(crate) struct Sagemaker {
    /// `sagemaker_chat/`: OpenAI's chat body and answers.
    chat: bool,
}

/// The dialect `sagemaker/` deployments speak.
pub(crate) static TGI: Sagemaker = Sagemaker { chat: false };
/// The dialect `sagemaker_chat/` deployments speak.
pub(crate) static CHAT: Sagemaker = Sagemaker { chat: true };

impl Dialect for Sagemaker {
    fn build(&self, ctx: &Ctx<'_>) -> Result<Request<Full<Bytes>>, Error> {
        let body = match (ctx.llm.endpoint(), ctx.llm.body()) {
            (Endpoint::ChatCompletions, LlmBody::Chat(_)) if self.chat => chat_body(ctx)?,
            (Endpoint::ChatCompletions, LlmBody::Chat(r)) => tgi::chat_body(ctx, r)?,
            (Endpoint::Embeddings, _) => return Err(ctx.unsupported_endpoint("/v1/embeddings")),
            (Endpoint::Completions, _) => return Err(ctx.unsupported_endpoint("/v1/completions")),
            (Endpoint::ChatCompletions, _) => {
                return Err(ctx.unsupported_endpoint("/v1/chat/completions"))
            }
        };
        let stream = ctx.llm.is_stream();
        let uri = url(ctx.dep, stream)?;
        let mut extra = Vec::new();
        if let Some(component) = ctx
            .dep
            .default_params
            .get("model_id")
            .and_then(Value::as_str)
        {
            let value = HeaderValue::from_str(component)
                .map_err(|_| ctx.config("`model_id` is not a valid header value"))?;
            extra.push((INFERENCE_COMPONENT, value));
        }
        let accept = if stream {
            EVENT_STREAM
        } else {
            "application/json"
        };
        sign::signed(sign::SAGEMAKER, ctx.dep, uri, accept, &extra, body)
    }

    fn read_answer(&self, ctx: &Ctx<'_>, body: Bytes) -> Result<Answered, Error> {
        match ctx.llm.body() {
            LlmBody::Chat(r) if !self.chat => tgi::read(ctx, r, &body),
            _ => chat_answer(ctx, body),
        }
    }

    fn stream(&self) -> Streaming {
        Streaming::Translate {
            framing: Framing::AwsEventStream,
            translator: if self.chat { chat_stream } else { tgi_stream },
        }
    }

    fn error(
        &self,
        dep: &DeploymentSpec,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Error {
        crate::bedrock::error::from_response(dep, status, headers, body)
    }

    fn decode_aws(&self, body: Incoming) -> Option<EventStreamBox> {
        Some(crate::bedrock::eventstream::decode(body))
    }
}

fn chat_stream(ctx: &Ctx<'_>) -> Box<dyn crate::dialect::Translator> {
    Box::new(stream::ChatStream::new(ctx))
}

fn tgi_stream(ctx: &Ctx<'_>) -> Box<dyn crate::dialect::Translator> {
    Box::new(stream::TgiStream::new(ctx))
}

/// The OpenAI chat body as the OpenAI-compatible dialect writes it, without the gateway's
/// keys (`model_id`, the prompt template's) and `stream_options`; `stream: true` for a stream.
fn chat_body(ctx: &Ctx<'_>) -> Result<Bytes, Error> {
    let flavor = crate::openai_compat::Flavor::Standard;
    let written = crate::openai_compat::request::body(flavor, ctx.dep, ctx.llm)?;
    let mut v: Map<String, Value> = serde_json::from_slice(&written)
        .map_err(|e| ctx.config(format!("could not serialise the request body: {e}")))?;
    v.remove("stream_options");
    for key in ["model_id", "hf_model_name", "aws_sagemaker_allow_zero_temp"]
        .iter()
        .chain(crate::prompt::TEMPLATE_KEYS)
    {
        v.remove(*key);
    }
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| ctx.config(format!("could not serialise the request body: {e}")))
}

/// A `chat.completion` passed through; its usage estimated when it reports none.
fn chat_answer(ctx: &Ctx<'_>, body: Bytes) -> Result<Answered, Error> {
    match crate::openai_compat::read_answer(&body) {
        crate::openai_compat::Answer::Ok(Some(usage)) => Ok(Answered {
            json: body,
            usage: Some(usage),
        }),
        crate::openai_compat::Answer::Ok(None) => {
            let mut v: Value = serde_json::from_slice(&body)
                .map_err(|e| ctx.invalid(format!("not a chat.completion: {e}")))?;
            let prompt = match ctx.llm.body() {
                LlmBody::Chat(r) => r
                    .messages
                    .iter()
                    .filter_map(|m| m.content.as_ref().map(|c| c.text()))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => String::new(),
            };
            let text = v
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let usage = crate::text_stream::usage(
                llmgate_core::tokens::estimate(&prompt),
                llmgate_core::tokens::estimate(text),
            );
            v["usage"] = serde_json::to_value(&usage).unwrap_or(Value::Null);
            let json = serde_json::to_vec(&v)
                .map_err(|e| ctx.invalid(format!("could not serialise the answer: {e}")))?;
            Ok(Answered {
                json: Bytes::from(json),
                usage: Some(usage),
            })
        }
        crate::openai_compat::Answer::Error => {
            // A 200 carrying an error object: the endpoint failed after all.
            let e = crate::bedrock::error::from_response(
                ctx.dep,
                StatusCode::BAD_GATEWAY,
                &HeaderMap::new(),
                &body,
            );
            Err(crate::redact::error(e, ctx.dep))
        }
        crate::openai_compat::Answer::Invalid(detail) => Err(ctx.invalid(detail)),
    }
}

/// `{api_base}/endpoints/{endpoint}/invocations[-response-stream]`.
fn url(dep: &DeploymentSpec, stream: bool) -> Result<Uri, Error> {
    let base = dep
        .api_base
        .as_deref()
        .ok_or_else(|| {
            Error::config(
                dep,
                "sagemaker needs `aws_region_name` (or AWS_REGION) or `api_base`",
            )
        })?
        .trim_end_matches('/');
    let mut url = String::with_capacity(base.len() + dep.model.len() + 48);
    url.push_str(base);
    url.push_str("/endpoints/");
    crate::bedrock::percent_encode(&dep.model, &mut url);
    url.push_str(if stream {
        "/invocations-response-stream"
    } else {
        "/invocations"
    });
    upstream_uri(dep, url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{LlmRequest, ProviderKind};
    use serde_json::json;

    #[test]
    fn urls() {
        let mut d = DeploymentSpec::new("s", "g", ProviderKind::Sagemaker, "my-endpoint");
        assert!(url(&d, false).is_err());
        d.api_base = Some("https://runtime.sagemaker.us-west-2.amazonaws.com/".into());
        assert_eq!(
            url(&d, false).unwrap(),
            "https://runtime.sagemaker.us-west-2.amazonaws.com/endpoints/my-endpoint/invocations"
        );
        assert_eq!(
            url(&d, true).unwrap().path(),
            "/endpoints/my-endpoint/invocations-response-stream"
        );
    }

    #[test]
    fn chat_bodies_keep_the_gateways_keys() {
        let mut d = DeploymentSpec::new("s", "g", ProviderKind::SagemakerChat, "ep");
        d.default_params = json!({"model_id": "ic", "top_k": 3})
            .as_object()
            .cloned()
            .unwrap();
        let llm = LlmRequest::parse(
            Endpoint::ChatCompletions,
            br#"{"model":"g","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&chat_body(&Ctx::new(&llm, &d)).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"model": "ep", "messages": [{"role": "user", "content": "hi"}],
                   "stream": true, "top_k": 3})
        );
    }
}

//! IBM watsonx.ai (`watsonx/`), through its chat API, which takes OpenAI-like messages.
//!
//! | OpenAI endpoint | watsonx |
//! |---|---|
//! | `/v1/chat/completions` | `POST {api_base}/ml/v1/text/chat?version={api_version}` |
//! | ... with `stream: true` | `.../ml/v1/text/chat_stream?version=...` (SSE) |
//! | a `deployment/<id>` model | `.../ml/v1/deployments/{id}/text/chat` (and `chat_stream`) |
//!
//! `api_base` is the region's endpoint (`https://us-south.ml.cloud.ibm.com`, else
//! `WATSONX_URL`); `api_version` defaults to [`DEFAULT_VERSION`].
//!
//! - **Request**: the client's chat body as the OpenAI-compatible dialect writes it (the
//!   deployment's defaults added), with `model` as `model_id` and the deployment's
//!   `project_id` (or `space_id`) added; no `stream` or `stream_options` (the URL says it). A
//!   deployment model gets neither `model_id` nor a project: the deployment has them.
//!   `tool_choice` `auto`/`none`/`required` is sent as `tool_choice_option`, as watsonx takes
//!   it (a named function stays `tool_choice`).
//! - **Auth**: `Authorization: Bearer` with an IAM token got from the deployment's `api_key`
//!   at `WATSONX_IAM_URL` (default `https://iam.cloud.ibm.com/identity/token`), cached as
//!   [`crate::tokens`] says; or the `token` given directly.
//! - **Answer**: watsonx's `{"id", "model_id", "created", "choices", "usage"}` becomes
//!   `chat.completion` with `model` = `model_id`; choices and usage are OpenAI's already.
//! - **Stream**: each event's `choices` become a chunk as they are; the usage of the event
//!   carrying it is the stream's usage. The stream ends with the body.
//! - **Errors**: `{"errors": [{"code", "message"}], "status_code"}` keeps its status, the
//!   first error's message and code.
//!
//! - **Embeddings** (`/v1/embeddings`): `POST {api_base}/ml/v1/text/embeddings?version=..`,
//!   see [`embeddings`]. A `deployment/<id>` model has no embeddings route (400).
//!
//! Legacy completions are not served (400 `unsupported_endpoint`).

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION};
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::Full;
use llmgate_core::{DeploymentSpec, Endpoint, LlmBody, Secret};
use serde_json::{json, Map, Value};

use crate::dialect::{
    api_base, upstream_uri, Answered, Ctx, Dialect, Framing, KeyHeader, Streaming,
};
use crate::error::Error;
use crate::tokens::TokenKey;

mod embeddings;
mod stream;

/// The chat API's `version` when the deployment sets no `api_version`.
pub(crate) const DEFAULT_VERSION: &str = "2024-05-31";

/// IBM watsonx.ai.
#[derive(Debug)]
pub(crate) struct Watsonx;

/// The dialect `watsonx/` deployments speak.
pub(crate) static DIALECT: Watsonx = Watsonx;

impl Dialect for Watsonx {
    fn build(&self, ctx: &Ctx<'_>) -> Result<Request<Full<Bytes>>, Error> {
        let deployment = ctx.dep.model.strip_prefix("deployment/");
        let (body, uri) = match (ctx.llm.endpoint(), ctx.llm.body()) {
            (Endpoint::ChatCompletions, LlmBody::Chat(_)) => (
                body(ctx, deployment.is_none())?,
                url(ctx.dep, deployment, Method::Chat(ctx.llm.is_stream()))?,
            ),
            (Endpoint::Embeddings, LlmBody::Embedding(r)) if deployment.is_none() => (
                embeddings::body(ctx, r)?,
                url(ctx.dep, None, Method::Embeddings)?,
            ),
            (Endpoint::Embeddings, _) => return Err(ctx.unsupported_endpoint("/v1/embeddings")),
            (Endpoint::Completions, _) => return Err(ctx.unsupported_endpoint("/v1/completions")),
            (Endpoint::ChatCompletions, _) => {
                return Err(ctx.unsupported_endpoint("/v1/chat/completions"))
            }
        };
        let bearer = ctx
            .token
            .or_else(|| ctx.dep.watsonx.as_ref().and_then(|w| w.token.as_ref()));
        let mut extra = Vec::new();
        if let Some(token) = bearer {
            extra.push((AUTHORIZATION, bearer_value(ctx, token)?));
        }
        crate::dialect::json_post(ctx.dep, uri, body, KeyHeader::Omit, &extra)
    }

    fn read_answer(&self, ctx: &Ctx<'_>, body: Bytes) -> Result<Answered, Error> {
        if let LlmBody::Embedding(r) = ctx.llm.body() {
            return embeddings::read(ctx, r, &body);
        }
        let v: Map<String, Value> = serde_json::from_slice(&body)
            .map_err(|e| ctx.invalid(format!("not a watsonx chat answer: {e}")))?;
        let usage = v
            .get("usage")
            .cloned()
            .and_then(|u| serde_json::from_value(u).ok());
        let model = v
            .get("model_id")
            .or_else(|| v.get("model"))
            .and_then(Value::as_str)
            .unwrap_or(&ctx.dep.model);
        let out = json!({
            "id": v.get("id").cloned().unwrap_or_else(|| json!("chatcmpl-watsonx")),
            "object": "chat.completion",
            "created": v.get("created").cloned().unwrap_or_else(|| json!(crate::dialect::now())),
            "model": model,
            "choices": v.get("choices").cloned().unwrap_or_else(|| json!([])),
            "usage": v.get("usage").cloned().unwrap_or(Value::Null),
        });
        let json = serde_json::to_vec(&out)
            .map_err(|e| ctx.invalid(format!("could not serialise the answer: {e}")))?;
        Ok(Answered {
            json: Bytes::from(json),
            usage,
        })
    }

    fn stream(&self) -> Streaming {
        Streaming::Translate {
            framing: Framing::Sse,
            translator: |ctx| Box::new(stream::ChatStream::new(ctx)),
        }
    }

    fn error(
        &self,
        dep: &DeploymentSpec,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Error {
        let first = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.pointer("/errors/0").cloned());
        match first.as_ref().and_then(|e| e["message"].as_str()) {
            Some(message) => Error::Upstream {
                provider: dep.provider,
                deployment: dep.id.clone(),
                status,
                message: message.to_owned(),
                error_type: None,
                code: first
                    .as_ref()
                    .and_then(|e| e["code"].as_str())
                    .map(Box::from),
                param: None,
                retry_after: crate::upstream_error::retry_after(headers),
            },
            None => crate::upstream::openai_error(dep, status, headers, body),
        }
    }

    fn credentials(&self, dep: &DeploymentSpec) -> Option<TokenKey> {
        let w = dep.watsonx.as_ref()?;
        if w.token.is_some() {
            return None;
        }
        let api_key = dep.api_key.clone().filter(|k| !k.expose().is_empty())?;
        Some(TokenKey::IbmApiKey {
            api_key,
            iam_url: w.iam_url.clone(),
        })
    }
}

fn bearer_value(ctx: &Ctx<'_>, token: &Secret) -> Result<HeaderValue, Error> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| ctx.config("the watsonx token is not a valid header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The chat body (see the module docs); `model` says whether it names the model and project.
fn body(ctx: &Ctx<'_>, model: bool) -> Result<Bytes, Error> {
    let flavor = crate::openai_compat::Flavor::Mistral;
    let written = crate::openai_compat::request::body(flavor, ctx.dep, ctx.llm)?;
    let mut v: Map<String, Value> = serde_json::from_slice(&written)
        .map_err(|e| ctx.config(format!("could not serialise the request body: {e}")))?;
    v.remove("stream");
    v.remove("stream_options");
    // watsonx takes `auto`/`none`/`required` as `tool_choice_option`; `tool_choice` is only
    // the named-function object.
    if let Some(Value::String(choice)) = v.get("tool_choice").cloned() {
        v.remove("tool_choice");
        v.insert("tool_choice_option".to_owned(), Value::String(choice));
    }
    let model_id = v.remove("model");
    let mut v = Value::Object(v);
    if model {
        v["model_id"] = model_id.unwrap_or(Value::Null);
        add_project(ctx, &mut v)?;
    }
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| ctx.config(format!("could not serialise the request body: {e}")))
}

/// Adds the deployment's `project_id` (else its `space_id`) to `body`.
fn add_project(ctx: &Ctx<'_>, body: &mut Value) -> Result<(), Error> {
    let w = ctx.dep.watsonx.as_ref();
    match (
        w.and_then(|w| w.project_id.as_deref()),
        w.and_then(|w| w.space_id.as_deref()),
    ) {
        (Some(project), _) => body["project_id"] = json!(project),
        (None, Some(space)) => body["space_id"] = json!(space),
        (None, None) => return Err(ctx.config("`project_id` or `space_id` is required")),
    }
    Ok(())
}

/// The watsonx method a request calls.
#[derive(Debug, Clone, Copy)]
enum Method {
    /// `text/chat`, or `text/chat_stream` when streamed.
    Chat(bool),
    /// `text/embeddings`.
    Embeddings,
}

/// `{api_base}/ml/v1/text/{method}?version=..`, or a deployment's.
fn url(dep: &DeploymentSpec, deployment: Option<&str>, method: Method) -> Result<Uri, Error> {
    let base = api_base(dep).ok_or_else(|| Error::config(dep, "`api_base` is required"))?;
    let method = match method {
        Method::Chat(true) => "chat_stream",
        Method::Chat(false) => "chat",
        Method::Embeddings => "embeddings",
    };
    let version = dep.api_version.as_deref().unwrap_or(DEFAULT_VERSION);
    let url = match deployment {
        Some(id) => format!("{base}/ml/v1/deployments/{id}/text/{method}?version={version}"),
        None => format!("{base}/ml/v1/text/{method}?version={version}"),
    };
    upstream_uri(dep, url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::ProviderKind;

    fn dep(model: &str) -> DeploymentSpec {
        let mut d = DeploymentSpec::new("w", "g", ProviderKind::Watsonx, model);
        d.watsonx = Some(llmgate_core::WatsonxParams {
            project_id: None,
            space_id: Some("space-1".into()),
            iam_url: "http://127.0.0.1:9/identity/token".into(),
            token: None,
        });
        d.default_params = json!({"max_tokens": 50}).as_object().cloned().unwrap();
        d
    }

    #[test]
    fn bodies() {
        let llm = llmgate_core::LlmRequest::parse(
            Endpoint::ChatCompletions,
            br#"{"model": "g", "messages": [{"role": "user", "content": "hi"}], "stream": true,
                 "tool_choice": "auto", "tools": []}"#,
        )
        .unwrap();
        let d = dep("ibm/granite");
        let v: Value = serde_json::from_slice(&body(&Ctx::new(&llm, &d), true).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"model_id": "ibm/granite", "space_id": "space-1", "max_tokens": 50,
                   "messages": [{"role": "user", "content": "hi"}],
                   "tools": [], "tool_choice_option": "auto"})
        );
        // A deployment model: the deployment knows its model and space.
        let d = dep("deployment/abc");
        let v: Value = serde_json::from_slice(&body(&Ctx::new(&llm, &d), false).unwrap()).unwrap();
        assert!(
            v.get("model_id").is_none() && v.get("space_id").is_none(),
            "{v}"
        );
    }

    #[test]
    fn urls() {
        let mut d =
            DeploymentSpec::new("w", "g", ProviderKind::Watsonx, "ibm/granite-3-8b-instruct");
        d.api_base = Some("https://us-south.ml.cloud.ibm.com/".into());
        assert_eq!(
            url(&d, None, Method::Chat(false)).unwrap(),
            "https://us-south.ml.cloud.ibm.com/ml/v1/text/chat?version=2024-05-31"
        );
        d.api_version = Some("2025-01-01".into());
        assert_eq!(
            url(&d, Some("abc"), Method::Chat(true)).unwrap().path(),
            "/ml/v1/deployments/abc/text/chat_stream"
        );
        assert_eq!(
            url(&d, None, Method::Embeddings)
                .unwrap()
                .path_and_query()
                .unwrap()
                .as_str(),
            "/ml/v1/text/embeddings?version=2025-01-01"
        );
        d.api_base = None;
        assert!(url(&d, None, Method::Chat(false)).is_err());
    }
}

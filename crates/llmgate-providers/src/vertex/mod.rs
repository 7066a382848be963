//! Google Cloud's Vertex AI (`vertex_ai/`, and LiteLLM's alias `gemini_vertex/`): Gemini
//! models through Vertex's Gemini API, Anthropic's Claude models through Anthropic on Vertex.
//! Only the URL and the auth differ from the `gemini/` and `anthropic/` dialects, whose
//! translations both ways are reused as they are.
//!
//! | model | OpenAI endpoint | Vertex method |
//! |---|---|---|
//! | `claude-*` | `/v1/chat/completions` | `.../publishers/anthropic/models/{model}:rawPredict` |
//! | | ... with `stream: true` | `...:streamRawPredict` (Anthropic's SSE) |
//! | any other | `/v1/chat/completions`, `/v1/completions` | `.../publishers/google/models/{model}:generateContent` |
//! | | ... with `stream: true` | `...:streamGenerateContent?alt=sse` |
//! | | `/v1/embeddings` | `...:predict` (text-embedding models, see [`embeddings`]) |
//!
//! `...` is `{base}/v1/projects/{project}/locations/{location}`, where `base` is
//! `https://{location}-aiplatform.googleapis.com` (`https://aiplatform.googleapis.com` for
//! the location `global`), or the deployment's `api_base` (a base ending in `/v1` is used as
//! it is). Without a project (Vertex's express mode, with an `api_key`) the path is
//! `{base}/v1/publishers/google/models/{model}:...`.
//!
//! Claude's body is Anthropic's Messages body without `model` and with
//! `"anthropic_version": "vertex-2023-10-16"`, as Vertex requires (and no `anthropic-version`
//! or `x-api-key` header).
//!
//! **Auth**: with credentials (`vertex_credentials`, else `GOOGLE_APPLICATION_CREDENTIALS`),
//! `Authorization: Bearer` with an access token got from them ([`token`], [`auth`]) and
//! cached until shortly before it expires ([`crate::tokens`]). Without credentials, the deployment's `api_key`:
//! a Google API key (`AIza...`, express mode) in `x-goog-api-key`, anything else as a bearer
//! token. The deployment's `headers` are added last and win.
//!
//! **Errors**: Google's `{"error": {"code", "message", "status"}}` is read as the `gemini/`
//! dialect reads it, for both families (Vertex answers its own errors, such as quota and
//! permission ones, in Google's shape); Anthropic's error bodies as the `anthropic/` dialect
//! reads them.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::Full;
use llmgate_core::{DeploymentSpec, LlmBody};

use crate::dialect::{
    upstream_uri, Answered, Ctx, Dialect, Framing, KeyHeader, Streaming, Translator,
};
use crate::error::Error;
use crate::tokens::TokenKey;

pub(crate) mod auth;
mod embeddings;

/// The `anthropic_version` Anthropic on Vertex requires in the body.
pub(crate) const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// Google's API key header (express mode).
const API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");

/// Vertex AI.
#[derive(Debug)]
pub(crate) struct Vertex;

/// The dialect `vertex_ai/` deployments speak.
pub(crate) static DIALECT: Vertex = Vertex;

/// Which publisher's API a model is served through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Google's Gemini (and embedding) models.
    Gemini,
    /// Anthropic's Claude models.
    Anthropic,
}

fn family(dep: &DeploymentSpec) -> Family {
    if dep.model.starts_with("claude") {
        Family::Anthropic
    } else {
        Family::Gemini
    }
}

impl Dialect for Vertex {
    fn build(&self, ctx: &Ctx<'_>) -> Result<Request<Full<Bytes>>, Error> {
        let (method, body) = match family(ctx.dep) {
            Family::Anthropic => {
                let method = if ctx.llm.is_stream() {
                    "streamRawPredict"
                } else {
                    "rawPredict"
                };
                (method, anthropic_body(ctx)?)
            }
            Family::Gemini => match ctx.llm.body() {
                LlmBody::Embedding(r) => ("predict", embeddings::body(ctx, r)?),
                _ => {
                    let (call, body) = crate::gemini::body(ctx)?;
                    let method = match call {
                        crate::gemini::Call::Stream => "streamGenerateContent?alt=sse",
                        _ => "generateContent",
                    };
                    (method, body)
                }
            },
        };
        let uri = url(ctx.dep, method)?;
        let (key, extra) = auth_header(ctx)?;
        crate::dialect::json_post(ctx.dep, uri, body, key, &extra)
    }

    fn read_answer(&self, ctx: &Ctx<'_>, body: Bytes) -> Result<Answered, Error> {
        match (family(ctx.dep), ctx.llm.body()) {
            (Family::Anthropic, _) => crate::anthropic::DIALECT.read_answer(ctx, body),
            (Family::Gemini, LlmBody::Embedding(r)) => embeddings::read(ctx, r, &body),
            (Family::Gemini, _) => crate::gemini::DIALECT.read_answer(ctx, body),
        }
    }

    fn stream(&self) -> Streaming {
        Streaming::Translate {
            framing: Framing::Sse,
            translator,
        }
    }

    fn error(
        &self,
        dep: &DeploymentSpec,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Error {
        let google = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .is_some_and(|v| v.pointer("/error/status").is_some());
        if family(dep) == Family::Anthropic && !google {
            crate::anthropic::DIALECT.error(dep, status, headers, body)
        } else {
            crate::gemini::DIALECT.error(dep, status, headers, body)
        }
    }

    fn credentials(&self, dep: &DeploymentSpec) -> Option<TokenKey> {
        let google = dep.vertex.as_ref()?.credentials.as_ref()?;
        Some(TokenKey::Google(google.clone()))
    }
}

fn translator(ctx: &Ctx<'_>) -> Box<dyn Translator> {
    match family(ctx.dep) {
        Family::Anthropic => crate::anthropic::translator(ctx),
        Family::Gemini => crate::gemini::translator(ctx),
    }
}

/// Anthropic's Messages body as Vertex takes it: no `model`, `anthropic_version` set.
fn anthropic_body(ctx: &Ctx<'_>) -> Result<Bytes, Error> {
    let body = crate::anthropic::messages_body(ctx)?;
    let mut json = serde_json::to_value(&body)
        .map_err(|e| ctx.config(format!("could not serialise the request body: {e}")))?;
    if let Some(fields) = json.as_object_mut() {
        fields.remove("model");
        fields.insert("anthropic_version".into(), ANTHROPIC_VERSION.into());
    }
    serde_json::to_vec(&json)
        .map(Bytes::from)
        .map_err(|e| ctx.config(format!("could not serialise the request body: {e}")))
}

/// How the request authenticates: the access token got for it, else the `api_key` (see the
/// module docs).
fn auth_header(ctx: &Ctx<'_>) -> Result<(KeyHeader, Vec<(HeaderName, HeaderValue)>), Error> {
    if let Some(token) = ctx.token {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| ctx.invalid("the token endpoint's access token is not a header value"))?;
        value.set_sensitive(true);
        return Ok((KeyHeader::Omit, vec![(AUTHORIZATION, value)]));
    }
    let api_key = ctx.dep.api_key.as_ref().map(|k| k.expose());
    let key = match api_key {
        Some(k) if k.starts_with("AIza") => KeyHeader::Plain(API_KEY),
        _ => KeyHeader::Bearer,
    };
    Ok((key, Vec::new()))
}

/// The method's URL (see the module docs).
fn url(dep: &DeploymentSpec, method: &str) -> Result<Uri, Error> {
    let vertex = dep.vertex.as_ref();
    let location = vertex.map_or(crate::vertex::DEFAULT_LOCATION, |v| &v.location);
    let base = match dep.api_base.as_deref() {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None if location == "global" => "https://aiplatform.googleapis.com".to_owned(),
        None => format!("https://{location}-aiplatform.googleapis.com"),
    };
    let publisher = match family(dep) {
        Family::Anthropic => "anthropic",
        Family::Gemini => "google",
    };
    let mut url = base;
    if !(url.ends_with("/v1") || url.ends_with("/v1beta1")) {
        url.push_str("/v1");
    }
    match vertex.and_then(|v| v.project.as_deref()) {
        Some(project) => {
            url.push_str(&format!("/projects/{project}/locations/{location}"));
        }
        None if dep.api_key.is_some() => {}
        None => {
            return Err(Error::config(
                dep,
                "`vertex_project` is required (or an `api_key` for Vertex's express mode)",
            ))
        }
    }
    url.push_str(&format!(
        "/publishers/{publisher}/models/{}:{method}",
        dep.model
    ));
    upstream_uri(dep, url)
}

/// Vertex AI's default location, as LiteLLM's.
const DEFAULT_LOCATION: &str = "us-central1";

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{ProviderKind, Secret, VertexParams};

    fn dep(model: &str, location: &str, base: Option<&str>) -> DeploymentSpec {
        let mut d = DeploymentSpec::new("v-0", "group", ProviderKind::VertexAi, model);
        d.api_base = base.map(Into::into);
        d.vertex = Some(VertexParams {
            project: Some("proj".into()),
            location: location.into(),
            credentials: None,
        });
        d
    }

    #[test]
    fn urls() {
        let d = dep("gemini-2.5-flash", "us-central1", None);
        assert_eq!(
            url(&d, "generateContent").unwrap(),
            "https://us-central1-aiplatform.googleapis.com/v1/projects/proj/locations/us-central1\
             /publishers/google/models/gemini-2.5-flash:generateContent"
        );
        let d = dep("claude-sonnet-4@20250514", "global", None);
        assert_eq!(
            url(&d, "streamRawPredict").unwrap(),
            "https://aiplatform.googleapis.com/v1/projects/proj/locations/global\
             /publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
        );
        let d = dep(
            "gemini-2.5-pro",
            "europe-west4",
            Some("http://127.0.0.1:9/"),
        );
        assert_eq!(
            url(&d, "streamGenerateContent?alt=sse").unwrap(),
            "http://127.0.0.1:9/v1/projects/proj/locations/europe-west4\
             /publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        let d = dep("m", "us-east5", Some("https://private.example/v1"));
        assert_eq!(
            url(&d, "rawPredict").unwrap().path(),
            "/v1/projects/proj/locations/us-east5/publishers/google/models/m:rawPredict"
        );
    }

    #[test]
    fn express_mode_has_no_project() {
        let mut d = dep("gemini-2.5-flash", "global", None);
        d.vertex.as_mut().unwrap().project = None;
        assert!(matches!(
            url(&d, "generateContent"),
            Err(Error::Config { .. })
        ));
        d.api_key = Some(Secret::new("AIza-test"));
        assert_eq!(
            url(&d, "generateContent").unwrap(),
            "https://aiplatform.googleapis.com/v1/publishers/google/models/gemini-2.5-flash:generateContent"
        );
    }
}

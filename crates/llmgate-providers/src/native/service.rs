//! Calling a native provider: the same deadlines, client and error handling as the
//! OpenAI-compatible path, with the dialect translating both ways.

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::Response;
use llmgate_core::{body, BoxBody, Deployment, Endpoint, LlmRequest, StreamFailure, UsageSlot};

use super::relay::{self, TranslatedRelay};
use super::{Ctx, NativeDialect};
use crate::error::Error;
use crate::redact;
use crate::service::{read_answer_body, read_error_body, send, Deadline, Inner};

/// Serves `llm` on `dep` through `dialect`.
pub(crate) async fn serve(
    inner: &Inner,
    dialect: &'static dyn NativeDialect,
    llm: LlmRequest,
    dep: Deployment,
) -> Result<Response<BoxBody>, Error> {
    let client = &inner.client;
    let ctx = Ctx::new(&llm, &dep);
    let stream = llm.is_stream();
    if stream && llm.endpoint() == Endpoint::Completions {
        // The relay frames chat chunks; a `text_completion` stream would need its own.
        return Err(Error::UnsupportedEndpoint {
            provider: dep.provider,
            deployment: dep.id.clone(),
            endpoint: "/v1/completions with stream: true",
        });
    }
    let req = dialect.build(&ctx)?;
    let deadline = Deadline::pick(&llm, &dep, stream, client.default_timeout);
    tracing::debug!(
        deployment = %dep.id,
        provider = %dep.provider,
        endpoint = llm.endpoint().as_str(),
        stream,
        "calling upstream (native dialect)",
    );
    let call = async {
        let res = send(client, req, &dep).await?;
        if res.status().is_success() {
            return Ok(res);
        }
        let (parts, body) = res.into_parts();
        let buf = read_error_body(body).await;
        tracing::debug!(deployment = %dep.id, status = %parts.status, "upstream answered with an error");
        Err(redact::error(
            dialect.error(&dep, parts.status, &parts.headers, &buf),
            &dep,
        ))
    };

    if stream {
        let res = Deadline::run(deadline, &dep, call).await?;
        let events =
            relay::decode(dialect, res.into_body(), inner.max_response).ok_or_else(|| {
                Error::InvalidResponse {
                    provider: dep.provider,
                    deployment: dep.id.clone(),
                    detail: "the dialect cannot decode its stream framing".to_owned(),
                }
            })?;
        let slot = UsageSlot::new();
        let failure = StreamFailure::new();
        let relay = TranslatedRelay::new(
            events,
            dialect.translator(&ctx),
            slot.clone(),
            llm.include_usage(),
            inner.watch(&dep),
            inner.max_response,
            dep.clone(),
            failure.clone(),
        );
        let mut out = Response::new(BoxBody::new(relay));
        let headers = out.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        out.extensions_mut().insert(slot);
        out.extensions_mut().insert(failure);
        out.extensions_mut().insert(dep);
        return Ok(out);
    }

    let bytes: Bytes = Deadline::run(deadline, &dep, async {
        let res = call.await?;
        let (parts, body) = res.into_parts();
        read_answer_body(&dep, &parts.headers, body, inner.max_response).await
    })
    .await?;
    let answered = dialect.read_answer(&ctx, &bytes)?;
    let slot = UsageSlot::new();
    if let Some(u) = answered.usage {
        slot.set(u);
    }
    let mut res = Response::new(body::full(answered.json));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.extensions_mut().insert(slot);
    res.extensions_mut().insert(dep);
    Ok(res)
}

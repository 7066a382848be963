//! Calling a native provider: the same deadlines, client and error handling as the
//! OpenAI-compatible path, with the dialect translating both ways.

use bytes::Bytes;
use http::{HeaderMap, Response};
use llmgate_core::{BoxBody, Deployment, DeploymentSpec, Endpoint, LlmRequest};

use super::relay::{self, TranslatedRelay};
use super::{Ctx, NativeDialect};
use crate::error::Error;
use crate::service::Inner;
use crate::upstream::{self, Deadline, StreamSlots};

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
    let read_error = |d: &DeploymentSpec, s, h: &HeaderMap, b: &[u8]| dialect.error(d, s, h, b);
    let call = upstream::call(client, req, &dep, &read_error);

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
        let slots = StreamSlots::default();
        let relay = TranslatedRelay::new(
            events,
            dialect.translator(&ctx),
            slots.usage.clone(),
            llm.include_usage(),
            inner.watch(&dep),
            inner.max_response,
            dep.clone(),
            slots.failure.clone(),
        );
        return Ok(upstream::stream(BoxBody::new(relay), slots, dep));
    }

    let bytes: Bytes = Deadline::run(deadline, &dep, async {
        let res = call.await?;
        let (parts, body) = res.into_parts();
        upstream::collect(&dep, &parts.headers, body, inner.max_response).await
    })
    .await?;
    let answered = dialect.read_answer(&ctx, &bytes)?;
    Ok(upstream::answer(answered.json, answered.usage, dep))
}

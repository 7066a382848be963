//! Calling a native provider: the same deadlines, client and error handling as the
//! OpenAI-compatible path, with the dialect translating both ways.

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::Response;
use http_body_util::BodyExt;
use llmgate_core::{body, BoxBody, Deployment, Endpoint, LlmRequest, UsageSlot};

use super::relay::{self, TranslatedRelay};
use super::{Ctx, NativeDialect};
use crate::client::UpstreamClient;
use crate::error::{chain, Error};
use crate::service::{read_error_body, send, Deadline};

/// Serves `llm` on `dep` through `dialect`.
pub(crate) async fn serve(
    client: &UpstreamClient,
    dialect: &'static dyn NativeDialect,
    llm: LlmRequest,
    dep: Deployment,
) -> Result<Response<BoxBody>, Error> {
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
        Err(dialect.error(&dep, parts.status, &parts.headers, &buf))
    };

    if stream {
        let res = Deadline::run(deadline, &dep, call).await?;
        let events =
            relay::decode(dialect, res.into_body()).ok_or_else(|| Error::InvalidResponse {
                provider: dep.provider,
                deployment: dep.id.clone(),
                detail: "the dialect cannot decode its stream framing".to_owned(),
            })?;
        let slot = UsageSlot::new();
        let relay = TranslatedRelay::new(
            events,
            dialect.translator(&ctx),
            slot.clone(),
            llm.include_usage(),
            dep.provider,
            dep.id.clone(),
        );
        let mut out = Response::new(BoxBody::new(relay));
        let headers = out.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        out.extensions_mut().insert(slot);
        out.extensions_mut().insert(dep);
        return Ok(out);
    }

    let bytes: Bytes = Deadline::run(deadline, &dep, async {
        let res = call.await?;
        let collected = res
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::InvalidResponse {
                provider: dep.provider,
                deployment: dep.id.clone(),
                detail: format!("the body broke off: {}", chain(&e)),
            })?;
        Ok(collected.to_bytes())
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

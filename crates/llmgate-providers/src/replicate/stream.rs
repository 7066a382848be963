//! A prediction's `urls.stream`: server-sent events as Replicate sends them.
//!
//! ```text
//! event: output        data: <a piece of text>     (several `data:` lines are one piece
//!                                                    with newlines)
//! event: error         data: {"detail": "..."}     the prediction failed: the stream fails
//! event: done          data: {}                    the end; {"reason": "canceled"} or
//!                                                   {"reason": "error"} fail it instead
//! ```
//!
//! Each `output` piece becomes a chunk; `done` sends the last chunk (`finish_reason: stop`).
//! Replicate reports no usage in a stream: it is estimated ([`crate::text_stream`]).

use llmgate_core::wire::ChatCompletionChunk;
use llmgate_core::{LlmBody, Usage};
use serde_json::Value;

use crate::dialect::{Ctx, Flow, RawEvent, Translator};
use crate::error::{Error, Named};
use crate::text_stream::TextChunks;

/// The state of one prediction stream.
pub(super) struct PredictionStream {
    named: Named,
    chunks: TextChunks,
    usage: Option<Usage>,
}

impl PredictionStream {
    pub(super) fn new(ctx: &Ctx<'_>) -> Self {
        let prompt = match ctx.llm.body() {
            LlmBody::Chat(r) => crate::prompt::build(ctx.dep, &r.messages),
            _ => String::new(),
        };
        PredictionStream {
            named: Named::of(ctx.dep),
            chunks: TextChunks::new(&ctx.dep.model, &prompt),
            usage: None,
        }
    }

    fn failed(&self, detail: &str) -> Error {
        let why = serde_json::from_str::<Value>(detail)
            .ok()
            .and_then(|v| {
                v["detail"]
                    .as_str()
                    .or(v["error"].as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| detail.to_owned());
        Error::Upstream {
            provider: self.named.provider,
            deployment: self.named.deployment.clone(),
            status: http::StatusCode::BAD_GATEWAY,
            message: format!("the Replicate prediction did not succeed: {why}"),
            error_type: None,
            code: Some(Box::from("prediction_failed")),
            param: None,
            retry_after: None,
        }
    }
}

impl Translator for PredictionStream {
    fn event(
        &mut self,
        event: RawEvent,
        out: &mut Vec<ChatCompletionChunk>,
    ) -> Result<Flow, Error> {
        let RawEvent::Sse { event, data } = event else {
            return Err(self.named.invalid("not a server-sent event"));
        };
        match event.as_str() {
            "output" => {
                if !data.is_empty() {
                    out.push(self.chunks.text(&data));
                }
                Ok(Flow::Continue)
            }
            "error" => Err(self.failed(&data)),
            "done" => {
                let reason = serde_json::from_str::<Value>(&data)
                    .ok()
                    .and_then(|v| v["reason"].as_str().map(str::to_owned))
                    .filter(|r| !r.is_empty());
                if let Some(reason) = reason {
                    return Err(self.failed(&format!("the stream ended: {reason}")));
                }
                out.push(self.chunks.finish("stop"));
                self.usage = Some(self.chunks.usage(None));
                Ok(Flow::Done)
            }
            _ => Ok(Flow::Continue),
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.clone()
    }
}

//! watsonx's `chat_stream` events as OpenAI chunks: each event's `choices` are OpenAI's
//! already (`delta`, `finish_reason`); the id, `model_id` and `created` are kept, the usage
//! (sent with the last event) is the stream's.

use llmgate_core::wire::chat::ChunkChoice;
use llmgate_core::wire::ChatCompletionChunk;
use llmgate_core::Usage;
use serde_json::{Map, Value};

use crate::dialect::{now, Ctx, Flow, RawEvent, Translator};
use crate::error::{Error, Named};

pub(super) struct ChatStream {
    named: Named,
    model: String,
    created: u64,
    usage: Option<Usage>,
}

impl ChatStream {
    pub(super) fn new(ctx: &Ctx<'_>) -> Self {
        ChatStream {
            named: Named::of(ctx.dep),
            model: ctx.dep.model.to_string(),
            created: now(),
            usage: None,
        }
    }
}

impl Translator for ChatStream {
    fn event(
        &mut self,
        event: RawEvent,
        out: &mut Vec<ChatCompletionChunk>,
    ) -> Result<Flow, Error> {
        let RawEvent::Sse { event, data } = event else {
            return Err(self.named.invalid("not a server-sent event"));
        };
        let data = data.trim();
        if data.is_empty() || event == "close" {
            return Ok(Flow::Continue);
        }
        if data == "[DONE]" {
            return Ok(Flow::Done);
        }
        let mut v: Map<String, Value> = serde_json::from_str(data).map_err(|e| {
            self.named
                .invalid(format!("a stream event is not JSON: {e}"))
        })?;
        if let Some(e) = v.get("errors").and_then(|e| e.pointer("/0/message")) {
            return Err(self.named.invalid(format!(
                "the stream failed: {}",
                e.as_str().unwrap_or_default()
            )));
        }
        if let Some(u) = v.remove("usage") {
            if let Ok(usage) = serde_json::from_value::<Usage>(u) {
                self.usage = Some(usage);
            }
        }
        let choices: Vec<ChunkChoice> = match v.remove("choices") {
            Some(c) => serde_json::from_value(c).map_err(|e| {
                self.named
                    .invalid(format!("unexpected stream choices: {e}"))
            })?,
            None => Vec::new(),
        };
        if choices.is_empty() {
            return Ok(Flow::Continue);
        }
        let model = v
            .get("model_id")
            .and_then(Value::as_str)
            .map_or_else(|| self.model.clone(), str::to_owned);
        out.push(ChatCompletionChunk {
            id: v
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            object: "chat.completion.chunk".to_owned(),
            created: v
                .get("created")
                .and_then(Value::as_u64)
                .unwrap_or(self.created),
            model,
            choices,
            usage: None,
            extra: Map::new(),
        });
        Ok(Flow::Continue)
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.clone()
    }

    fn at_eof(&mut self, _out: &mut Vec<ChatCompletionChunk>) -> bool {
        true
    }
}

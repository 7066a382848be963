//! `streamGenerateContent?alt=sse`: each event is a whole `GenerateContentResponse` with the
//! candidates' new parts, translated into OpenAI chunks as it arrives.
//!
//! Gemini sends no end event: the stream stops after the event in which every candidate has a
//! `finishReason` (that event also carries the final `usageMetadata`). So the translator never
//! says [`Flow::Done`]; [`ChatStream::at_eof`] accepts the end of the body once every choice
//! it has seen has finished (or the prompt was blocked), and anything else is a broken stream.

use std::sync::Arc;

use llmgate_core::wire::chat::{ChunkChoice, Delta, FunctionCall, ToolCall};
use llmgate_core::wire::ChatCompletionChunk;
use llmgate_core::Usage;
use serde_json::{Map, Value};

use super::answer::{self, index, Read};
use super::wire::Response;
use crate::dialect::now;
use crate::dialect::{Ctx, Flow, RawEvent, Translator};
use crate::error::{Error, Named};

/// One stream's state.
pub(super) struct ChatStream {
    dep: Dep,
    /// Set from the first event.
    id: Option<String>,
    model: Option<String>,
    created: u64,
    choices: Vec<ChoiceState>,
    blocked: bool,
    usage: Option<Usage>,
}

/// What the chunks and errors need to know about the deployment (the translator outlives
/// the request's borrow of it).
struct Dep {
    named: Named,
    model: Arc<str>,
}

#[derive(Debug, Clone, Copy)]
struct ChoiceState {
    index: u32,
    tool_calls: u32,
    finished: bool,
}

impl ChatStream {
    pub(super) fn new(ctx: &Ctx<'_>) -> Self {
        ChatStream {
            dep: Dep {
                named: Named::of(ctx.dep),
                model: ctx.dep.model.clone(),
            },
            id: None,
            model: None,
            created: now(),
            choices: Vec::new(),
            blocked: false,
            usage: None,
        }
    }

    fn chunk(&self, index: u32, delta: Delta, finish: Option<&str>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone().unwrap_or_default(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self
                .model
                .clone()
                .unwrap_or_else(|| self.dep.model.to_string()),
            choices: vec![ChunkChoice {
                index,
                delta,
                finish_reason: finish.map(str::to_owned),
                logprobs: None,
            }],
            usage: None,
            extra: Map::new(),
        }
    }

    /// The state of choice `index`, and whether it is new.
    fn choice(&mut self, index: u32) -> (usize, bool) {
        match self.choices.iter().position(|c| c.index == index) {
            Some(at) => (at, false),
            None => {
                self.choices.push(ChoiceState {
                    index,
                    tool_calls: 0,
                    finished: false,
                });
                (self.choices.len() - 1, true)
            }
        }
    }

    fn translate(&mut self, r: &Response, out: &mut Vec<ChatCompletionChunk>) {
        if self.id.is_none() {
            self.id = Some(answer::id(r, "chatcmpl-"));
        }
        if let Some(m) = r.model_version.as_deref().filter(|m| !m.is_empty()) {
            if self.model.is_none() {
                self.model = Some(m.to_owned());
            }
        }
        if let Some(m) = &r.usage_metadata {
            self.usage = Some(answer::usage(m));
        }
        if r.candidates.is_empty() && r.block_reason().is_some() && !self.blocked {
            // The prompt itself was blocked: one choice, filtered.
            self.blocked = true;
            out.push(self.chunk(0, role(), None));
            out.push(self.chunk(0, Delta::default(), Some("content_filter")));
            return;
        }
        for (position, candidate) in r.candidates.iter().enumerate() {
            let idx = candidate.index.unwrap_or(index(position));
            let (at, new) = self.choice(idx);
            let read = Read::of(candidate.content.as_ref().map_or(&[][..], |c| &c.parts));

            let mut delta = if new { role() } else { Delta::default() };
            if let Some(text) = read.text.filter(|t| !t.is_empty()) {
                delta.content = Some(text);
            }
            if let Some(reasoning) = read.reasoning.filter(|t| !t.is_empty()) {
                delta
                    .extra
                    .insert("reasoning_content".to_owned(), Value::String(reasoning));
            }
            if delta != Delta::default() {
                out.push(self.chunk(idx, delta, None));
            }
            for call in read.calls {
                let n = self.choices.get(at).map_or(0, |c| c.tool_calls);
                let first = ToolCall {
                    id: Some(call.id),
                    call_type: Some("function".to_owned()),
                    index: Some(n),
                    function: Some(FunctionCall {
                        name: Some(call.name),
                        arguments: Some(String::new()),
                    }),
                };
                let args = ToolCall {
                    id: None,
                    call_type: None,
                    index: Some(n),
                    function: Some(FunctionCall {
                        name: None,
                        arguments: Some(call.arguments),
                    }),
                };
                for fragment in [first, args] {
                    let delta = Delta {
                        tool_calls: Some(vec![fragment]),
                        ..Delta::default()
                    };
                    out.push(self.chunk(idx, delta, None));
                }
                if let Some(c) = self.choices.get_mut(at) {
                    c.tool_calls += 1;
                }
            }
            if let Some(reason) = candidate.finish_reason.as_deref() {
                let Some(state) = self.choices.get_mut(at) else {
                    continue;
                };
                if !state.finished {
                    state.finished = true;
                    let finish = answer::finish_reason(Some(reason), state.tool_calls > 0);
                    out.push(self.chunk(idx, Delta::default(), Some(finish)));
                }
            }
        }
    }
}

fn role() -> Delta {
    Delta {
        role: Some("assistant".to_owned()),
        ..Delta::default()
    }
}

impl Translator for ChatStream {
    fn event(
        &mut self,
        event: RawEvent,
        out: &mut Vec<ChatCompletionChunk>,
    ) -> Result<Flow, Error> {
        let RawEvent::Sse { data, .. } = event else {
            return Err(self
                .dep
                .named
                .invalid("an event that is not SSE".to_owned()));
        };
        if data.trim().is_empty() {
            return Ok(Flow::Continue);
        }
        let r: Response = serde_json::from_str(&data).map_err(|e| {
            self.dep.named.invalid(format!(
                "a stream event is not a GenerateContentResponse: {e}"
            ))
        })?;
        if let Some(error) = &r.error {
            return Err(super::error::from_value(
                self.dep.named.provider,
                self.dep.named.deployment.clone(),
                None,
                error,
            ));
        }
        self.translate(&r, out);
        Ok(Flow::Continue)
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.clone()
    }

    fn at_eof(&mut self, _out: &mut Vec<ChatCompletionChunk>) -> bool {
        let finished = !self.choices.is_empty() && self.choices.iter().all(|c| c.finished);
        finished || (self.blocked && self.choices.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::ProviderKind;
    use llmgate_core::{DeploymentSpec, Endpoint, LlmRequest};
    use serde_json::json;

    fn stream() -> ChatStream {
        let llm = LlmRequest::parse(
            Endpoint::ChatCompletions,
            br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        let dep = DeploymentSpec::new("g-0", "group", ProviderKind::Gemini, "gemini-2.0-flash");
        ChatStream::new(&Ctx::new(&llm, &dep))
    }

    fn feed(s: &mut ChatStream, v: Value) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        let flow = s.event(
            RawEvent::Sse {
                event: "message".into(),
                data: v.to_string(),
            },
            &mut out,
        )?;
        assert_eq!(flow, Flow::Continue);
        Ok(out
            .into_iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect())
    }

    #[test]
    fn text_stream() {
        let mut s = stream();
        let a = feed(
            &mut s,
            json!({"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "index": 0}],
                   "usageMetadata": {"promptTokenCount": 2, "totalTokenCount": 2},
                   "modelVersion": "gemini-2.0-flash-001", "responseId": "r1"}),
        )
        .unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0]["id"], "r1");
        assert_eq!(a[0]["model"], "gemini-2.0-flash-001");
        assert_eq!(
            a[0]["choices"],
            json!([{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": null}])
        );
        assert!(!s.at_eof(&mut Vec::new()));
        let b = feed(
            &mut s,
            json!({"candidates": [{"content": {"parts": [{"text": "lo"}], "role": "model"},
                   "finishReason": "STOP", "index": 0}],
                   "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 3, "totalTokenCount": 5},
                   "modelVersion": "gemini-2.0-flash-001", "responseId": "r1"}),
        )
        .unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0]["choices"][0]["delta"], json!({"content": "lo"}));
        assert_eq!(
            b[1]["choices"][0],
            json!({"index": 0, "delta": {}, "finish_reason": "stop"})
        );
        assert!(s.at_eof(&mut Vec::new()));
        assert_eq!(s.usage().unwrap().total_tokens, 5);
    }

    #[test]
    fn tool_call_stream() {
        let mut s = stream();
        let a = feed(
            &mut s,
            json!({"candidates": [{"content": {"parts": [
                {"functionCall": {"name": "f", "args": {"x": 1}}}], "role": "model"},
                "finishReason": "STOP", "index": 0}]}),
        )
        .unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a[0]["choices"][0]["delta"], json!({"role": "assistant"}));
        let first = &a[1]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(first["index"], 0);
        assert_eq!(first["type"], "function");
        assert_eq!(first["function"], json!({"name": "f", "arguments": ""}));
        assert!(first["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(
            a[2]["choices"][0]["delta"]["tool_calls"],
            json!([{"index": 0, "function": {"arguments": "{\"x\":1}"}}])
        );
        assert_eq!(a[3]["choices"][0]["finish_reason"], "tool_calls");
        assert!(a[0]["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert_eq!(a[0]["model"], "gemini-2.0-flash");
    }

    #[test]
    fn blocked_prompt_errors_and_cut_streams() {
        let mut s = stream();
        assert!(!s.at_eof(&mut Vec::new()), "an empty stream is broken");
        let a = feed(&mut s, json!({"promptFeedback": {"blockReason": "SAFETY"}})).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[1]["choices"][0]["finish_reason"], "content_filter");
        assert!(s.at_eof(&mut Vec::new()));

        let mut s = stream();
        let e = feed(
            &mut s,
            json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("overloaded"), "{e}");
        let mut out = Vec::new();
        let e = s
            .event(
                RawEvent::Sse {
                    event: "message".into(),
                    data: "{nope".into(),
                },
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(e, Error::InvalidResponse { .. }));
    }
}

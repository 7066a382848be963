//! Chat chunks -> the Responses API's stream events, as each chunk arrives.
//!
//! | chat chunk | Responses events |
//! |---|---|
//! | the first chunk | `response.created`, `response.in_progress` (status `in_progress`) |
//! | `delta.reasoning_content` | a `reasoning` item: `response.output_item.added`, `response.content_part.added`, `response.reasoning_text.delta` |
//! | `delta.content` | a `message` item: `response.output_item.added`, `response.content_part.added`, `response.output_text.delta` |
//! | `delta.tool_calls` starting a call | a `function_call` item: `response.output_item.added` |
//! | `delta.tool_calls[].function.arguments` | `response.function_call_arguments.delta` |
//! | another kind of item, or the end | the open item's `….done` events and `response.output_item.done` |
//! | the usage chunk | kept for the terminal event |
//! | `[DONE]` | `response.completed` (or `response.incomplete` for `length` / `content_filter`) |
//! | an error event, a chunk that does not parse, a stream that breaks or stops short | `response.failed` with the error |
//!
//! Every event carries `sequence_number`, from 0, one more per event; there is no `[DONE]`.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use llmgate_core::sse;
use llmgate_core::wire::{ChatCompletionChunk, Usage};
use serde_json::{json, Map, Value};

use crate::object::{self, End};

/// An output item being built.
#[derive(Debug)]
enum Item {
    Message {
        id: String,
        text: String,
    },
    /// `summary`: the text is the item's summary (`reasoning.summary` was asked for).
    Reasoning {
        id: String,
        text: String,
        summary: bool,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        args: String,
    },
}

impl Item {
    fn id(&self) -> &str {
        match self {
            Item::Message { id, .. } | Item::Reasoning { id, .. } | Item::Call { id, .. } => id,
        }
    }

    /// The item as complete.
    fn done(&self) -> Value {
        match self {
            Item::Message { id, text } => {
                object::message_item(id, "completed", vec![object::output_text(text)])
            }
            Item::Reasoning { id, text, summary } => object::reasoning_done(id, text, *summary),
            Item::Call {
                id,
                call_id,
                name,
                args,
            } => object::function_call_item(id, "completed", call_id, name, args),
        }
    }
}

/// The translation's state; see the module docs.
#[derive(Debug)]
pub(crate) struct Converter {
    base: Map<String, Value>,
    seq: u64,
    started: bool,
    /// The terminal event has been written.
    pub(crate) finished: bool,
    items: Vec<Item>,
    /// The open item's index in `items`.
    open: Option<usize>,
    /// Chat tool-call index -> index in `items`.
    calls: HashMap<u32, usize>,
    end: End,
    usage: Option<Usage>,
    /// The response object of the terminal event, once written.
    pub(crate) last: Option<Value>,
    /// Reasoning goes in the item's summary (`reasoning.summary` was asked for).
    summary: bool,
}

/// How reasoning text streams: as `reasoning_text` content, or as a `summary_text` summary.
struct ReasoningEvents {
    part_added: &'static str,
    delta: &'static str,
    text_done: &'static str,
    part_done: &'static str,
    /// `content_index` or `summary_index`.
    index: &'static str,
}

impl ReasoningEvents {
    fn of(summary: bool) -> Self {
        if summary {
            ReasoningEvents {
                part_added: "response.reasoning_summary_part.added",
                delta: "response.reasoning_summary_text.delta",
                text_done: "response.reasoning_summary_text.done",
                part_done: "response.reasoning_summary_part.done",
                index: "summary_index",
            }
        } else {
            ReasoningEvents {
                part_added: "response.content_part.added",
                delta: "response.reasoning_text.delta",
                text_done: "response.reasoning_text.done",
                part_done: "response.content_part.done",
                index: "content_index",
            }
        }
    }

    fn part(summary: bool, text: &str) -> Value {
        if summary {
            object::summary_text(text)
        } else {
            object::reasoning_text(text)
        }
    }
}

impl Converter {
    /// A converter for the response whose echoed fields are `base` (see [`object::base`]).
    pub(crate) fn new(base: Map<String, Value>) -> Self {
        Converter {
            summary: object::wants_summary(&base),
            base,
            seq: 0,
            started: false,
            finished: false,
            items: Vec::new(),
            open: None,
            calls: HashMap::new(),
            end: End::Completed,
            usage: None,
            last: None,
        }
    }

    fn emit(&mut self, out: &mut VecDeque<Bytes>, kind: &str, mut fields: Value) {
        if let Value::Object(o) = &mut fields {
            o.insert("type".into(), json!(kind));
            o.insert("sequence_number".into(), json!(self.seq));
        }
        self.seq += 1;
        match serde_json::to_vec(&fields) {
            Ok(json) => out.push_back(sse::named(kind, &json)),
            Err(e) => tracing::error!(error = %e, "cannot serialise a /v1/responses event"),
        }
    }

    fn start(&mut self, out: &mut VecDeque<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = Value::Object(self.base.clone());
        self.emit(out, "response.created", json!({"response": response}));
        let response = Value::Object(self.base.clone());
        self.emit(out, "response.in_progress", json!({"response": response}));
    }

    /// One `data:` payload; `true` when the stream is over.
    pub(crate) fn data(&mut self, data: &str, out: &mut VecDeque<Bytes>) -> bool {
        if data.trim() == "[DONE]" {
            let end = self.end.clone();
            self.terminate(end, out);
            return true;
        }
        let v: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                self.fail(
                    "server_error",
                    format!("a stream event that does not parse: {e}"),
                    out,
                );
                return true;
            }
        };
        if let Some(e) = v.get("error").filter(|e| e.is_object()) {
            let text = |k: &str| e.get(k).and_then(Value::as_str);
            let code = text("code")
                .or(text("type"))
                .unwrap_or("server_error")
                .to_owned();
            self.fail(
                &code,
                text("message").unwrap_or("stream error").to_owned(),
                out,
            );
            return true;
        }
        match serde_json::from_value::<ChatCompletionChunk>(v) {
            Ok(chunk) => self.chunk(chunk, out),
            Err(e) => {
                self.fail(
                    "server_error",
                    format!("a stream chunk that does not parse: {e}"),
                    out,
                );
                return true;
            }
        }
        false
    }

    fn chunk(&mut self, chunk: ChatCompletionChunk, out: &mut VecDeque<Bytes>) {
        self.start(out);
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        let Some(choice) = chunk.choices.into_iter().next() else {
            return;
        };
        let delta = choice.delta;
        if let Some(t) = delta.extra.get("reasoning_content").and_then(Value::as_str) {
            if !t.is_empty() {
                self.text_delta(false, t, out);
            }
        }
        if let Some(t) = delta.content.as_deref().filter(|t| !t.is_empty()) {
            self.text_delta(true, t, out);
        }
        for call in delta.tool_calls.into_iter().flatten() {
            let i = call.index.unwrap_or(0);
            let (name, args) = call
                .function
                .map(|f| (f.name, f.arguments))
                .unwrap_or((None, None));
            let known =
                self.calls
                    .get(&i)
                    .copied()
                    .filter(|&at| match (&self.items[at], &call.id) {
                        (Item::Call { call_id, .. }, Some(new)) => new == call_id,
                        _ => true,
                    });
            let at = match known {
                Some(at) => at,
                None => self.start_call(i, call.id, name, out),
            };
            if let Some(args) = args.filter(|a| !a.is_empty()) {
                if let Some(Item::Call { id, args: all, .. }) = self.items.get_mut(at) {
                    all.push_str(&args);
                    let item_id = id.clone();
                    self.emit(
                        out,
                        "response.function_call_arguments.delta",
                        json!({"item_id": item_id, "output_index": at, "delta": args}),
                    );
                }
            }
        }
        if let Some(finish) = choice.finish_reason.as_deref() {
            self.close(out);
            self.end = End::of_finish(Some(finish));
        }
    }

    /// Text (`message`) or reasoning text into the open item of that kind, opened if needed.
    fn text_delta(&mut self, message: bool, delta: &str, out: &mut VecDeque<Bytes>) {
        let open_kind = self.open.and_then(|at| self.items.get(at)).map(|i| {
            matches!(i, Item::Message { .. }) == message && !matches!(i, Item::Call { .. })
        });
        if open_kind != Some(true) {
            self.close(out);
            let at = self.items.len();
            let summary = self.summary;
            let (item, part, added, index) = if message {
                let id = object::new_id("msg");
                (
                    object::message_item(&id, "in_progress", Vec::new()),
                    object::output_text(""),
                    "response.content_part.added",
                    "content_index",
                )
            } else {
                let id = object::new_id("rs");
                let ev = ReasoningEvents::of(summary);
                (
                    object::reasoning_item(&id, Vec::new()),
                    ReasoningEvents::part(summary, ""),
                    ev.part_added,
                    ev.index,
                )
            };
            let id = item["id"].as_str().unwrap_or_default().to_owned();
            self.items.push(if message {
                Item::Message {
                    id: id.clone(),
                    text: String::new(),
                }
            } else {
                Item::Reasoning {
                    id: id.clone(),
                    text: String::new(),
                    summary,
                }
            });
            self.open = Some(at);
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": at, "item": item}),
            );
            let mut fields = json!({"item_id": id, "output_index": at, "part": part});
            fields[index] = json!(0);
            self.emit(out, added, fields);
        }
        let Some(at) = self.open else { return };
        let (id, kind, index) = match self.items.get_mut(at) {
            Some(Item::Message { id, text }) => {
                text.push_str(delta);
                (id.clone(), "response.output_text.delta", "content_index")
            }
            Some(Item::Reasoning { id, text, summary }) => {
                text.push_str(delta);
                let ev = ReasoningEvents::of(*summary);
                (id.clone(), ev.delta, ev.index)
            }
            _ => return,
        };
        let mut fields = json!({"item_id": id, "output_index": at, "delta": delta});
        fields[index] = json!(0);
        if message {
            fields["logprobs"] = json!([]);
        }
        self.emit(out, kind, fields);
    }

    fn start_call(
        &mut self,
        i: u32,
        call_id: Option<String>,
        name: Option<String>,
        out: &mut VecDeque<Bytes>,
    ) -> usize {
        self.close(out);
        let at = self.items.len();
        let id = object::new_id("fc");
        let call_id = call_id.unwrap_or_else(|| object::new_id("call"));
        let name = name.unwrap_or_default();
        let item = object::function_call_item(&id, "in_progress", &call_id, &name, "");
        self.items.push(Item::Call {
            id,
            call_id,
            name,
            args: String::new(),
        });
        self.calls.insert(i, at);
        self.open = Some(at);
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": at, "item": item}),
        );
        at
    }

    /// Closes the open item: its `….done` events, then `response.output_item.done`.
    fn close(&mut self, out: &mut VecDeque<Bytes>) {
        let Some(at) = self.open.take() else { return };
        let Some(item) = self.items.get(at) else {
            return;
        };
        let done = item.done();
        let id = item.id().to_owned();
        let (kind, text, name) = match item {
            Item::Message { text, .. } => (0, text.clone(), String::new()),
            Item::Reasoning { text, summary, .. } => {
                (1 + u8::from(*summary), text.clone(), String::new())
            }
            Item::Call { name, args, .. } => (3, args.clone(), name.clone()),
        };
        let head = json!({"item_id": id, "output_index": at, "content_index": 0});
        let with = |extra: Value| {
            let mut v = head.clone();
            if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
                v.extend(extra);
            }
            v
        };
        match kind {
            0 => {
                self.emit(
                    out,
                    "response.output_text.done",
                    with(json!({"text": text, "logprobs": []})),
                );
                self.emit(
                    out,
                    "response.content_part.done",
                    with(json!({"part": object::output_text(&text)})),
                );
            }
            1 | 2 => {
                let summary = kind == 2;
                let ev = ReasoningEvents::of(summary);
                let head = json!({"item_id": id, "output_index": at, ev.index: 0});
                let with = |extra: Value| {
                    let mut v = head.clone();
                    if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
                        v.extend(extra);
                    }
                    v
                };
                self.emit(out, ev.text_done, with(json!({"text": text})));
                let part = ReasoningEvents::part(summary, &text);
                self.emit(out, ev.part_done, with(json!({"part": part})));
            }
            _ => {
                let v = json!({"item_id": id, "output_index": at, "name": name, "arguments": text});
                self.emit(out, "response.function_call_arguments.done", v);
            }
        }
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": at, "item": done}),
        );
    }

    /// Ends the stream with `end`'s terminal event.
    fn terminate(&mut self, end: End, out: &mut VecDeque<Bytes>) {
        if self.finished {
            return;
        }
        self.start(out);
        self.close(out);
        let output = self.items.iter().map(Item::done).collect();
        let response = object::finish(self.base.clone(), &end, output, self.usage.as_ref());
        self.emit(out, end.event(), json!({"response": response.clone()}));
        self.last = Some(response);
        self.finished = true;
    }

    /// Ends the stream with `response.failed`.
    pub(crate) fn fail(&mut self, code: &str, message: String, out: &mut VecDeque<Bytes>) {
        self.terminate(End::Failed(code.to_owned(), message), out);
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;

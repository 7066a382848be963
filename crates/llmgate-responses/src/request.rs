//! Responses request -> OpenAI chat completion request.
//!
//! | Responses | chat completions |
//! |---|---|
//! | `instructions` | a `system` message, first |
//! | `input` as a string | one `user` message |
//! | `message` items (`user`, `system`, `developer` -> `system`, `assistant`) | messages |
//! | `input_text` / `output_text` / `refusal` parts | `text` parts (one plain part sent as a string) |
//! | `input_image` (`image_url`, `detail`) | `image_url` parts |
//! | `input_file` (`file_data`, `file_id`, `filename`) | `file` parts |
//! | `function_call` items (consecutive ones together) | one `assistant` message's `tool_calls` |
//! | `function_call_output` items | `tool` messages |
//! | `reasoning` items | `reasoning_content` on the next assistant message |
//! | `tools` of type `function` (`name`, `description`, `parameters`, `strict`) | `function` tools |
//! | `tool_choice` `auto` / `none` / `required` / `{type: function, name}` | the same in chat's shape |
//! | `text.format` `json_schema` (`name`, `schema`, `strict`) / `json_object` | `response_format` |
//! | `max_output_tokens` | `max_completion_tokens` |
//! | `reasoning.effort` | `reasoning_effort` |
//! | `temperature`, `top_p`, `parallel_tool_calls`, `user`, `stream` | the same (`stream_options.include_usage` set) |
//! | other fields (`top_k`, `num_ctx`, `frequency_penalty`, `seed`, ...) | passed on as they are |
//!
//! The earlier turns of `previous_response_id` are prepended as items (see `future.rs`).
//! Built-in tools (`web_search`, `file_search`, ...) and `item_reference` items are a 400 on
//! this path: they need a provider that serves the Responses API itself.

use llmgate_core::wire::chat::{
    ContentPart, FunctionCall, FunctionDef, ImageUrl, MessageContent, ResponseFormat,
    StreamOptions, Tool, ToolCall,
};
use llmgate_core::wire::{ChatCompletionRequest, Message};
use llmgate_core::{ApiError, GatewayParams};
use serde_json::{json, Map, Value};

/// A parsed Responses request: what the chat request is made from, and what the response
/// object echoes.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    /// The request's other fields, gateway keys taken out.
    pub(crate) fields: Map<String, Value>,
    /// The request's own input items (a string input as one user message item).
    pub(crate) input: Vec<Value>,
    /// `input` as the client sent it (a string or items), for a deployment that serves the
    /// Responses API itself.
    pub(crate) raw_input: Option<Value>,
    pub(crate) gateway: GatewayParams,
}

impl Parsed {
    /// Whether the client asked for a stream.
    pub(crate) fn stream(&self) -> bool {
        self.fields.get("stream").and_then(Value::as_bool) == Some(true)
    }

    /// Whether the response is stored (`store`, default true).
    pub(crate) fn store(&self) -> bool {
        self.fields.get("store").and_then(Value::as_bool) != Some(false)
    }

    /// `previous_response_id`, when given.
    pub(crate) fn previous(&self) -> Option<&str> {
        self.fields
            .get("previous_response_id")
            .and_then(Value::as_str)
    }

    /// The model the client named.
    pub(crate) fn model(&self) -> &str {
        self.fields
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// Parses a request body. Errors are 400s.
pub(crate) fn parse(body: &[u8]) -> Result<Parsed, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("invalid Responses API request body: {e}"))
            .with_code("invalid_json")
    })?;
    let Value::Object(mut fields) = v else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    // `metadata` is also the gateway's (tags, trace ids): it takes it, the response echoes it.
    let metadata = fields.get("metadata").cloned();
    let gateway = GatewayParams::take_from(&mut fields)?;
    if let Some(m) = metadata {
        fields.insert("metadata".to_owned(), m);
    }
    match fields.get("model") {
        Some(Value::String(m)) if !m.is_empty() => {}
        _ => return Err(invalid("`model` is required (a string)", "model")),
    }
    let raw_input = fields.remove("input");
    let input = match raw_input.clone() {
        Some(Value::String(text)) => vec![user_item(text)],
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            return Err(invalid(
                "`input` must be a string or an array of items",
                "input",
            ))
        }
    };
    match fields.get("previous_response_id") {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(_) => {
            return Err(invalid(
                "`previous_response_id` must be a string",
                "previous_response_id",
            ))
        }
    }
    Ok(Parsed {
        fields,
        input,
        raw_input,
        gateway,
    })
}

/// A user message item holding `text`.
pub(crate) fn user_item(text: String) -> Value {
    json!({"type": "message", "role": "user", "content": text})
}

/// The chat request for `parsed`, with `history` (the earlier turns' items) before its input.
pub(crate) fn to_chat(
    parsed: &Parsed,
    history: &[Value],
) -> Result<ChatCompletionRequest, ApiError> {
    let f = &parsed.fields;
    let mut messages = Vec::new();
    if let Some(text) = f.get("instructions").and_then(Value::as_str) {
        messages.push(message(
            "system",
            Some(MessageContent::Text(text.to_owned())),
        ));
    }
    items_to_messages(history.iter().chain(parsed.input.iter()), &mut messages)?;

    let tools = match f.get("tools") {
        Some(Value::Array(tools)) if !tools.is_empty() => {
            Some(tools.iter().map(tool).collect::<Result<Vec<_>, _>>()?)
        }
        _ => None,
    };
    let tool_choice = f.get("tool_choice").map(tool_choice).transpose()?.flatten();
    let stream = parsed.stream().then_some(true);
    // Fields the Responses API does not have (a provider's own, such as `top_k` or
    // `num_ctx`, and chat's `frequency_penalty`, `presence_penalty`, `seed`) go on as they are.
    let mut extra: Map<String, Value> = f
        .iter()
        .filter(|(k, v)| !RESPONSES_ONLY.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(v) = f.get("parallel_tool_calls").filter(|v| v.is_boolean()) {
        extra.insert("parallel_tool_calls".to_owned(), v.clone());
    }
    if let Some(effort) = f
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .filter(|e| e.is_string())
    {
        extra.insert("reasoning_effort".to_owned(), effort.clone());
    }
    Ok(ChatCompletionRequest {
        model: parsed.model().to_owned(),
        messages,
        stream,
        stream_options: stream.map(|_| StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        tools,
        tool_choice,
        response_format: text_format(f.get("text"))?,
        max_tokens: None,
        max_completion_tokens: f.get("max_output_tokens").and_then(Value::as_u64),
        temperature: f.get("temperature").and_then(Value::as_f64),
        top_p: f.get("top_p").and_then(Value::as_f64),
        n: None,
        stop: None,
        seed: None,
        user: f.get("user").and_then(Value::as_str).map(str::to_owned),
        extra,
    })
}

/// The chat request standing for a Responses request that cannot be translated (for the layers
/// that read the model, the stream flag and an estimate of its size; a deployment that
/// translates refuses it): the model, the stream flag, and the input's text parts as one user
/// message.
pub(crate) fn placeholder(parsed: &Parsed) -> ChatCompletionRequest {
    let mut text = String::new();
    for item in &parsed.input {
        match item.get("content") {
            Some(Value::String(s)) => text.push_str(s),
            Some(Value::Array(parts)) => {
                for p in parts.iter().filter_map(|p| str_of(p, "text")) {
                    text.push_str(p);
                }
            }
            _ => {}
        }
    }
    let stream = parsed.stream().then_some(true);
    ChatCompletionRequest {
        model: parsed.model().to_owned(),
        messages: vec![message("user", Some(MessageContent::Text(text)))],
        stream,
        stream_options: None,
        tools: None,
        tool_choice: None,
        response_format: None,
        max_tokens: None,
        max_completion_tokens: parsed
            .fields
            .get("max_output_tokens")
            .and_then(Value::as_u64),
        temperature: None,
        top_p: None,
        n: None,
        stop: None,
        seed: None,
        user: None,
        extra: Map::new(),
    }
}

/// The Responses API's own request fields: translated above, echoed on the response, or not
/// for a chat provider; every other field is passed on.
const RESPONSES_ONLY: &[&str] = &[
    "model",
    "input",
    "instructions",
    "previous_response_id",
    "store",
    "stream",
    "stream_options",
    "text",
    "reasoning",
    "max_output_tokens",
    "max_tool_calls",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "temperature",
    "top_p",
    "top_logprobs",
    "user",
    "truncation",
    "include",
    "background",
    "conversation",
    "prompt",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "service_tier",
    "metadata",
    "context_management",
];

fn invalid(message: impl Into<String>, param: &'static str) -> ApiError {
    ApiError::bad_request(message.into()).with_param(param)
}

fn message(role: &str, content: Option<MessageContent>) -> Message {
    Message {
        role: role.to_owned(),
        content,
        name: None,
        tool_calls: None,
        tool_call_id: None,
        extra: Map::new(),
    }
}

fn str_of<'a>(item: &'a Value, key: &str) -> Option<&'a str> {
    item.get(key).and_then(Value::as_str)
}

/// Translates the items in order into `out`.
fn items_to_messages<'a>(
    items: impl Iterator<Item = &'a Value>,
    out: &mut Vec<Message>,
) -> Result<(), ApiError> {
    // Reasoning waits for the assistant message it belongs to.
    let mut reasoning = String::new();
    for item in items {
        let kind = str_of(item, "type").unwrap_or("message");
        match kind {
            "message" => {
                let role = match str_of(item, "role") {
                    Some(r @ ("user" | "system" | "assistant")) => r,
                    Some("developer") => "system",
                    _ => {
                        return Err(invalid(
                            "input: a message's `role` must be user, system, developer or assistant",
                            "input",
                        ))
                    }
                };
                let mut m = message(role, Some(content(item.get("content"))?));
                if role == "assistant" && !reasoning.is_empty() {
                    m.extra.insert(
                        "reasoning_content".to_owned(),
                        Value::String(std::mem::take(&mut reasoning)),
                    );
                }
                out.push(m);
            }
            "function_call" => {
                let call = ToolCall {
                    id: str_of(item, "call_id").map(str::to_owned),
                    call_type: Some("function".to_owned()),
                    index: None,
                    function: Some(FunctionCall {
                        name: str_of(item, "name").map(str::to_owned),
                        arguments: Some(str_of(item, "arguments").unwrap_or("").to_owned()),
                    }),
                };
                match out.last_mut() {
                    // Calls after an assistant turn (or after each other) join that turn.
                    Some(last) if last.role == "assistant" && reasoning.is_empty() => {
                        last.tool_calls.get_or_insert_with(Vec::new).push(call);
                    }
                    _ => {
                        let mut m = message("assistant", None);
                        if !reasoning.is_empty() {
                            m.extra.insert(
                                "reasoning_content".to_owned(),
                                Value::String(std::mem::take(&mut reasoning)),
                            );
                        }
                        m.tool_calls = Some(vec![call]);
                        out.push(m);
                    }
                }
            }
            "function_call_output" => {
                let output = match item.get("output") {
                    Some(Value::String(s)) => MessageContent::Text(s.clone()),
                    other => content(other)?,
                };
                let mut m = message("tool", Some(output));
                m.tool_call_id = str_of(item, "call_id").map(str::to_owned);
                out.push(m);
            }
            "reasoning" => reasoning.push_str(&reasoning_text(item)),
            other => {
                return Err(invalid(
                    format!("input: items of type `{other}` are not translated for this model (it does not serve the Responses API itself)"),
                    "input",
                ))
            }
        }
    }
    Ok(())
}

/// A reasoning item's text: its `reasoning_text` content, else its summary.
fn reasoning_text(item: &Value) -> String {
    let texts = |key: &str| -> String {
        item.get(key)
            .and_then(Value::as_array)
            .map(|parts| {
                parts
                    .iter()
                    .filter_map(|p| str_of(p, "text"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    };
    let content = texts("content");
    if content.is_empty() {
        texts("summary")
    } else {
        content
    }
}

/// A message's content (a string or parts) as chat content.
fn content(v: Option<&Value>) -> Result<MessageContent, ApiError> {
    let parts = match v {
        None | Some(Value::Null) => return Ok(MessageContent::Text(String::new())),
        Some(Value::String(s)) => return Ok(MessageContent::Text(s.clone())),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(invalid(
                "input: `content` must be a string or parts",
                "input",
            ))
        }
    };
    let parts = parts.iter().map(part).collect::<Result<Vec<_>, _>>()?;
    if let [p] = parts.as_slice() {
        if p.part_type == "text" {
            if let Some(text) = &p.text {
                return Ok(MessageContent::Text(text.clone()));
            }
        }
    }
    Ok(MessageContent::Parts(parts))
}

fn part(p: &Value) -> Result<ContentPart, ApiError> {
    let text_part = |text: &str| ContentPart {
        part_type: "text".to_owned(),
        text: Some(text.to_owned()),
        image_url: None,
        extra: Map::new(),
    };
    match str_of(p, "type") {
        Some("input_text" | "output_text" | "text") => {
            Ok(text_part(str_of(p, "text").unwrap_or("")))
        }
        Some("refusal") => Ok(text_part(str_of(p, "refusal").unwrap_or(""))),
        Some("input_image") => {
            let Some(url) = str_of(p, "image_url") else {
                return Err(invalid(
                    "input: `input_image` needs an `image_url` (a URL or a data: URL); `file_id` is not translated",
                    "input",
                ));
            };
            Ok(ContentPart {
                part_type: "image_url".to_owned(),
                text: None,
                image_url: Some(ImageUrl {
                    url: url.to_owned(),
                    detail: str_of(p, "detail")
                        .filter(|d| *d != "auto")
                        .map(str::to_owned),
                }),
                extra: Map::new(),
            })
        }
        Some("input_file") => {
            let mut file = Map::new();
            for key in ["file_data", "file_id", "filename"] {
                if let Some(v) = p.get(key).filter(|v| v.is_string()) {
                    file.insert(key.to_owned(), v.clone());
                }
            }
            let mut extra = Map::new();
            extra.insert("file".to_owned(), Value::Object(file));
            Ok(ContentPart {
                part_type: "file".to_owned(),
                text: None,
                image_url: None,
                extra,
            })
        }
        other => Err(invalid(
            format!(
                "input: content parts of type `{}` are not translated",
                other.unwrap_or("?")
            ),
            "input",
        )),
    }
}

fn tool(t: &Value) -> Result<Tool, ApiError> {
    match str_of(t, "type") {
        Some("function") => {
            let Some(name) = str_of(t, "name") else {
                return Err(invalid("tools: a function tool needs a `name`", "tools"));
            };
            Ok(Tool {
                tool_type: "function".to_owned(),
                function: Some(FunctionDef {
                    name: name.to_owned(),
                    description: str_of(t, "description").map(str::to_owned),
                    parameters: t.get("parameters").filter(|p| !p.is_null()).cloned(),
                    strict: t.get("strict").and_then(Value::as_bool),
                }),
                extra: Map::new(),
            })
        }
        other => Err(invalid(
            format!(
                "tools: `{}` tools are not translated for this model (it does not serve the Responses API itself); function tools are",
                other.unwrap_or("?")
            ),
            "tools",
        )),
    }
}

fn tool_choice(c: &Value) -> Result<Option<Value>, ApiError> {
    match c {
        Value::Null => Ok(None),
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => {
            Ok(Some(c.clone()))
        }
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            match o.get("name").and_then(Value::as_str) {
                Some(name) => Ok(Some(
                    json!({"type": "function", "function": {"name": name}}),
                )),
                None => Err(invalid(
                    "tool_choice: a function choice needs a `name`",
                    "tool_choice",
                )),
            }
        }
        _ => Err(invalid(
            "tool_choice: `auto`, `none`, `required` or a function are translated",
            "tool_choice",
        )),
    }
}

/// `text.format` as chat's `response_format`.
fn text_format(text: Option<&Value>) -> Result<Option<ResponseFormat>, ApiError> {
    let Some(format) = text.and_then(|t| t.get("format")).filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match str_of(format, "type") {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(ResponseFormat {
            format_type: "json_object".to_owned(),
            json_schema: None,
        })),
        Some("json_schema") => {
            let mut schema = Map::new();
            for key in ["name", "description", "schema", "strict"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.to_owned(), v.clone());
                }
            }
            Ok(Some(ResponseFormat {
                format_type: "json_schema".to_owned(),
                json_schema: Some(Value::Object(schema)),
            }))
        }
        _ => Err(invalid(
            "text.format: `text`, `json_object` or `json_schema`",
            "text.format",
        )),
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;

//! OpenAI chat request -> Anthropic Messages request.
//!
//! | OpenAI | Anthropic |
//! |---|---|
//! | `system` / `developer` messages (anywhere) | `system` (text blocks, in order) |
//! | `user` content parts: `text`, `image_url`, `file` (PDF data URL) | `text`, `image` (`base64` or `url` source), `document` |
//! | `assistant` `content`, `tool_calls`, `thinking_blocks` | `thinking`, `text`, `tool_use` blocks |
//! | `tool` messages | `tool_result` blocks in a user turn (consecutive ones merged) |
//! | consecutive turns of one role | one turn |
//! | `cache_control` on parts, messages, tools | `cache_control` on blocks (a message's on its last block), tools |
//! | `tools` (`function`) | `tools` (`name`, `description`, `input_schema`); other tool types pass through |
//! | `tool_choice` `auto` / `none` / `required` / named | `auto` / `none` / `any` / `tool` |
//! | `parallel_tool_calls: false` | `tool_choice.disable_parallel_tool_use: true` |
//! | `response_format` `json_object` / `json_schema` | a forced tool [`JSON_TOOL`] with the schema |
//! | `max_completion_tokens`, `max_tokens` | `max_tokens` (default [`DEFAULT_MAX_TOKENS`]) |
//! | `stop` | `stop_sequences` |
//! | `temperature`, `top_p`, `top_k` | the same |
//! | `user` | `metadata.user_id` |
//! | `reasoning_effort` (`minimal`/`low`, `medium`, `high`) | `thinking` with 1024, 2048, 4096 budget tokens |
//! | `thinking` and other unknown fields | passed through |
//!
//! `n > 1`, `seed`, `logit_bias`, `logprobs`, `top_logprobs`, `presence_penalty`,
//! `frequency_penalty`, `audio`, `modalities`, `prediction`, `functions`, `function_call`,
//! `web_search_options`, audio parts: [`Ctx::unsupported`].

use llmgate_core::wire::anthropic::{MessagesRequest, Tool, ToolChoice};
use llmgate_core::wire::{chat, ChatCompletionRequest};
use serde_json::{json, Map, Value};

use super::conversation::conversation;
use super::{DEFAULT_MAX_TOKENS, JSON_TOOL};
use crate::dialect::Ctx;
use crate::error::Error;

/// OpenAI parameters Anthropic has no equivalent for.
const UNSUPPORTED: &[&str] = &[
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "audio",
    "modalities",
    "prediction",
    "functions",
    "function_call",
    "web_search_options",
];

/// Keys this module reads from `extra` or the deployment's defaults; never passed through.
const HANDLED: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "response_format",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "n",
    "stop",
    "stop_sequences",
    "seed",
    "user",
    "thinking",
    "reasoning_effort",
    "parallel_tool_calls",
    "system",
];

/// The Anthropic body for `chat` on `ctx.dep`.
pub(crate) fn body(ctx: &Ctx<'_>, chat: &ChatCompletionRequest) -> Result<MessagesRequest, Error> {
    let ChatCompletionRequest {
        model: _,
        messages,
        stream,
        stream_options: _, // Anthropic always reports usage in its stream.
        tools,
        tool_choice,
        response_format,
        max_tokens,
        max_completion_tokens,
        temperature,
        top_p,
        n,
        stop,
        seed,
        user,
        extra: _, // Read through `ctx.params()`.
    } = chat;
    let params = ctx.params();
    let get = |key: &str| params.raw(key);

    params.refuse(UNSUPPORTED)?;
    let n = params.or(n.map(u64::from), "n", Value::as_u64);
    if n.is_some_and(|n| n > 1) {
        ctx.unsupported("n")?;
    }
    if seed.is_some() || get("seed").is_some_and(|v| !v.is_null()) {
        ctx.unsupported("seed")?;
    }

    let (system, turns) = conversation(ctx, messages)?;

    let (tools_out, choice) = tools_and_choice(ctx, tools.as_deref(), tool_choice.as_ref())?;
    let (tools_out, choice) = with_json_format(ctx, response_format.as_ref(), tools_out, choice)?;
    let choice = match get("parallel_tool_calls").and_then(Value::as_bool) {
        Some(false) => Some(without_parallel(choice)),
        _ => choice,
    };
    let thinking = thinking_of(ctx)?;
    let asked_max = params.or(
        params.or(
            max_completion_tokens.or(*max_tokens),
            "max_completion_tokens",
            Value::as_u64,
        ),
        "max_tokens",
        Value::as_u64,
    );
    let max_tokens = asked_max.unwrap_or_else(|| default_max_tokens(thinking.as_ref()));
    let stop_sequences = stop_sequences_of(ctx, stop.as_ref());
    let user = params.or(user.clone(), "user", |v| v.as_str().map(str::to_owned));
    let (rest, metadata) = rest_and_metadata(ctx, user);

    Ok(MessagesRequest {
        model: ctx.dep.model.to_string(),
        messages: turns,
        max_tokens: Some(max_tokens),
        system,
        stop_sequences,
        stream: stream.filter(|s| *s),
        temperature: params.or(*temperature, "temperature", Value::as_f64),
        top_p: params.or(*top_p, "top_p", Value::as_f64),
        top_k: get("top_k").and_then(Value::as_u64),
        tools: tools_out,
        tool_choice: choice,
        metadata,
        thinking,
        extra: rest,
    })
}

/// The client's tools in Anthropic's shape, and its `tool_choice` (typed, else from the
/// parameters).
fn tools_and_choice(
    ctx: &Ctx<'_>,
    tools: Option<&[chat::Tool]>,
    tool_choice: Option<&Value>,
) -> Result<(Option<Vec<Tool>>, Option<ToolChoice>), Error> {
    let tools_out = tools
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| tool(ctx, t).transpose())
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let choice = match tool_choice.or_else(|| ctx.params().raw("tool_choice")) {
        Some(v) => Some(tool_choice_of(ctx, v)?),
        None => None,
    };
    Ok((tools_out, choice))
}

/// `response_format` as Anthropic has it: a tool named [`JSON_TOOL`] whose input is the
/// schema, forced when it is the only tool and the client chose none.
fn with_json_format(
    ctx: &Ctx<'_>,
    format: Option<&chat::ResponseFormat>,
    mut tools: Option<Vec<Tool>>,
    mut choice: Option<ToolChoice>,
) -> Result<(Option<Vec<Tool>>, Option<ToolChoice>), Error> {
    let schema = match format {
        Some(f) => match f.format_type.as_str() {
            "text" => None,
            "json_object" => Some(json!({"type": "object"})),
            "json_schema" => Some(
                f.json_schema
                    .as_ref()
                    .and_then(|s| s.get("schema"))
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"})),
            ),
            _ => {
                ctx.unsupported("response_format")?;
                None
            }
        },
        None => None,
    };
    if let Some(schema) = schema {
        let list = tools.get_or_insert_with(Vec::new);
        let forced = list.is_empty();
        list.push(Tool {
            name: JSON_TOOL.to_owned(),
            tool_type: None,
            description: None,
            input_schema: Some(schema),
            cache_control: None,
            extra: Map::new(),
        });
        if forced && choice.is_none() {
            choice = Some(ToolChoice::Tool {
                name: JSON_TOOL.to_owned(),
                disable_parallel_tool_use: None,
            });
        }
    }
    Ok((tools, choice))
}

/// `parallel_tool_calls: false`: the choice with parallel tool use turned off.
fn without_parallel(choice: Option<ToolChoice>) -> ToolChoice {
    let off = Some(true);
    match choice {
        None | Some(ToolChoice::Auto { .. }) => ToolChoice::Auto {
            disable_parallel_tool_use: off,
        },
        Some(ToolChoice::Any { .. }) => ToolChoice::Any {
            disable_parallel_tool_use: off,
        },
        Some(ToolChoice::Tool { name, .. }) => ToolChoice::Tool {
            name,
            disable_parallel_tool_use: off,
        },
        Some(ToolChoice::None) => ToolChoice::None,
    }
}

/// Anthropic's `thinking`, as sent or from OpenAI's `reasoning_effort`.
fn thinking_of(ctx: &Ctx<'_>) -> Result<Option<Value>, Error> {
    let params = ctx.params();
    if let Some(t) = params.raw("thinking").filter(|v| !v.is_null()) {
        return Ok(Some(t.clone()));
    }
    Ok(
        match params.raw("reasoning_effort").and_then(Value::as_str) {
            Some("minimal" | "low") => Some(json!({"type": "enabled", "budget_tokens": 1024})),
            Some("medium") => Some(json!({"type": "enabled", "budget_tokens": 2048})),
            Some("high") => Some(json!({"type": "enabled", "budget_tokens": 4096})),
            Some("none") | None => None,
            Some(_) => {
                ctx.unsupported("reasoning_effort")?;
                None
            }
        },
    )
}

/// `max_tokens` when the client set none. Anthropic requires it, and requires it above a
/// thinking budget, so a defaulted limit leaves room.
fn default_max_tokens(thinking: Option<&Value>) -> u64 {
    match thinking
        .and_then(|t| t.get("budget_tokens"))
        .and_then(Value::as_u64)
    {
        Some(budget) if budget >= DEFAULT_MAX_TOKENS => budget + DEFAULT_MAX_TOKENS,
        _ => DEFAULT_MAX_TOKENS,
    }
}

/// OpenAI's `stop` (a string or a list) as `stop_sequences`, else Anthropic's own.
fn stop_sequences_of(ctx: &Ctx<'_>, stop: Option<&Value>) -> Option<Vec<String>> {
    let params = ctx.params();
    match stop.or_else(|| params.raw("stop")) {
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => params
            .raw("stop_sequences")
            .and_then(|v| serde_json::from_value(v.clone()).ok()),
    }
    .filter(|s: &Vec<String>| !s.is_empty())
}

/// Everything else the client (or the deployment) sent: Anthropic's own parameters
/// (`service_tier`, `container`, `mcp_servers`, ...) pass through; a name Anthropic does not
/// know fails there, with its message naming the field. `user` becomes `metadata.user_id`.
fn rest_and_metadata(ctx: &Ctx<'_>, user: Option<String>) -> (Map<String, Value>, Option<Value>) {
    let mut rest = Map::new();
    for (k, v) in ctx.params().raw_entries() {
        if !HANDLED.contains(&k) && !UNSUPPORTED.contains(&k) {
            rest.insert(k.to_owned(), v.clone());
        }
    }
    let metadata = match (user, rest.remove("metadata")) {
        (Some(user), _) => Some(json!({ "user_id": user })),
        (None, m) => m,
    };
    (rest, metadata)
}

/// One tool; `None` when it cannot be sent and is dropped (with `drop_params`).
fn tool(ctx: &Ctx<'_>, t: &chat::Tool) -> Result<Option<Tool>, Error> {
    let cache_control = t.extra.get("cache_control").cloned();
    let tool = match (t.tool_type.as_str(), &t.function) {
        ("function", Some(f)) => Some(Tool {
            name: f.name.clone(),
            tool_type: None,
            description: f.description.clone(),
            input_schema: Some(
                f.parameters
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            ),
            cache_control,
            extra: Map::new(),
        }),
        ("function", None) => None,
        // Anthropic's own tools (`web_search_20250305`, `bash_20250124`, ...) pass through.
        (other, _) => {
            let mut v = t.extra.clone();
            v.insert("type".to_owned(), Value::String(other.to_owned()));
            serde_json::from_value::<Tool>(Value::Object(v)).ok()
        }
    };
    if tool.is_none() {
        ctx.unsupported("tools")?;
    }
    Ok(tool)
}

fn tool_choice_of(ctx: &Ctx<'_>, v: &Value) -> Result<ToolChoice, Error> {
    let named = |name: &str| ToolChoice::Tool {
        name: name.to_owned(),
        disable_parallel_tool_use: None,
    };
    let choice = match v {
        Value::String(s) => match s.as_str() {
            "auto" => Some(ToolChoice::Auto {
                disable_parallel_tool_use: None,
            }),
            "none" => Some(ToolChoice::None),
            "required" | "any" => Some(ToolChoice::Any {
                disable_parallel_tool_use: None,
            }),
            _ => None,
        },
        Value::Object(o) => match o.get("function").and_then(|f| f.get("name")) {
            Some(Value::String(name)) => Some(named(name)),
            // Already in Anthropic's shape.
            _ => serde_json::from_value(v.clone()).ok(),
        },
        _ => None,
    };
    match choice {
        Some(c) => Ok(c),
        None => {
            ctx.unsupported("tool_choice")?;
            Ok(ToolChoice::Auto {
                disable_parallel_tool_use: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{DeploymentSpec, Endpoint, LlmBody, LlmRequest, ProviderKind};

    fn build(v: Value, drop: bool) -> Result<Value, Error> {
        let llm = LlmRequest::parse(Endpoint::ChatCompletions, v.to_string().as_bytes()).unwrap();
        let mut dep = DeploymentSpec::new("a-0", "g", ProviderKind::Anthropic, "claude-x");
        dep.drop_params = drop;
        let ctx = Ctx::new(&llm, &dep);
        let LlmBody::Chat(chat) = llm.body() else {
            panic!()
        };
        body(&ctx, chat).map(|b| serde_json::to_value(b).unwrap())
    }

    #[test]
    fn system_turns_and_merging() {
        let v = build(
            json!({"model": "g", "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "a"},
                {"role": "user", "content": [{"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}}]},
                {"role": "developer", "content": "and kind"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
                    {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "one"},
                {"role": "tool", "tool_call_id": "c2", "content": "two"},
                {"role": "user", "content": "thanks"}
            ]}),
            false,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "model": "claude-x", "max_tokens": 4096,
                "system": [{"type": "text", "text": "be brief"}, {"type": "text", "text": "and kind"}],
                "messages": [
                    {"role": "user", "content": [
                        {"type": "text", "text": "a"},
                        {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}}]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "c1", "name": "f", "input": {"x": 1}},
                        {"type": "tool_use", "id": "c2", "name": "g", "input": {}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "c1", "content": "one"},
                        {"type": "tool_result", "tool_use_id": "c2", "content": "two"},
                        {"type": "text", "text": "thanks"}]}
                ]
            })
        );
    }

    #[test]
    fn images_tools_choice_and_params() {
        let v = build(
            json!({"model": "g", "messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg", "detail": "low"}}]}],
                "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                    "parameters": {"type": "object"}}, "cache_control": {"type": "ephemeral"}}],
                "tool_choice": "required", "parallel_tool_calls": false,
                "stop": "END", "temperature": 0.5, "top_p": 0.9, "top_k": 5, "user": "u1",
                "max_completion_tokens": 77, "stream": true, "stream_options": {"include_usage": true},
                "service_tier": "auto"}),
            false,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "model": "claude-x", "max_tokens": 77, "stream": true,
                "messages": [{"role": "user", "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}}]}],
                "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"},
                    "cache_control": {"type": "ephemeral"}}],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
                "stop_sequences": ["END"], "temperature": 0.5, "top_p": 0.9, "top_k": 5,
                "metadata": {"user_id": "u1"}, "service_tier": "auto"
            })
        );
    }

    #[test]
    fn json_schema_is_a_forced_tool() {
        let v = build(
            json!({"model": "g", "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "s",
                    "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}}),
            false,
        )
        .unwrap();
        assert_eq!(
            v["tools"],
            json!([{"name": "json_tool_call", "input_schema": {"type": "object",
                "properties": {"a": {"type": "string"}}}}])
        );
        assert_eq!(
            v["tool_choice"],
            json!({"type": "tool", "name": "json_tool_call"})
        );
    }

    #[test]
    fn unsupported_params_fail_or_drop() {
        let req = json!({"model": "g", "messages": [{"role": "user", "content": "x"}],
            "n": 2, "logit_bias": {"1": 1}, "presence_penalty": 0.1, "seed": 3});
        let e = build(req.clone(), false).unwrap_err();
        assert!(
            matches!(
                e,
                Error::UnsupportedParam {
                    param: "logit_bias",
                    ..
                }
            ),
            "{e}"
        );
        let v = build(req, true).unwrap();
        for k in ["n", "logit_bias", "presence_penalty", "seed"] {
            assert!(v.get(k).is_none(), "{k}: {v}");
        }
    }

    #[test]
    fn thinking_from_reasoning_effort_and_back_in_history() {
        let v = build(
            json!({"model": "g", "reasoning_effort": "high", "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": "ok", "thinking_blocks": [
                    {"type": "thinking", "thinking": "t", "signature": "s"}]},
                {"role": "user", "content": "y"}]}),
            false,
        )
        .unwrap();
        assert_eq!(
            v["thinking"],
            json!({"type": "enabled", "budget_tokens": 4096})
        );
        assert_eq!(v["max_tokens"], 8192);
        assert_eq!(
            v["messages"][1]["content"],
            json!([{"type": "thinking", "thinking": "t", "signature": "s"},
                   {"type": "text", "text": "ok"}])
        );
    }
}

//! The Converse request body, from an OpenAI chat (or legacy completions) request.
//!
//! | OpenAI | Converse |
//! |---|---|
//! | `messages` | `system`, `messages` (see [`super::messages`]) |
//! | `max_completion_tokens` / `max_tokens` | `inferenceConfig.maxTokens` |
//! | `temperature`, `top_p` | `inferenceConfig.temperature`, `.topP` |
//! | `stop` (a string or a list) | `inferenceConfig.stopSequences` |
//! | `tools`, `tool_choice` (`auto`, `required`, a named function) | `toolConfig` (`auto`, `any`, `tool`) |
//! | `reasoning_effort` (Anthropic models) | `additionalModelRequestFields.thinking` (1024/2048/4096 tokens) |
//! | `top_k` | `additionalModelRequestFields.top_k` (Nova: `.inferenceConfig.topK`) |
//! | other fields OpenAI does not define (`thinking`, ...) | `additionalModelRequestFields` |
//! | `guardrailConfig`, `performanceConfig`, `requestMetadata`, `promptVariables`, `additionalModelResponseFieldPaths`, `additionalModelRequestFields` | sent as they are |
//!
//! The deployment's `default_params` apply to keys the client did not send. OpenAI parameters
//! Converse has no field for ([`UNSUPPORTED`], `n` > 1, `tool_choice: "none"`, JSON
//! `response_format`, ...) go through [`Ctx::unsupported`].

use bytes::Bytes;
use llmgate_core::wire::chat::{MessageContent, Tool};
use llmgate_core::wire::{ChatCompletionRequest, CompletionRequest, Message};
use serde_json::{json, Map, Value};

use super::{messages, model_id};
use crate::dialect::{Ctx, Params};
use crate::error::Error;

/// OpenAI parameters that Converse cannot take (some only for certain values, see
/// [`is_harmless`]).
const UNSUPPORTED: &[&str] = &[
    "n",
    "response_format",
    "reasoning_effort",
    "parallel_tool_calls",
    "logprobs",
    "top_logprobs",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "seed",
    "user",
    "service_tier",
    "store",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
    "prompt_cache_key",
    "safety_identifier",
    "verbosity",
    "echo",
    "best_of",
    "suffix",
];

/// Converse's own top-level fields, passed through when a client sends them.
const BEDROCK_FIELDS: &[&str] = &[
    "guardrailConfig",
    "performanceConfig",
    "requestMetadata",
    "promptVariables",
    "additionalModelResponseFieldPaths",
];

/// Keys that are the request's structure, not parameters.
const STRUCTURE: &[&str] = &[
    "model",
    "messages",
    "prompt",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "max_tokens",
    "max_completion_tokens",
];

/// The output limit: the client's (`max_completion_tokens` first), else the default's.
fn max_tokens<'a>(client: &'a Map<String, Value>, ctx: &Ctx<'a>) -> Option<&'a Value> {
    fn pick(m: &Map<String, Value>) -> Option<&Value> {
        ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| m.get(*k).filter(|v| !v.is_null()))
    }
    pick(client).or_else(|| pick(&ctx.dep.default_params))
}

fn put<T: serde::Serialize>(map: &mut Map<String, Value>, key: &str, value: Option<&T>) {
    if let Some(v) = value.and_then(|v| serde_json::to_value(v).ok()) {
        map.insert(key.to_owned(), v);
    }
}

/// The Converse body for a chat request.
pub(super) fn converse(ctx: &Ctx<'_>, req: &ChatCompletionRequest) -> Result<Bytes, Error> {
    let mut client = req.extra.clone();
    put(&mut client, "max_tokens", req.max_tokens.as_ref());
    put(
        &mut client,
        "max_completion_tokens",
        req.max_completion_tokens.as_ref(),
    );
    put(&mut client, "temperature", req.temperature.as_ref());
    put(&mut client, "top_p", req.top_p.as_ref());
    put(&mut client, "n", req.n.as_ref());
    put(&mut client, "stop", req.stop.as_ref());
    put(&mut client, "seed", req.seed.as_ref());
    put(&mut client, "user", req.user.as_ref());
    put(&mut client, "tool_choice", req.tool_choice.as_ref());
    put(&mut client, "response_format", req.response_format.as_ref());
    body(ctx, &req.messages, req.tools.as_deref(), &client)
}

/// The Converse body for a legacy completions request: its prompt as one user message.
pub(super) fn converse_prompt(ctx: &Ctx<'_>, req: &CompletionRequest) -> Result<Bytes, Error> {
    let prompt = match &req.prompt {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.len() == 1 => items[0].as_str().map(str::to_owned),
        _ => None,
    };
    let Some(prompt) = prompt else {
        return Err(ctx.unsupported_endpoint("/v1/completions with several prompts or token ids"));
    };
    let messages = [Message {
        role: "user".to_owned(),
        content: Some(MessageContent::Text(prompt)),
        name: None,
        tool_calls: None,
        tool_call_id: None,
        extra: Map::new(),
    }];
    let mut client = req.extra.clone();
    put(&mut client, "max_tokens", req.max_tokens.as_ref());
    body(ctx, &messages, None, &client)
}

/// Whether an OpenAI parameter's value asks for nothing Converse would have to do.
fn is_harmless(key: &str, value: &Value) -> bool {
    match key {
        "n" => value.as_u64() == Some(1),
        "logprobs" => value == &Value::Bool(false),
        "parallel_tool_calls" => value == &Value::Bool(true),
        "response_format" => value.get("type").and_then(Value::as_str) == Some("text"),
        _ => false,
    }
}

fn is_anthropic(model: &str) -> bool {
    model.contains("anthropic.")
}

fn is_nova(model: &str) -> bool {
    model.contains("amazon.nova")
}

fn body(
    ctx: &Ctx<'_>,
    messages: &[Message],
    tools: Option<&[Tool]>,
    client: &Map<String, Value>,
) -> Result<Bytes, Error> {
    // The typed fields are in `client` already (see `put`): one view reads them all.
    let params = Params::new(ctx, client);
    let model = model_id(ctx.dep);
    let conversation = messages::conversation(ctx, messages)?;
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(conversation.messages));
    if !conversation.system.is_empty() {
        body.insert("system".into(), Value::Array(conversation.system));
    }

    let tools = match tools {
        Some(t) if !t.is_empty() => messages::tools(ctx, t)?,
        _ => Vec::new(),
    };
    let choice = messages::tool_choice(ctx, params.get("tool_choice"), !tools.is_empty())?;
    if !tools.is_empty() {
        let mut tool_config = Map::new();
        tool_config.insert("tools".into(), Value::Array(tools));
        if let Some(c) = choice {
            tool_config.insert("toolChoice".into(), c);
        }
        body.insert("toolConfig".into(), Value::Object(tool_config));
    }

    let mut inference = Map::new();
    if let Some(max) = max_tokens(client, ctx) {
        inference.insert("maxTokens".into(), max.clone());
    }
    let mut additional = Map::new();
    let mut explicit_additional = None;
    for (key, value) in params.entries() {
        match key {
            k if STRUCTURE.contains(&k) => {}
            "temperature" => {
                inference.insert("temperature".into(), value.clone());
            }
            "top_p" => {
                inference.insert("topP".into(), value.clone());
            }
            "stop" => match value {
                Value::String(s) => {
                    inference.insert("stopSequences".into(), json!([s]));
                }
                Value::Array(a) if a.is_empty() => {}
                other => {
                    inference.insert("stopSequences".into(), other.clone());
                }
            },
            "top_k" if is_nova(model) => {
                additional.insert("inferenceConfig".into(), json!({"topK": value}));
            }
            "reasoning_effort" if is_anthropic(model) => match thinking_budget(value) {
                Some(budget) => {
                    additional.insert(
                        "thinking".into(),
                        json!({"type": "enabled", "budget_tokens": budget}),
                    );
                }
                None => ctx.unsupported("reasoning_effort")?,
            },
            "additionalModelRequestFields" => match value {
                Value::Object(o) => explicit_additional = Some(o),
                _ => ctx.unsupported("additionalModelRequestFields")?,
            },
            k if BEDROCK_FIELDS.contains(&k) => {
                body.insert(k.to_owned(), value.clone());
            }
            k if is_harmless(k, value) => {}
            k => match UNSUPPORTED.iter().find(|u| **u == k) {
                Some(name) => ctx.unsupported(name)?,
                // Not an OpenAI parameter: a model-specific one, as LiteLLM sends it.
                None => {
                    additional.insert(k.to_owned(), value.clone());
                }
            },
        }
    }
    if let Some(explicit) = explicit_additional {
        additional.extend(explicit.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if !additional.is_empty() {
        body.insert(
            "additionalModelRequestFields".into(),
            Value::Object(additional),
        );
    }
    serde_json::to_vec(&Value::Object(body))
        .map(Bytes::from)
        .map_err(|e| ctx.config(format!("could not serialise the request body: {e}")))
}

/// LiteLLM's thinking budgets for `reasoning_effort` on Anthropic models.
fn thinking_budget(effort: &Value) -> Option<u64> {
    match effort.as_str()? {
        "low" | "minimal" => Some(1024),
        "medium" => Some(2048),
        "high" => Some(4096),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{DeploymentSpec, Endpoint, LlmBody, LlmRequest, ProviderKind};

    fn dep(model: &str) -> DeploymentSpec {
        DeploymentSpec::new("b-0", "m", ProviderKind::Bedrock, model)
    }

    fn translate(dep: &DeploymentSpec, body: Value) -> Result<Value, Error> {
        let llm =
            LlmRequest::parse(Endpoint::ChatCompletions, body.to_string().as_bytes()).unwrap();
        let ctx = Ctx::new(&llm, dep);
        let LlmBody::Chat(req) = llm.body() else {
            unreachable!()
        };
        converse(&ctx, req).map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn parameters_map_and_defaults_fill_in() {
        let mut d = dep("us.anthropic.claude-3-7-sonnet-20250219-v1:0");
        d.default_params.insert("temperature".into(), json!(0.1));
        d.default_params.insert("max_tokens".into(), json!(100));
        d.default_params.insert("top_k".into(), json!(40));
        let out = translate(
            &d,
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                   "max_completion_tokens": 50, "top_p": 0.9, "stop": "END",
                   "n": 1, "reasoning_effort": "medium",
                   "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "messages": [{"role": "user", "content": [{"text": "hi"}]}],
                "inferenceConfig": {"maxTokens": 50, "temperature": 0.1, "topP": 0.9,
                                    "stopSequences": ["END"]},
                "additionalModelRequestFields": {
                    "top_k": 40, "thinking": {"type": "enabled", "budget_tokens": 2048}},
                "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"}
            })
        );
        let out = translate(
            &dep("amazon.nova-lite-v1:0"),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_k": 5}),
        )
        .unwrap();
        assert_eq!(
            out["additionalModelRequestFields"],
            json!({"inferenceConfig": {"topK": 5}})
        );
    }

    #[test]
    fn unsupported_parameters_fail_or_drop() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                          "seed": 7, "presence_penalty": 0.5});
        let err = translate(&dep("amazon.nova-lite-v1:0"), body.clone()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnsupportedParam {
                    param: "presence_penalty",
                    ..
                }
            ),
            "{err:?}"
        );
        let mut d = dep("amazon.nova-lite-v1:0");
        d.drop_params = true;
        let out = translate(&d, body).unwrap();
        assert_eq!(
            out,
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
        );
        let err = translate(
            &dep("meta.llama3-8b-instruct-v1:0"),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                   "response_format": {"type": "json_object"}}),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            Error::UnsupportedParam {
                param: "response_format",
                ..
            }
        ));
    }

    #[test]
    fn conversation_with_tools() {
        let out = translate(
            &dep("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            json!({"model": "m",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": [
                        {"type": "text", "text": "weather?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                    {"role": "assistant", "content": "", "tool_calls": [
                        {"id": "t1", "type": "function",
                         "function": {"name": "w", "arguments": "{\"c\":\"P\"}"}},
                        {"id": "t2", "type": "function",
                         "function": {"name": "w", "arguments": "{\"c\":\"L\"}"}}]},
                    {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
                    {"role": "tool", "tool_call_id": "t2", "content": "rain"},
                    {"role": "user", "content": "thanks", "cache_control": {"type": "ephemeral"}}
                ],
                "tools": [{"type": "function", "function": {"name": "w", "description": "weather",
                           "parameters": {"type": "object", "properties": {"c": {"type": "string"}}}}}],
                "tool_choice": "required"}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "system": [{"text": "be brief"}],
                "messages": [
                    {"role": "user", "content": [
                        {"text": "weather?"},
                        {"image": {"format": "png", "source": {"bytes": "AAAA"}}}]},
                    {"role": "assistant", "content": [
                        {"toolUse": {"toolUseId": "t1", "name": "w", "input": {"c": "P"}}},
                        {"toolUse": {"toolUseId": "t2", "name": "w", "input": {"c": "L"}}}]},
                    {"role": "user", "content": [
                        {"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}},
                        {"toolResult": {"toolUseId": "t2", "content": [{"text": "rain"}]}},
                        {"text": "thanks"},
                        {"cachePoint": {"type": "default"}}]}
                ],
                "toolConfig": {
                    "tools": [{"toolSpec": {"name": "w", "description": "weather",
                        "inputSchema": {"json": {"type": "object",
                            "properties": {"c": {"type": "string"}}}}}}],
                    "toolChoice": {"any": {}}}
            })
        );
    }

    #[test]
    fn links_and_none_tool_choice_are_unsupported() {
        let d = dep("anthropic.claude-3-5-sonnet-20240620-v1:0");
        let err = translate(
            &d,
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            Error::UnsupportedParam {
                param: "image_url",
                ..
            }
        ));
        let err = translate(
            &d,
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                   "tools": [{"type": "function", "function": {"name": "f"}}],
                   "tool_choice": "none"}),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            Error::UnsupportedParam {
                param: "tool_choice",
                ..
            }
        ));
    }
}

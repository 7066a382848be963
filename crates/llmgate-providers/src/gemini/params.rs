//! OpenAI request parameters to Gemini's `generationConfig`, `tools`, `toolConfig` and the
//! other top-level fields (see the table in [`super`]).
//!
//! The parameters are gathered into one map first, through the shared view
//! ([`crate::dialect::Params`]): the client's typed fields, then its other fields (a `null`
//! among them hides the default), then the deployment's `default_params` for the keys the
//! client did not send; so the client wins and both go through the same rules.

use std::sync::{Mutex, PoisonError};

use llmgate_core::wire::{ChatCompletionRequest, CompletionRequest};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{schema, tools};
use crate::dialect::{Ctx, Params};
use crate::error::Error;

/// Gemini's own `generationConfig` fields, passed as they are when a client or a deployment
/// names them.
const GENERATION_CONFIG: &[&str] = &[
    "topK",
    "thinkingConfig",
    "responseModalities",
    "mediaResolution",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
];

/// Body keys that are never parameters here: they are the request itself.
const NOT_PARAMS: &[&str] = &["model", "messages", "prompt", "stream", "stream_options"];

/// A chat request's parameters over the deployment's defaults.
pub(super) fn of_chat(ctx: &Ctx<'_>, r: &ChatCompletionRequest) -> Map<String, Value> {
    let mut p = Map::new();
    // Destructured without `..`: a field added to the wire type fails to compile here
    // instead of being silently left out.
    let ChatCompletionRequest {
        model: _,
        messages: _,
        stream: _,
        stream_options: _,
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
        extra,
    } = r;
    set(&mut p, "tools", tools);
    set(&mut p, "tool_choice", tool_choice);
    set(&mut p, "response_format", response_format);
    set(&mut p, "max_tokens", max_tokens);
    set(&mut p, "max_completion_tokens", max_completion_tokens);
    set(&mut p, "temperature", temperature);
    set(&mut p, "top_p", top_p);
    set(&mut p, "n", n);
    set(&mut p, "stop", stop);
    set(&mut p, "seed", seed);
    set(&mut p, "user", user);
    gather(ctx, p, extra, &[])
}

/// A legacy completion's parameters over the deployment's defaults.
pub(super) fn of_completion(ctx: &Ctx<'_>, r: &CompletionRequest) -> Map<String, Value> {
    let mut p = Map::new();
    let CompletionRequest {
        model: _,
        prompt: _,
        stream: _,
        stream_options: _,
        max_tokens,
        extra,
    } = r;
    set(&mut p, "max_tokens", max_tokens);
    gather(ctx, p, extra, &[])
}

/// `typed` (the client's typed fields that are set), then the client's other fields `extra`
/// and the deployment's defaults as [`Params::raw_entries`] reads them, without the keys that
/// are the request itself (and without `skip`).
pub(super) fn gather(
    ctx: &Ctx<'_>,
    mut typed: Map<String, Value>,
    extra: &Map<String, Value>,
    skip: &[&str],
) -> Map<String, Value> {
    for (k, v) in Params::new(ctx, extra).raw_entries() {
        if !NOT_PARAMS.contains(&k) && !skip.contains(&k) && !typed.contains_key(k) {
            typed.insert(k.to_owned(), v.clone());
        }
    }
    typed
}

fn set<T: Serialize>(p: &mut Map<String, Value>, key: &str, value: &Option<T>) {
    if let Some(v) = value.as_ref().and_then(|v| serde_json::to_value(v).ok()) {
        p.insert(key.to_owned(), v);
    }
}

/// Translates `params` into `body` (a `generateContent` body).
pub(super) fn apply(
    ctx: &Ctx<'_>,
    mut params: Map<String, Value>,
    body: &mut Map<String, Value>,
) -> Result<(), Error> {
    let mut config = Map::new();
    // `max_completion_tokens` wins over its legacy name.
    let max_completion = params.remove("max_completion_tokens");
    let max_tokens = params.remove("max_tokens");
    if let Some(max) = max_completion.filter(|v| !v.is_null()).or(max_tokens) {
        if !max.is_null() {
            config.insert("maxOutputTokens".to_owned(), max);
        }
    }
    let tool_count = params
        .get("tools")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    for (key, value) in params {
        if value.is_null() {
            continue;
        }
        let mut gen = |name: &str, v: Value| {
            config.insert(name.to_owned(), v);
        };
        match key.as_str() {
            "temperature" => gen("temperature", value),
            "top_p" => gen("topP", value),
            "top_k" => gen("topK", value),
            "n" => gen("candidateCount", value),
            "seed" => gen("seed", value),
            "presence_penalty" => gen("presencePenalty", value),
            "frequency_penalty" => gen("frequencyPenalty", value),
            "stop" => match value {
                Value::String(s) => gen("stopSequences", json!([s])),
                Value::Array(_) => gen("stopSequences", value),
                _ => ctx.unsupported("stop")?,
            },
            "response_format" => response_format(ctx, &value, &mut config)?,
            "reasoning_effort" => {
                if let Some(thinking) = thinking(ctx, &value)? {
                    config.insert("thinkingConfig".to_owned(), thinking);
                }
            }
            "tools" => tools::tools(ctx, &value, body)?,
            "tool_choice" => tools::tool_choice(ctx, &value, body)?,
            // Gemini may call several functions at once; it cannot be told not to.
            "parallel_tool_calls" if value == Value::Bool(true) || tool_count <= 1 => {}
            "parallel_tool_calls" => ctx.unsupported("parallel_tool_calls")?,
            "safety_settings" | "safetySettings" => {
                body.insert("safetySettings".to_owned(), value);
            }
            "cached_content" | "cachedContent" => {
                body.insert("cachedContent".to_owned(), value);
            }
            k if GENERATION_CONFIG.contains(&k) => gen(k, value),
            // Values that ask for nothing more than Gemini does anyway.
            "logprobs" | "store" | "echo" if value == Value::Bool(false) => {}
            _ => unsupported_key(ctx, &key)?,
        }
    }
    if !config.is_empty() {
        body.insert("generationConfig".to_owned(), Value::Object(config));
    }
    Ok(())
}

fn response_format(
    ctx: &Ctx<'_>,
    value: &Value,
    config: &mut Map<String, Value>,
) -> Result<(), Error> {
    match value.get("type").and_then(Value::as_str) {
        Some("text") => {}
        Some("json_object") => {
            config.insert("responseMimeType".to_owned(), json!("application/json"));
        }
        Some("json_schema") => {
            config.insert("responseMimeType".to_owned(), json!("application/json"));
            if let Some(s) = value.pointer("/json_schema/schema") {
                config.insert("responseSchema".to_owned(), schema::for_gemini(s));
            }
        }
        _ => ctx.unsupported("response_format")?,
    }
    Ok(())
}

/// `reasoning_effort` as `thinkingConfig`, as LiteLLM maps it: a `thinkingLevel` for Gemini 3
/// models, a `thinkingBudget` (in tokens) for earlier ones.
fn thinking(ctx: &Ctx<'_>, value: &Value) -> Result<Option<Value>, Error> {
    let effort = match value {
        Value::String(s) => Some(s.as_str()),
        // The OpenAI Agents SDK sends `{"effort": "high", "summary": "auto"}`.
        Value::Object(o) => o.get("effort").and_then(Value::as_str),
        _ => None,
    };
    let model = ctx.dep.model.to_ascii_lowercase();
    let config = effort.and_then(|effort| {
        if model.contains("gemini-3") {
            thinking_level(effort, &model)
        } else {
            thinking_budget(effort, &model)
        }
    });
    match config {
        Some(c) => Ok(Some(c)),
        None => ctx.unsupported("reasoning_effort").map(|()| None),
    }
}

fn thinking_level(effort: &str, model: &str) -> Option<Value> {
    let flash = model.contains("gemini-3-flash") || model.contains("gemini-3.1-flash");
    let pro_31 = model.contains("gemini-3.1-pro-preview");
    let (level, thoughts) = match effort {
        "minimal" => (if flash { "minimal" } else { "low" }, true),
        "low" => ("low", true),
        "medium" => (if flash || pro_31 { "medium" } else { "high" }, true),
        "high" => ("high", true),
        // Gemini 3 cannot turn thinking off: the least there is.
        "none" | "disable" => (if flash { "minimal" } else { "low" }, false),
        _ => return None,
    };
    Some(json!({"thinkingLevel": level, "includeThoughts": thoughts}))
}

fn thinking_budget(effort: &str, model: &str) -> Option<Value> {
    let (budget, thoughts) = match effort {
        "minimal" if model.contains("gemini-2.5-flash-lite") => (512, true),
        "minimal" if model.contains("gemini-2.5-pro") => (128, true),
        "minimal" if model.contains("gemini-2.5-flash") => (1, true),
        "minimal" => (128, true),
        "low" => (1024, true),
        "medium" => (2048, true),
        "high" => (4096, true),
        "none" | "disable" => (0, false),
        _ => return None,
    };
    Some(json!({"thinkingBudget": budget, "includeThoughts": thoughts}))
}

/// Parameter names the errors can name without interning them.
const KNOWN: &[&str] = &[
    "user",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "service_tier",
    "store",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
    "verbosity",
    "safety_identifier",
    "prompt_cache_key",
    "thinking",
    "echo",
    "best_of",
    "suffix",
    "encoding_format",
    "dimensions",
    "input_type",
];

/// The most distinct unknown parameter names interned for error messages, and the longest.
const INTERNED_MAX: usize = 256;
const INTERNED_MAX_LEN: usize = 64;

/// `ctx.unsupported` for `key`, which may be any string a client sent.
///
/// [`Error::UnsupportedParam`] names its parameter with a `&'static str`. Known names are
/// constants; other names are interned once each, in a set bounded by count and length so
/// that clients cannot grow it without limit; past the bound the error names no parameter.
pub(crate) fn unsupported_key(ctx: &Ctx<'_>, key: &str) -> Result<(), Error> {
    if ctx.drop_params {
        return ctx.unsupported("(dropped parameter)");
    }
    ctx.unsupported(intern(key))
}

fn intern(key: &str) -> &'static str {
    const UNNAMED: &str = "(an unrecognised parameter)";
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    if let Some(name) = KNOWN.iter().find(|n| **n == key) {
        return name;
    }
    if key.len() > INTERNED_MAX_LEN {
        return UNNAMED;
    }
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(name) = names.iter().find(|n| **n == key) {
        return name;
    }
    if names.len() >= INTERNED_MAX {
        return UNNAMED;
    }
    let name: &'static str = Box::leak(key.to_owned().into_boxed_str());
    names.push(name);
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{DeploymentSpec, Endpoint, LlmBody, LlmRequest, ProviderKind};

    fn mapped(
        v: Value,
        model: &str,
        defaults: Value,
        drop_params: bool,
    ) -> Result<Map<String, Value>, Error> {
        let llm = LlmRequest::parse(Endpoint::ChatCompletions, v.to_string().as_bytes()).unwrap();
        let mut dep = DeploymentSpec::new("g-0", "group", ProviderKind::Gemini, model);
        dep.drop_params = drop_params;
        if let Value::Object(d) = defaults {
            dep.default_params = d;
        }
        let ctx = Ctx::new(&llm, &dep);
        let LlmBody::Chat(r) = llm.body() else {
            panic!()
        };
        let mut body = Map::new();
        apply(&ctx, of_chat(&ctx, r), &mut body).map(|()| body)
    }

    fn chat(extra: Value) -> Value {
        let mut v = json!({"model": "m", "messages": []});
        if let (Value::Object(o), Value::Object(e)) = (&mut v, extra) {
            o.extend(e);
        }
        v
    }

    #[test]
    fn generation_config_and_defaults() {
        let body = mapped(
            chat(json!({"temperature": 0.5, "top_p": 0.9, "max_tokens": 10,
                        "max_completion_tokens": 20, "stop": "END", "seed": 7, "n": 2,
                        "presence_penalty": 0.1, "frequency_penalty": 0.2, "top_k": 40,
                        "logprobs": false, "safety_settings": [{"category": "X"}]})),
            "gemini-2.0-flash",
            json!({"temperature": 1.0, "topK": 3, "responseModalities": ["TEXT"], "stream": true}),
            false,
        )
        .unwrap();
        assert_eq!(
            Value::Object(body),
            json!({
                "generationConfig": {"temperature": 0.5, "topP": 0.9, "maxOutputTokens": 20,
                    "stopSequences": ["END"], "seed": 7, "candidateCount": 2,
                    "presencePenalty": 0.1, "frequencyPenalty": 0.2, "topK": 40,
                    "responseModalities": ["TEXT"]},
                "safetySettings": [{"category": "X"}]
            })
        );
    }

    #[test]
    fn response_formats() {
        let body = mapped(
            chat(json!({"response_format": {"type": "json_object"}})),
            "gemini-2.0-flash",
            json!({}),
            false,
        )
        .unwrap();
        assert_eq!(
            body["generationConfig"],
            json!({"responseMimeType": "application/json"})
        );
        let body = mapped(
            chat(json!({"response_format": {"type": "json_schema", "json_schema": {
                "name": "x", "strict": true, "schema": {"type": "object", "additionalProperties": false,
                "properties": {"a": {"type": "string"}}, "required": ["a"]}}}})),
            "gemini-2.0-flash",
            json!({}),
            false,
        )
        .unwrap();
        assert_eq!(
            body["generationConfig"],
            json!({"responseMimeType": "application/json", "responseSchema": {"type": "object",
                   "properties": {"a": {"type": "string"}}, "required": ["a"]}})
        );
    }

    #[test]
    fn tools_and_choice() {
        let body = mapped(
            chat(json!({
                "tools": [
                    {"type": "function", "function": {"name": "f", "description": "F", "strict": true,
                     "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                                    "additionalProperties": false}}},
                    {"type": "function", "function": {"name": "g", "parameters": {"type": "object", "properties": {}}}},
                    {"type": "web_search"},
                    {"type": "code_execution", "codeExecution": {}}
                ],
                "tool_choice": {"type": "function", "function": {"name": "f"}},
                "parallel_tool_calls": true
            })),
            "gemini-2.0-flash",
            json!({}),
            false,
        )
        .unwrap();
        assert_eq!(
            Value::Object(body),
            json!({
                "tools": [
                    {"functionDeclarations": [
                        {"name": "f", "description": "F", "parameters": {"type": "object",
                         "properties": {"q": {"type": "string"}}}},
                        {"name": "g"}
                    ]},
                    {"googleSearch": {}},
                    {"codeExecution": {}}
                ],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}
            })
        );
        for (choice, mode) in [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")] {
            let body = mapped(
                chat(json!({"tool_choice": choice})),
                "gemini-2.0-flash",
                json!({}),
                false,
            )
            .unwrap();
            assert_eq!(body["toolConfig"]["functionCallingConfig"]["mode"], mode);
        }
    }

    #[test]
    fn reasoning_effort() {
        let cfg = |model: &str, effort: &str| {
            mapped(
                chat(json!({ "reasoning_effort": effort })),
                model,
                json!({}),
                false,
            )
            .unwrap()["generationConfig"]["thinkingConfig"]
                .clone()
        };
        assert_eq!(
            cfg("gemini-2.5-flash", "low"),
            json!({"thinkingBudget": 1024, "includeThoughts": true})
        );
        assert_eq!(
            cfg("gemini-2.5-flash-lite", "minimal"),
            json!({"thinkingBudget": 512, "includeThoughts": true})
        );
        assert_eq!(
            cfg("gemini-2.5-pro", "none"),
            json!({"thinkingBudget": 0, "includeThoughts": false})
        );
        assert_eq!(
            cfg("gemini-3-pro-preview", "medium"),
            json!({"thinkingLevel": "high", "includeThoughts": true})
        );
        assert_eq!(
            cfg("gemini-3-flash-preview", "minimal"),
            json!({"thinkingLevel": "minimal", "includeThoughts": true})
        );
    }

    #[test]
    fn unsupported_parameters_fail_or_drop() {
        for (extra, name) in [
            (json!({"logit_bias": {"1": 2}}), "logit_bias"),
            (json!({"user": "u-1"}), "user"),
            (json!({"my_custom_knob": 1}), "my_custom_knob"),
            (json!({"tool_choice": "sometimes"}), "tool_choice"),
            (
                json!({"response_format": {"type": "yaml"}}),
                "response_format",
            ),
            (json!({"reasoning_effort": "extreme"}), "reasoning_effort"),
            (
                json!({"parallel_tool_calls": false, "tools": [
                    {"type": "function", "function": {"name": "a"}},
                    {"type": "function", "function": {"name": "b"}}]}),
                "parallel_tool_calls",
            ),
        ] {
            let e = mapped(chat(extra.clone()), "gemini-2.0-flash", json!({}), false).unwrap_err();
            let Error::UnsupportedParam { param, .. } = &e else {
                panic!("{e}")
            };
            assert_eq!(*param, name);
            let body = mapped(chat(extra), "gemini-2.0-flash", json!({}), true).unwrap();
            assert!(!body.contains_key("generationConfig"), "{body:?}");
        }
        // A default the provider cannot take fails the same way.
        let e = mapped(
            chat(json!({})),
            "gemini-2.0-flash",
            json!({"user": "x"}),
            false,
        )
        .unwrap_err();
        assert!(matches!(e, Error::UnsupportedParam { param: "user", .. }));
    }

    #[test]
    fn interning_is_bounded() {
        assert_eq!(intern("user"), "user");
        let long = "x".repeat(INTERNED_MAX_LEN + 1);
        assert_eq!(intern(&long), "(an unrecognised parameter)");
        let a = intern("some_knob_for_interning");
        let b = intern("some_knob_for_interning");
        assert!(std::ptr::eq(a, b));
    }
}

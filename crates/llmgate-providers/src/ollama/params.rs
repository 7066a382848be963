//! OpenAI request parameters -> Ollama's `options` and top-level keys.
//!
//! Precedence, whatever order the keys come in: the client's values over the deployment's
//! `default_params`; within each, Ollama's own spelling over the OpenAI name mapped to it (an
//! `options` object over `temperature`, `format` over `response_format`, `think` over
//! `reasoning_effort`) and `max_completion_tokens` over `max_tokens`. See the module docs of
//! [`super`] for the mapping.

use std::collections::BTreeMap;

use llmgate_core::Endpoint;
use serde_json::{Map, Value};

use crate::dialect::Ctx;
use crate::error::Error;

/// OpenAI parameters Ollama has nothing for. The names are what the error shows.
const UNSUPPORTED: &[&str] = &[
    "user",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "store",
    "service_tier",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "verbosity",
    "safety_identifier",
    "prompt_cache_key",
    "echo",
    "best_of",
    "encoding_format",
];

/// Keys that never come from here (the request's own structure).
const STRUCTURAL: &[&str] = &[
    "model",
    "messages",
    "prompt",
    "input",
    "stream",
    "stream_options",
];

/// Ollama's top-level keys a client may set directly, per endpoint.
fn top_level(endpoint: Endpoint, key: &str) -> Option<&'static str> {
    let common: &[&'static str] = &["keep_alive"];
    let own: &[&'static str] = match endpoint {
        Endpoint::ChatCompletions => &["think"],
        Endpoint::Completions => &[
            "think", "raw", "suffix", "system", "template", "context", "images",
        ],
        Endpoint::Embeddings => &["truncate", "dimensions"],
    };
    common.iter().chain(own).copied().find(|k| *k == key)
}

/// How strongly a value holds its slot: a value replaces one of lower or equal rank.
type Rank = u8;

/// The rank of a value from the client (or a default) under its mapped (or own) name.
fn rank(client: bool, own: bool) -> Rank {
    2 * Rank::from(client) + Rank::from(own)
}

fn put<T>(slot: &mut Option<(Rank, T)>, value: T, r: Rank) {
    if slot.as_ref().is_none_or(|(old, _)| *old <= r) {
        *slot = Some((r, value));
    }
}

/// The parameters while they are mapped: each slot with the rank of its value.
#[derive(Debug, Default)]
struct Mapped {
    options: BTreeMap<String, (Rank, Value)>,
    format: Option<(Rank, Value)>,
    tools: Option<(Rank, Value)>,
    /// `tool_choice` resolved: `true` when no tools may be called.
    no_tools: Option<(Rank, bool)>,
    top: Vec<(&'static str, Rank, Value)>,
}

/// The parameters, resolved.
#[derive(Debug, Default)]
pub(super) struct Resolved {
    /// `options`.
    pub(super) options: Map<String, Value>,
    /// `format`.
    pub(super) format: Option<Value>,
    /// `tools` (chat): none when `tool_choice` was `"none"`.
    pub(super) tools: Option<Value>,
    /// Ollama's other top-level keys (`keep_alive`, `think`, ...), in the order first set.
    pub(super) top: Vec<(&'static str, Value)>,
}

impl Mapped {
    fn option(&mut self, key: &str, value: Value, r: Rank) {
        match self.options.get_mut(key) {
            Some(slot) if slot.0 <= r => *slot = (r, value),
            Some(_) => {}
            None => {
                self.options.insert(key.to_owned(), (r, value));
            }
        }
    }

    fn top(&mut self, name: &'static str, value: Value, r: Rank) {
        match self.top.iter_mut().find(|(k, _, _)| *k == name) {
            Some(slot) if slot.1 <= r => *slot = (name, r, value),
            Some(_) => {}
            None => self.top.push((name, r, value)),
        }
    }

    fn resolve(self) -> Resolved {
        let no_tools = self.no_tools.is_some_and(|(_, none)| none);
        Resolved {
            options: self.options.into_iter().map(|(k, (_, v))| (k, v)).collect(),
            format: self.format.map(|(_, v)| v),
            tools: self.tools.filter(|_| !no_tools).map(|(_, v)| v),
            top: self.top.into_iter().map(|(k, _, v)| (k, v)).collect(),
        }
    }
}

/// Maps `client` (the request's parameters) then the deployment's defaults.
pub(super) fn map<'v>(
    ctx: &Ctx<'_>,
    endpoint: Endpoint,
    client: impl IntoIterator<Item = (&'v str, Value)>,
) -> Result<Resolved, Error> {
    let mut m = Mapped::default();
    for (key, value) in client {
        apply(ctx, endpoint, &mut m, key, value, true)?;
    }
    for (key, value) in &ctx.dep.default_params {
        apply(ctx, endpoint, &mut m, key, value.clone(), false)?;
    }
    Ok(m.resolve())
}

fn apply(
    ctx: &Ctx<'_>,
    endpoint: Endpoint,
    m: &mut Mapped,
    key: &str,
    value: Value,
    client: bool,
) -> Result<(), Error> {
    if value.is_null() || STRUCTURAL.contains(&key) {
        return Ok(());
    }
    let mapped = rank(client, false);
    let own = rank(client, true);
    let chat = endpoint == Endpoint::ChatCompletions;
    let generates = endpoint != Endpoint::Embeddings;
    match key {
        "temperature" | "top_p" | "seed" | "presence_penalty" | "frequency_penalty"
            if generates =>
        {
            m.option(key, value, mapped);
        }
        "max_tokens" if generates => m.option("num_predict", value, mapped),
        // The newer name wins over the legacy one.
        "max_completion_tokens" if generates => m.option("num_predict", value, own),
        "stop" if generates => {
            let stop = match value {
                Value::String(s) => Value::Array(vec![Value::String(s)]),
                other => other,
            };
            m.option("stop", stop, mapped);
        }
        "n" if value.as_u64() == Some(1) => {}
        "n" => ctx.unsupported("n")?,
        "tools" if chat => put(&mut m.tools, value, own),
        "tool_choice" if chat => match value.as_str() {
            Some("auto") => put(&mut m.no_tools, false, own),
            Some("none") => put(&mut m.no_tools, true, own),
            _ => ctx.unsupported("tool_choice")?,
        },
        "response_format" if generates => {
            if let Some(format) = response_format(ctx, &value)? {
                put(&mut m.format, format, mapped);
            }
        }
        "format" if generates => put(&mut m.format, value, own),
        "reasoning_effort" if generates => {
            if let Some(think) = think(ctx, &value)? {
                m.top("think", think, mapped);
            }
        }
        "options" => match value {
            Value::Object(entries) => {
                for (k, v) in entries {
                    m.option(&k, v, own);
                }
            }
            _ => ctx.unsupported("options")?,
        },
        // Values that ask for nothing more than Ollama does anyway.
        "logprobs" | "store" | "echo" if value == Value::Bool(false) => {}
        "parallel_tool_calls" if value == Value::Bool(true) => {}
        "encoding_format" if endpoint == Endpoint::Embeddings => {}
        _ => {
            if let Some(name) = top_level(endpoint, key) {
                m.top(name, value, own);
            } else if let Some(name) = UNSUPPORTED.iter().find(|n| **n == key) {
                ctx.unsupported(name)?;
            } else if let Some(name) = typed_elsewhere(key) {
                // A parameter of another endpoint (e.g. `tools` on embeddings).
                ctx.unsupported(name)?;
            } else {
                // Not OpenAI's: a model option (`top_k`, `num_ctx`, ...), as LiteLLM does.
                m.option(key, value, mapped);
            }
        }
    }
    Ok(())
}

/// OpenAI parameter names this module maps for some endpoint, for the error when one comes
/// with another endpoint.
fn typed_elsewhere(key: &str) -> Option<&'static str> {
    const NAMES: &[&str] = &[
        "temperature",
        "top_p",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "tools",
        "tool_choice",
        "response_format",
        "format",
        "reasoning_effort",
        "think",
    ];
    NAMES.iter().copied().find(|n| *n == key)
}

/// `response_format` -> `format`: `None` for plain text.
fn response_format(ctx: &Ctx<'_>, value: &Value) -> Result<Option<Value>, Error> {
    match value.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(Value::String("json".to_owned()))),
        Some("json_schema") => match value.pointer("/json_schema/schema") {
            Some(schema @ Value::Object(_)) => Ok(Some(schema.clone())),
            _ => ctx.unsupported("response_format").map(|()| None),
        },
        _ => ctx.unsupported("response_format").map(|()| None),
    }
}

/// `reasoning_effort` -> `think`. `gpt-oss` models take a level, the others a switch.
fn think(ctx: &Ctx<'_>, value: &Value) -> Result<Option<Value>, Error> {
    match value.as_str() {
        Some("none" | "minimal") => Ok(Some(Value::Bool(false))),
        Some(level @ ("low" | "medium" | "high")) => {
            if ctx.dep.model.starts_with("gpt-oss") {
                Ok(Some(Value::String(level.to_owned())))
            } else {
                Ok(Some(Value::Bool(true)))
            }
        }
        _ => ctx.unsupported("reasoning_effort").map(|()| None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{DeploymentSpec, LlmRequest, ProviderKind};
    use serde_json::json;

    fn mapped(
        endpoint: Endpoint,
        client: Value,
        defaults: Value,
        drop: bool,
    ) -> Result<Resolved, Error> {
        let mut dep = DeploymentSpec::new("o-0", "g", ProviderKind::Ollama, "llama3.2");
        dep.default_params = defaults.as_object().cloned().unwrap_or_default();
        dep.drop_params = drop;
        let body = match endpoint {
            Endpoint::ChatCompletions => json!({"model": "g", "messages": []}),
            Endpoint::Completions => json!({"model": "g", "prompt": "x"}),
            Endpoint::Embeddings => json!({"model": "g", "input": "x"}),
        };
        let llm = LlmRequest::parse(endpoint, body.to_string().as_bytes()).unwrap();
        let ctx = Ctx::new(&llm, &dep);
        let items: Vec<(String, Value)> = client
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        map(
            &ctx,
            endpoint,
            items.iter().map(|(k, v)| (k.as_str(), v.clone())),
        )
    }

    fn sorted(mut top: Vec<(&'static str, Value)>) -> Vec<(&'static str, Value)> {
        top.sort_by_key(|(k, _)| *k);
        top
    }

    #[test]
    fn sampling_goes_to_options_and_client_wins() {
        let m = mapped(
            Endpoint::ChatCompletions,
            json!({"temperature": 0.2, "max_tokens": 10, "max_completion_tokens": 20,
                   "stop": "END", "top_k": 40, "presence_penalty": 0.5}),
            json!({"temperature": 0.9, "num_ctx": 8192, "seed": 7}),
            false,
        )
        .unwrap();
        assert_eq!(
            Value::Object(m.options),
            json!({"temperature": 0.2, "num_predict": 20, "stop": ["END"], "top_k": 40,
                   "presence_penalty": 0.5, "num_ctx": 8192, "seed": 7})
        );
    }

    #[test]
    fn explicit_options_and_format_win() {
        let m = mapped(
            Endpoint::ChatCompletions,
            json!({"temperature": 0.2, "response_format": {"type": "json_object"},
                   "options": {"temperature": 0.4}, "format": {"type": "object"},
                   "keep_alive": "5m"}),
            json!({"options": {"temperature": 0.9, "num_gpu": 1}, "keep_alive": "1h"}),
            false,
        )
        .unwrap();
        assert_eq!(
            Value::Object(m.options),
            json!({"temperature": 0.4, "num_gpu": 1})
        );
        assert_eq!(m.format, Some(json!({"type": "object"})));
        assert_eq!(m.top, vec![("keep_alive", json!("5m"))]);
    }

    #[test]
    fn response_formats() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let m = mapped(
            Endpoint::ChatCompletions,
            json!({"response_format": {"type": "json_schema",
                   "json_schema": {"name": "x", "schema": schema}}}),
            json!({}),
            false,
        )
        .unwrap();
        assert_eq!(m.format, Some(schema));
        let m = mapped(
            Endpoint::ChatCompletions,
            json!({"response_format": {"type": "text"}}),
            json!({}),
            false,
        )
        .unwrap();
        assert_eq!(m.format, None);
        let e = mapped(
            Endpoint::ChatCompletions,
            json!({"response_format": {"type": "xml"}}),
            json!({}),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("`response_format`"), "{e}");
    }

    #[test]
    fn unsupported_parameters_fail_or_drop() {
        for (k, v) in [
            ("n", json!(2)),
            ("user", json!("u-1")),
            ("logit_bias", json!({"1": 2})),
            ("logprobs", json!(true)),
            ("parallel_tool_calls", json!(false)),
            ("tool_choice", json!("required")),
        ] {
            let e =
                mapped(Endpoint::ChatCompletions, json!({ k: v }), json!({}), false).unwrap_err();
            assert!(e.to_string().contains(&format!("`{k}`")), "{e}");
            let m = mapped(Endpoint::ChatCompletions, json!({ k: v }), json!({}), true).unwrap();
            assert!(m.options.is_empty() && m.top.is_empty(), "{k}");
        }
        // Harmless values pass.
        mapped(
            Endpoint::ChatCompletions,
            json!({"n": 1, "logprobs": false, "parallel_tool_calls": true, "tool_choice": "auto"}),
            json!({}),
            false,
        )
        .unwrap();
        // A default the provider cannot take fails too (the deployment is misconfigured).
        assert!(mapped(
            Endpoint::ChatCompletions,
            json!({}),
            json!({"user": "x"}),
            false
        )
        .is_err());
        // Chat parameters on embeddings.
        let e = mapped(
            Endpoint::Embeddings,
            json!({"temperature": 1}),
            json!({}),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("`temperature`"), "{e}");
    }

    #[test]
    fn tool_choice_none_sends_no_tools() {
        let m = mapped(
            Endpoint::ChatCompletions,
            json!({"tools": [{"type": "function", "function": {"name": "f"}}],
                   "tool_choice": "none"}),
            json!({}),
            false,
        )
        .unwrap();
        assert_eq!(m.tools, None);
    }

    #[test]
    fn reasoning_effort_becomes_think() {
        let m = mapped(
            Endpoint::ChatCompletions,
            json!({"reasoning_effort": "high"}),
            json!({}),
            false,
        )
        .unwrap();
        assert_eq!(m.top, vec![("think", json!(true))]);
        let m = mapped(
            Endpoint::ChatCompletions,
            json!({"reasoning_effort": "minimal", "think": true}),
            json!({}),
            false,
        )
        .unwrap();
        assert_eq!(m.top, vec![("think", json!(true))]);
    }

    #[test]
    fn completion_and_embedding_top_level_keys() {
        let m = mapped(
            Endpoint::Completions,
            json!({"raw": true, "suffix": "}", "system": "s", "echo": false}),
            json!({}),
            false,
        )
        .unwrap();
        assert_eq!(
            sorted(m.top),
            vec![
                ("raw", json!(true)),
                ("suffix", json!("}")),
                ("system", json!("s"))
            ]
        );
        let m = mapped(
            Endpoint::Embeddings,
            json!({"truncate": false, "dimensions": 64, "encoding_format": "base64"}),
            json!({"keep_alive": "10m"}),
            false,
        )
        .unwrap();
        assert_eq!(
            sorted(m.top),
            vec![
                ("dimensions", json!(64)),
                ("keep_alive", json!("10m")),
                ("truncate", json!(false)),
            ]
        );
    }
}

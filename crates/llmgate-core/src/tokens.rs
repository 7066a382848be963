//! Token counts the gateway works out itself, before (or without) a provider's usage report.
//!
//! One implementation, used by every layer that needs it: the rate limiter reserves a request's
//! prompt against tpm limits, the router weighs deployments by tpm, and metering charges a
//! response whose provider reported no usage (a stream the client dropped, a server that omits
//! `usage`).
//!
//! - **Prompt tokens** ([`prompt_tokens`]), counted with OpenAI's own tokenizer (`o200k_base`
//!   for gpt-4o, gpt-4.1, gpt-5, o1/o3/o4; `cl100k_base` for gpt-4 and gpt-3.5) when the model
//!   name (after any `provider/` prefix) is one of those families and the `tiktoken` feature is
//!   on; the feature is off here and turned on by `llmgate-ratelimit`'s default `tiktoken`
//!   feature. Chat messages add OpenAI's framing: 3 tokens per message, 3 to prime the reply.
//!   Message text, the assistant's earlier tool calls and the tool definitions (as JSON) are
//!   counted; images and audio are not. For every other model the estimate is one token per 4
//!   bytes of UTF-8 text, rounded up (the usual rule of thumb for English).
//!   o200k_base's and cl100k_base's ranks are compact tables compiled into the binary and read
//!   in place (`bpe.rs`); their pre-tokenizer patterns, and the older encodings' tiktoken-rs
//!   tables, are built once per process, on the first count that needs them, and shared.
//! - **Text** ([`estimate_bytes`]): one token per 4 bytes, rounded up, whatever the model; what
//!   metering counts a relayed answer with (no tokenizer on the streaming path).

use serde_json::Value;

use crate::wire::chat::MessageContent;
use crate::{LlmBody, LlmRequest};

/// The prompt tokens of `req`, counted for `model` (the deployment's model id when known, else
/// the name the client sent).
pub fn prompt_tokens(req: &LlmRequest, model: &str) -> u64 {
    let counter = Counter::for_model(model);
    match req.body() {
        LlmBody::Chat(c) => {
            let mut prompt: u64 = 3;
            for m in &c.messages {
                prompt += 3;
                if let Some(content) = &m.content {
                    prompt += match content {
                        MessageContent::Text(t) => counter.count(t),
                        MessageContent::Parts(parts) => parts
                            .iter()
                            .filter_map(|p| p.text.as_deref())
                            .map(|t| counter.count(t))
                            .sum(),
                    };
                }
                for call in m.tool_calls.iter().flatten() {
                    if let Some(f) = &call.function {
                        prompt += f.name.as_deref().map_or(0, |n| counter.count(n));
                        prompt += f.arguments.as_deref().map_or(0, |a| counter.count(a));
                    }
                }
            }
            if let Some(tools) = c.tools.as_ref().filter(|t| !t.is_empty()) {
                prompt += serde_json::to_string(tools).map_or(0, |s| counter.count(&s));
            }
            prompt
        }
        LlmBody::Completion(c) => counter.value(&c.prompt),
        LlmBody::Embedding(e) => counter.value(&e.input),
    }
}

/// The estimate for text of `bytes` UTF-8 bytes: one token per 4 bytes, rounded up.
pub fn estimate_bytes(bytes: u64) -> u64 {
    bytes.div_ceil(4)
}

/// The estimate for `text`: [`estimate_bytes`] of its length.
pub fn estimate(text: &str) -> u64 {
    estimate_bytes(text.len() as u64)
}

/// Counts tokens in text for one model family.
/// Which counter [`prompt_tokens`] uses for `model`: `"openai_tokenizer"` (tiktoken's
/// encoding for an OpenAI model family) or `"estimate"` (4 bytes a token).
pub fn tokenizer_of(model: &str) -> &'static str {
    match Counter::for_model(model) {
        #[cfg(feature = "tiktoken")]
        Counter::Ranks(_) | Counter::Bpe(_) => "openai_tokenizer",
        Counter::Estimate => "estimate",
    }
}

#[derive(Clone, Copy)]
enum Counter {
    /// o200k_base and cl100k_base: their ranks alone (`bpe.rs`), a fraction of
    /// tiktoken-rs's tables.
    #[cfg(feature = "tiktoken")]
    Ranks(&'static crate::bpe::Ranks),
    /// The older encodings (p50k, r50k, gpt2): tiktoken-rs's own, loaded once when first used.
    #[cfg(feature = "tiktoken")]
    Bpe(&'static tiktoken_rs::CoreBPE),
    Estimate,
}

impl Counter {
    fn for_model(model: &str) -> Self {
        #[cfg(feature = "tiktoken")]
        {
            use crate::bpe::{Encoding, Ranks};
            use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};
            let id = model.rsplit('/').next().unwrap_or(model);
            let counter = match get_tokenizer(id) {
                // o200k_harmony's ordinary tokens and pattern are o200k_base's.
                Some(Tokenizer::O200kBase | Tokenizer::O200kHarmony) => {
                    Ranks::get(Encoding::O200k).map(Counter::Ranks)
                }
                Some(Tokenizer::Cl100kBase) => Ranks::get(Encoding::Cl100k).map(Counter::Ranks),
                Some(other) => tiktoken_rs::bpe_for_tokenizer(other).ok().map(Counter::Bpe),
                None => None,
            };
            if let Some(counter) = counter {
                return counter;
            }
        }
        let _ = model;
        Counter::Estimate
    }

    fn count(self, text: &str) -> u64 {
        match self {
            #[cfg(feature = "tiktoken")]
            Counter::Ranks(ranks) => ranks.count(text),
            #[cfg(feature = "tiktoken")]
            Counter::Bpe(bpe) => bpe.count_ordinary(text) as u64,
            Counter::Estimate => estimate(text),
        }
    }

    /// A `prompt` or `input`: a string, a list of strings, a token list or a list of those.
    fn value(self, v: &Value) -> u64 {
        match v {
            Value::String(s) => self.count(s),
            Value::Number(_) => 1,
            Value::Array(items) => items.iter().map(|i| self.value(i)).sum(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Endpoint;

    fn chat(model: &str, extra: &str) -> LlmRequest {
        let body = format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"Hello, how are you today?"}}]{extra}}}"#
        );
        LlmRequest::parse(Endpoint::ChatCompletions, body.as_bytes()).unwrap()
    }

    #[test]
    fn unknown_models_use_the_byte_estimate_plus_framing() {
        // 25 bytes -> 7 tokens, + 3 per message + 3 for the reply.
        assert_eq!(prompt_tokens(&chat("llama3", ""), "llama3"), 13);
        // Tool definitions count as their JSON.
        let tools = r#","tools":[{"type":"function","function":{"name":"get_weather"}}]"#;
        let json = r#"[{"type":"function","function":{"name":"get_weather"}}]"#;
        assert_eq!(
            prompt_tokens(&chat("llama3", tools), "llama3"),
            13 + estimate(json)
        );
        assert_eq!(estimate_bytes(0), 0);
        assert_eq!(estimate_bytes(9), 3);
    }

    #[cfg(feature = "tiktoken")]
    #[test]
    fn openai_models_use_their_tokenizer() {
        let req = chat("gpt", "");
        // "Hello, how are you today?" is 7 tokens in o200k_base: counted for the model given.
        assert_eq!(prompt_tokens(&req, "openai/gpt-4o-mini"), 13);
        let long = "word ".repeat(1000);
        let e = LlmRequest::parse(
            Endpoint::Embeddings,
            format!(r#"{{"model":"nomic-embed","input":"{long}"}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(prompt_tokens(&e, "nomic-embed"), 1250);
        let n = prompt_tokens(&e, "text-embedding-3-small");
        assert!((1000..=1002).contains(&n), "{n}");
    }
}

//! How many tokens a request reserves against tpm limits before it is sent.
//!
//! `reserve = prompt tokens + output allowance`, settled with the real usage when the response
//! ends:
//!
//! - **Prompt tokens**, counted with OpenAI's own tokenizer (`o200k_base` for gpt-4o, gpt-4.1,
//!   gpt-5, o1/o3/o4; `cl100k_base` for gpt-4 and gpt-3.5) when the requested model name (after
//!   any `provider/` prefix) is one of those families and the `tiktoken` feature is on (the
//!   default). Chat messages add OpenAI's framing: 3 tokens per message, 3 to prime the reply.
//!   For every other model the estimate is one token per 4 bytes of UTF-8 text, rounded up (the
//!   usual rule of thumb for English; settlement corrects it). Images, audio and tool
//!   definitions are not counted.
//! - **Output allowance**: `max_completion_tokens`, else `max_tokens`, times `n`. A request that
//!   sets neither reserves its prompt only; its completion is charged when it ends.
//!
//! The model name here is the one the client sent (a model group or alias): the deployment is
//! chosen later, by the router.

use llmgate_core::wire::chat::MessageContent;
use llmgate_core::{LlmBody, LlmRequest};
use serde_json::Value;

/// Tokens to reserve for `req`.
pub fn reserve(req: &LlmRequest) -> u64 {
    let counter = Counter::for_model(req.model());
    let (prompt, output) = match req.body() {
        LlmBody::Chat(c) => {
            let mut prompt = 3;
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
            let n = u64::from(c.n.unwrap_or(1).max(1));
            let out = c.max_completion_tokens.or(c.max_tokens).unwrap_or(0);
            (prompt, out.saturating_mul(n))
        }
        LlmBody::Completion(c) => (counter.value(&c.prompt), c.max_tokens.unwrap_or(0)),
        LlmBody::Embedding(e) => (counter.value(&e.input), 0),
    };
    prompt.saturating_add(output)
}

/// Counts tokens in text for one model family.
#[derive(Clone, Copy)]
enum Counter {
    #[cfg(feature = "tiktoken")]
    Bpe(&'static tiktoken_rs::CoreBPE),
    Estimate,
}

impl Counter {
    fn for_model(model: &str) -> Self {
        #[cfg(feature = "tiktoken")]
        {
            let id = model.rsplit('/').next().unwrap_or(model);
            if let Some(bpe) = tiktoken_rs::tokenizer::get_tokenizer(id)
                .and_then(|t| tiktoken_rs::bpe_for_tokenizer(t).ok())
            {
                return Counter::Bpe(bpe);
            }
        }
        let _ = model;
        Counter::Estimate
    }

    fn count(self, text: &str) -> u64 {
        match self {
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

/// The estimate for models without a known tokenizer: one token per 4 bytes, rounded up.
pub fn estimate(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::Endpoint;

    fn chat(model: &str, extra: &str) -> LlmRequest {
        let body = format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"Hello, how are you today?"}}]{extra}}}"#
        );
        LlmRequest::parse(Endpoint::ChatCompletions, body.as_bytes()).unwrap()
    }

    #[test]
    fn unknown_models_use_the_byte_estimate_plus_framing() {
        // 25 bytes -> 7 tokens, + 3 per message + 3 for the reply.
        assert_eq!(reserve(&chat("llama3", "")), 13);
        assert_eq!(reserve(&chat("llama3", r#","max_tokens":100,"n":2"#)), 213);
        assert_eq!(
            reserve(&chat(
                "llama3",
                r#","max_tokens":100,"max_completion_tokens":50"#
            )),
            63
        );
    }

    #[cfg(feature = "tiktoken")]
    #[test]
    fn openai_models_use_their_tokenizer() {
        // "Hello, how are you today?" is 7 tokens in both o200k_base and cl100k_base.
        assert_eq!(reserve(&chat("gpt-4o", "")), 13);
        assert_eq!(reserve(&chat("openai/gpt-4o-mini", "")), 13);
        let long = "word ".repeat(1000);
        let r = LlmRequest::parse(
            Endpoint::Embeddings,
            format!(r#"{{"model":"text-embedding-3-small","input":["{long}", [1,2,3]]}}"#)
                .as_bytes(),
        )
        .unwrap();
        // 1000 repetitions of " word"-ish tokens, plus a pre-tokenized input of 3.
        let n = reserve(&r);
        assert!((1000..=1002).contains(&(n - 3)), "{n}");
        let e = LlmRequest::parse(
            Endpoint::Embeddings,
            format!(r#"{{"model":"nomic-embed","input":"{long}"}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(reserve(&e), 1250);
    }
}

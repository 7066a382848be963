//! How many tokens a request reserves against tpm limits before it is sent.
//!
//! `reserve = prompt tokens + output allowance`, settled with the real usage when the response
//! ends:
//!
//! - **Prompt tokens**: [`llmgate_core::tokens::prompt_tokens`] for the requested model name
//!   (OpenAI's tokenizer for OpenAI's model families with the `tiktoken` feature, the default;
//!   else one token per 4 bytes of text; OpenAI's chat framing; tool definitions included).
//! - **Output allowance**: `max_completion_tokens`, else `max_tokens`, times `n`. A request that
//!   sets neither reserves its prompt only; its completion is charged when it ends.
//!
//! The model name here is the one the client sent (a model group or alias): the deployment is
//! chosen later, by the router.

use llmgate_core::{tokens, LlmBody, LlmRequest};

/// Tokens to reserve for `req`.
pub fn reserve(req: &LlmRequest) -> u64 {
    let prompt = tokens::prompt_tokens(req, req.model());
    let output = match req.body() {
        LlmBody::Chat(c) => {
            let n = u64::from(c.n.unwrap_or(1).max(1));
            c.max_completion_tokens
                .or(c.max_tokens)
                .unwrap_or(0)
                .saturating_mul(n)
        }
        LlmBody::Completion(c) => c.max_tokens.unwrap_or(0),
        LlmBody::Embedding(_) => 0,
    };
    prompt.saturating_add(output)
}

pub use llmgate_core::tokens::estimate;

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

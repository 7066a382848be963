//! Tokens and cost: [`Tokens`] reads the counts a bill needs from a provider's usage (already
//! in OpenAI's shape: every dialect translates its own), and [`Tokens::cost`] prices them.
//!
//! In OpenAI's shape, as llmgate's providers report it:
//! - `prompt_tokens` counts every input token, cache reads and cache writes included;
//! - `prompt_tokens_details.cached_tokens` are the cache reads (OpenAI, Anthropic's
//!   `cache_read_input_tokens`, Gemini's `cachedContentTokenCount`, Bedrock's
//!   `cacheReadInputTokens`);
//! - `cache_creation_input_tokens` (a top-level usage field, as LiteLLM reports it) are the
//!   cache writes (Anthropic, Bedrock);
//! - `completion_tokens` counts every output token, reasoning included;
//!   `completion_tokens_details.reasoning_tokens` are the reasoning part (OpenAI's o-series,
//!   Gemini's thoughts).
//!
//! So the cost is: uncached input at the input price, cache reads at the cache-read price,
//! cache writes at the cache-creation price (each falling back to the input price), reasoning
//! tokens at the reasoning price (else the output price) and the rest of the output at the
//! output price.

use llmgate_core::Usage;
use serde::Serialize;

use crate::prices::ModelPrice;

/// The token counts of one response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tokens {
    /// Input tokens, cached ones included.
    pub prompt: u64,
    /// Output tokens, reasoning included.
    pub completion: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_creation: u64,
    /// Output tokens spent reasoning.
    pub reasoning: u64,
}

impl Tokens {
    /// The counts in a usage report.
    pub fn of(u: &Usage) -> Tokens {
        let cache_read = u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0);
        let cache_creation = u
            .extra
            .get("cache_creation_input_tokens")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let reasoning = u
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0);
        Tokens {
            prompt: u.prompt_tokens,
            completion: u.completion_tokens,
            cache_read,
            cache_creation,
            reasoning,
        }
    }

    /// Input plus output.
    pub fn total(&self) -> u64 {
        self.prompt + self.completion
    }

    /// The cost in USD at `price`, or `None` when the price lacks a rate these tokens need (an
    /// output price for output tokens, an input price for input tokens).
    pub fn cost(&self, price: &ModelPrice) -> Option<f64> {
        let cache_read = self.cache_read.min(self.prompt);
        let cache_creation = self.cache_creation.min(self.prompt - cache_read);
        let plain_in = self.prompt - cache_read - cache_creation;
        let reasoning = self.reasoning.min(self.completion);
        let plain_out = self.completion - reasoning;

        let input = price.input_cost_per_token;
        let output = price.output_cost_per_token;
        let rate = |tokens: u64, own: Option<f64>, base: Option<f64>| -> Option<f64> {
            if tokens == 0 {
                return Some(0.0);
            }
            own.or(base).map(|r| r * tokens as f64)
        };
        Some(
            rate(plain_in, input, None)?
                + rate(cache_read, price.cache_read_input_token_cost, input)?
                + rate(cache_creation, price.cache_creation_input_token_cost, input)?
                + rate(plain_out, output, None)?
                + rate(reasoning, price.output_cost_per_reasoning_token, output)?,
        )
    }
}

#[cfg(test)]
mod tests {
    //! One test per provider's usage shape, as its dialect reports it in OpenAI's shape (the
    //! translations are tested in llmgate-providers; these inputs are copied from their tests).
    use super::*;
    use serde_json::json;

    fn usage(v: serde_json::Value) -> Usage {
        serde_json::from_value(v).unwrap()
    }

    fn price(i: f64, o: f64) -> ModelPrice {
        ModelPrice {
            input_cost_per_token: Some(i),
            output_cost_per_token: Some(o),
            ..ModelPrice::default()
        }
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn openai_with_cached_and_reasoning_tokens() {
        let u = usage(
            json!({"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 400, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 300}}),
        );
        let t = Tokens::of(&u);
        assert_eq!(
            (t.prompt, t.cache_read, t.reasoning, t.total()),
            (1000, 400, 300, 1500)
        );
        let mut p = price(2e-6, 8e-6);
        p.cache_read_input_token_cost = Some(0.5e-6);
        // 600 plain in, 400 cached, 500 out (reasoning at the output price).
        close(
            t.cost(&p).unwrap(),
            600.0 * 2e-6 + 400.0 * 0.5e-6 + 500.0 * 8e-6,
        );
        p.output_cost_per_reasoning_token = Some(1e-5);
        close(
            t.cost(&p).unwrap(),
            600.0 * 2e-6 + 400.0 * 0.5e-6 + 200.0 * 8e-6 + 300.0 * 1e-5,
        );
    }

    #[test]
    fn anthropic_with_cache_creation_and_reads() {
        // anthropic/answer.rs: input 50 + cache read 100 + cache write 20 = 170 prompt tokens.
        let u = usage(
            json!({"prompt_tokens": 170, "completion_tokens": 30, "total_tokens": 200,
            "prompt_tokens_details": {"cached_tokens": 100},
            "cache_creation_input_tokens": 20}),
        );
        let t = Tokens::of(&u);
        assert_eq!((t.cache_read, t.cache_creation), (100, 20));
        let mut p = price(3e-6, 15e-6);
        p.cache_read_input_token_cost = Some(0.3e-6);
        p.cache_creation_input_token_cost = Some(3.75e-6);
        close(
            t.cost(&p).unwrap(),
            50.0 * 3e-6 + 100.0 * 0.3e-6 + 20.0 * 3.75e-6 + 30.0 * 15e-6,
        );
        // Without cache prices, cache tokens cost what input costs.
        close(
            t.cost(&price(3e-6, 15e-6)).unwrap(),
            170.0 * 3e-6 + 30.0 * 15e-6,
        );
    }

    #[test]
    fn gemini_with_cached_content_and_thoughts() {
        // gemini/answer.rs: thoughts are inside completion_tokens and listed as reasoning.
        let u = usage(
            json!({"prompt_tokens": 10, "completion_tokens": 12, "total_tokens": 22,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 5}}),
        );
        let mut p = price(1e-6, 4e-6);
        p.cache_read_input_token_cost = Some(0.25e-6);
        close(
            Tokens::of(&u).cost(&p).unwrap(),
            6.0 * 1e-6 + 4.0 * 0.25e-6 + 12.0 * 4e-6,
        );
    }

    #[test]
    fn ollama_plain_counts_and_free_models() {
        let u = usage(json!({"prompt_tokens": 26, "completion_tokens": 298, "total_tokens": 324}));
        let t = Tokens::of(&u);
        assert_eq!(t.cost(&price(0.0, 0.0)), Some(0.0));
        close(
            t.cost(&price(1e-7, 2e-7)).unwrap(),
            26.0 * 1e-7 + 298.0 * 2e-7,
        );
    }

    #[test]
    fn bedrock_with_cache_reads_and_writes() {
        // bedrock/answer.rs: inputTokens 10 + cacheReadInputTokens 100 + cacheWriteInputTokens 5.
        let u = usage(
            json!({"prompt_tokens": 115, "completion_tokens": 7, "total_tokens": 122,
            "prompt_tokens_details": {"cached_tokens": 100},
            "cache_creation_input_tokens": 5}),
        );
        let mut p = price(3e-6, 15e-6);
        p.cache_read_input_token_cost = Some(0.3e-6);
        p.cache_creation_input_token_cost = Some(3.75e-6);
        close(
            Tokens::of(&u).cost(&p).unwrap(),
            10.0 * 3e-6 + 100.0 * 0.3e-6 + 5.0 * 3.75e-6 + 7.0 * 15e-6,
        );
    }

    #[test]
    fn a_missing_rate_makes_the_cost_unknown_not_zero() {
        let t = Tokens {
            prompt: 10,
            completion: 5,
            ..Tokens::default()
        };
        let input_only = ModelPrice {
            input_cost_per_token: Some(1e-6),
            ..ModelPrice::default()
        };
        assert_eq!(t.cost(&input_only), None);
        let embedding = Tokens {
            prompt: 10,
            ..Tokens::default()
        };
        close(embedding.cost(&input_only).unwrap(), 10.0 * 1e-6);
        // Counts that disagree (more cached than prompt) never go negative.
        let odd = Tokens {
            prompt: 5,
            cache_read: 9,
            cache_creation: 3,
            ..Tokens::default()
        };
        close(odd.cost(&price(1.0, 1.0)).unwrap(), 5.0);
    }
}

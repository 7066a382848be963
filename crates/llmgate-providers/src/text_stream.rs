//! [`TextChunks`]: OpenAI chat chunks for a stream of plain text pieces (SageMaker's TGI
//! tokens, Replicate's `output` events), with the usage estimated when the provider reports
//! none: the prompt's tokens one per 4 bytes of the prompt sent
//! ([`llmgate_core::tokens::estimate`]), the completion's as counted by the provider when it
//! says, else one per 4 bytes of the text streamed.

use llmgate_core::wire::chat::{ChunkChoice, Delta};
use llmgate_core::wire::ChatCompletionChunk;
use llmgate_core::Usage;
use serde_json::Map;

use crate::dialect::now;

/// The chunks of one text stream.
pub(crate) struct TextChunks {
    id: String,
    model: String,
    created: u64,
    role_sent: bool,
    /// Bytes of text streamed so far.
    text_bytes: u64,
    /// The prompt's estimated tokens.
    prompt_tokens: u64,
}

impl TextChunks {
    /// Chunks for `model`, whose prompt was `prompt`.
    pub(crate) fn new(model: &str, prompt: &str) -> Self {
        TextChunks {
            id: crate::bedrock::new_id("chatcmpl"),
            model: model.to_owned(),
            created: now(),
            role_sent: false,
            text_bytes: 0,
            prompt_tokens: llmgate_core::tokens::estimate(prompt),
        }
    }

    /// A chunk adding `text` (the first one also says `role: assistant`).
    pub(crate) fn text(&mut self, text: &str) -> ChatCompletionChunk {
        self.text_bytes += text.len() as u64;
        let delta = Delta {
            content: Some(text.to_owned()),
            ..self.delta()
        };
        self.chunk(delta, None)
    }

    /// The last chunk: no text, `finish_reason`.
    pub(crate) fn finish(&mut self, reason: &str) -> ChatCompletionChunk {
        let delta = self.delta();
        self.chunk(delta, Some(reason))
    }

    /// The stream's usage: the prompt's estimate, and `completion` tokens when the provider
    /// counted them, else the estimate of the text streamed.
    pub(crate) fn usage(&self, completion: Option<u64>) -> Usage {
        let completion =
            completion.unwrap_or_else(|| llmgate_core::tokens::estimate_bytes(self.text_bytes));
        usage(self.prompt_tokens, completion)
    }

    fn delta(&mut self) -> Delta {
        let mut d = Delta::default();
        if !self.role_sent {
            d.role = Some("assistant".to_owned());
            self.role_sent = true;
        }
        d
    }

    fn chunk(&self, delta: Delta, finish: Option<&str>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish.map(str::to_owned),
                logprobs: None,
            }],
            usage: None,
            extra: Map::new(),
        }
    }
}

/// A usage of `prompt` and `completion` tokens.
pub(crate) fn usage(prompt: u64, completion: u64) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: None,
        completion_tokens_details: None,
        extra: Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_first_then_text_then_finish_and_estimated_usage() {
        let mut t = TextChunks::new("m", "12345678");
        let a = t.text("Hel");
        assert_eq!(a.choices[0].delta.role.as_deref(), Some("assistant"));
        let b = t.text("lo!");
        assert_eq!(b.choices[0].delta.role, None);
        assert_eq!(b.choices[0].delta.content.as_deref(), Some("lo!"));
        let end = t.finish("stop");
        assert_eq!(end.choices[0].finish_reason.as_deref(), Some("stop"));
        let u = t.usage(None);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (2, 2, 4)
        );
        assert_eq!(t.usage(Some(9)).completion_tokens, 9);
    }
}

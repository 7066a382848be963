//! Chat messages as one prompt string, for providers whose models take text in and text out
//! (SageMaker's Hugging Face TGI endpoints, Replicate's language models), as LiteLLM builds it:
//!
//! - **A template of the deployment's**, LiteLLM's "custom prompt template" keys in
//!   `litellm_params`: `initial_prompt_value`, `roles` (`{role: {pre_message, post_message}}`),
//!   `final_prompt_value`, `bos_token`, `eos_token`. The prompt is `bos_token` +
//!   `initial_prompt_value`, then each message as `pre_message` + its text + `post_message`
//!   (an assistant message followed by `eos_token`, and a `bos_token` again before the next
//!   system or user message), then `final_prompt_value`.
//! - **Else Llama 2's chat format** for a model whose name has `llama-2` and `chat` in it
//!   (`[INST] <<SYS>>\n...\n<</SYS>>\n [/INST]\n`, `[INST] ... [/INST]\n`).
//! - **Else** the messages' texts joined with a space, as LiteLLM's default.
//!
//! LiteLLM also fetches chat templates from the Hugging Face Hub by model name; llmgate sends
//! nothing to the Hub: write the model's template with `roles` instead. The template keys are
//! never sent to the provider as parameters ([`TEMPLATE_KEYS`]).
//!
//! [`sampling`] reads the request's sampling parameters for such a model: OpenAI's typed ones
//! for the dialect to rename, the rest (the client's other fields, the deployment's defaults)
//! to pass as they are; OpenAI's parameters a text model has no use for (`tools`,
//! `response_format`, penalties, `logprobs`, ...) are refused, or dropped with `drop_params`.

use llmgate_core::wire::chat::Message;
use llmgate_core::wire::ChatCompletionRequest;
use llmgate_core::DeploymentSpec;
use serde_json::{Map, Value};

use crate::dialect::Ctx;
use crate::error::Error;

/// The `litellm_params` keys of a custom prompt template.
pub(crate) const TEMPLATE_KEYS: &[&str] = &[
    "initial_prompt_value",
    "roles",
    "final_prompt_value",
    "bos_token",
    "eos_token",
];

/// Deployment keys that configure the gateway's call, never sent as parameters.
const DEPLOYMENT_KEYS: &[&str] = &["model_id", "hf_model_name", "aws_sagemaker_allow_zero_temp"];

/// OpenAI parameters a text-generation model has no equivalent for.
const REFUSED: &[&str] = &[
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "response_format",
    "frequency_penalty",
    "presence_penalty",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "parallel_tool_calls",
    "reasoning_effort",
    "modalities",
    "audio",
    "prediction",
];

/// A chat request's sampling parameters (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Sampling {
    /// `max_completion_tokens`, else `max_tokens`.
    pub(crate) max_tokens: Option<u64>,
    /// `temperature`.
    pub(crate) temperature: Option<f64>,
    /// `top_p`.
    pub(crate) top_p: Option<f64>,
    /// `stop`, as a list.
    pub(crate) stop: Option<Vec<String>>,
    /// `n`.
    pub(crate) n: Option<u32>,
    /// `seed`.
    pub(crate) seed: Option<i64>,
    /// Every other parameter, as sent (the client's over the deployment's defaults).
    pub(crate) other: Map<String, Value>,
}

/// Reads `r`'s sampling parameters on `ctx`'s deployment.
pub(crate) fn sampling(ctx: &Ctx<'_>, r: &ChatCompletionRequest) -> Result<Sampling, Error> {
    let p = ctx.params();
    if r.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        ctx.unsupported("tools")?;
    }
    if r.tool_choice.as_ref().is_some_and(|c| !c.is_null()) {
        ctx.unsupported("tool_choice")?;
    }
    if r.response_format.is_some() {
        ctx.unsupported("response_format")?;
    }
    p.refuse(REFUSED)?;
    let stop = p
        .or(r.stop.clone(), "stop", |v| Some(v.clone()))
        .and_then(|v| match v {
            Value::String(s) => Some(vec![s]),
            Value::Array(items) => Some(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        });
    let typed = [
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "n",
        "stop",
        "seed",
        "user",
    ];
    let other = p
        .entries()
        .filter(|(k, _)| {
            !typed.contains(k)
                && !REFUSED.contains(k)
                && !TEMPLATE_KEYS.contains(k)
                && !DEPLOYMENT_KEYS.contains(k)
        })
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect();
    Ok(Sampling {
        max_tokens: r
            .max_completion_tokens
            .or(r.max_tokens)
            .or_else(|| p.get("max_completion_tokens").and_then(Value::as_u64))
            .or_else(|| p.get("max_tokens").and_then(Value::as_u64)),
        temperature: p.or(r.temperature, "temperature", Value::as_f64),
        top_p: p.or(r.top_p, "top_p", Value::as_f64),
        stop,
        n: p.or(r.n, "n", |v| v.as_u64().and_then(|n| u32::try_from(n).ok())),
        seed: p.or(r.seed, "seed", Value::as_i64),
        other,
    })
}

/// Llama 2's chat format, as LiteLLM writes it: (role, pre, post).
const LLAMA_2_CHAT: &[(&str, &str, &str)] = &[
    ("system", "[INST] <<SYS>>\n", "\n<</SYS>>\n [/INST]\n"),
    ("user", "[INST] ", " [/INST]\n"),
    ("assistant", "", "\n"),
];

/// The prompt for `messages` on `dep` (see the module docs).
pub(crate) fn build(dep: &DeploymentSpec, messages: &[Message]) -> String {
    let defaults = &dep.default_params;
    let custom = TEMPLATE_KEYS.iter().any(|k| defaults.contains_key(*k));
    if custom {
        let text = |key: &str| defaults.get(key).and_then(Value::as_str).unwrap_or("");
        let roles = defaults.get("roles");
        let part = |role: &str, which: &str| {
            roles
                .and_then(|r| r.get(role))
                .and_then(|r| r.get(which))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        return render(
            messages,
            Tokens {
                initial: text("initial_prompt_value"),
                last: text("final_prompt_value"),
                bos: text("bos_token"),
                eos: text("eos_token"),
            },
            &|role, which| part(role, which),
        );
    }
    let name = dep.model.to_ascii_lowercase();
    if name.contains("llama-2") && name.contains("chat") {
        let part = |role: &str, which: &str| {
            LLAMA_2_CHAT
                .iter()
                .find(|(r, _, _)| *r == role)
                .map_or(
                    "",
                    |(_, pre, post)| if which == "pre_message" { pre } else { post },
                )
        };
        return render(messages, Tokens::default(), &part);
    }
    messages.iter().map(text_of).collect::<Vec<_>>().join(" ")
}

/// The strings around the messages.
#[derive(Default, Clone, Copy)]
struct Tokens<'a> {
    initial: &'a str,
    last: &'a str,
    bos: &'a str,
    eos: &'a str,
}

fn render<'p>(messages: &[Message], t: Tokens<'_>, part: &dyn Fn(&str, &str) -> &'p str) -> String {
    let mut prompt = String::new();
    prompt.push_str(t.bos);
    prompt.push_str(t.initial);
    let mut bos_open = true;
    for m in messages {
        let role = m.role.as_str();
        if matches!(role, "system" | "user") && !bos_open {
            prompt.push_str(t.bos);
            bos_open = true;
        }
        prompt.push_str(part(role, "pre_message"));
        prompt.push_str(&text_of(m));
        prompt.push_str(part(role, "post_message"));
        if role == "assistant" {
            prompt.push_str(t.eos);
            bos_open = false;
        }
    }
    prompt.push_str(t.last);
    prompt
}

/// A message's text (text parts joined).
fn text_of(m: &Message) -> String {
    m.content.as_ref().map(|c| c.text()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::ProviderKind;
    use serde_json::json;

    fn messages() -> Vec<Message> {
        serde_json::from_value(json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": [{"type": "text", "text": "again"}]},
        ]))
        .unwrap()
    }

    #[test]
    fn the_default_joins_the_texts() {
        let dep = DeploymentSpec::new("d", "g", ProviderKind::OpenAi, "my-endpoint");
        assert_eq!(build(&dep, &messages()), "Be brief. hi hello again");
    }

    #[test]
    fn llama_2_chat() {
        let dep = DeploymentSpec::new("d", "g", ProviderKind::OpenAi, "jumpstart-llama-2-7b-chat");
        assert_eq!(
            build(&dep, &messages()),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n [/INST]\n[INST] hi [/INST]\nhello\n[INST] again [/INST]\n"
        );
    }

    #[test]
    fn a_custom_template() {
        let mut dep = DeploymentSpec::new("d", "g", ProviderKind::OpenAi, "m");
        dep.default_params = json!({
            "initial_prompt_value": "<start>",
            "roles": {"user": {"pre_message": "U: ", "post_message": "\n"},
                      "assistant": {"pre_message": "A: "}},
            "final_prompt_value": "A:",
            "bos_token": "<s>",
            "eos_token": "</s>",
        })
        .as_object()
        .cloned()
        .unwrap();
        assert_eq!(
            build(&dep, &messages()),
            "<s><start>Be brief.U: hi\nA: hello</s><s>U: again\nA:"
        );
    }
}

//! The mock upstreams of `tests/openresponses/run`, as a process: the testkit's tool-calling
//! OpenAI chat mock ([`MockProvider::start_tool_caller`]) and its Responses API mock
//! ([`MockProvider::start_responses`], which also compacts). It prints their `/v1` base URLs,
//! one a line in that order, then serves until it is interrupted or terminated.

use std::io::Write as _;

use llmgate_tests::MockProvider;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let chat = MockProvider::start_tool_caller().await;
    let responses = MockProvider::start_responses().await;
    let mut out = std::io::stdout();
    writeln!(out, "{}\n{}", chat.v1_url(), responses.v1_url())?;
    out.flush()?;
    tokio::signal::ctrl_c().await
}

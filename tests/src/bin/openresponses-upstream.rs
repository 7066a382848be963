//! A mock OpenAI-compatible chat upstream for `tests/openresponses/run`: the testkit's
//! tool-calling mock ([`MockProvider::start_tool_caller`]) as a process. It prints its
//! `/v1` base URL on one line of stdout, then serves until it is interrupted or terminated.

use std::io::Write as _;

use llmgate_tests::MockProvider;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mock = MockProvider::start_tool_caller().await;
    let mut out = std::io::stdout();
    writeln!(out, "{}", mock.v1_url())?;
    out.flush()?;
    tokio::signal::ctrl_c().await
}

//! Virtual-key management, LiteLLM's `/key/*` API: [`KeyAdmin`] (in `llmgate-admin`) does the
//! work, for the HTTP endpoints (master key only) and for `llmgate keys` on the command line.

pub use llmgate_admin::keys::*;

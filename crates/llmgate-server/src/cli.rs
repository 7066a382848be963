//! The command line, compatible with `litellm`'s.
//!
//! ```text
//! llmgate --config config.yaml [--port 4000] [--host 0.0.0.0] [--num_workers N]
//! llmgate --model ollama/llama3.2 [--api_base URL] [--api_key KEY]
//! llmgate check --config config.yaml
//! ```
//!
//! LiteLLM spells its flags with underscores (`--num_workers`, `--api_base`); both spellings
//! are accepted for every multi-word flag.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// llmgate: an OpenAI-compatible LLM gateway that reads LiteLLM's config.yaml.
#[derive(Debug, Parser)]
#[command(name = "llmgate", version)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// What to serve: a config file or one model.
    #[command(flatten)]
    pub source: Source,

    /// How to serve it.
    #[command(flatten)]
    pub serve: ServeArgs,

    /// How to log.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a config file: print every notice and problem, exit 1 if it is invalid.
    Check {
        /// The LiteLLM-style config.yaml to validate.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Manage virtual keys in the config's key store, without the HTTP API.
    Keys {
        /// The config.yaml whose database holds the keys (`database_url`, else llmgate.db
        /// beside it).
        #[arg(long, short = 'c', value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        /// What to do.
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Probe a running gateway's /health/liveliness (the image's health check; no curl
    /// needed): exit 0 on 200, else 1 with the reason on stderr.
    Healthcheck(crate::healthcheck::Probe),
}

/// `llmgate keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key and print it (the secret is shown once).
    Create(Box<KeySettings>),
    /// List keys, newest first.
    List {
        /// Only this user's keys.
        #[arg(long = "user_id", visible_alias = "user-id")]
        user_id: Option<String>,
        /// Only this team's keys.
        #[arg(long = "team_id", visible_alias = "team-id")]
        team_id: Option<String>,
        /// Page (1-based).
        #[arg(long, default_value_t = 1)]
        page: u32,
        /// Keys per page (at most 100).
        #[arg(long, default_value_t = 100)]
        size: u32,
    },
    /// Show one key's settings and spend.
    Info {
        /// The key's secret (sk-...) or token.
        key: String,
    },
    /// Delete keys, by secret, token or alias.
    Delete {
        /// Secrets (sk-...) or tokens.
        keys: Vec<String>,
        /// Aliases.
        #[arg(long = "alias")]
        aliases: Vec<String>,
    },
}

/// The settings of `llmgate keys create`, named as in `/key/generate`.
#[derive(Debug, Args)]
pub struct KeySettings {
    /// Models the key may call (repeat, or comma-separated); all when absent.
    #[arg(long = "models", value_delimiter = ',')]
    pub models: Vec<String>,
    /// A name for the key.
    #[arg(long = "key_alias", visible_alias = "alias")]
    pub key_alias: Option<String>,
    /// USD the key may spend per budget period.
    #[arg(long = "max_budget", visible_alias = "max-budget")]
    pub max_budget: Option<f64>,
    /// Budget period, e.g. 30d or 1h.
    #[arg(long = "budget_duration", visible_alias = "budget-duration")]
    pub budget_duration: Option<String>,
    /// How long the key works, e.g. 90d.
    #[arg(long = "duration")]
    pub duration: Option<String>,
    /// Requests per minute.
    #[arg(long = "rpm_limit", visible_alias = "rpm-limit")]
    pub rpm_limit: Option<u64>,
    /// Tokens per minute.
    #[arg(long = "tpm_limit", visible_alias = "tpm-limit")]
    pub tpm_limit: Option<u64>,
    /// Requests in flight at once.
    #[arg(
        long = "max_parallel_requests",
        visible_alias = "max-parallel-requests"
    )]
    pub max_parallel_requests: Option<u64>,
    /// The user the key belongs to.
    #[arg(long = "user_id", visible_alias = "user-id")]
    pub user_id: Option<String>,
    /// The team the key belongs to.
    #[arg(long = "team_id", visible_alias = "team-id")]
    pub team_id: Option<String>,
}

/// Where the model list comes from: a config file, or a single model (sidecar mode).
#[derive(Debug, Args)]
#[group(skip)]
#[command(group(ArgGroup::new("source").required(true).args(["config", "model"])))]
pub struct Source {
    /// A LiteLLM-style config.yaml.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Serve one model without a config file, e.g. `ollama/llama3.2`.
    #[arg(long, value_name = "PROVIDER/MODEL")]
    pub model: Option<String>,

    /// The model's API base URL (sidecar mode, with --model).
    #[arg(
        long = "api_base",
        visible_alias = "api-base",
        value_name = "URL",
        conflicts_with = "config"
    )]
    pub api_base: Option<String>,

    /// The model's API key (with --model).
    #[arg(
        long = "api_key",
        visible_alias = "api-key",
        value_name = "KEY",
        conflicts_with = "config"
    )]
    pub api_key: Option<String>,
}

/// The listener and its workers.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// The port to listen on.
    #[arg(long, default_value_t = 4000)]
    pub port: u16,

    /// Worker threads serving requests [default: the number of CPUs].
    #[arg(long = "num_workers", visible_alias = "num-workers", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub num_workers: Option<u16>,

    /// After SIGTERM, SIGINT or SIGHUP, how long requests in flight (streams included) may take
    /// to finish before they are cut; the spend records are written within it too.
    #[arg(
        long = "graceful-shutdown-seconds",
        visible_alias = "graceful_shutdown_seconds",
        value_name = "SECONDS",
        default_value_t = 30
    )]
    pub graceful_shutdown_seconds: u64,

    /// Also accept cleartext HTTP/2 with prior knowledge (h2c).
    #[arg(long)]
    pub h2c: bool,
}

impl ServeArgs {
    /// `host:port`, with IPv6 hosts in brackets.
    pub fn listen_address(&self) -> String {
        std::net::SocketAddr::new(self.host, self.port).to_string()
    }

    /// The worker threads to run.
    pub fn workers(&self) -> usize {
        self.num_workers.map_or_else(
            || std::thread::available_parallelism().map_or(1, usize::from),
            usize::from,
        )
    }

    /// The bound on draining after a shutdown signal.
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.graceful_shutdown_seconds)
    }
}

/// Logging flags; `RUST_LOG`, when set, overrides `--log-level`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long = "log-format", visible_alias = "log_format", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Log level or filter directives (`info`, `debug`, `llmgate=debug,info`).
    #[arg(
        long = "log-level",
        visible_alias = "log_level",
        value_name = "FILTER",
        default_value = "info"
    )]
    pub log_level: String,

    /// LiteLLM's `--debug`: the same as `--log-level debug`.
    #[arg(long, visible_alias = "detailed_debug")]
    pub debug: bool,
}

impl LogArgs {
    /// The filter directives to use when `RUST_LOG` is not set.
    pub fn filter(&self) -> &str {
        if self.debug {
            "debug"
        } else {
            &self.log_level
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("llmgate").chain(args.iter().copied()))
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_with_litellm_defaults() {
        let cli = parse(&["--config", "config.yaml"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.source.config, Some(PathBuf::from("config.yaml")));
        assert_eq!(cli.serve.listen_address(), "0.0.0.0:4000");
        assert_eq!(cli.serve.graceful_shutdown_seconds, 30);
        assert!(cli.serve.workers() >= 1);
        assert_eq!(cli.log.log_format, LogFormat::Pretty);
        assert_eq!(cli.log.filter(), "info");
    }

    #[test]
    fn underscores_and_dashes_both_work() {
        for flag in ["--num_workers", "--num-workers"] {
            let cli = parse(&["-c", "c.yaml", flag, "3"]).unwrap();
            assert_eq!(cli.serve.workers(), 3);
        }
        for flag in ["--api_base", "--api-base"] {
            let cli =
                parse(&["--model", "ollama/llama3.2", flag, "http://127.0.0.1:11434"]).unwrap();
            assert_eq!(
                cli.source.api_base.as_deref(),
                Some("http://127.0.0.1:11434")
            );
        }
        let cli = parse(&["--model", "openai/gpt-4o", "--api_key", "sk-test"]).unwrap();
        assert_eq!(cli.source.api_key.as_deref(), Some("sk-test"));
        let cli = parse(&[
            "-c",
            "c.yaml",
            "--log_format",
            "json",
            "--log_level",
            "debug",
        ])
        .unwrap();
        assert_eq!(cli.log.log_format, LogFormat::Json);
        assert_eq!(cli.log.filter(), "debug");
    }

    #[test]
    fn host_port_and_ipv6() {
        let cli = parse(&["-c", "c.yaml", "--host", "::1", "--port", "8080"]).unwrap();
        assert_eq!(cli.serve.listen_address(), "[::1]:8080");
    }

    #[test]
    fn sidecar_needs_no_config() {
        let cli = parse(&["--model", "ollama/llama3.2"]).unwrap();
        assert_eq!(cli.source.model.as_deref(), Some("ollama/llama3.2"));
        assert!(cli.source.config.is_none());
    }

    #[test]
    fn a_source_is_required_and_only_one() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--port", "4000"]).is_err());
        assert!(parse(&["-c", "c.yaml", "--model", "ollama/llama3.2"]).is_err());
        assert!(parse(&["-c", "c.yaml", "--api_base", "http://x"]).is_err());
        assert!(parse(&["-c", "c.yaml", "--num_workers", "0"]).is_err());
    }

    #[test]
    fn check_takes_its_own_config() {
        let cli = parse(&["check", "--config", "c.yaml"]).unwrap();
        match cli.command {
            Some(Command::Check { config }) => assert_eq!(config, PathBuf::from("c.yaml")),
            _ => panic!("expected check"),
        }
        assert!(parse(&["check"]).is_err());
    }

    #[test]
    fn keys_subcommands() {
        let cli = parse(&[
            "keys",
            "create",
            "-c",
            "c.yaml",
            "--models",
            "a,b",
            "--max_budget",
            "5",
            "--alias",
            "ci",
        ])
        .unwrap();
        match cli.command {
            Some(Command::Keys {
                config,
                action: KeysAction::Create(s),
            }) => {
                assert_eq!(config, Some(PathBuf::from("c.yaml")));
                assert_eq!(s.models, vec!["a", "b"]);
                assert_eq!(
                    (s.max_budget, s.key_alias.as_deref()),
                    (Some(5.0), Some("ci"))
                );
            }
            other => panic!("expected keys create, got {other:?}"),
        }
        let cli = parse(&[
            "keys", "--config", "c.yaml", "delete", "sk-1", "--alias", "x",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Keys { action: KeysAction::Delete { ref keys, ref aliases }, .. })
                if keys == &["sk-1"] && aliases == &["x"]
        ));
    }

    #[test]
    fn debug_flags_mean_debug() {
        for flag in ["--debug", "--detailed_debug"] {
            assert_eq!(
                parse(&["-c", "c.yaml", flag]).unwrap().log.filter(),
                "debug"
            );
        }
    }
}

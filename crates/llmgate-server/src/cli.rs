//! The command line, compatible with `litellm`'s.
//!
//! ```text
//! llmgate --config config.yaml [--port 4000] [--host 0.0.0.0] [--num_workers N]
//! llmgate --model ollama/llama3.2 [--api_base URL] [--api_key KEY]
//! llmgate --config config.yaml --ssl_certfile_path cert.pem --ssl_keyfile_path key.pem \
//!         [--ssl-reload-seconds 10]
//! llmgate check --config config.yaml
//! llmgate import litellm --database-url postgresql://... --config config.yaml [--dry-run]
//! ```
//!
//! LiteLLM spells its flags with underscores (`--num_workers`, `--api_base`); both spellings
//! are accepted for every multi-word flag.
//!
//! The environment LiteLLM's image users set is read as LiteLLM reads it, and a flag always
//! wins over its variable:
//!
//! | variable | default for |
//! |---|---|
//! | `CONFIG_FILE_PATH` | `--config` (when neither `--config` nor `--model` is given) |
//! | `HOST` | `--host` |
//! | `PORT` | `--port` |
//! | `NUM_WORKERS` | `--num_workers` |
//! | `SSL_CERTFILE_PATH` | `--ssl_certfile_path` |
//! | `SSL_KEYFILE_PATH` | `--ssl_keyfile_path` |
//!
//! A variable set to the empty string counts as unset, as in LiteLLM (click ignores empty
//! values): `PORT=` in a compose file or an empty Helm value leaves the default.
//!
//! `CONFIG_FILE_PATH` is not a clap `env` default for serving because a variable set for the
//! container image would then conflict with `--model`: [`Source::resolve`] applies it. `check`,
//! `keys` and `import` take it as their `--config` default. `LITELLM_MASTER_KEY` and
//! `DATABASE_URL` are read by the config loader (`llmgate-config`), not here.
//!
//! With `--ssl_certfile_path` and `--ssl_keyfile_path` (both or neither) the listener serves
//! HTTPS, HTTP/2 and HTTP/1.1 by ALPN ([`crate::tls`]); the files are checked again every
//! `--ssl-reload-seconds` and a renewed pair is served without a restart.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};

use crate::tls::CertFiles;

/// The variable that names the config file when no flag says what to serve.
pub const CONFIG_FILE_PATH: &str = "CONFIG_FILE_PATH";

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

impl Cli {
    /// Parse the process's arguments and environment, a variable set to the empty string
    /// counting as unset (clap's `env` alone would reject `PORT=` as an invalid port).
    pub fn parse_args() -> Self {
        let command = without_empty_env(Self::command(), &|name| std::env::var_os(name));
        let mut matches = command.get_matches();
        Self::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| {
            e.format(&mut Self::command()).exit();
        })
    }
}

/// `command` without the `env` default of any argument whose variable `env` finds set to the
/// empty string, in every subcommand too.
fn without_empty_env(
    command: clap::Command,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> clap::Command {
    command
        .mut_args(|arg| {
            let empty = arg
                .get_env()
                .and_then(|name| name.to_str())
                .and_then(env)
                .is_some_and(|value| value.is_empty());
            if empty {
                arg.env(None)
            } else {
                arg
            }
        })
        .mut_subcommands(|sub| without_empty_env(sub, env))
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a config file: print every notice and problem, exit 1 if it is invalid.
    Check {
        /// The LiteLLM-style config.yaml to validate.
        #[arg(long, short = 'c', value_name = "FILE", env = CONFIG_FILE_PATH)]
        config: PathBuf,
    },
    /// Manage virtual keys in the config's key store, without the HTTP API.
    Keys {
        /// The config.yaml whose database holds the keys (`database_url`, else llmgate.db
        /// beside it).
        #[arg(long, short = 'c', value_name = "FILE", global = true, env = CONFIG_FILE_PATH)]
        config: Option<PathBuf>,
        /// What to do.
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Bring keys (with their limits, budgets and spend), teams and end users over from
    /// another gateway's database.
    Import {
        /// Where from.
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Probe a running gateway's /health/liveliness (the image's health check; no curl
    /// needed): exit 0 on 200, else 1 with the reason on stderr.
    Healthcheck(crate::healthcheck::Probe),
}

/// `llmgate import ...`.
#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// A LiteLLM proxy's PostgreSQL database (read only): every key keeps working with its
    /// secret, limits and remaining budget. What exists already is skipped.
    Litellm {
        /// The LiteLLM database, postgresql://user:password@host:5432/litellm. Never taken
        /// from DATABASE_URL, which names llmgate's own database.
        #[arg(
            long = "database-url",
            visible_alias = "database_url",
            value_name = "URL"
        )]
        database_url: String,
        /// The config.yaml whose database receives them (`database_url`, else llmgate.db
        /// beside it). Not needed with --dry-run.
        #[arg(long, short = 'c', value_name = "FILE", env = CONFIG_FILE_PATH)]
        config: Option<PathBuf>,
        /// Print what would be imported and what cannot be; write nothing.
        #[arg(long = "dry-run", visible_alias = "dry_run")]
        dry_run: bool,
    },
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

/// Where the model list comes from: a config file, or a single model (sidecar mode). Neither
/// is required by clap: [`Source::resolve`] falls back to `CONFIG_FILE_PATH` and names all
/// three ways when none is given.
#[derive(Debug, Args)]
pub struct Source {
    /// A LiteLLM-style config.yaml [default: $CONFIG_FILE_PATH when --model is not given].
    #[arg(long, short = 'c', value_name = "FILE", conflicts_with = "model")]
    pub config: Option<PathBuf>,

    /// Serve one model without a config file, e.g. `ollama/llama3.2`.
    #[arg(long, value_name = "PROVIDER/MODEL")]
    pub model: Option<String>,

    /// The model's API base URL (sidecar mode, with --model).
    #[arg(
        long = "api_base",
        visible_alias = "api-base",
        value_name = "URL",
        requires = "model",
        conflicts_with = "config"
    )]
    pub api_base: Option<String>,

    /// The model's API key (with --model).
    #[arg(
        long = "api_key",
        visible_alias = "api-key",
        value_name = "KEY",
        requires = "model",
        conflicts_with = "config"
    )]
    pub api_key: Option<String>,
}

/// What to serve, once the flags and `CONFIG_FILE_PATH` are taken into account.
#[derive(Debug, PartialEq, Eq)]
pub enum Serving<'a> {
    /// A config file: `--config`, else `CONFIG_FILE_PATH`.
    Config(PathBuf),
    /// One model (`--model`, with its `--api_base` and `--api_key`).
    Model {
        /// `provider/model`.
        model: &'a str,
        /// `--api_base`.
        api_base: Option<&'a str>,
        /// `--api_key`.
        api_key: Option<&'a str>,
    },
}

impl Source {
    /// What to serve: `--config`, else `--model`, else the file `CONFIG_FILE_PATH` names
    /// (looked up with `env`; an empty value counts as unset). With none of them, the error
    /// says all three ways.
    pub fn resolve(&self, env: impl Fn(&str) -> Option<OsString>) -> Result<Serving<'_>, String> {
        if let Some(path) = &self.config {
            return Ok(Serving::Config(path.clone()));
        }
        if let Some(model) = &self.model {
            return Ok(Serving::Model {
                model,
                api_base: self.api_base.as_deref(),
                api_key: self.api_key.as_deref(),
            });
        }
        match env(CONFIG_FILE_PATH) {
            Some(path) if !path.is_empty() => Ok(Serving::Config(PathBuf::from(path))),
            _ => Err(format!(
                "nothing to serve: give --config FILE, set {CONFIG_FILE_PATH}=FILE, or give \
                 --model PROVIDER/MODEL"
            )),
        }
    }
}

/// The listener and its workers.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// The port to listen on.
    #[arg(long, env = "PORT", default_value_t = 4000)]
    pub port: u16,

    /// Worker threads serving requests [default: the number of CPUs].
    #[arg(long = "num_workers", visible_alias = "num-workers", value_name = "N",
          env = "NUM_WORKERS", value_parser = clap::value_parser!(u16).range(1..))]
    pub num_workers: Option<u16>,

    /// Whether an idle worker takes tasks queued on a busy one. `auto`: off with one worker
    /// (there is nothing to take; each worker is then a single-threaded runtime, which costs
    /// less per request), on with more (docs/deployment.md, "Sizing").
    #[arg(long = "work-stealing", visible_alias = "work_stealing", value_name = "WHEN",
          env = "LLMGATE_WORK_STEALING", value_enum, default_value_t = WorkStealing::Auto)]
    pub work_stealing: WorkStealing,

    /// After SIGTERM or SIGINT, how long requests in flight (streams included) may take to
    /// finish before they are cut; the spend records are written within it too.
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

    /// Reload the config file when it changes: checked every 2 s (modification time, size and
    /// content, so a Kubernetes ConfigMap update is seen). SIGHUP reloads it in any case
    /// (docs/deployment.md, "Config reload").
    #[arg(long = "watch-config", visible_alias = "watch_config", env = "LLMGATE_WATCH_CONFIG",
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub watch_config: bool,

    /// Take the listening sockets from the llmgate running on the same address instead of
    /// binding them: it hands them over when it gets SIGQUIT, then drains and exits
    /// (docs/upgrade.md).
    #[arg(long)]
    pub upgrade: bool,

    /// The Unix socket the listening sockets are handed over on; the running process and the
    /// one started with --upgrade must name the same [default:
    /// /tmp/llmgate_upgrade_<host>_<port>.sock].
    #[arg(long = "upgrade_sock", visible_alias = "upgrade-sock", value_name = "PATH",
          value_parser = upgrade_sock_path)]
    pub upgrade_sock: Option<PathBuf>,

    /// HTTPS instead of HTTP.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// LiteLLM's TLS flags: both or neither (LiteLLM serves plain HTTP when one is missing; llmgate
/// refuses to start instead).
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with the private key in this PEM file
    /// (PKCS#8, PKCS#1 RSA or SEC1 EC).
    #[arg(
        long = "ssl_keyfile_path",
        visible_alias = "ssl-keyfile-path",
        value_name = "FILE",
        env = "SSL_KEYFILE_PATH",
        requires = "ssl_certfile_path"
    )]
    pub ssl_keyfile_path: Option<PathBuf>,

    /// Serve HTTPS with the certificate chain in this PEM file, the server's certificate first.
    #[arg(
        long = "ssl_certfile_path",
        visible_alias = "ssl-certfile-path",
        value_name = "FILE",
        env = "SSL_CERTFILE_PATH",
        requires = "ssl_keyfile_path"
    )]
    pub ssl_certfile_path: Option<PathBuf>,

    /// How often the certificate and key files are checked for a renewal, which new
    /// connections then get without a restart (0: never; the files are read at start only).
    #[arg(
        long = "ssl-reload-seconds",
        visible_alias = "ssl_reload_seconds",
        value_name = "SECONDS",
        default_value_t = 10
    )]
    pub ssl_reload_seconds: u64,
}

impl TlsArgs {
    /// The certificate and key to serve HTTPS with, when both are given.
    pub fn files(&self) -> Option<CertFiles> {
        match (&self.ssl_certfile_path, &self.ssl_keyfile_path) {
            (Some(cert), Some(key)) => Some(CertFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    }

    /// How often to check the files for a renewal; `None` for never.
    pub fn reload_every(&self) -> Option<Duration> {
        (self.ssl_reload_seconds > 0).then(|| Duration::from_secs(self.ssl_reload_seconds))
    }
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

    /// Whether the workers steal each other's tasks, `--work-stealing` resolved.
    pub fn steals_work(&self) -> bool {
        match self.work_stealing {
            WorkStealing::On => true,
            WorkStealing::Off => false,
            WorkStealing::Auto => self.workers() > 1,
        }
    }

    /// The bound on draining after a shutdown signal.
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.graceful_shutdown_seconds)
    }

    /// `--upgrade_sock`, else a path named after the listen address. Named after it, two
    /// gateways on one host never hand their sockets to each other's successor, and a new
    /// process started on another address finds no partner instead of taking sockets it would
    /// not listen on (Pingora matches the handed-over sockets to listeners by address).
    pub fn upgrade_sock(&self) -> PathBuf {
        self.upgrade_sock.clone().unwrap_or_else(|| {
            PathBuf::from(format!(
                "/tmp/llmgate_upgrade_{}_{}.sock",
                self.host, self.port
            ))
        })
    }
}

/// Longest path a Unix socket address holds (`sun_path` is 108 bytes with its final NUL);
/// Pingora panics on a longer one, so it is refused here with a message.
const MAX_SOCKET_PATH: usize = 107;

/// `--upgrade_sock`: a path short enough for a Unix socket.
fn upgrade_sock_path(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("give a path".to_owned());
    }
    if value.len() > MAX_SOCKET_PATH {
        return Err(format!(
            "a Unix socket path has at most {MAX_SOCKET_PATH} bytes; this one has {}",
            value.len()
        ));
    }
    Ok(PathBuf::from(value))
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

    /// Longest a request's log line waits to be written with others, in milliseconds; `0`
    /// writes each line at once (one `write` per request).
    #[arg(
        long = "log-flush-ms",
        env = "LLMGATE_LOG_FLUSH_MS",
        value_name = "MS",
        default_value_t = 50
    )]
    pub log_flush_ms: u64,
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

/// `--work-stealing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorkStealing {
    /// Off with one worker, on with more.
    Auto,
    /// One multi-threaded runtime: an idle worker takes a busy one's tasks.
    On,
    /// One single-threaded runtime per worker: a connection stays on the worker that
    /// accepted it.
    Off,
}

#[cfg(test)]
mod tests;

//! Logging: `tracing` to stderr, human-readable or JSON, filtered by `RUST_LOG` or `--log-level`.
//!
//! Pingora logs through the `log` crate; the `tracing-log` bridge (installed by
//! `tracing-subscriber`'s `init`) turns those records into events of the same stream, filtered
//! by the same directives (targets such as `pingora_core`). Without `RUST_LOG`, Pingora's own
//! lines are shown from `warn` up unless `--log-level` names `pingora_core`.
//!
//! The request's line (`llmgate::request`) is written by [`line::RequestLines`], a formatter of
//! its own that writes what the fmt layer would, for a tenth of the work, into a batch written
//! to stderr every 50 ms (`--log-flush-ms`; [`batch`]); the fmt layer writes every other line
//! at once, after the request lines before it.

mod batch;
mod line;

pub(crate) use batch::flush;

use std::io::IsTerminal as _;

use anyhow::Context as _;
use tracing::Subscriber;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{fmt, EnvFilter, Layer as _};

use crate::cli::{LogArgs, LogFormat};

/// `--log-level`'s directives, with Pingora held to warnings unless they name it: its info
/// lines narrate its own start-up and shutdown (including a "grace period 30s starts" that
/// [`crate::shutdown`] usually cuts short), which says nothing an operator needs. sqlx likewise:
/// at info it logs every PostgreSQL notice, such as "relation already exists, skipping" from the
/// migrations run at each start.
fn directives(filter: &str) -> String {
    let mut out = filter.to_owned();
    for (target, quiet) in [("pingora", "pingora_core=warn"), ("sqlx", "sqlx=warn")] {
        if !filter.contains(target) {
            out.push(',');
            out.push_str(quiet);
        }
    }
    out
}

/// Whether `JSON_LOGS` (LiteLLM's variable) asks for JSON: `true`, `True`, `1`, `yes`, `on`.
/// (LiteLLM takes any non-empty value; `JSON_LOGS=false` is off here.)
pub fn json_env(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "true" | "1" | "yes" | "on"
        )
    })
}

/// The filter for `--log-level` (or `--debug`), with `set_verbose: true` in the config turning
/// llmgate's own lines to debug when the command line asked for the default (`info`): an
/// explicit `--log-level` wins, as `RUST_LOG` wins over both.
fn level(args: &LogArgs, config_verbose: bool) -> String {
    match args.filter() {
        "info" if config_verbose => "info,llmgate=debug".to_owned(),
        other => other.to_owned(),
    }
}

/// Install the global subscriber: JSON lines with `--log-format json`, `JSON_LOGS=True` or
/// `config_json` (`json_logs: true` in the config), else human-readable lines. `RUST_LOG`, when
/// set, overrides `--log-level`; `config_verbose` (`set_verbose: true`) is read by [`level`].
pub fn init(args: &LogArgs, config_json: bool, config_verbose: bool) -> anyhow::Result<()> {
    let json = args.log_format == LogFormat::Json
        || config_json
        || json_env(std::env::var("JSON_LOGS").ok().as_deref());
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .with_context(|| format!("RUST_LOG={directives:?} is not a valid log filter"))?,
        _ => {
            let level = level(args, config_verbose);
            EnvFilter::try_new(directives(&level))
                .with_context(|| format!("--log-level {level:?} is not a valid log filter"))?
        }
    };
    let ansi = std::io::stderr().is_terminal();
    let lines = line::RequestLines::new(json, ansi);
    let installed = stack(filter, json, ansi, batch::AfterBuffered, lines).try_init();
    installed
        .map_err(|e| anyhow::anyhow!(e))
        .context("installing the log subscriber")?;
    // Without its thread every line is written at once.
    if args.log_flush_ms > 0 {
        let every = std::time::Duration::from_millis(args.log_flush_ms);
        if let Err(e) = batch::LINES.start(every) {
            tracing::warn!(error = %e, "the log writer thread cannot start; each request line is written at once");
        }
    }
    batch::flush_on_panic();
    Ok(())
}

/// The subscriber: `filter` global (what it disables is never built), then the request line's
/// formatter `lines`, then fmt (text or JSON) writing every other line to `writer`. `lines` sits
/// below fmt so the global max level stays the filter's (a per-layer filter under a plain layer
/// would turn it to TRACE).
fn stack<W>(
    filter: EnvFilter,
    json: bool,
    ansi: bool,
    writer: W,
    lines: line::RequestLines,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let base = tracing_subscriber::registry().with(filter).with(lines);
    let fmt = fmt::layer().with_writer(writer).with_ansi(ansi);
    match json {
        false => Box::new(base.with(fmt.with_filter(line::generic()))),
        true => Box::new(
            base.with(
                fmt.json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_filter(line::generic()),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_verbose_turns_llmgate_to_debug_unless_the_command_line_chose_a_level() {
        use clap::Parser;
        #[derive(Parser)]
        struct Args {
            #[command(flatten)]
            log: LogArgs,
        }
        let args = |argv: &[&str]| {
            Args::parse_from(std::iter::once("llmgate").chain(argv.iter().copied())).log
        };
        assert_eq!(level(&args(&[]), true), "info,llmgate=debug");
        assert_eq!(level(&args(&[]), false), "info");
        assert_eq!(level(&args(&["--log-level", "warn"]), true), "warn");
        assert_eq!(level(&args(&["--debug"]), true), "debug");
    }

    #[test]
    fn pingora_and_sqlx_are_held_to_warnings_unless_named() {
        assert_eq!(directives("info"), "info,pingora_core=warn,sqlx=warn");
        assert_eq!(
            directives("llmgate=debug,info"),
            "llmgate=debug,info,pingora_core=warn,sqlx=warn"
        );
        assert_eq!(
            directives("info,pingora_core=debug"),
            "info,pingora_core=debug,sqlx=warn"
        );
        assert_eq!(directives("sqlx=info"), "sqlx=info,pingora_core=warn");
        for d in ["info", "debug", "trace", "warn", "error", "off"] {
            assert!(EnvFilter::try_new(directives(d)).is_ok());
        }
    }

    #[test]
    fn json_logs_env_reads_like_litellm_s() {
        for on in ["True", "true", "1", "yes", " TRUE "] {
            assert!(json_env(Some(on)), "{on}");
        }
        for off in ["", "False", "false", "0", "no"] {
            assert!(!json_env(Some(off)), "{off}");
        }
        assert!(!json_env(None));
    }
}

//! `llmgate`: the LLM gateway's binary. It parses a LiteLLM-compatible command line, loads the
//! config through the `llmgate` facade, and serves the facade's Tower service on Pingora.
//!
//! Run with: `cargo run -p llmgate-server -- --config config.yaml --port 4000`

mod cli;
mod healthcheck;
mod host;
mod keys_cmd;
mod logging;
mod shutdown;

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::{RunArgs, Server};
use pingora_core::services::listening;

use crate::cli::{Cli, Command, ServeArgs, Source};
use crate::host::Host;
use crate::shutdown::{Signals, PINGORA_BACKSTOP};

/// mimalloc instead of glibc's malloc: a request allocates a few hundred small objects (headers,
/// JSON values, futures), and under load glibc's allocator showed as a quarter of all
/// instructions in a callgrind profile of the gateway. mimalloc is Microsoft's, MIT, kept, and
/// what many Rust proxies use for this reason.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// After the grace period, how long Pingora waits for its runtimes to stop.
const RUNTIME_SHUTDOWN_SECONDS: u64 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(&cli.log) {
        eprintln!("llmgate: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Some(Command::Check { config }) => return check(&config),
        Some(Command::Keys { config, action }) => keys_cmd::run(config.as_deref(), action),
        Some(Command::Healthcheck(probe)) => return healthcheck::run(&probe),
        None => serve(&cli.source, &cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llmgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `llmgate check --config FILE`: every notice and problem on stdout; exit 1 when invalid.
fn check(path: &Path) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let (report, code) = match llmgate::load_config(path) {
        Ok(loaded) => match llmgate::Gateway::new(loaded.config) {
            Ok(_) => {
                for notice in &loaded.notices {
                    let _ = writeln!(out, "{}: {notice}", notice.severity);
                }
                (format!("{}: valid", path.display()), ExitCode::SUCCESS)
            }
            Err(e) => (
                format!("{}: invalid\n{e}", path.display()),
                ExitCode::FAILURE,
            ),
        },
        Err(problems) => (
            format!("{}: invalid\n{problems}", path.display()),
            ExitCode::FAILURE,
        ),
    };
    let _ = writeln!(out, "{report}");
    code
}

/// Load the config (or the one sidecar model), then serve it until a shutdown signal.
fn serve(source: &Source, args: &ServeArgs) -> anyhow::Result<()> {
    let loaded = match (&source.config, &source.model) {
        (Some(path), _) => llmgate::load_config(path)
            .map_err(|problems| anyhow::anyhow!("{} is invalid:\n{problems}", path.display()))?,
        (None, Some(model)) => {
            llmgate::sidecar_config(model, source.api_base.as_deref(), source.api_key.as_deref())
                .map_err(|problems| {
                    anyhow::anyhow!("--model {model} cannot be served:\n{problems}")
                })?
        }
        (None, None) => anyhow::bail!("give --config FILE or --model PROVIDER/MODEL"),
    };
    for notice in &loaded.notices {
        tracing::warn!(severity = %notice.severity, "config: {notice}");
    }
    // The gateway's state (the key store's connections, its background tasks) lives on a
    // runtime of its own: Pingora's runtimes do not exist yet, and they stop before the
    // process is done with the database.
    let state = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("llmgate-state")
        .enable_all()
        .build()
        .context("starting the state runtime")?;
    let gateway = state
        .block_on(llmgate::Gateway::open(loaded.config))
        .context("building the gateway")?;

    let address = args.listen_address();
    // Pingora binds inside its runtime and panics there on failure, leaving a process that
    // serves nothing: try the address here first so a taken port fails loudly at start-up.
    drop(
        std::net::TcpListener::bind(&address)
            .with_context(|| format!("cannot listen on {address}"))?,
    );

    let host = Host::new(gateway.service(), gateway.max_request_body_bytes())
        .limits(gateway.http_limits())
        .h2c(args.h2c);
    let in_flight = host.in_flight();
    let workers = args.workers();
    let mut service = listening::Service::new("llmgate".to_string(), host);
    service.add_tcp(&address);
    service.threads = Some(workers);

    // Our stop (`shutdown::Signals`) exits the process within the grace period, spend written;
    // Pingora's own grace timer is only a backstop behind it.
    let backstop = args
        .graceful_shutdown_seconds
        .saturating_add(PINGORA_BACKSTOP.as_secs());
    let conf = ServerConf {
        threads: workers,
        grace_period_seconds: Some(backstop),
        graceful_shutdown_timeout_seconds: Some(RUNTIME_SHUTDOWN_SECONDS),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    server.add_service(service);
    tracing::info!(%address, workers, h2c = args.h2c, "llmgate listening on http://{address}");
    server.run(RunArgs {
        shutdown_signal: Box::new(Signals::new(in_flight, args.grace(), gateway.clone())),
    });
    // Only reached when the stop did not end the process in time (it exits once the spend is
    // written): write what is still queued, briefly, and go.
    tracing::warn!("the stop outlasted its grace period; exiting");
    state.block_on(gateway.shutdown_by(std::time::Instant::now() + shutdown::HURRY_WRITE));
    Ok(())
}

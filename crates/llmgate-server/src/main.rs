//! `llmgate`: the LLM gateway's binary. It parses a LiteLLM-compatible command line, loads the
//! config through the `llmgate` facade, and serves the facade's Tower service on Pingora.
//!
//! Run with: `cargo run -p llmgate-server -- --config config.yaml --port 4000`

mod cli;
mod healthcheck;
mod host;
mod import_cmd;
mod keys_cmd;
mod logging;
mod memory;
mod reload;
mod shutdown;
mod tls;
mod upgrade;

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::CommandFactory as _;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::ListenerConfig;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::{RunArgs, Server};
use pingora_core::services::listening;

use crate::cli::{Cli, Command, ServeArgs, Serving};
use crate::host::Host;
use crate::shutdown::{Signals, PINGORA_BACKSTOP};
use crate::upgrade::Handover;

/// mimalloc instead of glibc's malloc: a request allocates a few hundred small objects (headers,
/// JSON values, futures), and under load glibc's allocator showed as a quarter of all
/// instructions in a callgrind profile of the gateway. mimalloc is Microsoft's, MIT, kept, and
/// what many Rust proxies use for this reason.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// After the grace period, how long Pingora waits for its runtimes to stop.
const RUNTIME_SHUTDOWN_SECONDS: u64 = 1;

fn main() -> ExitCode {
    let huge_pages = memory::no_huge_pages();
    let cli = Cli::parse_args();
    // Serving reads its config first: `json_logs` there decides the log format.
    let serving = match &cli.command {
        Some(_) => None,
        None => match cli.source.resolve(|name| std::env::var_os(name)) {
            Ok(serving) => Some(serving),
            // Nothing to serve is a usage error, reported (and exited with) as clap's own.
            Err(message) => Cli::command()
                .error(clap::error::ErrorKind::MissingRequiredArgument, message)
                .exit(),
        },
    };
    let loaded = match serving.as_ref().map(load).transpose() {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("llmgate: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let config_json = loaded.as_ref().is_some_and(|l| {
        l.config.general_settings.json_logs == Some(true)
            || l.config.litellm_settings.json_logs == Some(true)
    });
    let config_verbose = loaded.as_ref().is_some_and(|l| {
        l.config.general_settings.set_verbose == Some(true)
            || l.config.litellm_settings.set_verbose == Some(true)
    });
    if let Err(e) = logging::init(&cli.log, config_json, config_verbose) {
        eprintln!("llmgate: {e:#}");
        return ExitCode::FAILURE;
    }
    let code = run(cli.command, &cli.serve, loaded, serving, huge_pages);
    // Request lines still in the log's batch (an exit that is not a signal's stop).
    logging::flush();
    code
}

/// What the command line asked for, once logging is set up.
fn run(
    command: Option<Command>,
    serve_args: &ServeArgs,
    loaded: Option<llmgate::Loaded>,
    serving: Option<Serving<'_>>,
    huge_pages: Option<String>,
) -> ExitCode {
    if let Some(why) = huge_pages {
        tracing::debug!("transparent huge pages left on: {why}");
    }
    let result = match (command, loaded, serving) {
        (Some(Command::Check { config }), _, _) => return check(&config),
        (Some(Command::Keys { config, action }), _, _) => keys_cmd::run(config.as_deref(), action),
        (Some(Command::Import { source }), _, _) => import_cmd::run(source),
        (Some(Command::Healthcheck(probe)), _, _) => return healthcheck::run(&probe),
        (None, Some(loaded), Some(serving)) => {
            for notice in &loaded.notices {
                tracing::warn!(severity = %notice.severity, "config: {notice}");
            }
            serve(loaded, &serving, serve_args)
        }
        (None, _, _) => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logging::flush();
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

/// The config to serve: the file, or the one sidecar model (its notices are logged once the
/// log subscriber is installed).
fn load(serving: &Serving<'_>) -> anyhow::Result<llmgate::Loaded> {
    let loaded = match serving {
        Serving::Config(path) => llmgate::load_config(path)
            .map_err(|problems| anyhow::anyhow!("{} is invalid:\n{problems}", path.display()))?,
        Serving::Model {
            model,
            api_base,
            api_key,
        } => llmgate::sidecar_config(model, *api_base, *api_key)
            .map_err(|problems| anyhow::anyhow!("--model {model} cannot be served:\n{problems}"))?,
    };
    Ok(loaded)
}

/// Adds the listening endpoint to `service`: HTTPS with `tls` (a plain-HTTP request to it gets
/// a 400 saying so), else plain HTTP without Pingora's per-connection read buffer
/// ([`memory::plain_http_buffers`]). Returns the scheme.
fn listen<A>(
    service: &mut listening::Service<A>,
    address: &str,
    tls: Option<TlsSettings>,
) -> &'static str {
    match tls {
        Some(settings) => {
            service.add_tls_with_settings(address, None, settings);
            service
                .endpoints()
                .set_pre_tls_callback(Arc::new(tls::PlainHttpAnswer));
            "https"
        }
        None => {
            service
                .add_listener(ListenerConfig::tcp(address).l4_buffer(memory::plain_http_buffers()));
            "http"
        }
    }
}

/// SIGHUP (and with `watch`, a change of the file) reloads the config file, on the state
/// runtime ([`reload`]). Listens for SIGHUP before returning, so it never stops the process.
fn start_reloads(
    state: &tokio::runtime::Runtime,
    gateway: &llmgate::Gateway,
    serving: &Serving<'_>,
    watch: bool,
) -> anyhow::Result<()> {
    let file = match serving {
        Serving::Config(path) => Some(path.clone()),
        Serving::Model { .. } => None,
    };
    if let Some(path) = &file {
        gateway.set_config_file(path);
    }
    let hup = {
        let _runtime = state.enter();
        reload::listen().context("listening for SIGHUP")?
    };
    state.spawn(reload::run(gateway.clone(), file, watch, hup));
    Ok(())
}

/// Serve the loaded config (or the one sidecar model) until a shutdown signal; SIGHUP reloads
/// `serving`'s file.
fn serve(loaded: llmgate::Loaded, serving: &Serving<'_>, args: &ServeArgs) -> anyhow::Result<()> {
    // Checked before anything is opened: a bad certificate or key stops the start here.
    let tls = args
        .tls
        .files()
        .map(|files| files.settings(args.tls.reload_every()))
        .transpose()?;
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
    start_reloads(&state, &gateway, serving, args.watch_config)?;
    state.spawn(memory::return_freed_memory());

    let address = args.listen_address();
    // Pingora binds inside its runtime and panics there on failure, leaving a process that
    // serves nothing: try the address here first so a taken port fails loudly at start-up.
    // An upgrade takes the running process's socket instead: the port is taken, rightly.
    if !args.upgrade {
        drop(
            std::net::TcpListener::bind(&address)
                .with_context(|| format!("cannot listen on {address}"))?,
        );
    }

    let host = Host::new(gateway.service(), gateway.max_request_body_bytes())
        .limits(gateway.http_limits())
        .h2c(args.h2c);
    let in_flight = host.in_flight();
    let connections = host.open_connections();
    let workers = args.workers();
    let mut service = listening::Service::new("llmgate".to_string(), host);
    let scheme = listen(&mut service, &address, tls);
    service.threads = Some(workers);

    // Our stop (`shutdown::Signals`) exits the process within the grace period, spend written;
    // Pingora's own grace timer is only a backstop behind it.
    let backstop = args
        .graceful_shutdown_seconds
        .saturating_add(PINGORA_BACKSTOP.as_secs());
    let upgrade_sock = args.upgrade_sock();
    let conf = ServerConf {
        threads: workers,
        work_stealing: args.steals_work(),
        grace_period_seconds: Some(backstop),
        graceful_shutdown_timeout_seconds: Some(RUNTIME_SHUTDOWN_SECONDS),
        upgrade_sock: upgrade_sock.to_string_lossy().into_owned(),
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade: args.upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    let handover = Handover::new(upgrade_sock, server.watch_execution_phase(), connections);
    upgrade::notify_systemd_when_running(server.watch_execution_phase());
    if args.upgrade {
        tracing::info!(
            sock = %handover.sock().display(),
            "upgrade: waiting for the running llmgate's listening sockets (send it SIGQUIT)"
        );
    }
    // With --upgrade, this waits for the sockets (about 6 s) and exits with 1 without them.
    server.bootstrap();
    server.add_service(service);
    let taken = if args.upgrade { " (taken over)" } else { "" };
    let work_stealing = args.steals_work();
    tracing::info!(%address, workers, work_stealing, h2c = args.h2c, "llmgate listening on {scheme}://{address}{taken}");
    let signals = Signals::new(in_flight, args.grace(), gateway.clone()).hand_over(handover);
    server.run(RunArgs {
        shutdown_signal: Box::new(signals),
    });
    // Only reached when the stop did not end the process in time (it exits once the spend is
    // written): write what is still queued, briefly, and go.
    tracing::warn!("the stop outlasted its grace period; exiting");
    state.block_on(gateway.shutdown_by(std::time::Instant::now() + shutdown::HURRY_WRITE));
    Ok(())
}

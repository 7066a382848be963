//! `llmgate-hyper`: the llmgate gateway served by hyper alone ([`llmgate::serve`], as in
//! `examples/embedded-serve`), with the command line `bench/run` gives the `llmgate` binary, so
//! the two hosts can be measured side by side on the same config (`HOSTS="pingora hyper"`).
//!
//! Run with: `cargo run --release -p llmgate-bench --bin llmgate-hyper -- --config FILE --port N`
//!
//! It opens the configured database like the binary does ([`llmgate::Gateway::open`]), serves
//! on one tokio runtime of `--num_workers` threads (the gateway's own tasks run there too), and
//! on SIGTERM or Ctrl-C stops accepting, lets streams finish and writes the queued spend.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::EnvFilter;

/// The allocator the `llmgate` binary uses, so the two hosts differ only in the host.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The llmgate gateway on hyper alone, for the benchmark.
#[derive(Debug, Parser)]
#[command(name = "llmgate-hyper", version)]
struct Args {
    /// The LiteLLM-style config file.
    #[arg(long)]
    config: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    host: IpAddr,
    /// Port to listen on.
    #[arg(long, default_value_t = 4000)]
    port: u16,
    /// Worker threads of the tokio runtime (the binary's `--num_workers`).
    #[arg(long = "num_workers", default_value_t = 1)]
    num_workers: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let loaded = llmgate::load_config(&args.config)
        .map_err(|problems| anyhow::anyhow!("{} is invalid:\n{problems}", args.config.display()))?;
    for notice in &loaded.notices {
        tracing::warn!("config: {notice}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.num_workers.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let gateway = llmgate::Gateway::open(loaded.config)
            .await
            .context("building the gateway")?;
        let listener = TcpListener::bind((args.host, args.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        tracing::info!(addr = %listener.local_addr()?, "llmgate-hyper listening");
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        llmgate::serve(listener, gateway, stop).await?;
        Ok(())
    })
}

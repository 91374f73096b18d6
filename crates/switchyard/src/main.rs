//! The `switchyard` binary: `serve` runs one node, `cluster up` runs a local cluster with a
//! mock provider fleet, `mock` runs one mock provider.

mod cluster;
mod ctl;
mod mock;
mod serve;

use clap::{Parser, Subcommand};

/// Switchyard: a distributed LLM routing gateway.
#[derive(Parser)]
#[command(name = "switchyard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node.
    Serve(serve::ServeArgs),
    /// Run a local cluster of nodes and mock providers.
    Cluster {
        #[command(subcommand)]
        command: cluster::ClusterCommand,
    },
    /// Run the mock LLM provider.
    Mock(mock::MockArgs),
    /// Administer a cluster over gRPC.
    Ctl(Box<ctl::CtlArgs>),
}

/// Exit code for bad usage or configuration (sysexits EX_USAGE).
const EX_USAGE: i32 = 64;

fn main() {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            report(&format!("cannot start the async runtime: {e}"));
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Cluster { command } => cluster::run(command).await,
            Command::Mock(args) => mock::run(args).await,
            Command::Ctl(args) => ctl::run(*args).await,
        }
    });
    if let Err(e) = result {
        report(&format!("{e:#}"));
        let usage = e.downcast_ref::<switchyard_node::ConfigError>().is_some();
        std::process::exit(if usage { EX_USAGE } else { 1 });
    }
}

#[expect(
    clippy::print_stderr,
    reason = "the one place the binary reports a fatal error to its user"
)]
fn report(msg: &str) {
    eprintln!("switchyard: {msg}");
}

/// Logs to stderr; `RUST_LOG` filters (default `info`). Secrets never reach a log line: they
/// are held in `Secret`, whose Debug and Display print `***`.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

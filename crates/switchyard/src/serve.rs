//! `switchyard serve --config FILE`: one node in the foreground until SIGINT or SIGTERM.

use anyhow::Context;
use switchyard_node::{Config, Node};

/// Arguments of `serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The node's TOML configuration (see deploy/switchyard.example.toml).
    #[arg(long)]
    config: String,
}

/// Runs the node.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let node = Node::start(config).await.context("node failed to start")?;
    wait_for_signal().await;
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

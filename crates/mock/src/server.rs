//! The accept loop and the per-connection HTTP/1.1 server.
//!
//! The shape is mini-redis's `run(listener, shutdown)`: the caller binds (so it
//! can pass port 0 and read the real address), and the server runs until the
//! shutdown future resolves. Connections are HTTP/1.1 with keep-alive, served
//! by hyper directly rather than through a router framework, because the
//! faults need what only the connection level offers: closing without an
//! answer, resetting, and aborting a body mid-stream.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::MockConfig;
use crate::route;
use crate::socket::ResettableSocket;
use crate::state::Shared;

/// How long shutdown lets in-flight answers finish before abandoning them.
/// Short, because the mock is a fixture and tests wait on its shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Pause after an accept error such as running out of file descriptors, so
/// the loop does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Serves until `shutdown` resolves. zero delays must be fast (it is benchmarked against).
///
/// Every accepted socket gets `TCP_NODELAY`, since small SSE frames would
/// otherwise wait on delayed ACKs. On shutdown the server stops accepting,
/// lets in-flight answers finish for up to a second, closes idle keep-alive
/// connections, and returns.
///
/// # Errors
///
/// Accept errors are logged and retried rather than returned, so a test's
/// mock does not vanish under file-descriptor pressure; the `Result` is for
/// callers' `?` and future listener errors.
pub async fn serve(
    listener: TcpListener,
    config: MockConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared::new(config));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(mock = %shared.config.name, %addr, "mock provider listening");
    }
    // Each connection task holds a receiver and starts a graceful close when
    // the value turns true; the sender lives until `serve` returns.
    let (stop_tx, stop_rx) = watch::channel(false);
    // Owns every connection task; dropping it at the end aborts stragglers.
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(connection(stream, shared.clone(), stop_rx.clone()));
                }
                Err(err) => {
                    tracing::warn!(mock = %shared.config.name, error = %err, "mock accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            mock = %shared.config.name,
            abandoned = connections.len(),
            "mock shutdown abandoned connections still answering"
        );
    }
    Ok(())
}

/// Serves one connection until the client closes it or shutdown is signalled.
async fn connection(stream: TcpStream, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    // Without NODELAY a keep-alive request waits ~40 ms on loopback for the
    // delayed ACK of the previous answer's last segment.
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "mock could not set TCP_NODELAY");
    }
    let (socket, reset) = ResettableSocket::new(stream);
    let service = service_fn(move |request| route::handle(shared.clone(), reset.clone(), request));
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(socket), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        // `changed` rather than `wait_for`: the guard `wait_for` returns is
        // not `Send`. The value only ever changes to true.
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        // Expected for the drop, refuse and cut faults and for clients that
        // hang up mid-answer; not worth more than a debug line.
        tracing::debug!(error = %err, "mock connection ended with an error");
    }
}

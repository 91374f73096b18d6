//! The one pooled upstream HTTP client. Connections are opened through the transport seam
//! (so a simulation can substitute its own sockets), TLS comes from rustls with the webpki
//! roots, HTTP/1.1 and HTTP/2 are negotiated, and idle connections are kept per host.
//!
//! Loopback and private addresses are refused at connect time unless the destination belongs to
//! a provider marked `internal` (DESIGN §6); redirects are never followed (the client has no
//! redirect support at all).

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use switchyard_core::Transport;
use tokio::net::TcpStream;

/// How long an idle pooled connection is kept: long enough to reuse across bursts, short enough
/// to drop before typical load balancers (60 s) close it under us.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// Idle connections kept per host: enough for a busy provider, bounded for memory.
const POOL_MAX_IDLE_PER_HOST: usize = 256;

/// Connects through the transport seam, enforcing the internal-address rule.
#[derive(Clone)]
pub struct SeamConnector<T: Transport> {
    transport: T,
    /// `host:port` of providers marked internal; only these may resolve to private addresses.
    internal: Arc<HashSet<String>>,
    /// Bound on establishing a TCP connection.
    connect_timeout: Duration,
}

impl<T: Transport> tower_service::Service<Uri> for SeamConnector<T> {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let transport = self.transport.clone();
        let internal = Arc::clone(&self.internal);
        let timeout = self.connect_timeout;
        Box::pin(async move {
            let host = uri.host().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "upstream uri has no host")
            })?;
            let https = uri.scheme_str() == Some("https");
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let allow_private = internal.contains(&format!(
                "{}:{port}",
                host.trim_start_matches('[').trim_end_matches(']')
            ));
            let stream =
                tokio::time::timeout(timeout, transport.connect(host, port, allow_private))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            Ok(TokioIo::new(stream))
        })
    }
}

/// The HTTP(S) client type used for every upstream call.
pub type HttpClient<T> = Client<hyper_rustls::HttpsConnector<SeamConnector<T>>, Full<Bytes>>;

/// The shared upstream client; cheap to clone.
#[derive(Clone)]
pub struct Upstream<T: Transport> {
    /// The pooled client.
    pub client: HttpClient<T>,
}

impl<T: Transport> Upstream<T> {
    /// Builds the client. `internal_hosts` lists `host:port` pairs allowed to be private.
    ///
    /// # Errors
    /// When the platform's TLS configuration cannot be built.
    pub fn new(
        transport: T,
        internal_hosts: HashSet<String>,
        connect_timeout: Duration,
    ) -> io::Result<Self> {
        let connector = SeamConnector {
            transport,
            internal: Arc::new(internal_hosts),
            connect_timeout,
        };
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots_anchors(),
        })
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Ok(Self { client })
    }
}

fn webpki_roots_anchors() -> Vec<rustls::pki_types::TrustAnchor<'static>> {
    webpki_roots::TLS_SERVER_ROOTS.to_vec()
}

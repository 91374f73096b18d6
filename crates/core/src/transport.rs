//! The transport seam. Every listener the node binds and every outbound connection it opens
//! (upstream HTTP now, gRPC peers later) goes through [`Transport`]. Production uses tokio
//! sockets ([`TcpTransport`]); a deterministic simulation substitutes its own implementation.
//! Keeping socket calls in this one module is what lets clippy refuse them everywhere else.
//!
//! Every socket gets `TCP_NODELAY`: a small response held back for the peer's delayed ACK costs
//! about 44 ms per request on loopback, which one peer gateway ships by accident.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpListener, TcpStream};

/// Opens listeners and outbound connections.
pub trait Transport: Clone + Send + Sync + 'static {
    /// Binds a listener. Port 0 picks a free port; read it back from `local_addr`.
    fn bind(&self, addr: SocketAddr) -> impl Future<Output = io::Result<TcpListener>> + Send;

    /// Resolves `host` and connects to the first address that accepts, with `TCP_NODELAY`.
    /// With `allow_private == false`, loopback, private, link-local and unspecified addresses
    /// are refused after resolution, so a DNS name cannot smuggle a request to an internal host.
    fn connect(
        &self,
        host: &str,
        port: u16,
        allow_private: bool,
    ) -> impl Future<Output = io::Result<TcpStream>> + Send;
}

/// The production transport: tokio sockets.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpTransport;

impl Transport for TcpTransport {
    #[expect(
        clippy::disallowed_methods,
        reason = "this is the transport seam itself"
    )]
    async fn bind(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    #[expect(
        clippy::disallowed_methods,
        reason = "this is the transport seam itself"
    )]
    async fn connect(&self, host: &str, port: u16, allow_private: bool) -> io::Result<TcpStream> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port)).await?.collect(),
        };
        let mut last_err =
            io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}"));
        for addr in addrs {
            if !allow_private && is_internal(addr.ip()) {
                last_err = io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "refusing to connect to internal address {addr} for a provider not marked internal"
                    ),
                );
                continue;
            }
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    return Ok(s);
                }
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }
}

/// Whether an address is one a public provider must never resolve to.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT, often used for internal meshes.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(is_internal(s.parse().unwrap()), "{s}");
        }
        for s in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_internal(s.parse().unwrap()), "{s}");
        }
    }

    #[tokio::test]
    async fn refuses_loopback_unless_allowed() {
        let t = TcpTransport;
        let l = t.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let err = t.connect("127.0.0.1", port, false).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        let s = t.connect("127.0.0.1", port, true).await.unwrap();
        assert!(s.nodelay().unwrap());
    }
}

//! Shared vocabulary of Switchyard. No sockets, no actors, no Raft.
//!
//! # Layout
//! - [`ids`]: small identifier newtypes (`NodeId`, `ProviderName`, `RequestId`).
//! - [`money`]: [`Micros`], integer micro-dollars, and exact decimal parsing of dollar amounts.
//! - [`secret`]: [`Secret`], a value whose `Debug`/`Display` print `***`, and key digests.
//! - [`pricing`]: the shipped pricing catalog and the one cost function.
//! - [`clock`]: the [`Clock`] seam; every wall-clock and monotonic read goes through it.
//! - [`transport`]: the [`Transport`] seam; every listener and outbound connection goes through it.
//! - [`health`]: provider health vocabulary shared by actors, router and edge.
//! - [`stats`]: the stats-exchange vocabulary (per-pair deltas, per-provider gauges).
//!
//! Everything here is cheap to clone and free of I/O except the two seams, which are the only
//! places allowed to touch the clock and the socket APIs directly.

pub mod clock;
pub mod health;
pub mod ids;
pub mod money;
pub mod pricing;
pub mod secret;
pub mod stats;
pub mod transport;

pub use clock::{Clock, SystemClock};
pub use health::{BreakerPhase, OutcomeClass};
pub use ids::{NodeId, ProviderName, RequestId};
pub use money::{Micros, MoneyError};
pub use pricing::{Price, PricingCatalog, PricingError};
pub use secret::{KeyDigest, KeyDigester, PeerToken, Secret};
pub use transport::{TcpTransport, Transport};

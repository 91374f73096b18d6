//! Upstream providers: adapters for each wire format, the pooled upstream client, and one
//! supervised ractor actor per configured provider.
//!
//! # Layout
//! - [`config`]: `[[providers]]` configuration, raw and validated.
//! - [`upstream`]: the one pooled HTTP(S) client, connecting through the transport seam.
//! - [`adapter`]: URL, auth and body rules per provider kind (OpenAI-compatible, Azure,
//!   Anthropic), with translation through `switchyard-wire` when formats differ.
//! - [`call`]: what one attempt takes and returns; [`stream`]: a streamed answer translated as
//!   it arrives, ending honestly.
//! - [`gate`]: lock-free admission (breaker phase, pause, in-flight, rate tokens).
//! - [`breaker`]: the circuit breaker as pure data.
//! - [`actor`]: the provider actor; [`supervisor`]: restarts it; [`snapshot`]: what it publishes.
//! - [`handle`]: [`ProviderHandle`] and [`ProviderSet`], the node's entry points.
//!
//! This crate does not route (that is `switchyard-router`) and does not know about keys or
//! budgets (that is the node).

pub mod actor;
pub mod adapter;
pub mod breaker;
pub mod call;
pub mod config;
pub mod gate;
pub mod handle;
pub mod snapshot;
pub mod stream;
pub mod supervisor;
pub mod upstream;

pub use actor::{Outcome, ProviderMsg};
pub use call::{CallError, CallOk, CallRequest, Endpoint, Format, StreamEnd, StreamHook};
pub use config::{ProviderConfig, ProviderConfigToml, ProviderKind};
pub use gate::{Gate, Permit, Refusal};
pub use handle::{ProviderHandle, ProviderSet};
pub use snapshot::ProviderSnapshot;
pub use stream::UpstreamStream;

//! Switchyard's gRPC schemas (`proto/switchyard/v1`), generated at build time by
//! tonic-prost-build from protox output: the Raft transport between nodes (`raft.proto`) and the
//! admin API used by `switchyard ctl` (`admin.proto`).
//!
//! # Layout
//! - [`pb`]: the generated messages, clients (`*_client`) and servers (`*_server`) of package
//!   `switchyard.v1`.
//!
//! Conversions between these messages and the core types live beside the code that needs them;
//! this crate only owns the schemas and the generated code.

/// Generated messages, clients and servers of package `switchyard.v1`.
pub mod pb {
    #![expect(
        missing_docs,
        clippy::allow_attributes,
        reason = "generated code: no doc comments, and prost/tonic emit their own #[allow]s"
    )]
    tonic::include_proto!("switchyard.v1");
}

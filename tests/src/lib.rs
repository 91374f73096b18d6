//! Holds the end-to-end test binary `e2e`; see `e2e/main.rs`.

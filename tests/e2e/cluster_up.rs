//! cluster_up

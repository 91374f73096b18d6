//! [`ControlConfig`]: the Raft timings and snapshot policy of one node, with a default and a
//! reason for each value, turned into openraft's `Config` (which validates it) at open.

use std::time::Duration;

use openraft::SnapshotPolicy;

use crate::error::ControlError;

/// Heartbeat period. Followers learn the commit index at this pace, so it bounds how stale a
/// follower's state is behind the leader (DESIGN §2.3 asks for ~1 s).
const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
/// Shortest election timeout: four heartbeats, so one late heartbeat on a busy 2-core machine
/// does not start an election.
const DEFAULT_ELECTION_TIMEOUT_MIN: Duration = Duration::from_millis(400);
/// Longest election timeout. Detection (≤ 800 ms) plus one election round stays well inside
/// the 3 s failover target.
const DEFAULT_ELECTION_TIMEOUT_MAX: Duration = Duration::from_millis(800);
/// Build a snapshot after this many applied entries: a restart replays at most this many.
const DEFAULT_SNAPSHOT_LOGS_SINCE_LAST: u64 = 1000;
/// Entries kept behind a snapshot so a briefly lagging follower catches up from the log rather
/// than by a full snapshot transfer.
const DEFAULT_MAX_IN_SNAPSHOT_LOG_TO_KEEP: u64 = 500;
/// Deadline of one snapshot chunk RPC (a 3 MiB chunk on a LAN takes milliseconds).
const DEFAULT_INSTALL_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on one write, forwarding and retries during an election included.
const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on dialling a peer. Peers are on a LAN or loopback; a longer wait only delays the
/// next attempt.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Raft settings of one node (validated; see the defaults' docs for why each value).
#[derive(Clone, Debug)]
pub struct ControlConfig {
    /// Name shared by all members (openraft checks it in nothing but logs).
    pub cluster_name: String,
    /// Leader heartbeat period.
    pub heartbeat_interval: Duration,
    /// Election timeout, lower bound.
    pub election_timeout_min: Duration,
    /// Election timeout, upper bound.
    pub election_timeout_max: Duration,
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_logs_since_last: u64,
    /// Entries kept in the log behind the last snapshot; older ones are purged.
    pub max_in_snapshot_log_to_keep: u64,
    /// Deadline of one snapshot chunk RPC.
    pub install_snapshot_timeout: Duration,
    /// Bound on [`Control::write`](crate::Control::write) and on membership changes.
    pub write_timeout: Duration,
    /// Bound on dialling a peer.
    pub connect_timeout: Duration,
    /// TLS (with this node's client certificate) for every connection to a peer; `None` for
    /// plaintext. Peers' gRPC URLs are then `https://`.
    pub client_tls: Option<tonic::transport::ClientTlsConfig>,
    /// The credential members present to each other: sent on every Raft RPC, and required by
    /// [`raft_service`](crate::raft_service) from every caller. `None` turns both off (tests of
    /// this crate alone); a node always sets it.
    pub peer_token: Option<switchyard_core::PeerToken>,
    /// Largest piece a snapshot is sent to a member in.
    pub snapshot_chunk_bytes: u64,
}

/// Default snapshot piece: 3 MiB, openraft's own default, far under the gRPC message limit.
pub const DEFAULT_SNAPSHOT_CHUNK_BYTES: u64 = 3 * 1024 * 1024;

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            cluster_name: "switchyard".to_owned(),
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            election_timeout_min: DEFAULT_ELECTION_TIMEOUT_MIN,
            election_timeout_max: DEFAULT_ELECTION_TIMEOUT_MAX,
            snapshot_logs_since_last: DEFAULT_SNAPSHOT_LOGS_SINCE_LAST,
            max_in_snapshot_log_to_keep: DEFAULT_MAX_IN_SNAPSHOT_LOG_TO_KEEP,
            install_snapshot_timeout: DEFAULT_INSTALL_SNAPSHOT_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            client_tls: None,
            peer_token: None,
            snapshot_chunk_bytes: DEFAULT_SNAPSHOT_CHUNK_BYTES,
        }
    }
}

impl ControlConfig {
    /// The openraft configuration, validated by openraft.
    pub(crate) fn raft_config(&self) -> Result<openraft::Config, ControlError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let config = openraft::Config {
            cluster_name: self.cluster_name.clone(),
            heartbeat_interval: ms(self.heartbeat_interval),
            election_timeout_min: ms(self.election_timeout_min),
            election_timeout_max: ms(self.election_timeout_max),
            install_snapshot_timeout: ms(self.install_snapshot_timeout),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: self.max_in_snapshot_log_to_keep,
            snapshot_max_chunk_size: self.snapshot_chunk_bytes,
            ..Default::default()
        };
        Ok(config.validate()?)
    }
}

//! Raft clusters of real nodes on loopback: each node is a `Control` plus a tonic server on its
//! own 127.0.0.1:0 listener, as the node crate runs them. One scenario per test, each bounded
//! by a wall-clock timeout.

#![expect(
    clippy::disallowed_methods,
    reason = "tests run each node's gRPC server on a bare tokio::spawn"
)]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "harness helpers are test code: a failed step must fail the test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchyard_control::{
    Command, Control, ControlConfig, KeyRecord, KeyStatus, MemberRole, NodeInfo, Op, Response,
    raft_service,
};
use switchyard_core::{TcpTransport, Transport};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

/// Bound on a whole scenario, so a hang fails instead of stalling the run.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on a first election after start.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// A unique directory under cargo's per-target temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "control-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn node(&self, id: u64) -> PathBuf {
        self.0.join(format!("node-{id}"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One running node: its raft handle and its gRPC server.
struct TestNode {
    control: Control,
    addr: SocketAddr,
    /// Fires the server's graceful shutdown (GOAWAY to every peer connection).
    stop_server: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

impl TestNode {
    /// Starts node `id` on `dir`, listening on `addr` (port 0 for a fresh one).
    async fn start(id: u64, dir: &Path, addr: SocketAddr, config: ControlConfig) -> TestNode {
        let listener = TcpTransport.bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let info = NodeInfo {
            http: format!("http://{addr}"),
            grpc: format!("http://{addr}"),
        };
        let control = Control::open(id, info, dir, config).await.unwrap();
        let service = raft_service(&control);
        let (stop_server, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        TestNode {
            control,
            addr,
            stop_server,
            server,
        }
    }

    /// Stops the server first (peers see the node go away), then Raft, and drops the handle
    /// so the directory can be reopened. Returns the address to restart on.
    async fn stop(self) -> SocketAddr {
        let _ = self.stop_server.send(());
        tokio::time::timeout(Duration::from_secs(5), self.server)
            .await
            .expect("server drains")
            .unwrap();
        self.control.shutdown().await.unwrap();
        self.addr
    }

    fn id(&self) -> u64 {
        self.control.node_id()
    }

    fn has_key(&self, id: &str) -> bool {
        self.control.state().read().unwrap().keys.contains_key(id)
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Starts `n` nodes (ids 1..=n) under `dir` and forms a cluster of all of them on node 1.
async fn start_cluster(dir: &TempDir, n: u64, config: &ControlConfig) -> Vec<TestNode> {
    let mut nodes = Vec::new();
    for id in 1..=n {
        nodes.push(TestNode::start(id, &dir.node(id), loopback(), config.clone()).await);
    }
    let members: BTreeMap<u64, NodeInfo> = nodes
        .iter()
        .map(|n| (n.id(), n.control.info().clone()))
        .collect();
    nodes[0].control.initialize(members.clone()).await.unwrap();
    // A second call is not an error.
    nodes[0].control.initialize(members).await.unwrap();
    for node in &nodes {
        node.control
            .wait_for_leader(ELECTION_TIMEOUT)
            .await
            .unwrap();
    }
    nodes
}

fn create_key(id: &str) -> Command {
    Command {
        at_ms: 1,
        actor: Some("test".into()),
        op: Op::CreateKey(KeyRecord {
            id: id.into(),
            digest_hex: format!("digest-{id}"),
            prefix: "sk-sy-test".into(),
            name: id.into(),
            owner: None,
            team: None,
            models: vec![],
            rpm: 0,
            tpm: 0,
            expires_at_ms: None,
            tags: BTreeMap::new(),
            status: KeyStatus::Active,
            created_at_ms: 1,
            strategy: None,
            limits: switchyard_control::RoutingLimits::default(),
        }),
    }
}

/// Polls `check` every 10 ms until it holds; false if `within` passes first.
async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    tokio::time::timeout(within, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .is_ok()
}

/// The leader id a quorum of `nodes` agrees on, once it is not `not`.
async fn new_leader(nodes: &[&TestNode], not: u64, within: Duration) -> Option<u64> {
    let mut found = None;
    let agreed = eventually(within, || {
        let leaders: BTreeSet<Option<u64>> = nodes
            .iter()
            .map(|n| n.control.metrics().current_leader)
            .collect();
        found = leaders.first().copied().flatten();
        leaders.len() == 1 && found.is_some_and(|l| l != not)
    })
    .await;
    agreed.then_some(found).flatten()
}

/// A write sent to a follower is forwarded to the leader, committed, and visible in every
/// node's state within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_through_a_follower_is_applied_on_every_node_within_a_second() {
    tokio::time::timeout(SCENARIO_TIMEOUT, async {
        let dir = TempDir::new("follower-write");
        let nodes = start_cluster(&dir, 3, &ControlConfig::default()).await;
        let leader = nodes[0].control.leader().unwrap().0;
        let follower = nodes.iter().find(|n| n.id() != leader).unwrap();
        assert!(!follower.control.is_leader());

        let response = follower.control.write(create_key("k1")).await.unwrap();
        assert!(
            matches!(response, Response::Key(ref k) if k.id == "k1"),
            "{response:?}"
        );
        assert!(
            eventually(Duration::from_secs(1), || nodes
                .iter()
                .all(|n| n.has_key("k1")))
            .await,
            "every node applies the write within 1 s"
        );

        // The same command again is applied and refused as data, not an error.
        let again = follower.control.write(create_key("k1")).await.unwrap();
        assert!(matches!(again, Response::Rejected(_)), "{again:?}");

        let members = follower.control.members();
        assert_eq!(members.len(), 3);
        assert_eq!(
            members.iter().filter(|m| m.2 == MemberRole::Leader).count(),
            1
        );
        for node in nodes {
            node.stop().await;
        }
    })
    .await
    .unwrap();
}

/// 1. Three nodes; stop the leader (server and Raft).
/// 2. The survivors elect a new leader within 3 s, and a write through a survivor succeeds.
/// 3. The stopped node restarts on its directory and address and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_then_the_stopped_node_catches_up() {
    tokio::time::timeout(SCENARIO_TIMEOUT, async {
        let dir = TempDir::new("failover");
        let config = ControlConfig::default();
        let mut nodes = start_cluster(&dir, 3, &config).await;
        nodes[0].control.write(create_key("before")).await.unwrap();

        let old = nodes[0].control.leader().unwrap().0;
        let position = nodes.iter().position(|n| n.id() == old).unwrap();
        let addr = nodes.remove(position).stop().await;

        let survivors: Vec<&TestNode> = nodes.iter().collect();
        let new = new_leader(&survivors, old, Duration::from_secs(3))
            .await
            .expect("a new leader within 3 s");
        // Write through the survivor that is not the new leader, so it is forwarded.
        let via = nodes.iter().find(|n| n.id() != new).unwrap();
        let response = via.control.write(create_key("during")).await.unwrap();
        assert!(matches!(response, Response::Key(_)), "{response:?}");

        let back = TestNode::start(old, &dir.node(old), addr, config.clone()).await;
        assert!(
            eventually(Duration::from_secs(5), || back.has_key("during")
                && back.has_key("before"))
            .await,
            "the restarted node catches up"
        );
        nodes.push(back);
        for node in nodes {
            node.stop().await;
        }
    })
    .await
    .unwrap();
}

/// An acknowledged write survives stopping every node and reopening them on the same
/// directories; the reopened cluster elects a leader and accepts writes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_write_survives_a_full_cluster_restart() {
    tokio::time::timeout(SCENARIO_TIMEOUT, async {
        let dir = TempDir::new("full-restart");
        let config = ControlConfig::default();
        let nodes = start_cluster(&dir, 3, &config).await;
        nodes[1].control.write(create_key("durable")).await.unwrap();

        let mut addrs = Vec::new();
        for node in nodes {
            addrs.push((node.id(), node.stop().await));
        }
        let mut nodes = Vec::new();
        for (id, addr) in addrs {
            nodes.push(TestNode::start(id, &dir.node(id), addr, config.clone()).await);
        }
        for node in &nodes {
            node.control
                .wait_for_leader(ELECTION_TIMEOUT)
                .await
                .unwrap();
        }
        assert!(
            eventually(Duration::from_secs(5), || nodes
                .iter()
                .all(|n| n.has_key("durable")))
            .await,
            "the write is back on every node"
        );
        let response = nodes[2].control.write(create_key("after")).await.unwrap();
        assert!(matches!(response, Response::Key(_)), "{response:?}");
        for node in nodes {
            node.stop().await;
        }
    })
    .await
    .unwrap();
}

/// With a small snapshot policy the leader snapshots and purges its log; a learner added
/// afterwards cannot be sent the purged entries and catches up by installing the snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_added_after_purge_catches_up_by_snapshot() {
    tokio::time::timeout(SCENARIO_TIMEOUT, async {
        let dir = TempDir::new("snapshot");
        let config = ControlConfig {
            snapshot_logs_since_last: 5,
            max_in_snapshot_log_to_keep: 0,
            ..ControlConfig::default()
        };
        let nodes = start_cluster(&dir, 1, &config).await;
        let leader = &nodes[0];
        for i in 0..20 {
            leader
                .control
                .write(create_key(&format!("k{i}")))
                .await
                .unwrap();
        }
        assert!(
            eventually(Duration::from_secs(5), || {
                leader
                    .control
                    .metrics()
                    .purged
                    .is_some_and(|p| p.index >= 10)
            })
            .await,
            "the leader snapshots and purges its log"
        );

        let learner = TestNode::start(2, &dir.node(2), loopback(), config.clone()).await;
        leader
            .control
            .add_learner(2, learner.control.info().clone())
            .await
            .unwrap();
        assert!(
            eventually(Duration::from_secs(5), || {
                (0..20).all(|i| learner.has_key(&format!("k{i}")))
            })
            .await,
            "the learner catches up"
        );
        let metrics = learner.control.metrics();
        assert!(
            metrics.snapshot.is_some(),
            "caught up by snapshot: {metrics:?}"
        );
        let roles: Vec<MemberRole> = leader.control.members().iter().map(|m| m.2).collect();
        assert_eq!(roles, vec![MemberRole::Leader, MemberRole::Learner]);

        // Promote it, then remove it again.
        let roles = |c: &Control| c.members().iter().map(|m| m.2).collect::<Vec<_>>();
        let info = learner.control.info().clone();
        leader.control.add_node(2, info, true).await.unwrap();
        assert!(
            eventually(Duration::from_secs(1), || {
                roles(&leader.control) == [MemberRole::Leader, MemberRole::Voter]
            })
            .await
        );
        leader.control.remove_node(2).await.unwrap();
        assert!(
            eventually(Duration::from_secs(1), || leader.control.members().len()
                == 1)
            .await
        );

        learner.stop().await;
        for node in nodes {
            node.stop().await;
        }
    })
    .await
    .unwrap();
}

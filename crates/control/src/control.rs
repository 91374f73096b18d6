//! [`Control`], the node's handle on the control plane: it opens the sled stores, starts
//! openraft, and offers typed operations (write a command, membership, status) that hide who
//! the leader is. A write that reaches a follower is forwarded to the leader over the raft
//! service's `Propose` RPC, so callers never need to know who leads (DESIGN §1).

mod config;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{ChangeMembers, RaftMetrics, StorageIOError};

use crate::command::{Command, Response};
use crate::error::ControlError;
use crate::network::client::Forwarded;
use crate::network::{NetworkFactory, Peers};
use crate::state::State;
use crate::store;
use crate::type_config::{NodeInfo, Raft, StorageError};

pub use config::{ControlConfig, DEFAULT_SNAPSHOT_CHUNK_BYTES};

/// First and largest pause between write attempts while there is no leader.
const WRITE_RETRY_MIN: Duration = Duration::from_millis(20);
const WRITE_RETRY_MAX: Duration = Duration::from_millis(200);
/// Longest [`Control::write_visible`] waits for this node to apply its own write: a follower
/// connected to the quorum applies within a heartbeat or two; a lagging one answers anyway.
pub const READ_YOUR_WRITE_WAIT: Duration = Duration::from_secs(1);

/// A member's role, as this node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRole {
    /// The current leader.
    Leader,
    /// A voter that is not the leader.
    Voter,
    /// A non-voting member being replicated to.
    Learner,
}

/// The control-plane handle of one node. Cheap to clone; all clones share one Raft.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

struct Inner {
    /// This node's id.
    id: u64,
    /// This node's addresses.
    info: NodeInfo,
    /// The Raft; its core task owns the log store and state machine store.
    raft: Raft,
    /// The replicated state, shared with the state machine store (its only writer).
    state: Arc<RwLock<State>>,
    /// The node's database, kept to flush it on shutdown.
    db: sled::Db,
    /// Channel cache shared with the raft network, used to forward writes.
    peers: Peers,
    /// Settings.
    config: ControlConfig,
}

impl MemberRole {
    /// `leader`, `voter` or `learner`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Leader => "leader",
            MemberRole::Voter => "voter",
            MemberRole::Learner => "learner",
        }
    }
}

impl Control {
    /// Opens the stores in `dir` (created if missing; sled owns it), loads the last snapshot,
    /// and starts Raft. A node that was a member before resumes its role; a new node waits to
    /// be initialised or added as a learner. The raft gRPC service must be served separately
    /// ([`raft_service`](crate::raft_service)).
    ///
    /// # Errors
    /// `Config` for invalid timings, `Storage` when sled cannot open `dir` or a record does
    /// not decode, `Fatal` when Raft fails to start.
    pub async fn open(
        node_id: u64,
        info: NodeInfo,
        dir: &Path,
        config: ControlConfig,
    ) -> Result<Control, ControlError> {
        let raft_config = Arc::new(config.raft_config()?);
        let db = store::open_db(dir).await?;
        let (log_store, sm_store) = store::open_stores(&db)?;
        let state = sm_store.state().clone();
        let peers = Peers::new(
            config.connect_timeout,
            config.client_tls.clone(),
            config.peer_token.clone(),
        );
        let network = NetworkFactory::new(node_id, peers.clone());
        let raft = Raft::new(node_id, raft_config, network, log_store, sm_store).await?;
        tracing::info!(node_id, grpc = %info.grpc, dir = %dir.display(), "raft started");
        Ok(Control {
            inner: Arc::new(Inner {
                id: node_id,
                info,
                raft,
                state,
                db,
                peers,
                config,
            }),
        })
    }

    /// Forms the cluster from `members` (call on one node, once all are serving). Calling it
    /// again, or on a node that already belongs to a cluster, does nothing.
    ///
    /// # Errors
    /// `NotInMembers` when `members` lacks this node; `Fatal` when Raft has stopped.
    pub async fn initialize(&self, members: BTreeMap<u64, NodeInfo>) -> Result<(), ControlError> {
        if self.inner.raft.is_initialized().await? {
            return Ok(());
        }
        match self.inner.raft.initialize(members).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotInMembers(_))) => {
                Err(ControlError::NotInMembers {
                    node_id: self.inner.id,
                })
            }
            Err(RaftError::Fatal(f)) => Err(f.into()),
        }
    }

    /// Proposes `cmd` and returns what applying it produced, once it is committed and applied
    /// on the leader. On a follower the command is forwarded to the leader; while there is no
    /// leader it retries with a short backoff. A command the state refuses comes back as
    /// `Ok(Response::Rejected(..))`.
    ///
    /// # Errors
    /// `Unavailable` when no leader applied it within `write_timeout` (it may still be applied
    /// later: commands must be safe to retry, as settlements are by request id); `Network` when
    /// the leader answered with a transport error after the command may have reached it.
    pub async fn write(&self, cmd: Command) -> Result<Response, ControlError> {
        self.write_at(cmd).await.map(|(_, response)| response)
    }

    /// [`Control::write`], then waits (at most [`READ_YOUR_WRITE_WAIT`]) until this node has
    /// applied the entry too, so a read of the local state right after sees the change. Admin
    /// calls use it: a follower that answers "budget set" and then shows the old budget would
    /// look like a lost write. Past the wait the reply stands (the write was applied on the
    /// leader); only the local view may still lag.
    ///
    /// # Errors
    /// As [`Control::write`].
    pub async fn write_visible(&self, cmd: Command) -> Result<Response, ControlError> {
        let (index, response) = self.write_at(cmd).await?;
        let _ = self
            .inner
            .raft
            .wait(Some(READ_YOUR_WRITE_WAIT))
            .applied_index_at_least(Some(index), "read your own write")
            .await;
        Ok(response)
    }

    /// Proposes `cmd` (forwarding it to the leader when this node is not) and returns the
    /// reply with the entry's log index.
    async fn write_at(&self, cmd: Command) -> Result<(u64, Response), ControlError> {
        match tokio::time::timeout(self.inner.config.write_timeout, self.write_until_done(cmd))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(ControlError::Unavailable {
                what: "no raft leader applied the write in time",
            }),
        }
    }

    async fn write_until_done(&self, cmd: Command) -> Result<(u64, Response), ControlError> {
        let mut pause = WRITE_RETRY_MIN;
        loop {
            match self.inner.raft.client_write(cmd.clone()).await {
                Ok(reply) => return Ok((reply.log_id.index, reply.data)),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(to))) => {
                    if let (Some(leader), Some(node)) = (to.leader_id, to.leader_node)
                        && leader != self.inner.id
                    {
                        let ttl = self.inner.config.write_timeout;
                        match self.inner.peers.propose(&node, &cmd, ttl).await {
                            Forwarded::Applied(index, response) => return Ok((index, *response)),
                            Forwarded::Failed(e) => return Err(e),
                            Forwarded::Retry => {}
                        }
                    }
                }
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                    return Err(ControlError::Membership(Box::new(e)));
                }
                Err(RaftError::Fatal(f)) => return Err(f.into()),
            }
            tracing::debug!(
                node_id = self.inner.id,
                ?pause,
                "no raft leader yet; retrying write"
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(WRITE_RETRY_MAX);
        }
    }

    /// Adds `id` as a learner (non-voting member). Returns once the membership entry is
    /// committed; the leader then replicates to it in the background, by snapshot when the log
    /// it needs was purged. Promote it with [`Control::change_membership`].
    ///
    /// # Errors
    /// `NotLeader` on a follower (the caller forwards); `Unavailable` without a quorum.
    pub async fn add_learner(&self, id: u64, info: NodeInfo) -> Result<(), ControlError> {
        let raft = &self.inner.raft;
        self.bounded_membership(raft.add_learner(id, info, false))
            .await
    }

    /// Makes `voters` the voting members (joint consensus, two commits). Voters not listed are
    /// removed; every new voter must already be a learner.
    ///
    /// # Errors
    /// `NotLeader` on a follower; `Membership` for an unknown learner or a change in progress;
    /// `Unavailable` without a quorum.
    pub async fn change_membership(&self, voters: BTreeSet<u64>) -> Result<(), ControlError> {
        let raft = &self.inner.raft;
        self.bounded_membership(raft.change_membership(voters, false))
            .await
    }

    /// Adds a member in one call: as a learner, then (with `voter`) as a voter in the same
    /// membership change that keeps every current voter. Adding a node that is already a
    /// member with the same role does nothing.
    ///
    /// # Errors
    /// As [`Control::add_learner`] and [`Control::change_membership`].
    pub async fn add_node(&self, id: u64, info: NodeInfo, voter: bool) -> Result<(), ControlError> {
        let known = self.members().into_iter().find(|m| m.0 == id);
        if known.is_none() {
            self.add_learner(id, info).await?;
        }
        let is_voter = known.is_some_and(|m| m.2 != MemberRole::Learner);
        if voter && !is_voter {
            let mut voters = self.voter_ids();
            voters.insert(id);
            self.change_membership(voters).await?;
        }
        Ok(())
    }

    /// Removes a member, voter or learner. Removing the leader makes it step down once the
    /// change commits. Removing a node that is not a member does nothing.
    ///
    /// # Errors
    /// As [`Control::change_membership`].
    pub async fn remove_node(&self, id: u64) -> Result<(), ControlError> {
        let Some(member) = self.members().into_iter().find(|m| m.0 == id) else {
            return Ok(());
        };
        let ids = BTreeSet::from([id]);
        let change = if member.2 == MemberRole::Learner {
            ChangeMembers::RemoveNodes(ids)
        } else {
            ChangeMembers::RemoveVoters(ids)
        };
        // `retain = false`: a removed voter is dropped entirely, not kept as a learner.
        let raft = &self.inner.raft;
        self.bounded_membership(raft.change_membership(change, false))
            .await
    }

    fn voter_ids(&self) -> BTreeSet<u64> {
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        metrics.membership_config.membership().voter_ids().collect()
    }

    async fn bounded_membership<T>(
        &self,
        change: impl Future<Output = Result<T, RaftError<u64, ClientWriteError<u64, NodeInfo>>>>,
    ) -> Result<(), ControlError> {
        match tokio::time::timeout(self.inner.config.write_timeout, change).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(to)))) => {
                Err(ControlError::NotLeader {
                    leader: to.leader_node,
                })
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                Err(ControlError::Membership(Box::new(e)))
            }
            Ok(Err(RaftError::Fatal(f))) => Err(f.into()),
            Err(_) => Err(ControlError::Unavailable {
                what: "the membership change was not committed in time",
            }),
        }
    }

    /// Waits until this node knows a leader, and returns its id.
    ///
    /// # Errors
    /// `Unavailable` after `timeout`; `Fatal` when Raft has stopped.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64, ControlError> {
        let mut metrics = self.inner.raft.metrics();
        let wait = async {
            loop {
                if let Some(leader) = metrics.borrow_and_update().current_leader {
                    return Ok(leader);
                }
                if metrics.changed().await.is_err() {
                    return Err(openraft::error::Fatal::Stopped.into());
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(ControlError::Unavailable {
                what: "no raft leader was elected in time",
            }))
    }

    /// Stops Raft and flushes sled. Idempotent. Drop every clone of this handle (and stop the
    /// gRPC server) before reopening the same directory in this process.
    ///
    /// # Errors
    /// `Storage` when the final flush fails.
    pub async fn shutdown(&self) -> Result<(), ControlError> {
        // openraft's shutdown always reports Ok; a core that failed shows in metrics instead.
        let _ = self.inner.raft.shutdown().await;
        store::flush(&self.inner.db)
            .await
            .map_err(|e| ControlError::from(StorageError::from(StorageIOError::write(&e))))?;
        tracing::info!(node_id = self.inner.id, "raft stopped and storage flushed");
        Ok(())
    }

    /// The replicated state. Read it with `.read()`, briefly, never across an `.await`.
    pub fn state(&self) -> &Arc<RwLock<State>> {
        &self.inner.state
    }

    /// The openraft handle, for what this type does not wrap.
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The credential members present to each other, if the node set one.
    pub fn peer_token(&self) -> Option<&switchyard_core::PeerToken> {
        self.inner.config.peer_token.as_ref()
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.inner.id
    }

    /// This node's addresses.
    pub fn info(&self) -> &NodeInfo {
        &self.inner.info
    }

    /// A copy of the latest Raft metrics (term, leader, log and applied indexes, membership).
    pub fn metrics(&self) -> RaftMetrics<u64, NodeInfo> {
        self.inner.raft.metrics().borrow().clone()
    }

    /// The leader this node knows of, with its addresses.
    pub fn leader(&self) -> Option<(u64, NodeInfo)> {
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        let id = metrics.current_leader?;
        let node = metrics.membership_config.membership().get_node(&id)?;
        Some((id, node.clone()))
    }

    /// Whether this node is the leader right now (as far as it knows).
    pub fn is_leader(&self) -> bool {
        self.inner.raft.metrics().borrow().current_leader == Some(self.inner.id)
    }

    /// Every member in the latest membership this node knows, with its role.
    pub fn members(&self) -> Vec<(u64, NodeInfo, MemberRole)> {
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, info)| {
                let role = if metrics.current_leader == Some(*id) {
                    MemberRole::Leader
                } else if voters.contains(id) {
                    MemberRole::Voter
                } else {
                    MemberRole::Learner
                };
                (*id, info.clone(), role)
            })
            .collect()
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("node_id", &self.inner.id)
            .field("info", &self.inner.info)
            .finish_non_exhaustive()
    }
}

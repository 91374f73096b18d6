//! The state machine store ([`StateMachineStore`]): the replicated [`State`] in memory, shared
//! with the request path through an `Arc<RwLock<State>>`, plus the last applied log id and
//! membership. `apply` runs the pure [`State::apply`]; snapshots are the state serialised with
//! serde_json and are persisted to sled (and flushed) when built or installed, so a restart
//! loads the last snapshot and openraft replays the committed log after it.
//!
//! Locking: the write lock on `State` is taken per entry inside `apply` and never held across
//! an `.await`; readers on the request path wait at most one entry's transition. `applied` is
//! only locked while the `State` lock is held (lock order: state, then applied), so a snapshot
//! always pairs a state with the log id it reflects.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageIOError,
    StoredMembership,
};

use super::{STATE_MACHINE_TREE, flush};
use crate::command::Response;
use crate::state::State;
use crate::type_config::{LogId, NodeInfo, StorageError, TypeConfig};

/// Key of the last snapshot's meta (serde_json of `SnapshotMeta`).
const SNAPSHOT_META_KEY: &str = "snapshot_meta";
/// Key of the last snapshot's data (serde_json of `State`).
const SNAPSHOT_DATA_KEY: &str = "snapshot_data";

type Meta = SnapshotMeta<u64, NodeInfo>;

/// The state machine store. Cloning shares everything; openraft's state machine worker owns
/// one clone and snapshot builders hold others.
#[derive(Clone, Debug)]
pub struct StateMachineStore {
    /// The replicated state. The node's request path holds clones of this `Arc` and only
    /// reads; `apply` and `install_snapshot` are the only writers.
    state: Arc<RwLock<State>>,
    /// Last applied log id and membership; locked only under the `state` lock.
    applied: Arc<Mutex<Applied>>,
    /// The node's database (flushed after every snapshot write).
    db: sled::Db,
    /// Holds the last snapshot's meta and data.
    tree: sled::Tree,
    /// Makes snapshot ids unique among snapshots of the same log id built by this process.
    snapshot_seq: Arc<AtomicU64>,
    /// Serialises "compare with the stored snapshot, then write" so an older snapshot that
    /// finishes building late never replaces a newer installed one.
    persist_lock: Arc<Mutex<()>>,
}

/// Builds a snapshot of the state at the time `build_snapshot` runs.
#[derive(Debug)]
pub struct SnapshotBuilder {
    /// The store the snapshot is taken from and persisted to.
    store: StateMachineStore,
}

#[derive(Clone, Debug, Default)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembership<u64, NodeInfo>,
}

impl StateMachineStore {
    /// Opens the state-machine tree on `db` and loads the last snapshot, if any, into memory.
    pub(crate) fn open(db: &sled::Db) -> Result<Self, StorageError> {
        let tree = db
            .open_tree(STATE_MACHINE_TREE)
            .map_err(|e| StorageError::from(StorageIOError::read_state_machine(&e)))?;
        let store = StateMachineStore {
            state: Arc::default(),
            applied: Arc::default(),
            db: db.clone(),
            tree,
            snapshot_seq: Arc::default(),
            persist_lock: Arc::default(),
        };
        if let Some((meta, data)) = store.read_snapshot()? {
            let state = decode_state(&meta, &data)?;
            store.replace(&meta, state);
        }
        Ok(store)
    }

    /// The shared state. Readers take the read lock briefly and never across an `.await`.
    pub fn state(&self) -> &Arc<RwLock<State>> {
        &self.state
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        // A poisoned lock means a reader panicked; the state itself is only changed by whole
        // transitions under this lock, so it is still consistent.
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_applied(&self) -> MutexGuard<'_, Applied> {
        self.applied.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the in-memory state and applied position with a snapshot's.
    fn replace(&self, meta: &Meta, state: State) {
        let mut guard = self.write_state();
        *guard = state;
        *self.lock_applied() = Applied {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
    }

    fn read_snapshot(&self) -> Result<Option<(Meta, Vec<u8>)>, StorageError> {
        let read = |e: &dyn std::error::Error| -> StorageError {
            StorageIOError::read_snapshot(None, openraft::AnyError::error(e)).into()
        };
        let Some(meta) = self.tree.get(SNAPSHOT_META_KEY).map_err(|e| read(&e))? else {
            return Ok(None);
        };
        let meta: Meta = serde_json::from_slice(&meta).map_err(|e| read(&e))?;
        let data = self
            .tree
            .get(SNAPSHOT_DATA_KEY)
            .map_err(|e| read(&e))?
            .map(|d| d.to_vec())
            .unwrap_or_default();
        Ok(Some((meta, data)))
    }

    /// Stores a snapshot (meta and data in one atomic batch) unless a newer one is already
    /// stored, then flushes.
    async fn persist(&self, meta: &Meta, data: &[u8]) -> Result<(), StorageError> {
        let write = |e: &dyn std::error::Error| -> StorageError {
            StorageIOError::write_snapshot(Some(meta.signature()), openraft::AnyError::error(e))
                .into()
        };
        let meta_bytes = serde_json::to_vec(meta).map_err(|e| write(&e))?;
        {
            let _guard = self
                .persist_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some((stored, _)) = self.read_snapshot()?
                && stored.last_log_id > meta.last_log_id
            {
                return Ok(());
            }
            let mut batch = sled::Batch::default();
            batch.insert(SNAPSHOT_META_KEY, meta_bytes);
            batch.insert(SNAPSHOT_DATA_KEY, data);
            self.tree.apply_batch(batch).map_err(|e| write(&e))?;
        }
        flush(&self.db).await.map_err(|e| write(&e))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // Clone under the lock (cheap next to serialising) so `apply` waits only for the copy.
        let (state, applied) = {
            let state = self.store.read_state();
            let applied = self.store.lock_applied().clone();
            (state.clone(), applied)
        };
        let data = serde_json::to_vec(&state)
            .map_err(|e| StorageError::from(StorageIOError::read_state_machine(&e)))?;
        let seq = self.store.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match &applied.last_applied {
            Some(id) => format!("{}-{}-{seq}", id.leader_id, id.index),
            None => format!("none-{seq}"),
        };
        let meta = Meta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership,
            snapshot_id,
        };
        self.store.persist(&meta, &data).await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<u64, NodeInfo>), StorageError> {
        let applied = self.lock_applied().clone();
        Ok((applied.last_applied, applied.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        for entry in entries {
            // One lock per entry: a long batch never blocks request-path readers for its whole
            // length, and every state a reader sees is the result of whole commands.
            let mut state = self.write_state();
            let response = match &entry.payload {
                EntryPayload::Normal(cmd) => state.apply(entry.log_id.index, cmd),
                EntryPayload::Blank => Response::Ok,
                EntryPayload::Membership(m) => {
                    self.lock_applied().membership =
                        StoredMembership::new(Some(entry.log_id), m.clone());
                    Response::Ok
                }
            };
            self.lock_applied().last_applied = Some(entry.log_id);
            drop(state);
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            store: self.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let state = decode_state(meta, &data)?;
        // Durable first: once the state is visible, a restart must come back to it.
        self.persist(meta, &data).await?;
        self.replace(meta, state);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.read_snapshot()?.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// Decodes snapshot data into a state and rebuilds its derived indexes.
fn decode_state(meta: &Meta, data: &[u8]) -> Result<State, StorageError> {
    let mut state: State = serde_json::from_slice(data).map_err(|e| {
        StorageError::from(StorageIOError::read_snapshot(Some(meta.signature()), &e))
    })?;
    state.reindex();
    Ok(state)
}

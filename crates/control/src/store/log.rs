//! The Raft log and vote on sled ([`LogStore`]). Writes are serialised by openraft (one caller at
//! a time, `&mut self`), and each one that openraft treats as durable is flushed before it is
//! acknowledged: `save_vote` before returning, `append` before calling back.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, LogState, OptionalSend, RaftLogReader, StorageIOError, Vote};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{LOG_META_TREE, LOG_TREE, flush};
use crate::type_config::{LogId, StorageError, TypeConfig};

/// Meta key of the last saved vote.
const VOTE_KEY: &str = "vote";
/// Meta key of the last saved committed log id.
const COMMITTED_KEY: &str = "committed";
/// Meta key of the last purged log id.
const LAST_PURGED_KEY: &str = "last_purged";

/// The log store. Cloning shares the same trees (it is also the log reader handed to
/// replication tasks).
#[derive(Clone, Debug)]
pub struct LogStore {
    /// The node's database; flushing it makes every tree's earlier writes durable.
    db: sled::Db,
    /// Entries by big-endian index, so sled's byte order is index order.
    logs: sled::Tree,
    /// Vote, committed and last purged log id.
    meta: sled::Tree,
}

impl LogStore {
    /// Opens the log trees on `db`, finishing a purge that a crash interrupted.
    pub(crate) fn open(db: &sled::Db) -> Result<Self, StorageError> {
        let logs = db.open_tree(LOG_TREE).map_err(|e| read_err(&e))?;
        let meta = db.open_tree(LOG_META_TREE).map_err(|e| read_err(&e))?;
        let store = LogStore {
            db: db.clone(),
            logs,
            meta,
        };
        // `purge` records the purged id before deleting; entries at or below it may remain
        // after a crash. Deleting them again restores "no entry at or below last_purged".
        if let Some(purged) = store.get_meta::<LogId>(LAST_PURGED_KEY)? {
            store.remove_range(..=purged.index)?;
        }
        Ok(store)
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        match self.meta.get(key).map_err(|e| read_err(&e))? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| read_err(&e)),
            None => Ok(None),
        }
    }

    fn put_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(value).map_err(|e| write_err(&e))?;
        self.meta.insert(key, bytes).map_err(|e| write_err(&e))?;
        Ok(())
    }

    /// Deletes the entries whose index is in `range`, atomically (one sled batch), so a crash
    /// leaves either all or none of them.
    fn remove_range(&self, range: impl RangeBounds<u64>) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for item in self.logs.range(key_range(&range)).keys() {
            batch.remove(item.map_err(|e| write_err(&e))?);
        }
        self.logs.apply_batch(batch).map_err(|e| write_err(&e))
    }

    async fn flush(&self) -> Result<(), StorageError> {
        flush(&self.db).await.map_err(|e| write_err(&e))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let mut entries = Vec::new();
        for item in self.logs.range(key_range(&range)) {
            let (_, value) = item.map_err(|e| read_err(&e))?;
            entries.push(serde_json::from_slice(&value).map_err(|e| read_err(&e))?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id = self.get_meta::<LogId>(LAST_PURGED_KEY)?;
        let last_entry = match self.logs.last().map_err(|e| read_err(&e))? {
            Some((_, value)) => Some(
                serde_json::from_slice::<Entry<TypeConfig>>(&value)
                    .map_err(|e| read_err(&e))?
                    .log_id,
            ),
            None => None,
        };
        // With every entry purged the last log id is the purged one.
        let last_log_id = last_entry.max(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        self.put_meta(VOTE_KEY, vote)?;
        // A vote must survive a crash before anyone is told about it, or a node could vote
        // twice in one term.
        flush(&self.db)
            .await
            .map_err(|e| StorageError::from(StorageIOError::write_vote(&e)))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.get_meta(VOTE_KEY)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not flushed: a committed id that lags after a crash only means fewer entries are
        // re-applied at start until the leader re-announces the commit index; the entries
        // themselves are durable.
        self.put_meta(COMMITTED_KEY, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>(COMMITTED_KEY)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let value = serde_json::to_vec(&entry).map_err(|e| write_err(&e))?;
            batch.insert(&index_key(entry.log_id.index), value);
        }
        self.logs.apply_batch(batch).map_err(|e| write_err(&e))?;
        // The callback is openraft's "durable" signal (a follower acknowledges the leader on
        // it), so it fires only after the flush.
        match flush(&self.db).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(write_err(&e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Deleting the tail (one batch) leaves no hole: only entries after the kept prefix go.
        self.remove_range(log_id.index..)?;
        self.flush().await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The purged id is recorded first, so a crash between the two steps leaves extra
        // entries below it (removed again on open), never a hole above it.
        self.put_meta(LAST_PURGED_KEY, &log_id)?;
        self.remove_range(..=log_id.index)?;
        self.flush().await
    }
}

/// The sled key of log index `index`.
fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// An index range as a sled key range.
fn key_range(range: &impl RangeBounds<u64>) -> (Bound<[u8; 8]>, Bound<[u8; 8]>) {
    (
        range.start_bound().map(|i| index_key(*i)),
        range.end_bound().map(|i| index_key(*i)),
    )
}

fn read_err(e: &(impl std::error::Error + 'static)) -> StorageError {
    StorageIOError::read_logs(e).into()
}

fn write_err(e: &(impl std::error::Error + 'static)) -> StorageError {
    StorageIOError::write_logs(e).into()
}

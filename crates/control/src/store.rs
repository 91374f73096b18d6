//! Raft storage on sled: one `sled::Db` per node directory, with separate trees for the log
//! ([`LogStore`]) and for the state machine's snapshot ([`StateMachineStore`]).
//!
//! Durability (DESIGN §2.2): sled buffers writes and flushes in the background, so every write
//! that openraft must see as durable (a vote, appended entries, a snapshot) is followed by
//! `flush_async().await` before it is acknowledged. The state machine itself lives in memory;
//! a restart rebuilds it from the last persisted snapshot plus a replay of the committed log
//! after it (openraft re-applies up to `read_committed()` on start).

#![expect(
    clippy::result_large_err,
    reason = "openraft's storage traits fix StorageError as the error type; our helpers return \
              it unboxed so `?` works across the trait boundary without conversions"
)]

pub mod log;
pub mod state_machine;

use std::path::Path;
use std::time::Duration;

pub use log::LogStore;
pub use state_machine::{SnapshotBuilder, StateMachineStore};

use crate::error::ControlError;
use crate::type_config::StorageError;

/// Log entries: big-endian `u64` index → serde_json of `Entry`.
const LOG_TREE: &str = "raft_log";
/// Vote, committed log id and last purged log id, by name.
const LOG_META_TREE: &str = "raft_log_meta";
/// The last snapshot: its meta and its data.
const STATE_MACHINE_TREE: &str = "raft_state_machine";

/// How often `open_db` retries while another handle in this process still holds the
/// directory's lock (a just-shut-down node whose tasks are still dropping their handles).
const LOCK_RETRY_INTERVAL: Duration = Duration::from_millis(20);
/// How many times: about 5 s in all, far longer than dropping a stopped node's tasks takes, and
/// short enough that a second process on the same directory fails with a clear error.
const LOCK_RETRIES: u32 = 250;

/// Opens (or creates) the sled database in `dir`. The directory belongs to sled; give each node
/// its own.
///
/// # Errors
/// [`ControlError::Storage`] when sled cannot open the directory, including when another
/// process holds it for more than about 5 s.
pub async fn open_db(dir: &Path) -> Result<sled::Db, ControlError> {
    let mut attempt = 0;
    loop {
        match sled::Config::new().path(dir).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if attempt < LOCK_RETRIES && e.to_string().contains("could not acquire lock") =>
            {
                attempt += 1;
                tokio::time::sleep(LOCK_RETRY_INTERVAL).await;
            }
            Err(e) => return Err(StorageError::from(openraft::StorageIOError::read(&e)).into()),
        }
    }
}

/// Opens the log and state-machine stores on `db` and loads the last snapshot into memory.
///
/// # Errors
/// [`StorageError`] when a tree cannot be opened or a stored record does not decode.
pub fn open_stores(db: &sled::Db) -> Result<(LogStore, StateMachineStore), StorageError> {
    let log = LogStore::open(db)?;
    let sm = StateMachineStore::open(db)?;
    Ok((log, sm))
}

/// Flushes every tree of `db` to disk.
pub(crate) async fn flush(db: &sled::Db) -> Result<(), sled::Error> {
    db.flush_async().await.map(|_| ())
}

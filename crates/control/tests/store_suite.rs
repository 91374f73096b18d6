//! Storage conformance for the sled stores: openraft's own `Suite` (every case on a fresh
//! directory), and a close-and-reopen test showing that what openraft was told is durable comes
//! back from the same directory.

#![expect(
    clippy::unwrap_used,
    reason = "harness helpers are test code: a failed step must fail the test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite, log_id};
use openraft::{
    Entry, EntryPayload, Membership, RaftLogReader, RaftSnapshotBuilder, StorageError,
    StorageHelper, Vote,
};
use switchyard_control::store::{LogStore, StateMachineStore, open_db, open_stores};
use switchyard_control::{Command, KeyRecord, KeyStatus, NodeInfo, Op, TypeConfig};

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
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for SledBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<u64>> {
        let dir = TempDir::new("suite");
        let db = open_db(&dir.0).await.unwrap();
        let (log, sm) = open_stores(&db)?;
        Ok((dir, log, sm))
    }
}

fn key_command(id: &str) -> Command {
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

fn normal(index: u64, id: &str) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Normal(key_command(id)),
    }
}

/// openraft's storage suite passes against the sled log and state-machine stores.
#[test]
fn sled_stores_pass_the_openraft_storage_suite() {
    // The suite builds its own runtime per case, so this is a plain test.
    Suite::test_all(SledBuilder).unwrap();
}

/// Everything openraft was told is durable is there after closing and reopening the directory:
/// 1. append a membership entry and three commands, save a vote and the committed id;
/// 2. apply two entries, build a snapshot, apply the rest, purge the first entry;
/// 3. drop every handle and reopen the same directory;
/// 4. vote, log, committed id, purge point and snapshot are back, the state machine starts
///    from the snapshot (with its digest index rebuilt), and openraft's start-up replay of the
///    committed log brings it to the last command.
#[tokio::test]
async fn stores_come_back_after_close_and_reopen() {
    let dir = TempDir::new("reopen");
    let members = BTreeMap::from([(1, NodeInfo::default())]);
    let membership = Membership::new(vec![BTreeSet::from([1])], members);
    let entries = vec![
        Entry {
            log_id: log_id(1, 1, 1),
            payload: EntryPayload::Membership(membership.clone()),
        },
        normal(2, "k2"),
        normal(3, "k3"),
        normal(4, "k4"),
    ];
    {
        let db = open_db(&dir.0).await.unwrap();
        let (mut log, mut sm) = open_stores(&db).unwrap();
        log.save_vote(&Vote::new_committed(1, 1)).await.unwrap();
        log.blocking_append(entries.clone()).await.unwrap();
        log.save_committed(Some(log_id(1, 1, 4))).await.unwrap();
        sm.apply(entries[..3].to_vec()).await.unwrap();
        let snapshot = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 1, 3)));
        sm.apply(entries[3..].to_vec()).await.unwrap();
        log.purge(log_id(1, 1, 1)).await.unwrap();
        assert!(sm.state().read().unwrap().keys.contains_key("k4"));
    }

    let db = open_db(&dir.0).await.unwrap();
    let (mut log, mut sm) = open_stores(&db).unwrap();
    assert_eq!(
        log.read_vote().await.unwrap(),
        Some(Vote::new_committed(1, 1))
    );
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(1, 1, 4)));
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 1)));
    assert_eq!(state.last_log_id, Some(log_id(1, 1, 4)));
    let kept = log.try_get_log_entries(..).await.unwrap();
    assert_eq!(kept, entries[1..].to_vec());

    // The state machine restarts from the snapshot: k2 and k3, not yet k4.
    let (applied, stored) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(1, 1, 3)));
    assert_eq!(stored.membership(), &membership);
    {
        let state = sm.state().read().unwrap();
        assert!(
            state.key_by_digest("digest-k3").is_some(),
            "digest index rebuilt"
        );
        assert!(!state.keys.contains_key("k4"));
    }
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta.last_log_id, Some(log_id(1, 1, 3)));

    // openraft's start-up: re-apply the committed log after the snapshot.
    StorageHelper::new(&mut log, &mut sm)
        .get_initial_state()
        .await
        .unwrap();
    assert!(sm.state().read().unwrap().keys.contains_key("k4"));
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 1, 4)));
}

//! Leadership transfer. openraft 0.9 has no transfer API, and its followers refuse votes while
//! the leader's lease holds, so the transfer is done with its runtime switches:
//!
//! 1. Every member but the target turns its election timer off, so only the target can win.
//! 2. The leader stops sending heartbeats; after the leader lease (the election timeout) the
//!    followers' leases expire and they grant votes again.
//! 3. The target campaigns and wins with a higher term (its log is up to date: it was
//!    replicating), and the old leader steps down when it hears the new term.
//! 4. Every member turns its timers and heartbeats back on, whatever happened, so a failed
//!    transfer leaves the cluster as it was (an election then picks a leader as usual).

use std::time::Duration;

use switchyard_proto::pb;
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};

use crate::node::App;

/// Longer than the election timeout (the leader lease), so every follower's lease has expired.
const LEASE_WAIT: Duration = Duration::from_millis(1_000);
/// How long the target has to win.
const WIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on one runtime call to a member.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

async fn runtime(
    app: &App,
    grpc: &str,
    auth: &MetadataValue<Ascii>,
    r: pb::RaftRuntimeRequest,
) -> Result<(), Status> {
    let mut client = crate::admin::admin_client(app, grpc, CALL_TIMEOUT).await?;
    let mut req = tonic::Request::new(r);
    req.metadata_mut().insert("authorization", auth.clone());
    client.raft_runtime(req).await.map(|_| ())
}

/// Moves leadership to voter `target`.
///
/// # Errors
/// `InvalidArgument` when `target` is not a voter, `Unavailable` when there is no leader or a
/// member cannot be reached, `DeadlineExceeded` when the target did not win in time.
pub async fn transfer_leader(
    app: &App,
    target: u64,
    auth: MetadataValue<Ascii>,
) -> Result<(), Status> {
    let metrics = app.control.metrics();
    let membership = metrics.membership_config.membership();
    if !membership.voter_ids().any(|v| v == target) {
        return Err(Status::invalid_argument(format!(
            "node {target} is not a voter"
        )));
    }
    let (leader, _) = app
        .control
        .leader()
        .ok_or_else(|| Status::unavailable("no leader to transfer from"))?;
    if leader == target {
        return Ok(());
    }
    let members: Vec<(u64, String)> = membership
        .nodes()
        .map(|(id, info)| (*id, info.grpc.clone()))
        .collect();
    let grpc_of = |id: u64| {
        members
            .iter()
            .find(|(m, _)| *m == id)
            .map(|(_, g)| g.clone())
            .unwrap_or_default()
    };
    let quiet = |elect, heartbeat| pb::RaftRuntimeRequest {
        elect,
        heartbeat,
        campaign: false,
    };
    let result = async {
        for (id, grpc) in &members {
            if *id != target {
                runtime(app, grpc, &auth, quiet(false, *id != leader)).await?;
            }
        }
        tokio::time::sleep(LEASE_WAIT).await;
        runtime(
            app,
            &grpc_of(target),
            &auth,
            pb::RaftRuntimeRequest {
                elect: true,
                heartbeat: true,
                campaign: true,
            },
        )
        .await?;
        tokio::time::timeout(WIN_TIMEOUT, async {
            while app.control.leader().map(|(id, _)| id) != Some(target) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .map_err(|_| {
            Status::deadline_exceeded(format!("node {target} did not win the election in time"))
        })
    }
    .await;
    for (_, grpc) in &members {
        let _ = runtime(app, grpc, &auth, quiet(true, true)).await;
    }
    result
}

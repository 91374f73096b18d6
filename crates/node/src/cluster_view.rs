//! The cluster as one node sees it, for `ctl cluster status` and `/readyz`: members with their
//! roles, the leader, term, commit and applied index, and whether each member keeps up with the
//! leader's log (known on the leader; other nodes report what they last heard).

use switchyard_proto::pb;

use crate::node::App;

/// How far behind the leader's log a member may be and still count as healthy.
const HEALTHY_LAG_ENTRIES: u64 = 1_000;

/// The status reply.
pub fn status(app: &App) -> pb::ClusterStatusReply {
    let m = app.control.metrics();
    let leader = m.current_leader.unwrap_or(0);
    let last_index = m.last_log_index.unwrap_or(0);
    let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
    let replication = m.replication.clone();
    let membership = m.membership_config.membership();
    let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
    let members = membership
        .nodes()
        .map(|(id, info)| {
            let role = if *id == leader {
                "leader"
            } else if voters.contains(id) {
                "follower"
            } else {
                "learner"
            };
            let matched = if *id == m.id {
                Some(applied)
            } else {
                replication
                    .as_ref()
                    .and_then(|r| r.get(id))
                    .and_then(|l| l.map(|l| l.index))
            };
            let healthy = match (&replication, *id == m.id) {
                (_, true) => leader != 0,
                // The leader knows how far each follower got.
                (Some(_), false) => {
                    matched.is_some_and(|x| last_index.saturating_sub(x) <= HEALTHY_LAG_ENTRIES)
                }
                // A follower only knows the leader is alive (it hears it); others unknown.
                (None, false) => *id == leader,
            };
            pb::Member {
                id: *id,
                role: role.to_owned(),
                http: info.http.clone(),
                grpc: info.grpc.clone(),
                healthy,
                matched_index: matched.unwrap_or(0),
            }
        })
        .collect();
    pb::ClusterStatusReply {
        leader,
        term: m.current_term,
        commit_index: m
            .last_log_index
            .unwrap_or(0)
            .min(applied.max(m.last_log_index.unwrap_or(0))),
        applied_index: applied,
        node: m.id,
        members,
    }
}

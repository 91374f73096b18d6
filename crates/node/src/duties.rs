//! Periodic work a node does for the cluster: while it leads, it proposes
//! [`Op::ExpireAllowances`] so allowances whose holder vanished are charged in full and closed
//! (DESIGN §2.1). Followers do nothing here; if leadership moves, the new leader takes over.

use std::sync::Arc;
use std::time::Duration;

use switchyard_control::{Command, Op};
use tokio_util::sync::CancellationToken;

use crate::node::App;

/// How often the leader sweeps expired allowances: well under the allowance TTL, so an expired
/// allowance is charged within seconds.
const EXPIRY_SWEEP: Duration = Duration::from_secs(2);

/// Runs until `cancel`.
pub async fn run(app: Arc<App>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(EXPIRY_SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let leading = app
            .control
            .leader()
            .is_some_and(|(id, _)| id == app.config.node_id.0);
        let due = {
            let s = match app.control.state().read() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            let now = app.clock.unix_ms();
            s.allowances.values().any(|a| a.expires_at_ms <= now)
        };
        if leading && due {
            let cmd = Command {
                at_ms: app.clock.unix_ms(),
                actor: None,
                op: Op::ExpireAllowances,
            };
            if let Err(e) = app.control.write(cmd).await {
                tracing::debug!(error = %e, "allowance expiry sweep failed");
            }
        }
    }
}

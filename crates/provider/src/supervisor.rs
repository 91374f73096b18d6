//! Supervises the provider actors. ractor has no built-in restart strategy, so this actor
//! re-spawns a failed child itself, with a capped backoff, keeping the child's gate, snapshot
//! channel and actor slot so the request path never notices beyond a missed outcome or two.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use switchyard_core::Transport;

use crate::actor::{ProviderActor, ProviderArgs, ProviderMsg};

/// Where the current incarnation of a provider actor can be reached. Written by the supervisor
/// on every (re)start, read by the request path to cast outcomes.
pub type ActorSlot = Arc<RwLock<Option<ActorRef<ProviderMsg>>>>;

/// First restart delay; doubles per consecutive restart up to [`MAX_RESTART_DELAY`], so a child
/// that crashes at once on start cannot spin a core.
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(50);
/// Upper bound for the restart delay.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(5);

/// The supervisor actor.
pub struct ProviderSupervisor<T: Transport>(std::marker::PhantomData<T>);

impl<T: Transport> Default for ProviderSupervisor<T> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// Messages to the supervisor.
pub enum SupervisorMsg {
    /// Start child `index` again.
    Respawn(usize),
}

/// One supervised child.
pub struct Child<T: Transport> {
    /// Start arguments, reused for every restart.
    pub args: ProviderArgs<T>,
    /// Where the request path finds the current incarnation.
    pub slot: ActorSlot,
}

/// The supervisor's state: its children.
pub struct SupervisorState<T: Transport> {
    children: Vec<Child<T>>,
}

fn set_slot(slot: &ActorSlot, actor: Option<ActorRef<ProviderMsg>>) {
    match slot.write() {
        Ok(mut g) => *g = actor,
        Err(poisoned) => *poisoned.into_inner() = actor,
    }
}

impl<T: Transport> Actor for ProviderSupervisor<T> {
    type Msg = SupervisorMsg;
    type State = SupervisorState<T>;
    type Arguments = Vec<Child<T>>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        children: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        for child in &children {
            let (actor, _) = Actor::spawn_linked(
                None,
                ProviderActor::<T>::default(),
                child.args.clone(),
                myself.get_cell(),
            )
            .await?;
            set_slot(&child.slot, Some(actor));
        }
        Ok(SupervisorState { children })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        for child in &state.children {
            let actor = child.slot.read().ok().and_then(|g| g.clone());
            if let Some(a) = actor {
                a.stop(Some("node shutting down".into()));
            }
            set_slot(&child.slot, None);
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let SupervisorMsg::Respawn(i) = msg;
        if let Some(child) = state.children.get_mut(i) {
            child.args.restarts = child.args.restarts.saturating_add(1);
            match Actor::spawn_linked(
                None,
                ProviderActor::<T>::default(),
                child.args.clone(),
                myself.get_cell(),
            )
            .await
            {
                Ok((actor, _)) => {
                    tracing::info!(provider = %child.args.config.name, restarts = child.args.restarts, "provider actor restarted");
                    set_slot(&child.slot, Some(actor));
                }
                Err(e) => {
                    tracing::error!(provider = %child.args.config.name, error = %e, "provider actor failed to restart");
                    myself.send_after(restart_delay(child.args.restarts), move || {
                        SupervisorMsg::Respawn(i)
                    });
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}")),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, format!("terminated: {}", reason.unwrap_or_default()))
            }
            _ => return Ok(()),
        };
        let dead = cell.get_id();
        for (i, child) in state.children.iter().enumerate() {
            let is_it = child
                .slot
                .read()
                .ok()
                .and_then(|g| g.as_ref().map(|a| a.get_id() == dead))
                .unwrap_or(false);
            if is_it {
                tracing::warn!(provider = %child.args.config.name, reason = %why, "provider actor stopped; restarting");
                set_slot(&child.slot, None);
                myself.send_after(restart_delay(child.args.restarts), move || {
                    SupervisorMsg::Respawn(i)
                });
            }
        }
        Ok(())
    }
}

fn restart_delay(restarts: u32) -> Duration {
    FIRST_RESTART_DELAY
        .saturating_mul(1u32.checked_shl(restarts.min(16)).unwrap_or(u32::MAX))
        .min(MAX_RESTART_DELAY)
}

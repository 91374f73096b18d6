//! The admin gRPC service (`proto/switchyard/v1/admin.proto`), served by every node. Reads come
//! from the local replicated state; writes go through Raft (forwarded to the leader by the
//! control handle). Every call needs an admin token whose role allows it; a virtual key never
//! does. Errors are gRPC statuses with a message, mapped in one place ([`status`]).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLockReadGuard};

use switchyard_control::state::Budget;
use switchyard_control::{
    Command, ControlError, KeyRecord, KeyStatus, Op, Period, Rejection, Response, Role, Scope,
    State,
};
use switchyard_core::KeyDigester;
use switchyard_core::secret::{generate_virtual_key, random_hex};
use switchyard_proto::pb;
use switchyard_proto::pb::admin_service_server::AdminService;
use tonic::{Request, Status};

use crate::node::App;

mod routing;

/// Characters of a secret shown as its prefix in listings.
const PREFIX_CHARS: usize = 12;
/// Audit entries returned when the caller gives no limit.
const DEFAULT_AUDIT_LIMIT: usize = 100;

/// The admin service of one node.
pub struct AdminApi {
    app: Arc<App>,
    digester: KeyDigester,
}

impl AdminApi {
    /// The service for `app`.
    pub fn new(app: Arc<App>) -> Self {
        let digester = KeyDigester::new(&app.config.cluster_secret);
        Self { app, digester }
    }

    fn state(&self) -> RwLockReadGuard<'_, State> {
        match self.app.control.state().read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The caller's name and role, if its token allows `need`.
    fn authorize<T>(&self, req: &Request<T>, need: Role) -> Result<String, Status> {
        let token = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("missing admin token: send 'authorization: Bearer <token>'")
            })?;
        let digest = self.digester.digest(token.trim()).to_hex();
        let state = self.state();
        let t = state.admin_token(&digest).ok_or_else(|| {
            Status::unauthenticated(
                "invalid admin token (virtual keys cannot be used for admin calls)",
            )
        })?;
        // Roles are ordered from most to least powerful.
        if t.role > need {
            return Err(Status::permission_denied(format!(
                "role {} may not do this (needs {})",
                t.role.as_str(),
                need.as_str()
            )));
        }
        Ok(t.name.clone())
    }

    /// Records an admin action taken outside the state machine in the replicated audit log. The
    /// action already happened, so a failure to record it is logged, not returned.
    async fn audit(&self, actor: String, what: String) {
        if let Err(e) = self.write(actor, Op::Record { what: what.clone() }).await {
            tracing::warn!(error = %e, %what, "admin action not recorded in the audit log");
        }
    }

    /// Runs `call` against the leader's admin service with the caller's own token, for the
    /// calls only the leader can serve.
    ///
    /// # Errors
    /// `Unavailable` when no leader is known or reachable; otherwise the leader's answer.
    async fn on_leader<T, F, Fut>(
        &self,
        auth: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
        call: F,
    ) -> Result<tonic::Response<T>, Status>
    where
        F: FnOnce(
            pb::admin_service_client::AdminServiceClient<tonic::transport::Channel>,
            tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
        ) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        /// A membership change commits in two rounds; allow for a slow disk.
        const LEADER_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
        let auth = auth.ok_or_else(|| Status::unauthenticated("missing admin token"))?;
        let Some((leader, info)) = self.app.control.leader() else {
            return Err(Status::unavailable("no raft leader is known; try again"));
        };
        if leader == self.app.config.node_id.0 {
            return Err(Status::unavailable("leadership is changing; try again"));
        }
        let client = admin_client(&self.app, &info.grpc, LEADER_CALL_TIMEOUT).await?;
        call(client, auth).await
    }

    /// Proposes `op` as `actor` and waits until this node applied it (so a read right after,
    /// like the budget `set` shows, sees it), mapping a rejection to its status.
    async fn write(&self, actor: String, op: Op) -> Result<Response, Status> {
        let cmd = Command {
            at_ms: self.app.clock.unix_ms(),
            actor: Some(actor),
            op,
        };
        match self.app.control.write_visible(cmd).await.map_err(status)? {
            Response::Rejected(r) => Err(rejection(r)),
            other => Ok(other),
        }
    }
}

/// Control errors become statuses through the control crate's one exhaustive mapping
/// (`NotLeader` → `Unavailable` with the leader's address in metadata, and so on).
pub fn status(e: ControlError) -> Status {
    Status::from(e)
}

/// Asks the leader for the cluster status, bounded in time.
async fn ask_leader(
    app: &App,
    grpc: &str,
    auth: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
) -> Result<pb::ClusterStatusReply, Status> {
    /// A status call to the leader is a local round trip; one second is plenty.
    const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
    let mut client = admin_client(app, grpc, ASK_TIMEOUT).await?;
    let mut req = Request::new(pb::ClusterStatusRequest {});
    req.metadata_mut().insert("authorization", auth);
    Ok(client.cluster_status(req).await?.into_inner())
}

/// An admin client to another member (TLS when this node runs it), bounded by `timeout`.
///
/// # Errors
/// `Unavailable` when the member cannot be reached.
pub async fn admin_client(
    app: &App,
    grpc: &str,
    timeout: std::time::Duration,
) -> Result<pb::admin_service_client::AdminServiceClient<tonic::transport::Channel>, Status> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(grpc.to_owned())
        .map_err(|e| Status::internal(e.to_string()))?;
    if let Some(tls) = app.client_tls.clone() {
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| Status::internal(e.to_string()))?;
    }
    let channel = endpoint
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    Ok(pb::admin_service_client::AdminServiceClient::new(channel))
}

/// `YYYY-MM-DD` (UTC) of a day counted from the Unix epoch (Howard Hinnant's civil-from-days).
fn civil_date(day: u64) -> String {
    let z = i64::try_from(day).unwrap_or(i64::MAX / 2) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn rejection(r: Rejection) -> Status {
    match r {
        Rejection::NotFound(what) => Status::not_found(format!("{what} not found")),
        Rejection::AlreadyExists(what) => Status::already_exists(format!("{what} already exists")),
        Rejection::FailedPrecondition(why) => Status::failed_precondition(why),
    }
}

fn key_info(k: &KeyRecord) -> pb::KeyInfo {
    pb::KeyInfo {
        id: k.id.clone(),
        prefix: k.prefix.clone(),
        name: k.name.clone(),
        owner: k.owner.clone().unwrap_or_default(),
        team: k.team.clone().unwrap_or_default(),
        models: k.models.clone(),
        rpm: k.rpm,
        tpm: k.tpm,
        expires_at_ms: k.expires_at_ms.unwrap_or(0),
        tags: k.tags.clone().into_iter().collect(),
        status: k.status.as_str().to_owned(),
        created_at_ms: k.created_at_ms,
        strategy: k.strategy.clone().unwrap_or_default(),
        limits: Some(routing::limits_info(&k.limits)),
    }
}

fn budget_info(b: &Budget, outstanding: u32) -> pb::BudgetInfo {
    pb::BudgetInfo {
        scope: b.scope.to_string(),
        limit_micros: b.limit_micros,
        period: b.period.as_str().to_owned(),
        spent_micros: b.spent_micros,
        reserved_micros: b.reserved_micros,
        available_micros: b.available_micros(),
        alert_thresholds_pct: b
            .alert_thresholds_pct
            .iter()
            .map(|p| u32::from(*p))
            .collect(),
        alerts_fired_pct: b.alerts_fired_pct.iter().map(|p| u32::from(*p)).collect(),
        outstanding_allowances: outstanding,
    }
}

fn scope_of(key: &str, team: &str) -> Result<Scope, Status> {
    match (key.is_empty(), team.is_empty()) {
        (false, true) => Ok(Scope::Key(key.to_owned())),
        (true, false) => Ok(Scope::Team(team.to_owned())),
        _ => Err(Status::invalid_argument("give exactly one of key and team")),
    }
}

fn period_of(p: &str) -> Result<Period, Status> {
    if p.is_empty() {
        return Ok(Period::Total);
    }
    Period::parse(p).ok_or_else(|| {
        Status::invalid_argument(format!(
            "unknown period {p:?} (expected total, daily or monthly)"
        ))
    })
}

fn new_secret(digester: &KeyDigester) -> (String, String, String) {
    let secret = generate_virtual_key();
    let digest = digester.digest(secret.expose()).to_hex();
    let prefix: String = secret.expose().chars().take(PREFIX_CHARS).collect();
    (secret.expose().clone(), digest, format!("{prefix}…"))
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn cluster_status(
        &self,
        req: Request<pb::ClusterStatusRequest>,
    ) -> Result<tonic::Response<pb::ClusterStatusReply>, Status> {
        self.authorize(&req, Role::Viewer)?;
        // Only the leader knows how far every member got; a follower asks it, and answers from
        // its own view when the leader cannot be reached.
        if let Some((leader, info)) = self.app.control.leader()
            && leader != self.app.config.node_id.0
            && let Some(auth) = req.metadata().get("authorization").cloned()
            && let Ok(reply) = ask_leader(&self.app, &info.grpc, auth).await
        {
            return Ok(tonic::Response::new(reply));
        }
        Ok(tonic::Response::new(crate::cluster_view::status(&self.app)))
    }

    async fn add_node(
        &self,
        req: Request<pb::AddNodeRequest>,
    ) -> Result<tonic::Response<pb::ClusterStatusReply>, Status> {
        let actor = self.authorize(&req, Role::Admin)?;
        let auth = req.metadata().get("authorization").cloned();
        let r = req.into_inner();
        if r.id == 0 || r.http.is_empty() || r.grpc.is_empty() {
            return Err(Status::invalid_argument("id, http and grpc are required"));
        }
        let info = switchyard_control::NodeInfo {
            http: r.http.clone(),
            grpc: r.grpc.clone(),
        };
        match self.app.control.add_node(r.id, info, r.voter).await {
            Ok(()) => {}
            // Only the leader changes membership: ask it on the caller's behalf.
            Err(ControlError::NotLeader { .. }) => {
                return self
                    .on_leader(auth, |mut leader, auth| async move {
                        let mut req = Request::new(r);
                        req.metadata_mut().insert("authorization", auth);
                        leader.add_node(req).await
                    })
                    .await;
            }
            Err(e) => return Err(status(e)),
        }
        let role = if r.voter { "voter" } else { "learner" };
        self.audit(actor, format!("add node {} ({}) as {role}", r.id, r.grpc))
            .await;
        Ok(tonic::Response::new(crate::cluster_view::status(&self.app)))
    }

    async fn remove_node(
        &self,
        req: Request<pb::RemoveNodeRequest>,
    ) -> Result<tonic::Response<pb::ClusterStatusReply>, Status> {
        let actor = self.authorize(&req, Role::Admin)?;
        let auth = req.metadata().get("authorization").cloned();
        let id = req.into_inner().id;
        match self.app.control.remove_node(id).await {
            Ok(()) => {}
            Err(ControlError::NotLeader { .. }) => {
                return self
                    .on_leader(auth, |mut leader, auth| async move {
                        let mut req = Request::new(pb::RemoveNodeRequest { id });
                        req.metadata_mut().insert("authorization", auth);
                        leader.remove_node(req).await
                    })
                    .await;
            }
            Err(e) => return Err(status(e)),
        }
        self.audit(actor, format!("remove node {id}")).await;
        Ok(tonic::Response::new(crate::cluster_view::status(&self.app)))
    }

    async fn raft_runtime(
        &self,
        req: Request<pb::RaftRuntimeRequest>,
    ) -> Result<tonic::Response<pb::RaftRuntimeReply>, Status> {
        self.authorize(&req, Role::Admin)?;
        let r = req.into_inner();
        let raft = self.app.control.raft();
        raft.runtime_config().elect(r.elect);
        raft.runtime_config().heartbeat(r.heartbeat);
        if r.campaign {
            raft.trigger()
                .elect()
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        Ok(tonic::Response::new(pb::RaftRuntimeReply {}))
    }

    async fn transfer_leader(
        &self,
        req: Request<pb::TransferLeaderRequest>,
    ) -> Result<tonic::Response<pb::ClusterStatusReply>, Status> {
        let actor = self.authorize(&req, Role::Admin)?;
        let auth = req
            .metadata()
            .get("authorization")
            .cloned()
            .ok_or_else(|| Status::unauthenticated("missing admin token"))?;
        let target = req.into_inner().id;
        crate::transfer::transfer_leader(&self.app, target, auth).await?;
        self.audit(actor, format!("transfer leadership to node {target}"))
            .await;
        Ok(tonic::Response::new(crate::cluster_view::status(&self.app)))
    }

    async fn create_team(
        &self,
        req: Request<pb::NameRequest>,
    ) -> Result<tonic::Response<pb::TeamInfo>, Status> {
        let actor = self.authorize(&req, Role::Operator)?;
        let name = req.into_inner().name;
        if name.trim().is_empty() {
            return Err(Status::invalid_argument("name is required"));
        }
        self.write(actor, Op::PutTeam { name: name.clone() })
            .await?;
        Ok(tonic::Response::new(self.team_info(&name)))
    }

    async fn list_teams(
        &self,
        req: Request<pb::ListTeamsRequest>,
    ) -> Result<tonic::Response<pb::ListTeamsReply>, Status> {
        self.authorize(&req, Role::Viewer)?;
        let names: Vec<String> = self.state().teams.keys().cloned().collect();
        Ok(tonic::Response::new(pb::ListTeamsReply {
            teams: names.iter().map(|n| self.team_info(n)).collect(),
        }))
    }

    async fn create_key(
        &self,
        req: Request<pb::CreateKeyRequest>,
    ) -> Result<tonic::Response<pb::CreateKeyReply>, Status> {
        // Creating a key shows its secret, which operators never see.
        let actor = self.authorize(&req, Role::Admin)?;
        let r = req.into_inner();
        if r.name.trim().is_empty() {
            return Err(Status::invalid_argument("name is required"));
        }
        if r.models.iter().any(|m| m.trim().is_empty()) {
            return Err(Status::invalid_argument(
                "models must not contain empty names",
            ));
        }
        let period = period_of(&r.period)?;
        let strategy = routing::strategy_name(&r.strategy)?;
        let limits = routing::routing_limits(r.limits)?;
        let (secret, digest_hex, prefix) = new_secret(&self.digester);
        let record = KeyRecord {
            id: format!("key_{}", random_hex(8)),
            digest_hex,
            prefix,
            name: r.name.trim().to_owned(),
            owner: (!r.owner.is_empty()).then_some(r.owner),
            team: (!r.team.is_empty()).then_some(r.team),
            models: r.models,
            rpm: r.rpm,
            tpm: r.tpm,
            expires_at_ms: (r.expires_at_ms > 0).then_some(r.expires_at_ms),
            tags: r.tags.into_iter().collect::<BTreeMap<_, _>>(),
            status: KeyStatus::Active,
            created_at_ms: self.app.clock.unix_ms(),
            strategy,
            limits,
        };
        let id = record.id.clone();
        // Key and budget in one entry: no node may ever see the key without its budget.
        let op = if r.budget_micros > 0 {
            Op::Batch(vec![
                Op::CreateKey(record),
                Op::SetBudget {
                    scope: Scope::Key(id.clone()),
                    limit_micros: r.budget_micros,
                    period,
                    alert_thresholds_pct: vec![50, 80, 100],
                },
            ])
        } else {
            Op::CreateKey(record)
        };
        let stored = match self.write(actor, op).await? {
            Response::Key(k) => k,
            other => return Err(Status::internal(format!("unexpected reply: {other:?}"))),
        };
        Ok(tonic::Response::new(pb::CreateKeyReply {
            id,
            key: secret,
            info: Some(key_info(&stored)),
        }))
    }

    async fn list_keys(
        &self,
        req: Request<pb::ListKeysRequest>,
    ) -> Result<tonic::Response<pb::ListKeysReply>, Status> {
        self.authorize(&req, Role::Viewer)?;
        let team = req.into_inner().team;
        let state = self.state();
        let keys = state
            .keys
            .values()
            .filter(|k| team.is_empty() || k.team.as_deref() == Some(team.as_str()))
            .map(key_info)
            .collect();
        Ok(tonic::Response::new(pb::ListKeysReply { keys }))
    }

    async fn show_key(
        &self,
        req: Request<pb::KeyIdRequest>,
    ) -> Result<tonic::Response<pb::KeyInfo>, Status> {
        self.authorize(&req, Role::Viewer)?;
        let id = req.into_inner().id;
        let state = self.state();
        state
            .keys
            .get(&id)
            .map(|k| tonic::Response::new(key_info(k)))
            .ok_or_else(|| Status::not_found(format!("key {id} not found")))
    }

    async fn revoke_key(
        &self,
        req: Request<pb::KeyIdRequest>,
    ) -> Result<tonic::Response<pb::KeyInfo>, Status> {
        let actor = self.authorize(&req, Role::Operator)?;
        let id = req.into_inner().id;
        if id.is_empty() {
            return Err(Status::invalid_argument("id is required"));
        }
        match self.write(actor, Op::RevokeKey { id }).await? {
            Response::Key(k) => Ok(tonic::Response::new(key_info(&k))),
            other => Err(Status::internal(format!("unexpected reply: {other:?}"))),
        }
    }

    async fn set_key_routing(
        &self,
        req: Request<pb::SetKeyRoutingRequest>,
    ) -> Result<tonic::Response<pb::KeyInfo>, Status> {
        // Routing defaults hold no secret: operators may change them.
        let actor = self.authorize(&req, Role::Operator)?;
        let r = req.into_inner();
        if r.id.is_empty() {
            return Err(Status::invalid_argument("id is required"));
        }
        let op = Op::SetKeyRouting {
            id: r.id,
            strategy: routing::strategy_name(&r.strategy)?,
            limits: routing::routing_limits(r.limits)?,
        };
        match self.write(actor, op).await? {
            Response::Key(k) => Ok(tonic::Response::new(key_info(&k))),
            other => Err(Status::internal(format!("unexpected reply: {other:?}"))),
        }
    }

    async fn rotate_key(
        &self,
        req: Request<pb::KeyIdRequest>,
    ) -> Result<tonic::Response<pb::CreateKeyReply>, Status> {
        let actor = self.authorize(&req, Role::Admin)?;
        let id = req.into_inner().id;
        if id.is_empty() {
            return Err(Status::invalid_argument("id is required"));
        }
        let (secret, digest_hex, prefix) = new_secret(&self.digester);
        match self
            .write(
                actor,
                Op::RotateKey {
                    id: id.clone(),
                    digest_hex,
                    prefix,
                },
            )
            .await?
        {
            Response::Key(k) => Ok(tonic::Response::new(pb::CreateKeyReply {
                id,
                key: secret,
                info: Some(key_info(&k)),
            })),
            other => Err(Status::internal(format!("unexpected reply: {other:?}"))),
        }
    }

    async fn set_budget(
        &self,
        req: Request<pb::SetBudgetRequest>,
    ) -> Result<tonic::Response<pb::BudgetInfo>, Status> {
        let actor = self.authorize(&req, Role::Operator)?;
        let r = req.into_inner();
        let scope = scope_of(&r.key, &r.team)?;
        let period = period_of(&r.period)?;
        let thresholds: Vec<u8> = r
            .alert_thresholds_pct
            .iter()
            .map(|p| {
                u8::try_from(*p)
                    .ok()
                    .filter(|p| (1..=100).contains(p))
                    .ok_or_else(|| {
                        Status::invalid_argument(format!(
                            "alert threshold {p} is not a percentage from 1 to 100"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        let thresholds = if thresholds.is_empty() {
            vec![50, 80, 100]
        } else {
            thresholds
        };
        self.write(
            actor,
            Op::SetBudget {
                scope: scope.clone(),
                limit_micros: r.limit_micros,
                period,
                alert_thresholds_pct: thresholds,
            },
        )
        .await?;
        self.show(&scope)
    }

    async fn show_budget(
        &self,
        req: Request<pb::ShowBudgetRequest>,
    ) -> Result<tonic::Response<pb::BudgetInfo>, Status> {
        self.authorize(&req, Role::Viewer)?;
        let r = req.into_inner();
        let scope = scope_of(&r.key, &r.team)?;
        self.show(&scope)
    }

    async fn spend(
        &self,
        req: Request<pb::SpendRequest>,
    ) -> Result<tonic::Response<pb::SpendReply>, Status> {
        self.authorize(&req, Role::Viewer)?;
        let r = req.into_inner();
        // Rows by a dimension (key, team, model, tag) or by period (day, month). Spend is kept
        // per day and per dimension, not per pair of dimensions: a key or team filter can be
        // broken down by period, not by model or tag.
        let dim = match r.by.as_str() {
            "" | "key" | "day" | "month" => "key",
            "team" => "team",
            "model" => "model",
            "tag" => "tag",
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown grouping {other:?} (expected key, team, model, tag, day or month)"
                )));
            }
        };
        let filtered = !r.key.is_empty() || !r.team.is_empty();
        if filtered && matches!(dim, "model" | "tag") {
            return Err(Status::invalid_argument(format!(
                "spend of one key or team can be grouped by day or month, not by {}: spend is \
                 kept per dimension, not per pair of dimensions",
                r.by
            )));
        }
        let (dim, only) = match (r.key.is_empty(), r.team.is_empty()) {
            (false, _) => ("key", Some(r.key)),
            (true, false) => ("team", Some(r.team)),
            (true, true) => (dim, None),
        };
        let today = self.app.clock.unix_ms() / 86_400_000;
        let first_day = if r.days == 0 {
            0
        } else {
            today.saturating_sub(u64::from(r.days) - 1)
        };
        let state = self.state();
        let mut totals: BTreeMap<String, u64> = BTreeMap::new();
        for (day, dims) in state.spend.rows.range(first_day..) {
            if let Some(names) = dims.get(dim) {
                for (name, micros) in names {
                    if only.as_deref().is_none_or(|o| o == name) {
                        let row = match r.by.as_str() {
                            "day" => civil_date(*day),
                            "month" => civil_date(*day)[..7].to_owned(),
                            _ => name.clone(),
                        };
                        *totals.entry(row).or_default() += micros;
                    }
                }
            }
        }
        let spent_micros = if only.is_none() && dim != "tag" && dim != "team" && r.days == 0 {
            state.spend.total_micros
        } else {
            totals.values().sum()
        };
        let rows = totals
            .into_iter()
            .map(|(name, spent_micros)| pb::SpendRow { name, spent_micros })
            .collect();
        // Charges for allowances that expired unsettled are kept by budget scope: with a key or
        // team filter, only that budget's.
        let scope = only.as_ref().map(|name| format!("{dim}:{name}"));
        let expired_charges_micros = state
            .spend
            .expired_charges_micros
            .iter()
            .filter(|(s, _)| scope.as_deref().is_none_or(|want| want == s.as_str()))
            .map(|(_, micros)| micros)
            .sum();
        Ok(tonic::Response::new(pb::SpendReply {
            spent_micros,
            rows,
            expired_charges_micros,
        }))
    }

    async fn audit(
        &self,
        req: Request<pb::AuditRequest>,
    ) -> Result<tonic::Response<pb::AuditReply>, Status> {
        self.authorize(&req, Role::Viewer)?;
        let limit = match req.into_inner().limit {
            0 => DEFAULT_AUDIT_LIMIT,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let state = self.state();
        let skip = state.audit.len().saturating_sub(limit);
        let entries = state.audit[skip..]
            .iter()
            .map(|a| pb::AuditEntry {
                index: a.index,
                at_ms: a.at_ms,
                actor: a.actor.clone(),
                what: a.what.clone(),
            })
            .collect();
        Ok(tonic::Response::new(pb::AuditReply { entries }))
    }

    async fn create_admin_token(
        &self,
        req: Request<pb::CreateAdminTokenRequest>,
    ) -> Result<tonic::Response<pb::CreateAdminTokenReply>, Status> {
        let actor = self.authorize(&req, Role::Admin)?;
        let r = req.into_inner();
        let role = Role::parse(&r.role).ok_or_else(|| {
            Status::invalid_argument(format!(
                "unknown role {:?} (expected admin, operator or viewer)",
                r.role
            ))
        })?;
        if r.name.trim().is_empty() {
            return Err(Status::invalid_argument("name is required"));
        }
        let token = format!("sy-admin-{}", random_hex(24));
        let digest_hex = self.digester.digest(&token).to_hex();
        self.write(
            actor,
            Op::PutAdminToken {
                name: r.name.clone(),
                digest_hex,
                role,
            },
        )
        .await?;
        Ok(tonic::Response::new(pb::CreateAdminTokenReply {
            name: r.name,
            token,
            role: role.as_str().to_owned(),
        }))
    }

    async fn list_providers(
        &self,
        req: Request<pb::ListProvidersRequest>,
    ) -> Result<tonic::Response<pb::ListProvidersReply>, Status> {
        self.authorize(&req, Role::Viewer)?;
        let state = self.state();
        Ok(tonic::Response::new(pb::ListProvidersReply {
            providers: state
                .providers
                .values()
                .map(routing::provider_info)
                .collect(),
        }))
    }

    async fn put_provider(
        &self,
        req: Request<pb::PutProviderRequest>,
    ) -> Result<tonic::Response<pb::ProviderInfo>, Status> {
        // Setting a credential is an admin's; an operator may change everything else.
        let needs = if req.get_ref().api_key.is_empty() {
            Role::Operator
        } else {
            Role::Admin
        };
        let actor = self.authorize(&req, needs)?;
        let r = req.into_inner();
        let name = r
            .provider
            .as_ref()
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let current = self.state().providers.get(&name).cloned();
        let spec = routing::provider_spec(&self.app, r, current.as_ref())?;
        let info = routing::provider_info(&spec);
        self.write(actor, Op::PutProvider(spec)).await?;
        Ok(tonic::Response::new(info))
    }

    async fn remove_provider(
        &self,
        req: Request<pb::NameRequest>,
    ) -> Result<tonic::Response<pb::ProviderInfo>, Status> {
        let actor = self.authorize(&req, Role::Operator)?;
        let name = req.into_inner().name;
        let current = self
            .state()
            .providers
            .get(&name)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("provider {name} not found")))?;
        self.write(actor, Op::RemoveProvider { name }).await?;
        Ok(tonic::Response::new(routing::provider_info(&current)))
    }

    async fn stats(
        &self,
        req: Request<pb::StatsRequest>,
    ) -> Result<tonic::Response<pb::StatsReply>, Status> {
        self.authorize(&req, Role::Viewer)?;
        Ok(tonic::Response::new(crate::stats::admin_reply(&self.app)))
    }

    async fn list_routes(
        &self,
        req: Request<pb::ListRoutesRequest>,
    ) -> Result<tonic::Response<pb::ListRoutesReply>, Status> {
        self.authorize(&req, Role::Viewer)?;
        let state = self.state();
        Ok(tonic::Response::new(pb::ListRoutesReply {
            routes: state.routes.values().map(routing::route_info).collect(),
        }))
    }

    async fn put_route(
        &self,
        req: Request<pb::RouteInfo>,
    ) -> Result<tonic::Response<pb::RouteInfo>, Status> {
        let actor = self.authorize(&req, Role::Operator)?;
        let spec = routing::route_spec(req.into_inner())?;
        let info = routing::route_info(&spec);
        self.write(actor, Op::PutRoute(spec)).await?;
        Ok(tonic::Response::new(info))
    }

    async fn remove_route(
        &self,
        req: Request<pb::NameRequest>,
    ) -> Result<tonic::Response<pb::RouteInfo>, Status> {
        let actor = self.authorize(&req, Role::Operator)?;
        let model = req.into_inner().name;
        let current = self
            .state()
            .routes
            .get(&model)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("route {model} not found")))?;
        self.write(actor, Op::RemoveRoute { model }).await?;
        Ok(tonic::Response::new(routing::route_info(&current)))
    }
}

impl AdminApi {
    fn team_info(&self, name: &str) -> pb::TeamInfo {
        let state = self.state();
        let keys = state
            .keys
            .values()
            .filter(|k| k.team.as_deref() == Some(name))
            .count();
        pb::TeamInfo {
            name: name.to_owned(),
            keys: u32::try_from(keys).unwrap_or(u32::MAX),
            has_budget: state
                .budgets
                .contains_key(&Scope::Team(name.to_owned()).to_string()),
        }
    }

    fn show(&self, scope: &Scope) -> Result<tonic::Response<pb::BudgetInfo>, Status> {
        let state = self.state();
        let b = state
            .budgets
            .get(&scope.to_string())
            .ok_or_else(|| Status::not_found(format!("budget {scope} not found")))?;
        let outstanding = state
            .allowances
            .values()
            .filter(|a| &a.scope == scope)
            .count();
        Ok(tonic::Response::new(budget_info(
            b,
            u32::try_from(outstanding).unwrap_or(u32::MAX),
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates_of_epoch_days() {
        assert_eq!(super::civil_date(0), "1970-01-01");
        assert_eq!(super::civil_date(59), "1970-03-01");
        assert_eq!(super::civil_date(11_016), "2000-02-29");
        assert_eq!(super::civil_date(20_795), "2026-12-08");
    }
}

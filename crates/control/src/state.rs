//! The replicated state and its one transition function, [`State::apply`]. Pure: no clock, no
//! I/O; time comes from the command. Every replica applying the same log reaches the same
//! state, and the snapshot is this struct serialised.
//!
//! Budget invariant (DESIGN §2.1): for every budget, `spent + reserved <= limit` after every
//! command, where `reserved` is what outstanding allowances may still spend. A node can only
//! spend from an allowance it holds, allowances are granted only from `limit - spent - reserved`,
//! and an allowance whose holder never settles is charged in full when it expires.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::command::{
    Command, KeyRecord, KeyStatus, Op, Period, Rejection, Response, Role, Scope, SpendEntry,
};

/// How long settled request ids are remembered for deduplication: far longer than any retry of
/// a settlement (seconds) or an allowance's life (30 s), short enough to bound the set.
const DEDUP_WINDOW_MS: u64 = 10 * 60 * 1000;
/// Pruning the dedup set walks all of it, so it runs at most this often (decided from the
/// log's timestamps, so every replica prunes at the same entry).
const DEDUP_PRUNE_EVERY_MS: u64 = 60 * 1000;
/// Audit entries kept (oldest dropped first).
const MAX_AUDIT_ENTRIES: usize = 10_000;
/// Minutes of rate windows kept per key.
const RATE_WINDOWS_KEPT: u64 = 3;
/// Milliseconds per day.
const DAY_MS: u64 = 86_400_000;

/// A budget and its current period's accounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Whose budget.
    pub scope: Scope,
    /// Limit per period.
    pub limit_micros: u64,
    /// Reset period.
    pub period: Period,
    /// Index of the current period (days or months since the epoch).
    pub period_index: u64,
    /// Settled (and expired-charged) spend this period.
    pub spent_micros: u64,
    /// What outstanding allowances may still spend.
    pub reserved_micros: u64,
    /// Alert thresholds in percent.
    pub alert_thresholds_pct: Vec<u8>,
    /// Thresholds crossed this period.
    pub alerts_fired_pct: Vec<u8>,
}

impl Budget {
    /// What can still be reserved.
    pub fn available_micros(&self) -> u64 {
        self.limit_micros
            .saturating_sub(self.spent_micros)
            .saturating_sub(self.reserved_micros)
    }
}

/// An outstanding allowance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowance {
    /// Holder.
    pub node: u64,
    /// Whose budget.
    pub scope: Scope,
    /// Granted amount.
    pub granted_micros: u64,
    /// Settled so far.
    pub settled_micros: u64,
    /// Expiry, Unix ms.
    pub expires_at_ms: u64,
}

/// An admin token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminToken {
    /// Name (the audit actor).
    pub name: String,
    /// Role.
    pub role: Role,
}

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Log index of the command.
    pub index: u64,
    /// When, Unix ms.
    pub at_ms: u64,
    /// Who.
    pub actor: String,
    /// What.
    pub what: String,
}

/// Spend totals by dimension, per day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendBook {
    /// Day index → dimension (`key`, `team`, `model`, `tag`) → name → micro-dollars.
    pub rows: BTreeMap<u64, BTreeMap<String, BTreeMap<String, u64>>>,
    /// All spend ever.
    pub total_micros: u64,
    /// Charged for allowances that expired unsettled, by scope.
    pub expired_charges_micros: BTreeMap<String, u64>,
}

/// Everything the cluster agrees on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Keys by id.
    pub keys: BTreeMap<String, KeyRecord>,
    /// Teams.
    pub teams: BTreeMap<String, ()>,
    /// Budgets by scope (`key:ID` / `team:NAME`, the scope's display form, since JSON map keys
    /// must be strings).
    pub budgets: BTreeMap<String, Budget>,
    /// Outstanding allowances by lease id.
    pub allowances: BTreeMap<u64, Allowance>,
    /// Next lease id.
    pub next_lease: u64,
    /// Settled request ids → when settled, for deduplication.
    pub settled: BTreeMap<String, u64>,
    /// When the dedup set was last pruned (log time).
    #[serde(default)]
    pub settled_pruned_ms: u64,
    /// Spend report data.
    pub spend: SpendBook,
    /// Admin tokens by digest.
    pub admin_tokens: BTreeMap<String, AdminToken>,
    /// Audit log.
    pub audit: Vec<AuditEntry>,
    /// Providers by name.
    pub providers: BTreeMap<String, crate::command::ProviderSpec>,
    /// Routes by public model name.
    pub routes: BTreeMap<String, crate::command::RouteSpec>,
    /// Bumped on every provider or route change, so nodes know to rebuild their routing.
    pub routing_version: u64,
    /// The configuration seed was applied.
    pub seeded: bool,
    /// Per-key rate slices granted: key id → minute → (requests, tokens).
    pub rate_windows: BTreeMap<String, BTreeMap<u64, (u64, u64)>>,
    /// Digest → key id; derived from `keys`, rebuilt after a snapshot is installed.
    #[serde(skip)]
    by_digest: HashMap<String, String>,
}

/// The index of the period containing `at_ms`.
pub fn period_index(period: Period, at_ms: u64) -> u64 {
    let days = at_ms / DAY_MS;
    match period {
        Period::Total => 0,
        Period::Daily => days,
        Period::Monthly => {
            let (y, m) = civil_year_month(days);
            (y as u64) * 12 + u64::from(m - 1)
        }
    }
}

/// Year and month (1-12) of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil_year_month(days: u64) -> (i64, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m)
}

impl State {
    /// Rebuilds derived indexes (after deserialising a snapshot).
    pub fn reindex(&mut self) {
        self.by_digest = self
            .keys
            .values()
            .map(|k| (k.digest_hex.clone(), k.id.clone()))
            .collect();
    }

    /// The key with this digest.
    pub fn key_by_digest(&self, digest_hex: &str) -> Option<&KeyRecord> {
        self.by_digest
            .get(digest_hex)
            .and_then(|id| self.keys.get(id))
    }

    /// Applies one command at log index `index`.
    pub fn apply(&mut self, index: u64, cmd: &Command) -> Response {
        let resp = self.apply_op(cmd.at_ms, &cmd.op);
        if let (Some(actor), false) = (&cmd.actor, matches!(resp, Response::Rejected(_))) {
            self.audit.push(AuditEntry {
                index,
                at_ms: cmd.at_ms,
                actor: actor.clone(),
                what: cmd.op.summary(),
            });
            if self.audit.len() > MAX_AUDIT_ENTRIES {
                let excess = self.audit.len() - MAX_AUDIT_ENTRIES;
                self.audit.drain(..excess);
            }
        }
        resp
    }

    fn apply_op(&mut self, at_ms: u64, op: &Op) -> Response {
        match op {
            Op::CreateKey(k) => {
                if self.keys.contains_key(&k.id) {
                    return Response::Rejected(Rejection::AlreadyExists(format!("key {}", k.id)));
                }
                if self.by_digest.contains_key(&k.digest_hex) {
                    return Response::Rejected(Rejection::AlreadyExists(
                        "a key with this secret".into(),
                    ));
                }
                self.by_digest.insert(k.digest_hex.clone(), k.id.clone());
                self.keys.insert(k.id.clone(), k.clone());
                if let Some(t) = &k.team {
                    self.teams.entry(t.clone()).or_default();
                }
                Response::Key(k.clone())
            }
            Op::RevokeKey { id } => match self.keys.get_mut(id) {
                Some(k) => {
                    k.status = KeyStatus::Revoked;
                    Response::Key(k.clone())
                }
                None => Response::Rejected(Rejection::NotFound(format!("key {id}"))),
            },
            Op::Record { .. } => Response::Ok,
            Op::SetKeyRouting {
                id,
                strategy,
                limits,
            } => match self.keys.get_mut(id) {
                Some(k) => {
                    k.strategy.clone_from(strategy);
                    k.limits = limits.clone();
                    Response::Key(k.clone())
                }
                None => Response::Rejected(Rejection::NotFound(format!("key {id}"))),
            },
            Op::RotateKey {
                id,
                digest_hex,
                prefix,
            } => {
                if self.by_digest.contains_key(digest_hex) {
                    return Response::Rejected(Rejection::AlreadyExists(
                        "a key with this secret".into(),
                    ));
                }
                match self.keys.get_mut(id) {
                    Some(k) => {
                        self.by_digest.remove(&k.digest_hex);
                        k.digest_hex = digest_hex.clone();
                        k.prefix = prefix.clone();
                        self.by_digest.insert(digest_hex.clone(), id.clone());
                        Response::Key(k.clone())
                    }
                    None => Response::Rejected(Rejection::NotFound(format!("key {id}"))),
                }
            }
            Op::PutTeam { name } => {
                self.teams.entry(name.clone()).or_default();
                Response::Ok
            }
            Op::SetBudget {
                scope,
                limit_micros,
                period,
                alert_thresholds_pct,
            } => {
                if let Scope::Key(id) = scope
                    && !self.keys.contains_key(id)
                {
                    return Response::Rejected(Rejection::NotFound(format!("key {id}")));
                }
                if let Scope::Team(t) = scope {
                    self.teams.entry(t.clone()).or_default();
                }
                let index = period_index(*period, at_ms);
                let b = self
                    .budgets
                    .entry(scope.to_string())
                    .or_insert_with(|| Budget {
                        scope: scope.clone(),
                        limit_micros: 0,
                        period: *period,
                        period_index: index,
                        spent_micros: 0,
                        reserved_micros: 0,
                        alert_thresholds_pct: vec![],
                        alerts_fired_pct: vec![],
                    });
                b.limit_micros = *limit_micros;
                if b.period != *period {
                    b.period = *period;
                    b.period_index = index;
                    b.spent_micros = 0;
                    b.alerts_fired_pct.clear();
                }
                b.alert_thresholds_pct = alert_thresholds_pct.clone();
                Response::Ok
            }
            Op::Reserve {
                node,
                scope,
                want_micros,
                ttl_ms,
            } => {
                let Some(b) = self.budgets.get_mut(&scope.to_string()) else {
                    return Response::Rejected(Rejection::NotFound(format!("budget {scope}")));
                };
                roll_period(b, at_ms);
                let granted = (*want_micros).min(b.available_micros());
                if granted == 0 {
                    return Response::Reserved {
                        lease: 0,
                        granted_micros: 0,
                        expires_at_ms: 0,
                    };
                }
                b.reserved_micros += granted;
                self.next_lease += 1;
                let lease = self.next_lease;
                let expires_at_ms = at_ms.saturating_add(*ttl_ms);
                self.allowances.insert(
                    lease,
                    Allowance {
                        node: *node,
                        scope: scope.clone(),
                        granted_micros: granted,
                        settled_micros: 0,
                        expires_at_ms,
                    },
                );
                Response::Reserved {
                    lease,
                    granted_micros: granted,
                    expires_at_ms,
                }
            }
            Op::Settle {
                node: _,
                entries,
                release,
            } => self.settle(at_ms, entries, release),
            Op::ExpireAllowances => {
                let expired: Vec<u64> = self
                    .allowances
                    .iter()
                    .filter(|(_, a)| a.expires_at_ms <= at_ms)
                    .map(|(l, _)| *l)
                    .collect();
                for lease in &expired {
                    if let Some(a) = self.allowances.remove(lease) {
                        let unsettled = a.granted_micros.saturating_sub(a.settled_micros);
                        if let Some(b) = self.budgets.get_mut(&a.scope.to_string()) {
                            // Charged in full: the holder may have spent it without telling us.
                            b.reserved_micros = b.reserved_micros.saturating_sub(unsettled);
                            b.spent_micros = b.spent_micros.saturating_add(unsettled);
                            fire_alerts(b);
                        }
                        *self
                            .spend
                            .expired_charges_micros
                            .entry(a.scope.to_string())
                            .or_default() += unsettled;
                    }
                }
                Response::Expired {
                    count: u32::try_from(expired.len()).unwrap_or(u32::MAX),
                }
            }
            Op::ReserveRate {
                node: _,
                key_id,
                window,
                requests,
                tokens,
            } => {
                let Some(k) = self.keys.get(key_id) else {
                    return Response::Rejected(Rejection::NotFound(format!("key {key_id}")));
                };
                let (rpm, tpm) = (k.rpm, k.tpm);
                let windows = self.rate_windows.entry(key_id.clone()).or_default();
                // Keep only recent minutes: nodes' clocks differ by far less than this.
                windows.retain(|w, _| w.saturating_add(RATE_WINDOWS_KEPT) > *window);
                let used = windows.entry(*window).or_default();
                let grant = |want: u64, limit: u64, used: u64| {
                    if limit == 0 {
                        want
                    } else {
                        want.min(limit.saturating_sub(used))
                    }
                };
                let r = grant(*requests, rpm, used.0);
                let t = grant(*tokens, tpm, used.1);
                // A slice is useful only with both requests and tokens.
                let (r, t) = if (rpm > 0 && r == 0) || (tpm > 0 && t == 0 && *tokens > 0) {
                    (0, 0)
                } else {
                    (r, t)
                };
                used.0 += r;
                used.1 += t;
                Response::RateGranted {
                    requests: r,
                    tokens: t,
                }
            }
            Op::Batch(ops) => {
                let mut last = Response::Ok;
                for op in ops {
                    last = self.apply_op(at_ms, op);
                    if matches!(last, Response::Rejected(_)) {
                        break;
                    }
                }
                // The first op's answer is what the caller asked about (e.g. the created key).
                match (ops.first(), &last) {
                    (_, Response::Rejected(_)) => last,
                    (Some(Op::CreateKey(k)), _) => self
                        .keys
                        .get(&k.id)
                        .cloned()
                        .map(Response::Key)
                        .unwrap_or(last),
                    _ => last,
                }
            }
            Op::Seed(ops) => {
                if self.seeded {
                    return Response::Ok;
                }
                self.seeded = true;
                for op in ops {
                    if let Response::Rejected(r) = self.apply_op(at_ms, op) {
                        // A seed entry that conflicts (a duplicate in the file) is skipped; the
                        // rest of the seed still applies.
                        let _ = r;
                    }
                }
                Response::Ok
            }
            Op::PutProvider(p) => {
                self.providers.insert(p.name.clone(), p.clone());
                self.routing_version += 1;
                Response::Ok
            }
            Op::RemoveProvider { name } => {
                if let Some(r) = self
                    .routes
                    .values()
                    .find(|r| r.targets.iter().any(|t| &t.0 == name))
                {
                    return Response::Rejected(Rejection::FailedPrecondition(format!(
                        "route {} still targets provider {name}",
                        r.model
                    )));
                }
                if self.providers.remove(name).is_none() {
                    return Response::Rejected(Rejection::NotFound(format!("provider {name}")));
                }
                self.routing_version += 1;
                Response::Ok
            }
            Op::PutRoute(r) => {
                if let Some(t) = r
                    .targets
                    .iter()
                    .find(|t| !self.providers.contains_key(&t.0))
                {
                    return Response::Rejected(Rejection::NotFound(format!("provider {}", t.0)));
                }
                self.routes.insert(r.model.clone(), r.clone());
                self.routing_version += 1;
                Response::Ok
            }
            Op::RemoveRoute { model } => {
                if self.routes.remove(model).is_none() {
                    return Response::Rejected(Rejection::NotFound(format!("route {model}")));
                }
                self.routing_version += 1;
                Response::Ok
            }
            Op::PutAdminToken {
                name,
                digest_hex,
                role,
            } => {
                self.admin_tokens.insert(
                    digest_hex.clone(),
                    AdminToken {
                        name: name.clone(),
                        role: *role,
                    },
                );
                Response::Ok
            }
        }
    }

    fn settle(&mut self, at_ms: u64, entries: &[SpendEntry], release: &[u64]) -> Response {
        if at_ms.saturating_sub(self.settled_pruned_ms) >= DEDUP_PRUNE_EVERY_MS {
            self.settled
                .retain(|_, t| at_ms.saturating_sub(*t) < DEDUP_WINDOW_MS);
            self.settled_pruned_ms = at_ms;
        }
        let day = at_ms / DAY_MS;
        let (mut applied, mut duplicates) = (0u32, 0u32);
        for e in entries {
            if self.settled.contains_key(&e.request_id) {
                duplicates += 1;
                continue;
            }
            self.settled.insert(e.request_id.clone(), at_ms);
            applied += 1;
            let rows = self.spend.rows.entry(day).or_default();
            let mut row = |dim: &str, name: &str| {
                *rows
                    .entry(dim.to_owned())
                    .or_default()
                    .entry(name.to_owned())
                    .or_default() += e.cost_micros;
            };
            row("key", &e.key_id);
            if let Some(t) = &e.team {
                row("team", t);
            }
            row("model", &e.model);
            for t in &e.tags {
                row("tag", t);
            }
            self.spend.total_micros += e.cost_micros;
            // Each live allowance's budget is charged; an expired one was already charged in
            // full, so a late settlement only shows in the report rows.
            for lease in &e.leases {
                let Some(a) = self.allowances.get_mut(lease) else {
                    continue;
                };
                let Some(b) = self.budgets.get_mut(&a.scope.to_string()) else {
                    continue;
                };
                roll_period(b, at_ms);
                let from_reservation = e
                    .cost_micros
                    .min(a.granted_micros.saturating_sub(a.settled_micros));
                a.settled_micros += e.cost_micros;
                b.reserved_micros = b.reserved_micros.saturating_sub(from_reservation);
                b.spent_micros = b.spent_micros.saturating_add(e.cost_micros);
                fire_alerts(b);
            }
        }
        for lease in release {
            if let Some(a) = self.allowances.remove(lease) {
                let unused = a.granted_micros.saturating_sub(a.settled_micros);
                if let Some(b) = self.budgets.get_mut(&a.scope.to_string()) {
                    b.reserved_micros = b.reserved_micros.saturating_sub(unused);
                }
            }
        }
        Response::Settled {
            applied,
            duplicates,
        }
    }

    /// Checks an admin token digest.
    pub fn admin_token(&self, digest_hex: &str) -> Option<&AdminToken> {
        self.admin_tokens.get(digest_hex)
    }
}

/// Starts a new period when `at_ms` is past the budget's current one.
fn roll_period(b: &mut Budget, at_ms: u64) {
    let index = period_index(b.period, at_ms);
    if index > b.period_index {
        b.period_index = index;
        b.spent_micros = 0;
        b.alerts_fired_pct.clear();
    }
}

/// Records crossed alert thresholds.
fn fire_alerts(b: &mut Budget) {
    if b.limit_micros == 0 {
        return;
    }
    let pct = u128::from(b.spent_micros) * 100 / u128::from(b.limit_micros);
    for t in &b.alert_thresholds_pct {
        if pct >= u128::from(*t) && !b.alerts_fired_pct.contains(t) {
            b.alerts_fired_pct.push(*t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(at_ms: u64, op: Op) -> Command {
        Command {
            at_ms,
            actor: None,
            op,
        }
    }

    fn key(id: &str, digest: &str) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            digest_hex: digest.into(),
            prefix: "sk-sy-x".into(),
            name: id.into(),
            owner: None,
            team: Some("t".into()),
            models: vec![],
            rpm: 0,
            tpm: 0,
            expires_at_ms: None,
            tags: BTreeMap::new(),
            status: KeyStatus::Active,
            created_at_ms: 0,
            strategy: None,
            limits: crate::RoutingLimits::default(),
        }
    }

    fn entry(id: &str, cost: u64) -> SpendEntry {
        SpendEntry {
            request_id: id.into(),
            key_id: "k".into(),
            team: None,
            model: "m".into(),
            tags: vec![],
            cost_micros: cost,
            leases: vec![1],
        }
    }

    fn setup(limit: u64) -> State {
        let mut s = State::default();
        s.apply(1, &cmd(0, Op::CreateKey(key("k", "d1"))));
        s.apply(
            2,
            &cmd(
                0,
                Op::SetBudget {
                    scope: Scope::Key("k".into()),
                    limit_micros: limit,
                    period: Period::Total,
                    alert_thresholds_pct: vec![50, 90],
                },
            ),
        );
        s
    }

    fn budget(s: &State) -> Budget {
        s.budgets["key:k"].clone()
    }

    #[test]
    fn reservations_never_exceed_the_limit() {
        let mut s = setup(100);
        let r1 = s.apply(
            3,
            &cmd(
                1,
                Op::Reserve {
                    node: 1,
                    scope: Scope::Key("k".into()),
                    want_micros: 70,
                    ttl_ms: 1000,
                },
            ),
        );
        let r2 = s.apply(
            4,
            &cmd(
                1,
                Op::Reserve {
                    node: 2,
                    scope: Scope::Key("k".into()),
                    want_micros: 70,
                    ttl_ms: 1000,
                },
            ),
        );
        assert_eq!(
            r1,
            Response::Reserved {
                lease: 1,
                granted_micros: 70,
                expires_at_ms: 1001
            }
        );
        assert_eq!(
            r2,
            Response::Reserved {
                lease: 2,
                granted_micros: 30,
                expires_at_ms: 1001
            }
        );
        let r3 = s.apply(
            5,
            &cmd(
                1,
                Op::Reserve {
                    node: 3,
                    scope: Scope::Key("k".into()),
                    want_micros: 1,
                    ttl_ms: 1000,
                },
            ),
        );
        assert_eq!(
            r3,
            Response::Reserved {
                lease: 0,
                granted_micros: 0,
                expires_at_ms: 0
            }
        );
        let b = budget(&s);
        assert_eq!(b.spent_micros + b.reserved_micros, 100);
    }

    #[test]
    fn settlement_moves_reserved_to_spent_once_per_request_id() {
        let mut s = setup(100);
        s.apply(
            3,
            &cmd(
                1,
                Op::Reserve {
                    node: 1,
                    scope: Scope::Key("k".into()),
                    want_micros: 60,
                    ttl_ms: 1000,
                },
            ),
        );
        let r = s.apply(
            4,
            &cmd(
                2,
                Op::Settle {
                    node: 1,
                    entries: vec![entry("a", 10), entry("b", 15)],
                    release: vec![],
                },
            ),
        );
        assert_eq!(
            r,
            Response::Settled {
                applied: 2,
                duplicates: 0
            }
        );
        let r = s.apply(
            5,
            &cmd(
                3,
                Op::Settle {
                    node: 1,
                    entries: vec![entry("a", 10)],
                    release: vec![1],
                },
            ),
        );
        assert_eq!(
            r,
            Response::Settled {
                applied: 0,
                duplicates: 1
            }
        );
        let b = budget(&s);
        assert_eq!((b.spent_micros, b.reserved_micros), (25, 0));
        assert_eq!(b.alerts_fired_pct, Vec::<u8>::new());
        assert!(s.allowances.is_empty());
        assert_eq!(s.spend.total_micros, 25);
    }

    #[test]
    fn unsettled_allowances_are_charged_in_full_at_expiry() {
        let mut s = setup(100);
        s.apply(
            3,
            &cmd(
                0,
                Op::Reserve {
                    node: 1,
                    scope: Scope::Key("k".into()),
                    want_micros: 60,
                    ttl_ms: 1000,
                },
            ),
        );
        s.apply(
            4,
            &cmd(
                10,
                Op::Settle {
                    node: 1,
                    entries: vec![entry("a", 10)],
                    release: vec![],
                },
            ),
        );
        assert_eq!(
            s.apply(5, &cmd(999, Op::ExpireAllowances)),
            Response::Expired { count: 0 }
        );
        assert_eq!(
            s.apply(6, &cmd(1000, Op::ExpireAllowances)),
            Response::Expired { count: 1 }
        );
        let b = budget(&s);
        assert_eq!((b.spent_micros, b.reserved_micros), (60, 0));
        assert_eq!(b.alerts_fired_pct, vec![50]);
        // A late settlement is reported but not charged twice.
        s.apply(
            7,
            &cmd(
                1001,
                Op::Settle {
                    node: 1,
                    entries: vec![entry("b", 20)],
                    release: vec![1],
                },
            ),
        );
        assert_eq!(budget(&s).spent_micros, 60);
        assert_eq!(s.spend.total_micros, 30);
    }

    #[test]
    fn daily_budgets_reset_at_midnight_utc_decided_by_the_log() {
        let mut s = State::default();
        s.apply(1, &cmd(0, Op::CreateKey(key("k", "d1"))));
        s.apply(
            2,
            &cmd(
                DAY_MS - 10,
                Op::SetBudget {
                    scope: Scope::Key("k".into()),
                    limit_micros: 50,
                    period: Period::Daily,
                    alert_thresholds_pct: vec![],
                },
            ),
        );
        s.apply(
            3,
            &cmd(
                DAY_MS - 5,
                Op::Reserve {
                    node: 1,
                    scope: Scope::Key("k".into()),
                    want_micros: 50,
                    ttl_ms: 100,
                },
            ),
        );
        s.apply(
            4,
            &cmd(
                DAY_MS - 4,
                Op::Settle {
                    node: 1,
                    entries: vec![entry("a", 50)],
                    release: vec![1],
                },
            ),
        );
        assert_eq!(budget(&s).available_micros(), 0);
        let r = s.apply(
            5,
            &cmd(
                DAY_MS + 1,
                Op::Reserve {
                    node: 1,
                    scope: Scope::Key("k".into()),
                    want_micros: 50,
                    ttl_ms: 100,
                },
            ),
        );
        assert!(
            matches!(
                r,
                Response::Reserved {
                    granted_micros: 50,
                    ..
                }
            ),
            "{r:?}"
        );
    }

    #[test]
    fn monthly_periods_follow_the_calendar() {
        // 2026-01-31 and 2026-02-01 (days since epoch 20484 and 20485).
        assert_eq!(
            period_index(Period::Monthly, 20_484 * DAY_MS) + 1,
            period_index(Period::Monthly, 20_485 * DAY_MS)
        );
        assert_eq!(period_index(Period::Monthly, 0), 1970 * 12);
    }

    #[test]
    fn keys_revoke_rotate_and_audit() {
        let mut s = State::default();
        let c = Command {
            at_ms: 5,
            actor: Some("ops".into()),
            op: Op::CreateKey(key("k", "d1")),
        };
        s.apply(1, &c);
        assert!(s.key_by_digest("d1").is_some());
        s.apply(
            2,
            &Command {
                at_ms: 6,
                actor: Some("ops".into()),
                op: Op::RotateKey {
                    id: "k".into(),
                    digest_hex: "d2".into(),
                    prefix: "p".into(),
                },
            },
        );
        assert!(s.key_by_digest("d1").is_none());
        assert_eq!(s.key_by_digest("d2").map(|k| k.id.as_str()), Some("k"));
        let r = s.apply(
            3,
            &Command {
                at_ms: 7,
                actor: Some("ops".into()),
                op: Op::RevokeKey { id: "nope".into() },
            },
        );
        assert!(matches!(r, Response::Rejected(Rejection::NotFound(_))));
        s.apply(
            4,
            &Command {
                at_ms: 8,
                actor: Some("ops".into()),
                op: Op::RevokeKey { id: "k".into() },
            },
        );
        assert_eq!(s.keys["k"].status, KeyStatus::Revoked);
        let whats: Vec<&str> = s.audit.iter().map(|a| a.what.as_str()).collect();
        assert_eq!(
            whats,
            vec!["create key k (k)", "rotate key k", "revoke key k"]
        );
        s.apply(
            5,
            &cmd(
                9,
                Op::SetBudget {
                    scope: Scope::Team("t".into()),
                    limit_micros: 5,
                    period: Period::Daily,
                    alert_thresholds_pct: vec![],
                },
            ),
        );
        let mut copy: State = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        copy.reindex();
        assert!(copy.key_by_digest("d2").is_some());
    }

    #[test]
    fn rate_slices_never_exceed_the_key_limit_per_minute() {
        let mut s = State::default();
        let mut k = key("k", "d1");
        k.rpm = 60;
        s.apply(1, &cmd(0, Op::CreateKey(k)));
        let reserve = |s: &mut State, node: u64, window: u64, requests: u64| {
            s.apply(
                9,
                &cmd(
                    0,
                    Op::ReserveRate {
                        node,
                        key_id: "k".into(),
                        window,
                        requests,
                        tokens: 0,
                    },
                ),
            )
        };
        let mut total = 0;
        for node in [1, 2, 3, 1, 2, 3, 1] {
            if let Response::RateGranted { requests, .. } = reserve(&mut s, node, 100, 25) {
                total += requests;
            }
        }
        assert_eq!(total, 60);
        assert_eq!(
            reserve(&mut s, 1, 100, 1),
            Response::RateGranted {
                requests: 0,
                tokens: 0
            }
        );
        assert_eq!(
            reserve(&mut s, 1, 101, 25),
            Response::RateGranted {
                requests: 25,
                tokens: 0
            }
        );
        assert!(matches!(
            s.apply(
                9,
                &cmd(
                    0,
                    Op::ReserveRate {
                        node: 1,
                        key_id: "nope".into(),
                        window: 1,
                        requests: 1,
                        tokens: 0
                    }
                )
            ),
            Response::Rejected(_)
        ));
    }
}

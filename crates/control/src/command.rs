//! What the replicated log carries. Every change to keys, teams, budgets, allowances, spend and
//! admin tokens is one [`Command`]: an [`Op`] plus the leader-side timestamp and, for admin
//! writes, the actor recorded in the audit log. Time-dependent rules (budget period resets,
//! allowance expiry) read `at_ms` from the command, never a clock, so every replica applies the
//! same log to the same state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One log entry's payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Wall-clock milliseconds when the command was proposed (the proposer's clock). Period
    /// resets and expiry are decided from this value, so replay is deterministic.
    pub at_ms: u64,
    /// Who asked (admin token name), for the audit log; `None` for the system's own writes
    /// (allowances, settlements, expiry).
    pub actor: Option<String>,
    /// The change.
    pub op: Op,
}

/// A budget's owner.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// A virtual key, by id.
    Key(String),
    /// A team, by name.
    Team(String),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Key(id) => write!(f, "key:{id}"),
            Scope::Team(t) => write!(f, "team:{t}"),
        }
    }
}

/// How often a budget resets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Period {
    /// Never.
    #[default]
    Total,
    /// At 00:00 UTC.
    Daily,
    /// On the first of each month, 00:00 UTC.
    Monthly,
}

impl Period {
    /// Parses `total`, `daily` or `monthly`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "total" => Some(Period::Total),
            "daily" => Some(Period::Daily),
            "monthly" => Some(Period::Monthly),
            _ => None,
        }
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Total => "total",
            Period::Daily => "daily",
            Period::Monthly => "monthly",
        }
    }
}

/// Whether a key may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    /// In use.
    Active,
    /// Refused everywhere.
    Revoked,
}

impl KeyStatus {
    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Revoked => "revoked",
        }
    }
}

/// A virtual key as replicated: never the secret, only its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Stable id (`key_…`), safe to log.
    pub id: String,
    /// HMAC-SHA-256 of the secret under the cluster secret, lowercase hex.
    pub digest_hex: String,
    /// The secret's first characters, to recognise it in listings (`sk-sy-1a2b…`).
    pub prefix: String,
    /// Human name.
    pub name: String,
    /// Owner (free text).
    pub owner: Option<String>,
    /// Team.
    pub team: Option<String>,
    /// Allowed public models; empty allows all.
    pub models: Vec<String>,
    /// Requests per minute, cluster-wide (0 = unlimited).
    pub rpm: u64,
    /// Tokens per minute, cluster-wide (0 = unlimited).
    pub tpm: u64,
    /// Refused from this Unix millisecond on.
    pub expires_at_ms: Option<u64>,
    /// Metadata tags.
    pub tags: BTreeMap<String, String>,
    /// Active or revoked.
    pub status: KeyStatus,
    /// When created.
    pub created_at_ms: u64,
    /// Strategy for this key's requests when a request names none (else the route's).
    #[serde(default)]
    pub strategy: Option<String>,
    /// Routing limits every request of this key is held to; a request can tighten them but
    /// never loosen them (data residency, price and latency caps).
    #[serde(default)]
    pub limits: RoutingLimits,
}

/// Routing limits stored with a key (a policy requests cannot loosen) or a route (defaults
/// requests override field by field): the router's constraints as plain replicated data, so the
/// control plane does not depend on the router.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoutingLimits {
    /// Highest blended price a target may have, micro-dollars per million tokens.
    pub max_price_micros_per_mtok: Option<u64>,
    /// Highest measured p95 latency a target may have, ms.
    pub max_p95_ms: Option<u64>,
    /// Regions to serve from; empty: anywhere.
    pub regions: Vec<String>,
    /// Never leave `regions` (else they are a preference).
    pub strict_residency: bool,
}

/// Admin roles, from most to least powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Everything.
    Admin,
    /// Everything but seeing or setting secrets and admin tokens.
    Operator,
    /// Read only.
    Viewer,
}

impl Role {
    /// Parses `admin`, `operator` or `viewer`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

/// One request's settled cost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendEntry {
    /// Deduplication key: a request id is charged at most once.
    pub request_id: String,
    /// The key that spent.
    pub key_id: String,
    /// The key's team, if any.
    pub team: Option<String>,
    /// Public model.
    pub model: String,
    /// Metadata tags (`k=v`).
    pub tags: Vec<String>,
    /// Actual cost.
    pub cost_micros: u64,
    /// The allowances (one per budget: the key's, the team's) the request was admitted
    /// against; each is charged the cost.
    pub leases: Vec<u64>,
}

/// An upstream provider as replicated. The credential is sealed (see [`crate::sealing`]); the
/// other fields mirror the `[[providers]]` configuration section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProviderSpec {
    /// Unique name.
    pub name: String,
    /// `openai`, `azure` or `anthropic`.
    pub kind: String,
    /// Base URL including the version segment.
    pub base_url: String,
    /// The sealed API key, if the provider needs one.
    pub api_key: Option<crate::sealing::Sealed>,
    /// Azure's `api-version`.
    pub api_version: Option<String>,
    /// Loopback and private addresses allowed.
    pub internal: bool,
    /// Region label.
    pub region: Option<String>,
    /// Requests per minute (0 = unlimited).
    pub rpm: u64,
    /// Tokens per minute (0 = unlimited).
    pub tpm: u64,
    /// Concurrency limit (0 = unlimited).
    pub max_in_flight: u64,
    /// Per-model price overrides: model → (input, output) micro-dollars per million tokens.
    pub prices: BTreeMap<String, (u64, u64)>,
    /// Breaker and timeout settings that differ from the defaults: field name → value.
    pub tuning: BTreeMap<String, u64>,
}

/// A route as replicated: a public model name and its targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RouteSpec {
    /// Public model name.
    pub model: String,
    /// Strategy name.
    pub strategy: Option<String>,
    /// (provider, upstream model, weight) in priority order.
    pub targets: Vec<(String, String, u32)>,
    /// Fallback public models.
    pub fallbacks: Vec<String>,
    /// Tier for `model: "auto"` (`small`, `medium`, `large`).
    #[serde(default)]
    pub tier: Option<String>,
    /// Default routing limits; a request overrides them field by field.
    #[serde(default)]
    pub limits: RoutingLimits,
}

/// A change to the replicated state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Adds a key.
    CreateKey(KeyRecord),
    /// Refuses a key from now on.
    RevokeKey {
        /// Key id.
        id: String,
    },
    /// Changes nothing: puts an admin action taken outside the state machine (a membership
    /// change, a leadership transfer) into the replicated audit log.
    Record {
        /// What was done.
        what: String,
    },
    /// Replaces a key's routing defaults: its strategy and its limits.
    SetKeyRouting {
        /// Key id.
        id: String,
        /// Default strategy (`None`: the route's).
        strategy: Option<String>,
        /// Limits its requests are held to.
        limits: RoutingLimits,
    },
    /// Replaces a key's secret (digest and prefix); the old secret stops working.
    RotateKey {
        /// Key id.
        id: String,
        /// New digest.
        digest_hex: String,
        /// New prefix.
        prefix: String,
    },
    /// Sets or replaces a budget.
    SetBudget {
        /// Whose budget.
        scope: Scope,
        /// Limit per period.
        limit_micros: u64,
        /// Reset period.
        period: Period,
        /// Percentages of the limit at which an alert is recorded.
        alert_thresholds_pct: Vec<u8>,
    },
    /// Adds or replaces a team.
    PutTeam {
        /// Team name.
        name: String,
    },
    /// A node reserves part of a budget as its local allowance.
    Reserve {
        /// The node that will spend it.
        node: u64,
        /// Whose budget.
        scope: Scope,
        /// How much it would like.
        want_micros: u64,
        /// How long the allowance is valid.
        ttl_ms: u64,
    },
    /// A node reports actual costs (each against the allowances it was admitted on), then
    /// closes allowances it no longer uses, returning what they did not spend.
    Settle {
        /// The node.
        node: u64,
        /// Costs, deduplicated by request id.
        entries: Vec<SpendEntry>,
        /// Allowances to close after charging `entries`.
        release: Vec<u64>,
    },
    /// Charges and closes every allowance past its expiry (proposed periodically by the leader).
    ExpireAllowances,
    /// A node reserves part of a key's per-minute request and token limits for one window.
    ReserveRate {
        /// The node that will admit the requests.
        node: u64,
        /// The key.
        key_id: String,
        /// The minute (Unix ms / 60 000) by the node's clock.
        window: u64,
        /// Requests wanted.
        requests: u64,
        /// Tokens wanted.
        tokens: u64,
    },
    /// Adds or replaces a provider.
    PutProvider(ProviderSpec),
    /// Removes a provider (refused while a route targets it).
    RemoveProvider {
        /// Provider name.
        name: String,
    },
    /// Adds or replaces a route (refused if it targets an unknown provider).
    PutRoute(RouteSpec),
    /// Removes a route.
    RemoveRoute {
        /// Public model name.
        model: String,
    },
    /// Several changes applied together in one log entry, stopping at the first refusal (used so
    /// that a key and its budget appear on every node at the same moment: a key must never be
    /// usable without the budget it was created with).
    Batch(Vec<Op>),
    /// The configuration's initial content, applied once in the cluster's life: a no-op when the
    /// state was already seeded, so a restarted bootstrap node never overwrites later changes.
    Seed(Vec<Op>),
    /// Adds an admin token (by digest).
    PutAdminToken {
        /// Token name, shown in the audit log.
        name: String,
        /// HMAC digest of the token, hex.
        digest_hex: String,
        /// Role.
        role: Role,
    },
}

impl Op {
    /// A short description for the audit log (never a secret; digests are not printed).
    pub fn summary(&self) -> String {
        match self {
            Op::CreateKey(k) => format!("create key {} ({})", k.id, k.name),
            Op::RevokeKey { id } => format!("revoke key {id}"),
            Op::RotateKey { id, .. } => format!("rotate key {id}"),
            Op::Record { what } => what.clone(),
            Op::SetKeyRouting {
                id,
                strategy,
                limits,
            } => format!(
                "set key {id} routing: strategy {}, {limits:?}",
                strategy.as_deref().unwrap_or("(route's)")
            ),
            Op::SetBudget {
                scope,
                limit_micros,
                period,
                ..
            } => format!(
                "set budget {scope} to {limit_micros} micros {}",
                period.as_str()
            ),
            Op::PutTeam { name } => format!("put team {name}"),
            Op::Reserve {
                node,
                scope,
                want_micros,
                ..
            } => format!("node {node} reserves {want_micros} micros of {scope}"),
            Op::Settle {
                node,
                entries,
                release,
            } => format!(
                "node {node} settles {} entries and releases {} allowances",
                entries.len(),
                release.len()
            ),
            Op::ExpireAllowances => "expire allowances".into(),
            Op::ReserveRate {
                node,
                key_id,
                window,
                requests,
                tokens,
            } => {
                format!(
                    "node {node} reserves {requests} requests and {tokens} tokens of key {key_id} in minute {window}"
                )
            }
            Op::Seed(ops) => format!("seed {} entries from configuration", ops.len()),
            Op::Batch(ops) => ops.iter().map(Op::summary).collect::<Vec<_>>().join("; "),
            Op::PutProvider(p) => format!("put provider {} ({} at {})", p.name, p.kind, p.base_url),
            Op::RemoveProvider { name } => format!("remove provider {name}"),
            Op::PutRoute(r) => format!("put route {} ({} targets)", r.model, r.targets.len()),
            Op::RemoveRoute { model } => format!("remove route {model}"),
            Op::PutAdminToken { name, role, .. } => {
                format!("put admin token {name} ({})", role.as_str())
            }
        }
    }
}

/// What applying a command returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub enum Response {
    /// Applied, nothing to report.
    #[default]
    Ok,
    /// The key as stored.
    Key(KeyRecord),
    /// An allowance (possibly of zero when the budget is exhausted).
    Reserved {
        /// Lease id (0 when nothing was granted).
        lease: u64,
        /// Granted amount.
        granted_micros: u64,
        /// Expiry, Unix milliseconds.
        expires_at_ms: u64,
    },
    /// Settlement result.
    Settled {
        /// Entries charged.
        applied: u32,
        /// Entries skipped as already charged.
        duplicates: u32,
    },
    /// A rate slice (possibly empty when the key's limit for that minute is used up).
    RateGranted {
        /// Requests granted.
        requests: u64,
        /// Tokens granted.
        tokens: u64,
    },
    /// Allowances expired and charged.
    Expired {
        /// How many.
        count: u32,
    },
    /// Refused; the state did not change.
    Rejected(Rejection),
}

/// Why a command was refused at apply time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    /// Unknown id or name.
    NotFound(String),
    /// Already exists.
    AlreadyExists(String),
    /// Not allowed in the current state.
    FailedPrecondition(String),
}

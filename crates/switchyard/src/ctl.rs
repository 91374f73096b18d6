//! `switchyard ctl`: the admin client. It talks gRPC to any node (writes are forwarded to the
//! leader there), prints human tables by default and JSON with `--json` (the forms scripts rely
//! on, DESIGN §3). Exit status is non-zero on any error, with the server's message.

mod output;

use anyhow::{Context, bail};
use serde_json::json;
use switchyard_core::Micros;
use switchyard_proto::pb;
use switchyard_proto::pb::admin_service_client::AdminServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// Arguments of `ctl`.
#[derive(clap::Args)]
pub struct CtlArgs {
    /// gRPC endpoint of any node.
    #[arg(
        long,
        env = "SWITCHYARD_ENDPOINT",
        default_value = "http://127.0.0.1:9081",
        global = true
    )]
    endpoint: String,
    /// Admin token.
    #[arg(long, env = "SWITCHYARD_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// CA certificate (PEM) of a cluster that runs gRPC over TLS; the endpoint is then https://.
    #[arg(long, env = "SWITCHYARD_CA_CERT", global = true)]
    ca_cert: Option<String>,
    /// Client certificate (PEM) signed by the cluster CA (nodes require one under TLS).
    #[arg(long, env = "SWITCHYARD_CERT", global = true)]
    cert: Option<String>,
    /// Private key (PEM) of the client certificate.
    #[arg(long, env = "SWITCHYARD_KEY", global = true)]
    key: Option<String>,
    #[command(subcommand)]
    noun: Noun,
}

#[derive(clap::Subcommand)]
enum Noun {
    /// Cluster membership and leadership.
    Cluster {
        #[command(subcommand)]
        verb: ClusterVerb,
    },
    /// Virtual keys.
    Keys {
        #[command(subcommand)]
        verb: KeysVerb,
    },
    /// Teams (budgets apply to a team as a whole).
    Teams {
        #[command(subcommand)]
        verb: TeamsVerb,
    },
    /// Budgets.
    Budgets {
        #[command(subcommand)]
        verb: BudgetsVerb,
    },
    /// Spend report.
    Spend {
        /// Only this key.
        #[arg(long)]
        key: Option<String>,
        /// Only this team.
        #[arg(long)]
        team: Option<String>,
        /// Group by key, team, model or tag, or by period: day or month (UTC).
        #[arg(long, default_value = "key")]
        by: String,
        /// Only the last N days (0 = all).
        #[arg(long, default_value_t = 0)]
        days: u32,
    },
    /// Per provider and model, counted cluster-wide over the last minute: requests, errors,
    /// latency, in-flight, breaker per node, RPM used and limit, price.
    Stats,
    /// The audit log of admin writes.
    Audit {
        /// Most recent entries to show.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Admin tokens.
    Tokens {
        #[command(subcommand)]
        verb: TokensVerb,
    },
    /// Upstream providers (keys are sealed and never shown).
    Providers {
        #[command(subcommand)]
        verb: ProvidersVerb,
    },
    /// Routes: public model names and their targets.
    Routes {
        #[command(subcommand)]
        verb: RoutesVerb,
    },
}

#[derive(clap::Args)]
struct ProviderFields {
    /// Name.
    #[arg(long)]
    name: String,
    /// openai (any OpenAI-compatible API), azure or anthropic.
    #[arg(long)]
    kind: String,
    /// Base URL including the version segment, e.g. https://api.openai.com/v1.
    #[arg(long)]
    base_url: String,
    /// Environment variable of this ctl process holding the API key to set (sealed by the node).
    #[arg(long)]
    api_key_env: Option<String>,
    /// Azure api-version.
    #[arg(long)]
    api_version: Option<String>,
    /// Allow loopback and private addresses.
    #[arg(long)]
    internal: bool,
    /// Region label.
    #[arg(long)]
    region: Option<String>,
    /// Requests per minute per node (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    rpm: u64,
    /// Tokens per minute per node (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    tpm: u64,
    /// Per-model prices, MODEL=INPUT:OUTPUT micro-dollars per million tokens; repeatable.
    #[arg(long = "price")]
    prices: Vec<String>,
}

#[derive(clap::Subcommand)]
enum ProvidersVerb {
    /// Lists providers.
    List,
    /// Adds a provider.
    Add(ProviderFields),
    /// Replaces a provider's settings (the key is kept unless --api-key-env is given).
    Update(ProviderFields),
    /// Removes a provider no route targets.
    Remove {
        /// Name.
        name: String,
    },
}

#[derive(clap::Subcommand)]
enum RoutesVerb {
    /// Lists routes.
    List,
    /// Adds or replaces a route.
    Set {
        /// Public model name.
        #[arg(long)]
        model: String,
        /// priority, weighted, least-busy or lowest-latency.
        #[arg(long, default_value = "")]
        strategy: String,
        /// Targets PROVIDER[:MODEL[:WEIGHT]], in priority order; repeatable.
        #[arg(long = "target", required = true)]
        targets: Vec<String>,
        /// Fallback public models, comma-separated.
        #[arg(long, value_delimiter = ',')]
        fallbacks: Vec<String>,
        /// Tier for `model: "auto"`: small, medium or large.
        #[arg(long, default_value = "")]
        tier: String,
        /// Default limits; a request overrides them field by field.
        #[command(flatten)]
        limits: LimitsArgs,
    },
    /// Removes a route.
    Remove {
        /// Public model name.
        model: String,
    },
}

/// A dollar amount from the command line, exact to the micro-dollar (never through `f64`); a
/// sign, more than six decimals or anything else is refused by clap before ctl connects.
fn usd(raw: &str) -> Result<Micros, String> {
    Micros::parse_usd(raw).map_err(|e| e.to_string())
}

/// Routing limits of a key or a route.
#[derive(clap::Args)]
struct LimitsArgs {
    /// Highest blended price (3 input : 1 output), micro-dollars per million tokens.
    #[arg(long)]
    max_price_micros_per_mtok: Option<u64>,
    /// Highest measured p95 latency, ms.
    #[arg(long)]
    max_p95_ms: Option<u64>,
    /// Regions to serve from, comma-separated.
    #[arg(long, value_delimiter = ',')]
    regions: Vec<String>,
    /// `strict` (never leave the regions) or `prefer` (the default).
    #[arg(long, default_value = "prefer")]
    residency: String,
}

impl LimitsArgs {
    fn into_pb(self) -> anyhow::Result<pb::RoutingLimits> {
        let strict_residency = match self.residency.as_str() {
            "strict" => true,
            "prefer" => false,
            other => bail!("--residency {other:?}: expected strict or prefer"),
        };
        Ok(pb::RoutingLimits {
            max_price_micros_per_mtok: self.max_price_micros_per_mtok.unwrap_or(0),
            max_p95_ms: self.max_p95_ms.unwrap_or(0),
            regions: self.regions,
            strict_residency,
        })
    }
}

fn provider_request(f: ProviderFields) -> anyhow::Result<pb::PutProviderRequest> {
    let api_key = match &f.api_key_env {
        Some(var) => {
            std::env::var(var).with_context(|| format!("--api-key-env: {var} is not set"))?
        }
        None => String::new(),
    };
    let mut prices = Vec::new();
    for p in &f.prices {
        let parsed = p
            .split_once('=')
            .and_then(|(m, io)| io.split_once(':').map(|(i, o)| (m, i, o)));
        let Some((model, i, o)) = parsed else {
            bail!("--price {p:?}: expected MODEL=INPUT:OUTPUT")
        };
        prices.push(pb::ModelPrice {
            model: model.to_owned(),
            input_micros_per_mtok: i.parse().context("--price input")?,
            output_micros_per_mtok: o.parse().context("--price output")?,
        });
    }
    Ok(pb::PutProviderRequest {
        provider: Some(pb::ProviderInfo {
            name: f.name,
            kind: f.kind,
            base_url: f.base_url,
            api_version: f.api_version.unwrap_or_default(),
            internal: f.internal,
            region: f.region.unwrap_or_default(),
            rpm: f.rpm,
            tpm: f.tpm,
            prices,
            ..Default::default()
        }),
        api_key,
        clear_api_key: false,
    })
}

#[derive(clap::Subcommand)]
enum ClusterVerb {
    /// Members, roles, leader, term, commit and applied index.
    Status,
    /// Adds a node (as a learner, then a voter unless --learner).
    AddNode {
        /// Node id.
        #[arg(long)]
        id: u64,
        /// Its HTTP URL.
        #[arg(long)]
        http: String,
        /// Its gRPC URL.
        #[arg(long)]
        grpc: String,
        /// Keep it a learner.
        #[arg(long)]
        learner: bool,
    },
    /// Removes a node from the voters and the cluster.
    RemoveNode {
        /// Node id.
        id: u64,
    },
    /// Moves leadership to a voter.
    TransferLeader {
        /// Node id of the new leader.
        id: u64,
    },
}

#[derive(clap::Subcommand)]
enum KeysVerb {
    /// Creates a key; its secret is printed this once.
    Create {
        /// Name.
        #[arg(long)]
        name: String,
        /// Team.
        #[arg(long)]
        team: Option<String>,
        /// Owner.
        #[arg(long)]
        owner: Option<String>,
        /// Budget in dollars, e.g. 12.50 (checked before anything is sent).
        #[arg(long, value_parser = usd)]
        budget_usd: Option<Micros>,
        /// Budget period: total, daily or monthly.
        #[arg(long, default_value = "total")]
        period: String,
        /// Requests per minute (cluster-wide).
        #[arg(long, default_value_t = 0)]
        rpm: u64,
        /// Tokens per minute (cluster-wide).
        #[arg(long, default_value_t = 0)]
        tpm: u64,
        /// Allowed models, comma-separated.
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Tags, k=v, comma-separated.
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// Default strategy for its requests (else the route's): priority, weighted,
        /// least-busy, latency, cost or balanced.
        #[arg(long, default_value = "")]
        strategy: String,
        /// Limits its requests can tighten but never loosen.
        #[command(flatten)]
        limits: LimitsArgs,
    },
    /// Replaces a key's default strategy and routing limits (on every node within a second).
    SetRouting {
        /// Key id.
        id: String,
        /// Default strategy for its requests; empty: the route's.
        #[arg(long, default_value = "")]
        strategy: String,
        /// Limits its requests can tighten but never loosen (flags left out: no such limit).
        #[command(flatten)]
        limits: LimitsArgs,
    },
    /// Lists keys.
    List {
        /// Only this team.
        #[arg(long)]
        team: Option<String>,
    },
    /// Shows a key.
    Show {
        /// Key id.
        id: String,
    },
    /// Revokes a key on every node.
    Revoke {
        /// Key id.
        id: String,
    },
    /// Replaces a key's secret; the new one is printed this once.
    Rotate {
        /// Key id.
        id: String,
    },
}

#[derive(clap::Subcommand)]
enum TeamsVerb {
    /// Lists teams.
    List,
    /// Creates a team.
    Create {
        /// Name.
        name: String,
    },
}

#[derive(clap::Subcommand)]
enum BudgetsVerb {
    /// Sets a budget.
    Set {
        /// Key id.
        #[arg(long)]
        key: Option<String>,
        /// Team.
        #[arg(long)]
        team: Option<String>,
        /// Limit in dollars, e.g. 100 or 0.05 (checked before anything is sent).
        #[arg(long, value_parser = usd)]
        limit_usd: Micros,
        /// total, daily or monthly.
        #[arg(long, default_value = "total")]
        period: String,
        /// Alert thresholds in percent, comma-separated.
        #[arg(long, value_delimiter = ',')]
        alerts: Vec<u32>,
    },
    /// Shows a budget.
    Show {
        /// Key id.
        #[arg(long)]
        key: Option<String>,
        /// Team.
        #[arg(long)]
        team: Option<String>,
    },
}

#[derive(clap::Subcommand)]
enum TokensVerb {
    /// Creates an admin token; printed this once.
    Create {
        /// Name (shown in the audit log).
        #[arg(long)]
        name: String,
        /// admin, operator or viewer.
        #[arg(long)]
        role: String,
    },
}

/// Runs one `ctl` command.
pub async fn run(args: CtlArgs) -> anyhow::Result<()> {
    let mut endpoint = Channel::from_shared(args.endpoint.clone())
        .with_context(|| format!("invalid endpoint {}", args.endpoint))?;
    if let Some(ca) = &args.ca_cert {
        let ca = std::fs::read(ca).with_context(|| format!("cannot read --ca-cert {ca}"))?;
        let mut tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca));
        if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
            let cert = std::fs::read(cert).with_context(|| format!("cannot read --cert {cert}"))?;
            let key = std::fs::read(key).context("cannot read --key")?;
            tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(tls).context("invalid TLS settings")?;
    }
    let channel = endpoint
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(15))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", args.endpoint))?;
    let token = args.token.clone().unwrap_or_default();
    let bearer: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .context("the token contains characters not allowed in a header")?;
    let mut client =
        AdminServiceClient::with_interceptor(channel, move |mut req: tonic::Request<()>| {
            req.metadata_mut().insert("authorization", bearer.clone());
            Ok(req)
        });
    let out = match args.noun {
        Noun::Cluster { verb } => match verb {
            ClusterVerb::Status => output::cluster(
                client
                    .cluster_status(pb::ClusterStatusRequest {})
                    .await
                    .map_err(err)?
                    .into_inner(),
            ),
            ClusterVerb::AddNode {
                id,
                http,
                grpc,
                learner,
            } => output::cluster(
                client
                    .add_node(pb::AddNodeRequest {
                        id,
                        http,
                        grpc,
                        voter: !learner,
                    })
                    .await
                    .map_err(err)?
                    .into_inner(),
            ),
            ClusterVerb::TransferLeader { id } => output::cluster(
                client
                    .transfer_leader(pb::TransferLeaderRequest { id })
                    .await
                    .map_err(err)?
                    .into_inner(),
            ),
            ClusterVerb::RemoveNode { id } => output::cluster(
                client
                    .remove_node(pb::RemoveNodeRequest { id })
                    .await
                    .map_err(err)?
                    .into_inner(),
            ),
        },
        Noun::Keys { verb } => match verb {
            KeysVerb::Create {
                name,
                team,
                owner,
                budget_usd,
                period,
                rpm,
                tpm,
                models,
                tags,
                strategy,
                limits,
            } => {
                let budget_micros = budget_usd.map_or(0, |b| b.0);
                let mut tag_map = std::collections::HashMap::new();
                for t in tags {
                    let Some((k, v)) = t.split_once('=') else {
                        bail!("--tags {t:?}: expected k=v")
                    };
                    tag_map.insert(k.to_owned(), v.to_owned());
                }
                let req = pb::CreateKeyRequest {
                    name,
                    team: team.unwrap_or_default(),
                    owner: owner.unwrap_or_default(),
                    models,
                    rpm,
                    tpm,
                    expires_at_ms: 0,
                    tags: tag_map,
                    budget_micros,
                    period,
                    strategy,
                    limits: Some(limits.into_pb()?),
                };
                output::created_key(client.create_key(req).await.map_err(err)?.into_inner())
            }
            KeysVerb::SetRouting {
                id,
                strategy,
                limits,
            } => output::key(
                client
                    .set_key_routing(pb::SetKeyRoutingRequest {
                        id,
                        strategy,
                        limits: Some(limits.into_pb()?),
                    })
                    .await
                    .map_err(err)?
                    .into_inner(),
            ),
            KeysVerb::List { team } => output::keys(
                client
                    .list_keys(pb::ListKeysRequest {
                        team: team.unwrap_or_default(),
                    })
                    .await
                    .map_err(err)?
                    .into_inner(),
            ),
            KeysVerb::Show { id } => output::key(
                client
                    .show_key(pb::KeyIdRequest { id })
                    .await
                    .map_err(err)?
                    .into_inner(),
            ),
            KeysVerb::Revoke { id } => output::key(
                client
                    .revoke_key(pb::KeyIdRequest { id })
                    .await
                    .map_err(err)?
                    .into_inner(),
            ),
            KeysVerb::Rotate { id } => output::created_key(
                client
                    .rotate_key(pb::KeyIdRequest { id })
                    .await
                    .map_err(err)?
                    .into_inner(),
            ),
        },
        Noun::Teams { verb } => match verb {
            TeamsVerb::List => output::teams(
                client
                    .list_teams(pb::ListTeamsRequest {})
                    .await
                    .map_err(err)?
                    .into_inner()
                    .teams,
            ),
            TeamsVerb::Create { name } => output::teams(vec![
                client
                    .create_team(pb::NameRequest { name })
                    .await
                    .map_err(err)?
                    .into_inner(),
            ]),
        },
        Noun::Budgets { verb } => match verb {
            BudgetsVerb::Set {
                key,
                team,
                limit_usd,
                period,
                alerts,
            } => {
                let req = pb::SetBudgetRequest {
                    key: key.unwrap_or_default(),
                    team: team.unwrap_or_default(),
                    limit_micros: limit_usd.0,
                    period,
                    alert_thresholds_pct: alerts,
                };
                output::budget(client.set_budget(req).await.map_err(err)?.into_inner())
            }
            BudgetsVerb::Show { key, team } => output::budget(
                client
                    .show_budget(pb::ShowBudgetRequest {
                        key: key.unwrap_or_default(),
                        team: team.unwrap_or_default(),
                    })
                    .await
                    .map_err(err)?
                    .into_inner(),
            ),
        },
        Noun::Spend {
            key,
            team,
            by,
            days,
        } => {
            let req = pb::SpendRequest {
                key: key.unwrap_or_default(),
                team: team.unwrap_or_default(),
                by,
                days,
            };
            output::spend(client.spend(req).await.map_err(err)?.into_inner())
        }
        Noun::Stats => output::stats(
            client
                .stats(pb::StatsRequest {})
                .await
                .map_err(err)?
                .into_inner(),
        ),
        Noun::Audit { limit } => output::audit(
            client
                .audit(pb::AuditRequest { limit })
                .await
                .map_err(err)?
                .into_inner(),
        ),
        Noun::Providers { verb } => match verb {
            ProvidersVerb::List => output::providers(
                client
                    .list_providers(pb::ListProvidersRequest {})
                    .await
                    .map_err(err)?
                    .into_inner()
                    .providers,
            ),
            ProvidersVerb::Add(f) | ProvidersVerb::Update(f) => output::providers(vec![
                client
                    .put_provider(provider_request(f)?)
                    .await
                    .map_err(err)?
                    .into_inner(),
            ]),
            ProvidersVerb::Remove { name } => output::providers(vec![
                client
                    .remove_provider(pb::NameRequest { name })
                    .await
                    .map_err(err)?
                    .into_inner(),
            ]),
        },
        Noun::Routes { verb } => match verb {
            RoutesVerb::List => output::routes(
                client
                    .list_routes(pb::ListRoutesRequest {})
                    .await
                    .map_err(err)?
                    .into_inner()
                    .routes,
            ),
            RoutesVerb::Set {
                model,
                strategy,
                targets,
                fallbacks,
                tier,
                limits,
            } => {
                let targets = targets
                    .iter()
                    .map(|t| {
                        let mut parts = t.splitn(3, ':');
                        let provider = parts.next().unwrap_or_default().to_owned();
                        let model = parts.next().unwrap_or_default().to_owned();
                        let weight = parts
                            .next()
                            .map(str::parse)
                            .transpose()
                            .with_context(|| format!("--target {t:?}: weight must be a number"))?
                            .unwrap_or(1);
                        anyhow::Ok(pb::RouteTarget {
                            provider,
                            model,
                            weight,
                        })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                output::routes(vec![
                    client
                        .put_route(pb::RouteInfo {
                            model,
                            strategy,
                            targets,
                            fallbacks,
                            tier,
                            limits: Some(limits.into_pb()?),
                        })
                        .await
                        .map_err(err)?
                        .into_inner(),
                ])
            }
            RoutesVerb::Remove { model } => output::routes(vec![
                client
                    .remove_route(pb::NameRequest { name: model })
                    .await
                    .map_err(err)?
                    .into_inner(),
            ]),
        },
        Noun::Tokens { verb } => match verb {
            TokensVerb::Create { name, role } => {
                let r = client
                    .create_admin_token(pb::CreateAdminTokenRequest { name, role })
                    .await
                    .map_err(err)?
                    .into_inner();
                output::Out {
                    json: json!({"name": r.name, "token": r.token, "role": r.role}),
                    table: format!(
                        "token {} ({}): {}\nShown once: store it now.",
                        r.name, r.role, r.token
                    ),
                }
            }
        },
    };
    output::print(&out, args.json);
    Ok(())
}

/// A gRPC error as the user should read it.
fn err(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", code_name(s.code()), s.message())
}

fn code_name(c: tonic::Code) -> &'static str {
    match c {
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::NotFound => "not found",
        tonic::Code::AlreadyExists => "already exists",
        tonic::Code::PermissionDenied => "permission denied",
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::FailedPrecondition => "failed precondition",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::DeadlineExceeded => "deadline exceeded",
        _ => "error",
    }
}

//! How `ctl` prints: every command builds both a JSON value (the `--json` contract) and a human
//! table, and [`print`] writes one of them. This is the one module allowed to print to stdout.

use serde_json::{Value, json};
use switchyard_core::Micros;
use switchyard_proto::pb;

/// A command's output in both forms.
pub struct Out {
    /// The `--json` form.
    pub json: Value,
    /// The human form.
    pub table: String,
}

/// Writes the chosen form to stdout.
#[expect(
    clippy::print_stdout,
    reason = "ctl's output module is where results are printed"
)]
pub fn print(out: &Out, json: bool) {
    if json {
        println!("{}", out.json);
    } else {
        println!("{}", out.table);
    }
}

fn usd(micros: u64) -> String {
    Micros(micros).to_string()
}

/// `cluster status` and membership changes.
pub fn cluster(r: pb::ClusterStatusReply) -> Out {
    let members: Vec<Value> = r
        .members
        .iter()
        .map(|m| json!({"id": m.id, "role": m.role, "http": m.http, "grpc": m.grpc, "healthy": m.healthy, "matched_index": m.matched_index}))
        .collect();
    let mut table = format!(
        "leader {}  term {}  commit {}  applied {} (asked node {})\n",
        r.leader, r.term, r.commit_index, r.applied_index, r.node
    );
    table.push_str(&format!(
        "{:<4} {:<10} {:<8} {:<26} {}\n",
        "ID", "ROLE", "HEALTHY", "HTTP", "GRPC"
    ));
    for m in &r.members {
        table.push_str(&format!(
            "{:<4} {:<10} {:<8} {:<26} {}\n",
            m.id, m.role, m.healthy, m.http, m.grpc
        ));
    }
    Out {
        json: json!({"leader": r.leader, "term": r.term, "commit_index": r.commit_index, "applied_index": r.applied_index, "node": r.node, "members": members}),
        table: table.trim_end().to_owned(),
    }
}

fn key_json(k: &pb::KeyInfo) -> Value {
    json!({
        "id": k.id, "prefix": k.prefix, "name": k.name, "owner": k.owner, "team": k.team, "models": k.models,
        "rpm": k.rpm, "tpm": k.tpm, "expires_at_ms": k.expires_at_ms, "tags": k.tags, "status": k.status, "created_at_ms": k.created_at_ms,
        "strategy": k.strategy, "limits": limits_json(k.limits.as_ref()),
    })
}

/// Routing limits (`null` caps when unset).
fn limits_json(l: Option<&pb::RoutingLimits>) -> Value {
    let l = l.cloned().unwrap_or_default();
    json!({
        "max_price_micros_per_mtok": (l.max_price_micros_per_mtok > 0).then_some(l.max_price_micros_per_mtok),
        "max_p95_ms": (l.max_p95_ms > 0).then_some(l.max_p95_ms),
        "regions": l.regions,
        "residency": if l.strict_residency { "strict" } else { "prefer" },
    })
}

/// `keys create` / `keys rotate`.
pub fn created_key(r: pb::CreateKeyReply) -> Out {
    let mut j = json!({"id": r.id, "key": r.key});
    if let Some(info) = &r.info {
        j["info"] = key_json(info);
        j["status"] = json!(info.status);
    }
    Out {
        json: j,
        table: format!("key {}\nsecret {}\nShown once: store it now.", r.id, r.key),
    }
}

/// `keys show` / `keys revoke`.
pub fn key(k: pb::KeyInfo) -> Out {
    let table = format!(
        "{}  {}  {}  team={}  models={}  status={}",
        k.id,
        k.name,
        k.prefix,
        k.team,
        if k.models.is_empty() {
            "*".into()
        } else {
            k.models.join(",")
        },
        k.status
    );
    let mut j = key_json(&k);
    j["status"] = json!(k.status);
    Out { json: j, table }
}

/// `keys list`.
pub fn keys(r: pb::ListKeysReply) -> Out {
    let mut table = format!(
        "{:<22} {:<16} {:<16} {:<10} {}\n",
        "ID", "NAME", "PREFIX", "TEAM", "STATUS"
    );
    for k in &r.keys {
        table.push_str(&format!(
            "{:<22} {:<16} {:<16} {:<10} {}\n",
            k.id, k.name, k.prefix, k.team, k.status
        ));
    }
    Out {
        json: json!({"keys": r.keys.iter().map(key_json).collect::<Vec<_>>()}),
        table: table.trim_end().to_owned(),
    }
}

/// `budgets set` / `budgets show`.
pub fn budget(b: pb::BudgetInfo) -> Out {
    let table = format!(
        "{}  limit {} ({})  spent {}  reserved {}  available {}  alerts fired {:?}",
        b.scope,
        usd(b.limit_micros),
        b.period,
        usd(b.spent_micros),
        usd(b.reserved_micros),
        usd(b.available_micros),
        b.alerts_fired_pct
    );
    Out {
        json: json!({
            "scope": b.scope, "limit_micros": b.limit_micros, "period": b.period, "spent_micros": b.spent_micros,
            "reserved_micros": b.reserved_micros, "available_micros": b.available_micros,
            "alert_thresholds_pct": b.alert_thresholds_pct, "alerts_fired_pct": b.alerts_fired_pct,
            "outstanding_allowances": b.outstanding_allowances,
        }),
        table,
    }
}

/// `spend`.
pub fn spend(r: pb::SpendReply) -> Out {
    let mut table = format!(
        "total {}  (charged for expired allowances: {})\n",
        usd(r.spent_micros),
        usd(r.expired_charges_micros)
    );
    for row in &r.rows {
        table.push_str(&format!("  {:<30} {}\n", row.name, usd(row.spent_micros)));
    }
    Out {
        json: json!({
            "spent_micros": r.spent_micros,
            "expired_charges_micros": r.expired_charges_micros,
            "rows": r.rows.iter().map(|x| json!({"name": x.name, "spent_micros": x.spent_micros})).collect::<Vec<_>>(),
        }),
        table: table.trim_end().to_owned(),
    }
}

/// `audit`.
pub fn audit(r: pb::AuditReply) -> Out {
    let mut table = String::new();
    for e in &r.entries {
        table.push_str(&format!(
            "{:>6}  {}  {:<12} {}\n",
            e.index, e.at_ms, e.actor, e.what
        ));
    }
    Out {
        json: json!({"entries": r.entries.iter().map(|e| json!({"index": e.index, "at_ms": e.at_ms, "actor": e.actor, "what": e.what})).collect::<Vec<_>>()}),
        table: table.trim_end().to_owned(),
    }
}

fn provider_json(p: &pb::ProviderInfo) -> Value {
    json!({
        "name": p.name, "kind": p.kind, "base_url": p.base_url, "has_api_key": p.has_api_key, "key_version": p.key_version,
        "api_version": p.api_version, "internal": p.internal, "region": p.region, "rpm": p.rpm, "tpm": p.tpm,
        "max_in_flight": p.max_in_flight, "tuning": p.tuning,
        "prices": p.prices.iter().map(|m| json!({"model": m.model, "input_micros_per_mtok": m.input_micros_per_mtok, "output_micros_per_mtok": m.output_micros_per_mtok})).collect::<Vec<_>>(),
    })
}

/// `providers …`.
pub fn providers(ps: Vec<pb::ProviderInfo>) -> Out {
    let mut table = format!(
        "{:<16} {:<10} {:<40} {:<8} {}\n",
        "NAME", "KIND", "BASE URL", "KEY", "REGION"
    );
    for p in &ps {
        let key = if p.has_api_key {
            format!("sealed/v{}", p.key_version)
        } else {
            "-".into()
        };
        table.push_str(&format!(
            "{:<16} {:<10} {:<40} {:<8} {}\n",
            p.name, p.kind, p.base_url, key, p.region
        ));
    }
    Out {
        json: json!({"providers": ps.iter().map(provider_json).collect::<Vec<_>>()}),
        table: table.trim_end().to_owned(),
    }
}

/// `routes …`.
pub fn routes(rs: Vec<pb::RouteInfo>) -> Out {
    let mut table = String::new();
    for r in &rs {
        let targets: Vec<String> = r
            .targets
            .iter()
            .map(|t| format!("{}:{}:{}", t.provider, t.model, t.weight))
            .collect();
        table.push_str(&format!(
            "{:<24} {:<14} {}  fallbacks={}\n",
            r.model,
            if r.strategy.is_empty() {
                "priority"
            } else {
                &r.strategy
            },
            targets.join(" "),
            r.fallbacks.join(",")
        ));
    }
    Out {
        json: json!({"routes": rs.iter().map(|r| json!({
            "model": r.model, "strategy": r.strategy, "fallbacks": r.fallbacks, "tier": r.tier,
            "limits": limits_json(r.limits.as_ref()),
            "targets": r.targets.iter().map(|t| json!({"provider": t.provider, "model": t.model, "weight": t.weight})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()}),
        table: table.trim_end().to_owned(),
    }
}

/// `stats`.
pub fn stats(r: pb::StatsReply) -> Out {
    let mut table = format!(
        "{:<14} {:>8} {:>7} {:>9} {:>9} {:>9} {:<10} {:<9} {:>13}\n",
        "PROVIDER",
        "REQS",
        "ERR %",
        "P50 ms",
        "P95 ms",
        "IN-FLT",
        "BREAKER",
        "HEALTH",
        "RPM USED/LIM"
    );
    for p in &r.providers {
        table.push_str(&format!(
            "{:<14} {:>8} {:>7.1} {:>9.1} {:>9.1} {:>9} {:<10} {:<9} {:>13}\n",
            p.name,
            p.requests,
            p.error_pct,
            p.p50_ms,
            p.p95_ms,
            p.in_flight,
            p.breaker,
            p.health,
            format!(
                "{}/{}",
                p.rpm_used,
                if p.rpm_limit == 0 {
                    "-".to_owned()
                } else {
                    p.rpm_limit.to_string()
                }
            )
        ));
        for m in &p.models {
            table.push_str(&format!(
                "  {:<24} {:>8} {:>7} {:>9.1} {:>9.1}  price {}/{} per Mtok\n",
                m.model,
                m.requests,
                m.errors,
                m.p50_ms,
                m.p95_ms,
                usd(m.input_micros_per_mtok),
                usd(m.output_micros_per_mtok)
            ));
        }
    }
    let providers: Vec<Value> = r
        .providers
        .iter()
        .map(|p| {
            json!({
                "name": p.name, "requests": p.requests, "errors": p.errors, "error_pct": p.error_pct,
                "p50_ms": p.p50_ms, "p95_ms": p.p95_ms, "p99_ms": p.p99_ms, "in_flight": p.in_flight,
                "breaker": p.breaker, "breakers": p.breakers, "health": p.health,
                "rpm_used": p.rpm_used, "rpm_limit": p.rpm_limit, "retries": p.retries,
                "models": p.models.iter().map(|m| json!({
                    "model": m.model, "requests": m.requests, "errors": m.errors, "p50_ms": m.p50_ms, "p95_ms": m.p95_ms,
                    "ttft_p50_ms": m.ttft_p50_ms, "input_micros_per_mtok": m.input_micros_per_mtok, "output_micros_per_mtok": m.output_micros_per_mtok,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Out {
        json: json!({"node": r.node, "at_ms": r.at_ms, "providers": providers}),
        table: table.trim_end().to_owned(),
    }
}

/// `teams …`.
pub fn teams(ts: Vec<pb::TeamInfo>) -> Out {
    let mut table = format!("{:<24} {:>5} {}\n", "TEAM", "KEYS", "BUDGET");
    for t in &ts {
        table.push_str(&format!(
            "{:<24} {:>5} {}\n",
            t.name,
            t.keys,
            if t.has_budget { "yes" } else { "-" }
        ));
    }
    Out {
        json: json!({"teams": ts.iter().map(|t| json!({"name": t.name, "keys": t.keys, "has_budget": t.has_budget})).collect::<Vec<_>>()}),
        table: table.trim_end().to_owned(),
    }
}

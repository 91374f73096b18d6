//! Markdown from the pass summaries: the main table (cost, success, latency, attempts, tier
//! fit), the episodes, where traffic went, the billing cross-check, the results by seed, the
//! verdicts on the aims, and the fleet.

use std::fmt::Write as _;
use std::time::Duration;

use switchyard_core::Micros;

use crate::fleet;
use crate::pass::Episode;
use crate::summary::{Back, Summary, pct, ratio};
use crate::workload::TaskKind;

/// The signed change of `x` against `reference`, as `-87.3%`.
fn change(x: Micros, reference: Micros) -> String {
    if reference.0 == 0 {
        return "n/a".into();
    }
    let c = 100.0 * (x.0 as f64 / reference.0 as f64 - 1.0);
    if c.abs() < 0.05 {
        "±0.0%".into()
    } else {
        format!("{c:+.1}%")
    }
}

/// What the study was run with.
#[derive(Clone, Debug)]
pub struct Params {
    /// Workload seed.
    pub seed: u64,
    /// Requests per pass.
    pub requests: usize,
    /// Mean arrival rate, requests per second.
    pub rate_per_s: f64,
    /// How the outage provider fails.
    pub outage: fleet::OutageMode,
    /// The episodes.
    pub episodes: Vec<Episode>,
    /// Tasks per kind in the workload.
    pub mix: Vec<(TaskKind, usize)>,
    /// Arrival time of the last request.
    pub span: Duration,
}

/// The headline table.
pub fn main_table(rows: &[Summary], params: &Params) -> String {
    let reference = rows
        .iter()
        .find(|r| r.name == "always-premium")
        .map_or(Micros::ZERO, |r| r.ledger);
    let mut t = String::new();
    let ep: Vec<String> = params
        .episodes
        .iter()
        .map(|e| format!("p95 ms in {}", e.name))
        .collect();
    let _ = writeln!(
        t,
        "| strategy | cost µ$ (ledger) | cost vs always-premium | success % | p50 ms | p95 ms | {} | attempts/request | below needed tier |",
        ep.join(" | ")
    );
    let _ = writeln!(
        t,
        "|---|--:|--:|--:|--:|--:|{}--:|--:|",
        "--:|".repeat(ep.len())
    );
    for r in rows {
        let ep: Vec<String> = r.episode_p95_ms.iter().map(|v| format!("{v:.1}")).collect();
        let _ = writeln!(
            t,
            "| {}{} | {} | {} | {:.2} ({}/{}) | {:.1} | {:.1} | {} | {:.3} | {:.1}% |",
            r.name,
            if r.baseline { " *(baseline)*" } else { "" },
            group(r.ledger.0),
            if r.name == "always-premium" {
                "—".to_owned()
            } else {
                change(r.ledger, reference)
            },
            pct(r.ok, r.requests),
            r.ok,
            r.requests,
            r.latency_ms[0],
            r.latency_ms[1],
            ep.join(" | "),
            r.attempts_per_request,
            pct(r.below_tier, r.ok),
        );
    }
    t
}

/// Where the answered requests went, and what failed.
pub fn traffic_table(rows: &[Summary]) -> String {
    let mut t = String::new();
    let names: Vec<&str> = fleet::PROVIDERS.iter().map(|p| p.name).collect();
    let _ = writeln!(
        t,
        "| strategy | {} | above needed tier | max attempts | upstream calls/request | failures (status code) | failures by episode |",
        names.join(" | ")
    );
    let _ = writeln!(t, "|---|{}--:|--:|--:|---|---|", "--:|".repeat(names.len()));
    for r in rows {
        let served: Vec<String> = names
            .iter()
            .map(|n| r.served_by.get(*n).copied().unwrap_or(0).to_string())
            .collect();
        let errors = if r.errors.is_empty() {
            "none".to_owned()
        } else {
            r.errors
                .iter()
                .map(|(k, v)| format!("{v} × {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let errors_in = if r.errors_in.is_empty() {
            "—".to_owned()
        } else {
            r.errors_in
                .iter()
                .map(|(k, v)| format!("{v} in {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            t,
            "| {} | {} | {:.1}% | {} | {:.3} | {} | {} |",
            r.name,
            served.join(" | "),
            pct(r.above_tier, r.ok),
            r.max_attempts,
            ratio(r.upstream_calls, r.requests as u64),
            errors,
            errors_in
        );
    }
    t
}

/// How each contender went through each episode.
pub fn episodes_table(rows: &[Summary], params: &Params) -> String {
    let mut t = String::new();
    let mut head = vec!["strategy".to_owned()];
    for e in &params.episodes {
        head.push(format!("{}: failed", e.name));
        head.push(format!("{}: answered by `{}`", e.name, e.mock));
        head.push(format!("{}: `{}` answers again after", e.name, e.mock));
    }
    let _ = writeln!(t, "| {} |", head.join(" | "));
    let _ = writeln!(t, "|---|{}", "--:|".repeat(head.len() - 1));
    for r in rows {
        let mut cells = vec![r.name.to_owned()];
        for s in &r.episodes {
            cells.push(format!("{}/{}", s.failed, s.requests));
            cells.push(s.answered_by_faulted.to_string());
            cells.push(match s.back {
                Back::NotUsed => "not used before".to_owned(),
                Back::After(d) => format!("{:.1} s", d.as_secs_f64()),
                Back::Never => "not by the end of the pass".to_owned(),
            });
        }
        let _ = writeln!(t, "| {} |", cells.join(" | "));
    }
    t
}

/// The cross-check of the gateway's cost headers against the ledgers.
pub fn billing_table(rows: &[Summary]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| strategy | ledger µ$ | sum of cost headers µ$ | difference | matched | unbilled | billed twice | wrong provider | cost differs | failed but billed | unknown ledger entries |"
    );
    let _ = writeln!(t, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in rows {
        let b = &r.billing;
        let diff = i128::from(r.headers.0) - i128::from(r.ledger.0);
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:+} | {}/{} | {} | {} | {} | {} | {} | {} |",
            r.name,
            group(r.ledger.0),
            group(r.headers.0),
            diff,
            b.matched,
            r.ok,
            b.unbilled,
            b.billed_twice,
            b.wrong_provider,
            b.cost_differs,
            b.failed_but_billed,
            b.unknown_entries
        );
    }
    t
}

/// Success and cost against always-premium by seed, one column per seed, for the contenders
/// every seed ran.
pub fn seeds_table(by_seed: &[(u64, Vec<Summary>)]) -> String {
    let mut t = String::new();
    let Some((_, last)) = by_seed.last() else {
        return t;
    };
    let names: Vec<&str> = last.iter().map(|r| r.name).collect();
    let seeds: Vec<String> = by_seed.iter().map(|(s, _)| format!("seed {s}")).collect();
    let _ = writeln!(t, "| strategy | {} |", seeds.join(" | "));
    let _ = writeln!(t, "|---|{}", "---|".repeat(seeds.len()));
    for name in names {
        let mut cells = vec![name.to_owned()];
        for (_, rows) in by_seed {
            let reference = rows
                .iter()
                .find(|r| r.name == "always-premium")
                .map_or(Micros::ZERO, |r| r.ledger);
            let Some(r) = rows.iter().find(|r| r.name == name) else {
                cells.push("—".into());
                continue;
            };
            let failed = r.requests - r.ok;
            let mut cell = format!("{:.2}% success", pct(r.ok, r.requests));
            if failed > 0 {
                let where_: Vec<String> = r
                    .errors_in
                    .iter()
                    .map(|(k, v)| format!("{v} in {k}"))
                    .collect();
                cell.push_str(&format!(" ({failed} failed: {})", where_.join(", ")));
            }
            if name != "always-premium" {
                cell.push_str(&format!(", cost {}", change(r.ledger, reference)));
            }
            cells.push(cell);
        }
        let _ = writeln!(t, "| {} |", cells.join(" | "));
    }
    t
}

/// Whether the aims hold for each gateway strategy: at every seed run, at least 60% cheaper
/// than always-premium and at least 99.9% success.
pub fn verdicts(by_seed: &[(u64, Vec<Summary>)]) -> String {
    let mut t = String::new();
    let Some((_, first)) = by_seed.first() else {
        return t;
    };
    let seeds: Vec<String> = by_seed.iter().map(|(s, _)| s.to_string()).collect();
    let at_least = if by_seed.len() > 1 { "at least " } else { "" };
    for name in first.iter().filter(|r| !r.baseline).map(|r| r.name) {
        // The worst saving and the worst success over the seeds.
        let mut saving = f64::INFINITY;
        let mut success = f64::INFINITY;
        for (_, rows) in by_seed {
            let reference = rows
                .iter()
                .find(|r| r.name == "always-premium")
                .map_or(0, |r| r.ledger.0);
            if let Some(r) = rows.iter().find(|r| r.name == name) {
                let s = if reference == 0 {
                    0.0
                } else {
                    100.0 * (1.0 - r.ledger.0 as f64 / reference as f64)
                };
                saving = saving.min(s);
                success = success.min(pct(r.ok, r.requests));
            }
        }
        let _ = writeln!(
            t,
            "- {name}: {at_least}{saving:.1}% cheaper than always-premium ({}), {at_least}{success:.2}% success ({}).",
            if saving >= 60.0 {
                "meets the 60% aim"
            } else {
                "misses the 60% aim"
            },
            if success >= 99.9 {
                "meets the 99.9% aim"
            } else {
                "misses the 99.9% aim"
            },
        );
    }
    if by_seed.len() > 1 {
        let _ = writeln!(t, "\n(Worst figures over seeds {}.)", seeds.join(", "));
    }
    t
}

/// The parameters block, shared by stdout and the document.
pub fn params_block(p: &Params) -> String {
    let mut t = String::new();
    let mix: Vec<String> = p
        .mix
        .iter()
        .map(|(k, n)| format!("{n} {} ({})", k.as_str(), k.needs().as_str()))
        .collect();
    let _ = writeln!(
        t,
        "- seed {}, {} requests per pass, Poisson arrivals at {} requests/s (last arrival at {:.1} s), spread over {} nodes",
        p.seed,
        p.requests,
        p.rate_per_s,
        p.span.as_secs_f64(),
        fleet::NODES
    );
    let _ = writeln!(t, "- workload: {}", mix.join(", "));
    for e in &p.episodes {
        let what = if e.name == "outage" {
            format!("`{}` down, {}", e.mock, p.outage.describe())
        } else {
            format!("`{}` answers {} ms later", e.mock, fleet::SPIKE_MS)
        };
        let _ = writeln!(
            t,
            "- {}: requests {}..{} ({}..{} s): {what}",
            e.name,
            e.start,
            e.end,
            fmt_s(p, e.start),
            fmt_s(p, e.end)
        );
    }
    t
}

fn fmt_s(p: &Params, index: usize) -> String {
    // The arrival time of request `index`, approximated from the mean rate.
    format!("{:.1}", index as f64 / p.rate_per_s)
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The fleet and route tables for the document.
pub fn fleet_tables() -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| provider | model | input µ$/Mtok | output µ$/Mtok | time to first token | per output token | stands for |"
    );
    let _ = writeln!(t, "|---|---|--:|--:|--:|--:|---|");
    for p in fleet::PROVIDERS {
        for (m, i, o) in p.models {
            let _ = writeln!(
                t,
                "| {} | {m} | {} | {} | {} ms | {} ms | {} |",
                p.name,
                group(*i),
                group(*o),
                p.ttft_ms,
                p.per_token_ms,
                p.note
            );
        }
    }
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "| route (public model) | tier | targets, configured order | fallbacks |"
    );
    let _ = writeln!(t, "|---|---|---|---|");
    for r in fleet::ROUTES {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} |",
            r.model,
            r.tier.as_str(),
            r.targets.join(", "),
            r.fallbacks.join(", ")
        );
    }
    t
}

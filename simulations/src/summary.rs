//! The figures of one pass, computed from what its requests got and what the mocks billed:
//! cost, success, latency quantiles (overall and per episode), attempts, tier fit, where the
//! traffic went, and the request-by-request billing cross-check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use switchyard_core::Micros;

use crate::fleet;
use crate::pass::{Episode, Outcome, PassResult, request_id};

/// The figures of one pass.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Contender name.
    pub name: &'static str,
    /// Whether it is a baseline.
    pub baseline: bool,
    /// Requests sent.
    pub requests: usize,
    /// Requests answered 200.
    pub ok: usize,
    /// What the mocks billed: the cost oracle.
    pub ledger: Micros,
    /// Sum of the gateway's `x-switchyard-cost-micros`.
    pub headers: Micros,
    /// Latency quantiles over every request, ms: p50, p95, p99.
    pub latency_ms: [f64; 3],
    /// p95 latency of requests sent during each episode, ms, in episode order.
    pub episode_p95_ms: Vec<f64>,
    /// Mean `x-switchyard-attempts` over answered requests.
    pub attempts_per_request: f64,
    /// Most attempts any answered request made.
    pub max_attempts: u32,
    /// Answered requests served by a model of a lower tier than the task needs.
    pub below_tier: usize,
    /// Answered requests served by a model of a higher tier than the task needs.
    pub above_tier: usize,
    /// Failed requests by error code.
    pub errors: BTreeMap<String, usize>,
    /// Failed requests by the episodes they were sent in (`"-"`: none).
    pub errors_in: BTreeMap<String, usize>,
    /// Answered requests by provider.
    pub served_by: BTreeMap<String, usize>,
    /// API requests the mocks received, failed attempts included (refused connections are
    /// not counted).
    pub upstream_calls: u64,
    /// How the pass went through each episode, in episode order.
    pub episodes: Vec<EpisodeStats>,
    /// Billing cross-check.
    pub billing: BillingCheck,
    /// Wall time of the pass.
    pub elapsed: Duration,
}

/// How one pass went through one episode.
#[derive(Clone, Debug, Default)]
pub struct EpisodeStats {
    /// Requests sent during it.
    pub requests: usize,
    /// Of those, the ones that failed.
    pub failed: usize,
    /// Of those, the ones the faulted provider answered.
    pub answered_by_faulted: usize,
    /// What happened to the faulted provider's share after the episode.
    pub back: Back,
}

/// When the faulted provider answered again after an episode.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Back {
    /// It answered nothing in the stretch of equal length before the episode: the strategy did
    /// not use it, so there is nothing to come back to.
    #[default]
    NotUsed,
    /// The first request sent this long after the episode ended that it answered.
    After(Duration),
    /// It answered nothing after the episode, up to the end of the pass.
    Never,
}

/// Request-by-request comparison of the gateway's cost header with the mocks' ledgers.
#[derive(Clone, Debug, Default)]
pub struct BillingCheck {
    /// Answered requests billed exactly once, by the provider the gateway named, at the cost
    /// it reported.
    pub matched: usize,
    /// Answered requests with no ledger entry.
    pub unbilled: usize,
    /// Answered requests billed more than once.
    pub billed_twice: usize,
    /// Answered requests billed by another provider than the one named.
    pub wrong_provider: usize,
    /// Answered requests whose header differs from the ledger.
    pub cost_differs: usize,
    /// Failed requests that a mock billed anyway.
    pub failed_but_billed: usize,
    /// Ledger entries with a request id the study never sent.
    pub unknown_entries: usize,
}

/// Summarises one pass. `pass` is the pass number used in its request ids.
///
/// # Errors
/// Only if a histogram cannot be made.
pub fn summarise(pass: usize, r: &PassResult, episodes: &[Episode]) -> anyhow::Result<Summary> {
    let ok: Vec<&Outcome> = r.outcomes.iter().filter(|o| o.status == 200).collect();
    let mut all = histogram()?;
    let mut per_episode = episodes
        .iter()
        .map(|_| histogram())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut errors = BTreeMap::new();
    let mut errors_in = BTreeMap::new();
    for o in &r.outcomes {
        let us = u64::try_from(o.latency.as_micros()).unwrap_or(u64::MAX);
        all.saturating_record(us);
        let mut inside = Vec::new();
        for (h, e) in per_episode.iter_mut().zip(episodes) {
            if (e.start..e.end).contains(&o.index) {
                h.saturating_record(us);
                inside.push(e.name);
            }
        }
        if o.status != 200 {
            let code = format!(
                "{} {}",
                o.status,
                o.error.clone().unwrap_or_else(|| "?".into())
            );
            *errors.entry(code).or_insert(0) += 1;
            let label = if inside.is_empty() {
                "-".to_owned()
            } else {
                inside.join(" + ")
            };
            *errors_in.entry(label).or_insert(0) += 1;
        }
    }
    let mut served_by = BTreeMap::new();
    let (mut below_tier, mut above_tier) = (0, 0);
    for o in &ok {
        let p = o.provider.clone().unwrap_or_else(|| "?".into());
        *served_by.entry(p).or_insert(0) += 1;
        match o.model.as_deref().and_then(fleet::model_tier) {
            Some(t) if t < o.needs => below_tier += 1,
            Some(t) if t > o.needs => above_tier += 1,
            _ => {}
        }
    }
    let attempts: u64 = ok.iter().map(|o| u64::from(o.attempts.unwrap_or(1))).sum();
    let headers: u64 = ok.iter().filter_map(|o| o.cost_header_micros).sum();
    Ok(Summary {
        name: r.contender.name,
        baseline: r.contender.baseline,
        requests: r.outcomes.len(),
        ok: ok.len(),
        ledger: Micros(r.ledger_total_micros),
        headers: Micros(headers),
        latency_ms: [0.5, 0.95, 0.99].map(|q| ms(all.value_at_quantile(q))),
        episode_p95_ms: per_episode
            .iter()
            .map(|h| ms(h.value_at_quantile(0.95)))
            .collect(),
        attempts_per_request: ratio(attempts, ok.len() as u64),
        max_attempts: ok.iter().filter_map(|o| o.attempts).max().unwrap_or(0),
        below_tier,
        above_tier,
        errors,
        errors_in,
        served_by,
        episodes: episodes
            .iter()
            .map(|e| episode_stats(&r.outcomes, e))
            .collect(),
        upstream_calls: r.mock_requests.iter().map(|(_, n)| n).sum(),
        billing: billing_check(pass, r),
        elapsed: r.elapsed,
    })
}

/// Every outcome of a pass as CSV, for looking at a pass request by request.
pub fn outcomes_csv(r: &PassResult) -> String {
    let mut t = String::from(
        "index,kind,needs,status,latency_ms,provider,model,attempts,cost_header_micros,error,message\n",
    );
    for o in &r.outcomes {
        let _ = writeln!(
            t,
            "{},{},{},{},{:.3},{},{},{},{},{},{}",
            o.index,
            o.kind.as_str(),
            o.needs.as_str(),
            o.status,
            o.latency.as_secs_f64() * 1_000.0,
            o.provider.as_deref().unwrap_or(""),
            o.model.as_deref().unwrap_or(""),
            o.attempts.map(|a| a.to_string()).unwrap_or_default(),
            o.cost_header_micros
                .map(|c| c.to_string())
                .unwrap_or_default(),
            o.error.as_deref().unwrap_or("").replace([',', '\n'], " "),
            o.error_message
                .as_deref()
                .unwrap_or("")
                .replace([',', '\n'], " ")
        );
    }
    t
}

fn episode_stats(outcomes: &[Outcome], e: &Episode) -> EpisodeStats {
    let by_faulted = |o: &Outcome| o.status == 200 && o.provider.as_deref() == Some(e.mock);
    let during: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| (e.start..e.end).contains(&o.index))
        .collect();
    let before = e.start.saturating_sub(e.end - e.start)..e.start;
    let used_before = outcomes
        .iter()
        .filter(|o| before.contains(&o.index))
        .any(by_faulted);
    let after = outcomes.get(e.end..).unwrap_or_default();
    let back = match (used_before, after.first()) {
        (false, _) => Back::NotUsed,
        (true, None) => Back::Never,
        (true, Some(first)) => after
            .iter()
            .find(|o| by_faulted(o))
            .map_or(Back::Never, |o| Back::After(o.at.saturating_sub(first.at))),
    };
    EpisodeStats {
        requests: during.len(),
        failed: during.iter().filter(|o| o.status != 200).count(),
        answered_by_faulted: during.iter().filter(|o| by_faulted(o)).count(),
        back,
    }
}

fn billing_check(pass: usize, r: &PassResult) -> BillingCheck {
    let mut c = BillingCheck::default();
    let mut sent = std::collections::HashSet::new();
    for o in &r.outcomes {
        let rid = request_id(pass, o.index);
        let entries = r.billed.get(&rid).map_or(&[][..], Vec::as_slice);
        sent.insert(rid);
        if o.status != 200 {
            if !entries.is_empty() {
                c.failed_but_billed += 1;
            }
            continue;
        }
        match entries {
            [] => c.unbilled += 1,
            [one] => {
                if o.provider.as_deref() != Some(one.mock.as_str())
                    || o.model.as_deref() != Some(one.model.as_str())
                {
                    c.wrong_provider += 1;
                } else if o.cost_header_micros != Some(one.micros) {
                    c.cost_differs += 1;
                } else {
                    c.matched += 1;
                }
            }
            _ => c.billed_twice += 1,
        }
    }
    c.unknown_entries = r
        .billed
        .iter()
        .filter(|(rid, _)| !sent.contains(*rid))
        .map(|(_, e)| e.len())
        .sum();
    c
}

/// A latency histogram in µs, 1 µs to 10 minutes at 3 significant digits.
fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// `a / b`, 0 when `b` is 0.
pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// `a` per hundred of `b`, 0 when `b` is 0.
pub fn pct(a: usize, b: usize) -> f64 {
    100.0 * ratio(a as u64, b as u64)
}

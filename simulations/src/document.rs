//! The study as text: the short report printed to stdout, and `docs/routing-study.md` (setup,
//! method, results, and the command that reproduces them), both from the same figures.

use std::fmt::Write as _;

use crate::fleet;
use crate::report::{self, Params};
use crate::summary::Summary;

/// The stdout report: parameters, the headline table, the verdicts, where traffic went and the
/// billing cross-check.
pub fn stdout_report(rows: &[Summary], by_seed: &[(u64, Vec<Summary>)], params: &Params) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "# Routing study\n");
    t.push_str(&report::params_block(params));
    let _ = writeln!(t);
    t.push_str(&report::main_table(rows, params));
    let _ = writeln!(t);
    t.push_str(&report::verdicts(by_seed));
    if by_seed.len() > 1 {
        let _ = writeln!(t, "\n## By seed\n");
        t.push_str(&report::seeds_table(by_seed));
    }
    let _ = writeln!(t, "\n## Through the episodes\n");
    t.push_str(&report::episodes_table(rows, params));
    let _ = writeln!(t, "\n## Answered requests by provider\n");
    t.push_str(&report::traffic_table(rows));
    let _ = writeln!(t, "\n## Billing cross-check\n");
    t.push_str(&report::billing_table(rows));
    t
}

/// The whole document.
pub fn markdown(
    rows: &[Summary],
    by_seed: &[(u64, Vec<Summary>)],
    params: &Params,
    command: &str,
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Routing study\n\n\
         One seeded workload of mixed tasks, routed through a fleet of mock providers with \
         different prices and latencies while one provider goes down and another slows down. \
         For each routing strategy on `model: \"auto\"`, and for two baselines, the table gives \
         what the requests cost, how many succeeded and how fast they were answered.\n\n\
         The aim (from the issue): at least 60% lower cost than always sending the premium \
         model, and at least 99.9% success through a provider outage.\n\n\
         This file is written by the study itself; to reproduce it:\n\n\
         ```sh\n{command}\n```\n\n\
         The workload, the arrival times and the episodes follow from the seed. Latencies vary \
         a little from run to run (shared machine, real sockets); costs and success vary where \
         timing changes a routing decision. One seed is one sample of that timing: what happens \
         in the first few hundred milliseconds of the outage depends on where the nodes' \
         once-a-second stats exchange falls against their breakers opening. `--also-seed` reruns \
         the gateway strategies with other seeds; the aims below are judged on the worst seed.\n"
    );
    let _ = writeln!(t, "## Results\n");
    t.push_str(&report::params_block(params));
    let _ = writeln!(t);
    t.push_str(&report::main_table(rows, params));
    let _ = writeln!(t);
    t.push_str(&report::verdicts(by_seed));
    let _ = writeln!(
        t,
        "\n*Cost* is the sum of what the mocks' ledgers billed, in micro-dollars. *Success* is \
         the share of requests answered 200. Latencies are measured at the client over every \
         request (failed ones included), from sending the request to reading the whole body; \
         the episode columns cover the requests sent while that episode was on. \
         *Attempts/request* is the mean of `x-switchyard-attempts` over answered requests. \
         *Below needed tier* is the share of answered requests served by a model of a lower \
         tier than the task needs (the study labels each task itself, without the gateway's \
         classifier): the quality a strategy gives up for its savings.\n"
    );
    if by_seed.len() > 1 {
        let _ = writeln!(t, "### By seed\n");
        let _ = writeln!(
            t,
            "The same study with other seeds (other prompts and arrival times, the same mix and \
             episodes), always-premium and the gateway strategies only: one seed is one sample \
             of the timing that decides the first moments of the outage.\n"
        );
        t.push_str(&report::seeds_table(by_seed));
        let _ = writeln!(t);
    }
    let _ = writeln!(t, "### Through the episodes\n");
    t.push_str(&report::episodes_table(rows, params));
    let _ = writeln!(
        t,
        "\n*Answered by* counts the requests sent during the episode that the faulted provider \
         answered (for the spike: slowly). *Answers again after* is the time from the end of \
         the episode to the first request, by arrival, that the provider answered; *not used \
         before* means it answered nothing in the stretch of equal length before the episode.\n"
    );
    let _ = writeln!(t, "### Answered requests by provider\n");
    t.push_str(&report::traffic_table(rows));
    let _ = writeln!(
        t,
        "\n*Above needed tier* counts answered requests served by a stronger model than the \
         task needs (the premium baseline always; `auto` when a fallback model stepped in).\n"
    );
    let _ = writeln!(t, "### Billing cross-check\n");
    let _ = writeln!(
        t,
        "Every request carries its own `x-request-id`, which the gateway forwards upstream and \
         the mocks key their ledgers by, so each answered request can be matched to exactly \
         one ledger entry: billed by the provider the gateway named, for the model it named, \
         at the cost it reported in `x-switchyard-cost-micros`.\n"
    );
    t.push_str(&report::billing_table(rows));
    let _ = writeln!(t, "\n## Setup\n");
    let _ = writeln!(
        t,
        "One process runs a {}-node cluster (Raft, stats exchange, the HTTP edge) and {} mock \
         providers, all on 127.0.0.1 with ports chosen by the OS, through \
         `switchyard-testkit`. Each contender gets a fresh cluster and fresh mocks, so no \
         breaker state, latency window or retry budget carries over from the previous pass.\n",
        fleet::NODES,
        fleet::PROVIDERS.len()
    );
    t.push_str(&report::fleet_tables());
    let _ = writeln!(
        t,
        "\nPrices are the list prices of the models the mocks stand for, in micro-dollars per \
         million tokens; the node is told the same prices, and the mocks bill by their own \
         code. Latencies are scaled down from seconds to tens of milliseconds so that a pass \
         takes seconds, keeping their order. Mock answers are at most 16 tokens, so the \
         prompt dominates cost, as it does for summarisation and retrieval traffic.\n"
    );
    let _ = writeln!(
        t,
        "**Workload.** {} requests, each task drawn from the seed: short chat and translation \
         (needs small), a question about fenced code (medium), a forced tool call (medium), a \
         proof or a step-by-step word problem (large), and a 4,500–12,000-character document \
         to summarise (medium). Arrivals are a Poisson process at {} requests/s, open loop (a \
         slow answer does not delay the next arrival, so latency is not hidden by \
         back-pressure), sent in turn to each node.\n",
        params.requests, params.rate_per_s
    );
    let _ = writeln!(
        t,
        "**Episodes.** Keyed to request indices, so every pass sees them at the same point of \
         the workload. The outage takes `{}` down ({}) — it serves both the premium and the mid \
         model, so every contender that prefers it must fail over to `azure` or to a fallback \
         model; the spike adds {} ms to `{}`, the fastest small-model host. Faults are set and \
         cleared through the mocks' `/_mock/faults` API.\n",
        fleet::OUTAGE_PROVIDER,
        params.outage.describe(),
        fleet::SPIKE_MS,
        fleet::SPIKE_PROVIDER
    );
    let _ = writeln!(
        t,
        "**Contenders.** The strategy goes in `x-switchyard-strategy`; it orders the chosen \
         route's targets, and fallback routes keep their own (priority) order.\n\n\
         - *always-premium*: `model: \"{}\"`, priority (`openai`, then `azure`).\n\
         - *round-robin (models)*: the three public models in turn, blind to the task, each \
           spread over its providers by the weighted strategy with equal weights.\n\
         - *round-robin (premium providers)*: `model: \"{}\"`, weighted with equal weights \
           across `openai` and `azure`.\n\
         - *auto + …*: `model: \"auto\"`: the gateway classifies the prompt (reasoning \
           phrases → large; code, tools or a long prompt → medium; else small) and takes the \
           cheapest route of at least that tier; the strategy orders that route's providers.\n",
        fleet::PREMIUM,
        fleet::PREMIUM
    );
    t
}

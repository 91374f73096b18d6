//! The measurements of one run, as a table or one JSON object: per (target, connections) the
//! throughput, latency, latency added over the direct path, CPU per request and RSS; then the
//! node-to-floor ratios from the same run, the budgets-on-to-off ratios of the node, and the
//! targets they are held to (reported, never failed on).

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::fleet::{BudgetState, LogSummary};
use crate::load::LoadResult;

/// A path to the mock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Client to mock.
    Direct,
    /// Client to floor proxy to mock.
    Floor,
    /// Client to node to mock, with the plain key (no budget): budgets off.
    Node,
    /// The same with a key that has a budget: admission debits a node-local allowance and the
    /// actual cost is settled through Raft in batches. Budgets on.
    NodeBudget,
}

/// What one cell measured, before it is summarised.
pub struct Sample<'a> {
    /// The path.
    pub target: Target,
    /// Connections.
    pub conns: usize,
    /// Load generator result.
    pub load: &'a LoadResult,
    /// Clock ticks per second.
    pub clk_tck: u64,
    /// Mock CPU ticks spent in the measured window.
    pub mock_ticks: u64,
    /// Floor or node CPU ticks spent in the measured window.
    pub proxy_ticks: Option<u64>,
    /// Floor or node VmRSS before the cell.
    pub rss_before_kib: Option<u64>,
    /// Floor or node VmHWM after the cell.
    pub hwm_after_kib: Option<u64>,
}

/// One (target, connections) cell, summarised.
#[derive(Debug)]
pub struct Row {
    target: Target,
    conns: usize,
    ok: u64,
    errors: u64,
    reconnects: u64,
    first_error: Option<String>,
    req_per_s: f64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    /// Over the direct path at the same connection count (filled in by [`Report::new`]).
    added_p50_us: Option<i64>,
    added_p99_us: Option<i64>,
    cpu_us_per_req: Option<f64>,
    mock_cpu_us_per_req: Option<f64>,
    rss_before_mib: Option<f64>,
    rss_peak_mib: Option<f64>,
}

/// About the run, for the header.
pub struct Context {
    /// Logical CPUs.
    pub nproc: usize,
    /// Clock ticks per second used for `/proc` CPU times.
    pub clk_tck: u64,
    /// True when CLK_TCK is assumed rather than asked.
    pub clk_tck_assumed: bool,
    /// Measured seconds per cell.
    pub duration_s: u64,
    /// Warm-up seconds per cell.
    pub warmup_s: u64,
    /// The switchyard binary measured.
    pub switchyard: String,
    /// True when it is a debug build (figures meaningless).
    pub debug_build: bool,
    /// What the processes logged.
    pub logs: Vec<LogSummary>,
    /// The budget key's budget after the run, when budgets were measured.
    pub budget: Option<BudgetState>,
}

/// One target the node is held to, as a ratio to the floor or an absolute bound.
struct Check {
    name: String,
    value: Option<f64>,
    unit: &'static str,
    limit: f64,
    at_most: bool,
}

/// A whole run.
pub struct Report {
    rows: Vec<Row>,
    /// About the run.
    pub context: Context,
}

/// One column of a row, as a number a ratio can be taken of.
type Column = fn(&Row) -> Option<f64>;

/// The columns shown as node ÷ floor: label, JSON key, value.
const RATIO_COLUMNS: [(&str, &str, Column); 5] = [
    ("req/s", "req_per_s", |r| Some(r.req_per_s)),
    ("added p50", "added_p50", |r| {
        r.added_p50_us.map(|v| v as f64)
    }),
    ("added p99", "added_p99", |r| {
        r.added_p99_us.map(|v| v as f64)
    }),
    ("CPU per request", "cpu_per_req", |r| r.cpu_us_per_req),
    ("RSS peak", "rss_peak", |r| r.rss_peak_mib),
];

/// The columns shown as budgets on ÷ off (node with and without a budgeted key).
const BUDGET_COLUMNS: [(&str, &str, Column); 4] = [
    ("req/s", "req_per_s", |r| Some(r.req_per_s)),
    ("p50", "p50", |r| Some(r.p50_us as f64)),
    ("p99", "p99", |r| Some(r.p99_us as f64)),
    ("CPU per request", "cpu_per_req", |r| r.cpu_us_per_req),
];

/// Node CPU per request may be at most this multiple of the floor's.
const MAX_CPU_RATIO: f64 = 1.5;
/// Node added p50 at the lowest connection count may be at most this multiple of the floor's.
const MAX_ADDED_P50_RATIO: f64 = 1.5;
/// Node throughput at the highest connection count must be at least this share of the floor's.
const MIN_THROUGHPUT_RATIO: f64 = 0.7;
/// Node RSS before any load.
const MAX_RSS_IDLE_MIB: f64 = 50.0;
/// Node peak RSS over the run.
const MAX_RSS_PEAK_MIB: f64 = 150.0;

impl Target {
    /// In the order each connection count measures them (without budgets).
    pub const ALL: [Self; 3] = [Self::Direct, Self::Floor, Self::Node];
    /// The same, then the node again with budgets on.
    pub const ALL_WITH_BUDGETS: [Self; 4] =
        [Self::Direct, Self::Floor, Self::Node, Self::NodeBudget];

    fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Floor => "floor",
            Self::Node => "node",
            Self::NodeBudget => "node+budget",
        }
    }
}

impl Row {
    /// Summarises one cell.
    pub fn new(s: Sample<'_>) -> Self {
        let h = &s.load.latency_us;
        let secs = s.load.elapsed.as_secs_f64();
        let per_req = |ticks: u64| {
            (s.load.ok > 0).then(|| ticks as f64 * 1e6 / s.clk_tck as f64 / s.load.ok as f64)
        };
        let mib = |kib: u64| kib as f64 / 1024.0;
        Self {
            target: s.target,
            conns: s.conns,
            ok: s.load.ok,
            errors: s.load.errors,
            reconnects: s.load.reconnects,
            first_error: s.load.first_error.clone(),
            req_per_s: if secs > 0.0 {
                s.load.ok as f64 / secs
            } else {
                0.0
            },
            p50_us: h.value_at_quantile(0.50),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
            added_p50_us: None,
            added_p99_us: None,
            cpu_us_per_req: s.proxy_ticks.and_then(per_req),
            mock_cpu_us_per_req: per_req(s.mock_ticks),
            rss_before_mib: s.rss_before_kib.map(mib),
            rss_peak_mib: s.hwm_after_kib.map(mib),
        }
    }
}

impl Report {
    /// Fills in the added latencies and keeps the rows in measured order.
    pub fn new(mut rows: Vec<Row>, context: Context) -> Self {
        let direct: Vec<(usize, u64, u64)> = rows
            .iter()
            .filter(|r| r.target == Target::Direct && r.ok > 0)
            .map(|r| (r.conns, r.p50_us, r.p99_us))
            .collect();
        for r in rows.iter_mut().filter(|r| r.target != Target::Direct) {
            if let Some(&(_, p50, p99)) = direct.iter().find(|d| d.0 == r.conns)
                && r.ok > 0
            {
                r.added_p50_us = Some(signed(r.p50_us) - signed(p50));
                r.added_p99_us = Some(signed(r.p99_us) - signed(p99));
            }
        }
        Self { rows, context }
    }

    fn row(&self, target: Target, conns: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.target == target && r.conns == conns)
    }

    fn conns(&self) -> Vec<usize> {
        let mut c: Vec<usize> = Vec::new();
        for r in &self.rows {
            if !c.contains(&r.conns) {
                c.push(r.conns);
            }
        }
        c
    }

    /// node ÷ floor of one column at one connection count; None when either is missing or
    /// the floor's is not positive.
    fn ratio(&self, conns: usize, column: Column) -> Option<f64> {
        self.ratio_of(Target::Node, Target::Floor, conns, column)
    }

    /// `a` ÷ `b` of one column at one connection count; None when either is missing or `b`'s
    /// is not positive.
    fn ratio_of(&self, a: Target, b: Target, conns: usize, column: Column) -> Option<f64> {
        let a = column(self.row(a, conns)?)?;
        let b = column(self.row(b, conns)?)?;
        (b > 0.0).then(|| a / b)
    }

    fn has_budget_rows(&self) -> bool {
        self.rows.iter().any(|r| r.target == Target::NodeBudget)
    }

    fn checks(&self) -> Vec<Check> {
        let conns = self.conns();
        let (low, high) = (
            conns.iter().copied().min().unwrap_or(1),
            conns.iter().copied().max().unwrap_or(1),
        );
        let node_first = self.rows.iter().find(|r| r.target == Target::Node);
        let node_peak = self
            .rows
            .iter()
            .filter(|r| matches!(r.target, Target::Node | Target::NodeBudget))
            .filter_map(|r| r.rss_peak_mib)
            .reduce(f64::max);
        vec![
            Check {
                name: format!("node CPU per request, {}", conns_label(high)),
                value: self.ratio(high, |r| r.cpu_us_per_req),
                unit: "x floor",
                limit: MAX_CPU_RATIO,
                at_most: true,
            },
            Check {
                name: format!("node added p50, {}", conns_label(low)),
                value: self.ratio(low, |r| r.added_p50_us.map(|v| v as f64)),
                unit: "x floor",
                limit: MAX_ADDED_P50_RATIO,
                at_most: true,
            },
            Check {
                name: format!("node req/s, {}", conns_label(high)),
                value: self.ratio(high, |r| Some(r.req_per_s)),
                unit: "x floor",
                limit: MIN_THROUGHPUT_RATIO,
                at_most: false,
            },
            Check {
                name: "node RSS idle".into(),
                value: node_first.and_then(|r| r.rss_before_mib),
                unit: "MiB",
                limit: MAX_RSS_IDLE_MIB,
                at_most: true,
            },
            Check {
                name: "node RSS peak".into(),
                value: node_peak,
                unit: "MiB",
                limit: MAX_RSS_PEAK_MIB,
                at_most: true,
            },
        ]
    }

    /// The human-readable report.
    pub fn table(&self) -> String {
        let c = &self.context;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "switchyard-bench: nproc {}, CLK_TCK {}{}, {} s warm-up + {} s measured per cell, \
             closed loop, non-streaming, loopback",
            c.nproc,
            c.clk_tck,
            if c.clk_tck_assumed { " (assumed)" } else { "" },
            c.warmup_s,
            c.duration_s
        );
        let _ = writeln!(out, "switchyard: {}", c.switchyard);
        if c.debug_build {
            let _ = writeln!(
                out,
                "WARNING: a debug build of switchyard; build with --release for figures that mean anything"
            );
        }
        let _ = writeln!(
            out,
            "Absolute figures drift between runs on a shared machine: compare the node/floor \
             ratios, taken in this same run.\n"
        );
        let _ = writeln!(
            out,
            "{:<12}{:>6}{:>10}{:>9}{:>9}{:>9}{:>9}{:>10}{:>10}{:>10}{:>10}{:>8}{:>8}",
            "target",
            "conns",
            "req/s",
            "p50 µs",
            "p99 µs",
            "+p50 µs",
            "+p99 µs",
            "CPU µs/r",
            "mock µs/r",
            "RSS0 MiB",
            "RSS^ MiB",
            "errors",
            "reconn"
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{:<12}{:>6}{:>10.0}{:>9}{:>9}{:>9}{:>9}{:>10}{:>10}{:>10}{:>10}{:>8}{:>8}",
                r.target.name(),
                r.conns,
                r.req_per_s,
                r.p50_us,
                r.p99_us,
                dash(r.added_p50_us),
                dash(r.added_p99_us),
                dash1(r.cpu_us_per_req),
                dash1(r.mock_cpu_us_per_req),
                dash1(r.rss_before_mib),
                dash1(r.rss_peak_mib),
                r.errors,
                r.reconnects
            );
        }
        let _ = writeln!(
            out,
            "  CPU µs/r: CPU time of the floor or node process per request; mock µs/r: the mock's; \
             RSS0: VmRSS before the cell; RSS^: VmHWM after it."
        );
        if self.has_budget_rows() {
            let _ = writeln!(
                out,
                "  node: the plain key, no budget (budgets off); node+budget: the same node, a key \
                 with a ${} budget (budgets on: allowance debit per request, settlement through \
                 Raft every 100 ms).",
                crate::fleet::BUDGET_USD
            );
        }
        let _ = writeln!(out);

        let conns = self.conns();
        let _ = write!(out, "{:<22}", "node / floor");
        for n in &conns {
            let _ = write!(out, "{:>12}", conns_label(*n));
        }
        let _ = writeln!(out);
        for (name, _, column) in RATIO_COLUMNS {
            let _ = write!(out, "  {name:<20}");
            for &n in &conns {
                let cell = self
                    .ratio(n, column)
                    .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}x"));
                let _ = write!(out, "{cell:>12}");
            }
            let _ = writeln!(out);
        }

        if self.has_budget_rows() {
            let _ = write!(out, "\n{:<22}", "budgets on / off");
            for n in &conns {
                let _ = write!(out, "{:>12}", conns_label(*n));
            }
            let _ = writeln!(out);
            for (name, _, column) in BUDGET_COLUMNS {
                let _ = write!(out, "  {name:<20}");
                for &n in &conns {
                    let cell = self
                        .ratio_of(Target::NodeBudget, Target::Node, n, column)
                        .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}x"));
                    let _ = write!(out, "{cell:>12}");
                }
                let _ = writeln!(out);
            }
            if let Some(b) = &c.budget {
                let _ = writeln!(
                    out,
                    "  after the run the budget shows ${:.6} spent (settled through Raft), ${:.6} \
                     reserved in {} outstanding allowance(s)",
                    b.spent_micros as f64 / 1e6,
                    b.reserved_micros as f64 / 1e6,
                    b.outstanding_allowances
                );
            }
        }

        let _ = writeln!(out, "\ntargets (reported, not enforced)");
        for check in self.checks() {
            let _ = writeln!(
                out,
                "  {:<34}{:>14}   {} {} {:<8} {}",
                check.name,
                check
                    .value
                    .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2} {}", check.unit)),
                if check.at_most { "<=" } else { ">=" },
                check.limit,
                check.unit,
                check.verdict()
            );
        }

        for r in self.rows.iter().filter(|r| r.errors > 0) {
            let _ = writeln!(
                out,
                "\nerrors: {} at {} conns: {} (first: {})",
                r.target.name(),
                r.conns,
                r.errors,
                r.first_error.as_deref().unwrap_or("?")
            );
        }
        for log in c.logs.iter().filter(|l| l.lines > 0) {
            let _ = writeln!(
                out,
                "\nthe {} wrote {} log lines at RUST_LOG=warn ({}); first lines:\n  {}",
                log.name,
                log.lines,
                log.path.display(),
                log.head.join("\n  ")
            );
        }
        out
    }

    /// The machine-readable report.
    pub fn json(&self) -> Value {
        let c = &self.context;
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "target": r.target.name(),
                    "conns": r.conns,
                    "ok": r.ok,
                    "errors": r.errors,
                    "reconnects": r.reconnects,
                    "first_error": r.first_error,
                    "req_per_s": r.req_per_s,
                    "p50_us": r.p50_us,
                    "p99_us": r.p99_us,
                    "max_us": r.max_us,
                    "added_p50_us": r.added_p50_us,
                    "added_p99_us": r.added_p99_us,
                    "cpu_us_per_req": r.cpu_us_per_req,
                    "mock_cpu_us_per_req": r.mock_cpu_us_per_req,
                    "rss_before_mib": r.rss_before_mib,
                    "rss_peak_mib": r.rss_peak_mib,
                })
            })
            .collect();
        let ratios: Vec<Value> = self
            .conns()
            .into_iter()
            .map(|n| {
                let mut ratio = serde_json::Map::new();
                ratio.insert("conns".into(), n.into());
                for (_, key, column) in RATIO_COLUMNS {
                    ratio.insert(key.into(), json!(self.ratio(n, column)));
                }
                Value::Object(ratio)
            })
            .collect();
        let budget_ratios: Vec<Value> = if self.has_budget_rows() {
            self.conns()
                .into_iter()
                .map(|n| {
                    let mut ratio = serde_json::Map::new();
                    ratio.insert("conns".into(), n.into());
                    for (_, key, column) in BUDGET_COLUMNS {
                        ratio.insert(
                            key.into(),
                            json!(self.ratio_of(Target::NodeBudget, Target::Node, n, column)),
                        );
                    }
                    Value::Object(ratio)
                })
                .collect()
        } else {
            Vec::new()
        };
        let budget = c.budget.map(|b| {
            json!({
                "spent_micros": b.spent_micros,
                "reserved_micros": b.reserved_micros,
                "outstanding_allowances": b.outstanding_allowances,
            })
        });
        let checks: Vec<Value> = self
            .checks()
            .iter()
            .map(|k| {
                json!({
                    "name": k.name,
                    "value": k.value,
                    "unit": k.unit,
                    "limit": k.limit,
                    "at_most": k.at_most,
                    "verdict": k.verdict(),
                })
            })
            .collect();
        let logs: Vec<Value> = c
            .logs
            .iter()
            .map(|l| json!({"process": l.name, "path": l.path, "lines": l.lines, "head": l.head}))
            .collect();
        json!({
            "nproc": c.nproc,
            "clk_tck": c.clk_tck,
            "clk_tck_assumed": c.clk_tck_assumed,
            "warmup_s": c.warmup_s,
            "duration_s": c.duration_s,
            "switchyard": c.switchyard,
            "debug_build": c.debug_build,
            "note": "absolute figures drift between runs on a shared machine; compare the node/floor ratios",
            "rows": rows,
            "node_over_floor": ratios,
            "budgets_on_over_off": budget_ratios,
            "budget_after_run": budget,
            "targets": checks,
            "logs": logs,
        })
    }
}

impl Check {
    fn verdict(&self) -> &'static str {
        match self.value {
            None => "n/a",
            Some(v) if (self.at_most && v <= self.limit) || (!self.at_most && v >= self.limit) => {
                "PASS"
            }
            Some(_) => "MISS",
        }
    }
}

fn conns_label(n: usize) -> String {
    if n == 1 {
        "1 conn".to_owned()
    } else {
        format!("{n} conns")
    }
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn dash(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn dash1(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

//! The seeded workload: which tasks arrive, and when. Every pass of the study replays the same
//! list, so the strategies differ only in how they route it.
//!
//! Each task carries the tier it needs, known by construction (a proof needs a large model, a
//! translation does not). That label is the study's own, written here without the gateway's
//! classifier, so a pass can count the requests the gateway served below the tier they needed.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// How capable a model a task needs, and how capable a served model is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Short chat, translation, extraction.
    Small,
    /// Code, tool use, long documents.
    Medium,
    /// Proofs and multi-step reasoning.
    Large,
}

/// The kinds of task in the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// A one-line question or translation.
    Chat,
    /// A question about a fenced code snippet.
    Code,
    /// A question with declared tools the model must call.
    Tools,
    /// A proof or a "step by step" word problem.
    Reasoning,
    /// Summarising a document of 4,500 to 12,000 characters.
    Long,
}

/// One request of the workload.
#[derive(Clone, Debug)]
pub struct Task {
    /// What kind of task it is.
    pub kind: TaskKind,
    /// The tier it needs.
    pub needs: Tier,
    /// Offset of its arrival from the start of the pass.
    pub at: Duration,
    /// The chat completion body without `model` (each pass sets the model it asks for).
    pub body: Value,
}

/// The mix, in percent: most traffic is short chat, as in a typical assistant product; long
/// documents are few but carry most of the prompt tokens.
const MIX_PCT: [(TaskKind, u32); 5] = [
    (TaskKind::Chat, 40),
    (TaskKind::Code, 20),
    (TaskKind::Tools, 15),
    (TaskKind::Reasoning, 15),
    (TaskKind::Long, 10),
];

/// Shortest long document, in characters: above the 4,000 characters at which a prompt needs a
/// medium model.
const LONG_MIN_CHARS: usize = 4_500;
/// Longest long document: well below the 32,000 characters that would need a large model.
const LONG_MAX_CHARS: usize = 12_000;

impl Tier {
    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Small => "small",
            Tier::Medium => "medium",
            Tier::Large => "large",
        }
    }
}

impl TaskKind {
    /// The tier this kind of task needs.
    pub fn needs(self) -> Tier {
        match self {
            TaskKind::Chat => Tier::Small,
            TaskKind::Code | TaskKind::Tools | TaskKind::Long => Tier::Medium,
            TaskKind::Reasoning => Tier::Large,
        }
    }

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Chat => "chat",
            TaskKind::Code => "code",
            TaskKind::Tools => "tools",
            TaskKind::Reasoning => "reasoning",
            TaskKind::Long => "long document",
        }
    }

    /// Every kind, in report order.
    pub const ALL: [TaskKind; 5] = [
        TaskKind::Chat,
        TaskKind::Code,
        TaskKind::Tools,
        TaskKind::Reasoning,
        TaskKind::Long,
    ];
}

/// `n` tasks drawn from `seed`, arriving as a Poisson process of `rate_per_s` requests a second
/// (open loop: arrivals do not wait for answers, so a slow strategy cannot slow its own load).
pub fn generate(seed: u64, n: usize, rate_per_s: f64) -> Vec<Task> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut at_s = 0.0_f64;
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        // Exponential gaps: -ln(1 - u) / rate, with u in [0, 1).
        let u: f64 = rng.random();
        at_s += -(1.0 - u).ln() / rate_per_s;
        let kind = pick_kind(&mut rng);
        tasks.push(Task {
            kind,
            needs: kind.needs(),
            at: Duration::from_secs_f64(at_s),
            body: body(kind, &mut rng),
        });
    }
    tasks
}

fn pick_kind(rng: &mut StdRng) -> TaskKind {
    let total: u32 = MIX_PCT.iter().map(|(_, p)| p).sum();
    let mut pick = rng.random_range(0..total);
    for (kind, pct) in MIX_PCT {
        if pick < pct {
            return kind;
        }
        pick -= pct;
    }
    TaskKind::Chat
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// The request body of one task. The texts avoid the words and signs that would move a task
/// into another tier (no reasoning phrases outside reasoning tasks, no code outside code tasks),
/// so the label stays true.
fn body(kind: TaskKind, rng: &mut StdRng) -> Value {
    match kind {
        TaskKind::Chat => {
            let text = match rng.random_range(0..4) {
                0 => format!(
                    "Translate '{}' into {}.",
                    pick(
                        rng,
                        &["good morning", "see you tomorrow", "thank you very much"]
                    ),
                    pick(rng, &["French", "German", "Japanese", "Portuguese"])
                ),
                1 => format!(
                    "Suggest a catchy title for a blog post about {}.",
                    pick(rng, &["home gardening", "remote work", "city cycling"])
                ),
                2 => format!(
                    "What is the capital of {}?",
                    pick(rng, &["Chile", "Kenya", "Norway", "Vietnam"])
                ),
                _ => format!(
                    "Write a friendly two-line reply declining a meeting on {}.",
                    pick(rng, &["Monday", "Thursday", "Friday"])
                ),
            };
            json!({"messages": [{"role": "user", "content": text}], "max_tokens": 64})
        }
        TaskKind::Code => {
            let n = rng.random_range(256..1_000);
            let text = match rng.random_range(0..3) {
                0 => format!(
                    "Why does this fail to compile?\n```rust\nfn main() {{ let x: u8 = {n}; println!(\"{{x}}\"); }}\n```"
                ),
                1 => format!(
                    "Review this function and suggest a fix for empty input:\n```python\ndef nth_smallest(items):\n    return sorted(items)[{}]\n```",
                    n % 7
                ),
                _ => format!(
                    "What does this print, and why?\n```js\nconsole.log([{n}, {}].map(x => x * 2));\n```",
                    n / 3
                ),
            };
            json!({"messages": [{"role": "user", "content": text}], "max_tokens": 512})
        }
        TaskKind::Tools => {
            let city = pick(rng, &["Lisbon", "Osaka", "Denver", "Nairobi"]);
            json!({
                "messages": [{"role": "user", "content": format!("What will the weather be in {city} tomorrow?")}],
                "tools": [{
                    "type": "function",
                    "function": {
                        "name": "get_forecast",
                        "description": "Weather forecast for a city",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "city": {"type": "string"},
                                "days": {"type": "integer"},
                                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
                            },
                            "required": ["city"]
                        }
                    }
                }],
                "tool_choice": "required",
                "max_tokens": 256
            })
        }
        TaskKind::Reasoning => {
            let a = rng.random_range(2..9);
            let b = rng.random_range(10..90);
            let text = match rng.random_range(0..3) {
                0 => format!("Prove that the sum of the first {b} odd numbers is {b} squared."),
                1 => format!(
                    "A train leaves at {a}:00 at {b} km/h; a second leaves two hours later at {} km/h on the same track. When does the second catch up? Solve it step by step.",
                    b + 20
                ),
                _ => format!(
                    "Derive a closed form for the recurrence a(n) = {a} a(n-1) + {b} with a(0) = 1, and check it for n = 3."
                ),
            };
            json!({"messages": [{"role": "user", "content": text}], "max_tokens": 1_024})
        }
        TaskKind::Long => {
            let chars = rng.random_range(LONG_MIN_CHARS..LONG_MAX_CHARS);
            let text = format!(
                "Summarise these meeting notes in three bullet points.\n\n{}",
                notes(rng, chars)
            );
            json!({"messages": [{"role": "user", "content": text}], "max_tokens": 256})
        }
    }
}

/// Meeting-notes prose of about `chars` characters, from words that are neither code signs nor
/// reasoning phrases.
fn notes(rng: &mut StdRng, chars: usize) -> String {
    const WORDS: &[&str] = &[
        "the",
        "team",
        "agreed",
        "quarter",
        "roadmap",
        "customer",
        "launch",
        "budget",
        "hiring",
        "metrics",
        "feedback",
        "release",
        "migration",
        "vendor",
        "contract",
        "support",
        "onboarding",
        "pipeline",
        "forecast",
        "revenue",
        "churn",
        "design",
        "review",
        "schedule",
        "priority",
        "risk",
        "staffing",
        "partner",
        "region",
        "pricing",
        "survey",
        "timeline",
        "owner",
        "next",
        "week",
        "follow",
        "up",
        "with",
        "on",
        "for",
        "and",
        "by",
        "before",
        "after",
        "sales",
        "marketing",
        "finance",
        "legal",
        "security",
        "audit",
        "dashboard",
    ];
    let mut out = String::with_capacity(chars + 64);
    while out.len() < chars {
        let words = rng.random_range(8..16);
        for w in 0..words {
            if w > 0 {
                out.push(' ');
            }
            out.push_str(pick(rng, WORDS));
        }
        out.push_str(". ");
    }
    out
}

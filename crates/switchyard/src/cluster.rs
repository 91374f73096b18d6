//! `switchyard cluster up`: the zero-setup local cluster. It starts a fleet of mock providers and
//! N nodes as child processes, writes `DIR/cluster.json`, prints the endpoints and the demo key,
//! and stays in the foreground until Ctrl-C, when it stops every child it started.
//!
//! The fleet serves every demo model from at least two providers with different prices and
//! latencies: a gpt-4o-mini-like and a gpt-4o-like chat model and an embedding model on two
//! OpenAI-format mocks, and a Claude Haiku-like model on an Anthropic-format mock with an
//! OpenAI-format fallback (exercising translation). Real provider keys found in the environment
//! (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`) add the real providers as further targets.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use switchyard_core::{TcpTransport, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// `cluster` subcommands.
#[derive(clap::Subcommand)]
pub enum ClusterCommand {
    /// Start a local cluster and stay in the foreground until Ctrl-C.
    Up(UpArgs),
}

/// Arguments of `cluster up`.
#[derive(clap::Args)]
pub struct UpArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// Directory for configuration, logs and cluster.json.
    #[arg(long, default_value = ".switchyard")]
    data_dir: PathBuf,
    /// First node HTTP port (nodes use consecutive ports; a busy one is replaced by a free one).
    #[arg(long, default_value_t = 8081)]
    http_port: u16,
    /// First mock provider port.
    #[arg(long, default_value_t = 7001)]
    mock_port: u16,
    /// First node gRPC port (Raft and admin).
    #[arg(long, default_value_t = 9081)]
    grpc_port: u16,
}

/// One mock of the demo fleet.
struct MockSpec {
    name: &'static str,
    /// Provider kind the nodes use to talk to it.
    kind: &'static str,
    ttft_ms: u64,
    per_token_ms: u64,
    /// (model, input, output) micro-dollars per million tokens.
    prices: &'static [(&'static str, u64, u64)],
}

/// The demo fleet. mock-a charges list prices and is fast; mock-b resells 20% cheaper but is
/// slower; mock-c is an Anthropic-format provider at list price.
const FLEET: [MockSpec; 3] = [
    MockSpec {
        name: "mock-a",
        kind: "openai",
        ttft_ms: 20,
        per_token_ms: 2,
        prices: &[
            ("gpt-4o-mini", 150_000, 600_000),
            ("gpt-4o", 2_500_000, 10_000_000),
            ("text-embedding-3-small", 20_000, 0),
        ],
    },
    MockSpec {
        name: "mock-b",
        kind: "openai",
        ttft_ms: 80,
        per_token_ms: 6,
        prices: &[
            ("gpt-4o-mini", 120_000, 480_000),
            ("gpt-4o", 2_000_000, 8_000_000),
            ("text-embedding-3-small", 16_000, 0),
            ("claude-3-5-haiku", 960_000, 4_800_000),
        ],
    },
    MockSpec {
        name: "mock-c",
        kind: "anthropic",
        ttft_ms: 40,
        per_token_ms: 3,
        prices: &[("claude-3-5-haiku", 800_000, 4_000_000)],
    },
];

/// A demo route: (public model, strategy, [(provider, upstream model)], fallback models).
type DemoRoute = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

/// Demo routes.
const ROUTES: [DemoRoute; 4] = [
    (
        "gpt-4o-mini",
        "priority",
        &[("mock-a", "gpt-4o-mini"), ("mock-b", "gpt-4o-mini")],
        &[],
    ),
    (
        "gpt-4o",
        "priority",
        &[("mock-a", "gpt-4o"), ("mock-b", "gpt-4o")],
        &["gpt-4o-mini"],
    ),
    (
        "claude-3-5-haiku",
        "priority",
        &[
            ("mock-c", "claude-3-5-haiku"),
            ("mock-b", "claude-3-5-haiku"),
        ],
        &[],
    ),
    (
        "text-embedding-3-small",
        "priority",
        &[
            ("mock-a", "text-embedding-3-small"),
            ("mock-b", "text-embedding-3-small"),
        ],
        &[],
    ),
];

/// How long children get to stop after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// How long to wait for every child to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a `cluster` subcommand.
pub async fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Up(args) => up(args).await,
    }
}

struct Running {
    name: String,
    child: Child,
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let secrets = Secrets::load_or_create(dir)?;
    let exe = std::env::current_exe().context("cannot find the switchyard executable")?;
    let mut children: Vec<Running> = Vec::new();
    let result = start_all(&args, &exe, &secrets, &mut children).await;
    match result {
        Ok(summary) => {
            print_summary(&summary);
            supervise(&mut children).await;
        }
        Err(e) => {
            stop_all(&mut children).await;
            return Err(e);
        }
    }
    stop_all(&mut children).await;
    Ok(())
}

/// Persistent secrets of a cluster directory, so `cluster up` on the same directory brings the
/// same cluster (and keys) back.
struct Secrets {
    cluster_secret: String,
    demo_key: String,
    admin_token: String,
    /// Seals provider credentials in the replicated state (`1:<64 hex>`).
    master_key: String,
}

impl Secrets {
    fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("secrets.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?;
            let get = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .with_context(|| format!("{} has no {k}", path.display()))
            };
            return Ok(Self {
                cluster_secret: get("cluster_secret")?,
                demo_key: get("demo_key")?,
                admin_token: get("admin_token")?,
                master_key: get("master_key")?,
            });
        }
        let fresh = || {
            switchyard_core::secret::generate_virtual_key()
                .expose()
                .clone()
        };
        let s = Self {
            cluster_secret: fresh(),
            demo_key: fresh(),
            admin_token: fresh().replacen("sk-sy-", "sy-admin-", 1),
            master_key: format!("1:{}", switchyard_core::secret::random_hex(32)),
        };
        let body = json!({"cluster_secret": s.cluster_secret, "demo_key": s.demo_key, "admin_token": s.admin_token, "master_key": s.master_key});
        write_private(&path, &serde_json::to_string_pretty(&body)?)?;
        Ok(s)
    }
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

struct Summary {
    cluster_json: Value,
    path: PathBuf,
}

async fn start_all(
    args: &UpArgs,
    exe: &Path,
    secrets: &Secrets,
    children: &mut Vec<Running>,
) -> anyhow::Result<Summary> {
    let dir = &args.data_dir;
    let mut providers_json = Vec::new();
    let mut mock_addrs = Vec::new();
    for (i, m) in FLEET.iter().enumerate() {
        let addr = free_addr(args.mock_port.saturating_add(u16::try_from(i)?)).await?;
        let mut cmd = Command::new(exe);
        cmd.arg("mock")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--name")
            .arg(m.name);
        cmd.arg("--ttft-ms")
            .arg(m.ttft_ms.to_string())
            .arg("--per-token-ms")
            .arg(m.per_token_ms.to_string());
        for (model, i, o) in m.prices {
            cmd.arg("--price").arg(format!("{model}={i}:{o}"));
        }
        children.push(spawn(cmd, m.name, dir)?);
        mock_addrs.push(addr);
        providers_json.push(json!({"name": m.name, "url": format!("http://{addr}"), "control": format!("http://{addr}/_mock"), "kind": m.kind}));
    }
    for addr in &mock_addrs {
        wait_ready(*addr, "/_mock/ledger").await?;
    }
    let mut nodes_json = Vec::new();
    let mut node_addrs = Vec::new();
    let mut members = Vec::new();
    for id in 1..=args.nodes {
        let http = free_addr(args.http_port.saturating_add(id - 1)).await?;
        let grpc = free_addr(args.grpc_port.saturating_add(id - 1)).await?;
        members.push((id, http, grpc));
    }
    for &(id, addr, grpc) in &members {
        let config_path = dir.join(format!("node-{id}.toml"));
        let data_dir = std::path::absolute(dir.join(format!("node-{id}")))?;
        std::fs::write(
            &config_path,
            node_config(id, addr, grpc, &data_dir, &members, &mock_addrs),
        )
        .with_context(|| format!("cannot write {}", config_path.display()))?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve").arg("--config").arg(&config_path);
        cmd.env("SWITCHYARD_CLUSTER_SECRET", &secrets.cluster_secret)
            .env("SWITCHYARD_DEMO_KEY", &secrets.demo_key)
            .env("SWITCHYARD_ADMIN_TOKEN", &secrets.admin_token)
            .env("SWITCHYARD_MASTER_KEY", &secrets.master_key);
        let running = spawn(cmd, &format!("node-{id}"), dir)?;
        let pid = running.child.id().unwrap_or(0);
        children.push(running);
        node_addrs.push(addr);
        nodes_json.push(json!({"id": id, "http": format!("http://{addr}"), "grpc": format!("http://{grpc}"), "pid": pid, "region": "local"}));
    }
    for addr in &node_addrs {
        wait_ready(*addr, "/readyz").await?;
    }
    let cluster_json = json!({
        "nodes": nodes_json,
        "admin_token": secrets.admin_token,
        "demo_key": secrets.demo_key,
        "providers": providers_json,
    });
    let path = dir.join("cluster.json");
    write_private(&path, &serde_json::to_string_pretty(&cluster_json)?)?;
    Ok(Summary { cluster_json, path })
}

/// The node's configuration file: the mock fleet, real providers whose keys are in the
/// environment, and the demo routes.
fn node_config(
    id: u16,
    addr: SocketAddr,
    grpc: SocketAddr,
    data_dir: &Path,
    members: &[(u16, SocketAddr, SocketAddr)],
    mocks: &[SocketAddr],
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Written by `switchyard cluster up`; edits are overwritten on the next run.\n"
    );
    let _ = writeln!(
        t,
        "[node]\nid = {id}\nlisten_http = \"{addr}\"\nregion = \"local\"\ncluster_secret_env = \"SWITCHYARD_CLUSTER_SECRET\"\n"
    );
    // Node 1 initialises the cluster on first start (a no-op afterwards); every node lists the
    // same voters.
    let _ = writeln!(
        t,
        "[control]\ndata_dir = \"{}\"\nlisten_grpc = \"{grpc}\"\nbootstrap = {}\nadmin_token_env = \"SWITCHYARD_ADMIN_TOKEN\"",
        data_dir.display(),
        id == 1
    );
    for (mid, mhttp, mgrpc) in members {
        let _ = writeln!(
            t,
            "[[control.members]]\nid = {mid}\nhttp = \"http://{mhttp}\"\ngrpc = \"http://{mgrpc}\""
        );
    }
    t.push('\n');
    let _ = writeln!(
        t,
        "[[keys]]\nname = \"demo\"\nkey_env = \"SWITCHYARD_DEMO_KEY\"\n"
    );
    for (m, addr) in FLEET.iter().zip(mocks) {
        let _ = writeln!(
            t,
            "[[providers]]\nname = \"{}\"\nkind = \"{}\"\nbase_url = \"http://{addr}/v1\"\ninternal = true\nregion = \"local\"",
            m.name, m.kind
        );
        for (model, i, o) in m.prices {
            let _ = writeln!(
                t,
                "[[providers.models]]\nname = \"{model}\"\ninput_micros_per_mtok = {i}\noutput_micros_per_mtok = {o}"
            );
        }
        t.push('\n');
    }
    let real_openai = std::env::var("OPENAI_API_KEY").is_ok_and(|v| !v.is_empty());
    let real_anthropic = std::env::var("ANTHROPIC_API_KEY").is_ok_and(|v| !v.is_empty());
    if real_openai {
        let _ = writeln!(
            t,
            "[[providers]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"https://api.openai.com/v1\"\napi_key_env = \"OPENAI_API_KEY\"\n"
        );
    }
    if real_anthropic {
        let _ = writeln!(
            t,
            "[[providers]]\nname = \"anthropic\"\nkind = \"anthropic\"\nbase_url = \"https://api.anthropic.com/v1\"\napi_key_env = \"ANTHROPIC_API_KEY\"\n"
        );
    }
    for (model, strategy, targets, fallbacks) in ROUTES {
        let mut ts: Vec<String> = targets
            .iter()
            .map(|(p, m)| format!("{{ provider = \"{p}\", model = \"{m}\" }}"))
            .collect();
        // Real providers come after the mocks, so the demo stays free unless the mocks fail.
        if real_openai && !model.starts_with("claude") {
            ts.push(format!("{{ provider = \"openai\", model = \"{model}\" }}"));
        }
        if real_anthropic && model.starts_with("claude") {
            ts.push("{ provider = \"anthropic\", model = \"claude-3-5-haiku-latest\" }".to_owned());
        }
        let fb: Vec<String> = fallbacks.iter().map(|f| format!("\"{f}\"")).collect();
        let _ = writeln!(
            t,
            "[[routes]]\nmodel = \"{model}\"\nstrategy = \"{strategy}\"\ntargets = [{}]\nfallbacks = [{}]\n",
            ts.join(", "),
            fb.join(", ")
        );
    }
    t
}

fn spawn(mut cmd: Command, name: &str, dir: &Path) -> anyhow::Result<Running> {
    let log_path = dir.join("logs").join(format!("{name}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    Ok(Running {
        name: name.to_owned(),
        child,
    })
}

/// The preferred port on loopback if it is free, otherwise any free port.
async fn free_addr(preferred: u16) -> anyhow::Result<SocketAddr> {
    let t = TcpTransport;
    let want = SocketAddr::from(([127, 0, 0, 1], preferred));
    if let Ok(l) = t.bind(want).await {
        return Ok(l.local_addr()?);
    }
    let l = t.bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    Ok(l.local_addr()?)
}

/// Polls `GET path` until it answers 200.
async fn wait_ready(addr: SocketAddr, path: &str) -> anyhow::Result<()> {
    let poll = async {
        loop {
            if http_status(addr, path).await == Some(200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(READY_TIMEOUT, poll)
        .await
        .with_context(|| format!("{addr}{path} did not become ready (see the logs directory)"))
}

async fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpTransport
        .connect(&addr.ip().to_string(), addr.port(), true)
        .await
        .ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .ok()?;
    let mut buf = [0u8; 32];
    let n = s.read(&mut buf).await.ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

#[expect(
    clippy::print_stdout,
    reason = "cluster up prints its endpoints for the user"
)]
fn print_summary(s: &Summary) {
    let c = &s.cluster_json;
    println!("Switchyard cluster is up ({}).", s.path.display());
    if let Some(nodes) = c.get("nodes").and_then(Value::as_array) {
        for n in nodes {
            println!(
                "  node {}  {}",
                n["id"],
                n["http"].as_str().unwrap_or_default()
            );
        }
    }
    if let Some(ps) = c.get("providers").and_then(Value::as_array) {
        for p in ps {
            println!(
                "  provider {}  {}  (control {})",
                p["name"].as_str().unwrap_or_default(),
                p["url"].as_str().unwrap_or_default(),
                p["control"].as_str().unwrap_or_default()
            );
        }
    }
    println!(
        "  demo key     {}",
        c["demo_key"].as_str().unwrap_or_default()
    );
    println!(
        "  admin token  {}",
        c["admin_token"].as_str().unwrap_or_default()
    );
    let first = c["nodes"][0]["http"].as_str().unwrap_or_default();
    println!(
        "\nTry:\n  curl {first}/v1/chat/completions -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' \\\n    -d '{{\"model\":\"gpt-4o-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'",
        c["demo_key"].as_str().unwrap_or_default()
    );
    println!(
        "\nAdmin:\n  switchyard ctl --endpoint {} --token {} cluster status",
        c["nodes"][0]["grpc"].as_str().unwrap_or_default(),
        c["admin_token"].as_str().unwrap_or_default()
    );
    println!("\nPress Ctrl-C to stop every process.");
}

/// Waits for Ctrl-C or SIGTERM, reporting children that exit on their own meanwhile.
async fn supervise(children: &mut [Running]) {
    let signal = crate::serve::wait_for_signal();
    tokio::pin!(signal);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut signal => return,
            _ = tick.tick() => {
                for r in children.iter_mut() {
                    if let Ok(Some(status)) = r.child.try_wait() {
                        tracing::warn!(child = %r.name, %status, "child process exited");
                    }
                }
            }
        }
    }
}

/// SIGTERM to every child, then SIGKILL to those still running after the grace period.
async fn stop_all(children: &mut [Running]) {
    for r in children.iter() {
        if let Some(pid) = r.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
    }
    for r in children.iter_mut() {
        if tokio::time::timeout(STOP_GRACE, r.child.wait())
            .await
            .is_err()
        {
            let _ = r.child.kill().await;
        }
    }
}

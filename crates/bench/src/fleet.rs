//! The three processes under test: the mock provider, the floor proxy and the node, each on a
//! free loopback port, each with its stderr in a log file, each killed when the benchmark ends
//! (explicitly, and on drop as a backstop).
//!
//! The node is a single-node cluster (it bootstraps itself) with its Raft data under the run's
//! directory and its gRPC (Raft and admin) on a free loopback port, seeded with the plain bench
//! key and an admin token. For the budgets-on cells a second key with a budget is created with
//! `switchyard ctl keys create --budget-usd`, as an operator would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use http::{Method, StatusCode};
use tokio::process::{Child, ChildStdin, Command};

use crate::load::{self, BODY, CHAT_PATH, KEY};
use crate::procfs::{self, Memory};

/// A running process under test.
pub struct Process {
    /// Short name for the report.
    pub name: &'static str,
    /// Its pid, for `/proc`.
    pub pid: u32,
    /// Where it serves.
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
    /// Held open so the floor, which exits when its stdin closes, dies with us.
    _stdin: Option<ChildStdin>,
}

/// The mock, the floor and the node.
pub struct Fleet {
    /// The mock provider every path ends at.
    pub mock: Process,
    /// The floor proxy.
    pub floor: Process,
    /// The Switchyard node.
    pub node: Process,
    /// The node's gRPC address (Raft and admin).
    pub node_grpc: SocketAddr,
    /// The admin token seeded at the node's bootstrap.
    admin_token: String,
    /// The `switchyard` binary, for `ctl`.
    switchyard: PathBuf,
}

/// A key with a budget, created through the admin API.
#[derive(Clone, Debug)]
pub struct BudgetKey {
    /// Key id (`key_…`).
    pub id: String,
    /// The secret, sent as the bearer key.
    pub secret: Arc<str>,
}

/// What a budget held after the run, from `ctl budgets show`.
#[derive(Clone, Copy, Debug)]
pub struct BudgetState {
    /// Settled spend.
    pub spent_micros: u64,
    /// Held by outstanding allowances.
    pub reserved_micros: u64,
    /// Allowances outstanding.
    pub outstanding_allowances: u64,
}

/// What a process wrote to stderr over the run.
#[derive(Debug)]
pub struct LogSummary {
    /// Which process.
    pub name: &'static str,
    /// The log file.
    pub path: PathBuf,
    /// Lines written.
    pub lines: usize,
    /// The first few lines.
    pub head: Vec<String>,
}

/// How long a process may take to start serving.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Between readiness probes.
const READY_POLL: Duration = Duration::from_millis(50);
/// How long a killed process may take to be reaped.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Log lines quoted in the report.
const LOG_HEAD_LINES: usize = 5;
/// Environment variable the node reads its bootstrap admin token from.
const ADMIN_TOKEN_ENV: &str = "SWITCHYARD_BENCH_ADMIN_TOKEN";
/// Name of the key with a budget.
const BUDGET_KEY_NAME: &str = "bench-budget";
/// Its budget: far more than a run spends, so no request is refused for budget.
pub const BUDGET_USD: &str = "1000";
/// Bound on one `switchyard ctl` call.
const CTL_TIMEOUT: Duration = Duration::from_secs(20);

impl Fleet {
    /// Starts the mock, then the floor and the node, and waits until each answers a chat
    /// request with 200.
    ///
    /// # Errors
    /// A process did not start or did not become ready in time (its log is quoted).
    pub async fn start(switchyard: &Path, bench: &Path, dir: &Path) -> anyhow::Result<Self> {
        let mock_addr = free_addr()?;
        let mut mock_cmd = Command::new(switchyard);
        mock_cmd
            .arg("mock")
            .arg("--listen")
            .arg(mock_addr.to_string())
            .args([
                "--name",
                "bench-mock",
                "--price",
                "gpt-4o-mini=150000:600000",
            ])
            .env_remove("SWITCHYARD_MOCK_API_KEY");
        let mut mock = Process::spawn("mock", mock_cmd, dir, mock_addr, false)?;
        mock.wait_ready(Method::GET, "/v1/models", None).await?;
        mock.wait_ready(Method::POST, CHAT_PATH, Some(BODY)).await?;

        let floor_addr = free_addr()?;
        let mut floor_cmd = Command::new(bench);
        floor_cmd
            .arg("floor")
            .arg("--listen")
            .arg(floor_addr.to_string())
            .arg("--upstream")
            .arg(format!("http://{mock_addr}/v1"));
        let mut floor = Process::spawn("floor", floor_cmd, dir, floor_addr, true)?;

        let node_addr = free_addr()?;
        let node_grpc = free_addr()?;
        let config = dir.join("node.toml");
        std::fs::write(
            &config,
            node_config(node_addr, node_grpc, mock_addr, &dir.join("node-data")),
        )
        .with_context(|| format!("cannot write {}", config.display()))?;
        let admin_token = admin_token();
        let mut node_cmd = Command::new(switchyard);
        node_cmd
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env(ADMIN_TOKEN_ENV, &admin_token);
        let mut node = Process::spawn("node", node_cmd, dir, node_addr, false)?;

        floor
            .wait_ready(Method::POST, CHAT_PATH, Some(BODY))
            .await?;
        node.wait_ready(Method::GET, "/readyz", None).await?;
        node.wait_ready(Method::POST, CHAT_PATH, Some(BODY)).await?;
        Ok(Self {
            mock,
            floor,
            node,
            node_grpc,
            admin_token,
            switchyard: switchyard.to_owned(),
        })
    }

    /// Creates the key with a budget (`switchyard ctl keys create --budget-usd`) and waits until
    /// the node serves it. Retried until the admin token seeded at bootstrap is applied.
    ///
    /// # Errors
    /// `ctl` kept failing, printed something other than the key, or the node never served it.
    pub async fn create_budget_key(&mut self) -> anyhow::Result<BudgetKey> {
        let args = [
            "keys",
            "create",
            "--name",
            BUDGET_KEY_NAME,
            "--budget-usd",
            BUDGET_USD,
        ];
        let created = self.ctl_until_ok(&args).await?;
        let field = |name: &str| {
            created
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("`switchyard ctl keys create` printed no {name:?}"))
        };
        let key = BudgetKey {
            id: field("id")?,
            secret: Arc::from(field("key")?),
        };
        self.node
            .wait_ready_with(&key.secret, Method::POST, CHAT_PATH, Some(BODY))
            .await?;
        Ok(key)
    }

    /// The budget of `key` as the node's replicated state holds it (`ctl budgets show`).
    ///
    /// # Errors
    /// `ctl` failed or printed something unexpected.
    pub async fn budget_state(&mut self, key: &BudgetKey) -> anyhow::Result<BudgetState> {
        let shown = self
            .ctl_until_ok(&["budgets", "show", "--key", &key.id])
            .await?;
        let number = |name: &str| {
            shown
                .get(name)
                .and_then(serde_json::Value::as_u64)
                .with_context(|| format!("`switchyard ctl budgets show` printed no {name:?}"))
        };
        Ok(BudgetState {
            spent_micros: number("spent_micros")?,
            reserved_micros: number("reserved_micros")?,
            outstanding_allowances: number("outstanding_allowances")?,
        })
    }

    /// Runs `switchyard ctl --json ARGS` against the node until it succeeds (bounded by
    /// [`READY_TIMEOUT`]) and returns its JSON output.
    async fn ctl_until_ok(&mut self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.node.check_alive()?;
            let mut cmd = Command::new(&self.switchyard);
            cmd.arg("ctl")
                .arg("--endpoint")
                .arg(format!("http://{}", self.node_grpc))
                .arg("--json")
                .args(args)
                // The token through the environment, so it is not in the process list.
                .env("SWITCHYARD_TOKEN", &self.admin_token)
                .env_remove("SWITCHYARD_ENDPOINT")
                .stdin(Stdio::null())
                .kill_on_drop(true);
            let output = tokio::time::timeout(CTL_TIMEOUT, cmd.output())
                .await
                .context("`switchyard ctl` did not finish in time")?
                .context("cannot run `switchyard ctl`")?;
            let why = if output.status.success() {
                match serde_json::from_slice(&output.stdout) {
                    Ok(v) => return Ok(v),
                    Err(e) => format!("its output is not JSON: {e}"),
                }
            } else {
                format!(
                    "{}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                )
            };
            if Instant::now() >= deadline {
                bail!("`switchyard ctl {}` failed: {why}", args.join(" "));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// Fails if any process has exited.
    ///
    /// # Errors
    /// Which process exited, with its status and log.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for p in [&mut self.mock, &mut self.floor, &mut self.node] {
            p.check_alive()?;
        }
        Ok(())
    }

    /// Kills all three and summarises their logs.
    pub async fn stop(self) -> Vec<LogSummary> {
        let mut logs = Vec::new();
        for mut p in [self.node, self.floor, self.mock] {
            let _ = p.child.start_kill();
            let _ = tokio::time::timeout(STOP_TIMEOUT, p.child.wait()).await;
            logs.push(p.log_summary());
        }
        logs
    }
}

impl Process {
    fn spawn(
        name: &'static str,
        mut cmd: Command,
        dir: &Path,
        addr: SocketAddr,
        hold_stdin: bool,
    ) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        cmd.env("RUST_LOG", "warn")
            .stdin(if hold_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start the {name}"))?;
        let pid = child
            .id()
            .with_context(|| format!("the {name} has no pid"))?;
        let stdin = child.stdin.take();
        Ok(Self {
            name,
            pid,
            addr,
            child,
            log,
            _stdin: stdin,
        })
    }

    /// Current and peak RSS.
    ///
    /// # Errors
    /// The process is gone.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        procfs::memory(self.pid)
    }

    /// Polls until `method path` answers 200 to the plain bench key, bounded by
    /// [`READY_TIMEOUT`].
    async fn wait_ready(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&'static str>,
    ) -> anyhow::Result<()> {
        self.wait_ready_with(KEY, method, path, body).await
    }

    /// Polls until `method path` answers 200 to `key`, bounded by [`READY_TIMEOUT`].
    async fn wait_ready_with(
        &mut self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<&'static str>,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            self.check_alive()?;
            match load::once(self.addr, key, method.clone(), path, body).await {
                Ok((StatusCode::OK, _)) => return Ok(()),
                Ok((status, body)) => {
                    last = format!("HTTP {status}: {}", String::from_utf8_lossy(&body));
                }
                Err(e) => last = format!("{e:#}"),
            }
            tokio::time::sleep(READY_POLL).await;
        }
        bail!(
            "the {} at {} did not answer {method} {path} with 200 within {READY_TIMEOUT:?} \
             (last: {last}){}",
            self.name,
            self.addr,
            self.log_excerpt()
        )
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("the {} exited ({status}){}", self.name, self.log_excerpt());
        }
        Ok(())
    }

    fn log_summary(&self) -> LogSummary {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        LogSummary {
            name: self.name,
            path: self.log.clone(),
            lines: text.lines().count(),
            head: text
                .lines()
                .take(LOG_HEAD_LINES)
                .map(str::to_owned)
                .collect(),
        }
    }

    fn log_excerpt(&self) -> String {
        let s = self.log_summary();
        if s.lines == 0 {
            return String::new();
        }
        format!(
            "\n{} ({} lines) begins:\n  {}",
            s.path.display(),
            s.lines,
            s.head.join("\n  ")
        )
    }
}

/// A loopback port nobody holds right now (the OS picks it; released before use).
fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", 0)).context("cannot find a free port")?;
    Ok(listener.local_addr()?)
}

/// A fresh admin token (at least 16 characters, as the node requires). Loopback only and
/// gone with the run, so uniqueness matters, not unpredictability.
fn admin_token() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("sy-admin-bench-{}-{nanos:x}", std::process::id())
}

/// One key, one internal provider (the mock), one route; a single-node control plane (it
/// bootstraps itself, `members` being empty) with its data in `data_dir` and an admin token
/// read from [`ADMIN_TOKEN_ENV`].
fn node_config(node: SocketAddr, grpc: SocketAddr, mock: SocketAddr, data_dir: &Path) -> String {
    let data_dir = data_dir.display();
    format!(
        r#"[node]
id = 1
listen_http = "{node}"

[control]
data_dir = "{data_dir}"
listen_grpc = "{grpc}"
admin_token_env = "{ADMIN_TOKEN_ENV}"

[[keys]]
name = "bench"
key = "{KEY}"

[[providers]]
name = "bench-mock"
kind = "openai"
base_url = "http://{mock}/v1"
internal = true

[[routes]]
model = "gpt-4o-mini"
targets = [{{ provider = "bench-mock", model = "gpt-4o-mini" }}]
"#
    )
}

//! The three processes under test: the mock provider, the floor proxy and the node, each on a
//! free loopback port, each with its stderr in a log file, each killed when the benchmark ends
//! (explicitly, and on drop as a backstop).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

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
        let config = dir.join("node.toml");
        std::fs::write(&config, node_config(node_addr, mock_addr))
            .with_context(|| format!("cannot write {}", config.display()))?;
        let mut node_cmd = Command::new(switchyard);
        node_cmd.arg("serve").arg("--config").arg(&config);
        let mut node = Process::spawn("node", node_cmd, dir, node_addr, false)?;

        floor
            .wait_ready(Method::POST, CHAT_PATH, Some(BODY))
            .await?;
        node.wait_ready(Method::GET, "/readyz", None).await?;
        node.wait_ready(Method::POST, CHAT_PATH, Some(BODY)).await?;
        Ok(Self { mock, floor, node })
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

    /// Polls until `method path` answers 200, bounded by [`READY_TIMEOUT`].
    async fn wait_ready(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&'static str>,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            self.check_alive()?;
            match load::once(self.addr, method.clone(), path, body).await {
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

/// One key, one internal provider (the mock), one route.
fn node_config(node: SocketAddr, mock: SocketAddr) -> String {
    format!(
        r#"[node]
id = 1
listen_http = "{node}"

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

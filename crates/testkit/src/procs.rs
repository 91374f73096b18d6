//! [`ProcessCluster`]: N `switchyard serve` child processes (the real binary, one per node) over
//! an in-process mock provider, for failure tests that need a real `kill -9`. Each node gets a
//! TOML file in the format `switchyard cluster up` writes, free loopback ports and a data
//! directory under `target/tmp/<unique>/`; it logs (`RUST_LOG=info`) to a file next to them.
//! Admin goes through `switchyard ctl --json`, as an operator's scripts do.
//!
//! Process clusters run one at a time per test binary (a semaphore): their timing figures
//! (failover time) are measured on a machine with few cores, and three node processes per test
//! is already a full load there.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::sync::{Semaphore, SemaphorePermit, oneshot};

use crate::eventually;
use crate::http;

/// The provider every process cluster routes to.
pub const MOCK: &str = "mock-a";
/// The one routed model.
pub const MODEL: &str = "gpt-4o-mini";
/// Its price on the mock and in the nodes' `[[providers.models]]`: micro-dollars per million
/// input and output tokens.
pub const PRICE: (u64, u64) = (150_000, 600_000);

/// How long a started or restarted process may take to answer `/healthz`, and a fresh cluster
/// to have a leader and its seeded admin token everywhere.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on one `ctl` run (ctl's own gRPC deadline is 15 s).
const CTL_TIMEOUT: Duration = Duration::from_secs(20);
/// Log lines per node shown when a test fails.
const TAIL_LINES: usize = 30;
/// Snapshot piece size nodes send (`[control] snapshot_chunk_bytes`): small, so that a node
/// catching up by snapshot gets it in many pieces, as a large production state would arrive.
pub const SNAPSHOT_CHUNK_BYTES: u64 = 16 * 1024;

/// One process cluster at a time in a test binary.
static GATE: Semaphore = Semaphore::const_new(1);

/// Runs `switchyard ctl --json` with the cluster's admin token; cheap to clone into tasks.
#[derive(Clone, Debug)]
pub struct Ctl {
    bin: PathBuf,
    token: String,
}

impl Ctl {
    /// `switchyard ctl --endpoint <grpc> --token T --json <args>`, its stdout parsed as JSON.
    ///
    /// # Errors
    /// When ctl exits non-zero (the error carries its stderr), prints something that is not
    /// JSON, or takes longer than 20 s.
    pub async fn run(&self, grpc: &str, args: &[&str]) -> anyhow::Result<Value> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("ctl")
            .arg("--endpoint")
            .arg(grpc)
            .arg("--token")
            .arg(&self.token)
            .arg("--json")
            .args(args)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(CTL_TIMEOUT, cmd.output())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "ctl {} via {grpc} took over {CTL_TIMEOUT:?}",
                    args.join(" ")
                )
            })?
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "ctl {} via {grpc} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_str(stdout.trim())
            .with_context(|| format!("ctl {} printed no JSON: {stdout:?}", args.join(" ")))
    }
}

/// One node process.
struct ProcNode {
    http: SocketAddr,
    grpc: SocketAddr,
    config: PathBuf,
    log: PathBuf,
    /// None while the node is down.
    child: Option<Child>,
    /// Times it was started.
    starts: u32,
}

/// A cluster of `switchyard serve` processes and one in-process mock provider.
pub struct ProcessCluster {
    bin: PathBuf,
    dir: PathBuf,
    cluster_secret: String,
    admin_token: String,
    demo_key: String,
    /// Seals provider credentials in the replicated state, as `cluster up` sets it.
    master_key: String,
    mock_url: String,
    /// Dropping it stops the mock.
    _mock_stop: oneshot::Sender<()>,
    nodes: BTreeMap<u64, ProcNode>,
    /// Keep the directory: the test failed.
    failed: bool,
    _gate: SemaphorePermit<'static>,
}

impl ProcessCluster {
    /// Starts the mock and `n` nodes (node 1 bootstraps the cluster with all of them as voters),
    /// then waits until every node is ready (`/readyz` 200: it knows a leader) and accepts the
    /// admin token, and the demo key is in the replicated state.
    ///
    /// # Errors
    /// When the binary cannot be found or built, a process cannot start, or the cluster is not
    /// ready within 30 s (the error carries the tail of every node's log).
    pub async fn start(n: u64) -> anyhow::Result<Self> {
        crate::init_tracing();
        let gate = GATE
            .acquire()
            .await
            .map_err(|e| anyhow::anyhow!("process cluster gate closed: {e}"))?;
        let bin = switchyard_binary().await?;
        let dir = fresh_dir()?;
        let (mock_url, mock_stop) = start_mock().await?;
        let fresh = || {
            switchyard_core::secret::generate_virtual_key()
                .expose()
                .clone()
        };
        let mut c = ProcessCluster {
            bin,
            dir,
            cluster_secret: fresh(),
            admin_token: fresh().replacen("sk-sy-", "sy-admin-", 1),
            demo_key: fresh(),
            master_key: format!("1:{}", switchyard_core::secret::random_hex(32)),
            mock_url,
            _mock_stop: mock_stop,
            nodes: BTreeMap::new(),
            failed: false,
            _gate: gate,
        };
        match c.boot(n).await {
            Ok(()) => Ok(c),
            Err(e) => Err(c.fail(e)),
        }
    }

    async fn boot(&mut self, n: u64) -> anyhow::Result<()> {
        anyhow::ensure!(n > 0, "a cluster needs at least one node");
        for id in 1..=n {
            self.add_node_entry(id)?;
        }
        let members: Vec<(u64, SocketAddr, SocketAddr)> = self
            .nodes
            .iter()
            .map(|(id, p)| (*id, p.http, p.grpc))
            .collect();
        for id in 1..=n {
            self.write_config(id, id == 1, &members)?;
        }
        for id in 1..=n {
            self.spawn(id)?;
        }
        for id in 1..=n {
            self.wait_healthy(id).await?;
        }
        for id in 1..=n {
            self.wait_ready(id, START_TIMEOUT).await?;
        }
        // Seeding (demo key, admin token) runs in the background on node 1 once there is a
        // leader; every node must have applied it before a test's first ctl call.
        let ctl = self.ctl_handle();
        for id in 1..=n {
            let grpc = self.grpc(id);
            let (ctl, grpc) = (&ctl, &grpc);
            eventually(
                START_TIMEOUT,
                &format!("node {id} accepts the admin token and lists the demo key"),
                move || async move {
                    let keys = ctl.run(grpc, &["keys", "list"]).await.ok()?;
                    keys["keys"]
                        .as_array()?
                        .iter()
                        .any(|k| k["name"] == "demo")
                        .then_some(())
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Allocates ports and paths for node `id`.
    fn add_node_entry(&mut self, id: u64) -> anyhow::Result<()> {
        let entry = ProcNode {
            http: free_addr()?,
            grpc: free_addr()?,
            config: self.dir.join(format!("node-{id}.toml")),
            log: self.dir.join(format!("node-{id}.log")),
            child: None,
            starts: 0,
        };
        self.nodes.insert(id, entry);
        Ok(())
    }

    fn write_config(
        &self,
        id: u64,
        bootstrap: bool,
        members: &[(u64, SocketAddr, SocketAddr)],
    ) -> anyhow::Result<()> {
        let node = self.node(id)?;
        let data_dir = std::path::absolute(self.dir.join(format!("node-{id}")))?;
        let text = node_config(
            id,
            node.http,
            node.grpc,
            &data_dir,
            bootstrap,
            members,
            &self.mock_url,
        );
        std::fs::write(&node.config, text)
            .with_context(|| format!("cannot write {}", node.config.display()))
    }

    fn node(&self, id: u64) -> anyhow::Result<&ProcNode> {
        self.nodes
            .get(&id)
            .with_context(|| format!("no node {id} in this cluster"))
    }

    fn node_mut(&mut self, id: u64) -> anyhow::Result<&mut ProcNode> {
        self.nodes
            .get_mut(&id)
            .with_context(|| format!("no node {id} in this cluster"))
    }

    /// Starts node `id`'s process from its configuration file, logging to its log file.
    fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let (bin, secret, token, demo, master) = (
            self.bin.clone(),
            self.cluster_secret.clone(),
            self.admin_token.clone(),
            self.demo_key.clone(),
            self.master_key.clone(),
        );
        let node = self.node_mut(id)?;
        anyhow::ensure!(node.child.is_none(), "node {id} is already running");
        node.starts += 1;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .with_context(|| format!("cannot open {}", node.log.display()))?;
        {
            use std::io::Write as _;
            writeln!(log, "===== start {} of node {id} =====", node.starts)?;
        }
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .arg("--config")
            .arg(&node.config)
            .env("SWITCHYARD_CLUSTER_SECRET", secret)
            .env("SWITCHYARD_DEMO_KEY", demo)
            .env("SWITCHYARD_ADMIN_TOKEN", token)
            .env("SWITCHYARD_MASTER_KEY", master)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        node.child = Some(
            cmd.spawn()
                .with_context(|| format!("cannot start node {id} ({})", bin.display()))?,
        );
        Ok(())
    }

    /// Waits until node `id` answers `/healthz` (its HTTP listener is up; it may not know a
    /// leader yet). Fails at once if the process exits.
    async fn wait_healthy(&mut self, id: u64) -> anyhow::Result<()> {
        let url = format!("{}/healthz", self.http(id));
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(r) = http::get(&url, &[]).await
                && r.status == 200
            {
                return Ok(());
            }
            let node = self.node_mut(id)?;
            if let Some(child) = node.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                node.child = None;
                bail!("node {id} exited during start: {status}");
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("node {id} did not answer /healthz within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until node `id` answers `/readyz` with 200 (serving, and it knows a leader).
    ///
    /// # Errors
    /// When it does not within `timeout`.
    pub async fn wait_ready(&self, id: u64, timeout: Duration) -> anyhow::Result<()> {
        let url = format!("{}/readyz", self.http(id));
        let url = &url;
        eventually(
            timeout,
            &format!("node {id} /readyz 200"),
            move || async move { (http::get(url, &[]).await.ok()?.status == 200).then_some(()) },
        )
        .await
    }

    /// Node ids, running or not.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Ids of the nodes whose process is running (as far as this harness knows: started and
    /// not killed or stopped by it).
    pub fn live_ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.child.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether node `id`'s process is running.
    pub fn is_alive(&self, id: u64) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.child.is_some())
    }

    /// Sends `signal` (`STOP`, `CONT`, `9`) to nodes `ids` with one `kill` command.
    fn signal(&self, signal: &str, ids: &[u64]) -> anyhow::Result<()> {
        let mut pids = Vec::new();
        for id in ids {
            let pid = self
                .node(*id)?
                .child
                .as_ref()
                .and_then(Child::id)
                .with_context(|| format!("node {id} is not running"))?;
            pids.push(pid.to_string());
        }
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .args(&pids)
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {} failed", pids.join(" "));
        Ok(())
    }

    /// Freezes nodes `ids` (SIGSTOP): their sockets stay open but nothing answers, as with a
    /// partition that drops packets. [`Self::resume`] undoes it.
    ///
    /// # Errors
    /// When a node is not running or `kill` fails.
    pub fn pause(&self, ids: &[u64]) -> anyhow::Result<()> {
        self.signal("STOP", ids)
    }

    /// Lets frozen nodes run again (SIGCONT).
    ///
    /// # Errors
    /// When a node is not running or `kill` fails.
    pub fn resume(&self, ids: &[u64]) -> anyhow::Result<()> {
        self.signal("CONT", ids)
    }

    /// `kill -9` node `id` and reap it.
    ///
    /// # Errors
    /// When the node is not running or `kill` fails.
    pub async fn kill9(&mut self, id: u64) -> anyhow::Result<()> {
        self.kill9_all(&[id]).await
    }

    /// `kill -9` several nodes with one `kill` command (as close to "at once" as a shell gets),
    /// then reaps them.
    ///
    /// # Errors
    /// When a node is not running or `kill` fails.
    pub async fn kill9_all(&mut self, ids: &[u64]) -> anyhow::Result<()> {
        self.signal("9", ids)?;
        for id in ids {
            if let Some(mut child) = self.node_mut(*id)?.child.take() {
                child.wait().await?;
            }
        }
        Ok(())
    }

    /// SIGTERM to node `id` and wait for it to exit (killed after 20 s).
    ///
    /// # Errors
    /// When the node is not running, or does not exit cleanly in time.
    pub async fn stop(&mut self, id: u64) -> anyhow::Result<()> {
        let mut child = self
            .node_mut(id)?
            .child
            .take()
            .with_context(|| format!("node {id} is not running"))?;
        let pid = child.id().context("node has already been reaped")?;
        std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()?;
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(status) => {
                let status = status?;
                anyhow::ensure!(
                    status.success(),
                    "node {id} exited with {status} after SIGTERM"
                );
                Ok(())
            }
            Err(_) => {
                let _ = child.kill().await;
                bail!("node {id} still running {STOP_TIMEOUT:?} after SIGTERM; killed")
            }
        }
    }

    /// Starts node `id` again: same configuration, data directory and ports. Returns once its
    /// HTTP listener answers (it may not know a leader yet: see [`Self::wait_leader`]).
    ///
    /// # Errors
    /// When it is running, or does not come up within 30 s.
    pub async fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        self.spawn(id)?;
        self.wait_healthy(id).await
    }

    /// Starts another node that joins later: it lists every node (itself included) as a
    /// member, does not bootstrap, and waits to be added (`ctl cluster add-node`). Returns its
    /// id once its HTTP listener answers.
    ///
    /// # Errors
    /// When it cannot start.
    pub async fn start_joiner(&mut self) -> anyhow::Result<u64> {
        let id = self.nodes.keys().max().copied().unwrap_or(0) + 1;
        self.add_node_entry(id)?;
        let members: Vec<(u64, SocketAddr, SocketAddr)> = self
            .nodes
            .iter()
            .map(|(i, p)| (*i, p.http, p.grpc))
            .collect();
        self.write_config(id, false, &members)?;
        self.spawn(id)?;
        self.wait_healthy(id).await?;
        Ok(id)
    }

    /// `http://addr` of node `id`'s HTTP edge.
    pub fn http(&self, id: u64) -> String {
        self.nodes
            .get(&id)
            .map(|n| format!("http://{}", n.http))
            .unwrap_or_default()
    }

    /// `http://addr` of node `id`'s gRPC server (admin and Raft).
    pub fn grpc(&self, id: u64) -> String {
        self.nodes
            .get(&id)
            .map(|n| format!("http://{}", n.grpc))
            .unwrap_or_default()
    }

    /// The admin token (role admin) seeded at bootstrap.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The demo virtual key (no budget, every model).
    pub fn demo_key(&self) -> &str {
        &self.demo_key
    }

    /// Base URL of the mock provider.
    pub fn mock_url(&self) -> &str {
        &self.mock_url
    }

    /// A ctl runner with this cluster's binary and admin token, for background tasks.
    pub fn ctl_handle(&self) -> Ctl {
        Ctl {
            bin: self.bin.clone(),
            token: self.admin_token.clone(),
        }
    }

    /// `ctl --json <args>` against the first live node.
    ///
    /// # Errors
    /// When no node is running or ctl fails.
    pub async fn ctl(&self, args: &[&str]) -> anyhow::Result<Value> {
        let id = *self.live_ids().first().context("no node is running")?;
        self.ctl_via(id, args).await
    }

    /// `ctl --json <args>` against node `id`.
    ///
    /// # Errors
    /// When ctl fails.
    pub async fn ctl_via(&self, id: u64, args: &[&str]) -> anyhow::Result<Value> {
        self.ctl_handle().run(&self.grpc(id), args).await
    }

    /// `ctl cluster status` as node `id` sees it.
    ///
    /// # Errors
    /// When ctl fails.
    pub async fn status_via(&self, id: u64) -> anyhow::Result<Value> {
        self.ctl_via(id, &["cluster", "status"]).await
    }

    /// Ids of the keys node `id` lists.
    ///
    /// # Errors
    /// When ctl fails.
    pub async fn key_ids_via(&self, id: u64) -> anyhow::Result<BTreeSet<String>> {
        let v = self.ctl_via(id, &["keys", "list"]).await?;
        Ok(v["keys"]
            .as_array()
            .map(|ks| {
                ks.iter()
                    .filter_map(|k| k["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits until some live node reports a leader that is itself a live node; returns its id.
    ///
    /// # Errors
    /// When there is none within `timeout`.
    pub async fn wait_leader(&self, timeout: Duration) -> anyhow::Result<u64> {
        eventually(timeout, "a live node reports a live leader", || async {
            for id in self.live_ids() {
                if let Ok(s) = self.status_via(id).await
                    && let Some(leader) = s["leader"].as_u64()
                    && leader != 0
                    && self.is_alive(leader)
                {
                    return Some(leader);
                }
            }
            None
        })
        .await
    }

    /// The mock's ledger (`GET /_mock/ledger`).
    ///
    /// # Errors
    /// Transport errors.
    pub async fn mock_ledger(&self) -> anyhow::Result<Value> {
        Ok(http::get(&format!("{}/_mock/ledger", self.mock_url), &[])
            .await?
            .json())
    }

    /// Node `id`'s whole log so far (every start of it).
    pub fn log_text(&self, id: u64) -> String {
        self.nodes
            .get(&id)
            .and_then(|n| std::fs::read_to_string(&n.log).ok())
            .map(|t| strip_ansi(&t))
            .unwrap_or_default()
    }

    /// The last 30 lines of every node's log.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        for id in self.nodes.keys() {
            let text = self.log_text(*id);
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
            let _ = writeln!(
                out,
                "--- node {id} log (last {TAIL_LINES} lines) ---\n{tail}"
            );
        }
        out
    }

    /// Marks the run failed (the directory is kept) and returns `e` with the directory and the
    /// tail of every node's log.
    fn fail(&mut self, e: anyhow::Error) -> anyhow::Error {
        self.failed = true;
        anyhow::anyhow!(
            "{e:#}\n\nprocess cluster directory kept at {}\n{}",
            self.dir.display(),
            self.diagnostics()
        )
    }

    /// Runs a test's `scenario` under `timeout`, then ends the cluster with [`Self::finish`]:
    /// removed on success, kept (with the node logs' tails in the error) on failure.
    ///
    /// # Errors
    /// The scenario's error, or the timeout.
    pub async fn run<T>(
        mut self,
        timeout: Duration,
        scenario: impl AsyncFnOnce(&mut ProcessCluster) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let result = match tokio::time::timeout(timeout, scenario(&mut self)).await {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!("scenario exceeded {timeout:?}")),
        };
        self.finish(result)
    }

    /// Ends a test: on `Err`, keeps the directory and adds the node logs' tails to the error;
    /// on `Ok`, stops everything and removes the directory.
    ///
    /// # Errors
    /// `result`'s error, with diagnostics.
    pub fn finish<T>(mut self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        result.map_err(|e| self.fail(e))
    }
}

impl Drop for ProcessCluster {
    /// Kills every child; removes the directory unless the test failed (an `Err` through
    /// [`ProcessCluster::finish`], or a panic, which also prints the node logs' tails).
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(child) = node.child.as_mut() {
                let _ = child.start_kill();
            }
        }
        if std::thread::panicking() {
            self.failed = true;
            report(&format!(
                "process cluster directory kept at {}\n{}",
                self.dir.display(),
                self.diagnostics()
            ));
        }
        if !self.failed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[expect(
    clippy::print_stderr,
    reason = "a panicking test's node logs go to the test's captured output"
)]
fn report(text: &str) {
    eprintln!("{text}");
}

/// The node's configuration file, in the format `switchyard cluster up` writes, with one
/// provider ([`MOCK`]) and one route ([`MODEL`] → [`MOCK`]).
fn node_config(
    id: u64,
    addr: SocketAddr,
    grpc: SocketAddr,
    data_dir: &Path,
    bootstrap: bool,
    members: &[(u64, SocketAddr, SocketAddr)],
    mock_url: &str,
) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "# Written by switchyard-testkit's ProcessCluster.\n");
    let _ = writeln!(
        t,
        "[node]\nid = {id}\nlisten_http = \"{addr}\"\nregion = \"local\"\ncluster_secret_env = \"SWITCHYARD_CLUSTER_SECRET\"\n"
    );
    let _ = writeln!(
        t,
        // Small snapshot pieces, so a node catching up by snapshot receives it in many.
        "[control]\ndata_dir = \"{}\"\nlisten_grpc = \"{grpc}\"\nbootstrap = {bootstrap}\nadmin_token_env = \"SWITCHYARD_ADMIN_TOKEN\"\nsnapshot_chunk_bytes = {SNAPSHOT_CHUNK_BYTES}",
        data_dir.display(),
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
    let _ = writeln!(
        t,
        "[[providers]]\nname = \"{MOCK}\"\nkind = \"openai\"\nbase_url = \"{mock_url}/v1\"\ninternal = true\nregion = \"local\""
    );
    let _ = writeln!(
        t,
        "[[providers.models]]\nname = \"{MODEL}\"\ninput_micros_per_mtok = {}\noutput_micros_per_mtok = {}\n",
        PRICE.0, PRICE.1
    );
    let _ = writeln!(
        t,
        "[[routes]]\nmodel = \"{MODEL}\"\nstrategy = \"priority\"\ntargets = [{{ provider = \"{MOCK}\", model = \"{MODEL}\" }}]\nfallbacks = []"
    );
    t
}

/// Starts the mock provider on 127.0.0.1:0 in this process; returns its URL and the sender
/// whose drop stops it.
async fn start_mock() -> anyhow::Result<(String, oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let price = switchyard_mock::Price {
        input_micros_per_mtok: PRICE.0,
        output_micros_per_mtok: PRICE.1,
    };
    let cfg = switchyard_mock::MockConfig {
        name: MOCK.to_owned(),
        models: vec![MODEL.to_owned()],
        prices: BTreeMap::from([(MODEL.to_owned(), price)]),
        // A little latency, so requests are in flight when a node is killed.
        ttft_ms: 20,
        per_token_ms: 2,
        ..Default::default()
    };
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = switchyard_mock::serve(listener, cfg, async move {
            let _ = rx.await;
        })
        .await;
    });
    Ok((format!("http://{addr}"), tx))
}

/// Lowest port [`free_addr`] picks from.
const PORT_FLOOR: u16 = 12_000;

/// A free loopback address for a node to bind later, and again after a restart. It is picked
/// below the kernel's ephemeral range (`ip_local_port_range`), so no outgoing connection and
/// no `bind(:0)` elsewhere can take it between this check and the node's bind: a port from
/// `bind(:0)` collided with the ephemeral port of one of the many client connections these
/// tests open. Falls back to `bind(:0)` when the ephemeral range leaves no room below it.
fn free_addr() -> anyhow::Result<SocketAddr> {
    static TAKEN: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_low > PORT_FLOOR + 1_000 {
        let span = u64::from(ephemeral_low - PORT_FLOOR);
        let mut taken = match TAKEN.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        for _ in 0..200 {
            let offset = u16::try_from(random_u64() % span).unwrap_or(0);
            let port = PORT_FLOOR + offset;
            if taken.contains(&port) {
                continue;
            }
            if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                taken.insert(port);
                return Ok(l.local_addr()?);
            }
        }
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// A random number from the standard library's per-process hash keys.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

/// The workspace's target directory: `CARGO_TARGET_DIR` (relative to the workspace when
/// relative) or `<workspace>/target`.
fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(t) if t.is_relative() => workspace.join(t),
        Some(t) => t,
        None => workspace.join("target"),
    }
}

/// A fresh, empty `target/tmp/procs-<pid>-<n>`.
fn fresh_dir() -> anyhow::Result<PathBuf> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = target_dir()
        .join("tmp")
        .join(format!("procs-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// `<target>/debug/switchyard`, built with cargo first if it is missing.
async fn switchyard_binary() -> anyhow::Result<PathBuf> {
    let bin = target_dir().join("debug").join("switchyard");
    if !bin.exists() {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "-p", "switchyard", "--bin", "switchyard"])
            .current_dir(&workspace)
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "cargo build -p switchyard failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        anyhow::ensure!(
            bin.exists(),
            "cargo built switchyard, but {} does not exist",
            bin.display()
        );
    }
    Ok(bin)
}

/// `text` without ANSI colour sequences (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(char::is_ascii_alphabetic);
        } else {
            out.push(c);
        }
    }
    out
}

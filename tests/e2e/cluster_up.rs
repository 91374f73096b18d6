//! `switchyard cluster up` as a user runs it: the real binary, its mock providers and nodes as
//! separate processes, stopped by a signal, and started again on the same data directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use switchyard_testkit::{eventually, get, post_json};

/// How long `cluster up` may take to write cluster.json with every node ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `cluster up` may take to stop everything after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A user starts a local cluster with `switchyard cluster up`, uses it with the demo key, stops
/// it with SIGTERM, and starts it again on the same directory.
///
/// 1. Find the `switchyard` binary (build it if it is missing).
/// 2. Run `cluster up --nodes 3` on a fresh data directory and free ports.
/// 3. cluster.json appears, listing three nodes that all answer `/readyz` with 200.
/// 4. The demo key works on every node: chat on gpt-4o-mini (answered by that node) and
///    Anthropic messages on claude-3-5-haiku (answered by the Anthropic-format mock); a made-up
///    key is refused. `switchyard ctl --json cluster status` against each node shows the same
///    3 voters with one leader, all healthy; `/v1/models` lists every demo model with at least
///    two providers able to serve it.
/// 5. SIGTERM: the command exits successfully within 20 s, every node process is gone and no
///    node or mock port accepts connections any more.
/// 6. The same command again on the same directory: a new set of processes, the same demo key,
///    which works on every node; SIGINT (Ctrl-C) stops it all again.
#[tokio::test(flavor = "multi_thread")]
async fn cluster_up_serves_stops_on_sigterm_and_comes_back_with_the_same_key() -> anyhow::Result<()>
{
    // 1. Outside the time bound: a missing binary means a cargo build.
    let bin = switchyard_binary().await?;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cluster-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let args = [
        "cluster".to_owned(),
        "up".to_owned(),
        "--nodes".to_owned(),
        "3".to_owned(),
        "--data-dir".to_owned(),
        dir.display().to_string(),
        "--http-port".to_owned(),
        free_port()?.to_string(),
        "--mock-port".to_owned(),
        free_port()?.to_string(),
        "--grpc-port".to_owned(),
        free_port()?.to_string(),
    ];

    let result = crate::bounded(async {
        // 2.
        let mut up = ClusterUp::start(&bin, &args, &dir, "first")?;

        // 3.
        let first = up.wait_ready(&[]).await?;
        anyhow::ensure!(
            nodes(&first).len() == 3,
            "cluster.json should list 3 nodes: {first:#}"
        );
        anyhow::ensure!(
            providers(&first).len() >= 3,
            "cluster.json should list the mock fleet: {first:#}"
        );
        let key = first["demo_key"]
            .as_str()
            .context("cluster.json without demo_key")?
            .to_owned();
        anyhow::ensure!(
            key.starts_with("sk-sy-"),
            "demo key {key:?} is not a virtual key"
        );

        // 4.
        for node in nodes(&first) {
            chat_answered_by(node, &key).await?;
            messages_answered_by_anthropic_mock(node, &key).await?;
            three_voters_one_leader(&bin, node, &first).await?;
        }
        every_demo_model_has_two_providers(&nodes(&first)[0], &key).await?;
        let http = nodes(&first)[0]["http"].as_str().unwrap_or_default();
        let refused = post_json(
            &format!("{http}/v1/chat/completions"),
            &[("authorization", "Bearer sk-sy-not-a-key")],
            &chat_body(),
        )
        .await?;
        anyhow::ensure!(
            refused.status == 401,
            "a made-up key should get 401, got {} {}",
            refused.status,
            refused.text()
        );

        // 5.
        up.stop("TERM").await?;
        everything_stopped(&first).await?;

        // 6.
        let mut again = ClusterUp::start(&bin, &args, &dir, "second")?;
        let second = again.wait_ready(&pids(&first)).await?;
        anyhow::ensure!(
            second["demo_key"] == key.as_str(),
            "the demo key changed across restarts: {} then {}",
            first["demo_key"],
            second["demo_key"]
        );
        for node in nodes(&second) {
            chat_answered_by(node, &key).await?;
        }
        // Ctrl-C in the terminal is SIGINT.
        again.stop("INT").await?;
        everything_stopped(&second).await?;
        Ok(())
    })
    .await;

    match result {
        Ok(()) => {
            std::fs::remove_dir_all(&dir)?;
            Ok(())
        }
        // The failure first, then what the processes said; the directory stays for a look.
        Err(e) => Err(anyhow::anyhow!(
            "{e:#}\n\ndata directory kept at {}\n{}",
            dir.display(),
            diagnostics(&dir)
        )),
    }
}

/// `<target>/debug/switchyard`, built with cargo first if it is missing. The target directory is
/// `CARGO_TARGET_DIR` (relative to the workspace when relative) or `<workspace>/target`.
async fn switchyard_binary() -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(t) if t.is_relative() => workspace.join(t),
        Some(t) => t,
        None => workspace.join("target"),
    };
    let bin = target.join("debug").join("switchyard");
    if !bin.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = tokio::process::Command::new(cargo)
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

/// A port that was free a moment ago (`cluster up` replaces one that has been taken since).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running `switchyard cluster up`.
struct ClusterUp {
    child: tokio::process::Child,
    dir: PathBuf,
}

impl ClusterUp {
    /// Starts the command; its stdout and stderr go to `<dir>/<run>.stdout` and `.stderr`.
    fn start(bin: &Path, args: &[String], dir: &Path, run: &str) -> anyhow::Result<Self> {
        Self::start_with_env(bin, args, dir, run, &[])
    }

    /// [`ClusterUp::start`] with extra environment variables for the command and its children.
    fn start_with_env(
        bin: &Path,
        args: &[String],
        dir: &Path,
        run: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let stdout = std::fs::File::create(dir.join(format!("{run}.stdout")))?;
        let stderr = std::fs::File::create(dir.join(format!("{run}.stderr")))?;
        let child = tokio::process::Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .envs(env.iter().copied())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        Ok(Self {
            child,
            dir: dir.to_owned(),
        })
    }

    /// Waits until cluster.json lists nodes whose pids are not in `stale` (those of an earlier
    /// run) and each answers `/readyz` with 200; returns cluster.json. Fails at once if the
    /// command exits meanwhile.
    async fn wait_ready(&mut self, stale: &[u64]) -> anyhow::Result<Value> {
        let path = self.dir.join("cluster.json");
        let path = &path;
        let ready = eventually(
            READY_TIMEOUT,
            "cluster.json listing new nodes that all answer /readyz with 200",
            move || async move { ready_cluster(path, stale).await },
        );
        tokio::select! {
            status = self.child.wait() => anyhow::bail!("`cluster up` exited before the cluster was ready: {status:?}"),
            json = ready => json,
        }
    }

    /// Sends SIGTERM and waits for a successful exit.
    async fn stop(&mut self, signal: &str) -> anyhow::Result<()> {
        let pid = self.child.id().context("`cluster up` has already exited")?;
        let kill = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        anyhow::ensure!(kill.success(), "kill -{signal} {pid} failed");
        let status = tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .map_err(|_| {
                anyhow::anyhow!("`cluster up` still running {STOP_TIMEOUT:?} after SIG{signal}")
            })??;
        anyhow::ensure!(
            status.success(),
            "`cluster up` exited with {status} after SIG{signal}"
        );
        Ok(())
    }
}

impl Drop for ClusterUp {
    /// On a failure path only (a stopped command has been waited and has no pid): SIGTERM, so
    /// `cluster up` stops its children, and a bounded wait. `kill_on_drop` alone would SIGKILL
    /// the parent and leave the nodes and mocks running.
    fn drop(&mut self) {
        let Some(pid) = self.child.id() else { return };
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        for _ in 0..(STOP_TIMEOUT.as_millis() / 50) {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// cluster.json once it is complete, lists no pid from `stale`, and every node is ready.
async fn ready_cluster(path: &Path, stale: &[u64]) -> Option<Value> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    let cluster: Value = serde_json::from_str(&text).ok()?;
    let listed = nodes(&cluster);
    if listed.is_empty() {
        return None;
    }
    for node in listed {
        if stale.contains(&node["pid"].as_u64()?) {
            return None;
        }
        let http = node["http"].as_str()?;
        if get(&format!("{http}/readyz"), &[]).await.ok()?.status != 200 {
            return None;
        }
    }
    Some(cluster)
}

fn nodes(cluster: &Value) -> &[Value] {
    cluster["nodes"].as_array().map_or(&[], Vec::as_slice)
}

fn providers(cluster: &Value) -> &[Value] {
    cluster["providers"].as_array().map_or(&[], Vec::as_slice)
}

fn pids(cluster: &Value) -> Vec<u64> {
    nodes(cluster)
        .iter()
        .filter_map(|n| n["pid"].as_u64())
        .collect()
}

fn chat_body() -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]})
}

/// `switchyard ctl --json cluster status` against `node` (endpoint and token from cluster.json,
/// as a user would pass them): 3 members, exactly one the leader, every member healthy.
async fn three_voters_one_leader(bin: &Path, node: &Value, cluster: &Value) -> anyhow::Result<()> {
    let grpc = node["grpc"].as_str().context("node without grpc")?;
    let token = cluster["admin_token"].as_str().context("no admin_token")?;
    let out = tokio::process::Command::new(bin)
        .args(["ctl", "--endpoint", grpc, "--json", "cluster", "status"])
        .env("SWITCHYARD_TOKEN", token)
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "ctl cluster status against {grpc}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout)?;
    let members = status["members"].as_array().context("no members")?;
    anyhow::ensure!(members.len() == 3, "{status:#}");
    let leaders: Vec<&Value> = members.iter().filter(|m| m["role"] == "leader").collect();
    anyhow::ensure!(leaders.len() == 1, "one leader expected: {status:#}");
    anyhow::ensure!(
        leaders[0]["id"] == status["leader"],
        "leader field and roles disagree: {status:#}"
    );
    anyhow::ensure!(
        members.iter().all(|m| m["healthy"] == true),
        "every member healthy: {status:#}"
    );
    Ok(())
}

/// `GET /v1/models` on `node`: each demo model is listed with at least two providers that can
/// serve it now.
async fn every_demo_model_has_two_providers(node: &Value, key: &str) -> anyhow::Result<()> {
    let http = node["http"].as_str().context("node without http")?;
    let models = get(
        &format!("{http}/v1/models"),
        &[("authorization", &format!("Bearer {key}"))],
    )
    .await?
    .json();
    for demo in [
        "gpt-4o-mini",
        "gpt-4o",
        "claude-3-5-haiku",
        "text-embedding-3-small",
    ] {
        let entry = models["data"]
            .as_array()
            .and_then(|d| d.iter().find(|m| m["id"] == demo))
            .with_context(|| format!("{demo} not listed: {models}"))?;
        let providers = entry["providers"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(providers >= 2, "{demo} served by {providers}: {entry}");
    }
    Ok(())
}

/// `POST /v1/chat/completions` for gpt-4o-mini with `key` on `node`: 200, answered by that node.
async fn chat_answered_by(node: &Value, key: &str) -> anyhow::Result<()> {
    let (id, http) = (
        node["id"].as_u64().context("node without id")?,
        node["http"].as_str().context("node without http")?,
    );
    let r = post_json(
        &format!("{http}/v1/chat/completions"),
        &[("authorization", &format!("Bearer {key}"))],
        &chat_body(),
    )
    .await?;
    anyhow::ensure!(
        r.status == 200,
        "node {id}: chat got {} {}",
        r.status,
        r.text()
    );
    anyhow::ensure!(
        r.header("x-switchyard-node") == Some(id.to_string()),
        "node {id}: chat answered with x-switchyard-node {:?}",
        r.header("x-switchyard-node")
    );
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        !content.trim().is_empty(),
        "node {id}: chat reply without content: {}",
        r.text()
    );
    Ok(())
}

/// `POST /v1/messages` for claude-3-5-haiku with `key` as `x-api-key` on `node`: 200, answered by
/// that node through mock-c (the Anthropic-format provider, first in the demo route).
async fn messages_answered_by_anthropic_mock(node: &Value, key: &str) -> anyhow::Result<()> {
    let (id, http) = (
        node["id"].as_u64().context("node without id")?,
        node["http"].as_str().context("node without http")?,
    );
    let body = json!({"model": "claude-3-5-haiku", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]});
    let r = post_json(
        &format!("{http}/v1/messages"),
        &[("x-api-key", key), ("anthropic-version", "2023-06-01")],
        &body,
    )
    .await?;
    anyhow::ensure!(
        r.status == 200,
        "node {id}: messages got {} {}",
        r.status,
        r.text()
    );
    anyhow::ensure!(
        r.header("x-switchyard-node") == Some(id.to_string()),
        "node {id}: messages answered with x-switchyard-node {:?}",
        r.header("x-switchyard-node")
    );
    anyhow::ensure!(
        r.header("x-switchyard-provider").as_deref() == Some("mock-c"),
        "node {id}: messages served by {:?}, not mock-c",
        r.header("x-switchyard-provider")
    );
    let reply = r.json();
    anyhow::ensure!(
        reply["type"] == "message" && reply["stop_reason"] == "end_turn",
        "node {id}: not a finished message: {reply}"
    );
    anyhow::ensure!(
        !reply["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .is_empty(),
        "node {id}: message without text: {reply}"
    );
    Ok(())
}

/// After a stop: no node pid of `cluster` is alive and no node or mock port accepts connections.
async fn everything_stopped(cluster: &Value) -> anyhow::Result<()> {
    for pid in pids(cluster) {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        anyhow::ensure!(
            !proc.exists(),
            "node process {pid} still exists after `cluster up` exited (cmdline {:?})",
            std::fs::read_to_string(proc.join("cmdline")).unwrap_or_default()
        );
    }
    let urls = nodes(cluster)
        .iter()
        .map(|n| &n["http"])
        .chain(providers(cluster).iter().map(|p| &p["url"]));
    for url in urls {
        let url = url.as_str().context("cluster.json entry without url")?;
        let addr = url
            .strip_prefix("http://")
            .with_context(|| format!("unexpected url {url}"))?;
        anyhow::ensure!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{url} still accepts connections after `cluster up` exited"
        );
    }
    Ok(())
}

/// The command's output and the tail of every child's log, for failure messages.
fn diagnostics(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = [dir, &dir.join("logs")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "stdout" || x == "stderr" || x == "log")
        })
        .collect();
    files.sort();
    let mut out = String::new();
    for f in files {
        let text = strip_ansi(&std::fs::read_to_string(&f).unwrap_or_default());
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        let _ = writeln!(out, "--- {} (last 15 lines) ---\n{tail}", f.display());
    }
    out
}

/// `text` without ANSI colour sequences (`ESC [ … m`), which the children write to their logs.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

/// No secret reaches a log: a whole `cluster up` run at debug level, with a real provider key in
/// the environment, keys used, refused, created and rotated through `ctl`, is grepped for every
/// secret it involved.
#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_any_log_of_a_whole_run() -> anyhow::Result<()> {
    const PROVIDER_KEY: &str = "sk-proj-provider-secret-7f3a9c1e5b";
    const WRONG_KEY: &str = "sk-sy-wrong-client-secret-0d9e8f7a";
    let bin = switchyard_binary().await?;
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("secrets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let args: Vec<String> = ["cluster", "up", "--nodes", "3", "--data-dir"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([dir.display().to_string()])
        .chain([
            "--http-port".to_owned(),
            free_port()?.to_string(),
            "--mock-port".to_owned(),
            free_port()?.to_string(),
            "--grpc-port".to_owned(),
            free_port()?.to_string(),
        ])
        .collect();
    let result = crate::bounded(async {
        let mut up = ClusterUp::start_with_env(
            &bin,
            &args,
            &dir,
            "run",
            &[("RUST_LOG", "debug"), ("OPENAI_API_KEY", PROVIDER_KEY)],
        )?;
        let cluster = up.wait_ready(&[]).await?;
        let demo = cluster["demo_key"].as_str().context("demo key")?.to_owned();
        let admin = cluster["admin_token"]
            .as_str()
            .context("admin token")?
            .to_owned();
        let grpc = nodes(&cluster)[1]["grpc"]
            .as_str()
            .context("grpc")?
            .to_owned();
        for node in nodes(&cluster) {
            chat_answered_by(node, &demo).await?;
            let url = format!(
                "{}/v1/chat/completions",
                node["http"].as_str().unwrap_or_default()
            );
            let refused = post_json(
                &url,
                &[("authorization", &format!("Bearer {WRONG_KEY}"))],
                &chat_body(),
            )
            .await?;
            anyhow::ensure!(refused.status == 401, "wrong key: {}", refused.status);
        }
        let ctl = |args: &[&str]| -> anyhow::Result<Value> {
            let out = std::process::Command::new(&bin)
                .args(["ctl", "--endpoint", &grpc, "--token", &admin, "--json"])
                .args(args)
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "ctl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(serde_json::from_slice(&out.stdout)?)
        };
        // OPENAI_API_KEY in the environment added the real OpenAI provider beside the mocks,
        // its key sealed (listed as set, never shown).
        let providers = ctl(&["providers", "list"])?;
        let openai = providers["providers"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "openai"))
            .with_context(|| format!("no openai provider from OPENAI_API_KEY: {providers}"))?;
        anyhow::ensure!(
            openai["has_api_key"] == true && openai["base_url"] == "https://api.openai.com/v1",
            "{openai}"
        );
        anyhow::ensure!(!providers.to_string().contains(PROVIDER_KEY));
        let created = ctl(&["keys", "create", "--name", "leaky", "--budget-usd", "1"])?;
        let new_key = created["key"].as_str().context("new key")?.to_owned();
        // A new key takes effect on every node within 1 s (the contract), not at once.
        let third = &nodes(&cluster)[2];
        eventually(
            Duration::from_secs(1),
            "the new key works on node 3",
            || async { chat_answered_by(third, &new_key).await.ok() },
        )
        .await?;
        let rotated = ctl(&["keys", "rotate", created["id"].as_str().unwrap_or_default()])?;
        let rotated_key = rotated["key"].as_str().context("rotated key")?.to_owned();
        up.stop("TERM").await?;
        let secrets_file: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("secrets.json"))?)?;
        let cluster_secret = secrets_file["cluster_secret"]
            .as_str()
            .context("cluster secret")?
            .to_owned();
        let mut logs = String::new();
        for entry in std::fs::read_dir(dir.join("logs"))?.chain(std::fs::read_dir(&dir)?) {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if path.is_file()
                && (name.ends_with(".log")
                    || name.ends_with(".stderr")
                    || name.ends_with(".stdout"))
            {
                logs.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
        anyhow::ensure!(
            logs.contains("node serving") && logs.len() > 10_000,
            "the run's logs were not captured ({} bytes)",
            logs.len()
        );
        // The command's own stdout prints the demo key and admin token for the user, by design;
        // only log streams are checked for those two.
        let stdout = std::fs::read_to_string(dir.join("run.stdout")).unwrap_or_default();
        let logs_only = logs.replace(&stdout, "");
        for (what, secret) in [
            ("demo key", demo.as_str()),
            ("admin token", admin.as_str()),
            ("cluster secret", cluster_secret.as_str()),
            ("created key", new_key.as_str()),
            ("rotated key", rotated_key.as_str()),
            ("refused client key", WRONG_KEY),
            ("provider key", PROVIDER_KEY),
        ] {
            anyhow::ensure!(
                !logs_only.contains(secret),
                "the {what} appears in the logs"
            );
        }
        println!(
            "grepped {} bytes of logs for 7 secrets: none found",
            logs_only.len()
        );
        anyhow::Ok(())
    })
    .await;
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// `ctl` refuses a negative or over-precise dollar amount itself, with a clear message and the
/// usage exit code, before it connects: here nothing listens at the endpoint, and the refusal
/// names the argument rather than a connection error.
#[tokio::test]
async fn ctl_refuses_bad_dollar_amounts_before_sending_anything() -> anyhow::Result<()> {
    let bin = switchyard_binary().await?;
    for args in [
        ["budgets", "set", "--key", "key_x", "--limit-usd=-5"],
        ["budgets", "set", "--key", "key_x", "--limit-usd=1.0000001"],
        ["keys", "create", "--name", "n", "--budget-usd=1e3"],
    ] {
        let out = tokio::process::Command::new(&bin)
            .args([
                "ctl",
                "--endpoint",
                "http://127.0.0.1:1",
                "--token",
                "t",
                "--json",
            ])
            .args(args)
            .output()
            .await?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        anyhow::ensure!(
            out.status.code() == Some(2),
            "{args:?}: {:?} {stderr}",
            out.status
        );
        anyhow::ensure!(
            stderr.contains("invalid dollar amount"),
            "{args:?}: {stderr}"
        );
        anyhow::ensure!(
            !stderr.contains("connect"),
            "{args:?} tried to connect: {stderr}"
        );
    }
    Ok(())
}

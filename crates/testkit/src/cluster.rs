//! [`TestCluster`]: N in-process nodes on 127.0.0.1:0 over an in-process fleet of mock
//! providers, configured through the same TOML a user writes. Faults go through the mocks' real
//! `/_mock` API; spend is checked against their ledgers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use switchyard_core::{SystemClock, TcpTransport};
use switchyard_node::{ConfigToml, Node, NodeHandle};
use tokio::sync::oneshot;

use crate::http::{self, Reply};

/// One mock provider to start.
#[derive(Clone, Debug)]
pub struct MockSpec {
    /// Provider name (also the mock's name).
    pub name: String,
    /// `openai` or `anthropic`: how nodes talk to it.
    pub kind: String,
    /// Per-model prices (micro-dollars per million tokens), also configured on the node side.
    pub prices: Vec<(String, u64, u64)>,
    /// Base time to first token.
    pub ttft_ms: u64,
    /// Per-token delay.
    pub per_token_ms: u64,
    /// Extra TOML lines for the node's `[[providers]]` entry (e.g. `failure_threshold = 3`).
    pub extra: String,
    /// Whether the node is told the mock's prices (`[[providers.models]]`); when false the
    /// node prices the models from the shipped catalog.
    pub price_override: bool,
}

impl MockSpec {
    /// An OpenAI-format mock pricing `models` at `input`/`output`.
    pub fn openai(name: &str, models: &[&str], input: u64, output: u64) -> Self {
        Self {
            name: name.into(),
            kind: "openai".into(),
            prices: models
                .iter()
                .map(|m| ((*m).to_owned(), input, output))
                .collect(),
            ttft_ms: 0,
            per_token_ms: 0,
            extra: String::new(),
            price_override: true,
        }
    }

    /// An OpenAI-format mock that nodes reach as Azure OpenAI: the deployment URL form
    /// (`/openai/deployments/{model}/…?api-version=…`), which the mock serves too.
    pub fn azure(name: &str, models: &[&str], input: u64, output: u64) -> Self {
        Self {
            kind: "azure".into(),
            extra: "api_version = \"2024-10-21\"\n".into(),
            ..Self::openai(name, models, input, output)
        }
    }

    /// An Anthropic-format mock.
    pub fn anthropic(name: &str, models: &[&str], input: u64, output: u64) -> Self {
        Self {
            kind: "anthropic".into(),
            ..Self::openai(name, models, input, output)
        }
    }

    /// Leaves pricing to the node's shipped catalog (no per-provider override).
    #[must_use]
    pub fn catalog_priced(mut self) -> Self {
        self.price_override = false;
        self
    }

    /// Sets the mock's base latency.
    #[must_use]
    pub fn timing(mut self, ttft_ms: u64, per_token_ms: u64) -> Self {
        self.ttft_ms = ttft_ms;
        self.per_token_ms = per_token_ms;
        self
    }

    /// Adds TOML lines to the provider entry.
    #[must_use]
    pub fn extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }
}

struct RouteSpec {
    model: String,
    strategy: String,
    targets: Vec<(String, String)>,
    fallbacks: Vec<String>,
    tier: Option<String>,
}

/// Builds a [`TestCluster`].
#[derive(Default)]
pub struct Builder {
    nodes: usize,
    mocks: Vec<MockSpec>,
    routes: Vec<RouteSpec>,
    extra_keys: Vec<(String, String, Vec<String>)>,
    node_extra: String,
    tls: bool,
}

/// The demo key every test cluster accepts.
pub const TEST_KEY: &str = "sk-sy-test-key-0123456789abcdef";
/// The admin token every test cluster accepts (role admin).
pub const TEST_ADMIN_TOKEN: &str = "sy-admin-test-token-0123456789";
/// The cluster secret of test clusters.
const TEST_CLUSTER_SECRET: &str = "test-cluster-secret-0123456789";

/// A fresh directory under `target/tmp` for one node's data.
fn data_dir(id: usize) -> std::path::PathBuf {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let root = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = root
        .join("tmp")
        .join(format!("node-{}-{n}-{id}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn test_env(k: &str) -> Option<String> {
    match k {
        "SY_TEST_SECRET" => Some(TEST_CLUSTER_SECRET.to_owned()),
        "SY_TEST_ADMIN" => Some(TEST_ADMIN_TOKEN.to_owned()),
        "SWITCHYARD_MASTER_KEY" => Some(format!("1:{}", "5a".repeat(32))),
        _ => None,
    }
}

impl Builder {
    /// Number of nodes (default 1).
    #[must_use]
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// Adds a mock provider.
    #[must_use]
    pub fn mock(mut self, m: MockSpec) -> Self {
        self.mocks.push(m);
        self
    }

    /// Adds a route: public `model` → `(provider, upstream model)` targets in order.
    #[must_use]
    pub fn route(
        mut self,
        model: &str,
        strategy: &str,
        targets: &[(&str, &str)],
        fallbacks: &[&str],
    ) -> Self {
        self.routes.push(RouteSpec {
            model: model.into(),
            strategy: strategy.into(),
            targets: targets
                .iter()
                .map(|(p, m)| ((*p).to_owned(), (*m).to_owned()))
                .collect(),
            fallbacks: fallbacks.iter().map(|f| (*f).to_owned()).collect(),
            tier: None,
        });
        self
    }

    /// Adds a key limited to `models`.
    #[must_use]
    pub fn key(mut self, name: &str, secret: &str, models: &[&str]) -> Self {
        self.extra_keys.push((
            name.into(),
            secret.into(),
            models.iter().map(|m| (*m).to_owned()).collect(),
        ));
        self
    }

    /// Gives the last added route a tier for `model: "auto"`.
    #[must_use]
    pub fn tier(mut self, tier: &str) -> Self {
        if let Some(r) = self.routes.last_mut() {
            r.tier = Some(tier.to_owned());
        }
        self
    }

    /// Runs gRPC (Raft and admin) over mutual TLS with generated certificates.
    #[must_use]
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Adds TOML text to every node's file (e.g. a `[limits]` section).
    #[must_use]
    pub fn node_toml(mut self, toml: &str) -> Self {
        self.node_extra.push_str(toml);
        self.node_extra.push('\n');
        self
    }

    /// Starts mocks, then nodes.
    ///
    /// # Errors
    /// When a listener cannot be bound or a node's configuration is invalid.
    pub async fn start(self) -> anyhow::Result<TestCluster> {
        crate::init_tracing();
        let mut mocks = Vec::new();
        for spec in &self.mocks {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let prices: BTreeMap<String, switchyard_mock::Price> = spec
                .prices
                .iter()
                .map(|(m, i, o)| {
                    (
                        m.clone(),
                        switchyard_mock::Price {
                            input_micros_per_mtok: *i,
                            output_micros_per_mtok: *o,
                        },
                    )
                })
                .collect();
            let cfg = switchyard_mock::MockConfig {
                name: spec.name.clone(),
                models: prices.keys().cloned().collect(),
                prices,
                ttft_ms: spec.ttft_ms,
                per_token_ms: spec.per_token_ms,
                ..Default::default()
            };
            let (tx, rx) = oneshot::channel::<()>();
            tokio::spawn(async move {
                let _ = switchyard_mock::serve(listener, cfg, async move {
                    let _ = rx.await;
                })
                .await;
            });
            mocks.push(MockInfo {
                name: spec.name.clone(),
                url: format!("http://{addr}"),
                _stop: tx,
            });
        }
        let n = self.nodes.max(1);
        let tls = if self.tls {
            Some(crate::tls::TestTls::new(
                &data_dir(0).with_extension("tls"),
            )?)
        } else {
            None
        };
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for id in 1..=n {
            let dir = data_dir(id);
            let mut toml = self.node_toml_text(id, &mocks, &dir);
            if let Some(tls) = &tls {
                let (cert, key) = tls.issue(&format!("node-{id}"))?;
                toml.push_str(&format!(
                    "\n[control.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nca_file = \"{}\"\n",
                    cert.display(),
                    key.display(),
                    tls.ca.display()
                ));
            }
            let config = ConfigToml::parse(&toml)?
                .validate(&test_env)
                .map_err(|e| anyhow::anyhow!("{e}\n--- config ---\n{toml}"))?;
            let node =
                Node::start_with(config, TcpTransport, Arc::new(SystemClock), &test_env).await?;
            nodes.push(node);
            dirs.push(dir);
        }
        let members: std::collections::BTreeMap<u64, switchyard_control::NodeInfo> = nodes
            .iter()
            .map(|n| (n.app.config.node_id.0, n.app.info.clone()))
            .collect();
        nodes[0].bootstrap(members, &test_env).await?;
        for node in &nodes {
            anyhow::ensure!(
                node.wait_seeded(std::time::Duration::from_secs(10)).await,
                "node {} did not receive the seeded keys",
                node.app.config.node_id
            );
        }
        Ok(TestCluster { nodes, mocks, tls })
    }

    fn node_toml_text(&self, id: usize, mocks: &[MockInfo], dir: &std::path::Path) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "[node]\nid = {id}\nlisten_http = \"127.0.0.1:0\"\ncluster_secret_env = \"SY_TEST_SECRET\"\nshutdown_grace_s = 2\n"
        );
        let _ = writeln!(
            t,
            "[control]\ndata_dir = \"{}\"\nlisten_grpc = \"127.0.0.1:0\"\nbootstrap = false\nadmin_token_env = \"SY_TEST_ADMIN\"\n",
            dir.display()
        );
        t.push_str(&self.node_extra);
        let _ = writeln!(t, "\n[[keys]]\nname = \"test\"\nkey = \"{TEST_KEY}\"\n");
        for (name, secret, models) in &self.extra_keys {
            let ms: Vec<String> = models.iter().map(|m| format!("\"{m}\"")).collect();
            let _ = writeln!(
                t,
                "[[keys]]\nname = \"{name}\"\nkey = \"{secret}\"\nmodels = [{}]\n",
                ms.join(", ")
            );
        }
        for (spec, info) in self.mocks.iter().zip(mocks) {
            // Azure's base URL is the resource; the deployment path goes under it.
            let api_root = if spec.kind == "azure" { "" } else { "/v1" };
            let _ = writeln!(
                t,
                "[[providers]]\nname = \"{}\"\nkind = \"{}\"\nbase_url = \"{}{api_root}\"\ninternal = true\n{}",
                spec.name, spec.kind, info.url, spec.extra
            );
            for (m, i, o) in spec.prices.iter().filter(|_| spec.price_override) {
                let _ = writeln!(
                    t,
                    "[[providers.models]]\nname = \"{m}\"\ninput_micros_per_mtok = {i}\noutput_micros_per_mtok = {o}"
                );
            }
            t.push('\n');
        }
        for r in &self.routes {
            let ts: Vec<String> = r
                .targets
                .iter()
                .map(|(p, m)| format!("{{ provider = \"{p}\", model = \"{m}\" }}"))
                .collect();
            let fb: Vec<String> = r.fallbacks.iter().map(|f| format!("\"{f}\"")).collect();
            let _ = writeln!(
                t,
                "[[routes]]\nmodel = \"{}\"\nstrategy = \"{}\"\ntargets = [{}]\nfallbacks = [{}]\n",
                r.model,
                r.strategy,
                ts.join(", "),
                fb.join(", ")
            );
            if let Some(tier) = &r.tier {
                let _ = writeln!(t, "tier = \"{tier}\"\n");
            }
        }
        t
    }
}

/// Adds `authorization: Bearer <token>` to every admin call.
#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

/// The admin client type tests use.
pub type AdminClient = switchyard_proto::pb::admin_service_client::AdminServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
>;

/// A running mock.
pub struct MockInfo {
    /// Its name.
    pub name: String,
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// Dropping it stops the mock.
    _stop: oneshot::Sender<()>,
}

/// Nodes and mocks of one test.
pub struct TestCluster {
    /// The nodes, id 1 first.
    pub nodes: Vec<NodeHandle>,
    /// The mocks.
    pub mocks: Vec<MockInfo>,
    /// Certificates, when gRPC runs over TLS.
    pub tls: Option<crate::tls::TestTls>,
}

impl TestCluster {
    /// A builder.
    pub fn builder() -> Builder {
        Builder {
            nodes: 1,
            ..Builder::default()
        }
    }

    /// Base URL of node `i` (0-based).
    pub fn url(&self, i: usize) -> String {
        self.nodes[i].http_url()
    }

    /// Base URL of a mock.
    pub fn mock_url(&self, name: &str) -> String {
        self.mocks
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.url.clone())
            .unwrap_or_default()
    }

    /// `POST /v1/chat/completions` on node `i` with the test key.
    ///
    /// # Errors
    /// Transport errors.
    pub async fn chat(&self, i: usize, body: &serde_json::Value) -> anyhow::Result<Reply> {
        http::post_json(
            &format!("{}/v1/chat/completions", self.url(i)),
            &[("authorization", &format!("Bearer {TEST_KEY}"))],
            body,
        )
        .await
    }

    /// `POST /v1/messages` on node `i` with the test key (as `x-api-key`).
    ///
    /// # Errors
    /// Transport errors.
    pub async fn messages(&self, i: usize, body: &serde_json::Value) -> anyhow::Result<Reply> {
        http::post_json(
            &format!("{}/v1/messages", self.url(i)),
            &[("x-api-key", TEST_KEY), ("anthropic-version", "2023-06-01")],
            body,
        )
        .await
    }

    /// Sets faults on a mock (`POST /_mock/faults`).
    ///
    /// # Errors
    /// Transport errors or a refusal by the mock.
    pub async fn fault(&self, mock: &str, faults: &serde_json::Value) -> anyhow::Result<()> {
        let r = http::post_json(
            &format!("{}/_mock/faults", self.mock_url(mock)),
            &[],
            faults,
        )
        .await?;
        anyhow::ensure!(
            r.status == 200,
            "mock refused faults: {} {}",
            r.status,
            r.text()
        );
        Ok(())
    }

    /// Clears a mock's faults.
    ///
    /// # Errors
    /// Transport errors.
    pub async fn clear_faults(&self, mock: &str) -> anyhow::Result<()> {
        http::delete(&format!("{}/_mock/faults", self.mock_url(mock))).await?;
        Ok(())
    }

    /// A mock's ledger.
    ///
    /// # Errors
    /// Transport errors.
    pub async fn ledger(&self, mock: &str) -> anyhow::Result<serde_json::Value> {
        Ok(
            http::get(&format!("{}/_mock/ledger", self.mock_url(mock)), &[])
                .await?
                .json(),
        )
    }

    /// API requests a mock has received (faulted ones included).
    ///
    /// # Errors
    /// Transport errors.
    pub async fn mock_requests(&self, mock: &str) -> anyhow::Result<u64> {
        let v = http::get(&format!("{}/_mock/stats", self.mock_url(mock)), &[])
            .await?
            .json();
        v.get("requests")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| anyhow::anyhow!("mock stats without requests: {v}"))
    }

    /// An admin client for node `i` authenticated with `token`.
    ///
    /// # Errors
    /// When the channel cannot be built.
    pub async fn admin_with(&self, i: usize, token: &str) -> anyhow::Result<AdminClient> {
        let mut endpoint = tonic::transport::Channel::from_shared(self.grpc_url(i))?;
        if let Some(tls) = &self.tls {
            let ca = tonic::transport::Certificate::from_pem(std::fs::read(&tls.ca)?);
            let id = tonic::transport::Identity::from_pem(
                std::fs::read(&tls.admin_cert)?,
                std::fs::read(&tls.admin_key)?,
            );
            endpoint = endpoint.tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(ca)
                    .identity(id),
            )?;
        }
        let channel = endpoint.connect().await?;
        let bearer = Bearer(format!("Bearer {token}").parse()?);
        Ok(
            switchyard_proto::pb::admin_service_client::AdminServiceClient::with_interceptor(
                channel, bearer,
            ),
        )
    }

    /// An admin client for node `i` with the test admin token.
    ///
    /// # Errors
    /// When the channel cannot be built.
    pub async fn admin(&self, i: usize) -> anyhow::Result<AdminClient> {
        self.admin_with(i, TEST_ADMIN_TOKEN).await
    }

    /// gRPC URL of node `i` (admin and Raft).
    pub fn grpc_url(&self, i: usize) -> String {
        self.nodes[i].grpc_url()
    }

    /// Stops every node and removes their data.
    pub async fn shutdown(self) {
        for n in self.nodes {
            let dir = n.app.config.control.data_dir.clone();
            n.shutdown().await;
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

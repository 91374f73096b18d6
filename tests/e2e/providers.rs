//! Providers and routes live in the replicated state: added, changed and removed through the
//! admin API on any node, in effect on every node within a second, with provider keys sealed
//! before they enter the log and never shown again.

use std::time::Duration;

use serde_json::json;
use switchyard_proto::pb;
use switchyard_testkit::{MockSpec, TestCluster, eventually};
use tonic::Code;

use crate::bounded;

const UPSTREAM_KEY: &str = "sk-upstream-sealed-secret-4b1d";

/// 1. A provider (with an API key) and a route are added through node 2's admin API.
/// 2. Within 1 s every node serves the new model through the new provider.
/// 3. Listings show that a key is set, never the key; no node's data directory (Raft log,
///    snapshots, sled files) holds the key in the clear.
/// 4. Removing a provider a route still targets is refused; after the route goes, the provider
///    can be removed and the model is gone from every node.
#[tokio::test(flavor = "multi_thread")]
async fn provider_and_route_added_at_runtime_serve_on_every_node_with_the_key_sealed()
-> anyhow::Result<()> {
    bounded(async {
        let c = TestCluster::builder()
            .nodes(3)
            .mock(MockSpec::openai("mock-a", &["gpt-4o-mini"], 150_000, 600_000))
            .route("gpt-4o-mini", "priority", &[("mock-a", "gpt-4o-mini")], &[])
            .start()
            .await?;
        // A second upstream that no configuration knows about.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let late_url = format!("http://{}", listener.local_addr()?);
        let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(switchyard_mock::serve(listener, switchyard_mock::MockConfig { name: "late".into(), ..Default::default() }, async move {
            let _ = stopped.await;
        }));

        let mut admin = c.admin(1).await?;
        let provider = pb::ProviderInfo { name: "late".into(), kind: "openai".into(), base_url: format!("{late_url}/v1"), internal: true, ..Default::default() };
        let put = admin.put_provider(pb::PutProviderRequest { provider: Some(provider), api_key: UPSTREAM_KEY.into(), clear_api_key: false }).await?.into_inner();
        assert!(put.has_api_key && put.key_version == 1, "{put:?}");
        let route = pb::RouteInfo { model: "late-model".into(), strategy: String::new(), targets: vec![pb::RouteTarget { provider: "late".into(), model: "gpt-4o-mini".into(), weight: 1 }], fallbacks: vec![], tier: String::new(), limits: None };
        admin.put_route(route).await?;
        let body = json!({"model": "late-model", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]});
        for i in 0..3 {
            let r = eventually(Duration::from_secs(1), "the new model served", || async {
                let r = c.chat(i, &body).await.ok()?;
                (r.status == 200).then_some(r)
            })
            .await?;
            assert_eq!(r.header("x-switchyard-provider").as_deref(), Some("late"));
        }

        let listed = admin.list_providers(pb::ListProvidersRequest {}).await?.into_inner();
        assert!(!format!("{listed:?}").contains(UPSTREAM_KEY));
        assert!(listed.providers.iter().any(|p| p.name == "late" && p.has_api_key));
        for n in &c.nodes {
            let dir = n.app.config.control.data_dir.clone();
            // The search can find what the log holds in the clear (the route's name) ...
            assert!(dir_contains(&dir, b"late-model")?, "{} does not hold the log in a searchable form", dir.display());
            // ... and the provider key is not among it.
            assert!(!dir_contains(&dir, UPSTREAM_KEY.as_bytes())?, "{} holds the provider key in the clear", dir.display());
        }

        let refused = admin.remove_provider(pb::NameRequest { name: "late".into() }).await.unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        admin.remove_route(pb::NameRequest { name: "late-model".into() }).await?;
        admin.remove_provider(pb::NameRequest { name: "late".into() }).await?;
        for i in 0..3 {
            eventually(Duration::from_secs(1), "the model is gone", || async { (c.chat(i, &body).await.ok()?.status == 404).then_some(()) }).await?;
        }
        // The configured model still works.
        assert_eq!(c.chat(0, &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})).await?.status, 200);
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// Bad provider and route input is refused with InvalidArgument or NotFound, and an operator may
/// not set a credential.
#[tokio::test(flavor = "multi_thread")]
async fn bad_provider_and_route_input_is_refused() -> anyhow::Result<()> {
    bounded(async {
        let c = TestCluster::builder()
            .mock(MockSpec::openai("mock-a", &["m"], 1, 1))
            .route("m", "priority", &[("mock-a", "m")], &[])
            .start()
            .await?;
        let mut admin = c.admin(0).await?;
        let bad = |kind: &str, url: &str| pb::PutProviderRequest {
            provider: Some(pb::ProviderInfo {
                name: "p".into(),
                kind: kind.into(),
                base_url: url.into(),
                ..Default::default()
            }),
            api_key: String::new(),
            clear_api_key: false,
        };
        assert_eq!(
            admin
                .put_provider(bad("grpc", "http://x"))
                .await
                .unwrap_err()
                .code(),
            Code::InvalidArgument
        );
        assert_eq!(
            admin
                .put_provider(bad("openai", "ftp://x"))
                .await
                .unwrap_err()
                .code(),
            Code::InvalidArgument
        );
        let route = |provider: &str| pb::RouteInfo {
            model: "r".into(),
            strategy: String::new(),
            targets: vec![pb::RouteTarget {
                provider: provider.into(),
                model: String::new(),
                weight: 1,
            }],
            fallbacks: vec![],
            tier: String::new(),
            limits: None,
        };
        assert_eq!(
            admin.put_route(route("ghost")).await.unwrap_err().code(),
            Code::NotFound
        );
        assert_eq!(
            admin
                .put_route(pb::RouteInfo {
                    model: "r".into(),
                    ..Default::default()
                })
                .await
                .unwrap_err()
                .code(),
            Code::InvalidArgument
        );
        let operator = admin
            .create_admin_token(pb::CreateAdminTokenRequest {
                name: "ops".into(),
                role: "operator".into(),
            })
            .await?
            .into_inner()
            .token;
        let mut ops = c.admin_with(0, &operator).await?;
        let mut with_key = bad("openai", "https://api.example.com/v1");
        with_key.api_key = "sk-x".into();
        assert_eq!(
            ops.put_provider(with_key).await.unwrap_err().code(),
            Code::PermissionDenied
        );
        let state = c.nodes[0]
            .app
            .control
            .state()
            .read()
            .map(|s| (s.providers.len(), s.routes.len()))
            .unwrap();
        assert_eq!(state, (1, 1));
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// Whether any file under `dir` contains `needle`.
fn dir_contains(dir: &std::path::Path, needle: &[u8]) -> anyhow::Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if dir_contains(&path, needle)? {
                return Ok(true);
            }
        } else if std::fs::read(&path)?
            .windows(needle.len())
            .any(|w| w == needle)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

//! The control plane on in-process nodes: cluster status, keys replicated to every node within a
//! second, hard budget caps under concurrency, the spend report, and refusal of bad admin input.

use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_proto::pb;
use switchyard_testkit::cluster::TEST_KEY;
use switchyard_testkit::{MockSpec, TestCluster, eventually, post_json};
use tonic::Code;

use crate::bounded;

fn three_nodes() -> switchyard_testkit::cluster::Builder {
    TestCluster::builder()
        .nodes(3)
        .mock(MockSpec::openai(
            "mock-a",
            &["gpt-4o-mini"],
            150_000,
            600_000,
        ))
        .route("gpt-4o-mini", "priority", &[("mock-a", "gpt-4o-mini")], &[])
}

fn chat_body() -> serde_json::Value {
    json!({"model": "gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": "hello there"}]})
}

async fn chat_with(
    c: &TestCluster,
    node: usize,
    key: &str,
) -> anyhow::Result<switchyard_testkit::Reply> {
    post_json(
        &format!("{}/v1/chat/completions", c.url(node)),
        &[("authorization", &format!("Bearer {key}"))],
        &chat_body(),
    )
    .await
}

/// A follower (index into `c.nodes`) according to the cluster status.
async fn follower(c: &TestCluster) -> anyhow::Result<usize> {
    let status = c
        .admin(0)
        .await?
        .cluster_status(pb::ClusterStatusRequest {})
        .await?
        .into_inner();
    let id = status
        .members
        .iter()
        .find(|m| m.role == "follower")
        .map(|m| m.id)
        .ok_or_else(|| anyhow::anyhow!("no follower in {status:?}"))?;
    c.nodes
        .iter()
        .position(|n| n.app.config.node_id.0 == id)
        .ok_or_else(|| anyhow::anyhow!("no node with id {id}"))
}

/// Every node answers `cluster status` with the same 3 voters, one leader, all healthy.
#[tokio::test(flavor = "multi_thread")]
async fn cluster_status_from_any_node_shows_three_voters_and_one_leader() -> anyhow::Result<()> {
    bounded(async {
        let c = three_nodes().start().await?;
        for i in 0..3 {
            let s = eventually(
                Duration::from_secs(5),
                "a leader and healthy members",
                || async {
                    let s = c
                        .admin(i)
                        .await
                        .ok()?
                        .cluster_status(pb::ClusterStatusRequest {})
                        .await
                        .ok()?
                        .into_inner();
                    (s.leader != 0 && s.members.iter().all(|m| m.healthy)).then_some(s)
                },
            )
            .await?;
            assert_eq!(s.members.len(), 3, "{s:?}");
            assert_eq!(s.members.iter().filter(|m| m.role == "leader").count(), 1);
            assert_eq!(s.members.iter().filter(|m| m.role == "follower").count(), 2);
            let leader = s.members.iter().find(|m| m.role == "leader").unwrap();
            assert_eq!(leader.id, s.leader);
            assert!(
                s.members
                    .iter()
                    .all(|m| m.http.starts_with("http://127.0.0.1:")
                        && m.grpc.starts_with("http://127.0.0.1:"))
            );
            assert!(s.term >= 1 && s.applied_index >= 1);
        }
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// 1. A key created through a follower works on every node within 1 s.
/// 2. Revoked through another node, it is refused on every node within 1 s.
#[tokio::test(flavor = "multi_thread")]
async fn key_created_through_a_follower_works_everywhere_within_1s_and_revocation_too()
-> anyhow::Result<()> {
    bounded(async {
        let c = three_nodes().start().await?;
        let f = follower(&c).await?;
        let created = c
            .admin(f)
            .await?
            .create_key(pb::CreateKeyRequest {
                name: "alice".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        let acked = Instant::now();
        for i in 0..3 {
            eventually(
                Duration::from_secs(1)
                    .saturating_sub(acked.elapsed())
                    .max(Duration::from_millis(50)),
                "new key accepted",
                || async {
                    (chat_with(&c, i, &created.key).await.ok()?.status == 200).then_some(())
                },
            )
            .await?;
        }
        let visible_everywhere = acked.elapsed();
        assert!(
            visible_everywhere < Duration::from_secs(1),
            "{visible_everywhere:?}"
        );
        let other = (f + 1) % 3;
        let revoked = c
            .admin(other)
            .await?
            .revoke_key(pb::KeyIdRequest {
                id: created.id.clone(),
            })
            .await?
            .into_inner();
        assert_eq!(revoked.status, "revoked");
        let acked = Instant::now();
        for i in 0..3 {
            eventually(
                Duration::from_secs(1)
                    .saturating_sub(acked.elapsed())
                    .max(Duration::from_millis(50)),
                "revoked key refused",
                || async {
                    let r = chat_with(&c, i, &created.key).await.ok()?;
                    (r.status == 401 && r.header("x-should-retry").as_deref() == Some("false"))
                        .then_some(())
                },
            )
            .await?;
        }
        assert!(acked.elapsed() < Duration::from_secs(1));
        println!(
            "key visible on all 3 nodes {visible_everywhere:?} after the ack; revocation in {:?}",
            acked.elapsed()
        );
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// Hard cap: a key with a $0.002 budget, 64 concurrent clients spread over the 3 nodes until
/// refused. The mock's ledger (the independent oracle) never exceeds the budget, the spend the
/// cluster reports covers the ledger, and refusals are 429 `insufficient_quota` that say not to
/// retry.
#[tokio::test(flavor = "multi_thread")]
async fn hard_cap_holds_under_64_concurrent_clients_over_three_nodes() -> anyhow::Result<()> {
    bounded(async {
        const BUDGET_MICROS: u64 = 2_000;
        let c = three_nodes().start().await?;
        let created = c.admin(0).await?.create_key(pb::CreateKeyRequest { name: "capped".into(), budget_micros: BUDGET_MICROS, ..Default::default() }).await?.into_inner();
        eventually(Duration::from_secs(2), "budget on every node", || async {
            c.nodes.iter().all(|n| n.app.control.state().read().map(|s| s.budgets.contains_key(&format!("key:{}", created.id))).unwrap_or(false)).then_some(())
        })
        .await?;
        let urls: Vec<String> = (0..3).map(|i| c.url(i)).collect();
        let mut clients = Vec::new();
        for n in 0..64 {
            let url = format!("{}/v1/chat/completions", urls[n % 3]);
            let key = created.key.clone();
            clients.push(tokio::spawn(async move {
                let mut ok = 0u32;
                let deadline = Instant::now() + Duration::from_secs(30);
                while Instant::now() < deadline {
                    let r = post_json(&url, &[("authorization", &format!("Bearer {key}"))], &chat_body()).await?;
                    match r.status {
                        200 => ok += 1,
                        429 => return anyhow::Ok((ok, Some(r))),
                        other => anyhow::bail!("unexpected {other}: {}", r.text()),
                    }
                }
                anyhow::Ok((ok, None))
            }));
        }
        let mut served = 0;
        for h in futures::future::join_all(clients).await {
            let (ok, refusal) = h??;
            served += ok;
            let r = refusal.expect("every client is refused once the budget is spent");
            assert_eq!(r.json()["error"]["code"], "insufficient_quota", "{}", r.text());
            assert_eq!(r.header("x-should-retry").as_deref(), Some("false"));
        }
        let ledger = c.ledger("mock-a").await?;
        let billed = ledger["total_billed_micros"].as_u64().unwrap();
        assert_eq!(ledger["entries"].as_array().unwrap().len() as u32, served);
        assert!(billed <= BUDGET_MICROS, "overspend: ledger {billed} > budget {BUDGET_MICROS}");
        let mut admin = c.admin(1).await?;
        let spent = eventually(Duration::from_secs(5), "spend settled", || {
            let mut admin = admin.clone();
            let id = created.id.clone();
            async move {
                let s = admin.spend(pb::SpendRequest { key: id, ..Default::default() }).await.ok()?.into_inner();
                (s.spent_micros >= billed).then_some(s.spent_micros)
            }
        })
        .await?;
        let budget = admin.show_budget(pb::ShowBudgetRequest { key: created.id.clone(), ..Default::default() }).await?.into_inner();
        assert!(budget.spent_micros + budget.reserved_micros <= BUDGET_MICROS, "{budget:?}");
        println!("hard cap: {served} requests served, ledger {billed} µ$ of {BUDGET_MICROS} µ$ (overspend 0, unused {} µ$), reported spend {spent} µ$", BUDGET_MICROS - billed);
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// The spend report groups settled cost by key, model and tag, and matches the ledger.
#[tokio::test(flavor = "multi_thread")]
async fn spend_report_by_key_model_and_tag_matches_the_ledger() -> anyhow::Result<()> {
    bounded(async {
        let c = three_nodes().start().await?;
        let mut admin = c.admin(0).await?;
        let k = admin
            .create_key(pb::CreateKeyRequest {
                name: "reporting".into(),
                team: "research".into(),
                budget_micros: 1_000_000,
                ..Default::default()
            })
            .await?
            .into_inner();
        // The key and its budget take effect on every node within 1 s.
        for n in &c.nodes {
            let budget = format!("key:{}", k.id);
            eventually(
                Duration::from_secs(1),
                "key and budget replicated",
                || async {
                    let s = n.app.control.state().read().ok()?;
                    (s.keys.contains_key(&k.id) && s.budgets.contains_key(&budget)).then_some(())
                },
            )
            .await?;
        }
        for (i, tag) in ["project=alpha", "project=beta", "project=alpha"]
            .iter()
            .enumerate()
        {
            let r = post_json(
                &format!("{}/v1/chat/completions", c.url(i)),
                &[
                    ("authorization", &format!("Bearer {}", k.key)),
                    ("x-switchyard-tags", tag),
                ],
                &chat_body(),
            )
            .await?;
            assert_eq!(r.status, 200, "{}", r.text());
        }
        let billed = c.ledger("mock-a").await?["total_billed_micros"]
            .as_u64()
            .unwrap();
        let by_tag = eventually(Duration::from_secs(5), "settled spend", || {
            let mut admin = admin.clone();
            async move {
                let s = admin
                    .spend(pb::SpendRequest {
                        by: "tag".into(),
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner();
                (s.spent_micros == billed).then_some(s)
            }
        })
        .await?;
        assert_eq!(
            by_tag
                .rows
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            vec!["project=alpha", "project=beta"]
        );
        let by_model = admin
            .spend(pb::SpendRequest {
                by: "model".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        assert_eq!(by_model.rows.len(), 1);
        assert_eq!(by_model.rows[0].spent_micros, billed);
        let by_key = admin
            .spend(pb::SpendRequest {
                key: k.id.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        assert_eq!(by_key.spent_micros, billed);
        let by_team = admin
            .spend(pb::SpendRequest {
                team: "research".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        assert_eq!(by_team.spent_micros, billed);
        // By period: today's row (UTC) holds it all, for the whole cluster and for the key.
        let today = {
            let days = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs()
                / 86_400;
            // Days since the epoch to a date, by stepping whole years and months: slow, plain.
            let (mut y, mut d) = (1970u64, days);
            let leap =
                |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
            while d >= if leap(y) { 366 } else { 365 } {
                d -= if leap(y) { 366 } else { 365 };
                y += 1;
            }
            let lengths = [
                31,
                if leap(y) { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            let mut m = 0;
            while d >= lengths[m] {
                d -= lengths[m];
                m += 1;
            }
            format!("{y:04}-{:02}-{:02}", m + 1, d + 1)
        };
        for (key, by, name) in [
            (String::new(), "day", today.clone()),
            (k.id.clone(), "day", today.clone()),
            (k.id.clone(), "month", today[..7].to_owned()),
        ] {
            let r = admin
                .spend(pb::SpendRequest {
                    key,
                    by: by.into(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            assert_eq!(r.rows.len(), 1, "{r:?}");
            assert_eq!(
                (r.rows[0].name.as_str(), r.rows[0].spent_micros),
                (name.as_str(), billed)
            );
        }
        // A key's spend is not kept per model: asking for that is an error, not a wrong table.
        let err = admin
            .spend(pb::SpendRequest {
                key: k.id.clone(),
                by: "model".into(),
                ..Default::default()
            })
            .await
            .expect_err("per key and model");
        assert_eq!(err.code(), Code::InvalidArgument);
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// Bad admin input gets the right gRPC status and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn bad_admin_input_is_refused_with_the_right_status_and_changes_nothing() -> anyhow::Result<()>
{
    bounded(async {
        let c = three_nodes().start().await?;
        let mut admin = c.admin(1).await?;
        let viewer = admin
            .create_admin_token(pb::CreateAdminTokenRequest {
                name: "watcher".into(),
                role: "viewer".into(),
            })
            .await?
            .into_inner()
            .token;
        let operator = admin
            .create_admin_token(pb::CreateAdminTokenRequest {
                name: "ops".into(),
                role: "operator".into(),
            })
            .await?
            .into_inner()
            .token;
        let before = {
            let s = c.nodes[0].app.control.state().read().unwrap();
            (s.keys.len(), s.budgets.len(), s.audit.len())
        };
        let code = |r: Result<(), tonic::Status>| -> Code {
            match r {
                Ok(_) => Code::Ok,
                Err(s) => {
                    assert!(!s.message().is_empty());
                    s.code()
                }
            }
        };
        assert_eq!(
            code(
                admin
                    .create_key(pb::CreateKeyRequest::default())
                    .await
                    .map(|_| ())
            ),
            Code::InvalidArgument,
            "missing name"
        );
        assert_eq!(
            code(
                admin
                    .create_key(pb::CreateKeyRequest {
                        name: "x".into(),
                        period: "weekly".into(),
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            ),
            Code::InvalidArgument,
            "bad period"
        );
        assert_eq!(
            code(
                admin
                    .set_budget(pb::SetBudgetRequest {
                        limit_micros: 5,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            ),
            Code::InvalidArgument,
            "no scope"
        );
        assert_eq!(
            code(
                admin
                    .set_budget(pb::SetBudgetRequest {
                        key: "k".into(),
                        team: "t".into(),
                        limit_micros: 5,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            ),
            Code::InvalidArgument,
            "two scopes"
        );
        assert_eq!(
            code(
                admin
                    .set_budget(pb::SetBudgetRequest {
                        key: "key_nope".into(),
                        limit_micros: 5,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            ),
            Code::NotFound,
            "unknown key budget"
        );
        assert_eq!(
            code(
                admin
                    .set_budget(pb::SetBudgetRequest {
                        team: "t".into(),
                        limit_micros: 5,
                        alert_thresholds_pct: vec![150],
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            ),
            Code::InvalidArgument,
            "bad threshold"
        );
        assert_eq!(
            code(
                admin
                    .show_key(pb::KeyIdRequest {
                        id: "key_nope".into()
                    })
                    .await
                    .map(|_| ())
            ),
            Code::NotFound
        );
        assert_eq!(
            code(
                admin
                    .revoke_key(pb::KeyIdRequest {
                        id: "key_nope".into()
                    })
                    .await
                    .map(|_| ())
            ),
            Code::NotFound
        );
        assert_eq!(
            code(
                admin
                    .spend(pb::SpendRequest {
                        by: "color".into(),
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            ),
            Code::InvalidArgument
        );
        assert_eq!(
            code(
                admin
                    .create_admin_token(pb::CreateAdminTokenRequest {
                        name: "x".into(),
                        role: "god".into()
                    })
                    .await
                    .map(|_| ())
            ),
            Code::InvalidArgument
        );
        let mut wrong = c.admin_with(0, "sy-admin-wrong-token-000000").await?;
        assert_eq!(
            code(
                wrong
                    .list_keys(pb::ListKeysRequest::default())
                    .await
                    .map(|_| ())
            ),
            Code::Unauthenticated
        );
        let mut virtual_key = c.admin_with(0, TEST_KEY).await?;
        assert_eq!(
            code(
                virtual_key
                    .list_keys(pb::ListKeysRequest::default())
                    .await
                    .map(|_| ())
            ),
            Code::Unauthenticated,
            "a virtual key is not an admin token"
        );
        let mut v = c.admin_with(2, &viewer).await?;
        assert_eq!(
            code(
                v.list_keys(pb::ListKeysRequest::default())
                    .await
                    .map(|_| ())
            ),
            Code::Ok,
            "viewers read"
        );
        assert_eq!(
            code(
                v.revoke_key(pb::KeyIdRequest { id: "test".into() })
                    .await
                    .map(|_| ())
            ),
            Code::PermissionDenied,
            "viewers do not write"
        );
        assert_eq!(
            code(
                v.set_budget(pb::SetBudgetRequest {
                    team: "t".into(),
                    limit_micros: 5,
                    ..Default::default()
                })
                .await
                .map(|_| ())
            ),
            Code::PermissionDenied
        );
        let mut o = c.admin_with(2, &operator).await?;
        assert_eq!(
            code(
                o.create_key(pb::CreateKeyRequest {
                    name: "x".into(),
                    ..Default::default()
                })
                .await
                .map(|_| ())
            ),
            Code::PermissionDenied,
            "operators never see secrets"
        );
        let after = {
            let s = c.nodes[0].app.control.state().read().unwrap();
            (s.keys.len(), s.budgets.len(), s.audit.len())
        };
        assert_eq!(before, after, "refused calls changed the state");
        // The test key still works: nothing was revoked.
        assert_eq!(c.chat(0, &chat_body()).await?.status, 200);
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// The current calendar minute (Unix ms / 60 000): the window per-key limits count in.
fn minute_window() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        / 60_000
}

/// Waits for the next minute window when fewer than 5 s are left of this one (a rate-limit
/// test takes about a second), and returns the window the test runs in.
async fn start_of_a_minute_window() -> u64 {
    let into_minute_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
            % 60_000
    };
    if into_minute_ms() > 55_000 {
        tokio::time::sleep(Duration::from_millis(60_000 - into_minute_ms() + 50)).await;
    }
    minute_window()
}

/// Sends `body` with `key` to the node at `http` until a 429 (at most `max` requests): how many
/// were answered 200 first, and the refusal.
async fn until_refused(
    http: String,
    key: String,
    body: serde_json::Value,
    max: usize,
) -> anyhow::Result<(u64, switchyard_testkit::Reply)> {
    let url = format!("{http}/v1/chat/completions");
    let auth = format!("Bearer {key}");
    let mut ok = 0u64;
    for _ in 0..max {
        let r = post_json(&url, &[("authorization", &auth)], &body).await?;
        match r.status {
            200 => ok += 1,
            429 => return Ok((ok, r)),
            other => anyhow::bail!("unexpected {other}: {}", r.text()),
        }
    }
    anyhow::bail!("never limited")
}

/// A key limited to 60 requests per minute, hammered through all 3 nodes by 12 clients: the
/// cluster admits at most 60 in the minute (the stated tolerance: 0 over per minute window; at
/// most one unused slice per node lost), and refusals are 429 `rate_limit_error` with
/// `Retry-After` and `x-should-retry: true`.
#[tokio::test(flavor = "multi_thread")]
async fn key_rpm_limit_holds_cluster_wide() -> anyhow::Result<()> {
    bounded(async {
        const RPM: u64 = 60;
        let c = three_nodes().start().await?;
        let created = c
            .admin(0)
            .await?
            .create_key(pb::CreateKeyRequest {
                name: "limited".into(),
                rpm: RPM,
                ..Default::default()
            })
            .await?
            .into_inner();
        eventually(Duration::from_secs(2), "key on every node", || async {
            c.nodes
                .iter()
                .all(|n| {
                    n.app
                        .control
                        .state()
                        .read()
                        .map(|s| s.keys.contains_key(&created.id))
                        .unwrap_or(false)
                })
                .then_some(())
        })
        .await?;
        // Stay inside one minute window: the test takes about a second.
        let window = start_of_a_minute_window().await;
        let clients: Vec<_> = (0..12)
            .map(|n| {
                tokio::spawn(until_refused(
                    c.url(n % 3),
                    created.key.clone(),
                    chat_body(),
                    100,
                ))
            })
            .collect();
        let mut accepted = 0;
        for h in futures::future::join_all(clients).await {
            let (ok, r) = h??;
            accepted += ok;
            assert_eq!(
                r.json()["error"]["type"],
                "rate_limit_error",
                "{}",
                r.text()
            );
            assert_eq!(r.header("x-should-retry").as_deref(), Some("true"));
            let retry: u64 = r.header("retry-after").expect("Retry-After").parse()?;
            assert!((1..=60).contains(&retry));
        }
        assert_eq!(minute_window(), window, "the run crossed a minute boundary");
        assert!(accepted <= RPM, "{accepted} accepted with rpm {RPM}");
        assert!(
            accepted >= RPM - 3 * (RPM / 6),
            "{accepted} accepted: more than one slice per node was lost"
        );
        println!("rpm {RPM}: {accepted} requests accepted cluster-wide in one minute window");
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// A key limited to 3,000 tokens per minute, used through all 3 nodes by 6 clients whose
/// requests each reserve an upper bound of more than 100 tokens (`max_tokens` plus the prompt's
/// bytes) but use about 20: admission takes the bound and gives back the unused part once the
/// usage is known, so the tokens the mock actually served stay under the limit yet reach most
/// of it (not the tenth that counting bounds alone would allow), and refusals are 429
/// `rate_limit_error` with `Retry-After`.
#[tokio::test(flavor = "multi_thread")]
async fn key_tpm_limit_holds_cluster_wide() -> anyhow::Result<()> {
    bounded(async {
        const TPM: u64 = 3_000;
        const MAX_TOKENS: u64 = 100;
        let c = three_nodes().start().await?;
        let created = c
            .admin(0)
            .await?
            .create_key(pb::CreateKeyRequest {
                name: "token-limited".into(),
                tpm: TPM,
                ..Default::default()
            })
            .await?
            .into_inner();
        for node in 0..3 {
            eventually(Duration::from_secs(2), "key on every node", || async {
                let r = chat_with(&c, node, &created.key).await.ok()?;
                (r.status == 200).then_some(())
            })
            .await?;
        }
        let window = start_of_a_minute_window().await;
        let body = json!({"model": "gpt-4o-mini", "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": "hello there"}]});
        let clients: Vec<_> = (0..6)
            .map(|n| tokio::spawn(until_refused(c.url(n % 3), created.key.clone(), body.clone(), 300)))
            .collect();
        // The three probes above count too.
        let mut accepted = 3;
        for h in futures::future::join_all(clients).await {
            let (ok, r) = h??;
            accepted += ok;
            assert_eq!(r.json()["error"]["type"], "rate_limit_error", "{}", r.text());
            assert_eq!(r.header("x-should-retry").as_deref(), Some("true"));
            assert!(r.header("retry-after").is_some());
        }
        assert_eq!(minute_window(), window, "the run crossed a minute boundary");
        assert!(
            accepted * MAX_TOKENS > TPM,
            "only {accepted} requests admitted: unused tokens were not given back"
        );
        let ledger = c.ledger("mock-a").await?;
        let served: u64 = ledger["entries"]
            .as_array()
            .map(|es| {
                es.iter()
                    .map(|e| e["prompt_tokens"].as_u64().unwrap_or(0) + e["completion_tokens"].as_u64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0);
        assert!(served <= TPM, "the mock served {served} tokens under {TPM} TPM");
        assert!(served >= TPM / 2, "only {served} of {TPM} tokens used");
        println!("tpm {TPM}: {accepted} requests admitted cluster-wide in one minute window, {served} tokens served");
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// Leadership moves to a chosen follower on request, and the cluster keeps accepting writes.
#[tokio::test(flavor = "multi_thread")]
async fn transfer_leader_moves_leadership_to_the_chosen_voter() -> anyhow::Result<()> {
    bounded(async {
        let c = three_nodes().start().await?;
        let f = follower(&c).await?;
        let target = c.nodes[f].app.config.node_id.0;
        let status = c
            .admin((f + 1) % 3)
            .await?
            .transfer_leader(pb::TransferLeaderRequest { id: target })
            .await?
            .into_inner();
        assert_eq!(status.leader, target, "{status:?}");
        for i in 0..3 {
            eventually(
                Duration::from_secs(2),
                "every node follows the new leader",
                || async { (c.nodes[i].app.control.leader()?.0 == target).then_some(()) },
            )
            .await?;
        }
        c.admin(0)
            .await?
            .create_key(pb::CreateKeyRequest {
                name: "after-transfer".into(),
                ..Default::default()
            })
            .await?;
        let wrong = c
            .admin(0)
            .await?
            .transfer_leader(pb::TransferLeaderRequest { id: 99 })
            .await
            .unwrap_err();
        assert_eq!(wrong.code(), Code::InvalidArgument);
        // The transfer is in the replicated audit log, under the admin token's name, on every
        // node (the refused one is not).
        for node in 0..3 {
            let audit = eventually(Duration::from_secs(2), "transfer audited", || async {
                let a = c
                    .admin(node)
                    .await
                    .ok()?
                    .audit(pb::AuditRequest { limit: 0 })
                    .await
                    .ok()?
                    .into_inner();
                a.entries
                    .iter()
                    .any(|e| e.what.starts_with("transfer leadership to node"))
                    .then_some(a)
            })
            .await?;
            assert!(!audit.entries.iter().any(|e| e.what.contains("node 99")));
        }
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// A team budget caps every key of the team together: once one key spent it, the other is
/// refused too. Teams are listed with their keys.
#[tokio::test(flavor = "multi_thread")]
async fn team_budget_caps_all_keys_of_the_team() -> anyhow::Result<()> {
    bounded(async {
        let c = three_nodes().start().await?;
        let mut admin = c.admin(0).await?;
        admin
            .create_team(pb::NameRequest {
                name: "research".into(),
            })
            .await?;
        admin
            .set_budget(pb::SetBudgetRequest {
                team: "research".into(),
                limit_micros: 300,
                ..Default::default()
            })
            .await?;
        let a = admin
            .create_key(pb::CreateKeyRequest {
                name: "a".into(),
                team: "research".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        let b = admin
            .create_key(pb::CreateKeyRequest {
                name: "b".into(),
                team: "research".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        for n in &c.nodes {
            eventually(Duration::from_secs(1), "keys replicated", || async {
                (n.app.control.state().read().ok()?.keys.len() >= 3).then_some(())
            })
            .await?;
        }
        let mut served = 0;
        loop {
            let r = chat_with(&c, served % 3, &a.key).await?;
            if r.status == 429 {
                assert_eq!(r.json()["error"]["code"], "insufficient_quota");
                break;
            }
            assert_eq!(r.status, 200, "{}", r.text());
            served += 1;
            assert!(served < 100, "the team budget never ran out");
        }
        // Another node may still hold a slice of the team budget (an allowance it reserved), so
        // the other key can spend what is left there; it is refused once that is gone.
        let mut refused = None;
        for i in 0..30 {
            let r = chat_with(&c, i % 3, &b.key).await?;
            if r.status == 429 {
                refused = Some(r);
                break;
            }
            assert_eq!(r.status, 200, "{}", r.text());
        }
        let r = refused.expect("the other key of the team is refused too");
        assert_eq!(r.json()["error"]["code"], "insufficient_quota");
        let billed = c.ledger("mock-a").await?["total_billed_micros"]
            .as_u64()
            .unwrap();
        assert!(billed <= 300, "team overspend: {billed}");
        let teams = admin
            .list_teams(pb::ListTeamsRequest {})
            .await?
            .into_inner()
            .teams;
        let research = teams
            .iter()
            .find(|t| t.name == "research")
            .expect("team listed");
        assert_eq!((research.keys, research.has_budget), (2, true));
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// The Raft and stats services share the admin port, but only members may call them: a caller
/// without the cluster's peer token (or with a wrong one) cannot propose a command past the
/// admin roles (here: an admin token of its own), append log entries or push stats, and the
/// state stays as it was. Members still replicate (a key created afterwards works everywhere).
#[tokio::test(flavor = "multi_thread")]
async fn raft_and_stats_services_refuse_callers_without_the_peer_token() -> anyhow::Result<()> {
    bounded(async {
        let c = three_nodes().start().await?;
        let tokens_before = c.nodes[0]
            .app
            .control
            .state()
            .read()
            .map_or(0, |s| s.admin_tokens.len());
        let cmd = switchyard_control::Command {
            at_ms: 0,
            actor: Some("intruder".into()),
            op: switchyard_control::Op::PutAdminToken {
                name: "intruder".into(),
                digest_hex: "00".repeat(32),
                role: switchyard_control::Role::Admin,
            },
        };
        let data = serde_json::to_vec(&cmd)?;
        for node in 0..3 {
            let mut raft =
                pb::raft_service_client::RaftServiceClient::connect(c.grpc_url(node)).await?;
            // 1. No token.
            let err = raft
                .propose(pb::RaftPayload { data: data.clone() })
                .await
                .expect_err("propose without a peer token must be refused");
            assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
            assert!(err.message().contains("peer token"), "{}", err.message());
            // 2. A wrong token (an admin token is not a peer token either).
            let mut req = tonic::Request::new(pb::RaftPayload { data: data.clone() });
            req.metadata_mut().insert(
                switchyard_core::PeerToken::HEADER,
                switchyard_testkit::cluster::TEST_ADMIN_TOKEN.parse()?,
            );
            let err = raft.propose(req).await.expect_err("wrong peer token");
            assert_eq!(err.code(), Code::Unauthenticated);
            // 3. Log entries and votes are refused before their payload is read.
            let err = raft
                .append_entries(pb::RaftPayload {
                    data: b"{}".to_vec(),
                })
                .await
                .expect_err("append without a peer token");
            assert_eq!(err.code(), Code::Unauthenticated);
            let err = raft
                .vote(pb::RaftPayload {
                    data: b"{}".to_vec(),
                })
                .await
                .expect_err("vote without a peer token");
            assert_eq!(err.code(), Code::Unauthenticated);
            // 4. Stats reports steer routing: refused too.
            let mut stats =
                pb::stats_service_client::StatsServiceClient::connect(c.grpc_url(node)).await?;
            let err = stats
                .push(pb::StatsReport {
                    node: 2,
                    ..Default::default()
                })
                .await
                .expect_err("stats push without a peer token");
            assert_eq!(err.code(), Code::Unauthenticated);
        }
        // 5. Nothing changed, and the members still replicate among themselves.
        for node in &c.nodes {
            let s = node
                .app
                .control
                .state()
                .read()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            assert_eq!(s.admin_tokens.len(), tokens_before);
            assert!(s.admin_tokens.values().all(|t| t.name != "intruder"));
        }
        let created = c
            .admin(1)
            .await?
            .create_key(pb::CreateKeyRequest {
                name: "after-intruder".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        let auth = format!("Bearer {}", created.key);
        eventually(Duration::from_secs(2), "key works on node 3", || async {
            let r = post_json(
                &format!("{}/v1/chat/completions", c.url(2)),
                &[("authorization", auth.as_str())],
                &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await
            .ok()?;
            (r.status == 200).then_some(())
        })
        .await?;
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// Under steady budgeted traffic the request path does not wait on Raft: the node renews an
/// allowance ahead of need once half of it is used, so only the key's first request reserves
/// one itself. Spend stays within the budget and is settled in full.
#[tokio::test(flavor = "multi_thread")]
async fn steady_budgeted_traffic_finds_allowances_renewed_ahead_of_need() -> anyhow::Result<()> {
    bounded(async {
        // An allowance is 1/16 of the budget: about 150 of these requests' bounds.
        const BUDGET_MICROS: u64 = 50_000;
        const REQUESTS: usize = 600;
        let c = three_nodes().start().await?;
        let created = c
            .admin(0)
            .await?
            .create_key(pb::CreateKeyRequest {
                name: "steady".into(),
                budget_micros: BUDGET_MICROS,
                ..Default::default()
            })
            .await?
            .into_inner();
        let scope = format!("key:{}", created.id);
        eventually(Duration::from_secs(2), "budget on node 2", || async {
            c.nodes[1]
                .app
                .control
                .state()
                .read()
                .ok()?
                .budgets
                .contains_key(&scope)
                .then_some(())
        })
        .await?;
        // 1. Sequential requests to one node, paced a little so the flusher (every 100 ms) can
        // renew before an allowance runs out, as it would under a steady production rate.
        for i in 0..REQUESTS {
            let r = chat_with(&c, 1, &created.key).await?;
            assert_eq!(r.status, 200, "request {i}: {}", r.text());
            if i % 20 == 19 {
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
        // 2. Several allowances were used up, all but the first reserved ahead of need.
        let (on_request, ahead) = c.nodes[1].app.guard.reservations();
        println!("reservations: {on_request} while a request waited, {ahead} ahead of need");
        assert_eq!(
            on_request, 1,
            "only the first request waits for an allowance"
        );
        assert!(ahead >= 2, "allowances renewed ahead: {ahead}");
        let metrics = switchyard_testkit::get(&format!("{}/metrics", c.url(1)), &[])
            .await?
            .text();
        assert!(
            metrics.contains("switchyard_budget_reservations_total{path=\"request\"} 1"),
            "{metrics}"
        );
        // 3. Everything the mock billed is settled, and within the budget.
        let billed = c.ledger("mock-a").await?["total_billed_micros"]
            .as_u64()
            .unwrap_or_default();
        assert!(billed <= BUDGET_MICROS);
        eventually(Duration::from_secs(3), "spend settled", || async {
            let spent = c.nodes[0]
                .app
                .control
                .state()
                .read()
                .ok()?
                .budgets
                .get(&scope)?
                .spent_micros;
            (spent == billed).then_some(())
        })
        .await?;
        c.shutdown().await;
        Ok(())
    })
    .await
}

/// A write acknowledged by a follower is visible in its reply and in a read from that follower
/// right after (the follower waits until it applied the entry it forwarded): a budget set twenty
/// times in a row through a follower always shows the limit just set.
#[tokio::test(flavor = "multi_thread")]
async fn admin_writes_through_a_follower_read_back_at_once() -> anyhow::Result<()> {
    bounded(async {
        let c = three_nodes().start().await?;
        let f = follower(&c).await?;
        let mut admin = c.admin(f).await?;
        let team = admin
            .create_team(pb::NameRequest { name: "ryw".into() })
            .await?
            .into_inner();
        assert_eq!(team.name, "ryw");
        for i in 1..=20u64 {
            let limit = 1_000 * i;
            let set = admin
                .set_budget(pb::SetBudgetRequest {
                    team: "ryw".into(),
                    limit_micros: limit,
                    ..Default::default()
                })
                .await?
                .into_inner();
            assert_eq!(set.limit_micros, limit, "reply to set #{i}");
            let shown = admin
                .show_budget(pb::ShowBudgetRequest {
                    team: "ryw".into(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            assert_eq!(shown.limit_micros, limit, "read after set #{i}");
        }
        c.shutdown().await;
        Ok(())
    })
    .await
}

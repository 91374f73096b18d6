//! Cost: the `x-switchyard-cost-micros` header equals the shipped pricing catalog applied to the
//! upstream's usage, and the mock's ledger (the independent oracle) agrees to the micro-dollar.

use serde_json::json;
use switchyard_core::PricingCatalog;
use switchyard_testkit::{MockSpec, TestCluster, get};

use crate::bounded;

/// 1. A mock billing gpt-4o-mini at its list price ($0.15 / $0.60 per million tokens); the node
///    prices it from the catalog (no override).
/// 2. Requests of different sizes, streamed and not.
/// 3. Each header equals catalog × usage; the ledger's per-request bill equals the header; the
///    node's cost counter equals the ledger's total (streams included).
#[tokio::test]
async fn cost_header_equals_catalog_price_of_usage_and_the_ledger_agrees() -> anyhow::Result<()> {
    bounded(async {
        let c = TestCluster::builder()
            .mock(MockSpec::openai("mock-a", &["gpt-4o-mini"], 150_000, 600_000).catalog_priced())
            .route("gpt-4o-mini", "priority", &[("mock-a", "gpt-4o-mini")], &[])
            .start()
            .await?;
        let price = PricingCatalog::builtin()?.lookup("gpt-4o-mini").expect("catalog prices gpt-4o-mini");
        let mut header_total = 0u64;
        for (i, words) in [1usize, 40, 400].into_iter().enumerate() {
            let content = "word ".repeat(words);
            let r = c.chat(0, &json!({"model": "gpt-4o-mini", "max_tokens": 10 + i as u64, "messages": [{"role": "user", "content": content}]})).await?;
            assert_eq!(r.status, 200);
            let v = r.json();
            let usage = (v["usage"]["prompt_tokens"].as_u64().unwrap(), v["usage"]["completion_tokens"].as_u64().unwrap());
            let header: u64 = r.header("x-switchyard-cost-micros").unwrap().parse()?;
            assert_eq!(header, price.cost(usage.0, usage.1).0, "header vs catalog for usage {usage:?}");
            let rid = r.header("x-request-id").unwrap();
            let ledger = c.ledger("mock-a").await?;
            let entry = ledger["entries"].as_array().unwrap().iter().find(|e| e["request_id"] == rid.as_str()).cloned().expect("ledger entry");
            assert_eq!(entry["billed_micros"].as_u64(), Some(header), "ledger vs header: {entry}");
            header_total += header;
        }
        for _ in 0..3 {
            let s = c.chat(0, &json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "stream please"}]})).await?;
            assert_eq!(s.sse_data().last().map(String::as_str), Some("[DONE]"));
        }
        let ledger_total = c.ledger("mock-a").await?["total_billed_micros"].as_u64().unwrap();
        assert!(ledger_total > header_total);
        let metrics = get(&format!("{}/metrics", c.url(0)), &[]).await?.text();
        let line = format!("switchyard_cost_micros_total{{provider=\"mock-a\",model=\"gpt-4o-mini\"}} {ledger_total}");
        assert!(metrics.contains(&line), "expected {line} in\n{metrics}");
        c.shutdown().await;
        Ok(())
    })
    .await
}

//! `switchyard mock`: one mock LLM provider (OpenAI and Anthropic wire formats, faults, ledger).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use switchyard_mock::{MockConfig, Price};

/// Arguments of `mock`.
#[derive(clap::Args)]
pub struct MockArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7001")]
    listen: SocketAddr,
    /// Name shown in responses and logs.
    #[arg(long, default_value = "mock")]
    name: String,
    /// Time to first token, milliseconds.
    #[arg(long, default_value_t = 0)]
    ttft_ms: u64,
    /// Delay between tokens, milliseconds.
    #[arg(long, default_value_t = 0)]
    per_token_ms: u64,
    /// Price for models without their own, as INPUT:OUTPUT micro-dollars per million tokens.
    #[arg(long, default_value = "150000:600000")]
    default_price: String,
    /// A model's price, MODEL=INPUT:OUTPUT (micro-dollars per million tokens); repeatable.
    #[arg(long = "price")]
    prices: Vec<String>,
    /// Require this API key from clients.
    #[arg(long, env = "SWITCHYARD_MOCK_API_KEY")]
    api_key: Option<String>,
}

fn parse_price(s: &str) -> anyhow::Result<Price> {
    let (i, o) = s
        .split_once(':')
        .with_context(|| format!("price {s:?}: expected INPUT:OUTPUT"))?;
    Ok(Price {
        input_micros_per_mtok: i
            .trim()
            .parse()
            .with_context(|| format!("price {s:?}: bad input price"))?,
        output_micros_per_mtok: o
            .trim()
            .parse()
            .with_context(|| format!("price {s:?}: bad output price"))?,
    })
}

/// Runs the mock until SIGINT or SIGTERM.
pub async fn run(args: MockArgs) -> anyhow::Result<()> {
    let mut prices = BTreeMap::new();
    for p in &args.prices {
        let Some((model, price)) = p.split_once('=') else {
            bail!("--price {p:?}: expected MODEL=INPUT:OUTPUT")
        };
        prices.insert(model.to_owned(), parse_price(price)?);
    }
    let config = MockConfig {
        name: args.name.clone(),
        default_price: parse_price(&args.default_price)?,
        models: prices.keys().cloned().collect(),
        prices,
        ttft_ms: args.ttft_ms,
        per_token_ms: args.per_token_ms,
        api_key: args.api_key,
    };
    #[expect(
        clippy::disallowed_methods,
        reason = "the mock is an independent fixture outside the node's transport seam"
    )]
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(name = %args.name, addr = %listener.local_addr()?, "mock provider serving");
    switchyard_mock::serve(listener, config, crate::serve::wait_for_signal()).await?;
    Ok(())
}

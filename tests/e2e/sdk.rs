//! The official Python SDKs (`openai`, `anthropic`), unchanged, pointed at a node with only
//! `base_url` and `api_key` set. Each script prints one JSON object describing what the SDK
//! observed; the assertions live here in Rust so a failure shows the whole observation.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use switchyard_testkit::cluster::TEST_KEY;
use switchyard_testkit::{MockSpec, TestCluster, python};

/// Bound on one SDK test. Generous: the first test to run may create the venv (pip install).
const SDK_TIMEOUT: Duration = Duration::from_secs(240);

/// Runs an SDK test body under [`SDK_TIMEOUT`].
async fn sdk_bounded<F: std::future::Future<Output = anyhow::Result<()>>>(
    f: F,
) -> anyhow::Result<()> {
    tokio::time::timeout(SDK_TIMEOUT, f)
        .await
        .map_err(|_| anyhow::anyhow!("SDK test exceeded {SDK_TIMEOUT:?}"))?
}

/// Put before every script: the SDKs must see only what the script passes them, not
/// `OPENAI_*` / `ANTHROPIC_*` variables of whoever runs the tests (`ANTHROPIC_AUTH_TOKEN` would
/// add a second credential), and loopback must never go through a proxy.
const PRELUDE: &str = r#"
import json, os
for _k in list(os.environ):
    if _k.startswith(("OPENAI_", "ANTHROPIC_")):
        del os.environ[_k]
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
URL = os.environ["SY_URL"]
KEY = os.environ["SY_KEY"]
def parsed(arguments):
    try:
        return json.loads(arguments)
    except Exception as e:
        return {"__unparsable__": arguments, "__error__": str(e)}
"#;

/// Runs `script` (after [`PRELUDE`]) in the SDK venv against `url` with the test key, and
/// parses the one JSON object it prints.
async fn run_sdk(
    script: &'static str,
    url: &str,
    extra_env: &[(&str, &str)],
) -> anyhow::Result<Value> {
    let mut env: Vec<(String, String)> = vec![
        ("SY_URL".into(), url.to_owned()),
        ("SY_KEY".into(), TEST_KEY.to_owned()),
    ];
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let stdout = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        python::run_script(&format!("{PRELUDE}\n{script}"), &env)
    })
    .await??;
    serde_json::from_str(stdout.trim())
        .with_context(|| format!("the script did not print one JSON object:\n{stdout}"))
}

/// The models of a mock's ledger entries, in order.
async fn ledger_models(cluster: &TestCluster, mock: &str) -> anyhow::Result<Vec<String>> {
    let ledger = cluster.ledger(mock).await?;
    let entries = ledger["entries"]
        .as_array()
        .with_context(|| format!("{mock} ledger without entries: {ledger}"))?;
    Ok(entries
        .iter()
        .map(|e| e["model"].as_str().unwrap_or_default().to_owned())
        .collect())
}

/// A node in front of an Anthropic-format mock (`claude-3-5-haiku` on mock-c) and an
/// OpenAI-format mock (`gpt-4o-mini` on mock-a), so one client format reaches both kinds of
/// upstream: natively and through translation.
async fn two_upstream_kinds() -> anyhow::Result<TestCluster> {
    TestCluster::builder()
        .mock(MockSpec::anthropic(
            "mock-c",
            &["claude-3-5-haiku"],
            800_000,
            4_000_000,
        ))
        .mock(MockSpec::openai(
            "mock-a",
            &["gpt-4o-mini"],
            150_000,
            600_000,
        ))
        .route(
            "claude-3-5-haiku",
            "priority",
            &[("mock-c", "claude-3-5-haiku")],
            &[],
        )
        .route("gpt-4o-mini", "priority", &[("mock-a", "gpt-4o-mini")], &[])
        .start()
        .await
}

/// Public models of [`two_upstream_kinds`] with the mock that serves each.
const UPSTREAMS: [(&str, &str); 2] = [("claude-3-5-haiku", "mock-c"), ("gpt-4o-mini", "mock-a")];

const OPENAI_BASICS: &str = r#"
from openai import OpenAI
client = OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0, timeout=30)
msgs = [{"role": "user", "content": "Say hello to the gateway."}]
out = {}

raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=msgs)
r = raw.parse()
out["chat"] = {
    "node": raw.headers.get("x-switchyard-node"),
    "request_id": raw.headers.get("x-request-id"),
    "content": r.choices[0].message.content,
    "finish_reason": r.choices[0].finish_reason,
    "total_tokens": r.usage.total_tokens if r.usage else None,
}

text, usage_chunks, total, finish, chunks = [], 0, None, None, 0
for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True, stream_options={"include_usage": True}):
    chunks += 1
    for c in chunk.choices:
        if c.delta.content:
            text.append(c.delta.content)
        if c.finish_reason:
            finish = c.finish_reason
    if chunk.usage is not None:
        usage_chunks += 1
        total = chunk.usage.total_tokens
out["stream"] = {"chunks": chunks, "content": "".join(text), "finish_reason": finish, "usage_chunks": usage_chunks, "total_tokens": total}

e = client.embeddings.create(model="text-embedding-3-small", input=["first text", "second text"])
out["embeddings"] = {"count": len(e.data), "dims": [len(d.embedding) for d in e.data], "total_tokens": e.usage.total_tokens}

out["models"] = sorted(m.id for m in client.models.list())
print(json.dumps(out))
"#;

/// A user points the OpenAI SDK at each node of a three-node cluster in turn and uses chat
/// (plain and streamed with usage), embeddings and the model list.
///
/// 1. Start three nodes over an OpenAI-format chat mock and an embeddings mock.
/// 2. On every node, run the SDK script: chat, streamed chat, embeddings, models.
/// 3. Each node answered its own requests with content and usage; the stream carries the same
///    text and a usage chunk; embeddings have vectors; the list names exactly the routes.
/// 4. The mocks' ledgers hold every request, matched by request id and token count.
#[tokio::test(flavor = "multi_thread")]
async fn openai_sdk_chat_stream_embeddings_and_models_on_every_node() -> anyhow::Result<()> {
    sdk_bounded(async {
        // 1.
        let cluster = TestCluster::builder()
            .nodes(3)
            .mock(MockSpec::openai(
                "mock-a",
                &["gpt-4o-mini"],
                150_000,
                600_000,
            ))
            .mock(MockSpec::openai(
                "mock-e",
                &["text-embedding-3-small"],
                20_000,
                0,
            ))
            .route("gpt-4o-mini", "priority", &[("mock-a", "gpt-4o-mini")], &[])
            .route(
                "text-embedding-3-small",
                "priority",
                &[("mock-e", "text-embedding-3-small")],
                &[],
            )
            .start()
            .await?;
        let mut request_ids = Vec::new();
        for i in 0..cluster.nodes.len() {
            // 2.
            let seen = run_sdk(OPENAI_BASICS, &cluster.url(i), &[]).await?;
            let ctx = || format!("node {} observed: {seen:#}", i + 1);

            // 3.
            let chat = &seen["chat"];
            anyhow::ensure!(
                chat["node"] == json!((i + 1).to_string()),
                "x-switchyard-node names another node; {}",
                ctx()
            );
            let content = chat["content"].as_str().unwrap_or_default();
            anyhow::ensure!(!content.trim().is_empty(), "empty chat content; {}", ctx());
            anyhow::ensure!(
                chat["finish_reason"] == "stop",
                "chat finish_reason; {}",
                ctx()
            );
            let total = chat["total_tokens"].as_u64().unwrap_or(0);
            anyhow::ensure!(total > 0, "chat usage.total_tokens; {}", ctx());

            let stream = &seen["stream"];
            anyhow::ensure!(
                stream["chunks"].as_u64().unwrap_or(0) >= 2,
                "stream came in fewer than two chunks; {}",
                ctx()
            );
            anyhow::ensure!(
                stream["content"] == content,
                "streamed text differs from the same request unstreamed; {}",
                ctx()
            );
            anyhow::ensure!(
                stream["finish_reason"] == "stop",
                "stream finish_reason; {}",
                ctx()
            );
            anyhow::ensure!(
                stream["usage_chunks"] == 1,
                "include_usage asks for exactly one usage chunk; {}",
                ctx()
            );
            anyhow::ensure!(
                stream["total_tokens"] == total,
                "streamed usage differs from unstreamed usage; {}",
                ctx()
            );

            let emb = &seen["embeddings"];
            anyhow::ensure!(emb["count"] == 2, "one embedding per input; {}", ctx());
            let dims: Vec<u64> = emb["dims"]
                .as_array()
                .map(|d| d.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            anyhow::ensure!(
                dims.len() == 2 && dims[0] > 0 && dims[0] == dims[1],
                "embedding vectors; {}",
                ctx()
            );
            anyhow::ensure!(
                emb["total_tokens"].as_u64().unwrap_or(0) > 0,
                "embedding usage; {}",
                ctx()
            );

            anyhow::ensure!(
                seen["models"] == json!(["gpt-4o-mini", "text-embedding-3-small"]),
                "models.list; {}",
                ctx()
            );
            request_ids.push((
                chat["request_id"].as_str().unwrap_or_default().to_owned(),
                total,
            ));
        }

        // 4.
        let chats = cluster.ledger("mock-a").await?;
        let entries = chats["entries"].as_array().cloned().unwrap_or_default();
        anyhow::ensure!(
            entries.len() == 2 * cluster.nodes.len(),
            "mock-a served one upstream call per chat request: {chats:#}"
        );
        for (rid, total) in &request_ids {
            let hit = entries.iter().find(|e| e["request_id"] == rid.as_str());
            let billed = hit.map(|e| {
                e["prompt_tokens"].as_u64().unwrap_or(0)
                    + e["completion_tokens"].as_u64().unwrap_or(0)
            });
            anyhow::ensure!(
                billed == Some(*total),
                "ledger entry for {rid} should bill the {total} tokens the SDK saw: {chats:#}"
            );
        }
        let embeddings = ledger_models(&cluster, "mock-e").await?;
        anyhow::ensure!(
            embeddings.len() == cluster.nodes.len(),
            "mock-e served one call per embeddings request: {embeddings:?}"
        );
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

const ANTHROPIC_MESSAGES: &str = r#"
from anthropic import Anthropic
client = Anthropic(base_url=URL, api_key=KEY, max_retries=0, timeout=30)
model = os.environ["SY_MODEL"]
msgs = [{"role": "user", "content": "Say hello to the gateway."}]

def summary(m):
    return {
        "role": m.role,
        "block_types": [b.type for b in m.content],
        "text": "".join(b.text for b in m.content if b.type == "text"),
        "stop_reason": m.stop_reason,
        "input_tokens": m.usage.input_tokens,
        "output_tokens": m.usage.output_tokens,
    }

out = {"create": summary(client.messages.create(model=model, max_tokens=256, messages=msgs))}
with client.messages.stream(model=model, max_tokens=256, messages=msgs) as stream:
    pieces = list(stream.text_stream)
    final = stream.get_final_message()
out["stream"] = {"pieces": len(pieces), "text": "".join(pieces), "final": summary(final)}
print(json.dumps(out))
"#;

/// A user of the Anthropic SDK calls `messages.create` and `messages.stream` for a model served
/// by an Anthropic-format provider, then for one served by an OpenAI-format provider, which the
/// node translates both ways.
///
/// 1. Start a node over an Anthropic-format mock and an OpenAI-format mock.
/// 2. For each model, run the SDK script: create, then stream (`text_stream`, then
///    `get_final_message`).
/// 3. Both give text, `end_turn` and usage; the stream arrives in pieces that join to the same
///    text as the final message and as the unstreamed reply.
/// 4. Each mock served exactly its own model's two calls.
#[tokio::test(flavor = "multi_thread")]
async fn anthropic_sdk_messages_native_and_translated() -> anyhow::Result<()> {
    sdk_bounded(async {
        // 1.
        let cluster = two_upstream_kinds().await?;
        for (model, _) in UPSTREAMS {
            // 2.
            let seen = run_sdk(ANTHROPIC_MESSAGES, &cluster.url(0), &[("SY_MODEL", model)]).await?;
            let ctx = || format!("{model} observed: {seen:#}");

            // 3.
            let create = &seen["create"];
            let text = create["text"].as_str().unwrap_or_default();
            anyhow::ensure!(!text.trim().is_empty(), "empty text; {}", ctx());
            anyhow::ensure!(
                create["role"] == "assistant" && create["block_types"] == json!(["text"]),
                "content blocks; {}",
                ctx()
            );
            anyhow::ensure!(
                create["stop_reason"] == "end_turn",
                "stop_reason; {}",
                ctx()
            );
            anyhow::ensure!(
                create["input_tokens"].as_u64().unwrap_or(0) > 0,
                "usage.input_tokens; {}",
                ctx()
            );
            anyhow::ensure!(
                create["output_tokens"].as_u64().unwrap_or(0) > 0,
                "usage.output_tokens; {}",
                ctx()
            );

            let stream = &seen["stream"];
            let final_message = &stream["final"];
            anyhow::ensure!(
                stream["pieces"].as_u64().unwrap_or(0) >= 2,
                "text_stream yielded fewer than two pieces; {}",
                ctx()
            );
            anyhow::ensure!(
                stream["text"] == final_message["text"],
                "text_stream differs from get_final_message; {}",
                ctx()
            );
            anyhow::ensure!(
                stream["text"] == text,
                "streamed text differs from the same request unstreamed; {}",
                ctx()
            );
            anyhow::ensure!(
                final_message["stop_reason"] == "end_turn",
                "streamed stop_reason; {}",
                ctx()
            );
            anyhow::ensure!(
                final_message["input_tokens"] == create["input_tokens"],
                "streamed input usage; {}",
                ctx()
            );
            anyhow::ensure!(
                final_message["output_tokens"] == create["output_tokens"],
                "streamed output usage; {}",
                ctx()
            );
        }

        // 4.
        for (model, mock) in UPSTREAMS {
            let served = ledger_models(&cluster, mock).await?;
            anyhow::ensure!(
                served == [model, model],
                "{mock} should have served {model} twice, served {served:?}"
            );
        }
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

const OPENAI_TOOLS: &str = r#"
from openai import OpenAI
client = OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0, timeout=30)
model = os.environ["SY_MODEL"]
tools = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}, "days": {"type": "integer"}},
            "required": ["city", "unit"],
        },
    },
}]
choice = {"type": "function", "function": {"name": "get_weather"}}
msgs = [{"role": "user", "content": "What is the weather in Paris?"}]
out = {}

r = client.chat.completions.create(model=model, messages=msgs, tools=tools, tool_choice=choice)
m = r.choices[0].message
out["create"] = {
    "finish_reason": r.choices[0].finish_reason,
    "calls": [{"id": c.id, "type": c.type, "name": c.function.name, "arguments": parsed(c.function.arguments)} for c in (m.tool_calls or [])],
}

calls, finish, arg_deltas = {}, None, 0
for chunk in client.chat.completions.create(model=model, messages=msgs, tools=tools, tool_choice=choice, stream=True):
    for c in chunk.choices:
        if c.finish_reason:
            finish = c.finish_reason
        for tc in c.delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": None, "type": "function", "name": None, "arguments": ""})
            if tc.id:
                slot["id"] = tc.id
            if tc.function and tc.function.name:
                slot["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                slot["arguments"] += tc.function.arguments
                arg_deltas += 1
out["stream"] = {
    "finish_reason": finish,
    "argument_deltas": arg_deltas,
    "calls": [dict(s, arguments=parsed(s["arguments"])) for _, s in sorted(calls.items())],
}
print(json.dumps(out))
"#;

/// Checks that `args` fits the `get_weather` schema both scripts send: the required `city` and
/// `unit`, `unit` from its enum, `days` (optional) an integer.
fn check_weather_args(args: &Value) -> anyhow::Result<()> {
    anyhow::ensure!(
        args["city"].is_string(),
        "required `city` missing or not a string in {args}"
    );
    anyhow::ensure!(
        args["unit"] == "c" || args["unit"] == "f",
        "required `unit` missing or outside its enum in {args}"
    );
    anyhow::ensure!(
        args.get("days").is_none_or(Value::is_i64),
        "`days` is not an integer in {args}"
    );
    Ok(())
}

/// A user of the OpenAI SDK forces a function call with `tool_choice`, unstreamed and streamed,
/// for a model on an OpenAI-format provider and for one on an Anthropic-format provider.
///
/// 1. Start a node over an Anthropic-format mock and an OpenAI-format mock.
/// 2. For each model, run the SDK script: create with tools, then stream and accumulate the
///    tool-call argument deltas by index.
/// 3. Both give one `get_weather` call with an id, `finish_reason` `tool_calls`, and arguments
///    that parse as JSON with the schema's required keys; streamed and unstreamed agree.
#[tokio::test(flavor = "multi_thread")]
async fn openai_sdk_forced_tool_call_through_both_upstream_kinds() -> anyhow::Result<()> {
    sdk_bounded(async {
        // 1.
        let cluster = two_upstream_kinds().await?;
        for (model, _) in UPSTREAMS {
            // 2.
            let seen = run_sdk(OPENAI_TOOLS, &cluster.url(0), &[("SY_MODEL", model)]).await?;
            let ctx = || format!("{model} observed: {seen:#}");

            // 3.
            for mode in ["create", "stream"] {
                let r = &seen[mode];
                anyhow::ensure!(
                    r["finish_reason"] == "tool_calls",
                    "{mode}: finish_reason; {}",
                    ctx()
                );
                let calls = r["calls"].as_array().cloned().unwrap_or_default();
                anyhow::ensure!(
                    calls.len() == 1,
                    "{mode}: expected exactly one tool call; {}",
                    ctx()
                );
                let call = &calls[0];
                anyhow::ensure!(
                    call["type"] == "function" && call["name"] == "get_weather",
                    "{mode}: call type/name; {}",
                    ctx()
                );
                anyhow::ensure!(
                    call["id"].as_str().is_some_and(|id| !id.is_empty()),
                    "{mode}: call without id; {}",
                    ctx()
                );
                check_weather_args(&call["arguments"])
                    .with_context(|| format!("{mode}; {}", ctx()))?;
            }
            anyhow::ensure!(
                seen["stream"]["argument_deltas"].as_u64().unwrap_or(0) >= 1,
                "no argument deltas streamed; {}",
                ctx()
            );
            anyhow::ensure!(
                seen["stream"]["calls"][0]["arguments"] == seen["create"]["calls"][0]["arguments"],
                "streamed arguments differ from unstreamed; {}",
                ctx()
            );
        }
        for (model, mock) in UPSTREAMS {
            let served = ledger_models(&cluster, mock).await?;
            anyhow::ensure!(
                served == [model, model],
                "{mock} should have served {model} twice, served {served:?}"
            );
        }
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

const ANTHROPIC_TOOLS: &str = r#"
from anthropic import Anthropic
client = Anthropic(base_url=URL, api_key=KEY, max_retries=0, timeout=30)
model = os.environ["SY_MODEL"]
tools = [{
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}, "days": {"type": "integer"}},
        "required": ["city", "unit"],
    },
}]
choice = {"type": "tool", "name": "get_weather"}
msgs = [{"role": "user", "content": "What is the weather in Paris?"}]

def summary(m):
    return {
        "stop_reason": m.stop_reason,
        "block_types": [b.type for b in m.content],
        "tool_uses": [{"id": b.id, "name": b.name, "input": b.input} for b in m.content if b.type == "tool_use"],
        "output_tokens": m.usage.output_tokens,
    }

out = {"create": summary(client.messages.create(model=model, max_tokens=256, messages=msgs, tools=tools, tool_choice=choice))}
json_deltas = []
with client.messages.stream(model=model, max_tokens=256, messages=msgs, tools=tools, tool_choice=choice) as stream:
    for event in stream:
        if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            json_deltas.append(event.delta.partial_json)
    final = stream.get_final_message()
out["stream"] = dict(summary(final), json_deltas=len(json_deltas), joined=parsed("".join(json_deltas)))
print(json.dumps(out))
"#;

/// A user of the Anthropic SDK forces a tool with `tool_choice` `{"type": "tool"}`, unstreamed
/// and streamed, for a model on an Anthropic-format provider and for one on an OpenAI-format
/// provider.
///
/// 1. Start a node over an Anthropic-format mock and an OpenAI-format mock.
/// 2. For each model, run the SDK script: create with tools, then stream (collecting the
///    `input_json_delta` events) and take the final message.
/// 3. Both give `stop_reason` `tool_use` and one `get_weather` `tool_use` block whose input has
///    the schema's required keys; the streamed JSON deltas join to that input; streamed and
///    unstreamed agree.
#[tokio::test(flavor = "multi_thread")]
async fn anthropic_sdk_forced_tool_use_through_both_upstream_kinds() -> anyhow::Result<()> {
    sdk_bounded(async {
        // 1.
        let cluster = two_upstream_kinds().await?;
        for (model, _) in UPSTREAMS {
            // 2.
            let seen = run_sdk(ANTHROPIC_TOOLS, &cluster.url(0), &[("SY_MODEL", model)]).await?;
            let ctx = || format!("{model} observed: {seen:#}");

            // 3.
            for mode in ["create", "stream"] {
                let r = &seen[mode];
                anyhow::ensure!(
                    r["stop_reason"] == "tool_use",
                    "{mode}: stop_reason; {}",
                    ctx()
                );
                let uses = r["tool_uses"].as_array().cloned().unwrap_or_default();
                anyhow::ensure!(
                    uses.len() == 1,
                    "{mode}: expected exactly one tool_use block; {}",
                    ctx()
                );
                let tool_use = &uses[0];
                anyhow::ensure!(
                    tool_use["name"] == "get_weather",
                    "{mode}: tool name; {}",
                    ctx()
                );
                anyhow::ensure!(
                    tool_use["id"].as_str().is_some_and(|id| !id.is_empty()),
                    "{mode}: tool_use without id; {}",
                    ctx()
                );
                check_weather_args(&tool_use["input"])
                    .with_context(|| format!("{mode}; {}", ctx()))?;
                anyhow::ensure!(
                    r["output_tokens"].as_u64().unwrap_or(0) > 0,
                    "{mode}: usage.output_tokens; {}",
                    ctx()
                );
            }
            let stream = &seen["stream"];
            anyhow::ensure!(
                stream["json_deltas"].as_u64().unwrap_or(0) >= 1,
                "no input_json_delta events; {}",
                ctx()
            );
            anyhow::ensure!(
                stream["joined"] == stream["tool_uses"][0]["input"],
                "JSON deltas do not join to the final input; {}",
                ctx()
            );
            anyhow::ensure!(
                stream["tool_uses"][0]["input"] == seen["create"]["tool_uses"][0]["input"],
                "streamed input differs from unstreamed; {}",
                ctx()
            );
        }
        for (model, mock) in UPSTREAMS {
            let served = ledger_models(&cluster, mock).await?;
            anyhow::ensure!(
                served == [model, model],
                "{mock} should have served {model} twice, served {served:?}"
            );
        }
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

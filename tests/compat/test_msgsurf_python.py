"""The official `anthropic` Python SDK against Anthropic's web search tool run by the
gateway's server-tool loop for a model on an OpenAI-compatible endpoint: the SDK reads
the `server_tool_use` / `web_search_tool_result` blocks, the text's citations and
`usage.server_tool_use` into its own types, whole and streamed (its stream accumulator
applies `input_json_delta` and `citations_delta`), and takes the reply's content back
as the next turn's assistant message."""

import anthropic
import pytest

TEXT = (
    "Rust runs on Workers (https://developers.cloudflare.com/workers/languages/rust/), "
    "see https://www.rust-lang.org/what/wasm"
)
URLS = [
    "https://www.rust-lang.org/what/wasm",
    "https://developers.cloudflare.com/workers/languages/rust/",
]
TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}


@pytest.fixture(scope="module")
def claude(gateway):
    root = gateway["base_url"].removesuffix("/v1")
    return anthropic.Anthropic(base_url=root, api_key=gateway["key"], max_retries=0)


def ask(claude, **extra):
    return claude.messages.create(
        model="msgsurf/searcher",
        max_tokens=1024,
        messages=extra.pop("messages", [{"role": "user", "content": "Does Rust run on Workers?"}]),
        tools=[TOOL],
        **extra,
    )


def check(m):
    gen = m.id.removeprefix("msg_")
    assert [b.type for b in m.content] == [
        "server_tool_use",
        "web_search_tool_result",
        "server_tool_use",
        "web_search_tool_result",
        "text",
    ]
    assert [(b.id, b.name, b.input) for b in m.content[0::2][:2]] == [
        (f"srvtoolu_{gen}_0", "web_search", {"query": "rust wasm"}),
        (f"srvtoolu_{gen}_1", "web_search", {"query": "workers rust"}),
    ]
    result = m.content[1]
    assert result.tool_use_id == f"srvtoolu_{gen}_0"
    assert [(r.type, r.url) for r in result.content] == [("web_search_result", u) for u in URLS]
    assert result.content[0].title == "WebAssembly - Rust Programming Language"
    text = m.content[4]
    assert text.text == TEXT
    assert [(c.type, c.url) for c in text.citations] == [
        ("web_search_result_location", u) for u in URLS
    ]
    assert m.usage.server_tool_use.web_search_requests == 2
    assert m.stop_reason == "end_turn"


def test_web_search_blocks_in_the_sdks_types(claude):
    check(ask(claude))


def test_streamed_blocks_accumulate_into_the_same_message(claude):
    with claude.messages.stream(
        model="msgsurf/searcher",
        max_tokens=1024,
        messages=[{"role": "user", "content": "Does Rust run on Workers?"}],
        tools=[TOOL],
    ) as stream:
        m = stream.get_final_message()
    check(m)


def test_the_reply_content_sent_back_is_read(claude):
    first = ask(claude)
    messages = [
        {"role": "user", "content": "Does Rust run on Workers?"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": "And on Pages?"},
    ]
    check(ask(claude, messages=messages))

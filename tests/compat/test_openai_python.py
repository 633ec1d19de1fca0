"""The official `openai` Python SDK against modelmux: only the base URL and key change."""
import openai
import pytest


@pytest.fixture()
def client(gateway):
    return openai.OpenAI(base_url=gateway["base_url"], api_key=gateway["key"], max_retries=0)


def test_chat_demo_model(client):
    r = client.chat.completions.create(
        model="modelmux/echo", messages=[{"role": "user", "content": "hello from python"}]
    )
    assert r.choices[0].message.content == "hello from python"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.id.startswith("gen-")


def test_stream_demo_model(client):
    stream = client.chat.completions.create(
        model="modelmux/echo",
        messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert text == "one two three four"
    assert finish == "stop"
    assert usage.completion_tokens == 4


def test_chat_through_upstream(client):
    r = client.chat.completions.create(model="test/ok", messages=[{"role": "user", "content": "ping"}])
    assert r.choices[0].message.content == "mock says: ping"


def test_stream_through_upstream(client):
    stream = client.chat.completions.create(
        model="test/stream", messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello from the mock"


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert "modelmux/echo" in ids


def test_errors_raise_typed_exceptions(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no/such", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="test/ratelimited", messages=[{"role": "user", "content": "x"}])
    bad = openai.OpenAI(base_url=client.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="modelmux/echo", messages=[{"role": "user", "content": "x"}])

"""The official `openrouter` Python SDK, which validates every reply strictly."""
import time

import pytest
from openrouter import OpenRouter


@pytest.fixture()
def client(gateway):
    return OpenRouter(api_key=gateway["key"], server_url=gateway["base_url"])


def test_chat_demo_model(client):
    r = client.chat.send(model="modelmux/echo", messages=[{"role": "user", "content": "hi openrouter"}])
    assert r.choices[0].message.content == "hi openrouter"
    assert r.usage.total_tokens > 0


def test_chat_upstream_with_fallback(client):
    r = client.chat.send(model="test/fallback", messages=[{"role": "user", "content": "x"}])
    assert r.choices[0].message.content == "mock says: x"


def test_stream(client):
    text = ""
    with client.chat.send(model="test/stream", messages=[{"role": "user", "content": "x"}], stream=True) as events:
        for chunk in events:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    assert text == "Hello from the mock"


def test_models_endpoints_providers(client):
    models = client.models.list()
    assert any(m.id == "modelmux/echo" for m in models.result.data)
    assert models.result.total_count == len(models.result.data)
    eps = client.endpoints.list(author="test", slug="fallback")
    assert [e.tag for e in eps.data.endpoints] == ["mockai", "mockbackup"]
    providers = client.providers.list()
    assert any(p.slug == "mockai" for p in providers.data)


@pytest.mark.parametrize("family", ["openai", "anthropic", "gemini"])
def test_each_family(client, family):
    r = client.chat.send(model=f"{family}-mock/ok", messages=[{"role": "user", "content": "hey"}])
    assert r.choices[0].message.content == "mock says: hey"
    r = client.chat.send(
        model=f"{family}-mock/tool",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    )
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather"
    text = ""
    with client.chat.send(model=f"{family}-mock/stream", messages=[{"role": "user", "content": "x"}], stream=True) as events:
        for chunk in events:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    assert text == "Hello from the mock"


def test_endpoint_health_as_percentiles(client):
    # Health reaches /endpoints after the isolate's batch is flushed (1 s) and the
    # snapshot cache expires (10 s).
    deadline = time.time() + 30
    ep = None
    while time.time() < deadline:
        with client.chat.send(model="test/stream", messages=[{"role": "user", "content": "x"}], stream=True) as events:
            for _ in events:
                pass
        ep = client.endpoints.list(author="test", slug="stream").data.endpoints[0]
        if ep.latency_last_30m is not None:
            break
        time.sleep(1)
    lat = ep.latency_last_30m
    assert lat is not None, "no latency figures in /endpoints"
    assert 0 < lat.p50 <= lat.p75 <= lat.p90 <= lat.p99
    assert ep.uptime_last_30m == 100
    assert ep.uptime_last_5m == 100
    assert ep.uptime_last_1d == 100


def test_models_filters_pages_and_count(client, gateway):
    everything = client.models.list(offset=None, limit=None).result
    total = everything.total_count
    assert total == len(everything.data)
    first = client.models.list(offset=0, limit=3)
    assert len(first.result.data) == 3 and first.result.total_count == total
    second = first.next()
    assert [m.id for m in second.result.data] == [m.id for m in everything.data[3:6]]
    assert client.models.count().data.count == total
    cheap = client.models.list(sort="pricing-low-to-high", max_price=1.0, context=100000).result.data
    assert cheap and all(m.context_length >= 100000 for m in cheap)
    prices = [float(m.pricing.prompt) for m in cheap]
    assert prices == sorted(prices)
    found = client.models.list(q="echo", input_modalities="text").result.data
    assert [m.id for m in found] == ["modelmux/echo"]
    mine = client.models.list_for_user(security={"bearer": gateway["key"]}).result.data
    assert any(m.id == "modelmux/echo" for m in mine)


def test_image_output_and_cost_details(client):
    r = client.chat.send(model="test/gemini-image", modalities=["image", "text"], messages=[{"role": "user", "content": "draw"}])
    m = r.choices[0].message
    assert m.images[0].image_url.url.startswith("data:image/png;base64,")
    assert r.usage.cost_details.upstream_inference_completions_cost > 0

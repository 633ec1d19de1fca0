"""The official `openai` Python SDK against modelmux: only the base URL and key change."""
import base64
import json

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


FAMILIES = ["openai", "anthropic", "gemini"]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_chat_stream_and_tool_round_trip(client, family):
    r = client.chat.completions.create(model=f"{family}-mock/ok", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "mock says: hi"

    stream = client.chat.completions.create(
        model=f"{family}-mock/stream", messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello from the mock"

    messages = [{"role": "user", "content": "weather in Paris?"}]
    r = client.chat.completions.create(model=f"{family}-mock/tool", messages=messages, tools=[WEATHER_TOOL])
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert r.choices[0].finish_reason == "tool_calls"
    messages.append(r.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"temp": 18}'})
    r = client.chat.completions.create(model=f"{family}-mock/ok", messages=messages, tools=[WEATHER_TOOL])
    assert r.choices[0].finish_reason == "stop"

    stream = client.chat.completions.create(
        model=f"{family}-mock/tool", messages=messages[:1], tools=[WEATHER_TOOL], stream=True
    )
    args, name = "", None
    for chunk in stream:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name = name or (tc.function.name if tc.function else None)
            args += (tc.function.arguments or "") if tc.function else ""
    assert name == "get_weather"
    assert json.loads(args) == {"city": "Paris"}


@pytest.mark.parametrize("model", ["gemini-mock/agent", "test/thinkagent"])
def test_reasoning_round_trip_with_tools(client, model):
    """Gemini's thought signatures and Anthropic's signed thinking come back in
    reasoning_details, and the SDK's own message, sent back, carries them."""
    extra = {"reasoning": {"max_tokens": 1024}} if model == "test/thinkagent" else {}
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    r = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL], extra_body=extra)
    msg = r.choices[0].message
    assert msg.model_extra["reasoning_details"], msg
    messages.append(msg.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "18C"})
    r = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL], extra_body=extra)
    assert "18C" in r.choices[0].message.content


@pytest.mark.parametrize("family", FAMILIES)
def test_pdf_file_parts(client, family):
    pdf = base64.b64encode(b"%PDF-1.4 mock").decode()
    r = client.chat.completions.create(model=f"{family}-mock/ok", messages=[{"role": "user", "content": [
        {"type": "file", "file": {"filename": "paper.pdf", "file_data": f"data:application/pdf;base64,{pdf}"}},
        {"type": "text", "text": "summarise"},
    ]}])
    assert r.choices[0].message.content == "mock says: summarise"

"""The other APIs agents speak, each through its official client, unchanged but for the
base URL and key: the `openai` SDK's Responses and legacy completions, the `anthropic`
SDK's Messages (Anthropic-served and translated), and an OpenAI Agents SDK agent."""
import json

import anthropic
import openai
import pytest

FAMILIES = ["openai", "anthropic", "gemini"]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture()
def client(gateway):
    return openai.OpenAI(base_url=gateway["base_url"], api_key=gateway["key"], max_retries=0)


@pytest.fixture()
def claude(gateway):
    root = gateway["base_url"].removesuffix("/v1")
    return anthropic.Anthropic(base_url=root, api_key=gateway["key"], max_retries=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_responses_create(client, family):
    r = client.responses.create(model=f"{family}-mock/ok", instructions="be brief", input="hello responses")
    assert r.status == "completed"
    assert r.output_text == "mock says: hello responses"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_responses_stream(client, family):
    text, done = "", None
    with client.responses.stream(model=f"{family}-mock/stream", input="hi") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                text += event.delta
        done = stream.get_final_response()
    assert text == "Hello from the mock"
    assert done.output_text == "Hello from the mock"


@pytest.mark.parametrize("family", FAMILIES)
def test_responses_tool_round_trip(client, family):
    first = client.responses.create(model=f"{family}-mock/agent", input="weather in Paris?", tools=[WEATHER])
    calls = [o for o in first.output if o.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    second = client.responses.create(
        model=f"{family}-mock/agent",
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "weather in Paris?"},
            *[c.model_dump(exclude_none=True) for c in calls],
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 21C"},
        ],
    )
    assert "sunny, 21C" in second.output_text


def test_legacy_completions(client):
    r = client.completions.create(model="openai-mock/ok", prompt="Once upon a time", max_tokens=20)
    assert r.choices[0].text == "mock says: Once upon a time"
    assert r.usage.total_tokens > 0
    text = "".join(c.choices[0].text for c in client.completions.create(model="modelmux/echo", prompt="one two three", stream=True) if c.choices)
    assert text == "one two three"


@pytest.mark.parametrize("family", FAMILIES)
def test_anthropic_messages(claude, family):
    m = claude.messages.create(
        model=f"{family}-mock/ok",
        max_tokens=200,
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hello claude"}],
    )
    assert m.type == "message"
    assert m.content[0].text == "mock says: hello claude"
    assert m.stop_reason == "end_turn"
    assert m.usage.output_tokens > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_anthropic_stream(claude, family):
    with claude.messages.stream(
        model=f"{family}-mock/stream", max_tokens=200, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the mock"
    assert final.stop_reason == "end_turn"


@pytest.mark.parametrize("family", FAMILIES)
def test_anthropic_tool_round_trip(claude, family):
    tools = [{"name": "get_weather", "description": "weather", "input_schema": WEATHER["parameters"]}]
    messages = [{"role": "user", "content": "weather in Paris?"}]
    first = claude.messages.create(model=f"{family}-mock/agent", max_tokens=200, tools=tools, messages=messages)
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.input == {"city": "Paris"}
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 21C"}]},
    ]
    second = claude.messages.create(model=f"{family}-mock/agent", max_tokens=200, tools=tools, messages=messages)
    assert "sunny, 21C" in second.content[0].text


def test_anthropic_errors_and_count_tokens(gateway, claude):
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(
            base_url=gateway["base_url"].removesuffix("/v1"), api_key="sk-mm-v1-" + "0" * 64, max_retries=0
        ).messages.create(model="test/ok", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="nobody/nothing", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    n = claude.messages.count_tokens(model="test/ok", messages=[{"role": "user", "content": "hello " * 50}])
    assert n.input_tokens > 10
    # `auth_token` sends the key as a bearer token, as Claude Code does.
    bearer = anthropic.Anthropic(base_url=gateway["base_url"].removesuffix("/v1"), auth_token=gateway["key"], max_retries=0)
    assert bearer.messages.create(model="modelmux/echo", max_tokens=20, messages=[{"role": "user", "content": "ping"}]).content[0].text == "ping"


@pytest.mark.parametrize("family", ["openai", "anthropic"])
def test_openai_agents_sdk(gateway, family):
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_default_openai_client, set_tracing_disabled

    set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=gateway["base_url"], api_key=gateway["key"], max_retries=0)
    set_default_openai_client(client, use_for_tracing=False)
    # Model IDs with a slash read as "provider/model" to the SDK's default router: name
    # the model through the Responses model class instead (as for any gateway).
    model = OpenAIResponsesModel(model=f"{family}-mock/agent", openai_client=client)
    seen = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        seen.append(city)
        return f"sunny in {city}"

    agent = Agent(name="weather", instructions="Answer with the weather.", model=model, tools=[get_weather])
    result = Runner.run_sync(agent, "What is the weather in Paris?")
    assert seen == ["Paris"]
    assert "sunny in Paris" in result.final_output


@pytest.mark.parametrize("model", ["test/embed-openai", "test/embed-gemini"])
def test_embeddings(client, model):
    r = client.embeddings.create(model=model, input=["hello", "world"], dimensions=6)
    assert [d.index for d in r.data] == [0, 1]
    assert len(r.data[0].embedding) == 6
    assert r.usage.prompt_tokens > 0
    # The SDK asks for base64 by default when numpy is absent and decodes it itself.
    one = client.embeddings.create(model=model, input="hello", encoding_format="base64")
    assert isinstance(one.data[0].embedding, str)


def test_stored_conversation_openai_then_agents_then_openai(gateway, client):
    """Three stored Responses turns chained by `previous_response_id`: the `openai` SDK, then
    an Agents SDK run on another provider's model, then the `openai` SDK on a third: each
    upstream is sent the whole conversation the gateway stored."""
    import asyncio

    from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, set_default_openai_client, set_tracing_disabled

    first = client.responses.create(model="openai-mock/recall", input="my name is Ada", store=True)
    assert first.output_text == "mock heard 1 user, 0 assistant: my name is Ada"

    set_tracing_disabled(True)
    agents_client = openai.AsyncOpenAI(base_url=gateway["base_url"], api_key=gateway["key"], max_retries=0)
    set_default_openai_client(agents_client, use_for_tracing=False)
    agent = Agent(
        name="recall",
        model=OpenAIResponsesModel(model="anthropic-mock/recall", openai_client=agents_client),
        model_settings=ModelSettings(store=True),
    )
    second = asyncio.run(Runner.run(agent, "what is my name?", previous_response_id=first.id))
    assert second.final_output == "mock heard 2 user, 1 assistant: what is my name?"
    assert second.last_response_id not in (None, first.id)

    third = client.responses.create(model="gemini-mock/recall", input="and again?", previous_response_id=second.last_response_id, store=True)
    assert third.output_text == "mock heard 3 user, 2 assistant: and again?"
    assert third.model == "gemini-mock/recall"
    # Each stored turn names its predecessor and the model that served it.
    got = client.responses.retrieve(second.last_response_id)
    assert (got.previous_response_id, got.model) == (first.id, "anthropic-mock/recall")
    assert client.responses.retrieve(third.id).previous_response_id == second.last_response_id

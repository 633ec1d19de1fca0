"""The `anthropic` and `openai` Python SDKs read the gateway's answers a program can act
on: `availability`, the typed `error_type` and `previous_errors`, in each one's error
shape (Anthropic's `error.error_type`; OpenRouter's `error.metadata.error_type`)."""
import anthropic
import openai
import pytest

DOCS = "https://openrouter.ai/docs/api_reference/errors-and-debugging#"
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture()
def claude(gateway):
    return anthropic.Anthropic(base_url=gateway["base_url"].removesuffix("/v1"), api_key=gateway["key"], max_retries=0)


@pytest.fixture()
def client(gateway):
    return openai.OpenAI(base_url=gateway["base_url"], api_key=gateway["key"], max_retries=0)


def test_anthropic_sdk_keeps_availability_and_error_type(claude):
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="nobody/nothing", max_tokens=5, messages=USER)
    e = caught.value
    assert e.status_code == 404
    assert e.body == {
        "type": "error",
        "error": {
            "type": "not_found_error",
            "message": "nobody/nothing is not a valid model ID",
            "error_type": "not_found",
            "availability": {
                "code": "model_not_found",
                "retryable": False,
                "requested_models": ["nobody/nothing"],
                "docs_url": DOCS + "model_not_found",
            },
        },
    }
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model="test/ratelimited", max_tokens=5, messages=USER)
    error = caught.value.body["error"]
    assert (error["type"], error["error_type"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert error["availability"]["code"] == "capacity_exhausted"
    assert error["availability"]["retry_after"] == 17
    assert caught.value.response.headers["retry-after"] == "17"


def test_anthropic_sdk_sees_previous_errors(claude):
    provider = {"order": ["mockai", "mockbackup"], "allow_fallbacks": False}
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model="route/gauntlet", max_tokens=5, messages=USER, extra_body={"provider": provider})
    error = caught.value.body["error"]
    assert error["metadata"] == {"previous_errors": [{"provider": "mockai", "code": "temporarily_unavailable", "status": 500}]}
    assert error["availability"]["code"] == "temporarily_unavailable"
    assert error["availability"]["affected_providers"] == ["mockai", "mockbackup"]


def test_openai_sdk_keeps_availability(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="route/retainer", messages=USER, extra_body={"provider": {"zdr": True}})
    body = caught.value.body
    assert body["availability"]["code"] == "privacy_restricted"
    assert body["availability"]["excluded_by"] == ["data_policy:zdr"]
    assert body["metadata"] == {"error_type": "not_found"}

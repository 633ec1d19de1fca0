"""Account endpoints through the official `openrouter` SDK, which validates every
reply against OpenRouter's schemas."""
import time

import pytest
from openrouter import OpenRouter


@pytest.fixture()
def client(gateway):
    return OpenRouter(api_key=gateway["key"], server_url=gateway["base_url"])


@pytest.fixture()
def manager(gateway):
    return OpenRouter(api_key=gateway["provisioning_key"], server_url=gateway["base_url"])


def eventually(fn, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        try:
            value = fn()
            if value:
                return value
        except Exception:  # noqa: BLE001 - retried until the deadline
            if time.time() > deadline:
                raise
        if time.time() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_current_key_and_credits(client):
    key = client.api_keys.get_current_key_metadata()
    assert key.data.is_provisioning_key is False
    assert key.data.free_model_daily_requests.limit > 0
    credits = client.credits.get_credits()
    assert credits.data.total_credits == 100


def test_key_management_round_trip(manager):
    created = manager.api_keys.create(name="sdk", limit=2.5, limit_reset="weekly")
    assert created.key.startswith("sk-mm-v1-")
    h = created.data.hash
    assert created.data.limit == 2.5
    listed = manager.api_keys.list()
    assert any(k.hash == h for k in listed.data)
    got = manager.api_keys.get(hash=h)
    assert got.data.name == "sdk"
    updated = manager.api_keys.update(hash=h, name="sdk2", disabled=True)
    assert updated.data.disabled is True and updated.data.name == "sdk2"
    deleted = manager.api_keys.delete(hash=h)
    assert deleted.DELETED is True


def test_generation_and_activity(client, manager, gateway):
    r = client.chat.send(model="test/ok", messages=[{"role": "user", "content": "bill me"}])
    gen = eventually(lambda: client.generations.get_generation(id=r.id))
    assert gen.data.id == r.id
    assert gen.data.model == "test/ok"
    assert gen.data.total_cost == pytest.approx(0.000025)
    activity = eventually(lambda: [a for a in manager.analytics.get_user_activity().data if a.model == "test/ok"])
    assert activity[0].requests >= 1

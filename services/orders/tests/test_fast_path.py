"""The hot routes served ahead of the middleware stack (api/fast.py): the same request
context (correlation id, one latency observation) as every route, fallbacks to the full
app counted once, and an unexpected error answered as a JSON 500."""
import re

import pytest

from orders.api import fast

M = "/v1/merchant/service-orders"
S = "/v1/storefront/service-orders"


def _count(metrics: str, route: str, status: int) -> float:
    pattern = (r'http_request_duration_seconds_count\{method="POST",route="' + re.escape(route)
               + r'",status="' + str(status) + r'"\} ([0-9.e+]+)')
    m = re.search(pattern, metrics)
    return float(m.group(1)) if m else 0.0


async def _metrics(api, operator: dict) -> str:
    # /metrics is operator-only on the service port
    r = await api.client.get("/metrics", headers=operator)
    assert r.status_code == 200, r.text
    return r.text


@pytest.fixture
def postgres_only(db_backend):
    if db_backend != "postgres":
        pytest.skip("the fast path serves PostgreSQL only; on SQLite every request takes the full app")


async def test_served_ahead_of_the_stack_with_the_request_context(api, world, postgres_only):
    o = await api.apply(world["sf"])
    r = await api.client.post(f"{M}/{o['id']}/claim", headers={**world["staff"], "x-correlation-id": "cid-claim"},
                              json={})
    assert r.status_code == 200, r.text
    assert r.headers.get_list("x-correlation-id") == ["cid-claim"]
    metrics = await _metrics(api, world["op"])
    assert _count(metrics, "/v1/merchant/service-orders/{order_id}/claim", 200) == 1
    assert _count(metrics, "/v1/storefront/service-orders", 201) == 1
    # an ApiError of the fast path: the app's error body, counted once with its status
    r = await api.client.post(f"{M}/{o['id']}/claim", headers=world["staff"], json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "action_not_allowed"
    assert _count(await _metrics(api, world["op"]), "/v1/merchant/service-orders/{order_id}/claim", 409) == 1


async def test_a_fallback_to_the_full_app_has_one_context_and_the_apps_validation_error(api, world, postgres_only):
    o = await api.apply(world["sf"])
    r = await api.client.post(f"{M}/{o['id']}/audit", headers={**world["staff"], "x-correlation-id": "cid-bad",
                                                                "content-type": "application/json"},
                              content=b'{"decision": ')
    assert r.status_code == 422 and r.headers.get_list("x-correlation-id") == ["cid-bad"]
    assert _count(await _metrics(api, world["op"]), "/v1/merchant/service-orders/{order_id}/audit", 422) == 1


async def test_an_unexpected_error_is_a_json_500_and_changes_nothing(api, world, postgres_only, monkeypatch):
    o = await api.apply(world["sf"])
    route = fast.ACTIONS[("/v1/merchant", "claim")]

    async def broken(*_args, **_kw):
        raise RuntimeError("a bug")

    monkeypatch.setitem(fast.ACTIONS, ("/v1/merchant", "claim"),
                        fast.ActionRoute(route.path, route.context, route.model, broken))
    r = await api.client.post(f"{M}/{o['id']}/claim", headers=world["staff"], json={})
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    view = (await api.client.get(f"{M}/{o['id']}", headers=world["staff"])).json()
    assert view["state"] == o["state"] and view["version"] == o["version"]

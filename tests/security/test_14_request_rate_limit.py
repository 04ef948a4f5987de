"""A per-address request limit on the two login endpoints (POST /api/auth/token, POST /login), kept in
Redis so that it holds across web processes; exempt networks (the benchmarks' loopback) pass."""

from __future__ import annotations

import shutil

from mall.core import netaddr
from mall.core.settings import Settings, load_settings
from tests.factories import PASSWORD, World
from tests.security.login_helpers import (
    HTML,
    assert_problem,
    client_from,
    csrf_token,
    served,
    served_clients,
    token_request,
)


async def test_sixty_login_requests_a_minute_per_address_across_processes(
    world: World, settings: Settings
) -> None:
    # Two apps on the same database and Redis stand for two web processes.
    async with (
        served(settings) as one,
        served(settings, separate=True) as two,
        client_from(one, "203.0.113.77") as first,
        client_from(two, "203.0.113.77") as second,
        client_from(one, "203.0.113.78") as neighbour,
    ):
        token = await csrf_token(second)  # GET /login is not limited
        for c in (first, second):
            for _ in range(30):
                # A malformed body is refused by the handler, but the request was counted.
                r = await c.post("/api/auth/token", json={})
                assert r.status_code == 400, r.text
        r = await token_request(first, "buyer_a", PASSWORD)
        assert_problem(r, 429, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        r = await second.post(
            "/login",
            data={"username": "buyer_a", "password": PASSWORD, "_csrf_token": token},
            headers=HTML,
            follow_redirects=False,
        )
        assert r.status_code == 429 and r.headers["content-type"].startswith("text/html")
        assert "请求过于频繁" in r.text
        # Another address has its own budget.
        assert (await token_request(neighbour, "buyer_a", PASSWORD)).status_code == 201


async def test_exempt_networks_are_not_limited(world: World, settings: Settings) -> None:
    async with served_clients(
        settings, "127.0.0.1", "::1", "203.0.113.79", rate_limit_exempt="127.0.0.0/8,::1"
    ) as (_app, c, c6, outside):
        for _ in range(65):
            assert (await c.post("/api/auth/token", json={})).status_code == 400
            assert (await c6.post("/api/auth/token", json={})).status_code == 400
            await outside.post("/api/auth/token", json={})
        assert (await token_request(c, "buyer_a", PASSWORD)).status_code == 201
        assert (await token_request(c6, "buyer_a", PASSWORD)).status_code == 201
        # The same app limits everyone else.
        assert_problem(await token_request(outside, "buyer_a", PASSWORD), 429, "rate_limited")


def test_the_benchmarks_start_the_mall_exempting_loopback() -> None:
    from bench._harness import Stack

    stack = Stack("sqlite", "probe")
    try:
        env = stack.env()
    finally:
        shutil.rmtree(stack.data_dir, ignore_errors=True)
    exempt = load_settings(env).rate_limit_exempt
    assert netaddr.exempt("127.0.0.1", exempt) and netaddr.exempt("::1", exempt)
    assert not netaddr.exempt("203.0.113.1", exempt)

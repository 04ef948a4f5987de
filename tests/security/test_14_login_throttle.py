"""Failed logins are throttled per (account, client address) with growing waits and per address
across accounts; nobody can lock an account for its owner by failing from elsewhere."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from mall.core import clock
from mall.core.models import AuditEntry, User
from mall.core.settings import Settings
from tests.factories import PASSWORD, World
from tests.security.login_helpers import HTML, assert_problem, login_form, served_clients, token_request


async def _logins_of(world: World, username: str) -> int:
    async with world.db.read() as s:
        return (
            await s.scalar(
                select(func.count()).where(AuditEntry.action == "login", AuditEntry.target == username)
            )
            or 0
        )


async def test_failures_from_one_address_never_lock_the_account_elsewhere(
    world: World, settings: Settings
) -> None:
    async with served_clients(settings, "203.0.113.10", "198.51.100.20") as (_app, attacker, owner):
        statuses = [(await token_request(attacker, "secadmin", f"guess-{i}")).status_code for i in range(8)]
        assert statuses == [401, 401, 401, 429, 429, 429, 429, 429]
        # The owner, somewhere else, logs in with the right password: through the API and the page.
        r = await token_request(owner, "secadmin", PASSWORD)
        assert r.status_code == 201, r.text
        r = await login_form(owner, "secadmin", PASSWORD)
        assert r.status_code == 303 and r.headers["location"] == "/security"


async def test_each_failure_after_the_third_doubles_the_wait_and_the_password_waits_unchecked(
    world: World, settings: Settings
) -> None:
    clock.clock.freeze(clock.now())
    try:
        async with served_clients(settings, "203.0.113.11") as (_app, c):
            for _ in range(3):
                assert_problem(await token_request(c, "buyer_a", "wrong-guess"), 401, "bad_credentials")
            for wait in (2, 4, 8, 16):
                # While it waits even the right password is refused without being checked.
                r = await token_request(c, "buyer_a", PASSWORD)
                body = assert_problem(r, 429, "too_many_attempts")
                assert r.headers["retry-after"] == str(wait)
                assert body["retry_after"] == wait and body["scope"] == "account"
                assert await _logins_of(world, "buyer_a") == 0
                clock.clock.freeze(clock.now() + timedelta(seconds=wait - 1))
                assert (await token_request(c, "buyer_a", PASSWORD)).headers["retry-after"] == "1"
                clock.clock.freeze(clock.now() + timedelta(seconds=1))
                assert_problem(await token_request(c, "buyer_a", "wrong-again"), 401, "bad_credentials")
            r = await token_request(c, "buyer_a", PASSWORD)
            assert r.status_code == 429 and r.headers["retry-after"] == "32"
            clock.clock.freeze(clock.now() + timedelta(seconds=32))
            # Waited long enough: the right password is checked, it logs in and the count starts again.
            assert (await token_request(c, "buyer_a", PASSWORD)).status_code == 201
            assert await _logins_of(world, "buyer_a") == 1
            for _ in range(3):
                assert_problem(await token_request(c, "buyer_a", "wrong-guess"), 401, "bad_credentials")
            assert (await token_request(c, "buyer_a", PASSWORD)).headers["retry-after"] == "2"
    finally:
        clock.clock.unfreeze()


async def test_the_wait_is_capped_at_fifteen_minutes(world: World, settings: Settings) -> None:
    clock.clock.freeze(clock.now())
    try:
        async with served_clients(settings, "203.0.113.12") as (_app, c):
            waits = []
            for _ in range(14):
                r = await token_request(c, "buyer_b", "wrong-guess")
                if r.status_code == 429:
                    waits.append(int(r.headers["retry-after"]))
                    clock.clock.freeze(clock.now() + timedelta(seconds=waits[-1]))
                    r = await token_request(c, "buyer_b", "wrong-guess")
                assert_problem(r, 401, "bad_credentials")
            assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
    finally:
        clock.clock.unfreeze()


async def test_parallel_guesses_cannot_race_past_the_throttle(world: World, settings: Settings) -> None:
    """Requests served concurrently in one event loop: attempts on one (account, address) are serialized."""
    async with served_clients(settings, "203.0.113.13") as (_app, c):
        results = await asyncio.gather(*[token_request(c, "supplier_x", "guess") for _ in range(20)])
    statuses = sorted(r.status_code for r in results)
    assert statuses == [401] * 3 + [429] * 17, statuses


async def test_password_spraying_from_one_address_makes_that_address_wait(
    world: World, settings: Settings
) -> None:
    clock.clock.freeze(clock.now())
    try:
        async with served_clients(settings, "203.0.113.14", "198.51.100.21") as (_app, sprayer, elsewhere):
            names = ["buyer_a", "supplier_x", "center", "sysadmin"] + [f"nobody{i}" for i in range(26)]
            for name in names:  # one guess per account: no account reaches its own limit
                assert_problem(await token_request(sprayer, name, "Spring2026!"), 401, "bad_credentials")
            # The 31st attempt from that address waits, whatever the account, even with the right password.
            r = await token_request(sprayer, "buyer_b", PASSWORD)
            body = assert_problem(r, 429, "too_many_attempts")
            assert body["scope"] == "address" and r.headers["retry-after"] == "900"
            r = await login_form(sprayer, "buyer_b", PASSWORD)
            assert r.status_code == 429 and r.headers["retry-after"] == "900"
            # Another address is not affected.
            assert (await token_request(elsewhere, "buyer_b", PASSWORD)).status_code == 201
            clock.clock.freeze(clock.now() + timedelta(minutes=15))
            assert (await token_request(sprayer, "buyer_b", PASSWORD)).status_code == 201
    finally:
        clock.clock.unfreeze()


async def test_forwarded_for_counts_only_from_a_trusted_proxy(world: World, settings: Settings) -> None:
    async with served_clients(settings, "10.0.0.1", "192.0.2.50", trusted_proxies="10.0.0.1") as (
        _app,
        proxy,
        direct,
    ):
        behind = {"X-Forwarded-For": "198.51.100.7"}
        for _ in range(3):
            assert_problem(await token_request(proxy, "buyer_a", "wrong", **behind), 401, "bad_credentials")
        # Whatever the client wrote to the left of the proxy's entry proves nothing.
        spoofed = {"X-Forwarded-For": "198.51.100.99, 198.51.100.7"}
        assert_problem(await token_request(proxy, "buyer_a", PASSWORD, **spoofed), 429, "too_many_attempts")
        # Another client behind the same proxy is another address.
        other = {"X-Forwarded-For": "198.51.100.8"}
        assert (await token_request(proxy, "buyer_a", PASSWORD, **other)).status_code == 201
        # A client that is not a trusted proxy cannot pick its address with the header.
        for i in range(3):
            fake = {"X-Forwarded-For": f"198.51.100.{100 + i}"}
            assert_problem(await token_request(direct, "buyer_b", "wrong", **fake), 401, "bad_credentials")
        fake = {"X-Forwarded-For": "198.51.100.200"}
        assert_problem(await token_request(direct, "buyer_b", PASSWORD, **fake), 429, "too_many_attempts")


async def test_exempt_networks_are_not_throttled(world: World, settings: Settings) -> None:
    async with served_clients(settings, "127.0.0.1", "203.0.113.15", rate_limit_exempt="127.0.0.0/8,::1") as (
        _app,
        loopback,
        outside,
    ):
        for _ in range(6):
            assert_problem(await token_request(loopback, "center", "wrong"), 401, "bad_credentials")
        assert (await token_request(loopback, "center", PASSWORD)).status_code == 201
        for _ in range(3):
            assert_problem(await token_request(outside, "center", "wrong"), 401, "bad_credentials")
        assert_problem(await token_request(outside, "center", PASSWORD), 429, "too_many_attempts")


async def test_the_login_page_says_how_long_to_wait(world: World, settings: Settings) -> None:
    async with served_clients(settings, "203.0.113.16") as (_app, c):
        for _ in range(3):
            r = await login_form(c, "buyer_a", "wrong")
            assert r.status_code == 401 and "用户名或密码错误" in r.text
        r = await login_form(c, "buyer_a", PASSWORD)
        assert r.status_code == 429 and r.headers["content-type"].startswith("text/html")
        assert r.headers["retry-after"] == "2"
        assert "登录失败次数过多" in r.text and "2 秒" in r.text
        assert 'value="buyer_a"' in r.text  # the form keeps the username
        assert (await c.get("/budgets", headers=HTML)).status_code == 401  # nobody was logged in
    async with world.db.read() as s:
        user = (await s.execute(select(User).where(User.username == "buyer_a"))).scalar_one()
        assert user.last_login_at is None

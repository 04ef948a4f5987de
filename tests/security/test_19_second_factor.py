"""The second factor (GB/T 22239-2019 身份鉴别: 应采用口令、密码技术、生物技术等两种或两种以上组合的鉴别技术):
TOTP for the administrators, centers and regulators. The secret is shown once at enrolment and kept
encrypted; a login asks for the code after the password; a code is never accepted twice; wrong codes
are throttled like wrong passwords and audited; MALL_REQUIRE_TOTP sends a role that has not enrolled
to enrol before anything else; the security administrator resets a lost one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from mall.core import clock, totp
from mall.core.models import AuditEntry, User
from mall.core.settings import Settings, SettingsError, load_settings
from tests.factories import PASSWORD, World
from tests.security.login_helpers import (
    HTML,
    assert_problem,
    client_from,
    flashes,
    login_form,
    post_form,
    served,
)


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    """Codes belong to 30-second steps: the clock stands still unless a test moves it."""
    clock.clock.freeze(clock.now().replace(microsecond=0))
    yield
    clock.clock.unfreeze()


def step_later(steps: int = 1) -> None:
    clock.clock.freeze(clock.now() + timedelta(seconds=totp.INTERVAL * steps))


async def enrol(c: Any) -> str:
    """Enrol the logged-in user through its pages; the secret as the page showed it, once."""
    assert (await post_form(c, "/account/totp/begin", {})).status_code == 303
    page = (await c.get("/account/totp", headers=HTML)).text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
    uri = re.search(r'id="totp-uri">([^<]+)<', page)
    assert secret and uri and uri.group(1).startswith("otpauth://totp/"), page
    assert secret.group(1) in uri.group(1)
    again = (await c.get("/account/totp", headers=HTML)).text
    assert secret.group(1) not in again  # shown once
    r = await post_form(c, "/account/totp/confirm", {"code": "000000"})
    assert r.status_code == 303
    assert any("验证码不正确" in f for f in flashes((await c.get("/account/totp", headers=HTML)).text))
    r = await post_form(c, "/account/totp/confirm", {"code": totp.code_at(secret.group(1), clock.now())})
    assert r.status_code == 303, r.text
    step_later()  # the code just used is spent
    return secret.group(1)


async def test_enrolment_then_every_login_asks_for_a_fresh_code(world: World, settings: Settings) -> None:
    async with served(settings) as app:
        async with client_from(app, "198.51.100.120") as c:
            assert (await login_form(c, "center", PASSWORD)).status_code == 303
            secret = await enrol(c)
            assert "已绑定" in (await c.get("/account", headers=HTML)).text
        async with world.db.read() as s:
            stored = await s.scalar(select(User.totp_secret).where(User.username == "center"))
        assert stored and secret not in stored and stored.startswith("v1.")
        assert totp.unseal(totp.key_for(settings.resolved_secret()), stored) == secret

        async with client_from(app, "198.51.100.121") as c:
            r = await login_form(c, "center", PASSWORD)
            assert r.status_code == 303 and r.headers["location"] == "/login/totp"
            assert (await c.get("/orders", headers=HTML)).status_code == 401  # not logged in yet
            r = await post_form(c, "/login/totp", {"code": "123456"})
            assert r.status_code == 401 and "动态口令错误" in r.text
            code = totp.code_at(secret, clock.now())
            r = await post_form(c, "/login/totp", {"code": code})
            assert r.status_code == 303 and r.headers["location"] == "/workbench"
            assert (await c.get("/orders", headers=HTML)).status_code == 200
        async with client_from(app, "198.51.100.122") as c:
            # the same code again, within its own 30 seconds: refused
            assert (await login_form(c, "center", PASSWORD)).headers["location"] == "/login/totp"
            r = await post_form(c, "/login/totp", {"code": code})
            assert r.status_code == 401
            step_later()
            r = await post_form(c, "/login/totp", {"code": totp.code_at(secret, clock.now())})
            assert r.status_code == 303

        # The API takes the code with the password, once.
        async with client_from(app, "198.51.100.123") as c:
            body = {"username": "center", "password": PASSWORD}
            assert_problem(await c.post("/api/auth/token", json=body), 401, "totp_required")
            step_later()
            code = totp.code_at(secret, clock.now())
            r = await c.post("/api/auth/token", json={**body, "totp_code": code})
            assert r.status_code == 201, r.text
            assert_problem(
                await c.post("/api/auth/token", json={**body, "totp_code": code}), 401, "totp_invalid"
            )
            r = await c.post(
                "/api/auth/token", json={"username": "center", "password": "wrong", "totp_code": code}
            )
            assert_problem(r, 401, "bad_credentials")
    async with world.db.read() as s:
        actions = [
            (e.action, e.succeeded)
            for e in (
                await s.execute(
                    select(AuditEntry).where(AuditEntry.target == "center").order_by(AuditEntry.seq)
                )
            ).scalars()
        ]
    assert actions[:5] == [
        ("login", True),
        ("totp_enrolment_started", True),
        ("totp_enrolment_failed", False),
        ("totp_enabled", True),
        ("login_password_ok", True),
    ]
    assert ("login_totp_failed", False) in actions and actions.count(("login", True)) == 4


async def test_wrong_codes_are_throttled_like_passwords(world: World, settings: Settings) -> None:
    async with served(settings) as app:
        async with client_from(app, "198.51.100.130") as c:
            assert (await login_form(c, "regulator", PASSWORD)).status_code == 303
            secret = await enrol(c)
        async with client_from(app, "203.0.113.130") as attacker:
            # A right password between guesses does not forget them: only the whole login does.
            statuses = []
            for i in range(4):
                r = await login_form(attacker, "regulator", PASSWORD)
                if r.status_code != 303:
                    statuses.append(r.status_code)
                    continue
                statuses.append((await post_form(attacker, "/login/totp", {"code": f"00000{i}"})).status_code)
            assert statuses == [401, 401, 401, 429], statuses
            r = await login_form(attacker, "regulator", PASSWORD)
            assert r.status_code == 429 and r.headers["Retry-After"]
        async with client_from(app, "198.51.100.131") as owner:  # the owner, elsewhere, is not locked out
            assert (await login_form(owner, "regulator", PASSWORD)).status_code == 303
            r = await post_form(owner, "/login/totp", {"code": totp.code_at(secret, clock.now())})
            assert r.status_code == 303
    async with world.db.read() as s:
        failed = (
            await s.execute(select(AuditEntry).where(AuditEntry.action == "login_totp_failed"))
        ).scalars()
        assert {e.ip for e in failed} == {"203.0.113.130"}


async def test_mall_require_totp_sends_the_role_to_enrol_before_anything_else(
    world: World, settings: Settings
) -> None:
    async with (
        served(settings, require_totp="sysadmin,auditor") as app,
        client_from(app, "198.51.100.140") as c,
    ):
        r = await c.post("/api/auth/token", json={"username": "sysadmin", "password": PASSWORD})
        assert_problem(r, 403, "totp_enrolment_required")
        # A token issued before the policy is no way around it.
        assert_problem(
            await c.get("/api/admin/organizations", headers=world.h("sysadmin")),
            403,
            "totp_enrolment_required",
        )
        r = await login_form(c, "sysadmin", PASSWORD)
        assert r.status_code == 303 and r.headers["location"] == "/account/totp"
        r = await c.get("/admin", headers=HTML, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/account/totp"
        r = await post_form(c, "/admin/organizations", {})
        assert r.status_code == 403 and "绑定动态口令" in r.text
        assert "须使用动态口令" in (await c.get("/account/totp", headers=HTML)).text
        await enrol(c)
        assert (await c.get("/admin", headers=HTML)).status_code == 200
        # Roles the policy does not name are not held up.
        assert (await c.get("/api/orders", headers=world.h("center"))).status_code == 200


async def test_the_security_administrator_resets_a_lost_second_factor(
    world: World, settings: Settings, client: Any
) -> None:
    async with served(settings) as app, client_from(app, "198.51.100.150") as c:
        assert (await login_form(c, "auditor", PASSWORD)).status_code == 303
        await enrol(c)
    user_id = world.who["auditor"].user_id
    for who in ("sysadmin", "auditor", "center"):
        r = await client.delete(f"/api/security/users/{user_id}/totp", headers=world.h(who))
        assert_problem(r, 403, "forbidden")
    r = await client.delete(
        f"/api/security/users/{world.who['secadmin'].user_id}/totp", headers=world.h("secadmin")
    )
    assert_problem(r, 403, "own_second_factor")
    assert (
        await client.delete(f"/api/security/users/{user_id}/totp", headers=world.h("secadmin"))
    ).status_code == 204
    r = await client.post("/api/auth/token", json={"username": "auditor", "password": PASSWORD})
    assert r.status_code == 201, r.text
    assert_problem(
        await client.delete(f"/api/security/users/{user_id}/totp", headers=world.h("secadmin")),
        409,
        "totp_not_enabled",
    )


async def test_only_the_roles_it_protects_enrol(client: Any, world: World, settings: Settings) -> None:
    async with served(settings) as app, client_from(app, "198.51.100.160") as c:
        assert (await login_form(c, "buyer_a", PASSWORD)).status_code == 303
        r = await post_form(c, "/account/totp/begin", {})
        assert r.status_code == 303
        assert any("只有管理员" in f for f in flashes((await c.get("/account/totp", headers=HTML)).text))


def test_the_settings_of_the_audit_log_and_the_second_factor() -> None:
    assert load_settings({}).audit_online_days == 180
    assert load_settings({"MALL_AUDIT_ONLINE_DAYS": "365"}).audit_online_days == 365
    with pytest.raises(SettingsError, match="MALL_AUDIT_ONLINE_DAYS"):
        load_settings({"MALL_AUDIT_ONLINE_DAYS": "90"})
    assert load_settings({}).totp_required_roles == frozenset()
    assert load_settings({"MALL_REQUIRE_TOTP": "true"}).totp_required_roles == frozenset(totp.ROLES)
    assert load_settings({"MALL_REQUIRE_TOTP": "center, regulator"}).totp_required_roles == {
        "center",
        "regulator",
    }
    with pytest.raises(SettingsError, match="MALL_REQUIRE_TOTP"):
        load_settings({"MALL_REQUIRE_TOTP": "buyer"})

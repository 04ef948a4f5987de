"""API tokens: a 7-day default lifetime (token_ttl_days), at most max_live_tokens live per user (the
oldest is revoked), listed and revoked by their owner, all revoked by "log out everywhere"."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from mall.core import clock
from mall.core.models import ApiToken, AuditEntry
from mall.core.settings import Settings
from tests.factories import PASSWORD, World
from tests.security.login_helpers import (
    HTML,
    assert_problem,
    flashes,
    login_form,
    post_form,
    served_clients,
    token_request,
)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_token_lives_token_ttl_days(world: World, settings: Settings) -> None:
    assert settings.token_ttl_days == 7
    for ttl in (7, 2):
        now = clock.now().replace(microsecond=0)
        clock.clock.freeze(now)
        try:
            async with served_clients(settings, "198.51.100.80", token_ttl_days=ttl) as (_app, c):
                r = await token_request(c, "buyer_a", PASSWORD)
                assert r.status_code == 201, r.text
                token = r.json()["token"]
                assert _at(r.json()["expires_at"]) == now + timedelta(days=ttl)
                h = {"Authorization": f"Bearer {token}"}
                clock.clock.freeze(now + timedelta(days=ttl) - timedelta(seconds=1))
                assert (await c.get("/api/me", headers=h)).status_code == 200
                clock.clock.freeze(now + timedelta(days=ttl))
                assert_problem(await c.get("/api/me", headers=h), 401, "unauthenticated")
        finally:
            clock.clock.unfreeze()


async def test_the_owner_lists_tokens_without_their_secret(client: Any, world: World) -> None:
    r = await client.post(
        "/api/auth/token", json={"username": "buyer_a", "password": PASSWORD, "name": "财务系统对接"}
    )
    assert r.status_code == 201, r.text
    secret = r.json()["token"]
    mine = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/me", headers=mine)).status_code == 200
    r = await client.get("/api/auth/tokens", headers=mine)
    assert r.status_code == 200, r.text
    assert secret not in r.text and secret[5:20] not in r.text and world.tokens["buyer_a"] not in r.text
    rows = r.json()
    assert sorted(x["name"] for x in rows) == ["test", "财务系统对接"]
    this = next(x for x in rows if x["name"] == "财务系统对接")
    assert set(this) == {"id", "name", "created_at", "expires_at", "last_used_at", "current"}
    assert this["current"] is True and this["last_used_at"] is not None
    assert _at(this["expires_at"]) - _at(this["created_at"]) == timedelta(days=7)
    other = next(x for x in rows if x["name"] == "test")
    assert other["current"] is False and other["last_used_at"] is None
    # Someone else's list does not show them.
    theirs = (await client.get("/api/auth/tokens", headers=world.h("buyer_b"))).json()
    assert [x["name"] for x in theirs] == ["test"] and this["id"] not in [x["id"] for x in theirs]


async def test_the_owner_revokes_a_token_and_nobody_else_can(client: Any, world: World) -> None:
    rows = (await client.get("/api/auth/tokens", headers=world.h("buyer_a"))).json()
    [row] = rows
    r = await client.delete(f"/api/auth/tokens/{row['id']}", headers=world.h("buyer_b"))
    assert_problem(r, 404, "token_not_found")
    r = await client.delete(f"/api/auth/tokens/{row['id']}", headers=world.h("secadmin"))
    assert_problem(r, 404, "token_not_found")
    assert (await client.get("/api/me", headers=world.h("buyer_a"))).status_code == 200
    r = await client.delete(f"/api/auth/tokens/{uuid.uuid4()}", headers=world.h("buyer_a"))
    assert_problem(r, 404, "token_not_found")
    # Revoking one's own token, even the one making the call, ends it at once.
    r = await client.delete(f"/api/auth/tokens/{row['id']}", headers=world.h("buyer_a"))
    assert r.status_code == 204, r.text
    assert_problem(await client.get("/api/me", headers=world.h("buyer_a")), 401, "unauthenticated")
    async with world.db.read() as s:
        audit = (
            (await s.execute(select(AuditEntry).where(AuditEntry.action == "token_revoked"))).scalars().all()
        )
    assert [(a.actor_user_id, a.target) for a in audit] == [(world.who["buyer_a"].user_id, "test")]


async def test_the_oldest_live_token_is_revoked_beyond_max_live_tokens(
    world: World, settings: Settings
) -> None:
    assert settings.max_live_tokens == 20
    start = clock.now()
    async with served_clients(settings, "198.51.100.81", max_live_tokens=3) as (_app, c):
        tokens = []
        for i in range(4):
            # One minute apart, so "oldest" is unambiguous.
            clock.clock.freeze(start + timedelta(minutes=i + 1))
            r = await c.post(
                "/api/auth/token", json={"username": "supplier_x", "password": PASSWORD, "name": f"脚本{i}"}
            )
            assert r.status_code == 201, r.text
            tokens.append(r.json()["token"])
        clock.clock.unfreeze()
        # The factory's token ("test", the oldest) and then 脚本0 made room for 脚本2 and 脚本3.
        assert_problem(await c.get("/api/me", headers=world.h("supplier_x")), 401, "unauthenticated")
        assert_problem(
            await c.get("/api/me", headers={"Authorization": f"Bearer {tokens[0]}"}), 401, "unauthenticated"
        )
        for token in tokens[1:]:
            assert (await c.get("/api/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200
        listed = (await c.get("/api/auth/tokens", headers={"Authorization": f"Bearer {tokens[3]}"})).json()
        assert sorted(x["name"] for x in listed) == ["脚本1", "脚本2", "脚本3"]
    async with world.db.read() as s:
        live = await s.scalar(
            select(func.count()).where(
                ApiToken.user_id == world.who["supplier_x"].user_id, ApiToken.revoked_at.is_(None)
            )
        )
        revoked = (
            (
                await s.execute(
                    select(AuditEntry).where(
                        AuditEntry.action == "token_revoked",
                        AuditEntry.actor_user_id == world.who["supplier_x"].user_id,
                    )
                )
            )
            .scalars()
            .all()
        )
    assert live == 3
    assert sorted(a.target for a in revoked) == ["test", "脚本0"]
    assert all("上限" in a.detail for a in revoked)


async def test_log_out_everywhere_through_the_api_revokes_every_token_and_session(
    world: World, settings: Settings
) -> None:
    async with served_clients(settings, "198.51.100.82", "198.51.100.83") as (_app, c, browser):
        assert (await login_form(browser, "center", PASSWORD)).status_code == 303
        assert (await browser.get("/oversight", headers=HTML)).status_code == 200
        second = (await token_request(c, "center", PASSWORD)).json()["token"]
        r = await c.post("/api/auth/logout-all", headers=world.h("center"))
        assert r.status_code == 204, r.text
        for token in (world.tokens["center"], second):
            r = await c.get("/api/me", headers={"Authorization": f"Bearer {token}"})
            assert_problem(r, 401, "unauthenticated")
        assert (await browser.get("/oversight", headers=HTML)).status_code == 401
        # Other users keep theirs.
        assert (await c.get("/api/me", headers=world.h("regulator"))).status_code == 200
        # The password still works: a new token can be had.
        assert (await token_request(c, "center", PASSWORD)).status_code == 201


async def test_the_account_page_lists_and_revokes_tokens_and_logs_out_everywhere(
    world: World, settings: Settings
) -> None:
    async with served_clients(settings, "198.51.100.84", "198.51.100.85") as (_app, c, elsewhere):
        r = await c.post(
            "/api/auth/token", json={"username": "buyer_b", "password": PASSWORD, "name": "报账脚本"}
        )
        script = r.json()["token"]
        assert (await login_form(c, "buyer_b", PASSWORD)).status_code == 303
        assert (await login_form(elsewhere, "buyer_b", PASSWORD)).status_code == 303
        home = (await c.get("/goods", headers=HTML)).text
        assert 'href="/account"' in home  # the account menu
        text = (await c.get("/account", headers=HTML)).text
        assert "修改密码" in text and "在所有设备上退出" in text
        assert "报账脚本" in text and script not in text
        ids = re.findall(r'action="/account/tokens/([0-9a-f-]{36})/revoke"', text)
        assert len(ids) == 2
        async with world.db.read() as s:
            script_id = (await s.execute(select(ApiToken.id).where(ApiToken.name == "报账脚本"))).scalar_one()
        r = await post_form(c, f"/account/tokens/{script_id}/revoke", {})
        assert r.status_code == 303 and r.headers["location"] == "/account"
        text = (await c.get("/account", headers=HTML)).text
        assert any("已吊销" in m for m in flashes(text)) and "报账脚本" not in text
        assert_problem(
            await c.get("/api/me", headers={"Authorization": f"Bearer {script}"}), 401, "unauthenticated"
        )
        # Another user's token cannot be revoked from the page.
        other = (await c.get("/api/auth/tokens", headers=world.h("buyer_a"))).json()[0]["id"]
        r = await post_form(c, f"/account/tokens/{other}/revoke", {})
        assert r.status_code == 303
        assert any("不存在" in m for m in flashes((await c.get("/account", headers=HTML)).text))
        assert (await c.get("/api/me", headers=world.h("buyer_a"))).status_code == 200

        r = await post_form(c, "/account/logout-all", {})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert any("所有设备" in m for m in flashes((await c.get("/login", headers=HTML)).text))
        assert (await c.get("/budgets", headers=HTML)).status_code == 401
        assert (await elsewhere.get("/budgets", headers=HTML)).status_code == 401
        assert_problem(await c.get("/api/me", headers=world.h("buyer_b")), 401, "unauthenticated")


async def test_last_use_is_recorded_at_most_every_few_minutes(world: World, settings: Settings) -> None:
    start = clock.now().replace(microsecond=0)
    clock.clock.freeze(start)
    try:
        async with served_clients(settings, "198.51.100.86") as (_app, c):
            h = world.h("regulator")
            assert (await c.get("/api/me", headers=h)).status_code == 200
            clock.clock.freeze(start + timedelta(minutes=4))
            assert (await c.get("/api/me", headers=h)).status_code == 200
            [row] = (await c.get("/api/auth/tokens", headers=h)).json()
            assert _at(row["last_used_at"]) == start
            clock.clock.freeze(start + timedelta(minutes=6))
            assert (await c.get("/api/me", headers=h)).status_code == 200
            [row] = (await c.get("/api/auth/tokens", headers=h)).json()
            assert _at(row["last_used_at"]) == start + timedelta(minutes=6)
    finally:
        clock.clock.unfreeze()

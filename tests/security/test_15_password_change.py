"""Changing one's password (page 修改密码 and POST /api/auth/password): the current password is checked
(and throttled like a login), the policy applies, every other session ends and every token is revoked."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mall.core.models import AuditEntry
from mall.core.settings import Settings
from tests.factories import PASSWORD, World
from tests.security import login_helpers as lh

NEW = "Huanghe-liu-2026"


async def _audit(world: World, action: str) -> list[AuditEntry]:
    async with world.db.read() as s:
        return list((await s.execute(select(AuditEntry).where(AuditEntry.action == action))).scalars())


async def test_changing_the_password_through_the_api_revokes_every_token(
    world: World, settings: Settings
) -> None:
    async with lh.served_clients(settings, "198.51.100.90", "198.51.100.91") as (_app, c, browser):
        assert (await lh.login_form(browser, "supplier_y", PASSWORD)).status_code == 303
        second = (await lh.token_request(c, "supplier_y", PASSWORD)).json()["token"]
        h = world.h("supplier_y")
        r = await c.post(
            "/api/auth/password", json={"current_password": "wrong", "new_password": NEW}, headers=h
        )
        lh.assert_problem(r, 401, "bad_credentials")
        r = await c.post("/api/auth/password", json={"current_password": PASSWORD}, headers=h)
        lh.assert_problem(r, 400, "invalid_input")
        r = await c.post(
            "/api/auth/password", json={"current_password": PASSWORD, "new_password": NEW}, headers=h
        )
        assert r.status_code == 204, r.text
        # Every token, the caller's included: it logs in again with the new password.
        for token in (world.tokens["supplier_y"], second):
            r = await c.get("/api/me", headers={"Authorization": f"Bearer {token}"})
            lh.assert_problem(r, 401, "unauthenticated")
        assert (await browser.get("/orders", headers=lh.HTML)).status_code == 401
        lh.assert_problem(await lh.token_request(c, "supplier_y", PASSWORD), 401, "bad_credentials")
        assert (await lh.token_request(c, "supplier_y", NEW)).status_code == 201
        assert (await c.get("/api/me", headers=world.h("supplier_x"))).status_code == 200
    changed = await _audit(world, "password_changed")
    assert [a.actor_user_id for a in changed] == [world.who["supplier_y"].user_id]


async def test_wrong_current_passwords_are_throttled_like_logins(world: World, settings: Settings) -> None:
    async with lh.served_clients(settings, "203.0.113.90") as (app, c):
        h = world.h("buyer_a")
        for _ in range(3):
            r = await c.post(
                "/api/auth/password", json={"current_password": "guess", "new_password": NEW}, headers=h
            )
            lh.assert_problem(r, 401, "bad_credentials")
        r = await c.post(
            "/api/auth/password", json={"current_password": PASSWORD, "new_password": NEW}, headers=h
        )
        lh.assert_problem(r, 429, "too_many_attempts")
        assert r.headers["retry-after"] == "2"
        # The failed checks did not end the caller's token, and the password is unchanged.
        assert (await c.get("/api/me", headers=h)).status_code == 200
        async with lh.client_from(app, "198.51.100.92") as other:
            assert (await lh.token_request(other, "buyer_a", PASSWORD)).status_code == 201


async def test_changing_the_password_on_the_page_keeps_this_browser_and_ends_the_others(
    world: World, settings: Settings
) -> None:
    async with lh.served_clients(settings, "198.51.100.93", "198.51.100.94") as (_app, c, elsewhere):
        assert (await lh.login_form(c, "regulator", PASSWORD)).status_code == 303
        assert (await lh.login_form(elsewhere, "regulator", PASSWORD)).status_code == 303
        text = (await c.get("/account", headers=lh.HTML)).text
        assert 'action="/account/password"' in text
        # Refusals come back as a message and change nothing.
        for form, message in [
            ({"current_password": "wrong", "new_password": NEW, "new_password2": NEW}, "密码错误"),
            ({"current_password": PASSWORD, "new_password": NEW, "new_password2": NEW + "x"}, "不一致"),
            ({"current_password": PASSWORD, "new_password": "abc", "new_password2": "abc"}, "至少 10 个字符"),
            ({"current_password": PASSWORD, "new_password": "regulator", "new_password2": "regulator"}, "10"),
        ]:
            r = await lh.post_form(c, "/account/password", form)
            assert r.status_code == 303 and r.headers["location"] == "/account"
            messages = lh.flashes((await c.get("/account", headers=lh.HTML)).text)
            assert any(message in m for m in messages), (form, messages)
        assert (await elsewhere.get("/oversight", headers=lh.HTML)).status_code == 200
        r = await lh.post_form(
            c, "/account/password", {"current_password": PASSWORD, "new_password": NEW, "new_password2": NEW}
        )
        assert r.status_code == 303 and r.headers["location"] == "/account"
        text = (await c.get("/account", headers=lh.HTML)).text
        assert any("密码已修改" in m for m in lh.flashes(text))
        assert (await c.get("/oversight", headers=lh.HTML)).status_code == 200  # this browser stays
        assert (await elsewhere.get("/oversight", headers=lh.HTML)).status_code == 401  # the others end
        lh.assert_problem(await c.get("/api/me", headers=world.h("regulator")), 401, "unauthenticated")
        assert (await lh.login_form(elsewhere, "regulator", NEW)).status_code == 303


async def test_the_account_page_needs_a_login(client: Any, world: World) -> None:
    r = await client.get("/account", headers=lh.HTML, follow_redirects=False)
    assert r.status_code == 401

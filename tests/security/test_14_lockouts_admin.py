"""The security administrator sees the login throttles in force and clears them (API and /security); each
clearing is audited, with who did it, in which role and from where."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from mall.core import clock
from mall.core.models import AuditEntry
from mall.core.settings import Settings
from tests.factories import PASSWORD, World
from tests.security import login_helpers as lh


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    """Waits are exact when the clock stands still."""
    clock.clock.freeze(clock.now())
    yield
    clock.clock.unfreeze()


async def _throttle(world: World, settings: Settings, app: object) -> None:
    """buyer_a failing from 203.0.113.30; a password spray from 203.0.113.32."""
    async with (
        lh.client_from(app, "203.0.113.30") as attacker,
        lh.client_from(app, "203.0.113.32") as sprayer,
    ):
        for _ in range(3):
            lh.assert_problem(await lh.token_request(attacker, "buyer_a", "wrong"), 401, "bad_credentials")
        for i in range(30):
            lh.assert_problem(
                await lh.token_request(sprayer, f"ghost{i}", "Spring2026!"), 401, "bad_credentials"
            )


@pytest.mark.slow
async def test_the_security_administrator_lists_and_clears_throttles_through_the_api(
    world: World, settings: Settings
) -> None:
    async with lh.served(settings) as app:
        await _throttle(world, settings, app)
        async with lh.client_from(app, "198.51.100.40") as c, lh.client_from(app, "203.0.113.30") as attacker:
            for who in ("buyer_a", "center", "regulator", "sysadmin", "auditor"):
                lh.assert_problem(
                    await c.get("/api/admin/login-throttles", headers=world.h(who)), 403, "forbidden"
                )
            lh.assert_problem(await c.get("/api/admin/login-throttles"), 401, "unauthenticated")
            r = await c.get("/api/admin/login-throttles", headers=world.h("secadmin"))
            assert r.status_code == 200, r.text
            rows = r.json()
            pair = next(x for x in rows if x["kind"] == "account")
            assert (pair["username"], pair["ip"], pair["failures"]) == ("buyer_a", "203.0.113.30", 3)
            assert pair["blocked_until"] and pair["retry_after"] == 2
            spray = next(x for x in rows if x["kind"] == "address")
            assert (spray["username"], spray["ip"], spray["failures"]) == ("", "203.0.113.32", 30)
            assert spray["retry_after"] == 900
            # One guess per ghost account stays below its own threshold: not listed.
            assert len(rows) == 2, rows

            lh.assert_problem(await lh.token_request(attacker, "buyer_a", PASSWORD), 429, "too_many_attempts")
            for who in ("center", "sysadmin", "auditor"):
                r = await c.delete(f"/api/admin/login-throttles/{pair['id']}", headers=world.h(who))
                lh.assert_problem(r, 403, "forbidden")
            r = await c.delete(f"/api/admin/login-throttles/{pair['id']}", headers=world.h("secadmin"))
            assert r.status_code == 204, r.text
            assert (await lh.token_request(attacker, "buyer_a", PASSWORD)).status_code == 201
            r = await c.delete(f"/api/admin/login-throttles/{pair['id']}", headers=world.h("secadmin"))
            lh.assert_problem(r, 404, "login_throttle_not_found")
            r = await c.delete(f"/api/admin/login-throttles/{uuid.uuid4()}", headers=world.h("secadmin"))
            lh.assert_problem(r, 404, "login_throttle_not_found")
            rows = (await c.get("/api/admin/login-throttles", headers=world.h("secadmin"))).json()
            assert [x["ip"] for x in rows] == ["203.0.113.32"]
    async with world.db.read() as s:
        audit = (
            (await s.execute(select(AuditEntry).where(AuditEntry.action == "login_throttle_cleared")))
            .scalars()
            .all()
        )
    assert [(a.actor_user_id, a.actor_username, a.actor_role, a.ip, a.target) for a in audit] == [
        (world.who["secadmin"].user_id, "secadmin", "secadmin", "198.51.100.40", "buyer_a@203.0.113.30")
    ]
    assert audit[0].before_state is not None and '"failures":3' in audit[0].before_state


@pytest.mark.slow
async def test_the_security_page_shows_throttles_with_a_clear_button(
    world: World, settings: Settings
) -> None:
    async with lh.served(settings) as app:
        await _throttle(world, settings, app)
        async with (
            lh.client_from(app, "198.51.100.41") as admin,
            lh.client_from(app, "203.0.113.32") as sprayer,
        ):
            assert (await lh.login_form(admin, "secadmin", PASSWORD)).status_code == 303
            text = (await admin.get("/security", headers=lh.HTML)).text
            assert "登录限制" in text
            assert "203.0.113.30" in text and "buyer_a" in text and "203.0.113.32" in text
            ids = re.findall(r'action="/security/login-throttles/([0-9a-f-]{36})/clear"', text)
            assert len(ids) == 2
            lh.assert_problem(await lh.token_request(sprayer, "buyer_b", PASSWORD), 429, "too_many_attempts")
            for throttle_id in ids:
                r = await lh.post_form(admin, f"/security/login-throttles/{throttle_id}/clear", {})
                assert r.status_code == 303 and r.headers["location"] == "/security"
            text = (await admin.get("/security", headers=lh.HTML)).text
            assert any("已解除" in f for f in lh.flashes(text)), lh.flashes(text)
            assert "203.0.113.32" not in text
            assert (await lh.token_request(sprayer, "buyer_b", PASSWORD)).status_code == 201
            # Clearing one that is gone is a message, not an error page.
            r = await lh.post_form(admin, f"/security/login-throttles/{ids[0]}/clear", {})
            assert r.status_code == 303
            assert any(
                "不存在" in f for f in lh.flashes((await admin.get("/security", headers=lh.HTML)).text)
            )
        # Anyone else's form post is refused, the other administrators' too.
        for n, who in enumerate(("buyer_b", "sysadmin", "auditor")):
            async with lh.client_from(app, f"198.51.100.{50 + n}") as other:
                assert (await lh.login_form(other, who, PASSWORD)).status_code == 303
                r = await lh.post_form(other, f"/security/login-throttles/{ids[0]}/clear", {})
                assert r.status_code == 403
    async with world.db.read() as s:
        targets = sorted(
            a.target
            for a in (
                await s.execute(select(AuditEntry).where(AuditEntry.action == "login_throttle_cleared"))
            ).scalars()
        )
    assert targets == ["203.0.113.32", "buyer_a@203.0.113.30"]

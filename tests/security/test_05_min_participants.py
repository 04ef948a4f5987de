"""Inquiries and auctions need at least the platform's minimum of participants (settings
`min_participants`, 3 by default), which a buyer can raise but never lower; an invitation names at
least that many active supplier organizations. Refusals are 400 naming the field, nothing is kept."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from bidding.models import Procedure
from mall.budgets.models import BudgetLine
from mall.core.models import Organization, OrgKind
from mall.core.settings import Settings
from tests.conftest import app_for
from tests.factories import World
from tests.mall.test_pages import HTML, login_ok, post_form


def assert_refused(r: Any, field: str) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert (
        problem["field"] == field
        and problem["code"]
        and any("\u4e00" <= ch <= "\u9fff" for ch in problem["detail"])
    )


async def count_procedures(world: World) -> int:
    async with world.db.read() as s:
        return await s.scalar(select(func.count()).select_from(Procedure)) or 0


async def reserved(world: World) -> Any:
    async with world.db.read() as s:
        line = await s.get(BudgetLine, world.lines["a1"].id)
        assert line is not None
        return line.reserved


async def test_a_buyer_cannot_lower_the_minimum_or_invite_too_few(client: Any, world: World) -> None:
    s = [await world.org(f"m{i}", OrgKind.SUPPLIER, f"最少供应商{i}") for i in range(4)]
    ids = [str(x.org_id) for x in s]
    frozen = await world.org("frozen", OrgKind.SUPPLIER, "已冻结供应商")
    async with world.db.write() as tx:
        await tx.session.execute(
            update(Organization).where(Organization.id == frozen.org_id).values(status="frozen")
        )
    h = world.h("buyer_a")
    for kind in ("inquiry", "auction"):
        extra = {"decrement": "100"} if kind == "auction" else {}
        for mp in (0, 1, 2):
            r = await client.post(
                "/api/procedures",
                json=world.procedure_json(ids[:3], kind=kind, min_participants=mp, **extra),
                headers=h,
            )
            assert_refused(r, "min_participants")
        for invited in (
            ids[:1],  # the case that was awarded, contracted and published as "competitive"
            ids[:2],
            [ids[0], ids[0], ids[1]],  # the same supplier twice is one supplier
            [*ids[:2], str(uuid.uuid4())],  # an unknown id
            [*ids[:2], str(world.who["buyer_a"].org_id)],  # the buyer's own unit
            [*ids[:2], str(world.who["center"].org_id)],  # not a supplier
            [*ids[:2], str(frozen.org_id)],  # a frozen supplier
        ):
            r = await client.post(
                "/api/procedures", json=world.procedure_json(invited, kind=kind, **extra), headers=h
            )
            assert_refused(r, "invited")
        # a buyer asking for more than the minimum must invite as many
        r = await client.post(
            "/api/procedures",
            json=world.procedure_json(ids[:3], kind=kind, min_participants=4, **extra),
            headers=h,
        )
        assert_refused(r, "invited")
    assert await count_procedures(world) == 0 and await reserved(world) == 0

    r = await client.post("/api/procedures", json=world.procedure_json(ids[:3]), headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["min_participants"] == 3  # the platform's minimum when the buyer says nothing
    r = await client.post("/api/procedures", json=world.procedure_json(ids, min_participants=4), headers=h)
    assert r.status_code == 201 and r.json()["min_participants"] == 4  # more is allowed
    r = await client.post("/api/procedures", json=world.procedure_json(None), headers=h)
    assert r.status_code == 201 and r.json()["min_participants"] == 3  # every supplier live in the 品目


async def test_the_page_form_follows_the_same_rule(client: Any, world: World) -> None:
    await login_ok(client, "buyer_a")
    page = (await client.get("/procedures/new", headers=HTML)).text
    assert 'name="min_participants" value="3"' in page
    form = world.procedure_form()
    for mp, says in (("1", "不能少于 3 家"), ("2", "不能少于 3 家"), ("abc", "整数")):
        r = await post_form(
            client, "/procedures/new", {**form, "min_participants": mp}, referer="/procedures/new"
        )
        assert r.status_code == 303 and r.headers["location"] == "/procedures/new", r.text
        page = (await client.get("/procedures/new", headers=HTML)).text
        assert says in page, mp  # the refusal says what is wrong, and the form keeps what was typed
    assert await count_procedures(world) == 0
    r = await post_form(
        client, "/procedures/new", {**form, "min_participants": "3"}, referer="/procedures/new"
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/procedures/"), r.text
    assert await count_procedures(world) == 1


async def test_the_minimum_is_the_platform_setting(world: World, settings: Settings) -> None:

    strict = app_for(replace(settings, min_participants=4))
    try:
        s = [await world.org(f"n{i}", OrgKind.SUPPLIER, f"平台最少供应商{i}") for i in range(4)]
        ids = [str(x.org_id) for x in s]
        async with AsyncTestClient(app=strict) as c:
            h = world.h("buyer_a")
            r = await c.post("/api/procedures", json=world.procedure_json(ids, min_participants=3), headers=h)
            assert_refused(r, "min_participants")
            r = await c.post("/api/procedures", json=world.procedure_json(ids[:3]), headers=h)
            assert_refused(r, "invited")
            r = await c.post("/api/procedures", json=world.procedure_json(ids), headers=h)
            assert r.status_code == 201 and r.json()["min_participants"] == 4, r.text
    finally:
        await strict.state.db.dispose()

"""A budget line's 品目 scope: what an administrator may type, and every way of buying refuses what
the chosen line may not pay for, naming its scope, and reserves nothing."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from catalog import designated as dd
from mall.budgets import scope
from mall.budgets.models import BudgetLine
from mall.core.errors import InvalidInput, RuleViolation
from tests.factories import World
from tests.mall.test_pages import HTML, assert_page, login
from tests.mall.test_supermarket_flow import checkout
from tests.security.login_helpers import assert_problem

FURNITURE = "A05010000"


def test_the_scope_is_catalogue_codes_once_each() -> None:
    assert scope.parse(" a02010000，A02020000、A02010000\tA05010000 ") == "A02010000 A02020000 A05010000"
    assert scope.parse("") == ""
    with pytest.raises(InvalidInput) as err:
        scope.parse("A02010000 A99 B0")
    assert err.value.code == "budget_scope_invalid" and "A99、B0" in err.value.detail
    with pytest.raises(InvalidInput):
        scope.parse("A02010000 " * 40)  # longer than the column


def test_a_line_covers_the_codes_under_its_scope() -> None:
    assert scope.covers("A02010000", "A02010105")  # 台式计算机 under 信息化设备
    assert not scope.covers("A02010000", "A02030500")  # a car is not
    assert scope.covers("", "C22010200")  # no scope: every 品目
    assert scope.describe("A02010000 A05010000") == "A02010000 信息化设备、A05010000 家具"
    assert scope.describe("") == "不限品目"
    assert scope.short("A02010000 A05010000") == "限 信息化设备、家具"


def test_the_refusal_names_the_lines_scope_and_what_falls_outside() -> None:
    with pytest.raises(RuleViolation) as err:
        scope.check("JY-1", "办公家具更新", FURNITURE, ["A05010201", "A02010108", "A02010108"])
    assert err.value.code == "budget_scope_mismatch"
    assert "「JY-1 办公家具更新」只能用于品目 A05010000 家具" in err.value.detail
    assert "A02010108（便携式计算机）" in err.value.detail and err.value.detail.count("A02010108") == 1
    scope.check("JY-1", "办公家具更新", FURNITURE, ["A05010201"])  # within: no refusal


async def _untouched(world: World, key: str) -> None:
    async with world.db.read() as s:
        line = await s.get(BudgetLine, world.lines[key].id)
        assert line is not None and line.reserved == Decimal(0) and line.consumed == Decimal(0)


async def test_checkout_refuses_goods_outside_the_lines_scope(client: Any, world: World) -> None:
    await world.budget("desks", "buyer_a", "50000.00", scope=FURNITURE)
    r = await checkout(client, world, [("laptop", "1")], line="desks")
    problem = assert_problem(r, 422, "budget_scope_mismatch")
    assert "A05010000 家具" in problem["detail"] and "A02010108" in problem["detail"]
    await _untouched(world, "desks")
    # what it covers goes through
    r = await checkout(client, world, [("desk", "2")], line="desks")
    assert r.status_code == 201, r.text


async def test_the_cart_page_says_why_and_keeps_the_cart(client: Any, world: World) -> None:
    await world.budget("desks", "buyer_a", "50000.00", scope=FURNITURE)
    h = world.h("buyer_a")
    r = await client.post(
        "/api/cart/items", json={"listing_id": str(world.listings["laptop"].id), "quantity": "1"}, headers=h
    )
    assert r.status_code == 204
    await login(client, "buyer_a")
    page = assert_page(await client.get("/cart", headers=HTML))
    assert "（限 家具）" in page and "（不限品目）" in page  # each option says what it may buy
    r = await client.post(
        "/api/checkout",
        json={"budget_line_id": str(world.lines["desks"].id)},
        headers={**h, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert_problem(r, 422, "budget_scope_mismatch")
    assert len((await client.get("/api/cart", headers=h)).json()) == 1


async def test_a_service_order_and_a_procedure_are_held_to_the_scope_too(client: Any, world: World) -> None:
    await world.budget("desks", "buyer_a", "50000.00", scope=FURNITURE)
    await world.meeting_room("supplier_y")
    async with world.db.read() as s:
        [found] = await dd.find(s, category_code="C22010200")
    req = dd.ServiceOrderRequest(
        found.designation.id, ((found.items[0].id, "1"),), world.lines["desks"].id, uuid.uuid4().hex
    )
    with pytest.raises(RuleViolation) as err:
        await dd.place_order(world.db, world.settings, world.who["buyer_a"], req)
    assert err.value.code == "budget_scope_mismatch" and "C22010200" in err.value.detail

    body = world.procedure_json(None, budget_line_id=str(world.lines["desks"].id))
    r = await client.post("/api/procedures", json=body, headers=world.h("buyer_a"))
    assert_problem(r, 422, "budget_scope_mismatch")
    await _untouched(world, "desks")


async def test_the_administrator_sets_the_scope_and_a_wrong_code_is_refused(
    client: Any, world: World
) -> None:
    org = world.who["buyer_b"].org_id
    body = {
        "fiscal_year": 2026,
        "project_code": "CAR-01",
        "project_name": "公务用车更新",
        "amount": "300000.00",
        "scope": "A02030000",
    }
    url = f"/api/admin/organizations/{org}/budget-lines"
    r = await client.post(url, json=body, headers=world.h("sysadmin"))
    assert r.status_code == 201, r.text
    assert r.json()["scope"] == "A02030000"
    r = await client.post(
        url, json={**body, "project_code": "CAR-02", "scope": "A0203 汽车"}, headers=world.h("sysadmin")
    )
    problem = assert_problem(r, 400, "budget_line_invalid")
    assert "不是《政府采购品目分类目录》中的品目编码" in problem["detail"]
    r = await client.get("/api/budgets", headers=world.h("buyer_b"))
    assert {b["project_code"]: b["scope"] for b in r.json()}["CAR-01"] == "A02030000"

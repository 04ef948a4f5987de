"""The agreement and designated-service API end to end, and its refusals as problem+json."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mall.core import clock
from mall.core.models import Organization
from tests.factories import World
from tests.security.login_helpers import assert_problem


async def credit_code(world: World, name: str) -> str:
    async with world.db.read() as s:
        org = await s.get(Organization, world.who[name].org_id)
        assert org is not None
        return org.credit_code


async def test_an_agreement_through_the_api(client: Any, world: World) -> None:
    center, buyer = world.h("center"), world.h("buyer_a")
    today = clock.local_date(clock.now())
    body = {
        "title": "公务用车协议供货",
        "kind": "goods",
        "category_code": "A02030000",
        "starts_on": today.isoformat(),
        "ends_on": (today + timedelta(days=200)).isoformat(),
    }
    assert_problem(await client.post("/api/agreements", json=body, headers=buyer), 403, "forbidden")
    for changes, status, code in [
        ({"ends_on": "2099-01-01"}, 422, "agreement_term_too_long"),
        ({"starts_on": "明天"}, 400, "invalid_date"),
    ]:
        r = await client.post("/api/agreements", json={**body, **changes}, headers=center)
        assert_problem(r, status, code)
    r = await client.post("/api/agreements", json=body, headers=center)
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    # a draft is the center's own business
    assert_problem(await client.get(f"/api/agreements/{aid}", headers=buyer), 404, "agreement_not_found")
    r = await client.post(
        f"/api/agreements/{aid}/suppliers",
        json={"credit_code": await credit_code(world, "supplier_x")},
        headers=center,
    )
    assert r.status_code == 201 and r.json()["suppliers"][0]["supplier_name"] == "甲供应商有限公司"
    product = {
        "supplier_org_id": str(world.who["supplier_x"].org_id),
        "name": "轿车",
        "brand": "大众",
        "spec_model": "帕萨特 2.0T",
        "category_code": "A02030500",
        "unit": "辆",
        "list_price": "200000.00",
        "discount_rate": "0.95",
    }
    r = await client.post(f"/api/agreements/{aid}/products", json=product, headers=center)
    assert r.status_code == 201 and r.json()["products"][0]["price"] == "190000.00"
    r = await client.post(f"/api/agreements/{aid}/activate", headers=center)
    assert r.status_code == 200 and r.json()["status"] == "active"
    pid = r.json()["products"][0]["id"]

    order = {"product_id": pid, "quantity": "1", "budget_line_id": str(world.lines["a1"].id)}
    r = await client.post("/api/agreement-orders", json=order, headers=buyer)
    assert r.status_code == 400  # no Idempotency-Key
    h = {**buyer, "Idempotency-Key": "agreement-api-0001"}
    r = await client.post("/api/agreement-orders", json={**order, "unit_price": "190000.01"}, headers=h)
    assert_problem(r, 422, "above_agreement_price")
    r = await client.post("/api/agreement-orders", json=order, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["mode"] == "agreement" and r.json()["total_amount"] == "190000.00"
    again = await client.post("/api/agreement-orders", json=order, headers=h)
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]
    r = await client.get(f"/api/agreements/{aid}/summary", headers=world.h("regulator"))
    assert r.status_code == 200 and r.json()["orders"] == 0  # placed, not yet a deal


async def test_designated_services_through_the_api(client: Any, world: World) -> None:
    application = {
        "category_code": "C22010200",
        "region_code": "410100",
        "prices": [
            {"name": "会议室（半天）", "unit": "场", "price": "1500.00"},
            {"name": "茶歇", "unit": "人次", "price": "35.00"},
        ],
    }
    assert_problem(
        await client.post("/api/designated/applications", json=application, headers=world.h("buyer_a")),
        403,
        "forbidden",
    )
    r = await client.post("/api/designated/applications", json=application, headers=world.h("supplier_y"))
    assert r.status_code == 201 and r.json()["status"] == "applied", r.text
    did = r.json()["id"]
    assert (await client.get("/api/designated?region=410100", headers=world.h("buyer_a"))).json() == []
    pending = await client.get("/api/designated?status=applied", headers=world.h("center"))
    assert [d["id"] for d in pending.json()] == [did]
    # a visitor and a buyer see no applications; the applicant sees its own with mine=true
    assert (await client.get("/api/designated?status=applied")).json() == []
    assert (await client.get("/api/designated?status=applied", headers=world.h("buyer_a"))).json() == []
    mine = await client.get("/api/designated?mine=true", headers=world.h("supplier_y"))
    assert [(d["id"], d["status"]) for d in mine.json()] == [(did, "applied")]
    assert (await client.get("/api/designated?mine=true", headers=world.h("supplier_x"))).json() == []
    assert_problem(
        await client.get("/api/designated?mine=true", headers=world.h("buyer_a")), 403, "forbidden"
    )
    assert_problem(
        await client.post(
            f"/api/designated/{did}/review", json={"approve": False}, headers=world.h("center")
        ),
        400,
        "missing_field",
    )
    r = await client.post(f"/api/designated/{did}/review", json={"approve": True}, headers=world.h("center"))
    assert r.status_code == 200 and r.json()["status"] == "approved"
    [found] = (
        await client.get("/api/designated?region=410100&category=C2201", headers=world.h("buyer_a"))
    ).json()
    assert (await client.get("/api/designated?region=410100&category=C2201")).json() == [found]  # public
    items = {i["name"]: i["id"] for i in found["items"]}
    order = {
        "designation_id": did,
        "items": [
            {"price_item_id": items["会议室（半天）"], "quantity": "2"},
            {"price_item_id": items["茶歇"], "quantity": "80"},
        ],
        "budget_line_id": str(world.lines["a1"].id),
    }
    h = {**world.h("buyer_a"), "Idempotency-Key": "service-api-0001"}
    r = await client.post("/api/service-orders", json=order, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["mode"] == "designated" and r.json()["total_amount"] == "5800.00"
    bad = {**order, "items": [{"price_item_id": items["茶歇"], "quantity": "1.5"}]}
    assert_problem(
        await client.post(
            "/api/service-orders", json=bad, headers={**h, "Idempotency-Key": "service-api-0002"}
        ),
        400,
        "invalid_quantity",
    )

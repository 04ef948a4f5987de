"""The inquiry and auction API: what each side sees, and refusals as problem+json."""

from __future__ import annotations

from typing import Any

from mall.core.models import OrgKind
from tests.factories import World
from tests.security.login_helpers import assert_problem


async def test_inquiry_through_the_api_stays_sealed(client: Any, world: World) -> None:
    others = [await world.org(f"s{i}", OrgKind.SUPPLIER, f"询价供应商{i}") for i in range(2)]
    invited = [str(world.who["supplier_x"].org_id), *(str(o.org_id) for o in others)]
    r = await client.post("/api/procedures", json=world.procedure_json(invited), headers=world.h("buyer_a"))
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["status"] == "open" and p["number"].startswith("XJ") and p["sealed"] is True
    pid = p["id"]
    r = await client.post(
        f"/api/procedures/{pid}/quotes", json={"amount": "28000.00"}, headers=world.h("supplier_x")
    )
    assert r.status_code == 201 and [q["amount"] for q in r.json()["mine"]] == ["28000.00"]
    r = await client.post(f"/api/procedures/{pid}/quotes", json={"amount": "27500.00"}, headers=world.h("s0"))
    assert r.status_code == 201
    # nobody learns another quote, or how many there are, before the deadline
    for who in ("buyer_a", "s1", "regulator"):
        text = (await client.get(f"/api/procedures/{pid}", headers=world.h(who))).text
        assert (
            "28000" not in text
            and "27500" not in text
            and '"ranked":null' in text
            and '"bidders":null' in text
        )
    text = (await client.get(f"/api/procedures/{pid}", headers=world.h("s0"))).text
    assert "27500" in text and "28000" not in text
    # refusals
    r = await client.post(f"/api/procedures/{pid}/quotes", json={"amount": "30000.01"}, headers=world.h("s1"))
    assert_problem(r, 422, "above_ceiling")
    r = await client.post(
        f"/api/procedures/{pid}/quotes", json={"amount": "1"}, headers=world.h("supplier_y")
    )
    assert_problem(r, 404, "procedure_not_found")  # not invited: it does not exist for this supplier
    r = await client.delete(f"/api/procedures/{pid}/quotes", headers=world.h("s1"))
    assert_problem(r, 409, "no_quote")
    r = await client.delete(f"/api/procedures/{pid}/quotes", headers=world.h("s0"))
    assert r.status_code == 200 and [q["status"] for q in r.json()["mine"]] == ["accepted", "withdrawn"]


async def test_bad_procedures_are_400_or_422(client: Any, world: World) -> None:
    h = world.h("buyer_a")
    r = await client.post("/api/procedures", json=world.procedure_json([], kind="tender"), headers=h)
    assert_problem(r, 400, "invalid_kind")
    r = await client.post("/api/procedures", json=world.procedure_json([], ceiling="3000000"), headers=h)
    assert_problem(r, 400, "procedure_invalid")
    r = await client.post(
        "/api/procedures",
        json=world.procedure_json([], ends_at="2026-12-01T10:00:00"),
        headers=h,
    )
    assert_problem(r, 400, "invalid_parameter")
    r = await client.post(
        "/api/procedures", json=world.procedure_json([], kind="auction", decrement="-5"), headers=h
    )
    assert_problem(r, 422, "invalid_auction_rules")
    r = await client.post("/api/procedures", json=world.procedure_json([]), headers=world.h("supplier_x"))
    assert_problem(r, 403, "forbidden")


async def test_auction_bids_through_the_api(client: Any, world: World) -> None:
    third = await world.org("s3", OrgKind.SUPPLIER, "竞价供应商3")  # an invitation names at least 3
    invited = [str(world.who["supplier_x"].org_id), str(world.who["supplier_y"].org_id), str(third.org_id)]
    r = await client.post(
        "/api/procedures",
        json=world.procedure_json(invited, kind="auction", decrement="0.5", decrement_is_percent=True),
        headers=world.h("buyer_a"),
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    r = await client.post(
        f"/api/procedures/{pid}/bids", json={"amount": "29000.00"}, headers=world.h("supplier_x")
    )
    assert r.status_code == 201 and r.json()["accepted"] and r.json()["lowest"] == "29000.00"
    # 0.5% of 30000 = 150: 28900 is not far enough below its own 29000
    r = await client.post(
        f"/api/procedures/{pid}/bids", json={"amount": "28900.00"}, headers=world.h("supplier_x")
    )
    assert_problem(r, 422, "not_below_own")
    r = await client.post(
        f"/api/procedures/{pid}/bids", json={"amount": "28500.00"}, headers=world.h("supplier_y")
    )
    assert r.status_code == 201 and r.json()["lowest"] == "28500.00"
    view = (await client.get(f"/api/procedures/{pid}", headers=world.h("supplier_x"))).json()
    assert view["lowest"] == "28500.00" and view["my_rank"] == 2 and view["bidders"] == 2
    assert "乙供应商" not in str(view) and all(o["label"].startswith("供应商 #") for o in view["mine"])


async def test_the_list_filters_by_kind_shown_status_category_and_region(client: Any, world: World) -> None:
    from datetime import timedelta

    from mall.core import clock

    inquiry = await world.procedure(
        "inquiry", "打印机询价", item=("A02021001", "激光打印机", "A4 黑白", "5", "台")
    )
    auction = await world.procedure("auction", "台式机竞价", decrement="100", region_code="410105")
    later = await world.procedure("inquiry", "下周的询价", starts_at=clock.now() + timedelta(days=7))
    buyer = world.h("buyer_a")

    async def ids(**params: str) -> list[str]:
        r = await client.get("/api/procedures", params=params, headers=buyer)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == len(body["items"]) and set(body) == {"total", "page", "per_page", "items"}
        return [i["id"] for i in body["items"]]

    everything = await ids()
    assert everything == [str(later.id), str(auction.id), str(inquiry.id)]  # newest first
    assert await ids(kind="auction") == [str(auction.id)]
    # Shown status: begun (whether or not anyone quoted) is open; not yet begun is published.
    assert await ids(status="open") == [str(auction.id), str(inquiry.id)]
    assert await ids(status="published") == [str(later.id)]
    assert await ids(category="A020210") == [str(inquiry.id)]
    assert await ids(region="410105") == [str(auction.id)]
    assert set(await ids(region="410100")) == set(everything)  # the prefecture holds its districts
    assert set(await ids(region="410000")) == set(everything)
    assert await ids(region="420000") == []
    paged = (await client.get("/api/procedures", params={"per_page": "2", "page": "2"}, headers=buyer)).json()
    assert paged["total"] == 3 and [i["id"] for i in paged["items"]] == [str(inquiry.id)]
    for params in ({"kind": "tender"}, {"status": "draft"}, {"category": "X1"}, {"region": "41"}):
        r = await client.get("/api/procedures", params=params, headers=buyer)
        assert r.status_code == 400 and r.json()["parameter"] == next(iter(params)), r.text
    assert (await client.get("/api/procedures")).status_code == 401

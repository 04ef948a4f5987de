"""A reviewed price stays reviewed (point 7): a change of reference price, or a price above the
reviewed reference × (1 + margin), waits for the center while the old price stays live; a lower
price within the reviewed reference applies at once. No other path (edit, relist, unfreeze, a
second request) makes the waiting price live.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from catalog.models import Listing, PriceChange
from tests.conftest import app_for
from tests.factories import World
from tests.mall.test_pages import HTML, login_ok, post_form
from tests.mall.test_supermarket_flow import checkout
from tests.security.login_helpers import assert_problem


async def live_listing(world: World, price: str = "147.42", reference: str = "150.00") -> str:
    listing = await world.listing("srv", "supplier_x", price, reference=reference, category="A02010104")
    return str(listing.id)


async def row(world: World, lid: str) -> Listing:
    async with world.db.read() as s:
        x = await s.get(Listing, uuid.UUID(lid))
        assert x is not None
        return x


async def history(world: World, lid: str) -> list[tuple[Decimal, Decimal, str]]:
    async with world.db.read() as s:
        rows = await s.execute(
            select(PriceChange.price, PriceChange.reference_price, PriceChange.note)
            .where(PriceChange.listing_id == uuid.UUID(lid))
            .order_by(PriceChange.at, PriceChange.id)
        )
        return [(p, r, n) for p, r, n in rows.all()]


async def reprice(client: Any, world: World, lid: str, price: str, reference: str, **extra: str) -> Any:
    return await client.post(
        f"/api/listings/{lid}/price",
        json={"price": price, "reference_price": reference, **extra},
        headers=world.h("supplier_x"),
    )


async def queue(client: Any, world: World) -> list[dict[str, Any]]:
    r = await client.get("/api/review/prices", headers=world.h("center"))
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def decide(client: Any, world: World, request_id: str, decision: str, reason: str = "") -> Any:
    return await client.post(
        f"/api/review/prices/{request_id}",
        json={"decision": decision, "reason": reason},
        headers=world.h("center"),
    )


async def test_a_tenfold_price_with_a_new_reference_waits_and_the_old_price_stays_live(
    client: Any, world: World
) -> None:
    lid = await live_listing(world)
    r = await reprice(client, world, lid, "1470.00", "1500.00")
    # Accepted for review, not applied: the answer is the listing as it is, with the waiting change.
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["price"], body["reference_price"], body["status"]) == ("147.42", "150.00", "live")
    pending = body["price_request"]
    assert (pending["status"], pending["price"], pending["reference_price"]) == (
        "pending",
        "1470.00",
        "1500.00",
    )

    # Everybody else still sees and pays the reviewed price.
    assert (await client.get(f"/api/listings/{lid}")).json()["price"] == "147.42"
    x = await row(world, lid)
    assert (x.price, x.reference_price) == (Decimal("147.42"), Decimal("150.00"))
    assert [p for p, _, _ in await history(world, lid)] == [Decimal("147.42")]
    r = await checkout(client, world, [("srv", "1")])  # the listing made by live_listing
    assert r.status_code == 201, r.text
    assert r.json()["orders"][0]["total_amount"] == "147.42"

    # The center sees what is asked next to what is live, and approves: only now it applies.
    items = await queue(client, world)
    assert [(i["listing"]["id"], i["price"], i["listing"]["price"]) for i in items] == [
        (lid, "1470.00", "147.42")
    ]
    r = await decide(client, world, items[0]["id"], "approve")
    assert r.status_code == 200, r.text
    assert (r.json()["price"], r.json()["reference_price"]) == ("1470.00", "1500.00")
    x = await row(world, lid)
    assert (x.price, x.reference_price) == (Decimal("1470.00"), Decimal("1500.00"))
    assert [p for p, _, _ in await history(world, lid)] == [Decimal("147.42"), Decimal("1470.00")]
    assert await queue(client, world) == []
    # Decided once: a second decision is a conflict.
    assert_problem(
        await decide(client, world, items[0]["id"], "reject", "再审一次"), 409, "price_request_closed"
    )


async def test_a_new_reference_alone_waits_too(client: Any, world: World) -> None:
    lid = await live_listing(world)
    r = await reprice(client, world, lid, "140.00", "145.00")
    assert r.status_code == 202, r.text
    assert (await row(world, lid)).price == Decimal("147.42")
    # The source of the new reference goes with it, for the center to check, and is applied with it.
    r = await reprice(client, world, lid, "140.00", "145.00", reference_source="官网报价单 2026-12")
    assert r.status_code == 202, r.text
    assert r.json()["price_request"]["reference_source"] == "官网报价单 2026-12"
    [item] = await queue(client, world)
    assert (await decide(client, world, item["id"], "approve")).status_code == 200
    x = await row(world, lid)
    assert (x.price, x.reference_price, x.reference_source) == (
        Decimal("140.00"),
        Decimal("145.00"),
        "官网报价单 2026-12",
    )


async def test_a_lower_price_within_the_reviewed_reference_applies_at_once(client: Any, world: World) -> None:
    lid = await live_listing(world)
    r = await reprice(client, world, lid, "139.00", "150.00")
    assert r.status_code == 200, r.text
    assert (r.json()["price"], r.json()["price_request"]) == ("139.00", None)
    assert (await row(world, lid)).price == Decimal("139.00")
    assert await queue(client, world) == []
    # Above the reviewed reference × 1.05 with the same reference: still blocked at once.
    assert_problem(await reprice(client, world, lid, "157.51", "150.00"), 422, "price_above_reference")


async def test_a_rejection_keeps_the_old_price_and_the_supplier_sees_the_reason(
    client: Any, world: World
) -> None:
    lid = await live_listing(world)
    assert (await reprice(client, world, lid, "1470.00", "1500.00")).status_code == 202
    [item] = await queue(client, world)
    assert_problem(await decide(client, world, item["id"], "reject", ""), 400, "reason_required")
    r = await decide(client, world, item["id"], "reject", "参考价来源无法核实")
    assert r.status_code == 200, r.text
    assert (await row(world, lid)).price == Decimal("147.42")
    r = await client.get("/api/supplier/listings", headers=world.h("supplier_x"))
    mine = {x["id"]: x for x in r.json()["items"]}[lid]
    assert (mine["price"], mine["price_request"]["status"], mine["price_request"]["reason"]) == (
        "147.42",
        "rejected",
        "参考价来源无法核实",
    )
    # Only the center reviews prices.
    for who in ("supplier_x", "buyer_a", "regulator"):
        r = await client.get("/api/review/prices", headers=world.h(who))
        assert r.status_code == 403, (who, r.text)


async def test_no_other_path_makes_a_waiting_price_live(client: Any, world: World) -> None:
    lid = await live_listing(world)
    sup = world.h("supplier_x")
    assert (await reprice(client, world, lid, "1470.00", "1500.00")).status_code == 202

    # Delist and relist by the supplier: the reviewed price comes back, not the waiting one.
    assert (await client.post(f"/api/listings/{lid}/delist", headers=sup)).status_code == 200
    assert (await client.post(f"/api/listings/{lid}/relist", headers=sup)).status_code == 200
    assert (await row(world, lid)).price == Decimal("147.42")
    # Freeze and unfreeze by the center: the same.
    for action, reason in (("freeze", "价格核查"), ("unfreeze", "")):
        r = await client.post(
            f"/api/listings/{lid}/moderation",
            json={"action": action, "reason": reason},
            headers=world.h("center"),
        )
        assert r.status_code == 200, r.text
    assert (await row(world, lid)).price == Decimal("147.42")
    # A live listing is not edited through the draft form.
    r = await client.put(
        f"/api/listings/{lid}",
        json={
            "name": "服务器",
            "brand": "品牌srv",
            "spec_model": "型号-srv",
            "category_code": "A02010104",
            "unit": "台",
            "price": "1470.00",
            "reference_price": "1500.00",
            "stock": "10",
        },
        headers=sup,
    )
    assert_problem(r, 409, "listing_not_editable")
    assert (await row(world, lid)).price == Decimal("147.42")

    # A second request replaces the first: the first can no longer be approved.
    [first] = await queue(client, world)
    assert (await reprice(client, world, lid, "1400.00", "1500.00")).status_code == 202
    assert_problem(await decide(client, world, first["id"], "approve"), 409, "price_request_closed")
    assert (await row(world, lid)).price == Decimal("147.42")
    [second] = await queue(client, world)
    assert second["price"] == "1400.00"
    # The supplier withdraws it: nothing waits any more, nothing changed.
    r = await client.delete(f"/api/listings/{lid}/price-request", headers=sup)
    assert r.status_code == 200, r.text
    assert r.json()["price_request"] is None
    assert await queue(client, world) == []
    assert_problem(await decide(client, world, second["id"], "approve"), 409, "price_request_closed")
    assert (await row(world, lid)).price == Decimal("147.42")
    assert [p for p, _, _ in await history(world, lid)] == [Decimal("147.42")]


async def test_approval_rechecks_the_price_rule(client: Any, world: World, settings: Any) -> None:
    """The center cannot approve a price the rule forbids at the time of approval."""
    import dataclasses

    from litestar.testing import AsyncTestClient

    lid = await live_listing(world)
    assert (await reprice(client, world, lid, "1570.00", "1500.00")).status_code == 202
    [item] = await queue(client, world)
    strict = app_for(dataclasses.replace(settings, price_margin=Decimal("0.01")))
    try:
        async with AsyncTestClient(app=strict) as c:
            r = await decide(c, world, item["id"], "approve")
            assert_problem(r, 422, "price_above_reference")
    finally:
        await strict.state.db.dispose()
    assert (await row(world, lid)).price == Decimal("147.42")
    assert [i["id"] for i in await queue(client, world)] == [item["id"]]


# ---------------------------------------------------------------- the pages


async def test_the_pages_show_the_waiting_change_and_the_center_decides_there(
    client: Any, world: World
) -> None:
    lid = await live_listing(world)
    await login_ok(client, "supplier_x")
    r = await post_form(
        client, f"/supplier/listings/{lid}/price", {"price": "1470.00", "reference_price": "1500.00"}
    )
    assert r.status_code == 303
    page = (await client.get("/supplier/listings", headers=HTML)).text
    assert "已提交采购中心审核" in page  # the flash message
    assert "待审核的调价" in page and "1,470.00" in page
    assert (await row(world, lid)).price == Decimal("147.42")

    await login_ok(client, "center")
    page = (await client.get("/center/listings?status=prices", headers=HTML)).text
    assert "1,470.00" in page and "147.42" in page
    m = re.search(r'action="/center/prices/([0-9a-f-]{36})"', page)
    assert m, page[-3000:]
    r = await post_form(client, f"/center/prices/{m.group(1)}", {"decision": "reject", "reason": "涨幅过大"})
    assert r.status_code == 303
    assert (await row(world, lid)).price == Decimal("147.42")

    await login_ok(client, "supplier_x")
    page = (await client.get("/supplier/listings", headers=HTML)).text
    assert "调价未通过" in page and "涨幅过大" in page


async def test_a_price_changed_during_the_first_review_is_not_approved_unseen(
    client: Any, world: World
) -> None:
    listing = await world.listing("new", "supplier_x", "900.00", reference="900.00", live=False)
    lid = str(listing.id)
    # The center looks at 900.00; meanwhile the supplier raises it (not yet reviewed: no request).
    assert (await reprice(client, world, lid, "945.00", "900.00")).status_code == 200
    r = await client.post(
        f"/api/review/listings/{lid}",
        json={"decision": "approve", "price": "900.00", "reference_price": "900.00"},
        headers=world.h("center"),
    )
    assert_problem(r, 409, "listing_changed")
    assert (await row(world, lid)).status == "submitted"
    r = await client.post(
        f"/api/review/listings/{lid}",
        json={"decision": "approve", "price": "945.00", "reference_price": "900.00"},
        headers=world.h("center"),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["price"]) == ("live", "945.00")

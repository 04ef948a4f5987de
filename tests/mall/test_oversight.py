"""The regulator's watch lists: late payments to small suppliers, unfiled contracts, late payments made;
the page and the /api/oversight endpoints (the regulator; paged; refusals as problem+json)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import update

from mall.core import clock
from mall.core.models import OrgKind
from mall.orders.models import Checkout, Order, OrderStatus
from mall.sme.current import size_on
from tests.factories import World, frozen_at
from tests.mall.test_pages import login_ok

HTML = {"Accept": "text/html,application/xhtml+xml"}


async def _accepted_orders(world: World, supplier: str, n: int, accepted_days_ago: int) -> list[uuid.UUID]:
    """`n` orders of buyer_a from `supplier`, accepted that many days ago and not paid."""
    buyer, seller = world.who["buyer_a"], world.who[supplier]
    assert buyer.org_id is not None and seller.org_id is not None
    now = clock.now()
    accepted = now - timedelta(days=accepted_days_ago)
    ids = []
    async with world.db.write() as tx:
        for _ in range(n):
            ck = Checkout(
                id=uuid.uuid4(),
                user_id=buyer.user_id,
                idempotency_key=uuid.uuid4().hex,
                request_digest="-",
                created_at=accepted,
            )
            order = Order(
                id=uuid.uuid4(),
                order_no=f"WS{uuid.uuid4().hex[:20]}",
                mode="supermarket",
                status=OrderStatus.ACCEPTED,
                buyer_org_id=buyer.org_id,
                buyer_user_id=buyer.user_id,
                supplier_org_id=seller.org_id,
                budget_line_id=world.lines["a1"].id,
                checkout_id=ck.id,
                region_code="410100",
                total_amount=Decimal("100.00"),
                reserved_amount=Decimal("100.00"),
                placed_at=accepted - timedelta(days=3),
                confirm_due_at=accepted,
                confirmed_at=accepted - timedelta(days=2),
                accepted_at=accepted,
                # the size its supplier declared (mall.sme), as checkout records it
                supplier_scale=await size_on(tx.session, seller.org_id, clock.local_date(now)),
            )
            tx.session.add_all([ck, order])
            ids.append(order.id)
    return ids


async def test_a_late_payment_to_a_small_supplier_is_shown_behind_a_hundred_to_large_ones(
    client: Any, world: World, settings: Any
) -> None:
    """The unpaid list is chosen in the query: small and medium suppliers first, then the limit. Taking
    the 100 oldest unpaid orders and filtering them afterwards showed none of the cases the rule is for."""
    await world.org("supplier_big", OrgKind.SUPPLIER, "大型供应商集团", sme="large")
    await _accepted_orders(world, "supplier_big", 105, settings.payment_warn_days + 20)
    [sme_order] = await _accepted_orders(world, "supplier_y", 1, settings.payment_warn_days + 1)

    r = await client.get("/api/oversight/unpaid-orders", headers=world.h("regulator"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 1
    [item] = body["items"]
    assert item["id"] == str(sme_order) and item["supplier"] == "乙供应商有限公司"
    assert item["supplier_is_sme"] is True and item["days"] == settings.payment_warn_days + 1

    await login_ok(client, "regulator")
    page = (await client.get("/oversight", headers=HTML)).text
    client.cookies.clear()
    async with world.db.read() as s:
        order = await s.get(Order, sme_order)
        assert order is not None
        assert order.order_no in page


async def test_watch_lists_are_paged_and_only_for_the_regulator(
    client: Any, world: World, settings: Any
) -> None:
    ids = await _accepted_orders(world, "supplier_x", 5, settings.payment_warn_days + 10)
    await _accepted_orders(world, "supplier_x", 1, max(settings.payment_warn_days - 1, 0))  # not yet due
    async with world.db.write() as tx:
        await tx.session.execute(
            update(Order)
            .where(Order.id == ids[0])
            .values(status=OrderStatus.PAID, paid_at=clock.now(), payment_overdue=True, payment_days=40)
        )
    for who in ("regulator",):
        first = (await client.get("/api/oversight/unpaid-orders?per_page=3", headers=world.h(who))).json()
        second = (
            await client.get("/api/oversight/unpaid-orders?per_page=3&page=2", headers=world.h(who))
        ).json()
        assert (first["total"], len(first["items"]), len(second["items"])) == (4, 3, 1)
        assert {i["id"] for i in first["items"] + second["items"]} == {str(i) for i in ids[1:]}
        late = (await client.get("/api/oversight/late-payments", headers=world.h(who))).json()
        assert [i["id"] for i in late["items"]] == [str(ids[0])] and late["items"][0]["payment_overdue"]
        unfiled = (await client.get("/api/oversight/unfiled-contracts", headers=world.h(who))).json()
        assert unfiled == {"total": 0, "page": 1, "per_page": 20, "items": []}

    for who in ("buyer_a", "supplier_x", "center", "sysadmin", "secadmin", "auditor"):
        for path in ("unpaid-orders", "late-payments", "unfiled-contracts"):
            r = await client.get(f"/api/oversight/{path}", headers=world.h(who))
            assert r.status_code == 403
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "forbidden"
    r = await client.get("/api/oversight/unpaid-orders")
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    r = await client.get("/api/oversight/unpaid-orders?per_page=1000", headers=world.h("regulator"))
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")


async def test_a_confirmed_order_without_a_filed_contract_is_listed_after_seven_working_days(
    client: Any, world: World, settings: Any
) -> None:
    [oid] = await _accepted_orders(world, "supplier_x", 1, 30)
    confirmed = datetime(2026, 9, 29, 1, 0, tzinfo=UTC)  # Tuesday 09:00 in Beijing, before 国庆
    async with world.db.write() as tx:
        await tx.session.execute(
            update(Order)
            .where(Order.id == oid)
            .values(status=OrderStatus.CONFIRMED, accepted_at=None, confirmed_at=confirmed)
        )

    async def unfiled_at(at: datetime) -> Any:
        with frozen_at(at):
            r = await client.get("/api/oversight/unfiled-contracts", headers=world.h("regulator"))
            page = (await client.get("/oversight", headers=HTML)).text
        assert r.status_code == 200 and "超过 7 个工作日未签署备案的合同" in page
        return r.json()

    await login_ok(client, "regulator")
    # 7 working days: Sep 30, Oct 8, 9, Saturday Oct 10, 12, 13, 14 (Oct 1–7 rest): filed in time
    # until the end of Wednesday Oct 14, China time; 7 calendar days would have listed it on Oct 6.
    assert (await unfiled_at(datetime(2026, 10, 6, 4, 0, tzinfo=UTC)))["total"] == 0
    assert (await unfiled_at(datetime(2026, 10, 14, 15, 59, tzinfo=UTC)))["total"] == 0  # Oct 14 23:59
    body = await unfiled_at(datetime(2026, 10, 14, 16, 0, tzinfo=UTC))  # Oct 15 00:00 in Beijing
    assert body["total"] == 1 and body["items"][0]["id"] == str(oid) and body["items"][0]["days"] == 15


async def test_the_bidding_watch_is_an_api_too(client: Any, world: World) -> None:
    r = await client.get("/api/oversight/bidding", headers=world.h("center"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"low_offers", "failed", "decliners", "examined"}
    assert body["examined"] == 0
    assert (await client.get("/api/oversight/bidding", headers=world.h("supplier_x"))).status_code == 403

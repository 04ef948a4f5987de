"""Price monitoring: the market statistics from real deals, the daily sweep (alerts opened, refreshed,
closed), the center's workflow (ask, answer, freeze, close) with its permissions, region scope and
refusals, the buyer's market median, and the public 价格监测 page."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update

from catalog.models import Listing, ListingStatus, PriceChange
from mall.core import clock
from mall.core.models import AuditEntry, Organization, OrgKind, Outbox
from mall.orders.models import Checkout, Order, OrderLine, OrderStatus
from mall.pricewatch import stats, sweep
from mall.pricewatch.models import (
    AlertKind,
    AlertStatus,
    PriceAlert,
    PriceStat,
    PriceSweep,
    PriceWatchSummary,
)
from tests.factories import World

HTML = {"Accept": "text/html,application/xhtml+xml"}
API = "/api/oversight/price-alerts"


async def deal(
    world: World,
    listing: Listing,
    price: str,
    *,
    days_ago: int = 5,
    status: str = OrderStatus.CONFIRMED,
    confirmed: bool = True,
    supplier: str = "supplier_y",
    linked: bool = True,
) -> None:
    """A deal of one unit of `listing`'s brand and model at `price`, confirmed `days_ago` days ago
    (by `supplier`: the market counts every supplier's deals)."""
    buyer, seller = world.who["buyer_a"], world.who[supplier]
    assert buyer.org_id is not None and seller.org_id is not None
    at = clock.now() - timedelta(days=days_ago)
    amount = Decimal(price)
    async with world.db.write() as tx:
        ck = Checkout(
            id=uuid.uuid4(),
            user_id=buyer.user_id,
            idempotency_key=uuid.uuid4().hex,
            request_digest="-",
            created_at=at,
        )
        order = Order(
            id=uuid.uuid4(),
            order_no=f"WS{uuid.uuid4().hex[:20]}",
            mode="supermarket",
            status=status,
            buyer_org_id=buyer.org_id,
            buyer_user_id=buyer.user_id,
            supplier_org_id=seller.org_id,
            budget_line_id=world.lines["a1"].id,
            checkout_id=ck.id,
            region_code="410100",
            total_amount=amount,
            reserved_amount=amount,
            placed_at=at - timedelta(days=1),
            confirm_due_at=at,
            confirmed_at=at if confirmed else None,
        )
        line = OrderLine(
            id=uuid.uuid4(),
            order_id=order.id,
            line_no=1,
            listing_id=listing.id if linked else None,
            item_name=listing.name,
            brand=listing.brand.upper() if not linked else listing.brand,  # folded alike
            spec_model=listing.spec_model,
            category_code=listing.category_code,
            category_version=listing.category_version,
            unit=listing.unit,
            quantity=Decimal(1),
            listed_unit_price=amount,
            unit_price=amount,
            amount=amount,
        )
        tx.session.add_all([ck, order, line])


async def market(world: World, *prices: str) -> None:
    for p in prices:
        await deal(world, world.listings["laptop"], p)


async def alerts(world: World, **where: Any) -> list[PriceAlert]:
    async with world.db.read() as s:
        stmt = select(PriceAlert).order_by(PriceAlert.opened_at, PriceAlert.kind)
        for k, v in where.items():
            stmt = stmt.where(getattr(PriceAlert, k) == v)
        return list((await s.execute(stmt)).scalars())


async def set_listing(world: World, key: str, **values: Any) -> None:
    async with world.db.write() as tx:
        await tx.session.execute(update(Listing).where(Listing.id == world.listings[key].id).values(**values))


async def above_market(world: World) -> PriceAlert:
    """The laptop (5000.00) against deals with a median of 4200.00: one above_market alert."""
    await market(world, "4000.00", "4200.00", "4400.00")
    await sweep.run(world.db, world.settings)
    [alert] = await alerts(world, kind=AlertKind.ABOVE_MARKET)
    return alert


# ---------------------------------------------------------------- statistics


async def test_the_market_counts_real_deals_of_the_window_across_suppliers(world: World) -> None:
    laptop = world.listings["laptop"]
    await market(world, "4000.00", "4200.00", "4600.00")
    await deal(world, laptop, "4400.00", supplier="supplier_x", status=OrderStatus.PAID)
    await deal(world, laptop, "9000.00", status=OrderStatus.CANCELLED)  # cancelled: no deal
    await deal(world, laptop, "9000.00", days_ago=91)  # before the window
    await deal(world, laptop, "9000.00", status=OrderStatus.PLACED, confirmed=False)  # never confirmed
    await deal(world, laptop, "100.00", linked=False)  # no listing: folded keys (brand upper-cased)
    assert await stats.compute(world.db) == 1
    async with world.db.read() as s:
        [stat] = (await s.execute(select(PriceStat))).scalars()
    assert (stat.brand_key, stat.model_key) == (laptop.brand_key, laptop.model_key)
    assert stat.samples == 5
    assert (stat.p25, stat.median, stat.p75) == (Decimal("4000.00"), Decimal("4200.00"), Decimal("4400.00"))


async def test_statistics_are_replaced_whole(world: World) -> None:
    await market(world, "4000.00")
    await stats.compute(world.db)
    async with world.db.write() as tx:
        await tx.session.execute(update(Order).values(status=OrderStatus.CANCELLED))
    assert await stats.compute(world.db) == 0
    async with world.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(PriceStat)) == 0


# ---------------------------------------------------------------- the sweep


async def test_the_sweep_opens_one_alert_and_refreshes_it_when_found_again(world: World) -> None:
    alert = await above_market(world)
    assert alert.status == AlertStatus.OPEN
    assert alert.listing_id == world.listings["laptop"].id
    assert (alert.price, alert.reference) == (Decimal("5000.00"), Decimal("4200.00"))
    assert alert.detail["samples"] == 3 and alert.region_code == "410100"
    await set_listing(world, "laptop", price=Decimal("5100.00"))
    second = await sweep.run(world.db, world.settings)
    assert (second.opened, second.refreshed) == (0, 1)
    [again] = await alerts(world, kind=AlertKind.ABOVE_MARKET)
    assert again.id == alert.id and again.price == Decimal("5100.00")
    assert again.last_seen_at >= alert.last_seen_at
    async with world.db.read() as s:
        done = (await s.execute(select(PriceSweep).order_by(PriceSweep.started_at))).scalars().all()
        summary = {
            r.category_class: (r.monitored, r.flagged)
            for r in (await s.execute(select(PriceWatchSummary))).scalars()
        }
    assert [d.status for d in done] == ["done", "done"] and done[-1].listings == 3
    assert summary == {"A020101": (1, 1), "A020210": (1, 0), "A050102": (1, 0)}


async def test_an_untouched_alert_is_closed_when_its_condition_is_gone_but_an_asked_one_stays(
    client: Any, world: World
) -> None:
    alert = await above_market(world)
    await set_listing(world, "laptop", price=Decimal("4300.00"))
    result = await sweep.run(world.db, world.settings)
    assert result.closed == 1
    [closed] = await alerts(world, id=alert.id)
    assert closed.status == AlertStatus.CLOSED and closed.close_note == sweep.GONE_NOTE

    await set_listing(world, "laptop", price=Decimal("5000.00"))
    await sweep.run(world.db, world.settings)
    [reopened] = await alerts(world, status=AlertStatus.OPEN)
    r = await client.post(f"{API}/{reopened.id}/ask", json={}, headers=world.h("center"))
    assert r.status_code == 200, r.text
    await set_listing(world, "laptop", price=Decimal("4300.00"))
    assert (await sweep.run(world.db, world.settings)).closed == 0
    [still] = await alerts(world, id=reopened.id)
    assert still.status == AlertStatus.ASKED


async def test_a_price_the_center_closed_is_not_flagged_again_until_it_changes(
    client: Any, world: World
) -> None:
    alert = await above_market(world)
    r = await client.post(
        f"{API}/{alert.id}/close", json={"note": "含三年上门保修，价格合理"}, headers=world.h("center")
    )
    assert r.status_code == 200, r.text
    assert (await sweep.run(world.db, world.settings)).opened == 0
    await set_listing(world, "laptop", price=Decimal("5200.00"))
    assert (await sweep.run(world.db, world.settings)).opened == 1


async def test_ecommerce_raises_and_agreement_findings(world: World) -> None:
    today = clock.local_date(clock.now())
    await set_listing(
        world,
        "printer",
        ecommerce_price=Decimal("1100.00"),
        ecommerce_url="https://shop.example.com/p/1",
        ecommerce_captured_on=today - timedelta(days=120),
    )
    desk = world.listings["desk"]
    async with world.db.write() as tx:
        for i, (before, after) in enumerate([("700.00", "750.00"), ("750.00", "800.00")]):
            tx.session.add(
                PriceChange(
                    listing_id=desk.id,
                    at=clock.now() - timedelta(days=10 - i),
                    price=Decimal(after),
                    reference_price=Decimal(after),
                    previous_price=Decimal(before),
                    note="调价",
                )
            )
    await sweep.run(world.db, world.settings)
    found = {(a.listing_id, a.kind) for a in await alerts(world)}
    printer = world.listings["printer"].id
    assert found == {
        (printer, AlertKind.ABOVE_ECOMMERCE),
        (printer, AlertKind.STALE_ECOMMERCE),
        (desk.id, AlertKind.REPEATED_RAISE),
    }


async def test_a_listing_that_is_not_live_is_not_swept(world: World) -> None:
    await market(world, "4000.00", "4200.00", "4400.00")
    await set_listing(world, "laptop", status=ListingStatus.DELISTED)
    result = await sweep.run(world.db, world.settings)
    assert result.listings == 2 and await alerts(world) == []


async def test_the_sweep_reads_in_batches(world: World) -> None:
    """Keyset batches of one listing each read every listing once."""
    await market(world, "4000.00", "4200.00", "4400.00")
    result = await sweep.run(world.db, world.settings, batch=1)
    assert result.listings == 3 and result.opened == 1


# ---------------------------------------------------------------- the center's workflow


async def test_the_center_asks_the_supplier_answers_and_the_center_closes(client: Any, world: World) -> None:
    alert = await above_market(world)
    r = await client.get(API, headers=world.h("center"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 1 and body["items"][0]["kind_label"] == "高于市场中位价"
    assert body["items"][0]["supplier_name"] == "甲供应商有限公司"

    # Nothing to answer before the center asks; the supplier does not see the alert yet.
    r = await client.get("/api/supplier/price-alerts", headers=world.h("supplier_x"))
    assert r.json()["total"] == 0

    r = await client.post(
        f"{API}/{alert.id}/ask", json={"note": "请说明高出成交中位价的原因"}, headers=world.h("center")
    )
    assert r.status_code == 200, r.text
    asked = r.json()
    assert asked["status"] == "asked" and asked["answer_due_at"]
    expected_day = world.settings.work_calendar.add_working_days(clock.local_date(clock.now()), 5)
    [a] = await alerts(world, id=alert.id)
    assert a.answer_due_at is not None and clock.local_date(a.answer_due_at) == expected_day
    async with world.db.read() as s:
        staged = [
            o.payload for o in (await s.execute(select(Outbox).where(Outbox.topic == "notify"))).scalars()
        ]
    items = [i for p in staged for i in p["items"] if i["kind"] == "price_alert"]
    assert len(items) == 1 and items[0]["org_id"] == str(world.who["supplier_x"].org_id)
    assert "请说明高出成交中位价的原因" in items[0]["body"]

    r = await client.get("/api/supplier/price-alerts", headers=world.h("supplier_x"))
    assert r.json()["total"] == 1
    r = await client.post(
        f"/api/supplier/price-alerts/{alert.id}/answer", json={"answer": "x"}, headers=world.h("supplier_x")
    )
    assert r.status_code == 400 and r.json()["code"] == "answer_required"
    r = await client.post(
        f"/api/supplier/price-alerts/{alert.id}/answer",
        json={"answer": "含\u0007控制字符"},
        headers=world.h("supplier_x"),
    )
    assert r.status_code == 400 and r.json()["code"] == "text_invalid"
    r = await client.post(
        f"/api/supplier/price-alerts/{alert.id}/answer",
        json={"answer": "x" * 1001},
        headers=world.h("supplier_x"),
    )
    assert r.status_code == 400
    r = await client.post(
        f"/api/supplier/price-alerts/{alert.id}/answer",
        json={"answer": "含三年上门保修与安装。\n另附配置清单。"},
        headers=world.h("supplier_x"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "answered"
    r = await client.post(
        f"/api/supplier/price-alerts/{alert.id}/answer",
        json={"answer": "再次说明"},
        headers=world.h("supplier_x"),
    )
    assert r.status_code == 409 and r.json()["code"] == "price_alert_wrong_state"

    r = await client.post(f"{API}/{alert.id}/close", json={"note": ""}, headers=world.h("center"))
    assert r.status_code == 400 and r.json()["code"] == "note_required"
    r = await client.post(f"{API}/{alert.id}/close", json={"note": "说明合理"}, headers=world.h("center"))
    assert r.status_code == 200 and r.json()["status"] == "closed" and r.json()["close_note"] == "说明合理"
    r = await client.post(f"{API}/{alert.id}/ask", json={}, headers=world.h("center"))
    assert r.status_code == 409 and r.json()["code"] == "price_alert_wrong_state"
    r = await client.post(f"{API}/{alert.id}/freeze", json={"reason": "价格过高"}, headers=world.h("center"))
    assert r.status_code == 409

    async with world.db.read() as s:
        actions = list(
            (
                await s.execute(
                    select(AuditEntry.action)
                    .where(AuditEntry.target == str(alert.id))
                    .order_by(AuditEntry.seq)
                )
            ).scalars()
        )
    assert actions == ["price_alert_asked", "price_alert_answered", "price_alert_closed"]


async def test_the_center_freezes_the_listing_from_the_alert(client: Any, world: World) -> None:
    alert = await above_market(world)
    r = await client.post(f"{API}/{alert.id}/freeze", json={"reason": ""}, headers=world.h("center"))
    assert r.status_code == 400 and r.json()["code"] == "reason_required"
    r = await client.post(
        f"{API}/{alert.id}/freeze", json={"reason": "高出成交中位价近两成"}, headers=world.h("center")
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "frozen" and r.json()["listing_status"] == "frozen"
    async with world.db.read() as s:
        listing = await s.get(Listing, alert.listing_id)
        assert listing is not None
        assert listing.status == ListingStatus.FROZEN and listing.status_by == "center"
        assert "高出成交中位价近两成" in listing.status_reason
        actions = set(
            (
                await s.execute(
                    select(AuditEntry.action).where(
                        AuditEntry.target.in_([str(alert.id), str(alert.listing_id)])
                    )
                )
            ).scalars()
        )
    assert {"price_alert_frozen", "listing_freeze"} <= actions
    r = await client.post(f"{API}/{alert.id}/freeze", json={"reason": "再次冻结"}, headers=world.h("center"))
    assert r.status_code == 409 and r.json()["code"] == "price_alert_wrong_state"


async def test_who_may_see_and_act(client: Any, world: World) -> None:
    alert = await above_market(world)
    for who in ("buyer_a", "supplier_x", "sysadmin", "auditor"):
        r = await client.get(API, headers=world.h(who))
        assert r.status_code == 403, (who, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        r = await client.post(f"{API}/{alert.id}/close", json={"note": "说明合理"}, headers=world.h(who))
        assert r.status_code == 403, who
    assert (await client.get(API)).status_code == 401
    r = await client.get(f"{API}/{alert.id}", headers=world.h("regulator"))
    assert r.status_code == 200
    # Another supplier neither sees nor answers it, even once asked.
    await client.post(f"{API}/{alert.id}/ask", json={}, headers=world.h("center"))
    r = await client.post(
        f"/api/supplier/price-alerts/{alert.id}/answer",
        json={"answer": "不是我的"},
        headers=world.h("supplier_y"),
    )
    assert r.status_code == 404 and r.json()["code"] == "price_alert_not_found"
    assert (await client.get("/api/supplier/price-alerts", headers=world.h("supplier_y"))).json()[
        "total"
    ] == 0
    for who in ("center", "buyer_a"):
        r = await client.post(
            f"/api/supplier/price-alerts/{alert.id}/answer", json={"answer": "说明"}, headers=world.h(who)
        )
        assert r.status_code == 403


async def test_a_center_sees_only_alerts_of_its_region(client: Any, world: World) -> None:
    alert = await above_market(world)
    far = await world.org("center_hubei", OrgKind.CENTER, "湖北省采购中心")
    async with world.db.write() as tx:
        await tx.session.execute(
            update(Organization).where(Organization.id == far.org_id).values(region_code="420000")
        )
    r = await client.get(API, headers=world.h("center_hubei"))
    assert r.status_code == 200 and r.json()["total"] == 0
    r = await client.get(f"{API}/{alert.id}", headers=world.h("center_hubei"))
    assert r.status_code == 404 and r.json()["code"] == "price_alert_not_found"
    r = await client.post(
        f"{API}/{alert.id}/freeze", json={"reason": "越权冻结"}, headers=world.h("center_hubei")
    )
    assert r.status_code == 404
    [a] = await alerts(world, id=alert.id)
    assert a.status == AlertStatus.OPEN
    # A province's center sees its prefectures' suppliers.
    async with world.db.write() as tx:
        await tx.session.execute(
            update(Organization).where(Organization.id == far.org_id).values(region_code="410000")
        )
    assert (await client.get(API, headers=world.h("center_hubei"))).json()["total"] == 1


async def test_filters_and_paging(client: Any, world: World) -> None:
    await above_market(world)
    h = world.h("center")
    today = clock.local_date(clock.now())
    cases = {
        "kind=above_market": 1,
        "kind=abnormally_low": 0,
        "status=open": 1,
        "status=closed": 0,
        "category=A0201": 1,
        "category=A05": 0,
        "supplier=甲供应": 1,
        "supplier=乙供应": 0,
        f"since={today.isoformat()}": 1,
        f"until={(today - timedelta(days=1)).isoformat()}": 0,
        "page=2&per_page=1": 1,
    }
    for qs, n in cases.items():
        r = await client.get(f"{API}?{qs}", headers=h)
        assert r.status_code == 200, (qs, r.text)
        assert (r.json()["total"], len(r.json()["items"])) == (n, 0 if "page=2" in qs else n), qs
    for qs, code in {
        "kind=nonsense": "invalid_kind",
        "status=nonsense": "invalid_status",
        "since=2026-13-01": "invalid_date",
        "category=A02%25": "invalid_category",
    }.items():
        r = await client.get(f"{API}?{qs}", headers=h)
        assert r.status_code == 400 and r.json()["code"] == code, (qs, r.text)


async def test_refusals_name_their_code(client: Any, world: World) -> None:
    h = world.h("center")
    r = await client.post(f"{API}/{uuid.uuid4()}/ask", json={}, headers=h)
    assert r.status_code == 404 and r.json()["code"] == "price_alert_not_found"
    alert = await above_market(world)
    r = await client.post(f"{API}/{alert.id}/close", json={"note": "换行\u202e隐藏"}, headers=h)
    assert r.status_code == 400
    r = await client.post(f"{API}/{alert.id}/close", json={"note": "长" * 301}, headers=h)
    assert r.status_code == 400
    r = await client.post(f"{API}/{alert.id}/ask", json={"unknown": 1}, headers=h)
    assert r.status_code == 400
    [a] = await alerts(world, id=alert.id)
    assert a.status == AlertStatus.OPEN


# ---------------------------------------------------------------- pages


async def test_the_pages(client: Any, world: World) -> None:
    from tests.mall.test_pages import login_ok

    alert = await above_market(world)
    await login_ok(client, "center")
    r = await client.get("/oversight/price-alerts", headers=HTML)
    assert r.status_code == 200 and "商品laptop" in r.text and "高于市场中位价" in r.text
    r = await client.get("/oversight/price-alerts?kind=abnormally_low", headers=HTML)
    assert r.status_code == 200 and "没有符合条件的价格预警" in r.text
    r = await client.get("/oversight/price-alerts?since=notadate", headers=HTML)
    assert r.status_code == 200 and "日期格式应为" in r.text
    r = await client.get(f"/oversight/price-alerts/{alert.id}", headers=HTML)
    assert r.status_code == 200 and "要求说明" in r.text and "4,200.00" in r.text


async def test_the_public_page_and_api(client: Any, world: World) -> None:
    r = await client.get("/api/price-monitoring")
    assert r.status_code == 200 and r.json() == {
        "last_sweep_at": None,
        "monitored": 0,
        "flagged": 0,
        "classes": [],
    }
    r = await client.get("/price-monitoring", headers=HTML)
    assert r.status_code == 200 and "尚未进行价格监测" in r.text
    await above_market(world)
    body = (await client.get("/api/price-monitoring")).json()
    assert body["last_sweep_at"] and (body["monitored"], body["flagged"]) == (3, 1)
    [computers] = [c for c in body["classes"] if c["category_class"] == "A020101"]
    assert computers["category_name"] == "计算机" and computers["flagged_share"] == "100.0"
    r = await client.get("/price-monitoring", headers=HTML)
    assert "计算机" in r.text and "100.0%" in r.text


async def test_buyers_see_the_market_median(client: Any, world: World) -> None:
    laptop = world.listings["laptop"]
    r = await client.get(f"/api/listings/{laptop.id}/market")
    assert r.status_code == 200 and r.json()["market"] is None
    await market(world, "4000.00", "4200.00", "4400.00")
    await stats.compute(world.db)
    r = await client.get(f"/api/listings/{laptop.id}/market")
    m = r.json()["market"]
    assert (m["samples"], m["p25"], m["median"], m["p75"]) == (3, "4100.00", "4200.00", "4300.00")
    r = await client.get(f"/goods/{laptop.id}", headers=HTML)
    assert r.status_code == 200 and "成交中位价" in r.text and "4,200.00" in r.text


async def test_the_daily_job_runs_once_a_day(world: World) -> None:
    from workers import pricewatch_jobs

    first = await pricewatch_jobs.sweep_if_due(world.db, world.settings)
    second = await pricewatch_jobs.sweep_if_due(world.db, world.settings)
    assert first is not None and second is None
    async with world.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(PriceSweep)) == 1


# ---------------------------------------------------------------- the supplier's e-commerce price


async def test_the_supplier_declares_an_ecommerce_price(client: Any, world: World) -> None:
    laptop = world.listings["laptop"]
    h = world.h("supplier_x")
    today = clock.local_date(clock.now())
    url = f"/api/listings/{laptop.id}/ecommerce"
    good = {
        "ecommerce_price": "4899.00",
        "ecommerce_url": "https://item.example.com/100.html",
        "ecommerce_captured_on": today.isoformat(),
    }
    r = await client.post(url, json=good, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["ecommerce_price"], r.json()["ecommerce_captured_on"]) == ("4899.00", today.isoformat())
    for change, word in [
        ({"ecommerce_url": "javascript:alert(1)"}, "http"),
        ({"ecommerce_url": "ftp://example.com/x"}, "http"),
        ({"ecommerce_captured_on": (today + timedelta(days=1)).isoformat()}, "不能晚于今天"),
        ({"ecommerce_captured_on": "2026-02-30"}, "YYYY-MM-DD"),
        ({"ecommerce_captured_on": ""}, "采集日期"),
        ({"ecommerce_price": "-1"}, "电商价格"),
    ]:
        r = await client.post(url, json={**good, **change}, headers=h)
        assert r.status_code == 400 and r.json()["code"] == "ecommerce_invalid", (change, r.text)
        assert word in r.json()["detail"], (change, r.json()["detail"])
    r = await client.post(
        url, json={**good, "ecommerce_url": "https://x.example.com/" + "a" * 500}, headers=h
    )
    assert r.status_code == 400
    r = await client.post(url, json={**good, "ecommerce_url": "https://x.example.com/\u0000"}, headers=h)
    assert r.status_code == 400
    r = await client.post(url, json=good, headers=world.h("supplier_y"))
    assert r.status_code in (403, 404)
    # The sweep compares the listing's price (5000.00) with it.
    await sweep.run(world.db, world.settings)
    [alert] = await alerts(world, kind=AlertKind.ABOVE_ECOMMERCE)
    assert alert.reference == Decimal("4899.00") and alert.detail["url"] == good["ecommerce_url"]
    # Cleared: nothing to compare, the untouched alert is closed at the next sweep.
    r = await client.post(url, json={}, headers=h)
    assert r.status_code == 200 and r.json()["ecommerce_price"] is None
    await sweep.run(world.db, world.settings)
    [closed] = await alerts(world, id=alert.id)
    assert closed.status == AlertStatus.CLOSED


async def test_a_new_listing_carries_its_ecommerce_price(client: Any, world: World) -> None:
    today = clock.local_date(clock.now())
    body = {
        "name": "激光打印机",
        "brand": "得力",
        "spec_model": "P2500DN",
        "category_code": "A02021003",
        "unit": "台",
        "price": "1500.00",
        "reference_price": "1500.00",
        "stock": "5",
        "ecommerce_price": "1450.00",
        "ecommerce_url": "https://shop.example.com/p2500",
        "ecommerce_captured_on": today.isoformat(),
    }
    r = await client.post("/api/listings", json=body, headers=world.h("supplier_y"))
    assert r.status_code == 201, r.text
    assert r.json()["ecommerce_price"] == "1450.00"
    r = await client.post(
        "/api/listings",
        json={**body, "spec_model": "P2600", "ecommerce_url": "www.example.com"},
        headers=world.h("supplier_y"),
    )
    assert r.status_code == 400 and r.json()["code"] == "listing_invalid"


async def open_and_asked_alerts(world: World) -> tuple[uuid.UUID, uuid.UUID]:
    """For the route sweeps (tests/mall/test_access.py, tests/security/test_11_text_fields.py): an
    open alert on the laptop and one on the printer that the center asked supplier_x about."""
    from mall.pricewatch import service

    await market(world, "4000.00", "4200.00", "4400.00")
    for price in ("1000.00", "1000.00", "1000.00"):
        await deal(world, world.listings["printer"], price)
    await sweep.run(world.db, world.settings)
    [laptop] = await alerts(world, listing_id=world.listings["laptop"].id)
    [printer] = await alerts(world, listing_id=world.listings["printer"].id)
    await service.ask(world.db, world.settings, world.who["center"], printer.id)
    return laptop.id, printer.id


async def test_the_helper_for_the_route_sweeps(world: World) -> None:
    open_id, asked_id = await open_and_asked_alerts(world)
    [a] = await alerts(world, id=open_id)
    [b] = await alerts(world, id=asked_id)
    assert (a.status, b.status) == (AlertStatus.OPEN, AlertStatus.ASKED)

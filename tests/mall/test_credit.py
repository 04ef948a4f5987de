"""Supplier credit (mall.credit): the versioned formula, the events each path records once, the late
deliveries the periodic scan finds, the stored scores, and who sees what."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from mall import orders
from mall.core import clock
from mall.core.errors import Forbidden, InvalidInput, NotFound
from mall.credit import record, rules, service
from mall.credit.models import CreditEvent, SupplierCredit
from mall.orders import claims
from mall.orders.models import Order
from mall.supervision import cases as supervision_cases
from mall.supervision.models import OversightCase
from tests.factories import World, movable_clock, sign_and_file
from tests.mall.test_claims import accepted_order


def test_the_formula_without_anything_is_the_base() -> None:
    x = rules.score([], [])
    assert (x.score, x.grade, x.version, x.evaluations, x.average) == (80, "B", "2026.1", 0, None)
    assert x.evaluation_points == "+0.0"


def test_evaluations_weigh_by_their_number_up_to_ten() -> None:
    assert rules.score([5], []).score == 81  # (5-3) x 5 x 1/10 = +1
    assert rules.score([5] * 10, []).score == 90  # full weight: +10
    assert rules.score([5] * 30, []).score == 90
    assert rules.score([1] * 10, []).score == 70
    x = rules.score([4, 5, 3], [])
    assert x.average == "4.00" and x.evaluation_points == "+1.5" and x.score == 82  # 81.5 rounds half up


def test_each_event_deducts_its_points_and_the_score_stays_within_0_100() -> None:
    x = rules.score([5] * 10, ["order_declined", "late_delivery", "late_delivery"])
    assert x.deductions == {"late_delivery": 6, "order_declined": 2} and x.score == 82
    assert x.counts == {"late_delivery": 2, "order_declined": 1}
    assert rules.score([], ["violation_case"] * 20).score == 0
    assert [rules.grade_of(v) for v in (100, 90, 89, 75, 74, 60, 59, 0)] == list("AABBCCDD")
    with pytest.raises(ValueError, match="unknown"):
        rules.score([], ["made_up"])
    with pytest.raises(ValueError):
        rules.score([6], [])


async def _placed(world: World, listing: str = "laptop") -> uuid.UUID:
    placed, _ = await orders.checkout(
        world.db,
        world.settings,
        world.who["buyer_a"],
        orders.CheckoutRequest(world.lines["a1"].id, uuid.uuid4().hex, ((world.listings[listing].id, "1"),)),
    )
    return placed[0].id


async def _events(world: World) -> list[tuple[str, str]]:
    async with world.db.read() as s:
        rows = (await s.execute(select(CreditEvent).order_by(CreditEvent.kind, CreditEvent.ref))).scalars()
        return [(e.kind, e.ref) for e in rows]


async def _order_no(world: World, order_id: uuid.UUID) -> str:
    async with world.db.read() as s:
        order = await s.get(Order, order_id)
        assert order is not None
        return order.order_no


async def test_every_order_path_records_its_event_once_and_the_score_follows(world: World) -> None:
    x, buyer = world.who["supplier_x"], world.who["buyer_a"]
    with movable_clock() as advance:
        declined = await _placed(world)
        await orders.decline(world.db, x, declined, "库存不足，无法供货")
        lapsed = await _placed(world)
        advance(timedelta(days=world.settings.auto_cancel_days, hours=1))
        assert await orders.cancel_overdue(world.db) >= 1
        asked = await _placed(world)
        await orders.confirm(world.db, x, asked)
        await orders.request_cancel(world.db, x, asked, "型号停产，无法供货")
        await orders.answer_cancel(world.db, buyer, asked, True)
        buyer_asked = await _placed(world)  # a cancellation the buyer asked for is not the supplier's
        await orders.confirm(world.db, x, buyer_asked)
        await orders.request_cancel(world.db, buyer, buyer_asked, "预算调整，不再采购")
        await orders.answer_cancel(world.db, x, buyer_asked, True)
        accepted = await accepted_order(world)
        await claims.open_claim(world.db, world.settings, buyer, accepted, "repair", "开机黑屏，无法使用")
    refs = {k: await _order_no(world, k) for k in (declined, lapsed, asked, accepted)}
    assert await _events(world) == sorted(
        [
            ("after_sales_claim", refs[accepted]),
            ("confirm_lapsed", refs[lapsed]),
            ("order_declined", refs[declined]),
            ("supplier_cancelled", refs[asked]),
        ]
    )
    # the same fact recorded again adds nothing
    async with world.db.write() as tx:
        again = await record.record(
            tx.session,
            x.org_id,
            "order_declined",
            source_kind="order",
            source_id=declined,
            ref="x",
            at=clock.now(),
        )
    assert again is False and len(await _events(world)) == 4

    assert await service.refresh(world.db) >= 2
    async with world.db.read() as s:
        stored = await s.get(SupplierCredit, x.org_id)
        other = await s.get(SupplierCredit, world.who["supplier_y"].org_id)
        mine = await service.detail(s, x, x.org_id)
    expected = rules.score(
        [5], ["after_sales_claim", "confirm_lapsed", "order_declined", "supplier_cancelled"]
    )
    assert stored is not None and (stored.score, stored.grade, stored.events) == (
        expected.score,
        expected.grade,
        4,
    )
    assert stored.score == 80 + 1 - 1 - 2 - 2 - 3
    assert other is not None and other.score == 80 and other.events == 0
    assert mine.score == expected
    kinds = [line.kind for line in mine.lines]
    assert sorted(kinds) == sorted(
        ["after_sales_claim", "confirm_lapsed", "order_declined", "supplier_cancelled", "evaluation"]
    )
    assert next(line for line in mine.lines if line.kind == "evaluation").points == "★5"


async def test_late_deliveries_are_found_by_the_scan_once(world: World) -> None:
    x, buyer = world.who["supplier_x"], world.who["buyer_a"]
    term = timedelta(days=world.settings.contract_delivery_days)
    with movable_clock() as advance:
        unshipped = await _placed(world)
        shipped_late = await _placed(world, "printer")
        on_time = await _placed(world, "laptop")
        for order_id in (unshipped, shipped_late, on_time):
            await orders.confirm(world.db, x, order_id)
            await sign_and_file(world.db, world.settings, buyer, order_id)
        await orders.ship(world.db, x, on_time, "顺丰 SF1")
        advance(term - timedelta(hours=1))
        assert await service.scan_late_deliveries(world.db, world.settings) == 0  # not yet due
        advance(timedelta(hours=2))
        await orders.ship(world.db, x, shipped_late, "顺丰 SF2")
        assert await service.scan_late_deliveries(world.db, world.settings) == 2
        assert await service.scan_late_deliveries(world.db, world.settings) == 0  # once per order
        await orders.ship(world.db, x, unshipped, "顺丰 SF3")
        advance(timedelta(days=1))
        assert await service.scan_late_deliveries(world.db, world.settings) == 0
    assert await _events(world) == sorted(
        [
            ("late_delivery", await _order_no(world, unshipped)),
            ("late_delivery", await _order_no(world, shipped_late)),
        ]
    )


async def test_a_violation_found_against_a_supplier_counts_one_against_a_buyer_does_not(world: World) -> None:
    now = clock.now()
    region = "410100"
    made = []
    for n, party in enumerate(("supplier_x", "buyer_a")):
        case = OversightCase(
            id=uuid.uuid4(),
            case_no=f"JG-CREDIT-{n}",
            rule="identical_offers",
            subject_key=f"credit-test-{n}",
            region_code=region,
            buyer_org_id=world.who["buyer_a"].org_id,
            supplier_org_id=world.who["supplier_x"].org_id,
            party_org_id=world.who[party].org_id,
            summary="测试事项",
            opened_at=now,
            last_hit_at=now,
            explain_due_at=now + timedelta(days=5),
        )
        async with world.db.write() as tx:
            tx.session.add(case)
        made.append(case.id)
    for case_id in made:
        await supervision_cases.decide(world.db, world.who["regulator"], case_id, "violation", "经查属实")
    assert await _events(world) == [("violation_case", "JG-CREDIT-0")]


async def test_who_sees_the_detail_and_the_ranking(world: World) -> None:
    await service.refresh(world.db)
    x = world.who["supplier_x"]
    async with world.db.read() as s:
        for who in ("supplier_x", "center", "regulator"):
            assert (await service.detail(s, world.who[who], x.org_id)).name
        for who in ("supplier_y", "buyer_a"):
            with pytest.raises(NotFound):
                await service.detail(s, world.who[who], x.org_id)
        with pytest.raises(NotFound):
            await service.detail(s, None, x.org_id)
        with pytest.raises(NotFound):  # not a supplier
            await service.detail(s, world.who["regulator"], world.who["buyer_a"].org_id)
        total, rows = await service.ranking(s, world.who["regulator"], order="asc")
        assert total >= 2 and [r[0].score for r in rows] == sorted(r[0].score for r in rows)
        for who in ("buyer_a", "supplier_x"):
            with pytest.raises(Forbidden):
                await service.ranking(s, world.who[who])
        with pytest.raises(InvalidInput):
            await service.ranking(s, world.who["regulator"], order="sideways")


async def test_a_credit_event_is_never_deleted_nor_changed(world: World) -> None:
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DBAPIError

    x = world.who["supplier_x"]
    order_id = await _placed(world)
    await orders.decline(world.db, x, order_id, "库存不足，无法供货")
    for stmt in (delete(CreditEvent), update(CreditEvent).values(ref="改写")):
        with pytest.raises(DBAPIError):
            async with world.db.write() as tx:
                await tx.session.execute(stmt)
    assert len(await _events(world)) == 1


async def test_the_api_and_pages_show_the_score_to_whom_it_concerns(client: Any, world: World) -> None:
    from tests.mall.test_pages import HTML, assert_page, login_ok
    from tests.security.login_helpers import assert_problem

    x = world.who["supplier_x"]
    await orders.decline(world.db, x, await _placed(world), "库存不足，无法供货")
    await service.refresh(world.db)
    url = f"/api/credit/suppliers/{x.org_id}"
    r = await client.get(url, headers=world.h("supplier_x"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["score"], body["grade"], body["version"]) == (78, "B", rules.VERSION)
    assert body["deductions"] == {"order_declined": 2} and body["lines"][0]["label"] == "拒绝接单"
    assert (await client.get(url, headers=world.h("regulator"))).status_code == 200
    assert_problem(await client.get(url, headers=world.h("supplier_y")), 404, "credit_not_found")
    assert_problem(await client.get(url, headers=world.h("buyer_a")), 403, "forbidden")
    assert (await client.get(url)).status_code == 401
    r = await client.get("/api/credit/ranking?order=asc", headers=world.h("center"))
    assert r.status_code == 200 and r.json()["items"][0]["supplier_name"] == "甲供应商有限公司"
    assert_problem(
        await client.get("/api/credit/ranking?order=up", headers=world.h("center")), 400, "invalid_order"
    )
    assert_problem(await client.get("/api/credit/ranking", headers=world.h("supplier_x")), 403, "forbidden")

    # the buyer sees the score on the listing, in the search and in the comparison
    await login_ok(client, "buyer_a")
    laptop = world.listings["laptop"]
    page = assert_page(await client.get(f"/goods/{laptop.id}", headers=HTML))
    assert "信用 78（良好）" in page
    client.cookies.clear()
    await login_ok(client, "supplier_x")
    page = assert_page(await client.get(f"/credit/suppliers/{x.org_id}", headers=HTML))
    assert "拒绝接单" in page and 'id="credit-value">78<' in page
    client.cookies.clear()
    await login_ok(client, "regulator")
    page = assert_page(await client.get("/credit/ranking", headers=HTML))
    assert "甲供应商有限公司" in page and "78" in page

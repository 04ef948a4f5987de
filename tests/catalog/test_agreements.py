"""Framework agreements (协议供货): terms, entry, agreement prices, orders under them (direct
selection and 议价 at confirmation), second-stage competitions, expiry and the deal summary."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from msgspec.structs import replace
from sqlalchemy import func, select

from bidding import award, close, offers
from bidding.models import Procedure
from catalog import agreements as ag
from catalog import prices
from mall import orders
from mall.core import clock
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from mall.core.models import Organization, OrgKind
from mall.ledger import disclosure
from mall.ledger.models import DisclosureRecord
from tests.factories import World, frozen_at

D = Decimal


@pytest.fixture
def frozen() -> Iterator[datetime]:
    with frozen_at(datetime(2026, 3, 2, 2, 0, tzinfo=clock.UTC)) as start:  # Monday 10:00 in Beijing
        yield start


# ---------------------------------------------------------------- pure rules


def test_the_term_is_at_most_a_year_for_goods_and_two_for_services() -> None:
    ag.check_term("goods", date(2026, 1, 1), date(2026, 12, 31))
    with pytest.raises(RuleViolation) as err:
        ag.check_term("goods", date(2026, 1, 1), date(2027, 1, 1))
    assert err.value.code == "agreement_term_too_long" and "1年" in err.value.detail
    ag.check_term("services", date(2026, 1, 1), date(2027, 12, 31))
    with pytest.raises(RuleViolation):
        ag.check_term("services", date(2026, 1, 1), date(2028, 1, 1))
    with pytest.raises(InvalidInput):
        ag.check_term("goods", date(2026, 5, 1), date(2026, 4, 30))
    ag.check_term("goods", date(2028, 2, 29), date(2029, 2, 27))  # a leap day start
    with pytest.raises(RuleViolation):
        ag.check_term("goods", date(2028, 2, 29), date(2029, 2, 28))


def test_a_discount_off_the_list_price_is_rounded_to_the_fen() -> None:
    assert ag.discounted(D("189900.00"), D("0.935")) == D("177556.50")
    assert ag.discounted(D("3333.33"), D("0.3333")) == D("1111.00")
    for bad in ("0", "1.01", "-0.5", "0.12345"):
        with pytest.raises(InvalidInput):
            ag.discounted(D("100.00"), D(bad))


# ---------------------------------------------------------------- the center's side


async def code_of(world: World, name: str) -> str:
    async with world.db.read() as s:
        org = await s.get(Organization, world.who[name].org_id)
        assert org is not None
        return org.credit_code


async def vehicles(world: World, *, direct_limit: str = "400000.00") -> ag.Agreement:
    """A vehicles agreement (品目 A02030000) with two entered suppliers and three models, in force."""
    center = world.who["center"]
    a = await world.agreement("2026年度公务用车协议供货", "A02030000", days=300, direct_limit=direct_limit)
    for s in ("supplier_x", "supplier_y"):
        await ag.add_supplier(world.db, center, a.id, await code_of(world, s))
    x, y = world.who["supplier_x"].org_id, world.who["supplier_y"].org_id
    assert x and y
    await add_product(world, a, x, "轿车", "大众", "帕萨特 2.0T 豪华版", "A02030500", "辆", price="189900.00")
    await add_product(
        world,
        a,
        y,
        "轿车",
        "丰田",
        "凯美瑞 2.5L",
        "A02030500",
        "辆",
        list_price="199800.00",
        discount_rate="0.93",
    )
    await add_product(world, a, y, "轿车", "比亚迪", "汉 EV 标准版", "A02030500", "辆", price="169800.00")
    return await ag.activate(world.db, center, a.id)


async def add_product(world: World, a: ag.Agreement, *fields: Any, **prices: str) -> ag.AgreementProduct:
    """The center adds a product (ag.ProductDraft's fields) to the agreement."""
    return await ag.add_product(world.db, world.who["center"], a.id, ag.ProductDraft(*fields, **prices))


async def second_stage(world: World, a: ag.Agreement, ceiling: str, spec: str = "2.0T 及以上") -> Procedure:
    """buyer_a's inquiry for two cars among the agreement's entered suppliers (二次竞价)."""
    item = ("A02030500", "轿车", spec, "2", "辆")
    return await world.procedure(
        "inquiry", "公务用车二次竞价", ceiling=ceiling, item=item, hours=2, agreement_id=a.id
    )


async def product(world: World, a: ag.Agreement, model: str) -> ag.AgreementProduct:
    async with world.db.read() as s:
        return next(p for p, _ in await ag.products_of(s, a.id) if p.spec_model == model)


async def test_the_center_builds_an_agreement_and_only_the_center_may(world: World, frozen: datetime) -> None:
    a = await vehicles(world)
    assert a.status == "active" and a.number.startswith("XYKJ")
    camry = await product(world, a, "凯美瑞 2.5L")
    assert camry.price == D("185814.00") and camry.list_price == D("199800.00")

    draft = ag.AgreementDraft("打印机协议", "goods", "A02021003", "2026-03-02", "2026-12-31")
    with pytest.raises(Forbidden):
        await ag.create(world.db, world.settings, world.who["buyer_a"], draft)
    with pytest.raises(InvalidInput) as err:  # a service 品目 for a goods agreement
        await ag.create(
            world.db,
            world.settings,
            world.who["center"],
            ag.AgreementDraft("x协议", "goods", "C23120301", "2026-03-02", "2026-12-31"),
        )
    assert err.value.code == "category_kind_mismatch"
    printers = await ag.create(world.db, world.settings, world.who["center"], draft)
    with pytest.raises(RuleViolation) as err:
        await ag.activate(world.db, world.who["center"], printers.id)
    assert err.value.code == "agreement_empty"
    x = world.who["supplier_x"].org_id
    assert x
    with pytest.raises(RuleViolation) as err:  # not entered
        await add_product(world, printers, x, "打印机", "惠普", "M110w", "A02021003", "台", price="899.00")
    assert err.value.code == "supplier_not_entered"
    await ag.add_supplier(world.db, world.who["center"], printers.id, await code_of(world, "supplier_x"))
    with pytest.raises(Conflict):
        await ag.add_supplier(world.db, world.who["center"], printers.id, await code_of(world, "supplier_x"))
    with pytest.raises(InvalidInput) as err:  # a car is not a printer
        await add_product(world, printers, x, "轿车", "大众", "朗逸", "A02030500", "辆", price="99900.00")
    assert err.value.code == "category_outside_agreement"
    with pytest.raises(InvalidInput) as err:
        await add_product(
            world,
            printers,
            x,
            "打印机",
            "惠普",
            "M110w",
            "A02021003",
            "台",
            price="899.00",
            discount_rate="0.9",
        )
    assert err.value.code == "price_or_discount"


# ---------------------------------------------------------------- ordering under it


def order_req(
    world: World, p: ag.AgreementProduct, qty: str = "1", price: str = "", key: str = ""
) -> ag.AgreementOrderRequest:
    return ag.AgreementOrderRequest(
        product_id=p.id,
        quantity=qty,
        budget_line_id=world.lines["a1"].id,
        idempotency_key=key or uuid.uuid4().hex,
        unit_price=price,
    )


async def test_a_buyer_orders_a_car_the_supplier_lowers_the_price_and_the_deal_is_published(
    world: World, frozen: datetime
) -> None:
    a = await vehicles(world)
    passat = await product(world, a, "帕萨特 2.0T 豪华版")
    buyer = world.who["buyer_a"]

    with pytest.raises(RuleViolation) as err:
        await ag.place_order(world.db, world.settings, buyer, order_req(world, passat, price="190000.00"))
    assert err.value.code == "above_agreement_price"
    with pytest.raises(Forbidden):
        await ag.place_order(world.db, world.settings, world.who["supplier_x"], order_req(world, passat))

    req = order_req(world, passat, key="agreement-order-0001")
    order, replayed = await ag.place_order(world.db, world.settings, buyer, req)
    assert not replayed and order.mode == "agreement" and order.order_no.startswith("XY")
    assert order.status == "placed" and order.total_amount == D("189900.00") and order.source_id == a.id
    again, replayed = await ag.place_order(world.db, world.settings, buyer, req)
    assert replayed and again.id == order.id

    # 议价: the supplier confirms at a lower price; the same flow as the supermarket from here on
    line_id = order.lines[0].id
    with pytest.raises(RuleViolation):  # never above what was ordered
        await orders.confirm(world.db, world.who["supplier_x"], order.id, {line_id: "190000.00"})
    confirmed = await orders.confirm(world.db, world.who["supplier_x"], order.id, {line_id: "186500.00"})
    assert confirmed.status == "confirmed" and confirmed.total_amount == D("186500.00")
    await disclosure.publish_pending(world.db)
    async with world.db.read() as s:
        record = json.loads((await s.execute(select(DisclosureRecord.body))).scalar_one())
    assert record["mode"] == "agreement" and record["total_amount"] == "186500.00"
    assert record["lines"][0]["spec_model"] == "帕萨特 2.0T 豪华版"
    assert record["lines"][0]["category_code"] == "A02030500"

    async with world.db.read() as s:
        summary = await ag.summary(s, a.id)
    assert (summary.orders, summary.amount) == (1, D("186500.00"))
    assert [(r.supplier_name, r.orders) for r in summary.by_supplier] == [("甲供应商有限公司", 1)]


async def test_a_large_call_off_must_go_to_a_second_stage_competition(world: World, frozen: datetime) -> None:
    a = await vehicles(world, direct_limit="300000.00")
    passat = await product(world, a, "帕萨特 2.0T 豪华版")
    with pytest.raises(RuleViolation) as err:
        await ag.place_order(
            world.db, world.settings, world.who["buyer_a"], order_req(world, passat, qty="2")
        )
    assert err.value.code == "second_stage_required"

    # Two entered suppliers cannot make a competition of three: refused now, not failed at the deadline.
    with pytest.raises(InvalidInput) as err:
        await second_stage(world, a, "379800.00")
    assert err.value.code == "too_few_entered" and err.value.extra["field"] == "agreement_id"
    assert "3 家" in err.value.detail and err.value.extra["minimum"] == 3
    third = await world.org("third", OrgKind.SUPPLIER, "第三汽车销售公司")
    await ag.add_supplier(world.db, world.who["center"], a.id, await code_of(world, "third"))
    # A frozen supplier cannot take part, so it does not count.
    async with world.db.write() as tx:
        (await tx.session.get(Organization, third.org_id)).status = "frozen"  # type: ignore[union-attr]
    with pytest.raises(InvalidInput) as err:
        await second_stage(world, a, "379800.00")
    assert err.value.code == "too_few_entered"
    async with world.db.write() as tx:
        (await tx.session.get(Organization, third.org_id)).status = "active"  # type: ignore[union-attr]
    async with world.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Procedure)) == 0
    with pytest.raises(RuleViolation) as err:  # 2 × the highest agreement price in the 品目
        await second_stage(world, a, "379800.01")
    assert err.value.code == "above_agreement_price" and "379,800.00" in err.value.detail
    p = await second_stage(world, a, "379800.00")
    assert p.eligibility == "agreement" and p.agreement_id == a.id
    await offers.quote(world.db, world.who["supplier_y"], p.id, "360000.00")
    outsider = await world.org("outsider", OrgKind.SUPPLIER, "未入围供应商")
    with pytest.raises(NotFound):  # only the entered suppliers are invited: for others it does not exist
        await offers.quote(world.db, outsider, p.id, "350000.00")


async def test_expiry_ends_ordering_and_keeps_the_summary(world: World, frozen: datetime) -> None:
    a = await vehicles(world)
    byd = await product(world, a, "汉 EV 标准版")
    order, _ = await ag.place_order(world.db, world.settings, world.who["buyer_a"], order_req(world, byd))
    await orders.confirm(world.db, world.who["supplier_y"], order.id)
    clock.clock.freeze(clock.now() + timedelta(days=301))
    assert await ag.expire_due(world.db) == [a.id]
    assert await ag.expire_due(world.db) == []  # once
    with pytest.raises(RuleViolation) as err:
        await ag.place_order(world.db, world.settings, world.who["buyer_a"], order_req(world, byd))
    assert err.value.code == "agreement_not_in_force"
    with pytest.raises(Conflict):
        await ag.add_supplier(world.db, world.who["center"], a.id, await code_of(world, "supplier_x"))
    async with world.db.read() as s:
        summary = await ag.summary(s, a.id)
        assert (await ag.get(s, a.id)).status == "expired"
    assert summary.amount == D("169800.00") and summary.by_supplier[0].supplier_name == "乙供应商有限公司"


async def test_supplementary_entry_and_termination(world: World, frozen: datetime) -> None:
    a = await vehicles(world)
    newcomer = await world.org("newcomer", OrgKind.SUPPLIER, "补充入围汽车销售公司")
    entry = await ag.add_supplier(world.db, world.who["center"], a.id, await code_of(world, "newcomer"))
    assert entry.supplementary is True and entry.supplier_org_id == newcomer.org_id
    with pytest.raises(NotFound):
        await ag.add_supplier(world.db, world.who["center"], a.id, await code_of(world, "buyer_a"))
    with pytest.raises(InvalidInput):
        await ag.terminate(world.db, world.who["center"], a.id, "  ")
    done = await ag.terminate(world.db, world.who["center"], a.id, "供应商集体违约，协议终止")
    assert done.status == "terminated"
    with pytest.raises(Conflict):
        await ag.terminate(world.db, world.who["center"], a.id, "再次终止")


async def test_the_supermarket_may_not_sell_above_an_agreement_price(world: World, frozen: datetime) -> None:
    from catalog import service as catalog

    await vehicles(world)  # 帕萨特 2.0T 豪华版 at 189,900.00 under the agreement
    draft = catalog.ListingDraft(
        name="大众帕萨特轿车",
        brand="大众",
        spec_model="帕萨特 2.0T　豪华版",  # a full-width space: the same model
        category_code="A02030500",
        unit="辆",
        price="195000.00",
        reference_price="196000.00",
        stock="3",
    )
    margin = world.settings.price_margin
    with pytest.raises(RuleViolation) as err:
        await catalog.create_listing(world.db, world.who["supplier_y"], draft, margin=margin)
    assert err.value.code == "price_above_agreement" and "189,900.00" in err.value.detail
    ok = await catalog.create_listing(
        world.db, world.who["supplier_y"], replace(draft, price="188000.00"), margin=margin
    )
    live = await catalog.review_listing(
        world.db, world.who["center"], ok.id, approve=True, reason="", margin=margin
    )
    assert live.status == "live"
    with pytest.raises(RuleViolation) as err:
        await prices.change_price(
            world.db, world.who["supplier_y"], live.id, "190000.00", "196000.00", margin=margin
        )
    assert err.value.code == "price_above_agreement"


async def test_a_bulk_import_may_not_list_above_an_agreement_price(world: World, frozen: datetime) -> None:
    from catalog import imports
    from tests.catalog.test_imports import csv_bytes, run, start

    await vehicles(world)
    rows = [
        [
            "大众帕萨特",
            "大众",
            "帕萨特 2.0T 豪华版",
            "A02030500",
            "辆",
            "190000.00",
            "196000.00",
            "官网",
            "2",
        ],
        ["丰田凯美瑞", "丰田", "凯美瑞 2.5L", "A02030500", "辆", "180000.00", "186000.00", "官网", "2"],
    ]
    batch = await start(world, world.who["supplier_y"], "cars.csv", csv_bytes(rows))
    await run(world, batch.id)
    async with world.db.read() as s:
        done = await s.get(imports.ListingImport, batch.id)
        assert done is not None
    report = {r[0]: (r[1], r[2]) for r in done.report}
    assert report[2][0] == imports.REFUSED and "协议价 189,900.00" in report[2][1]
    assert report[3][0] == imports.OK  # 180,000 is below the Camry's 185,814.00


def test_odd_discount_rates_and_dates_are_refused_not_crashed() -> None:
    for bad in ("NaN", "sNaN", "Infinity"):
        with pytest.raises(InvalidInput):
            ag.discounted(D("100.00"), D(bad))
    with pytest.raises(InvalidInput):  # 0.01 × 0.1 rounds to nothing
        ag.discounted(D("0.01"), D("0.1"))
    with pytest.raises(InvalidInput):
        ag.check_term("goods", date(9999, 1, 1), date(9999, 12, 31))


async def test_a_retry_is_answered_even_after_the_agreement_ended_and_abandoned_drafts_stay_private(
    world: World, frozen: datetime
) -> None:
    a = await vehicles(world)
    byd = await product(world, a, "汉 EV 标准版")
    req = order_req(world, byd, key="retry-after-termination")
    order, _ = await ag.place_order(world.db, world.settings, world.who["buyer_a"], req)
    await ag.terminate(world.db, world.who["center"], a.id, "协议终止")
    again, replayed = await ag.place_order(world.db, world.settings, world.who["buyer_a"], req)
    assert replayed and again.id == order.id  # the lost answer, not a refusal
    with pytest.raises(RuleViolation):  # a new order is refused
        await ag.place_order(world.db, world.settings, world.who["buyer_a"], order_req(world, byd))

    draft = await world.agreement("打印机协议", "A02021000")
    await ag.terminate(world.db, world.who["center"], draft.id, "放弃")
    async with world.db.read() as s:
        abandoned = await ag.get(s, draft.id)
    assert not ag.visible_to(None, abandoned) and not ag.visible_to(world.who["buyer_a"], abandoned)
    assert ag.visible_to(world.who["center"], abandoned)
    assert ag.visible_to(None, a)  # it was in force: public, also once terminated


async def test_a_printer_agreement_takes_printers_not_mice(world: World, frozen: datetime) -> None:
    center = world.who["center"]
    printers = await world.agreement("打印机协议", "A02021000")
    await ag.add_supplier(world.db, center, printers.id, await code_of(world, "supplier_x"))
    x = world.who["supplier_x"].org_id
    assert x
    await add_product(world, printers, x, "激光打印机", "惠普", "M110w", "A02021003", "台", price="899.00")
    with pytest.raises(InvalidInput) as err:  # A02021110 鼠标器 shares the digits A02021 but not the class
        await add_product(world, printers, x, "鼠标", "罗技", "M100", "A02021110", "个", price="39.00")
    assert err.value.code == "category_outside_agreement"


async def test_second_stage_deals_count_in_the_agreement_summary(world: World, frozen: datetime) -> None:
    from mall.core.models import OrgKind

    a = await vehicles(world, direct_limit="300000.00")
    third = await world.org("third", OrgKind.SUPPLIER, "第三汽车销售公司")
    await ag.add_supplier(world.db, world.who["center"], a.id, await code_of(world, "third"))
    p = await second_stage(world, a, "379800.00", spec="")
    for who, amount in (("supplier_x", "370000.00"), ("supplier_y", "365000.00"), ("third", "368000.00")):
        await offers.quote(world.db, world.who[who] if who != "third" else third, p.id, amount)
    clock.clock.freeze(clock.now() + timedelta(hours=3))
    await close.close(world.db, p.id)
    await award.confirm_award(world.db, world.who["supplier_y"], p.id)
    async with world.db.read() as s:
        summary = await ag.summary(s, a.id)
    assert (summary.orders, summary.amount) == (1, D("365000.00"))
    assert summary.by_supplier[0].supplier_name == "乙供应商有限公司"

"""Designated services (定点服务): open applications reviewed within 7 working days, the center's
direct designation and revocation, finding suppliers by region and 品目, and service orders that run
the supermarket's fulfilment flow and are published with mode `designated`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from catalog import designated as dd
from mall import orders
from mall.core import clock
from mall.core.errors import Conflict, Forbidden, InvalidInput, RuleViolation
from mall.core.models import Organization
from mall.core.workdays import load_calendar
from mall.ledger import disclosure
from mall.ledger.models import DisclosureRecord
from tests.factories import World, frozen_at, sign_and_file
from tests.mall.test_payments import settle

D = Decimal
REPAIR = "C23120301"  # 车辆维修和保养服务
PRICES = [
    dd.PriceItemDraft("小保养", "次", "380.00", "机油、机滤更换，含工时"),
    dd.PriceItemDraft("维修工时", "小时", "120.00"),
    dd.PriceItemDraft("四轮定位", "次", "150.00"),
]


@pytest.fixture
def frozen() -> Iterator[datetime]:
    with frozen_at(datetime(2026, 9, 24, 2, 0, tzinfo=clock.UTC)) as start:  # Thursday 10:00 in Beijing
        yield start


@pytest.fixture
def before_spring_festival() -> Iterator[datetime]:
    with frozen_at(datetime(2026, 2, 13, 2, 0, tzinfo=clock.UTC)) as start:  # Friday 10:00 in Beijing
        yield start


def test_working_days_skip_weekends_the_notices_holidays_and_local_ones() -> None:
    thursday = date(2026, 9, 24)
    # 中秋 Sep 25–27 and 国庆 Oct 1–7 rest, Saturday Oct 10 works: Sep 28, 29, 30, Oct 8, 9, 10, 12
    assert load_calendar().add_working_days(thursday, 7) == date(2026, 10, 12)
    local = load_calendar("", frozenset({date(2026, 10, 9)}))  # MALL_HOLIDAYS
    assert local.add_working_days(thursday, 7) == date(2026, 10, 13)


async def test_an_open_application_is_reviewed_and_the_buyer_finds_and_orders_the_service(
    world: World, frozen: datetime
) -> None:
    supplier = world.who["supplier_x"]
    d = await dd.apply(world.db, world.settings, supplier, REPAIR, "410100", PRICES, "郑州市金水区文化路1号")
    assert d.status == "applied" and d.by_application
    assert d.review_due_at is not None and clock.local_date(d.review_due_at) == date(2026, 10, 12)
    with pytest.raises(Conflict):  # one application per supplier, region and 品目
        await dd.apply(world.db, world.settings, supplier, REPAIR, "410100", PRICES)
    with pytest.raises(InvalidInput) as err:
        await dd.apply(world.db, world.settings, supplier, "A02010105", "410100", PRICES)
    assert err.value.code == "category_not_service"
    with pytest.raises(InvalidInput):
        await dd.apply(world.db, world.settings, supplier, REPAIR, "4101", PRICES)
    with pytest.raises(InvalidInput):
        await dd.apply(
            world.db, world.settings, supplier, REPAIR, "410200", [dd.PriceItemDraft("小保养", "次", "-1")]
        )

    async with world.db.read() as s:
        assert await dd.find(s, region_code="410100", category_code="C2312") == []  # not yet approved
    with pytest.raises(Forbidden):
        await dd.review(world.db, world.who["regulator"], d.id, True, "")
    with pytest.raises(InvalidInput):  # a rejection needs a reason
        await dd.review(world.db, world.who["center"], d.id, False, "")
    approved = await dd.review(world.db, world.who["center"], d.id, True, "资质齐全")
    assert approved.status == "approved"
    with pytest.raises(Conflict):
        await dd.review(world.db, world.who["center"], d.id, False, "再审")

    async with world.db.read() as s:
        found = await dd.find(s, region_code="410100", category_code="C23120000")
        assert await dd.find(s, region_code="410200", category_code="C2312") == []
    [f] = found
    assert f.supplier_name == "甲供应商有限公司" and [i.name for i in f.items] == [
        "小保养",
        "维修工时",
        "四轮定位",
    ]
    by_name = {i.name: i.id for i in f.items}

    req = dd.ServiceOrderRequest(
        designation_id=d.id,
        items=((by_name["小保养"], "2"), (by_name["维修工时"], "3")),
        budget_line_id=world.lines["a1"].id,
        idempotency_key="service-order-0001",
        note="两辆公务车年度保养",
    )
    with pytest.raises(Forbidden):
        await dd.place_order(world.db, world.settings, supplier, req)
    order, replayed = await dd.place_order(world.db, world.settings, world.who["buyer_a"], req)
    assert not replayed and order.mode == "designated" and order.order_no.startswith("DD")
    assert order.total_amount == D("1120.00") and order.source_id == d.id
    assert (await dd.place_order(world.db, world.settings, world.who["buyer_a"], req))[0].id == order.id

    # the supermarket's flow: confirm (may lower), contract, perform, accept, pay
    await orders.confirm(world.db, supplier, order.id)
    await sign_and_file(world.db, world.settings, world.who["buyer_a"], order.id)
    await orders.ship(world.db, supplier, order.id, "已完成保养")
    await orders.receive(world.db, world.who["buyer_a"], order.id)
    await orders.accept(
        world.db,
        world.settings,
        world.who["buyer_a"],
        order.id,
        inspectors=["王建国"],
        score=5,
        comment="服务及时",
    )
    await settle(world, order.id, supplier, world.who["buyer_a"], "ZF-2026-0001")
    async with world.db.read() as s:
        assert (await orders.get_order(s, world.who["buyer_a"], order.id)).status == "paid"
    await disclosure.publish_pending(world.db)
    async with world.db.read() as s:
        record = json.loads((await s.execute(select(DisclosureRecord.body))).scalar_one())
    assert record["mode"] == "designated" and record["total_amount"] == "1120.00"
    assert [(ln["item_name"], ln["unit"], ln["quantity"]) for ln in record["lines"]] == [
        ("小保养", "次", "2"),
        ("维修工时", "小时", "3"),
    ]
    assert all(ln["category_code"] == REPAIR for ln in record["lines"])


async def test_an_application_made_before_the_spring_festival_is_due_after_it(
    world: World, before_spring_festival: datetime
) -> None:
    d = await dd.apply(world.db, world.settings, world.who["supplier_x"], REPAIR, "410100", PRICES)
    # Sat Feb 14 works, Feb 15–23 rest, then Feb 24, 25, 26, 27, Sat Feb 28 and Mon Mar 2
    assert d.review_due_at is not None and clock.local_display(d.review_due_at) == "2026-03-02 23:59"
    async with world.db.read() as s:
        [f] = await dd.find(s, status=dd.DesignationStatus.APPLIED)
    assert f.designation.review_due_at is not None
    assert clock.local_display(f.designation.review_due_at) == "2026-03-02 23:59"


async def test_the_center_designates_and_revokes_and_a_revoked_supplier_takes_no_orders(
    world: World, frozen: datetime
) -> None:
    async with world.db.read() as s:
        org = await s.get(Organization, world.who["supplier_y"].org_id)
        assert org is not None
    d = await dd.designate(world.db, world.who["center"], org.credit_code, "C23090100", "410100", PRICES[:1])
    assert d.status == "approved" and not d.by_application
    async with world.db.read() as s:
        item = (await dd.get(s, d.id)).items[0]
    req = dd.ServiceOrderRequest(d.id, ((item.id, "1"),), world.lines["a1"].id, uuid.uuid4().hex)
    with pytest.raises(InvalidInput) as err:
        await dd.place_order(
            world.db,
            world.settings,
            world.who["buyer_a"],
            dd.ServiceOrderRequest(d.id, ((uuid.uuid4(), "1"),), world.lines["a1"].id, uuid.uuid4().hex),
        )
    assert err.value.code == "unknown_price_item"
    with pytest.raises(InvalidInput):
        await dd.revoke(world.db, world.who["center"], d.id, "")
    await dd.revoke(world.db, world.who["center"], d.id, "服务质量投诉属实")
    with pytest.raises(RuleViolation) as rv:
        await dd.place_order(world.db, world.settings, world.who["buyer_a"], req)
    assert rv.value.code == "not_designated"


async def test_the_regulator_sees_applications_left_unreviewed_past_seven_working_days(
    world: World, frozen: datetime, client: object
) -> None:
    from typing import Any

    from tests.mall.test_pages import HTML, login_ok

    c: Any = client
    await dd.apply(world.db, world.settings, world.who["supplier_y"], REPAIR, "410100", PRICES)
    await login_ok(c, "regulator")
    assert "没有逾期未审核的定点申请" in (await c.get("/oversight", headers=HTML)).text
    # Thursday Sep 24 + 7 working days is Monday Oct 12 (中秋 and 国庆 between): not late on Oct 12
    clock.clock.freeze(clock.now() + timedelta(days=18, hours=13))  # Oct 12, 23:00 in Beijing
    assert "没有逾期未审核的定点申请" in (await c.get("/oversight", headers=HTML)).text
    clock.clock.freeze(clock.now() + timedelta(hours=1))  # Oct 13, 00:00 in Beijing
    page = (await c.get("/oversight", headers=HTML)).text
    assert "逾期未审核的定点申请" in page and "乙供应商有限公司" in page and "没有逾期未审核" not in page

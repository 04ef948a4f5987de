"""The agreement and designated-service pages for every role, and their forms' refusals (a message
on the page, nothing written, never a 500)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from catalog import agreements as ag
from catalog import designated as dd
from mall.core import clock
from tests.catalog.test_agreements import vehicles
from tests.factories import World, frozen_at
from tests.mall.test_pages import HTML, assert_page, login_ok, post_form


async def test_agreement_and_designated_pages_for_every_role(client: Any, world: World) -> None:
    a = await vehicles(world)
    draft = await world.agreement("打印机协议供货", "A02021003")
    await dd.apply(
        world.db,
        world.settings,
        world.who["supplier_y"],
        "C23090100",
        "410100",
        [dd.PriceItemDraft("印刷", "页", "0.20")],
    )

    # Anonymous: agreements in force and designated suppliers with their prices are public; drafts
    # and applications are not.
    text = assert_page(await client.get("/agreements", headers=HTML))
    assert a.title in text and draft.title not in text
    text = assert_page(await client.get(f"/agreements/{a.id}", headers=HTML))
    assert "帕萨特" in text and "直接选定下单" not in text and "成交结果汇总" not in text
    assert_page(await client.get(f"/agreements/{draft.id}", headers=HTML), 404)
    await world.meeting_room("supplier_x")
    text = assert_page(await client.get("/designated", headers=HTML, follow_redirects=False))
    assert "中型会议室（半天）" in text and "¥1,500.00" in text  # who, where and at what price
    assert "乙供应商有限公司" not in text and "待审核" not in text  # an application is not public
    assert "budget_line_id" not in text and "申请成为定点供应商" not in text  # nothing to do but look

    await login_ok(client, "buyer_a")
    text = assert_page(await client.get(f"/agreements/{a.id}", headers=HTML))
    assert "直接选定下单" in text and "发起二次竞价" in text
    text = assert_page(await client.get(f"/procedures/new?kind=inquiry&agreement={a.id}", headers=HTML))
    assert "二次竞价" in text and a.number in text
    assert_page(await client.get("/procedures/new?agreement=not-a-uuid", headers=HTML), 404)
    text = assert_page(await client.get("/designated", headers=HTML))
    assert "乙供应商有限公司" not in text  # an application is not a designation
    # a refused order form: a message, no order
    r = await post_form(client, f"/agreements/{a.id}/order", {"product_id": "x", "quantity": "1"})
    assert r.status_code == 303
    assert "请选择协议产品和预算指标" in assert_page(await client.get(f"/agreements/{a.id}", headers=HTML))

    await login_ok(client, "supplier_y")
    text = assert_page(await client.get("/designated", headers=HTML))
    assert "待审核" in text and "申请成为定点供应商" in text
    r = await post_form(
        client,
        "/designated/apply",
        {
            "category_code": "A02010105",
            "region_code": "410100",
            "item_name_1": "x",
            "item_unit_1": "次",
            "item_price_1": "1",
        },
    )
    assert r.status_code == 303
    assert "不是服务类品目" in assert_page(await client.get("/designated", headers=HTML))

    await login_ok(client, "center")
    text = assert_page(await client.get(f"/agreements/{draft.id}", headers=HTML))
    assert "使协议生效" in text and "增加入围供应商" in text
    text = assert_page(await client.get(f"/agreements/{a.id}", headers=HTML))
    assert "成交结果汇总" in text and "补充入围" in text
    r = await post_form(
        client,
        "/agreements/new",
        {"title": "x", "kind": "goods", "category_code": "A02030000", "starts_on": "明天", "ends_on": ""},
    )
    assert r.status_code == 303 and r.headers["location"] == "/agreements/new"
    assert "开始日期应为" in assert_page(await client.get("/agreements/new", headers=HTML))
    text = assert_page(await client.get("/designated", headers=HTML))
    assert "待审核的定点申请（1）" in text and "直接确定定点供应商" in text

    await login_ok(client, "regulator")
    assert "成交结果汇总" in assert_page(await client.get(f"/agreements/{a.id}", headers=HTML))
    assert_page(await client.get("/designated", headers=HTML))

    async with world.db.read() as s:  # nothing was written by the refused forms
        assert await s.scalar(select(func.count()).select_from(ag.Agreement)) == 2
        assert await s.scalar(select(func.count()).select_from(dd.Designation)) == 2  # the two made above


async def test_the_summary_of_an_agreement_ended_before_the_spring_festival_is_due_after_it(
    client: Any, world: World
) -> None:
    with frozen_at(datetime(2026, 2, 6, 2, 0, tzinfo=clock.UTC)):  # Friday 10:00 in Beijing
        a = await vehicles(world)
        await ag.terminate(world.db, world.who["center"], a.id, "供应商集体违约，协议终止")
        await login_ok(client, "center")
        text = assert_page(await client.get(f"/agreements/{a.id}", headers=HTML))
    # 10 working days: Feb 9–13, Saturday Feb 14, then (Feb 15–23 rest) Feb 24–27
    assert "汇总应于 2026-02-27 前公开（10个工作日）" in text

"""The 工作台 and the next-step boxes: each business role lands on what waits for it, an order's page
tells every party who acts next, and nobody's board shows another's business."""

from __future__ import annotations

from typing import Any

from tests.factories import World
from tests.mall.test_pages import HTML, assert_page, login, login_ok
from tests.mall.test_supermarket_flow import checkout


def _sections(page: str) -> tuple[str, str]:
    """The board's two lists: what waits for the viewer, and what the viewer waits for."""
    mine, _, theirs = page.partition('id="waiting"')
    return mine.partition('id="yours"')[2], theirs


async def test_only_the_business_roles_have_a_workbench(client: Any, world: World) -> None:
    # (where each role lands after login: tests/mall/test_pages.py)
    assert await login_ok(client, "sysadmin") == "/admin"
    assert_page(await client.get("/workbench", headers=HTML), 403)
    client.cookies.clear()
    assert "/login?next=/workbench" in assert_page(await client.get("/workbench", headers=HTML), 401)


async def test_an_order_moves_from_one_board_to_the_other(client: Any, world: World) -> None:
    r = await checkout(client, world, [("laptop", "1")])
    assert r.status_code == 201, r.text
    order = r.json()["orders"][0]
    no, oid = order["order_no"], order["id"]

    await login(client, "supplier_x")
    mine, theirs = _sections(assert_page(await client.get("/workbench", headers=HTML)))
    assert no in mine and no not in theirs
    assert "轮到您" in mine and "确认订单" in mine and "期限" in mine

    await login(client, "buyer_a")
    mine, theirs = _sections(assert_page(await client.get("/workbench", headers=HTML)))
    assert no in theirs and no not in mine
    assert "等待供应商" in theirs

    # the other supplier sees none of it
    await login(client, "supplier_y")
    assert no not in assert_page(await client.get("/workbench", headers=HTML))

    r = await client.post(f"/api/orders/{oid}/confirm", headers=world.h("supplier_x"))
    assert r.status_code == 200, r.text

    # both parties sign, the supplier first: the supplier's turn on its board
    await login(client, "supplier_x")
    page = assert_page(await client.get(f"/orders/{oid}", headers=HTML))
    assert "当前环节：<strong>待双方签署合同</strong>" in page and "以本单位证书签署合同" in page
    mine, theirs = _sections(assert_page(await client.get("/workbench", headers=HTML)))
    assert no in mine and no not in theirs
    r = await client.post(f"/api/orders/{oid}/sign", headers=world.h("supplier_x"))
    assert r.status_code == 200, r.text

    # the supplier's order page says whom it waits for, and its board moved the order over
    page = assert_page(await client.get(f"/orders/{oid}", headers=HTML))
    assert "等待<strong>采购人</strong>" in page and "等待对方签署" in page
    mine, theirs = _sections(assert_page(await client.get("/workbench", headers=HTML)))
    assert no in theirs and no not in mine

    await login(client, "buyer_a")
    page = assert_page(await client.get(f"/orders/{oid}", headers=HTML))
    assert "轮到您</span> 待采购人以本单位证书签署电子合同" in page and "个工作日内完成" in page
    mine, _ = _sections(assert_page(await client.get("/workbench", headers=HTML)))
    assert no in mine and "签署电子合同" in mine
    r = await client.post(f"/api/orders/{oid}/sign", headers=world.h("buyer_a"))
    assert r.status_code == 200 and r.json()["status"] == "signed", r.text
    page = assert_page(await client.get(f"/orders/{oid}", headers=HTML))
    assert "当前环节：<strong>待备案合同</strong>" in page and "备案合同" in page
    mine, _ = _sections(assert_page(await client.get("/workbench", headers=HTML)))
    assert no in mine and "采购人备案合同" in mine

    # the regulator's order page names whom the order waits for, never "轮到您"
    await login(client, "regulator")
    page = assert_page(await client.get(f"/orders/{oid}", headers=HTML))
    assert "等待<strong>采购人</strong>" in page and "轮到您" not in page


async def test_the_center_reviews_listings_from_its_board(client: Any, world: World) -> None:
    waiting = await world.listing("scanner", "supplier_y", "900.00", live=False)
    await login(client, "center")
    mine, _ = _sections(assert_page(await client.get("/workbench", headers=HTML)))
    assert waiting.name in mine and "审核商品" in mine and "期限" in mine
    queue = assert_page(await client.get("/center/listings", headers=HTML))
    assert "已等待 0 天" in queue and "审核期限" in queue

    await login(client, "supplier_y")
    _, theirs = _sections(assert_page(await client.get("/workbench", headers=HTML)))
    assert waiting.name in theirs and "等待集中采购机构" in theirs
    page = assert_page(await client.get(f"/supplier/listings/{waiting.id}/edit", headers=HTML))
    assert "当前环节：<strong>待审核</strong>" in page


async def test_the_workbench_is_an_api_too(client: Any, world: World) -> None:
    r = await checkout(client, world, [("laptop", "1")])
    no = r.json()["orders"][0]["order_no"]
    r = await client.get("/api/workbench", headers=world.h("supplier_x"))
    assert r.status_code == 200, r.text
    [item] = [i for i in r.json()["yours"] if no in i["title"]]
    assert item["kind"] == "订单" and item["amount"] == "5000.00"
    assert item["next"]["actor"] == "supplier" and item["next"]["due"] and not item["next"]["overdue"]
    r = await client.get("/api/workbench", headers=world.h("buyer_a"))
    assert [i["next"]["actor_label"] for i in r.json()["waiting"] if no in i["title"]] == ["供应商"]
    assert (await client.get("/api/workbench", headers=world.h("auditor"))).status_code == 403
    assert (await client.get("/api/workbench")).status_code == 401

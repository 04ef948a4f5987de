"""更正: a published deal's description of its goods is corrected by a new record that amends it,
never by changing the record; amounts, quantities and the parties cannot be corrected."""

from __future__ import annotations

from typing import Any

from mall.ledger import disclosure
from tests.factories import World
from tests.mall.test_pages import HTML, assert_page, login, post_form
from tests.mall.test_supermarket_flow import checkout
from tests.security.login_helpers import assert_problem


async def _deal(client: Any, world: World) -> str:
    r = await checkout(client, world, [("laptop", "2")])
    oid = r.json()["orders"][0]["id"]
    r = await client.post(f"/api/orders/{oid}/confirm", headers=world.h("supplier_x"))
    assert r.status_code == 200, r.text
    await disclosure.publish_pending(world.db)
    return str(oid)


async def test_a_correction_amends_the_deal_with_the_whole_record_as_corrected(
    client: Any, world: World
) -> None:
    oid = await _deal(client, world)
    body = {
        "reason": "供应商填报型号有误，经核对合同更正",
        "lines": [{"line_no": 1, "spec_model": "ThinkPad X1-2026"}],
    }
    r = await client.post(f"/api/orders/{oid}/correction", json=body, headers=world.h("buyer_a"))
    assert r.status_code == 200, r.text
    assert r.json()["lines"][0]["spec_model"] == "ThinkPad X1-2026"
    assert await disclosure.publish_pending(world.db) == 1
    feed = (await client.get("/api/disclosures")).json()["items"]
    deal, fix = feed[0], feed[1]
    assert (deal["kind"], fix["kind"]) == ("deal", "correction")
    assert fix["amends"] == deal["id"] and fix["order_no"] == deal["order_no"]
    assert (
        fix["lines"][0]["spec_model"] == "ThinkPad X1-2026"
        and deal["lines"][0]["spec_model"] == "型号-laptop"
    )
    assert fix["total_amount"] == deal["total_amount"] == "10000.00"
    assert fix["corrections"] == [
        {"line_no": 1, "field": "spec_model", "from": "型号-laptop", "to": "ThinkPad X1-2026"}
    ]
    assert "供应商填报型号有误" not in str(fix)  # the reason a person wrote is not published
    assert (await disclosure.verify_chain(world.db)).ok
    # the public page says what it amends; the home page's deal count and amount are unchanged
    page = assert_page(await client.get(f"/disclosures/{fix['seq']}", headers=HTML))
    assert f"第 {deal['seq']} 号成交公告" in page and "ThinkPad X1-2026" in page
    home = assert_page(await client.get("/", headers=HTML))
    assert "¥10,000.00" in home
    # the order's history keeps who corrected what, and why
    await login(client, "buyer_a")
    page = assert_page(await client.get(f"/orders/{oid}", headers=HTML))
    assert "更正成交记录" in page and "型号-laptop → ThinkPad X1-2026" in page


async def test_what_cannot_be_corrected_is_refused_and_nothing_is_published(
    client: Any, world: World
) -> None:
    oid = await _deal(client, world)
    url = f"/api/orders/{oid}/correction"
    h = world.h("buyer_a")
    same = {"reason": "核对", "lines": [{"line_no": 1, "spec_model": "型号-laptop"}]}
    assert_problem(await client.post(url, json=same, headers=h), 400, "correction_empty")
    money = {"reason": "核对", "lines": [{"line_no": 1, "unit_price": "1.00"}]}
    assert (await client.post(url, json=money, headers=h)).status_code == 400  # not a correctable field
    missing = {"reason": "核对", "lines": [{"line_no": 9, "brand": "联想"}]}
    assert_problem(await client.post(url, json=missing, headers=h), 400, "correction_invalid")
    blank = {"reason": "核对", "lines": [{"line_no": 1, "item_name": ""}]}
    assert (await client.post(url, json=blank, headers=h)).status_code == 400
    control = {"reason": "核对", "lines": [{"line_no": 1, "brand": "联想\u0007"}]}
    assert (await client.post(url, json=control, headers=h)).status_code == 400
    fix = {"reason": "核对", "lines": [{"line_no": 1, "brand": "联想"}]}
    assert_problem(await client.post(url, json=fix, headers=world.h("supplier_x")), 403, "forbidden")
    assert_problem(await client.post(url, json=fix, headers=world.h("buyer_b")), 404, "order_not_found")
    # an order not yet confirmed has no record to correct
    r = await checkout(client, world, [("desk", "1")])
    placed = r.json()["orders"][0]["id"]
    r = await client.post(f"/api/orders/{placed}/correction", json=fix, headers=h)
    assert_problem(r, 409, "invalid_state")
    assert await disclosure.publish_pending(world.db) == 0
    # the regulator may correct too, and so may the procurement center
    r = await client.post(url, json=fix, headers=world.h("regulator"))
    assert r.status_code == 200, r.text
    assert await disclosure.publish_pending(world.db) == 1
    spec = {"reason": "核对合同", "lines": [{"line_no": 1, "spec_model": "ThinkPad X1-2026 i7"}]}
    r = await client.post(url, json=spec, headers=world.h("center"))
    assert r.status_code == 200, r.text
    assert await disclosure.publish_pending(world.db) == 1
    events = (await client.get(f"/api/orders/{oid}/events", headers=world.h("center"))).json()
    rows = events["items"] if isinstance(events, dict) else events
    assert rows[-1]["action"] == "corrected" and "采购中心" in rows[-1]["actor"]


async def test_the_order_page_corrects_through_its_form(client: Any, world: World) -> None:
    oid = await _deal(client, world)
    await login(client, "buyer_a")
    page = assert_page(await client.get(f"/orders/{oid}", headers=HTML))
    assert 'action="/orders/' + oid + '/correct"' in page and 'value="型号-laptop"' in page
    form = {"item_name_1": "商品laptop", "brand_1": "品牌laptop", "spec_model_1": "X1-2026", "unit_1": "台"}
    r = await post_form(client, f"/orders/{oid}/correct", {**form, "reason": ""})
    page = assert_page(await client.get(f"/orders/{oid}", headers=HTML))
    assert "请填写" in page and 'value="X1-2026"' in page  # refused, what was typed kept
    r = await post_form(client, f"/orders/{oid}/correct", {**form, "reason": "按合同更正型号"})
    assert r.status_code == 303
    page = assert_page(await client.get(f"/orders/{oid}", headers=HTML))
    assert "已更正，更正公告将自动公开" in page and "型号-laptop → X1-2026" in page
    # the supplier has no such form
    await login(client, "supplier_x")
    assert "/correct" not in assert_page(await client.get(f"/orders/{oid}", headers=HTML))
    # the procurement center corrects through the same form
    await login(client, "center")
    r = await post_form(
        client, f"/orders/{oid}/correct", {**form, "unit_1": "套", "reason": "按合同更正单位"}
    )
    assert r.status_code == 303
    page = assert_page(await client.get(f"/orders/{oid}", headers=HTML))
    assert "已更正，更正公告将自动公开" in page and "台 → 套" in page

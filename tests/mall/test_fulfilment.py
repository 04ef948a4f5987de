"""Delivery and acceptance: the quantity arithmetic, waybill numbers and inspectors' names; partial
shipments and receipts with the shortfall shipped again; the acceptance report that passes the order
or refuses lines back to the supplier (and stays on record); its PDF in the file store."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from catalog import designated as dd
from mall import orders
from mall.core.errors import Conflict, InvalidInput, RuleViolation
from mall.core.models import Outbox
from mall.orders import fulfilment
from mall.orders.fulfilment import LineVerdict
from mall.orders.models import AcceptanceReport, Delivery, DeliveryLine, DeliveryStatus, OrderStatus
from tests.factories import World
from tests.mall.test_pages import HTML, assert_page, login_ok, post_form
from tests.mall.test_payments import contracted, file_contract
from tests.security.login_helpers import assert_problem
from tests.security.test_11_text_fields import credit_code

D = Decimal
A, B = uuid.uuid4(), uuid.uuid4()


def plain_progress(**lines: tuple[str, str, str]) -> fulfilment.Progress:
    """Lines a and b: (ordered, in transit, kept)."""
    ids = {"a": A, "b": B}
    return fulfilment.Progress(
        {
            ids[k]: fulfilment.LineState(n, D(o), D(t), D(k_))
            for n, (k, (o, t, k_)) in enumerate(lines.items(), 1)
        }
    )


async def acceptance_notices(world: World, order_id: uuid.UUID) -> list[dict[str, Any]]:
    """The 履约验收公告 staged for the order."""
    async with world.db.read() as s:
        rows = (await s.execute(select(Outbox).where(Outbox.topic == "notice"))).scalars().all()
    return [
        r.payload
        for r in rows
        if r.payload.get("order_id") == str(order_id) and r.payload["kind"] == "acceptance"
    ]


# ------------------------------------------------------------------ pure rules


def test_what_remains_is_ordered_less_in_transit_less_kept() -> None:
    p = plain_progress(a=("10", "3", "4"), b=("2", "0", "0"))
    assert [s.remaining for s in p.lines.values()] == [D(3), D(2)]
    assert fulfilment.shipment_plan(p, None) == {A: D(3), B: D(2)}
    assert fulfilment.shipment_plan(p, {A: D(3)}) == {A: D(3)}
    with pytest.raises(RuleViolation) as e:
        fulfilment.shipment_plan(p, {A: D("3.001")})
    assert e.value.code == "over_shipment"
    with pytest.raises(InvalidInput):
        fulfilment.shipment_plan(p, {uuid.uuid4(): D(1)})
    done = plain_progress(a=("10", "4", "6"), b=("2", "2", "0"))
    with pytest.raises(RuleViolation) as e:
        fulfilment.shipment_plan(done, None)
    assert e.value.code == "nothing_to_ship"


def test_the_status_follows_the_quantities() -> None:
    assert plain_progress(a=("2", "0", "0"), b=("1", "0", "0")).status() == OrderStatus.CONTRACTED
    assert plain_progress(a=("2", "1", "0"), b=("1", "0", "0")).status() == OrderStatus.SHIPPED
    assert plain_progress(a=("2", "0", "2"), b=("1", "0", "0")).status() == OrderStatus.SHIPPED
    assert plain_progress(a=("2", "0", "2"), b=("1", "0", "1")).status() == OrderStatus.RECEIVED


def test_a_receipt_is_at_most_what_the_delivery_carried() -> None:
    d = Delivery(
        status=DeliveryStatus.SHIPPED,
        lines=[
            DeliveryLine(order_line_id=A, line_no=1, quantity=D(5)),
            DeliveryLine(order_line_id=B, line_no=2, quantity=D(1)),
        ],
    )
    assert fulfilment.receipt_plan(d, None) == {A: D(5), B: D(1)}
    assert fulfilment.receipt_plan(d, {A: D(4)}) == {A: D(4), B: D(0)}  # a line left out: nothing came
    with pytest.raises(RuleViolation) as e:
        fulfilment.receipt_plan(d, {A: D(6)})
    assert e.value.code == "over_receipt"


def test_a_failed_line_needs_a_reason_and_refuses_at_most_what_was_kept() -> None:
    p = plain_progress(a=("4", "0", "4"), b=("1", "0", "1"))
    out = fulfilment.verdicts_for(p, {A: LineVerdict(False, "外壳破损")})
    assert out[A].refused == D(4) and out[B].passed
    assert fulfilment.verdicts_for(p, {A: LineVerdict(False, "外壳破损", D(1))})[A].refused == D(1)
    with pytest.raises(InvalidInput):
        fulfilment.verdicts_for(p, {A: LineVerdict(False, "")})
    with pytest.raises(RuleViolation):
        fulfilment.verdicts_for(p, {A: LineVerdict(False, "外壳破损", D(5))})


def test_waybill_numbers_and_inspectors_are_checked() -> None:
    assert fulfilment.tracking_number("sf1234567890") == "SF1234567890"
    assert fulfilment.tracking_number("JDVA01234567890-1-1") == "JDVA01234567890-1-1"
    assert fulfilment.tracking_number("") == ""
    for bad in ("SF12", "SF 1234567", "-SF1234567", "SF1234567-", "顺丰1234567", "X" * 41):
        with pytest.raises(InvalidInput):
            fulfilment.tracking_number(bad)
    assert fulfilment.inspector_names("王建国、李华\n张伟") == ["王建国", "李华", "张伟"]
    for names in ([], ["王"], ["王建国", "王建国"], ["王\u202e国"], [f"验收员{n}" for n in range(11)]):
        with pytest.raises(InvalidInput):
            fulfilment.inspector_names(names)


# ------------------------------------------------------------------ service


async def test_partial_shipments_and_receipts_then_refusal_and_redelivery(world: World) -> None:
    supplier, buyer = world.who["supplier_x"], world.who["buyer_a"]
    oid = await contracted(world, "laptop", "5")
    async with world.db.read() as s:
        line_id = (await orders.get_order(s, buyer, oid)).lines[0].id

    first = await orders.ship(
        world.db, supplier, oid, "首批", carrier="顺丰速运", tracking_no="sf1234567890", lines={line_id: "3"}
    )
    assert (first.seq, first.tracking_no) == (1, "SF1234567890")
    with pytest.raises(RuleViolation):  # only 2 remain
        await orders.ship(world.db, supplier, oid, lines={line_id: "3"})
    with pytest.raises(InvalidInput):  # a waybill needs its carrier
        await orders.ship(world.db, supplier, oid, tracking_no="SF1234567891", lines={line_id: "1"})
    with pytest.raises(InvalidInput) as half:  # a laptop moves whole: goods are never shipped in halves
        await orders.ship(world.db, supplier, oid, lines={line_id: "1.5"})
    assert half.value.code == "invalid_quantity" and "整数" in half.value.detail
    # 2 of the 3 arrive: the missing one goes back to what remains.
    order = await orders.receive(world.db, buyer, oid, delivery_id=first.id, lines={line_id: "2"})
    assert order.status == OrderStatus.SHIPPED
    with pytest.raises(Conflict):
        await orders.receive(world.db, buyer, oid, delivery_id=first.id)
    rest = await orders.ship(world.db, supplier, oid, carrier="京东物流", tracking_no="JD0001234567")
    assert [x.quantity for x in rest.lines] == [D(3)]  # everything that remains: 5 − 2 kept
    order = await orders.receive(world.db, buyer, oid)
    assert order.status == OrderStatus.RECEIVED

    # Acceptance refuses 1: back to the supplier; the refused report stays.
    refused = await orders.accept(
        world.db,
        world.settings,
        buyer,
        oid,
        inspectors=["王建国", "李华"],
        score=None,
        lines={line_id: LineVerdict(False, "屏幕有坏点", D(1))},
    )
    assert refused.result == "refused"
    async with world.db.read() as s:
        order = await orders.get_order(s, buyer, oid)
        p = await fulfilment.progress(s, order)
    assert order.status == OrderStatus.SHIPPED and p.lines[line_id].remaining == D(1)
    with pytest.raises(Conflict):  # not everything is there
        await orders.accept(world.db, world.settings, buyer, oid, inspectors=["王建国"], score=5)
    await orders.ship(world.db, supplier, oid, "更换一台", carrier="顺丰速运", tracking_no="SF1234567899")
    await orders.receive(world.db, buyer, oid)
    passed = await orders.accept(
        world.db, world.settings, buyer, oid, inspectors="王建国、李华", score=5, comment="更换及时"
    )
    assert (passed.result, passed.seq, [x.quantity for x in passed.lines]) == ("passed", 2, [D(5)])
    async with world.db.read() as s:
        order = await orders.get_order(s, buyer, oid)
        reports = await fulfilment.reports_of(s, oid)
        actions = [e.action for e in await orders.events_of(s, oid)]
    assert order.status == OrderStatus.ACCEPTED and order.evaluation_score == 5
    assert [r.result for r in reports] == ["refused", "passed"]
    assert actions.count("shipped") == 3 and actions.count("received") == 3
    assert actions.count("acceptance_refused") == 1 and actions[-1] == "accepted"
    assert await acceptance_notices(world, oid) == []  # goods: no 履约验收公告


async def test_a_call_without_lines_ships_and_receives_everything(world: World) -> None:
    supplier, buyer = world.who["supplier_x"], world.who["buyer_a"]
    oid = await contracted(world, "printer", "2")
    await orders.ship(world.db, supplier, oid, "顺丰 SF100")
    order = await orders.receive(world.db, buyer, oid)
    assert order.status == OrderStatus.RECEIVED and order.received_at is not None
    with pytest.raises(InvalidInput):
        await orders.accept(world.db, world.settings, buyer, oid, inspectors=[], score=5)
    with pytest.raises(InvalidInput):  # a passing report evaluates the supplier
        await orders.accept(world.db, world.settings, buyer, oid, inspectors=["王建国"], score=None)


async def test_a_service_order_accepted_stages_its_acceptance_notice_without_names(world: World) -> None:
    supplier = world.who["supplier_y"]
    buyer = world.who["buyer_a"]
    center = world.who["center"]
    d = await dd.designate(
        world.db,
        center,
        await credit_code(world, "supplier_y"),
        "C23120301",
        "410100",
        [dd.PriceItemDraft("保养", "次", "300.00")],
    )
    async with world.db.read() as s:
        found = await dd.get(s, d.id)
    req = dd.ServiceOrderRequest(
        designation_id=d.id,
        budget_line_id=world.lines["a1"].id,
        items=((found.items[0].id, "2"),),
        idempotency_key="acceptance-notice-1",
        note="公务车保养",
    )
    order, _ = await dd.place_order(world.db, world.settings, buyer, req)
    await orders.confirm(world.db, supplier, order.id)
    await file_contract(world, order.id, supplier, buyer)
    await orders.ship(world.db, supplier, order.id, "已完成保养")
    await orders.receive(world.db, buyer, order.id)
    await orders.accept(
        world.db, world.settings, buyer, order.id, inspectors=["赵秀英"], score=4, comment="联系赵秀英"
    )
    (notice,) = await acceptance_notices(world, order.id)
    assert notice["body"]["result"] == "验收合格" and notice["body"]["order_no"] == order.order_no
    assert "赵秀英" not in str(notice)


# ------------------------------------------------------------------ API and PDF


async def test_the_api_ships_receives_and_accepts_and_the_report_prints(client: Any, world: World) -> None:
    oid = await contracted(world, "laptop", "2")
    sup, buy = world.h("supplier_x"), world.h("buyer_a")
    base = f"/api/orders/{oid}"
    line_id = (await client.get(base, headers=buy)).json()["lines"][0]["id"]
    bad = {"carrier": "顺丰速运", "tracking_no": "SF 12", "lines": [{"line_id": line_id, "quantity": "1"}]}
    assert_problem(await client.post(f"{base}/ship", json=bad, headers=sup), 400, "invalid_tracking_no")
    too_many = {"lines": [{"line_id": line_id, "quantity": "3"}]}
    assert_problem(await client.post(f"{base}/ship", json=too_many, headers=sup), 422, "over_shipment")
    r = await client.post(f"{base}/ship", json={**bad, "tracking_no": "SF1234567890"}, headers=sup)
    assert r.status_code == 200 and r.json()["status"] == "shipped", r.text
    view = (await client.get(f"{base}/fulfilment", headers=buy)).json()
    assert view["lines"][0] == {
        "line_id": line_id,
        "line_no": 1,
        "ordered": "2",
        "in_transit": "1",
        "kept": "0",
        "remaining": "1",
    }
    delivery = view["deliveries"][0]["id"]
    r = await client.post(f"{base}/receive", json={"delivery_id": delivery}, headers=buy)
    assert r.status_code == 200 and r.json()["status"] == "shipped"
    assert (await client.post(f"{base}/ship", json={"note": "余下一台"}, headers=sup)).status_code == 200
    r = await client.post(f"{base}/receive", headers=buy)
    assert r.status_code == 200 and r.json()["status"] == "received"
    accept = {"inspectors": ["王建国"], "score": 5, "lines": [{"line_id": line_id, "passed": True}]}
    r = await client.post(f"{base}/accept", json=accept, headers=buy)
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    report = (await client.get(f"{base}/fulfilment", headers=sup)).json()["acceptance_reports"][0]
    assert report["inspectors"] == ["王建国"] and report["result"] == "passed"
    pdf = await client.get(report["pdf_url"], headers=buy)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    again = await client.get(report["pdf_url"], headers=sup)
    assert again.content == pdf.content  # made once, kept in the file store
    assert (await client.get(report["pdf_url"], headers=world.h("buyer_b"))).status_code == 404
    async with world.db.read() as s:
        assert await s.get(AcceptanceReport, uuid.UUID(report["id"])) is not None


async def test_the_order_page_ships_part_receives_short_and_shows_the_record(
    client: Any, world: World
) -> None:
    oid = await contracted(world, "laptop", "3")
    async with world.db.read() as s:
        line_id = (await orders.get_order(s, world.who["buyer_a"], oid)).lines[0].id
    page = f"/orders/{oid}"
    await login_ok(client, "supplier_x")
    form = {f"qty_{line_id}": "2", "carrier": "顺丰速运", "tracking_no": "SF1234567890", "note": ""}
    assert (await post_form(client, f"{page}/ship", form, referer=page)).status_code == 303
    text = assert_page(await client.get(page, headers=HTML))
    assert "SF1234567890" in text and "待发 1 台" in text
    await login_ok(client, "buyer_a")
    async with world.db.read() as s:
        (delivery,) = await fulfilment.deliveries_of(s, oid)
    form = {"delivery_id": str(delivery.id), f"got_{line_id}": "1", "note": ""}
    assert (await post_form(client, f"{page}/receive", form, referer=page)).status_code == 303
    async with world.db.read() as s:
        p = await fulfilment.progress(s, await orders.get_order(s, world.who["buyer_a"], oid))
    assert (p.lines[line_id].kept, p.lines[line_id].remaining) == (D(1), D(2))
    assert "第 1 批" in assert_page(await client.get(page, headers=HTML))

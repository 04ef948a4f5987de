"""The supermarket flow through the HTTP API: cart → checkout → confirm → ... → paid, and its refusals."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from mall import orders
from mall.budgets.models import BudgetLine
from mall.core import clock
from mall.core.errors import InvalidInput
from mall.ledger import disclosure
from tests.factories import World, sign_and_file
from tests.mall.test_payments import settle
from tests.security.login_helpers import assert_problem


async def checkout(
    client: Any,
    world: World,
    items: list[tuple[str, str]],
    key: str | None = None,
    line: str = "a1",
    who: str = "buyer_a",
    **fields: str,
) -> Any:
    """POST /api/checkout of these (listing key, quantity) items; `fields` go into the body as well."""
    body = {
        "budget_line_id": str(world.lines[line].id),
        "items": [{"listing_id": str(world.listings[k].id), "quantity": q} for k, q in items],
        **fields,
    }
    return await client.post(
        "/api/checkout", json=body, headers={**world.h(who), "Idempotency-Key": key or uuid.uuid4().hex}
    )


async def line_state(world: World, key: str = "a1") -> BudgetLine:
    async with world.db.read() as s:
        line = await s.get(BudgetLine, world.lines[key].id)
        assert line is not None
        return line


async def test_checkout_makes_one_order_per_supplier_and_reserves_budget(client: Any, world: World) -> None:
    r = await checkout(client, world, [("laptop", "2"), ("printer", "1"), ("desk", "3")])
    assert r.status_code == 201, r.text
    placed = r.json()["orders"]
    assert len(placed) == 2
    by_supplier = {o["supplier_name"]: o for o in placed}
    assert by_supplier["甲供应商有限公司"]["total_amount"] == "11200.00"
    assert by_supplier["乙供应商有限公司"]["total_amount"] == "2400.00"
    assert all(o["status"] == "placed" for o in placed)
    line = await line_state(world)
    assert line.reserved == Decimal("13600.00")
    assert line.available == Decimal("486400.00")


async def test_cart_then_checkout_from_cart(client: Any, world: World) -> None:
    h = world.h("buyer_a")
    r = await client.post(
        "/api/cart/items", json={"listing_id": str(world.listings["desk"].id), "quantity": "2"}, headers=h
    )
    assert r.status_code == 204, r.text
    r = await client.get("/api/cart", headers=h)
    assert [(x["name"], x["quantity"], x["amount"]) for x in r.json()] == [("商品desk", "2", "1600.00")]
    r = await client.post(
        "/api/checkout",
        json={"budget_line_id": str(world.lines["a1"].id)},
        headers={**h, "Idempotency-Key": "cart-checkout-1"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["orders"][0]["total_amount"] == "1600.00"
    assert (await client.get("/api/cart", headers=h)).json() == []  # bought items leave the cart


async def test_double_submitted_checkout_makes_one_order(client: Any, world: World) -> None:
    first = await checkout(client, world, [("laptop", "1")], key="same-key-123")
    second = await checkout(client, world, [("laptop", "1")], key="same-key-123")
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["replayed"] is True
    assert [o["id"] for o in first.json()["orders"]] == [o["id"] for o in second.json()["orders"]]
    assert (await line_state(world)).reserved == Decimal("5000.00")
    # The same key with a different request is refused, not silently replayed.
    other = await checkout(client, world, [("laptop", "2")], key="same-key-123")
    assert_problem(other, 409, "idempotency_key_reused")


async def test_order_at_or_above_decentralized_threshold_is_refused(client: Any, world: World) -> None:
    await world.budget("big", "buyer_a", "3000000.00")
    # 200 × 5000 = 1,000,000: exactly the threshold, refused ("at or above").
    r = await checkout(client, world, [("laptop", "200")], line="big")
    assert_problem(r, 422, "order_above_threshold")
    assert (await line_state(world, "big")).reserved == Decimal(0)
    # Just below passes.
    r = await checkout(client, world, [("laptop", "199")], line="big")
    assert r.status_code == 201, r.text


async def test_order_the_budget_cannot_cover_is_refused_and_nothing_is_written(
    client: Any, world: World
) -> None:
    await world.budget("small", "buyer_a", "6000.00")
    r = await checkout(client, world, [("laptop", "1"), ("desk", "2")], line="small")  # 5000 + 1600 > 6000
    assert_problem(r, 422, "budget_insufficient")
    assert (await line_state(world, "small")).reserved == Decimal(0)
    r = await client.get("/api/orders", headers=world.h("buyer_a"))
    assert r.json()["total"] == 0  # all or nothing: no order for the first supplier either


async def test_bad_checkout_inputs_get_problem_json(client: Any, world: World) -> None:
    r = await checkout(client, world, [("laptop", "-1")])
    assert_problem(r, 400, "invalid_quantity")
    r = await checkout(client, world, [("laptop", "1.2345")])
    assert_problem(r, 400, "invalid_quantity")
    r = await checkout(client, world, [("laptop", "1")], key="short")
    assert_problem(r, 400, "idempotency_key_invalid")
    r = await client.post(
        "/api/checkout",
        json={"budget_line_id": "nope"},
        headers={**world.h("buyer_a"), "Idempotency-Key": "abcdefgh1"},
    )
    assert_problem(r, 400, "invalid_input")
    # Another unit's budget line is not usable (and not even acknowledged).
    r = await checkout(client, world, [("laptop", "1")], line="b1")
    assert_problem(r, 404, "budget_line_not_found")
    r = await client.post(
        "/api/checkout",
        json={"budget_line_id": str(world.lines["a1"].id)},
        headers={**world.h("buyer_a"), "Idempotency-Key": "empty-cart-1"},
    )
    assert_problem(r, 400, "cart_empty")


async def test_last_years_budget_line_is_refused(client: Any, world: World) -> None:
    await world.budget("old", "buyer_a", "100000.00", year=clock.local_date(clock.now()).year - 1)
    r = await checkout(client, world, [("laptop", "1")], line="old")
    assert_problem(r, 422, "budget_wrong_year")


async def test_full_flow_to_payment_with_lower_price(client: Any, world: World) -> None:
    r = await checkout(client, world, [("laptop", "2")])
    order = r.json()["orders"][0]
    oid, line_id = order["id"], order["lines"][0]["id"]
    sup, buy = world.h("supplier_x"), world.h("buyer_a")

    # The supplier may not raise the price ...
    r = await client.post(f"/api/orders/{oid}/confirm", json={"prices": {line_id: "5000.01"}}, headers=sup)
    assert_problem(r, 422, "price_increase_refused")
    # ... but may lower it.
    r = await client.post(f"/api/orders/{oid}/confirm", json={"prices": {line_id: "4800.00"}}, headers=sup)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "confirmed" and body["total_amount"] == "9600.00"
    assert body["contract_no"].startswith("HT")
    assert (await line_state(world)).reserved == Decimal("9600.00")  # the difference is released at once

    # Confirming twice is a state conflict, not a second deal.
    r = await client.post(f"/api/orders/{oid}/confirm", headers=sup)
    assert_problem(r, 409, "invalid_state")

    # The supplier cannot ship before the buyer files the contract.
    r = await client.post(f"/api/orders/{oid}/ship", json={"note": "SF1"}, headers=sup)
    assert_problem(r, 409, "invalid_state")
    for path, headers, payload, status in [
        ("sign", sup, None, "confirmed"),
        ("sign", buy, None, "signed"),
        ("contract", buy, None, "contracted"),
        ("ship", sup, {"note": "顺丰 SF123"}, "shipped"),
        ("receive", buy, None, "received"),
        ("accept", buy, {"inspectors": ["王建国"], "score": 5, "comment": "好"}, "accepted"),
    ]:
        r = await client.post(f"/api/orders/{oid}/{path}", json=payload, headers=headers)
        assert r.status_code == 200, (path, r.text)
        assert r.json()["status"] == status
    await settle(world, uuid.UUID(oid), world.who["supplier_x"], world.who["buyer_a"])
    line = await line_state(world)
    assert (line.reserved, line.consumed) == (Decimal(0), Decimal("9600.00"))
    events = (await client.get(f"/api/orders/{oid}/events", headers=buy)).json()
    assert [e["action"] for e in events] == [
        "placed",
        "confirmed",
        "supplier_signed",
        "buyer_signed",
        "contract_filed",
        "shipped",
        "received",
        "accepted",
        "invoice_recorded",
        "invoice_confirmed",
        "paid",
    ]


async def test_wrong_party_cannot_move_an_order(client: Any, world: World) -> None:
    oid = (await checkout(client, world, [("laptop", "1")])).json()["orders"][0]["id"]
    # The other supplier does not even see it.
    r = await client.post(f"/api/orders/{oid}/confirm", headers=world.h("supplier_y"))
    assert_problem(r, 404, "order_not_found")
    # The buyer cannot confirm its own order (role check before anything else).
    r = await client.post(f"/api/orders/{oid}/confirm", headers=world.h("buyer_a"))
    assert_problem(r, 403, "forbidden")


async def test_late_payment_is_flagged(client: Any, world: World, settings: Any) -> None:
    oid = uuid.UUID((await checkout(client, world, [("desk", "1")])).json()["orders"][0]["id"])
    db = world.db
    await orders.confirm(db, world.who["supplier_x" if False else "supplier_y"], oid)
    await sign_and_file(db, world.settings, world.who["buyer_a"], oid)
    await orders.ship(db, world.who["supplier_y"], oid, "")
    await orders.receive(db, world.who["buyer_a"], oid)
    await orders.accept(db, settings, world.who["buyer_a"], oid, inspectors=["王建国"], score=4)
    clock.clock.freeze(clock.now() + timedelta(days=31))
    try:
        async with db.read() as s:
            order = await orders.get_order(s, world.who["buyer_a"], oid)
            assert orders.payment_state(order, settings) == "overdue"
        await settle(world, oid, world.who["supplier_y"], world.who["buyer_a"], "ZF-9")
        async with db.read() as s:
            paid = await orders.get_order(s, world.who["buyer_a"], oid)
    finally:
        clock.clock.unfreeze()
    assert paid.payment_overdue is True and paid.payment_days == 31


async def test_unconfirmed_orders_cancel_after_15_days_and_release_budget(client: Any, world: World) -> None:
    await checkout(client, world, [("laptop", "1")])
    assert (await line_state(world)).reserved == Decimal("5000.00")
    assert await orders.cancel_overdue(world.db) == 0  # not yet
    clock.clock.freeze(clock.now() + timedelta(days=15, seconds=1))
    try:
        assert await orders.cancel_overdue(world.db) == 1
        assert await orders.cancel_overdue(world.db) == 0  # idempotent
    finally:
        clock.clock.unfreeze()
    assert (await line_state(world)).reserved == Decimal(0)
    r = await client.get("/api/orders", headers=world.h("buyer_a"))
    assert r.json()["items"][0]["status"] == "cancelled"


async def test_cancellation_rules(client: Any, world: World) -> None:
    sup, buy = world.h("supplier_x"), world.h("buyer_a")
    # Before confirmation the buyer cancels alone.
    oid = (await checkout(client, world, [("laptop", "1")])).json()["orders"][0]["id"]
    r = await client.post(f"/api/orders/{oid}/cancel", json={"reason": "需求变更"}, headers=buy)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"

    # After confirmation it takes the other side's consent ...
    oid = (await checkout(client, world, [("laptop", "1")])).json()["orders"][0]["id"]
    await client.post(f"/api/orders/{oid}/confirm", headers=sup)
    r = await client.post(f"/api/orders/{oid}/cancel", json={"reason": "需求变更"}, headers=buy)
    assert_problem(r, 409, "consent_required")
    r = await client.post(f"/api/orders/{oid}/cancel-request", json={"reason": "预算调整"}, headers=buy)
    assert r.status_code == 200 and r.json()["cancel_requested_by"] == "buyer"
    r = await client.post(f"/api/orders/{oid}/cancel-answer", json={"agree": True}, headers=buy)
    assert_problem(r, 403, "other_party_must_answer")
    r = await client.post(f"/api/orders/{oid}/cancel-answer", json={"agree": True}, headers=sup)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"

    # ... and once the contract is filed only the regulator can void it.
    oid = (await checkout(client, world, [("laptop", "1")])).json()["orders"][0]["id"]
    await client.post(f"/api/orders/{oid}/confirm", headers=sup)
    for path, who in (("sign", sup), ("sign", buy), ("contract", buy)):
        assert (await client.post(f"/api/orders/{oid}/{path}", headers=who)).status_code == 200
    r = await client.post(f"/api/orders/{oid}/cancel-request", json={"reason": "不想要了"}, headers=sup)
    assert_problem(r, 409, "contract_filed")
    r = await client.post(
        f"/api/orders/{oid}/void", json={"reason": "违规采购"}, headers=world.h("regulator")
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert (await line_state(world)).reserved == Decimal(0)

    # Published deals of the two cancelled-after-confirmation orders get cancellation records.
    await disclosure.publish_pending(world.db)
    feed = (await client.get("/api/disclosures")).json()["items"]
    kinds = [(x["kind"], x["order_no"]) for x in feed]
    assert [k for k, _ in kinds] == ["deal", "cancellation", "deal", "cancellation"]
    assert feed[1]["amends"] == feed[0]["id"] and feed[3]["amends"] == feed[2]["id"]


async def test_goods_are_bought_in_whole_units_and_quantities_may_be_json_numbers(
    client: Any, world: World
) -> None:
    for q in ["1.5", "0.001", "1e3", " 2 x", "-3"]:
        r = await checkout(client, world, [("laptop", q)])
        assert_problem(r, 400, "invalid_quantity")
    h = world.h("buyer_a")
    r = await client.post(
        "/api/cart/items", json={"listing_id": str(world.listings["desk"].id), "quantity": 2}, headers=h
    )
    assert r.status_code == 204, r.text
    # Changing the quantity in the cart meets the same stock check as adding.
    r = await client.put(f"/api/cart/items/{world.listings['desk'].id}", json={"quantity": "1001"}, headers=h)
    assert_problem(r, 422, "out_of_stock")
    r = await client.put(f"/api/cart/items/{world.listings['desk'].id}", json={"quantity": "0.5"}, headers=h)
    assert_problem(r, 400, "invalid_quantity")


async def test_listing_prices_are_plain_amounts_below_the_threshold(client: Any, world: World) -> None:
    base = {
        "name": "测试打印机",
        "brand": "测试",
        "spec_model": "T-1",
        "category_code": "A02021003",
        "unit": "台",
        "price": "1000.00",
        "reference_price": "1000.00",
        "stock": "10",
    }
    h = world.h("supplier_y")
    for change in [
        {"price": "1e9", "reference_price": "1e9"},
        {"stock": "2.5"},
        {"stock": "1e6"},
        {"price": "1000000.00", "reference_price": "1000000.00"},
        {"category_code": ""},
    ]:
        r = await client.post("/api/listings", json={**base, **change}, headers=h)
        assert_problem(r, 400, "listing_invalid")
    r = await client.post("/api/listings", json={**base, "price": "1050.01"}, headers=h)
    assert_problem(r, 422, "price_above_reference")
    assert "1,050.00" in r.json()["detail"]  # says what the highest allowed price is
    assert (await client.post("/api/listings", json=base, headers=h)).status_code == 201


async def test_the_delivery_address_defaults_to_the_units_registered_address(
    client: Any, world: World
) -> None:
    r = await checkout(client, world, [("desk", "1")])
    oid = r.json()["orders"][0]["id"]
    async with world.db.read() as s:
        from mall.orders.models import Order

        order = await s.get(Order, uuid.UUID(oid))
        assert order is not None and order.delivery_address == "甲单位地址"


async def test_what_a_logged_in_user_sees_is_not_cached(client: Any, world: World) -> None:
    r = await client.get("/api/orders", headers=world.h("buyer_a"))
    assert r.headers["cache-control"] == "no-store"
    r = await client.get("/api/disclosures")
    assert "no-store" not in r.headers.get("cache-control", "")


async def test_search_words_are_not_wildcards(client: Any, world: World) -> None:
    assert (await client.get("/api/listings?q=%25")).json()["total"] == 0
    assert (await client.get("/api/listings?q=_")).json()["total"] == 0
    assert (await client.get("/api/listings?q=laptop")).json()["total"] == 1


async def test_a_retried_cart_checkout_gets_its_orders_back(client: Any, world: World) -> None:
    h = world.h("buyer_a")
    await client.post(
        "/api/cart/items", json={"listing_id": str(world.listings["desk"].id), "quantity": "1"}, headers=h
    )
    body = {"budget_line_id": str(world.lines["a1"].id)}
    first = await client.post("/api/checkout", json=body, headers={**h, "Idempotency-Key": "cart-retry-1"})
    again = await client.post("/api/checkout", json=body, headers={**h, "Idempotency-Key": "cart-retry-1"})
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert [o["id"] for o in first.json()["orders"]] == [o["id"] for o in again.json()["orders"]]


async def test_voiding_a_shipped_order_keeps_stock_and_cannot_happen_twice(client: Any, world: World) -> None:
    sup, buy, reg = world.h("supplier_x"), world.h("buyer_a"), world.h("regulator")
    oid = (await checkout(client, world, [("printer", "4")])).json()["orders"][0]["id"]
    for path, headers, payload in [
        ("confirm", sup, None),
        ("sign", sup, None),
        ("sign", buy, None),
        ("contract", buy, None),
        ("ship", sup, {"note": "SF1"}),
    ]:
        assert (
            await client.post(f"/api/orders/{oid}/{path}", json=payload, headers=headers)
        ).status_code == 200
    stock = (await client.get(f"/api/listings/{world.listings['printer'].id}")).json()["stock"]
    assert stock == "996"
    r = await client.post(f"/api/orders/{oid}/void", json={"reason": "违规采购"}, headers=reg)
    assert r.status_code == 200
    # The goods left with the shipment: they do not come back on sale; the budget does come back.
    assert (await client.get(f"/api/listings/{world.listings['printer'].id}")).json()["stock"] == "996"
    assert (await line_state(world)).reserved == Decimal(0)
    r = await client.post(f"/api/orders/{oid}/void", json={"reason": "再次作废"}, headers=reg)
    assert_problem(r, 409, "invalid_state")
    assert (await line_state(world)).reserved == Decimal(0)


async def test_too_many_items_and_control_characters_are_refused(client: Any, world: World) -> None:
    items = [(k, "1") for k in ["laptop"] * 101]
    r = await checkout(client, world, items)
    assert_problem(r, 400, "too_many_items")
    r = await client.post("/api/auth/token", json={"username": "buyer_a\u0000", "password": "x"})
    assert r.status_code in (400, 401) and r.headers["content-type"].startswith(
        "application/problem+json"
    )  # 400 where the database refuses NUL (PostgreSQL)
    r = await client.get("/api/disclosures/99999999999999999999")
    assert_problem(r, 404, "record_not_found")


async def test_the_delivery_address_and_note_are_checked_not_cut(client: Any, world: World) -> None:
    """Refused with the reason, never silently shortened; the API and the services say the same."""
    for extra, field in (
        ({"delivery_address": "郑州市\n金水路"}, "delivery_address"),
        ({"delivery_address": "路" * 301}, "delivery_address"),
        ({"note": "备" * 501}, "note"),
    ):
        r = await checkout(client, world, [("desk", "1")], **extra)
        assert_problem(r, 400, "invalid_input")
        assert field in r.json()["detail"]
    with pytest.raises(InvalidInput) as err:
        await orders.checkout(
            world.db,
            world.settings,
            world.who["buyer_a"],
            orders.CheckoutRequest(
                world.lines["a1"].id,
                uuid.uuid4().hex,
                ((world.listings["desk"].id, "1"),),
                delivery_address="路" * 301,
            ),
        )
    assert err.value.code == "text_too_long"
    assert (await line_state(world)).reserved == Decimal(0)

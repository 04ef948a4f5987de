"""The buyer pays the price it saw (point 8): the cart keeps the unit price the buyer saw; a price
that rose since is refused at checkout with 409 `price_changed` naming the old and the new price,
until the buyer accepts it. A price that went down is simply charged lower. Retries with the same
Idempotency-Key still answer with the orders they made.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from mall.budgets.models import BudgetLine
from mall.orders.models import Order
from tests.factories import World
from tests.mall.test_pages import HTML, login_ok, post_form
from tests.security.login_helpers import assert_problem


async def reprice(client: Any, world: World, key: str, price: str) -> None:
    """The supplier changes the price within the reviewed reference: it applies at once."""
    listing = world.listings[key]
    r = await client.post(
        f"/api/listings/{listing.id}/price",
        json={"price": price, "reference_price": str(listing.reference_price)},
        headers=world.h("supplier_y" if key == "desk" else "supplier_x"),
    )
    assert r.status_code == 200, r.text


async def add(client: Any, world: World, key: str, quantity: str = "2") -> None:
    r = await client.post(
        "/api/cart/items",
        json={"listing_id": str(world.listings[key].id), "quantity": quantity},
        headers=world.h("buyer_a"),
    )
    assert r.status_code == 204, r.text


async def cart_checkout(client: Any, world: World, key: str | None = None) -> Any:
    return await client.post(
        "/api/checkout",
        json={"budget_line_id": str(world.lines["a1"].id)},
        headers={**world.h("buyer_a"), "Idempotency-Key": key or uuid.uuid4().hex},
    )


async def nothing_placed(world: World) -> None:
    async with world.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Order)) == 0
        line = await s.get(BudgetLine, world.lines["a1"].id)
        assert line is not None and line.reserved == Decimal(0)


async def test_a_price_raised_after_carting_is_refused_until_the_buyer_accepts_it(
    client: Any, world: World
) -> None:
    desk = world.listings["desk"]  # 800.00, reference 800.00
    await add(client, world, "desk")
    await reprice(client, world, "desk", "840.00")  # within 800 × 1.05

    r = await cart_checkout(client, world)
    body = assert_problem(r, 409, "price_changed")
    assert "800.00" in body["detail"] and "840.00" in body["detail"]
    assert body["changes"] == [
        {"listing_id": str(desk.id), "name": desk.name, "old_price": "800.00", "new_price": "840.00"}
    ]
    await nothing_placed(world)

    # The cart says what changed; the buyer accepts the new price, then checkout goes through.
    [line] = (await client.get("/api/cart", headers=world.h("buyer_a"))).json()
    assert (line["agreed_unit_price"], line["unit_price"], line["price_risen"]) == ("800.00", "840.00", True)
    # Accepting a price other than the current one is refused (it may have moved again).
    r = await client.post(
        f"/api/cart/items/{desk.id}/price", json={"unit_price": "820.00"}, headers=world.h("buyer_a")
    )
    assert_problem(r, 409, "price_changed")
    r = await client.post(
        f"/api/cart/items/{desk.id}/price", json={"unit_price": "840.00"}, headers=world.h("buyer_a")
    )
    assert r.status_code == 204, r.text
    [line] = (await client.get("/api/cart", headers=world.h("buyer_a"))).json()
    assert (line["agreed_unit_price"], line["price_risen"]) == ("840.00", False)
    r = await cart_checkout(client, world)
    assert r.status_code == 201, r.text
    assert r.json()["orders"][0]["total_amount"] == "1680.00"


async def test_the_api_names_the_price_it_agreed_to(client: Any, world: World) -> None:
    laptop = world.listings["laptop"]  # 5000.00, reference 5100.00
    await reprice(client, world, "laptop", "5300.00")

    async def buy(unit_price: str, key: str) -> Any:
        return await client.post(
            "/api/checkout",
            json={
                "budget_line_id": str(world.lines["a1"].id),
                "items": [{"listing_id": str(laptop.id), "quantity": "1", "unit_price": unit_price}],
            },
            headers={**world.h("buyer_a"), "Idempotency-Key": key},
        )

    body = assert_problem(await buy("5000.00", "agreed-5000"), 409, "price_changed")
    assert body["changes"][0]["old_price"] == "5000.00" and body["changes"][0]["new_price"] == "5300.00"
    await nothing_placed(world)
    r = await buy("5300.00", "agreed-5300")
    assert r.status_code == 201, r.text
    assert r.json()["orders"][0]["total_amount"] == "5300.00"
    # A price that is not an amount is refused before anything else.
    r = await buy("5300.001", "agreed-bad")
    assert r.status_code == 400, r.text

    # The replay of a request that went through is answered with its orders, whatever the price now.
    first = r = await buy("5300.00", "agreed-5300")
    assert r.status_code == 200, r.text
    assert r.json()["replayed"] is True
    await reprice(client, world, "laptop", "5350.00")
    again = await buy("5300.00", "agreed-5300")
    assert again.status_code == 200, again.text
    assert [o["id"] for o in again.json()["orders"]] == [o["id"] for o in first.json()["orders"]]


async def test_a_price_that_went_down_is_charged_lower(client: Any, world: World) -> None:
    await add(client, world, "desk", "3")
    await reprice(client, world, "desk", "760.00")
    r = await cart_checkout(client, world, "cart-lower-1")
    assert r.status_code == 201, r.text
    [order] = r.json()["orders"]
    assert (order["total_amount"], order["lines"][0]["unit_price"]) == ("2280.00", "760.00")
    # And its retry (the cart is empty now) is answered with the same order.
    again = await cart_checkout(client, world, "cart-lower-1")
    assert again.status_code == 200 and again.json()["orders"][0]["id"] == order["id"]


async def test_a_page_add_with_a_stale_price_is_refused(client: Any, world: World) -> None:
    desk = world.listings["desk"]
    await reprice(client, world, "desk", "840.00")
    r = await client.post(
        "/api/cart/items",
        json={"listing_id": str(desk.id), "quantity": "1", "unit_price": "800.00"},
        headers=world.h("buyer_a"),
    )
    assert_problem(r, 409, "price_changed")
    assert (await client.get("/api/cart", headers=world.h("buyer_a"))).json() == []


# ---------------------------------------------------------------- the cart page


async def test_the_cart_page_shows_the_new_price_and_the_buyer_accepts_it(client: Any, world: World) -> None:
    desk = world.listings["desk"]
    await login_ok(client, "buyer_a")
    r = await post_form(
        client, "/cart/add", {"listing_id": str(desk.id), "quantity": "2", "unit_price": "800.00"}, "/cart"
    )
    assert r.status_code == 303
    await reprice(client, world, "desk", "840.00")

    page = (await client.get("/cart", headers=HTML)).text
    assert "800.00" in page and "840.00" in page and "接受新价格" in page
    key = re.search(r'name="checkout_key" value="([^"]+)"', page)
    assert key
    form = {"budget_line_id": str(world.lines["a1"].id), "checkout_key": key.group(1)}
    r = await post_form(client, "/checkout", form, "/cart")
    assert (r.status_code, r.headers["location"]) == (303, "/cart")
    page = (await client.get("/cart", headers=HTML)).text
    assert "价格已上涨" in page and "840.00" in page
    await nothing_placed(world)

    r = await post_form(
        client, "/cart/accept-price", {"listing_id": str(desk.id), "unit_price": "840.00"}, "/cart"
    )
    assert r.status_code == 303
    page = (await client.get("/cart", headers=HTML)).text
    assert "接受新价格" not in page
    key = re.search(r'name="checkout_key" value="([^"]+)"', page)
    assert key
    r = await post_form(client, "/checkout", {**form, "checkout_key": key.group(1)}, "/cart")
    assert r.status_code == 303 and r.headers["location"].startswith("/orders/")
    async with world.db.read() as s:
        order = (await s.execute(select(Order))).scalars().unique().one()
        assert order.total_amount == Decimal("1680.00")

"""The 分散采购限额 is per purchase (point 9): the lines of one checkout that are the same item
(品目 + brand + model, folded like the duplicate rule), from one supplier or several, count
together and must stay below the limit. Different items are different purchases.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from catalog import service as catalog
from mall.budgets.models import BudgetLine
from mall.orders.models import Order
from tests.factories import World


async def server(
    world: World, key: str, supplier: str, brand: str, model: str, price: str, category: str = "A02010104"
) -> None:
    """A live listing of a rack server (品目 A02010104 unless `category` says otherwise)."""
    listing = await catalog.create_listing(
        world.db,
        world.who[supplier],
        catalog.ListingDraft(
            name=f"{brand} {model} 机架式服务器",
            brand=brand,
            spec_model=model,
            category_code=category,
            unit="台",
            price=price,
            reference_price=price,
            stock="50",
        ),
        margin=world.settings.price_margin,
    )
    world.listings[key] = await catalog.review_listing(
        world.db, world.who["center"], listing.id, approve=True, reason="", margin=world.settings.price_margin
    )


async def checkout(client: Any, world: World, items: list[tuple[str, str]]) -> Any:
    return await client.post(
        "/api/checkout",
        json={
            "budget_line_id": str(world.lines["big"].id),
            "items": [{"listing_id": str(world.listings[k].id), "quantity": q} for k, q in items],
        },
        headers={**world.h("buyer_a"), "Idempotency-Key": uuid.uuid4().hex},
    )


async def ten_of_each(client: Any, world: World, brand: str, model: str, category: str = "A02010104") -> Any:
    """One checkout on a large budget line of ten 浪潮 NF5280M6 servers from supplier_x and ten of
    `brand` `model` from supplier_y, at the same price: 910,930.70 each, 1,821,861.40 together."""
    await world.budget("big", "buyer_a", "5000000.00")
    await server(world, "x", "supplier_x", "浪潮", "NF5280M6", "91093.07")
    await server(world, "y", "supplier_y", brand, model, "91093.07", category)
    return await checkout(client, world, [("x", "10"), ("y", "10")])


async def test_the_same_model_from_two_suppliers_counts_as_one_purchase(client: Any, world: World) -> None:
    # The same goods, typed differently by the other supplier (case, spaces, full-width letters).
    r = await ten_of_each(client, world, "浪潮", "ｎｆ5280 m6")  # 1,821,861.40 in one request
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "purchase_above_threshold"
    assert "1,821,861.40" in body["detail"] and "1,000,000" in body["detail"]
    assert (body["total"], body["limit"]) == ("1821861.40", "1000000.00")
    async with world.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Order)) == 0
        line = await s.get(BudgetLine, world.lines["big"].id)
        assert line is not None and line.reserved == Decimal(0)

    # Below the limit together, the same two lines are fine: two orders, one per supplier.
    r = await checkout(client, world, [("x", "5"), ("y", "5")])  # 910,930.70
    assert r.status_code == 201, r.text
    assert len(r.json()["orders"]) == 2


async def test_different_models_are_different_purchases(client: Any, world: World) -> None:
    r = await ten_of_each(client, world, "浪潮", "NF5466M6")
    assert r.status_code == 201, r.text

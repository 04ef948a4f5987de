"""Split purchases (化整为零): the buyer is warned at checkout, and the regulator sees the case."""

from __future__ import annotations

import uuid
from typing import Any

from mall import oversight
from tests.factories import World
from tests.mall.test_supermarket_flow import checkout


async def test_buying_one_class_past_the_open_tender_threshold_warns_and_is_flagged(
    client: Any, world: World, settings: Any
) -> None:
    await world.budget("big", "buyer_a", "5000000.00")
    # 5000 × 199 = 995,000 each: every single order stays below the decentralized threshold.
    first = await checkout(client, world, [("laptop", "199")], line="big")
    assert first.status_code == 201 and first.json()["warnings"] == []
    second = await checkout(client, world, [("laptop", "199")], line="big")
    assert second.json()["warnings"] == []  # 1,990,000: not over 2,000,000 yet
    third = await checkout(client, world, [("laptop", "3")], line="big")
    assert third.status_code == 201  # a warning, not a refusal
    [warning] = third.json()["warnings"]
    assert "化整为零" in warning and "2,000,000" in warning and "P-big" in warning

    # Another class, or another budget project, is not added in.
    other = await checkout(client, world, [("desk", "2")], line="big")
    assert other.json()["warnings"] == []

    async with world.db.read() as s:
        [case] = await oversight.split_purchase_cases(s, settings)
    assert (case.project_code, case.category_class, case.orders) == ("P-big", "A020101", 3)
    assert str(case.total) == "2005000.00"
    # the same list for clients of the regulator and the center
    r = await client.get("/api/oversight/split-purchases", headers=world.h("regulator"))
    assert [(c["project_code"], c["category_class"], c["orders"], c["total"]) for c in r.json()] == [
        ("P-big", "A020101", 3, "2005000.00")
    ]
    assert r.json()[0]["class_name"] == case.class_name
    assert (await client.get("/api/oversight/split-purchases", headers=world.h("buyer_a"))).status_code == 403

    # Cancelled orders do not count.
    oid = third.json()["orders"][0]["id"]
    r = await client.post(
        f"/api/orders/{oid}/cancel", json={"reason": "改为公开招标"}, headers=world.h("buyer_a")
    )
    assert r.status_code == 200
    async with world.db.read() as s:
        assert await oversight.split_purchase_cases(s, settings) == []
    assert uuid.UUID(oid)

"""The listing lifecycle through the HTTP API: create → review → live, the price rule, duplicates,
price changes and their history, delist / relist, moderation by the center and the regulator, 比价.

Every refusal is checked in the database too: the listing row, its price history, its audit rows and
the outbox are exactly as they were before the refused request.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from catalog.models import Listing, PriceChange
from mall.core.models import AuditEntry, OrgKind, Outbox
from mall.core.settings import Settings
from tests.conftest import app_for
from tests.factories import World
from tests.security.login_helpers import assert_problem

SNAPSHOT_FIELDS = (
    "status",
    "status_reason",
    "status_by",
    "frozen_from",
    "name",
    "brand",
    "spec_model",
    "brand_key",
    "model_key",
    "category_code",
    "unit",
    "price",
    "reference_price",
    "stock",
    "submitted_at",
    "reviewed_at",
    "reviewed_by",
    "updated_at",
)


# -- helpers -------------------------------------------------------------------------------------


def listing_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "联想 ThinkPad X1 Carbon 便携式计算机",
        "brand": "联想",
        "spec_model": "ThinkPad X1",
        "category_code": "A02010108",
        "unit": "台",
        "price": "9000.00",
        "reference_price": "9000.00",
        "stock": "10",
        "reference_source": "品牌官网",
    }
    body.update(over)
    return body


async def create(client: Any, world: World, supplier: str = "supplier_x", **over: Any) -> dict[str, Any]:
    r = await client.post("/api/listings", json=listing_body(**over), headers=world.h(supplier))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def review(client: Any, world: World, listing_id: str, decision: str = "approve", **extra: Any) -> Any:
    return await client.post(
        f"/api/review/listings/{listing_id}",
        json={"decision": decision, **extra},
        headers=world.h("center"),
    )


async def live(client: Any, world: World, supplier: str = "supplier_x", **over: Any) -> dict[str, Any]:
    """A listing created by the supplier and approved by the center."""
    created = await create(client, world, supplier, **over)
    r = await review(client, world, created["id"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "live"
    return r.json()  # type: ignore[no-any-return]


async def moderate(
    client: Any, world: World, who: str, listing_id: str, action: str, reason: str = ""
) -> Any:
    return await client.post(
        f"/api/listings/{listing_id}/moderation",
        json={"action": action, "reason": reason},
        headers=world.h(who),
    )


async def snapshot(world: World, listing_id: str) -> dict[str, Any]:
    """Everything a refused request must leave untouched."""
    lid = uuid.UUID(listing_id)
    async with world.db.read() as s:
        x = await s.get(Listing, lid)
        assert x is not None
        row: dict[str, Any] = {f: getattr(x, f) for f in SNAPSHOT_FIELDS}
        row["price_changes"] = await s.scalar(
            select(func.count()).select_from(PriceChange).where(PriceChange.listing_id == lid)
        )
        row["audit"] = await s.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.target == listing_id)
        )
        row["outbox"] = await s.scalar(select(func.count()).select_from(Outbox))
    return row


async def row_of(world: World, listing_id: str) -> Listing:
    async with world.db.read() as s:
        x = await s.get(Listing, uuid.UUID(listing_id))
        assert x is not None
        return x


async def counts(world: World) -> tuple[int, int, int, int]:
    """(listings, price changes, audit rows, outbox rows) in the whole database."""
    async with world.db.read() as s:
        return (
            await s.scalar(select(func.count()).select_from(Listing)) or 0,
            await s.scalar(select(func.count()).select_from(PriceChange)) or 0,
            await s.scalar(select(func.count()).select_from(AuditEntry)) or 0,
            await s.scalar(select(func.count()).select_from(Outbox)) or 0,
        )


async def audit_trail(world: World, listing_id: str) -> list[tuple[str, uuid.UUID | None, str]]:
    async with world.db.read() as s:
        rows = await s.execute(
            select(AuditEntry.action, AuditEntry.actor_user_id, AuditEntry.detail)
            .where(AuditEntry.target == listing_id)
            .order_by(AuditEntry.at, AuditEntry.id)
        )
        return [(a, u, d) for a, u, d in rows.all()]


async def drain(world: World) -> int:
    """What the worker's index job does: apply the pending outbox rows to the search index."""
    from search_index import sync
    from search_index.embedded import EmbeddedBackend

    backend = EmbeddedBackend(world.settings.data_dir / "search", writer=True, heap_bytes=15_000_000)
    return await sync.drain(world.db, backend)


async def search_ids(client: Any, **params: str) -> list[str]:
    r = await client.get("/api/catalog/search", params={"per_page": "100", **params})
    assert r.status_code == 200, r.text
    return [h["id"] for h in r.json()["hits"]]


async def queue_ids(client: Any, world: World, **params: str) -> list[str]:
    r = await client.get("/api/review/listings", params=params, headers=world.h("center"))
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()["items"]]


def uid(world: World, name: str) -> uuid.UUID:
    user_id = world.who[name].user_id
    assert user_id is not None
    return user_id


@pytest.fixture
async def strict_client(settings: Settings, world: World) -> AsyncIterator[Any]:
    """The same mall, started with a stricter price rule (1% instead of 5%): as if the setting changed."""
    from litestar.testing import AsyncTestClient

    application = app_for(dataclasses.replace(settings, price_margin=Decimal("0.01")))
    try:
        async with AsyncTestClient(app=application) as c:
            yield c
    finally:
        await application.state.db.dispose()


# -- create and review ---------------------------------------------------------------------------


async def test_new_listing_is_submitted_and_hidden_until_the_center_approves(
    client: Any, world: World
) -> None:
    await drain(world)  # the world's own listings
    created = await create(client, world)
    lid = created["id"]
    assert created["status"] == "submitted"
    assert (created["price"], created["reference_price"], created["stock"]) == ("9000.00", "9000.00", "10")
    assert created["supplier_id"] == str(world.who["supplier_x"].org_id)
    assert created["supplier_name"] == "甲供应商有限公司"
    assert created["category_version"] == "2022"

    # Not visible to anybody as a product yet: detail, price history, offers, search, browse.
    for headers in ({}, world.h("buyer_a")):
        assert_problem(await client.get(f"/api/listings/{lid}", headers=headers), 404, "listing_not_found")
    assert_problem(await client.get(f"/api/listings/{lid}/prices"), 404, "listing_not_found")
    assert_problem(await client.get(f"/api/listings/{lid}/offers"), 404, "listing_not_found")
    await drain(world)
    assert lid not in await search_ids(client, q="ThinkPad")
    assert lid not in await search_ids(client)
    r = await client.get("/api/listings", params={"per_page": "100"})
    assert lid not in [x["id"] for x in r.json()["items"]]
    # The supplier sees its own listing, with its status.
    r = await client.get("/api/supplier/listings", headers=world.h("supplier_x"))
    assert {x["id"]: x["status"] for x in r.json()["items"]}[lid] == "submitted"

    r = await review(client, world, lid)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "live"
    r = await client.get(f"/api/listings/{lid}")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["name"]) == ("live", "联想 ThinkPad X1 Carbon 便携式计算机")
    await drain(world)
    assert await search_ids(client, q="ThinkPad") == [lid]

    row = await row_of(world, lid)
    assert row.reviewed_by == uid(world, "center") and row.reviewed_at is not None
    assert await audit_trail(world, lid) == [
        ("listing_created", uid(world, "supplier_x"), "submitted"),
        ("listing_approved", uid(world, "center"), ""),
    ]

    # Reviewing it again is a state conflict and changes nothing.
    before = await snapshot(world, lid)
    assert_problem(await review(client, world, lid), 409, "listing_not_submitted")
    assert_problem(
        await review(client, world, lid, "reject", reason="重复审核"), 409, "listing_not_submitted"
    )
    assert await snapshot(world, lid) == before


async def test_draft_stays_out_of_the_review_queue_until_submitted(client: Any, world: World) -> None:
    created = await create(client, world, draft=True)
    lid = created["id"]
    assert created["status"] == "draft"
    assert lid not in await queue_ids(client, world)
    assert_problem(await client.get(f"/api/listings/{lid}"), 404, "listing_not_found")

    before = await snapshot(world, lid)
    assert_problem(await review(client, world, lid), 409, "listing_not_submitted")  # not asked for yet
    assert await snapshot(world, lid) == before
    # Another supplier cannot submit it.
    r = await client.post(f"/api/listings/{lid}/submit", headers=world.h("supplier_y"))
    assert_problem(r, 404, "listing_not_found")
    assert await snapshot(world, lid) == before

    r = await client.post(f"/api/listings/{lid}/submit", headers=world.h("supplier_x"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "submitted"
    assert (await row_of(world, lid)).submitted_at is not None
    assert await queue_ids(client, world) == [lid]
    before = await snapshot(world, lid)
    r = await client.post(f"/api/listings/{lid}/submit", headers=world.h("supplier_x"))
    assert_problem(r, 409, "listing_not_submittable")
    assert await snapshot(world, lid) == before
    assert [a for a, _, _ in await audit_trail(world, lid)] == ["listing_created", "listing_submitted"]


async def test_review_queue_is_oldest_first_and_for_the_center_only(client: Any, world: World) -> None:
    a = (await create(client, world, spec_model="Q-A", name="队列商品甲"))["id"]
    b = (await create(client, world, "supplier_y", spec_model="Q-B", name="队列商品乙"))["id"]
    c = (await create(client, world, spec_model="Q-C", name="队列商品丙"))["id"]
    await create(client, world, spec_model="Q-D", name="队列草稿", draft=True)  # drafts are not queued

    r = await client.get("/api/review/listings", headers=world.h("center"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 3
    assert [x["id"] for x in body["items"]] == [a, b, c]
    assert {x["status"] for x in body["items"]} == {"submitted"}
    assert await queue_ids(client, world, per_page="2", page="2") == [c]

    for who, status, code in (
        ("supplier_x", 403, "forbidden"),
        ("buyer_a", 403, "forbidden"),
        ("regulator", 403, "forbidden"),
    ):
        assert_problem(await client.get("/api/review/listings", headers=world.h(who)), status, code)
    assert_problem(await client.get("/api/review/listings"), 401, "unauthenticated")
    # Nor may a supplier review anything (not even its own listing).
    before = await snapshot(world, a)
    r = await client.post(
        f"/api/review/listings/{a}", json={"decision": "approve"}, headers=world.h("supplier_x")
    )
    assert_problem(r, 403, "forbidden")
    assert await snapshot(world, a) == before

    # A rejected listing, edited and submitted again, goes to the back of the queue.
    assert (await review(client, world, b, "reject", reason="参考价来源不明")).status_code == 200
    assert await queue_ids(client, world) == [a, c]
    r = await client.put(
        f"/api/listings/{b}",
        json=listing_body(spec_model="Q-B", name="队列商品乙", reference_source="京东自营"),
        headers=world.h("supplier_y"),
    )
    assert r.status_code == 200, r.text
    assert await queue_ids(client, world) == [a, c, b]


async def test_reject_needs_a_reason_and_keeps_it(client: Any, world: World) -> None:
    lid = (await create(client, world))["id"]
    before = await snapshot(world, lid)
    for extra in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "差"}):
        assert_problem(await review(client, world, lid, "reject", **extra), 400, "reason_required")
    # Longer than a reason may be: refused with the request, before the service (fields.REASON_MAX).
    assert_problem(await review(client, world, lid, "reject", reason="长" * 301), 400, "invalid_input")
    assert_problem(await review(client, world, lid, "maybe"), 400, "invalid_parameter")
    assert await snapshot(world, lid) == before

    r = await review(client, world, lid, "reject", reason="  参考市场价来源无效  ")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["status_reason"]) == ("rejected", "参考市场价来源无效")
    row = await row_of(world, lid)
    assert (row.status, row.status_reason, row.status_by) == ("rejected", "参考市场价来源无效", "center")
    assert_problem(await client.get(f"/api/listings/{lid}"), 404, "listing_not_found")
    assert lid not in await queue_ids(client, world)
    r = await client.get("/api/supplier/listings", headers=world.h("supplier_x"))
    mine = {x["id"]: x for x in r.json()["items"]}
    assert (mine[lid]["status"], mine[lid]["status_reason"]) == ("rejected", "参考市场价来源无效")
    assert (await audit_trail(world, lid))[-1] == (
        "listing_rejected",
        uid(world, "center"),
        "参考市场价来源无效",
    )
    # A rejected listing cannot be approved without being submitted again.
    before = await snapshot(world, lid)
    assert_problem(await review(client, world, lid), 409, "listing_not_submitted")
    assert await snapshot(world, lid) == before


async def test_rejected_listing_is_edited_and_submitted_again(client: Any, world: World) -> None:
    lid = (await create(client, world))["id"]
    assert (await review(client, world, lid, "reject", reason="请补充参考价来源")).status_code == 200
    before = await snapshot(world, lid)

    # Refused edits change nothing: above the reference, another supplier's, bad input, not goods.
    bad = [
        ("supplier_x", listing_body(price="9450.01"), 422, "price_above_reference"),
        ("supplier_y", listing_body(), 404, "listing_not_found"),
        ("supplier_x", listing_body(name="X"), 400, "listing_invalid"),
        ("supplier_x", listing_body(category_code="C07020101"), 422, "category_not_goods"),
        ("supplier_x", listing_body(category_code="A99999999"), 400, "unknown_category"),
        ("buyer_a", listing_body(), 403, "forbidden"),
    ]
    for who, body, status, code in bad:
        r = await client.put(f"/api/listings/{lid}", json=body, headers=world.h(who))
        assert_problem(r, status, code)
    assert await snapshot(world, lid) == before

    r = await client.put(
        f"/api/listings/{lid}",
        json=listing_body(price="8900.00", reference_source="联想官网 2024-05", stock="5"),
        headers=world.h("supplier_x"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["status_reason"], body["price"], body["stock"]) == (
        "submitted",
        "",
        "8900.00",
        "5",
    )
    row = await row_of(world, lid)
    assert (row.status, row.status_reason, row.price) == ("submitted", "", Decimal("8900.00"))
    assert row.submitted_at is not None and row.submitted_at > before["submitted_at"]
    assert lid in await queue_ids(client, world)

    assert (await review(client, world, lid)).status_code == 200
    r = await client.get(f"/api/listings/{lid}/prices")
    assert [(p["price"], p["previous_price"], p["note"]) for p in r.json()] == [
        ("8900.00", "9000.00", "修改后重新提交"),
        ("9000.00", None, "首次报价"),
    ]
    # A live listing is not edited this way (price changes go through /price).
    before = await snapshot(world, lid)
    r = await client.put(f"/api/listings/{lid}", json=listing_body(), headers=world.h("supplier_x"))
    assert_problem(r, 409, "listing_not_editable")
    assert await snapshot(world, lid) == before
    assert [a for a, _, _ in await audit_trail(world, lid)] == [
        "listing_created",
        "listing_rejected",
        "listing_edited",
        "listing_approved",
    ]


# -- the price rule ------------------------------------------------------------------------------


async def test_price_more_than_five_percent_above_reference_is_refused_and_nothing_is_stored(
    client: Any, world: World
) -> None:
    before = await counts(world)
    for over, status, code in (
        ({"price": "1050.01", "reference_price": "1000.00"}, 422, "price_above_reference"),
        ({"price": "1050.01", "reference_price": "1000.00", "draft": True}, 422, "price_above_reference"),
        ({"price": "abc"}, 400, "listing_invalid"),
        ({"price": "0"}, 400, "listing_invalid"),
        ({"price": "10.001"}, 400, "listing_invalid"),
        ({"price": "1000000.00", "reference_price": "1000000.00"}, 400, "listing_invalid"),  # ≥ threshold
        ({"stock": "1.5"}, 400, "listing_invalid"),
        ({"category_code": "C07020101"}, 422, "category_not_goods"),
        ({"category_code": "A99999999"}, 400, "unknown_category"),
    ):
        r = await client.post("/api/listings", json=listing_body(**over), headers=world.h("supplier_x"))
        body = assert_problem(r, status, code)
        if code == "price_above_reference":
            assert "1,050.00" in body["detail"]  # the highest allowed price is named
    # Only a supplier may list goods.
    for who in ("buyer_a", "center", "regulator"):
        r = await client.post("/api/listings", json=listing_body(), headers=world.h(who))
        assert_problem(r, 403, "forbidden")
    assert_problem(await client.post("/api/listings", json=listing_body()), 401, "unauthenticated")
    assert await counts(world) == before

    # Exactly 5% above the reference is allowed.
    created = await create(client, world, price="1050.00", reference_price="1000.00")
    assert (created["status"], created["price"]) == ("submitted", "1050.00")


async def test_approval_rechecks_the_price_rule(client: Any, world: World, strict_client: Any) -> None:
    # 4% above the reference: fine under the 5% rule in force when it was submitted ...
    lid = (await create(client, world, price="1040.00", reference_price="1000.00"))["id"]
    before = await snapshot(world, lid)
    # ... but the rule became 1% before the center reviewed it: it can never go live.
    r = await strict_client.post(
        f"/api/review/listings/{lid}", json={"decision": "approve"}, headers=world.h("center")
    )
    assert_problem(r, 422, "price_above_reference")
    assert await snapshot(world, lid) == before
    assert (await row_of(world, lid)).status == "submitted"
    # Rejecting is still possible under the strict rule (it does not put anything live).
    r = await strict_client.post(
        f"/api/review/listings/{lid}",
        json={"decision": "reject", "reason": "价格高于参考价"},
        headers=world.h("center"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected"

    # Back under the 5% rule a compliant listing is approved normally.
    other = (await create(client, world, spec_model="X1-2", price="1040.00", reference_price="1000.00"))["id"]
    assert (await review(client, world, other)).json()["status"] == "live"
    # The supplier's relist and the center's unfreeze re-check the rule too.
    assert (
        await client.post(f"/api/listings/{other}/delist", headers=world.h("supplier_x"))
    ).status_code == 200
    before = await snapshot(world, other)
    r = await strict_client.post(f"/api/listings/{other}/relist", headers=world.h("supplier_x"))
    assert_problem(r, 422, "price_above_reference")
    assert await snapshot(world, other) == before
    assert (
        await client.post(f"/api/listings/{other}/relist", headers=world.h("supplier_x"))
    ).status_code == 200
    assert (await moderate(client, world, "center", other, "freeze", "价格待核实")).status_code == 200
    before = await snapshot(world, other)
    r = await strict_client.post(
        f"/api/listings/{other}/moderation", json={"action": "unfreeze"}, headers=world.h("center")
    )
    assert_problem(r, 422, "price_above_reference")
    assert await snapshot(world, other) == before


# -- duplicates ----------------------------------------------------------------------------------


async def test_duplicate_brand_and_model_for_one_supplier_is_refused(client: Any, world: World) -> None:
    first = await create(client, world, brand="联想", spec_model="ThinkPad X1")
    before = await counts(world)
    for brand, model in (
        ("联想", "ThinkPad X1"),
        ("联想", "thinkpad  x1"),
        (" 联想 ", "THINKPAD X1"),
        ("联想", "ThinkPad_X1"),
        ("联想", "thinkpad\u3000x1"),  # the ideographic space of a Chinese input method
    ):
        r = await client.post(
            "/api/listings",
            json=listing_body(brand=brand, spec_model=model, name="联想 笔记本 重复"),
            headers=world.h("supplier_x"),
        )
        assert_problem(r, 409, "duplicate_listing")
    # A tab is no way to write a model any more: a single-line field refuses it.
    r = await client.post(
        "/api/listings",
        json=listing_body(brand="联想", spec_model="ThinkPad\tX1", name="联想 笔记本 重复"),
        headers=world.h("supplier_x"),
    )
    assert_problem(r, 400, "invalid_input")
    # Drafts count as listings too.
    r = await client.post(
        "/api/listings",
        json=listing_body(spec_model="thinkpad x1", draft=True),
        headers=world.h("supplier_x"),
    )
    assert_problem(r, 409, "duplicate_listing")
    assert await counts(world) == before

    # Another model of the same brand is a different product.
    yoga = await create(client, world, spec_model="ThinkPad X1 Yoga")
    assert yoga["status"] == "submitted"
    # Another supplier may list the same model.
    other = await create(client, world, "supplier_y", spec_model="thinkpad  x1")
    assert other["status"] == "submitted"

    # Editing a rejected listing into a duplicate is refused as well.
    assert (await review(client, world, yoga["id"], "reject", reason="型号描述不清")).status_code == 200
    before = await snapshot(world, yoga["id"])
    r = await client.put(
        f"/api/listings/{yoga['id']}",
        json=listing_body(spec_model="THINKPAD X1"),
        headers=world.h("supplier_x"),
    )
    assert_problem(r, 409, "duplicate_listing")
    assert await snapshot(world, yoga["id"]) == before
    assert (await snapshot(world, first["id"]))["spec_model"] == "ThinkPad X1"


async def test_full_width_model_is_a_duplicate_too(client: Any, world: World) -> None:
    await create(client, world, spec_model="ThinkPad X1")
    before = await counts(world)
    r = await client.post(
        "/api/listings",
        # "ＴｈｉｎｋＰａｄ Ｘ１", as a Chinese input method in full-width mode types it
        json=listing_body(spec_model="\uff34\uff48\uff49\uff4e\uff4b\uff30\uff41\uff44 \uff38\uff11"),
        headers=world.h("supplier_x"),
    )
    assert_problem(r, 409, "duplicate_listing")
    assert await counts(world) == before


# -- price changes -------------------------------------------------------------------------------


async def test_price_change_rechecks_the_rule_and_keeps_a_history(client: Any, world: World) -> None:
    lid = (await live(client, world))["id"]
    sup = world.h("supplier_x")
    before = await snapshot(world, lid)
    refused = [
        (sup, {"price": "9450.01", "reference_price": "9000.00"}, 422, "price_above_reference"),
        (sup, {"price": "9000.00", "reference_price": "9000.00"}, 409, "price_unchanged"),
        (sup, {"price": "abc", "reference_price": "9000.00"}, 400, "price_invalid"),
        (sup, {"price": "-5", "reference_price": "9000.00"}, 400, "price_invalid"),
        (sup, {"price": "8000.00", "reference_price": ""}, 400, "price_invalid"),
        (sup, {"price": "1000000.00", "reference_price": "1000000.00"}, 400, "price_invalid"),
        (world.h("supplier_y"), {"price": "8000.00", "reference_price": "9000.00"}, 404, "listing_not_found"),
        (world.h("buyer_a"), {"price": "8000.00", "reference_price": "9000.00"}, 403, "forbidden"),
    ]
    for headers, payload, status, code in refused:
        r = await client.post(f"/api/listings/{lid}/price", json=payload, headers=headers)
        assert_problem(r, status, code)
    assert await snapshot(world, lid) == before
    assert (await client.get(f"/api/listings/{lid}")).json()["price"] == "9000.00"

    r = await client.post(
        f"/api/listings/{lid}/price",
        json={"price": "8800.00", "reference_price": "9000.00", "note": "促销"},
        headers=sup,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["price"], r.json()["status"]) == ("8800.00", "live")
    # Up to 5% above the reviewed reference applies at once.
    r = await client.post(
        f"/api/listings/{lid}/price", json={"price": "9450.00", "reference_price": "9000.00"}, headers=sup
    )
    assert r.status_code == 200, r.text
    # A new reference waits for the center (202); the reviewed price stays in force until approved.
    r = await client.post(
        f"/api/listings/{lid}/price", json={"price": "9450.00", "reference_price": "9400.00"}, headers=sup
    )
    assert r.status_code == 202, r.text  # only the reference changed: still a change, reviewed
    row = await row_of(world, lid)
    assert (row.price, row.reference_price, row.status) == (Decimal("9450.00"), Decimal("9000.00"), "live")
    request_id = r.json()["price_request"]["id"]
    r = await client.post(
        f"/api/review/prices/{request_id}", json={"decision": "approve"}, headers=world.h("center")
    )
    assert r.status_code == 200, r.text
    row = await row_of(world, lid)
    assert (row.price, row.reference_price, row.status) == (Decimal("9450.00"), Decimal("9400.00"), "live")

    r = await client.get(f"/api/listings/{lid}/prices")
    assert r.status_code == 200, r.text
    history = r.json()
    assert [(p["price"], p["reference_price"], p["previous_price"], p["note"]) for p in history] == [
        ("9450.00", "9400.00", "9450.00", "调价（经采购中心审核）"),
        ("9450.00", "9000.00", "8800.00", "调价"),
        ("8800.00", "9000.00", "9000.00", "促销"),
        ("9000.00", "9000.00", None, "首次报价"),
    ]
    assert [p["at"] for p in history] == sorted((p["at"] for p in history), reverse=True)
    trail = await audit_trail(world, lid)
    assert [(a, u) for a, u, _ in trail if a == "listing_price_changed"] == [
        ("listing_price_changed", uid(world, "supplier_x"))
    ] * 2
    assert [
        (a, u) for a, u, _ in trail if a.startswith("listing_price_") and a != "listing_price_changed"
    ] == [
        ("listing_price_requested", uid(world, "supplier_x")),
        ("listing_price_approved", uid(world, "center")),
    ]

    # A live price change is handed to the search index.
    async with world.db.read() as s:
        payloads = list(
            (
                await s.execute(
                    select(Outbox.payload).where(Outbox.topic == "search", Outbox.status == "pending")
                )
            )
            .scalars()
            .all()
        )
    assert (
        sum(1 for p in payloads if p == {"ids": [lid]}) == 4
    )  # approval + three price changes (one reviewed)


async def test_price_change_of_a_frozen_listing_is_refused(client: Any, world: World) -> None:
    lid = (await live(client, world))["id"]
    assert (await moderate(client, world, "center", lid, "freeze", "质量投诉待核查")).status_code == 200
    before = await snapshot(world, lid)
    r = await client.post(
        f"/api/listings/{lid}/price",
        json={"price": "8000.00", "reference_price": "9000.00"},
        headers=world.h("supplier_x"),
    )
    assert_problem(r, 403, "listing_frozen")
    assert await snapshot(world, lid) == before


# -- delist / relist by the supplier -------------------------------------------------------------


async def test_supplier_delists_and_relists(client: Any, world: World) -> None:
    lid = (await live(client, world))["id"]
    sup = world.h("supplier_x")

    r = await client.post(f"/api/listings/{lid}/delist", headers=sup)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "delisted"
    row = await row_of(world, lid)
    assert (row.status, row.status_by) == ("delisted", "supplier")
    assert_problem(await client.get(f"/api/listings/{lid}"), 404, "listing_not_found")

    before = await snapshot(world, lid)
    assert_problem(await client.post(f"/api/listings/{lid}/delist", headers=sup), 409, "listing_not_live")
    assert_problem(
        await client.post(f"/api/listings/{lid}/relist", headers=world.h("supplier_y")),
        404,
        "listing_not_found",
    )
    assert_problem(
        await client.post(f"/api/listings/{lid}/relist", headers=world.h("buyer_a")), 403, "forbidden"
    )
    # What the supplier took off, the supplier puts back (not the center).
    assert_problem(await moderate(client, world, "center", lid, "relist"), 403, "delisted_by_supplier")
    assert await snapshot(world, lid) == before

    r = await client.post(f"/api/listings/{lid}/relist", headers=sup)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "live"
    assert (await client.get(f"/api/listings/{lid}")).status_code == 200
    before = await snapshot(world, lid)
    assert_problem(await client.post(f"/api/listings/{lid}/relist", headers=sup), 409, "listing_not_delisted")
    assert await snapshot(world, lid) == before

    # A submitted listing is neither delisted nor relisted.
    pending = (await create(client, world, spec_model="P-1"))["id"]
    before = await snapshot(world, pending)
    assert_problem(await client.post(f"/api/listings/{pending}/delist", headers=sup), 409, "listing_not_live")
    assert_problem(
        await client.post(f"/api/listings/{pending}/relist", headers=sup), 409, "listing_not_delisted"
    )
    assert await snapshot(world, pending) == before

    assert [(a, u) for a, u, _ in await audit_trail(world, lid)] == [
        ("listing_created", uid(world, "supplier_x")),
        ("listing_approved", uid(world, "center")),
        ("listing_delisted", uid(world, "supplier_x")),
        ("listing_live", uid(world, "supplier_x")),
    ]


# -- moderation ----------------------------------------------------------------------------------


async def test_center_freezes_and_unfreezes(client: Any, world: World) -> None:
    lid = (await live(client, world))["id"]
    sup = world.h("supplier_x")
    before = await snapshot(world, lid)
    for reason in ("", " ", "冻"):
        assert_problem(await moderate(client, world, "center", lid, "freeze", reason), 400, "reason_required")
    assert_problem(await moderate(client, world, "center", lid, "explode", "原因原因"), 400, "invalid_action")
    assert_problem(await moderate(client, world, "center", lid, "unfreeze"), 409, "listing_wrong_state")
    assert_problem(await moderate(client, world, "supplier_x", lid, "freeze", "自己冻结"), 403, "forbidden")
    assert_problem(await moderate(client, world, "buyer_a", lid, "freeze", "采购人冻结"), 403, "forbidden")
    assert await snapshot(world, lid) == before

    r = await moderate(client, world, "center", lid, "freeze", "涉嫌虚假宣传")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["status_reason"]) == ("frozen", "涉嫌虚假宣传")
    row = await row_of(world, lid)
    assert (row.status, row.status_reason, row.status_by) == ("frozen", "涉嫌虚假宣传", "center")
    assert_problem(await client.get(f"/api/listings/{lid}"), 404, "listing_not_found")

    # The supplier can do nothing about a frozen listing.
    before = await snapshot(world, lid)
    assert_problem(await client.post(f"/api/listings/{lid}/relist", headers=sup), 403, "listing_frozen")
    assert_problem(await client.post(f"/api/listings/{lid}/delist", headers=sup), 403, "listing_frozen")
    assert_problem(await moderate(client, world, "supplier_x", lid, "unfreeze"), 403, "forbidden")
    assert_problem(
        await moderate(client, world, "center", lid, "freeze", "再次冻结"), 409, "listing_wrong_state"
    )
    assert await snapshot(world, lid) == before

    r = await moderate(client, world, "center", lid, "unfreeze")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["status_reason"]) == ("live", "")
    assert (await client.get(f"/api/listings/{lid}")).status_code == 200
    trail = await audit_trail(world, lid)
    assert trail[-2:] == [
        ("listing_freeze", uid(world, "center"), "涉嫌虚假宣传"),
        ("listing_unfreeze", uid(world, "center"), ""),
    ]


async def test_what_the_regulator_did_only_the_regulator_undoes(client: Any, world: World) -> None:
    lid = (await live(client, world))["id"]
    sup = world.h("supplier_x")

    async def only_relisted_by(authority: str, before: Any) -> None:
        """The supplier cannot relist what an authority delisted (nothing changes); the authority can."""
        assert_problem(
            await client.post(f"/api/listings/{lid}/relist", headers=sup),
            403,
            "listing_delisted_by_authority",
        )
        assert await snapshot(world, lid) == before
        r = await moderate(client, world, authority, lid, "relist")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "live"

    r = await moderate(client, world, "regulator", lid, "freeze", "价格异常，财政部门核查")
    assert r.status_code == 200, r.text
    assert (await row_of(world, lid)).status_by == "regulator"
    before = await snapshot(world, lid)
    assert_problem(await moderate(client, world, "center", lid, "unfreeze"), 403, "regulator_decision")
    assert_problem(await client.post(f"/api/listings/{lid}/relist", headers=sup), 403, "listing_frozen")
    assert await snapshot(world, lid) == before
    r = await moderate(client, world, "regulator", lid, "unfreeze")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "live"

    r = await moderate(client, world, "regulator", lid, "delist", "违规销售")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "delisted"
    before = await snapshot(world, lid)
    assert_problem(await moderate(client, world, "center", lid, "relist"), 403, "regulator_decision")
    await only_relisted_by("regulator", before)

    # What the center delisted, the center (not the supplier) puts back.
    assert (await moderate(client, world, "center", lid, "delist", "资质过期")).status_code == 200
    await only_relisted_by("center", await snapshot(world, lid))

    assert [(a, u) for a, u, _ in await audit_trail(world, lid)][2:] == [
        ("listing_freeze", uid(world, "regulator")),
        ("listing_unfreeze", uid(world, "regulator")),
        ("listing_delist", uid(world, "regulator")),
        ("listing_relist", uid(world, "regulator")),
        ("listing_delist", uid(world, "center")),
        ("listing_relist", uid(world, "center")),
    ]


async def test_center_cannot_undo_a_regulator_delisting_by_freezing_and_unfreezing(
    client: Any, world: World
) -> None:
    lid = (await live(client, world))["id"]
    assert (await moderate(client, world, "regulator", lid, "delist", "违规销售")).status_code == 200
    before = await snapshot(world, lid)
    assert_problem(
        await moderate(client, world, "center", lid, "freeze", "中心冻结"), 409, "listing_wrong_state"
    )
    assert_problem(await moderate(client, world, "center", lid, "unfreeze"), 409, "listing_wrong_state")
    assert_problem(await moderate(client, world, "center", lid, "relist"), 403, "regulator_decision")
    assert await snapshot(world, lid) == before
    assert (await row_of(world, lid)).status == "delisted"


async def test_a_listing_frozen_before_review_goes_back_to_the_review_queue(
    client: Any, world: World
) -> None:
    lid = (await create(client, world))["id"]
    r = await moderate(client, world, "regulator", lid, "freeze", "资质存疑")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "frozen"
    assert lid not in await queue_ids(client, world)
    before = await snapshot(world, lid)
    assert_problem(await review(client, world, lid), 409, "listing_not_submitted")
    assert_problem(await moderate(client, world, "center", lid, "unfreeze"), 403, "regulator_decision")
    assert await snapshot(world, lid) == before

    r = await moderate(client, world, "regulator", lid, "unfreeze")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "submitted"  # waiting for review again, not on sale
    row = await row_of(world, lid)
    assert (row.status, row.frozen_from, row.status_by, row.reviewed_at) == ("submitted", "", "", None)
    assert_problem(await client.get(f"/api/listings/{lid}"), 404, "listing_not_found")
    assert lid in await queue_ids(client, world)
    assert (await review(client, world, lid)).json()["status"] == "live"


async def test_a_listing_the_supplier_took_off_cannot_be_frozen_into_sale(client: Any, world: World) -> None:
    lid = (await live(client, world))["id"]
    assert (
        await client.post(f"/api/listings/{lid}/delist", headers=world.h("supplier_x"))
    ).status_code == 200
    before = await snapshot(world, lid)
    for who in ("center", "regulator"):
        assert_problem(
            await moderate(client, world, who, lid, "freeze", "冻结下架商品"), 409, "listing_wrong_state"
        )
    assert await snapshot(world, lid) == before


# -- 比价: the same model from several suppliers --------------------------------------------------


async def test_offers_show_the_same_model_live_from_every_supplier_cheapest_first(
    client: Any, world: World
) -> None:
    await world.org("supplier_z", OrgKind.SUPPLIER, "丙供应商有限公司")
    x = (await live(client, world, "supplier_x", spec_model="ThinkPad X1", price="9000.00"))["id"]
    y = (await live(client, world, "supplier_y", spec_model="thinkpad  x1", price="8800.00"))["id"]
    z = (await create(client, world, "supplier_z", spec_model="THINKPAD X1", price="8500.00"))["id"]
    await live(
        client, world, "supplier_y", spec_model="ThinkPad X1 Yoga", price="100.00", reference_price="100.00"
    )

    async def offers(listing_id: str) -> list[tuple[str, str, str]]:
        r = await client.get(f"/api/listings/{listing_id}/offers")
        assert r.status_code == 200, r.text
        return [(o["id"], o["price"], o["supplier_name"]) for o in r.json()]

    expected = [(y, "8800.00", "乙供应商有限公司"), (x, "9000.00", "甲供应商有限公司")]
    assert await offers(x) == expected  # z is not reviewed yet; the Yoga is another model
    assert await offers(y) == expected
    assert_problem(await client.get(f"/api/listings/{z}/offers"), 404, "listing_not_found")

    assert (await review(client, world, z)).status_code == 200
    assert await offers(x) == [(z, "8500.00", "丙供应商有限公司"), *expected]

    assert (await client.post(f"/api/listings/{y}/delist", headers=world.h("supplier_y"))).status_code == 200
    assert await offers(x) == [(z, "8500.00", "丙供应商有限公司"), (x, "9000.00", "甲供应商有限公司")]
    assert (await moderate(client, world, "center", z, "freeze", "质量投诉")).status_code == 200
    assert await offers(x) == [(x, "9000.00", "甲供应商有限公司")]
    # A cheaper price moves the offer to the top.
    r = await client.post(f"/api/listings/{y}/relist", headers=world.h("supplier_y"))
    assert r.status_code == 200, r.text
    r = await client.post(
        f"/api/listings/{x}/price",
        json={"price": "8700.00", "reference_price": "9000.00"},
        headers=world.h("supplier_x"),
    )
    assert r.status_code == 200, r.text
    assert await offers(y) == [(x, "8700.00", "甲供应商有限公司"), (y, "8800.00", "乙供应商有限公司")]


# -- the audit trail of a whole life -------------------------------------------------------------


async def test_every_step_of_a_listing_is_in_the_audit_log(client: Any, world: World) -> None:
    lid = (await create(client, world, draft=True))["id"]
    sup = world.h("supplier_x")
    steps: list[Callable[[], Awaitable[Any]]] = [
        lambda: client.post(f"/api/listings/{lid}/submit", headers=sup),
        lambda: review(client, world, lid, "reject", reason="图片不清晰"),
        lambda: client.put(f"/api/listings/{lid}", json=listing_body(), headers=sup),
        lambda: review(client, world, lid),
        lambda: client.post(
            f"/api/listings/{lid}/price", json={"price": "8999.00", "reference_price": "9000.00"}, headers=sup
        ),
        lambda: client.post(f"/api/listings/{lid}/delist", headers=sup),
        lambda: client.post(f"/api/listings/{lid}/relist", headers=sup),
        lambda: moderate(client, world, "center", lid, "freeze", "投诉核查"),
        lambda: moderate(client, world, "center", lid, "unfreeze"),
        lambda: moderate(client, world, "regulator", lid, "delist", "监管下架"),
        lambda: moderate(client, world, "regulator", lid, "relist"),
    ]
    for step in steps:
        r = await step()
        assert r.status_code == 200, r.text
    s, c, g = uid(world, "supplier_x"), uid(world, "center"), uid(world, "regulator")
    assert await audit_trail(world, lid) == [
        ("listing_created", s, "draft"),
        ("listing_submitted", s, ""),
        ("listing_rejected", c, "图片不清晰"),
        ("listing_edited", s, "submitted"),
        ("listing_approved", c, ""),
        ("listing_price_changed", s, "8999.00"),
        ("listing_delisted", s, ""),
        ("listing_live", s, ""),
        ("listing_freeze", c, "投诉核查"),
        ("listing_unfreeze", c, ""),
        ("listing_delist", g, "监管下架"),
        ("listing_relist", g, ""),
    ]

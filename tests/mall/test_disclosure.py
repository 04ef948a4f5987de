"""The public disclosure feed (信息公开): its fixed contract, the hash chain, paging under concurrency,
cancellations, the public page and `mall ledger verify`.

The chain is checked here with an independent verifier (hashlib + json), never with mall.disclosure's
own functions: consumers of the feed only have the published contract.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, text, update

from mall import orders
from mall.core import clock, retention
from mall.core.models import Outbox
from mall.core.settings import Settings
from mall.ledger import disclosure
from mall.ledger.models import DisclosureRecord
from mall.orders.models import Order
from tests.factories import World
from tests.mall.test_supermarket_flow import assert_problem, checkout

GENESIS = "0" * 64
SHANGHAI = ZoneInfo("Asia/Shanghai")
SUPPLIER_OF = {"laptop": "supplier_x", "printer": "supplier_x", "desk": "supplier_y"}

ITEM_KEYS = {
    "seq",
    "id",
    "kind",
    "amends",
    "mode",
    "order_no",
    "region_code",
    "published_at",
    "deal_date",
    "buyer",
    "supplier",
    "total_amount",
    "currency",
    "lines",
    "prev_hash",
    "hash",
}
LINE_KEYS = {"item_name", "brand", "spec_model", "category_code", "quantity", "unit", "unit_price", "amount"}
MONEY_RE = re.compile(r"^-?\d+\.\d{2}$")
QUANTITY_RE = re.compile(r"^\d+(\.\d{1,3})?$")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# ---------------------------------------------------------------- an independent verifier


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def expected_hash(item: dict[str, Any]) -> str:
    body = {k: v for k, v in item.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def verify_items(items: list[dict[str, Any]], *, first_seq: int = 1, prev: str = GENESIS) -> str:
    """Check seq continuity and the hash chain of consecutive feed items; returns the last hash."""
    for n, item in enumerate(items):
        assert item["seq"] == first_seq + n, [x["seq"] for x in items]
        assert item["prev_hash"] == prev, item["seq"]
        assert HEX64_RE.fullmatch(item["hash"]), item["hash"]
        assert item["hash"] == expected_hash(item), f"hash of seq {item['seq']} does not match its content"
        prev = item["hash"]
    return prev


# ---------------------------------------------------------------- helpers


@pytest.fixture
async def live(app: Any, world: World) -> AsyncIterator[httpx.AsyncClient]:
    """The app served in the test's own event loop, so requests run concurrently with the writers
    (the AsyncTestClient runs each request to completion in its portal thread, blocking the loop)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c
    await app.state.db.dispose()


async def feed(client: Any, **params: Any) -> dict[str, Any]:
    r = await client.get("/api/disclosures", params={k: str(v) for k, v in params.items()})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    assert set(body) == {"items", "next_after"}
    assert isinstance(body["next_after"], int) and not isinstance(body["next_after"], bool)
    # Served verbatim: every item is its own canonical JSON, non-ASCII characters unescaped.
    for item in body["items"]:
        assert canonical_json(item) in r.text
    return body


async def all_items(
    client: Any, *, limit: int = 500, max_pages: int = 1000, **filters: Any
) -> list[dict[str, Any]]:
    """Page through the feed with `after` until an empty page; checks next_after on the way."""
    out: list[dict[str, Any]] = []
    after = 0
    for _ in range(max_pages):
        page = await feed(client, after=after, limit=limit, **filters)
        items = page["items"]
        assert len(items) <= limit
        if not items:
            assert page["next_after"] == after
            return out
        seqs = [x["seq"] for x in items]
        assert seqs == sorted(seqs) and seqs[0] > after
        assert page["next_after"] == seqs[-1]
        out.extend(items)
        after = page["next_after"]
    raise AssertionError("feed did not end")


async def place(
    world: World, items: list[tuple[str, str]], *, who: str = "buyer_a", line: str = "a1"
) -> Order:
    """One order through the checkout service (all items of one supplier)."""
    req = orders.CheckoutRequest(
        budget_line_id=world.lines[line].id,
        idempotency_key=uuid.uuid4().hex,
        items=tuple((world.listings[k].id, q) for k, q in items),
    )
    placed, replayed = await orders.checkout(world.db, world.settings, world.who[who], req)
    assert not replayed and len(placed) == 1
    return placed[0]


async def deal(
    world: World,
    key: str = "laptop",
    qty: str = "1",
    *,
    who: str = "buyer_a",
    line: str = "a1",
    at: datetime | None = None,
    mode: str | None = None,
) -> Order:
    """Place and confirm an order (optionally confirming at a frozen instant, or as another mode)."""
    order = await place(world, [(key, qty)], who=who, line=line)
    if mode is not None:
        async with world.db.write() as tx:  # as if it came from another procurement mode
            await tx.session.execute(update(Order).where(Order.id == order.id).values(mode=mode))
    if at is not None:
        clock.clock.freeze(at)
    try:
        return await orders.confirm(world.db, world.who[SUPPLIER_OF[key]], order.id)
    finally:
        clock.clock.unfreeze()


def shanghai_date(at: datetime) -> str:
    return at.astimezone(SHANGHAI).date().isoformat()


# ---------------------------------------------------------------- the record's shape and values


async def test_deal_record_has_the_contract_shape_and_the_orders_values(
    client: Any, world: World, settings: Settings
) -> None:
    # Confirm at 16:30 UTC: already the next calendar day in China (00:30 Asia/Shanghai).
    now = clock.now()
    confirm_at = datetime(now.year, now.month, now.day, 16, 30, tzinfo=UTC)
    if confirm_at <= now:
        confirm_at += timedelta(days=1)
    assert confirm_at.date() != confirm_at.astimezone(SHANGHAI).date()

    r = await checkout(client, world, [("laptop", "2"), ("printer", "1")])
    assert r.status_code == 201, r.text
    order = r.json()["orders"][0]
    line_ids = {x["item_name"]: x["id"] for x in order["lines"]}
    clock.clock.freeze(confirm_at)
    try:
        r = await client.post(
            f"/api/orders/{order['id']}/confirm",
            json={"prices": {line_ids["商品laptop"]: "4800.00"}},
            headers=world.h("supplier_x"),
        )
    finally:
        clock.clock.unfreeze()
    assert r.status_code == 200, r.text
    confirmed = r.json()
    assert confirmed["total_amount"] == "10800.00"

    assert (await feed(client))["items"] == []  # nothing is public before the publisher runs
    before = datetime.now(UTC)
    assert await disclosure.publish_pending(world.db) == 1
    page = await feed(client)
    assert page["next_after"] == 1
    [item] = page["items"]

    assert set(item) == ITEM_KEYS
    assert type(item["seq"]) is int and item["seq"] == 1
    assert str(uuid.UUID(item["id"])) == item["id"] == confirmed["disclosure_id"]
    assert item["kind"] == "deal" and item["amends"] is None
    assert item["mode"] == "supermarket"
    assert item["order_no"] == order["order_no"]
    assert item["region_code"] == "410100"  # the buyer's region (甲单位, 郑州市), not the platform's 410000
    assert settings.region_code == "410000"
    assert RFC3339_RE.fullmatch(item["published_at"]), item["published_at"]
    published = datetime.fromisoformat(item["published_at"].replace("Z", "+00:00"))
    assert published.tzinfo is not None
    assert before - timedelta(seconds=5) <= published <= datetime.now(UTC) + timedelta(seconds=5)
    assert DATE_RE.fullmatch(item["deal_date"])
    assert item["deal_date"] == shanghai_date(confirm_at)  # the deal's date in China, not in UTC
    assert item["deal_date"] != confirm_at.date().isoformat()

    buyer, supplier = world.who["buyer_a"], world.who["supplier_x"]
    assert item["buyer"] == {"name": "甲单位", "credit_code": buyer.org_credit_code}
    assert item["supplier"] == {
        "name": "甲供应商有限公司",
        "credit_code": supplier.org_credit_code,
        "address": "甲供应商有限公司地址",
    }
    assert item["currency"] == "CNY"
    assert item["total_amount"] == "10800.00"  # after the supplier's lower price
    assert item["lines"] == [
        {
            "item_name": "商品laptop",
            "brand": "品牌laptop",
            "spec_model": "型号-laptop",
            "category_code": "A02010108",
            "quantity": "2",
            "unit": "台",
            "unit_price": "4800.00",
            "amount": "9600.00",
        },
        {
            "item_name": "商品printer",
            "brand": "品牌printer",
            "spec_model": "型号-printer",
            "category_code": "A02021003",
            "quantity": "1",
            "unit": "台",
            "unit_price": "1200.00",
            "amount": "1200.00",
        },
    ]
    for ln in item["lines"]:
        assert set(ln) == LINE_KEYS
        assert all(isinstance(v, str) for v in ln.values())
        assert MONEY_RE.fullmatch(ln["unit_price"]) and MONEY_RE.fullmatch(ln["amount"])
        assert QUANTITY_RE.fullmatch(ln["quantity"])
        assert Decimal(ln["unit_price"]) * Decimal(ln["quantity"]) == Decimal(ln["amount"])
    assert MONEY_RE.fullmatch(item["total_amount"])
    assert sum(Decimal(ln["amount"]) for ln in item["lines"]) == Decimal(item["total_amount"])
    assert item["prev_hash"] == GENESIS
    verify_items([item])

    # The single-record endpoint serves exactly the same JSON (byte for byte the canonical form).
    r = await client.get("/api/disclosures/1")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == item
    assert r.text == canonical_json(item)
    assert "\\u" not in r.text and "甲供应商有限公司" in r.text  # UTF-8, non-ASCII not escaped


async def test_unknown_record_is_a_404_problem(client: Any, world: World) -> None:
    assert_problem(await client.get("/api/disclosures/1"), 404, "record_not_found")
    await deal(world)
    await disclosure.publish_pending(world.db)
    assert (await client.get("/api/disclosures/1")).status_code == 200
    assert_problem(await client.get("/api/disclosures/2"), 404, "record_not_found")
    assert_problem(await client.get("/api/disclosures/987654321"), 404, "record_not_found")


@pytest.mark.parametrize(
    "params",
    [
        {"after": "abc"},
        {"after": "-1"},
        {"after": "1.5"},
        {"after": str(2**64)},
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "100000"},
        {"limit": "x"},
        {"mode": "foo"},
        {"kind": "foo"},
        {"from": "2026-13-01"},
        {"to": "2026-02-30"},
        {"from": "yesterday"},
        {"from": "2026-03-02", "to": "2026-03-01"},
        {"buyer_credit_code": "91440300708461136"},  # 17 characters
        {"supplier_credit_code": "91440300708461136"},
        {"supplier_credit_code": "91440300708461136TX"},  # 19
        {"buyer_credit_code": "9144030070846113-T"},
    ],
)
async def test_bad_feed_parameters_are_400_problems(client: Any, params: dict[str, str]) -> None:
    r = await client.get("/api/disclosures", params=params)
    detail = assert_problem(r, 400, "invalid_parameter")["detail"]
    if params.get("from") == "2026-03-02":  # said in words, not in parameter names
        assert detail == "起始日期不能晚于截止日期"


@pytest.mark.parametrize(
    "params", [{"after": "²"}, {"limit": "١٠"}, {"after": "１"}, {"after": " 1"}, {"after": "1e3"}]
)
async def test_only_ascii_digits_are_numbers(client: Any, params: dict[str, str]) -> None:
    # str.isdigit() would accept some of these (and int("²") then fails: a 500, not a 400).
    assert_problem(await client.get("/api/disclosures", params=params), 400, "invalid_parameter")


async def test_limits_edges_and_default(client: Any, world: World) -> None:
    # 120 records (staged straight into the outbox from one real confirmed order: cheap and realistic).
    order = await deal(world)
    async with world.db.read() as s:
        fresh = await s.get(Order, order.id)
        assert fresh is not None
        payload = orders.deal_payload(fresh)
    async with world.db.write() as tx:
        for _ in range(119):
            disclosure.stage(tx, payload)
    assert await disclosure.publish_pending(world.db, limit=500) == 120
    page = await feed(client)
    assert [x["seq"] for x in page["items"]] == list(range(1, 101))  # default limit is 100
    assert page["next_after"] == 100
    page = await feed(client, after=100)
    assert [x["seq"] for x in page["items"]] == list(range(101, 121)) and page["next_after"] == 120
    page = await feed(client, limit=500)
    assert len(page["items"]) == 120 and page["next_after"] == 120
    verify_items(page["items"])
    assert len({x["id"] for x in page["items"]}) == 120
    page = await feed(client, after=120, limit=1)
    assert page == {"items": [], "next_after": 120}
    page = await feed(client, after=10**9)
    assert page == {"items": [], "next_after": 120}  # a cursor past the end is brought back to the newest seq
    assert (await feed(client, after="", limit=""))["next_after"] == 100  # empty values mean the defaults


# ---------------------------------------------------------------- filters


async def test_filters_narrow_and_next_after_continues(client: Any, world: World) -> None:
    base = clock.now()
    plan = [  # (listing, buyer, budget line, days after now the supplier confirms, mode)
        ("laptop", "buyer_a", "a1", 1, "supermarket"),
        ("desk", "buyer_a", "a1", 2, "supermarket"),
        ("printer", "buyer_b", "b1", 2, "supermarket"),
        ("desk", "buyer_b", "b1", 4, "agreement"),
        ("laptop", "buyer_a", "a1", 6, "supermarket"),
        ("printer", "buyer_a", "a1", 8, "agreement"),
        ("desk", "buyer_b", "b1", 10, "supermarket"),
    ]
    made: list[dict[str, str]] = []
    for n, (key, who, line, days, mode) in enumerate(plan):
        at = base + timedelta(
            days=days, minutes=n
        )  # distinct instants: publication follows confirmation order
        o = await deal(world, key, who=who, line=line, at=at, mode=mode)
        made.append(
            {
                "order_no": o.order_no,
                "buyer": world.who[who].org_credit_code,
                "supplier": world.who[SUPPLIER_OF[key]].org_credit_code,
                "date": shanghai_date(at),
                "mode": mode,
            }
        )
        if len(made) % 3 == 0:
            await disclosure.publish_pending(world.db)
    await disclosure.publish_pending(world.db)

    everything = await all_items(client)
    verify_items(everything)
    assert [x["order_no"] for x in everything] == [m["order_no"] for m in made]
    seq_of = {x["order_no"]: x["seq"] for x in everything}

    def expected(pred: Any) -> list[int]:
        return [seq_of[m["order_no"]] for m in made if pred(m)]

    dates = sorted({m["date"] for m in made})
    a, b = world.who["buyer_a"].org_credit_code, world.who["buyer_b"].org_credit_code
    x, y = world.who["supplier_x"].org_credit_code, world.who["supplier_y"].org_credit_code
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"mode": "agreement"}, lambda m: m["mode"] == "agreement"),
        ({"mode": "supermarket"}, lambda m: m["mode"] == "supermarket"),
        ({"mode": "auction"}, lambda m: False),
        ({"buyer_credit_code": a}, lambda m: m["buyer"] == a),
        ({"buyer_credit_code": b}, lambda m: m["buyer"] == b),
        ({"supplier_credit_code": x}, lambda m: m["supplier"] == x),
        ({"supplier_credit_code": y}, lambda m: m["supplier"] == y),
        ({"from": dates[2]}, lambda m: m["date"] >= dates[2]),
        ({"to": dates[1]}, lambda m: m["date"] <= dates[1]),
        ({"from": dates[1], "to": dates[1]}, lambda m: m["date"] == dates[1]),
        ({"from": dates[1], "to": dates[3]}, lambda m: dates[1] <= m["date"] <= dates[3]),
        ({"from": "2000-01-01", "to": "2000-12-31"}, lambda m: False),
        (
            {"buyer_credit_code": b, "supplier_credit_code": y},
            lambda m: m["buyer"] == b and m["supplier"] == y,
        ),
        (
            {"mode": "supermarket", "buyer_credit_code": a, "from": dates[1]},
            lambda m: m["mode"] == "supermarket" and m["buyer"] == a and m["date"] >= dates[1],
        ),
    ]
    for params, pred in cases:
        want = expected(pred)
        assert [x["seq"] for x in await all_items(client, **params)] == want, params
        # Page one record at a time: next_after always points at the last matching record returned.
        got, after = [], 0
        for _ in range(len(want) + 2):
            page = await feed(client, after=after, limit=1, **params)
            if not page["items"]:
                assert page["next_after"] == after
                break
            [item] = page["items"]
            got.append(item["seq"])
            assert page["next_after"] == item["seq"]
            after = page["next_after"]
        assert got == want, params
        # Starting mid-way skips exactly the records at or before `after`.
        if want:
            mid = want[len(want) // 2]
            page = await feed(client, after=mid, **params)
            assert [x["seq"] for x in page["items"]] == [s for s in want if s > mid]
        # Every filtered item is identical to the same record in the unfiltered feed.
        for item in await all_items(client, **params):
            assert item == everything[item["seq"] - 1]


# ---------------------------------------------------------------- paging, publishing twice, concurrency


async def test_paging_with_small_limits_returns_each_record_exactly_once(client: Any, world: World) -> None:
    regulator = world.who["regulator"]
    for n in range(26):
        key = ("laptop", "desk", "printer")[n % 3]
        o = await deal(world, key, who="buyer_a" if n % 2 else "buyer_b", line="a1" if n % 2 else "b1")
        if n % 6 == 5:  # some deals are voided: cancellation records amend them
            await orders.void(world.db, regulator, o.id, "违规采购，予以作废")
        if n % 4 == 3:
            await disclosure.publish_pending(world.db)  # several publisher batches in one chain
    await disclosure.publish_pending(world.db)
    full = (await feed(client, limit=500))["items"]
    assert len(full) == 30
    verify_items(full)
    assert [x["kind"] for x in full].count("cancellation") == 4
    for limit in (1, 2, 3, 7, 29, 30, 31, 100):
        got = await all_items(client, limit=limit)
        assert [x["seq"] for x in got] == list(range(1, 31)), limit
        assert got == full


async def test_publishing_again_changes_nothing(client: Any, world: World) -> None:
    for _ in range(3):
        await deal(world)
    assert await disclosure.publish_pending(world.db) == 3
    first = (await feed(client))["items"]
    assert await disclosure.publish_pending(world.db) == 0
    assert await disclosure.publish_pending(world.db) == 0
    assert (await feed(client))["items"] == first
    await deal(world, "desk")
    assert await disclosure.publish_pending(world.db) == 1
    after = (await feed(client))["items"]
    assert after[:3] == first and len(after) == 4
    verify_items(after)


async def test_concurrent_publishers_never_duplicate_or_leave_gaps(client: Any, world: World) -> None:
    made = [await deal(world, ("laptop", "desk", "printer")[n % 3]) for n in range(12)]
    counts = await asyncio.gather(*[disclosure.publish_pending(world.db) for _ in range(6)])
    assert sum(counts) == 12
    # Small batches, many concurrent publishers, while more deals are being confirmed.
    more = [await place(world, [("desk", "1")]) for _ in range(8)]

    async def confirm_all() -> None:
        for o in more:
            await orders.confirm(world.db, world.who["supplier_y"], o.id)
            await asyncio.sleep(0)

    async def publisher() -> int:
        total = 0
        for _ in range(15):
            total += await disclosure.publish_pending(world.db, limit=2)
            await asyncio.sleep(0)
        return total

    _, *published = await asyncio.gather(confirm_all(), *[publisher() for _ in range(4)])
    total = 12 + sum(n for n in published if n) + await disclosure.publish_pending(world.db)
    assert total == 20
    items = await all_items(client, limit=7)
    verify_items(items)
    assert [x["seq"] for x in items] == list(range(1, 21))
    assert sorted(x["order_no"] for x in items) == sorted(o.order_no for o in made + more)
    assert len({x["id"] for x in items}) == 20
    async with world.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(DisclosureRecord)) == 20
        assert (
            await s.scalar(select(func.count()).where(Outbox.status != "done", Outbox.topic == "disclosure"))
            == 0
        )
    result = await disclosure.verify_chain(world.db)
    assert result.ok and result.checked == 20


async def test_reader_paging_while_deals_are_published_sees_every_record_once(
    live: Any, world: World
) -> None:
    client = live
    writers, per_writer = 4, 5
    placed = [await place(world, [(k, "1")]) for k in ["laptop", "desk"] * (writers * per_writer // 2)]
    n = len(placed)
    done = asyncio.Event()

    async def writer(mine: list[Order]) -> None:
        for o in mine:
            supplier = world.who[
                "supplier_x" if o.supplier_org_id == world.who["supplier_x"].org_id else "supplier_y"
            ]
            await orders.confirm(world.db, supplier, o.id)
            await disclosure.publish_pending(world.db)
            await asyncio.sleep(0.002)

    async def writers_then_done() -> None:
        try:
            await asyncio.gather(*[writer(placed[i::writers]) for i in range(writers)])
        finally:
            done.set()

    async def reader(limit: int) -> tuple[list[dict[str, Any]], int]:
        seen: list[dict[str, Any]] = []
        after, polls = 0, 0
        finished = False
        for polls in range(1, 3000):  # bounded
            was_done = done.is_set()
            page = await feed(client, after=after, limit=limit)
            items = page["items"]
            # No gap at any moment: a page always continues exactly where the cursor stands.
            assert [x["seq"] for x in items] == list(range(after + 1, after + 1 + len(items))), (after, items)
            assert page["next_after"] == (items[-1]["seq"] if items else after)
            seen.extend(items)
            after = page["next_after"]
            if was_done and not items:
                finished = True
                break
            await asyncio.sleep(0.001)
        assert finished, "reader loop bound reached"
        return seen, polls

    _, (seen1, polls1), (seen2, _) = await asyncio.gather(writers_then_done(), reader(3), reader(1))
    for seen in (seen1, seen2):
        assert [x["seq"] for x in seen] == list(range(1, n + 1))
        verify_items(seen)
    assert seen1 == seen2
    assert polls1 > 1
    assert sorted(x["order_no"] for x in seen1) == sorted(o.order_no for o in placed)


# ---------------------------------------------------------------- cancellations


async def test_cancellation_after_publication_amends_and_never_rewrites(client: Any, world: World) -> None:
    r = await checkout(client, world, [("desk", "3")])
    oid = r.json()["orders"][0]["id"]
    sup, buy = world.h("supplier_y"), world.h("buyer_a")
    assert (await client.post(f"/api/orders/{oid}/confirm", headers=sup)).status_code == 200
    assert await disclosure.publish_pending(world.db) == 1
    original = (await client.get("/api/disclosures/1")).text

    r = await client.post(f"/api/orders/{oid}/cancel-request", json={"reason": "预算调整"}, headers=buy)
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/orders/{oid}/cancel-answer", json={"agree": True}, headers=sup)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert await disclosure.publish_pending(world.db) == 1

    deal_item, cancel_item = (await feed(client))["items"]
    assert (await client.get("/api/disclosures/1")).text == original  # the deal record is unchanged
    assert canonical_json(deal_item) == original
    assert cancel_item["seq"] == 2 and cancel_item["kind"] == "cancellation"
    assert cancel_item["amends"] == deal_item["id"] and cancel_item["id"] != deal_item["id"]
    assert set(cancel_item) == ITEM_KEYS
    for same in (
        "order_no",
        "mode",
        "region_code",
        "buyer",
        "supplier",
        "deal_date",
        "currency",
        "total_amount",
        "lines",
    ):
        assert cancel_item[same] == deal_item[same], same
    verify_items([deal_item, cancel_item])
    # Its page names the amount for what it is: the deal's, cancelled; the deal's page says 成交金额.
    page = (await client.get("/disclosures/2", headers={"Accept": "text/html"})).text
    assert "<dt>撤销的成交金额</dt>" in page and "<dt>成交金额</dt>" not in page
    assert "<dt>成交金额</dt>" in (await client.get("/disclosures/1", headers={"Accept": "text/html"})).text
    listed = (await client.get("/disclosures", headers={"Accept": "text/html"})).text
    assert "<del>" in listed and "已撤销" in listed

    # A withdrawn order that was never confirmed was never a deal: nothing to disclose.
    oid = (await checkout(client, world, [("desk", "1")])).json()["orders"][0]["id"]
    r = await client.post(f"/api/orders/{oid}/cancel", json={"reason": "需求变更"}, headers=buy)
    assert r.status_code == 200
    oid = (await checkout(client, world, [("desk", "1")])).json()["orders"][0]["id"]
    r = await client.post(f"/api/orders/{oid}/decline", json={"reason": "暂时缺货"}, headers=sup)
    assert r.status_code == 200
    assert await disclosure.publish_pending(world.db) == 0

    # A voided contract (after filing) is amended the same way.
    oid = (await checkout(client, world, [("laptop", "1")])).json()["orders"][0]["id"]
    await client.post(f"/api/orders/{oid}/confirm", headers=world.h("supplier_x"))
    await client.post(f"/api/orders/{oid}/contract", headers=buy)
    await disclosure.publish_pending(world.db)
    r = await client.post(
        f"/api/orders/{oid}/void", json={"reason": "违规采购"}, headers=world.h("regulator")
    )
    assert r.status_code == 200
    await disclosure.publish_pending(world.db)
    items = (await feed(client))["items"]
    verify_items(items)
    assert [(x["seq"], x["kind"]) for x in items] == [
        (1, "deal"),
        (2, "cancellation"),
        (3, "deal"),
        (4, "cancellation"),
    ]
    assert items[3]["amends"] == items[2]["id"]
    assert (await feed(client, kind="cancellation"))["items"] == [items[1], items[3]]


# ---------------------------------------------------------------- the public page


async def test_public_disclosures_page_lists_the_deals(client: Any, world: World) -> None:
    first = await deal(world)
    second = await deal(world, "desk", who="buyer_b", line="b1")
    await disclosure.publish_pending(world.db)
    html = {"Accept": "text/html"}
    r = await client.get("/disclosures", headers=html)
    assert r.status_code == 200, r.text[:2000]
    assert r.headers["content-type"].startswith("text/html")
    assert first.order_no in r.text and second.order_no in r.text
    r = await client.get(
        "/disclosures", params={"buyer_credit_code": world.who["buyer_b"].org_credit_code}, headers=html
    )
    assert r.status_code == 200
    assert second.order_no in r.text and first.order_no not in r.text
    r = await client.get("/disclosures", params={"from": "2026-13-01"}, headers=html)
    assert r.status_code == 200  # a bad filter is explained on the page, not an error page
    r = await client.get("/disclosures/1", headers=html)
    assert r.status_code == 200 and first.order_no in r.text


# ---------------------------------------------------------------- mall ledger verify


def run_cli(settings: Settings, tmp: Path) -> subprocess.CompletedProcess[str]:
    mall = Path(sys.executable).parent / "mall"
    env = {**os.environ, "DATABASE_URL": settings.resolved_database_url, "MALL_DATA_KEY": settings.data_key}
    env.pop("MALL_SETTINGS_FILE", None)
    return subprocess.run(
        [str(mall), "ledger", "verify"],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def cli_in_process(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`mall.cli.main(["ledger", "verify"])` (it runs its own event loop: call it from a thread)."""
    from mall import cli

    monkeypatch.setenv("DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("MALL_DATA_KEY", settings.data_key)
    monkeypatch.delenv("MALL_SETTINGS_FILE", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["ledger", "verify"])
    return exit_info.value.code


@pytest.mark.slow
async def test_ledger_verify_detects_a_tampered_record(
    client: Any, world: World, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("laptop", "desk", "printer"):
        await deal(world, key)
    await disclosure.publish_pending(world.db)
    result = await disclosure.verify_chain(world.db)
    assert result.ok and result.checked == 3
    proc = await asyncio.to_thread(run_cli, settings, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "共 3 条记录" in proc.stdout
    assert await asyncio.to_thread(cli_in_process, settings, monkeypatch) == 0

    async with world.db.read() as s:
        original = await s.scalar(select(DisclosureRecord.body).where(DisclosureRecord.seq == 2))
    assert original is not None
    record = json.loads(original)
    record["total_amount"] = "1.00"  # someone quietly rewrites a published amount
    tampered = canonical_json(record)
    async with world.db.engine.begin() as conn, retention.opened(conn):
        await conn.execute(text("UPDATE disclosure_records SET body = :b WHERE seq = 2"), {"b": tampered})
    assert (await client.get("/api/disclosures/2")).json()["total_amount"] == "1.00"

    result = await disclosure.verify_chain(world.db)
    assert not result.ok and result.seq == 2 and result.checked == 1
    proc = await asyncio.to_thread(run_cli, settings, tmp_path)
    assert proc.returncode != 0
    assert "第 2 条" in proc.stderr, proc.stderr
    assert await asyncio.to_thread(cli_in_process, settings, monkeypatch) == 1
    # An outside auditor spots it from the public feed alone.
    with pytest.raises(AssertionError, match="seq 2"):
        verify_items((await feed(client))["items"])

    async with world.db.engine.begin() as conn, retention.opened(conn):
        await conn.execute(text("UPDATE disclosure_records SET body = :b WHERE seq = 2"), {"b": original})
    assert (await disclosure.verify_chain(world.db)).ok
    proc = await asyncio.to_thread(run_cli, settings, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


async def test_ledger_verify_detects_a_removed_or_rehashed_record(world: World) -> None:
    for key in ("laptop", "desk", "printer"):
        await deal(world, key)
    await disclosure.publish_pending(world.db)
    async with world.db.read() as s:
        body = await s.scalar(select(DisclosureRecord.body).where(DisclosureRecord.seq == 2))
    assert body is not None
    # Rewritten and re-hashed consistently: the next record's prev_hash no longer matches.
    record = json.loads(body)
    record["supplier"]["name"] = "别的公司"
    record["hash"] = expected_hash(record)
    async with world.db.engine.begin() as conn, retention.opened(conn):
        await conn.execute(
            text("UPDATE disclosure_records SET body = :b, hash = :h WHERE seq = 2"),
            {"b": canonical_json(record), "h": record["hash"]},
        )
    result = await disclosure.verify_chain(world.db)
    assert not result.ok and result.seq == 3
    # A deleted record leaves a gap.
    async with world.db.engine.begin() as conn, retention.opened(conn):
        await conn.execute(text("DELETE FROM disclosure_records WHERE seq = 2"))
    result = await disclosure.verify_chain(world.db)
    assert not result.ok and result.seq == 3


def test_local_date_is_the_date_in_china() -> None:
    assert clock.local_date(datetime(2026, 3, 1, 16, 0, tzinfo=UTC)) == date(2026, 3, 2)
    assert clock.local_date(datetime(2026, 3, 1, 15, 59, 59, tzinfo=UTC)) == date(2026, 3, 1)


async def test_a_cancellation_staged_in_the_same_instant_is_never_published_before_its_deal(
    client: Any, world: World
) -> None:
    """With the clock frozen, the deal's and the cancellation's outbox rows share created_at; the
    publisher must still put the deal first, whatever the rows' random ids say."""
    from mall import orders
    from mall.core import clock

    frozen = clock.now()
    clock.clock.freeze(frozen)
    try:
        for _ in range(6):
            r = await checkout(client, world, [("laptop", "1")])
            oid = uuid.UUID(r.json()["orders"][0]["id"])
            await orders.confirm(world.db, world.who["supplier_x"], oid)
            await orders.request_cancel(world.db, world.who["buyer_a"], oid, "预算调整")
            await orders.answer_cancel(world.db, world.who["supplier_x"], oid, True)
        await disclosure.publish_pending(world.db)
    finally:
        clock.clock.unfreeze()
    items = (await client.get("/api/disclosures")).json()["items"]
    seen: set[str] = set()
    for item in items:
        if item["amends"]:
            assert item["amends"] in seen, "a cancellation was published before the deal it amends"
        seen.add(item["id"])
    assert [i["kind"] for i in items].count("cancellation") == 6


async def test_strict_date_and_credit_code_parameters(client: Any, world: World) -> None:
    for query in [
        "from=20260301",
        "to=2026-W09-1",
        "buyer_credit_code=" + "甲" * 18,
        "supplier_credit_code=" + "１" * 18,
    ]:
        r = await client.get(f"/api/disclosures?{query}")
        assert_problem(r, 400, "invalid_parameter")


async def test_a_cursor_past_the_end_is_brought_back(client: Any, world: World) -> None:
    body = (await client.get("/api/disclosures?after=99999")).json()
    assert body == {"items": [], "next_after": 0}


async def test_the_list_names_the_main_item_without_repeating_its_brand_and_model(
    client: Any, world: World
) -> None:
    await world.listing("m437", "supplier_x", "4599.00", name="品牌m437 型号-m437 台式计算机")
    order = await place(world, [("m437", "1")])
    await orders.confirm(world.db, world.who["supplier_x"], order.id)
    await deal(world, "desk")
    await disclosure.publish_pending(world.db)
    listed = (await client.get("/disclosures", headers={"Accept": "text/html"})).text
    assert listed.count("品牌m437") == 1  # in the name, not once more beside it
    assert "商品desk" in listed and "品牌desk 型号-desk" in listed  # a name without them gets them beside

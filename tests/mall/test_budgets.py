"""Budget lines (无预算不采购): reserve, release, consume, their audit trail — and no overspending under
concurrent checkouts, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from catalog.models import Listing
from mall import budgets, orders
from mall.budgets.models import BudgetLine, BudgetMovement
from mall.core.errors import Conflict, DomainError, RuleViolation
from mall.orders.models import Checkout, Order
from tests.factories import World
from tests.mall.test_payments import settle
from tests.mall.test_supermarket_flow import assert_problem, checkout

D = Decimal


@pytest.fixture
async def live(app: Any, world: World) -> AsyncIterator[httpx.AsyncClient]:
    """The app served in the test's own event loop, so concurrent requests really run concurrently
    (the AsyncTestClient runs each request to completion in its portal thread, one at a time)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c
    await app.state.db.dispose()


@pytest.fixture(params=["testclient", "asgi"])
async def http(request: pytest.FixtureRequest, app: Any, world: World) -> AsyncIterator[Any]:
    """Both ways of talking HTTP to the app: Litestar's AsyncTestClient and a truly concurrent ASGI transport."""
    if request.param == "testclient":
        from litestar.testing import AsyncTestClient

        async with AsyncTestClient(app=app) as c:
            yield c
        return
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c
    await app.state.db.dispose()


async def state(world: World, line_id: uuid.UUID) -> tuple[Decimal, Decimal, Decimal]:
    """(reserved, consumed, available) as stored."""
    async with world.db.read() as s:
        line = await s.get(BudgetLine, line_id)
        assert line is not None
        return line.reserved, line.consumed, line.available


async def movements(world: World, line_id: uuid.UUID) -> list[tuple[str, Decimal]]:
    async with world.db.read() as s:
        rows = await s.execute(
            select(BudgetMovement.kind, BudgetMovement.amount).where(BudgetMovement.budget_line_id == line_id)
        )
        return sorted((k, a) for k, a in rows.all())


def totals(moves: list[tuple[str, Decimal]]) -> dict[str, Decimal]:
    out = {"reserve": D(0), "release": D(0), "consume": D(0)}
    for kind, amount in moves:
        out[kind] += amount
    return out


async def assert_trail_matches(world: World, line_id: uuid.UUID) -> None:
    """The audit trail explains the line: reserved = reserves - releases - consumed, consumed = consumes."""
    reserved, consumed, _ = await state(world, line_id)
    t = totals(await movements(world, line_id))
    assert t["consume"] == consumed
    assert t["reserve"] - t["release"] - t["consume"] == reserved


async def an_order_id(world: World) -> uuid.UUID:
    """A real order to hang movements on (the column references orders)."""
    req = orders.CheckoutRequest(
        budget_line_id=world.lines["b1"].id,
        idempotency_key=uuid.uuid4().hex,
        items=((world.listings["desk"].id, "1"),),
    )
    placed, _ = await orders.checkout(world.db, world.settings, world.who["buyer_b"], req)
    return placed[0].id


# ---------------------------------------------------------------- the unit operations


async def test_reserve_until_exhausted_then_refuse_without_change(world: World) -> None:
    line = await world.budget("u1", "buyer_a", "10000.00")
    oid = await an_order_id(world)
    async with world.db.write() as tx:
        await budgets.reserve(tx.session, line.id, D("2500.00"), oid)
    assert await state(world, line.id) == (D("2500.00"), D(0), D("7500.00"))

    # Refused inside a transaction that goes on and commits: the line is untouched, no movement is written.
    async with world.db.write() as tx:
        with pytest.raises(RuleViolation) as info:
            await budgets.reserve(tx.session, line.id, D("7500.01"), oid)
        assert info.value.code == "budget_insufficient"
        assert "7,500.00" in info.value.detail and "7,500.01" in info.value.detail
    assert await state(world, line.id) == (D("2500.00"), D(0), D("7500.00"))
    assert await movements(world, line.id) == [("reserve", D("2500.00"))]

    # Exactly the available amount is fine; then not one 分 more.
    async with world.db.write() as tx:
        await budgets.reserve(tx.session, line.id, D("7500.00"), oid)
    assert await state(world, line.id) == (D("10000.00"), D(0), D(0))
    with pytest.raises(RuleViolation) as info:
        async with world.db.write() as tx:
            await budgets.reserve(tx.session, line.id, D("0.01"), oid)
    assert info.value.code == "budget_insufficient"
    assert await state(world, line.id) == (D("10000.00"), D(0), D(0))
    assert await movements(world, line.id) == [("reserve", D("2500.00")), ("reserve", D("7500.00"))]
    await assert_trail_matches(world, line.id)


async def test_a_failed_reservation_rolls_back_the_whole_transaction(world: World) -> None:
    line = await world.budget("u2", "buyer_a", "1000.00")
    oid = await an_order_id(world)
    with pytest.raises(RuleViolation):
        async with world.db.write() as tx:
            await budgets.reserve(tx.session, line.id, D("600.00"), oid)
            await budgets.reserve(tx.session, line.id, D("600.00"), oid)  # only 400 left
    assert await state(world, line.id) == (D(0), D(0), D("1000.00"))
    assert await movements(world, line.id) == []


async def test_release_returns_money_and_refuses_more_than_reserved(world: World) -> None:
    line = await world.budget("u3", "buyer_a", "10000.00")
    oid = await an_order_id(world)
    async with world.db.write() as tx:
        await budgets.reserve(tx.session, line.id, D("3000.00"), oid)
        await budgets.release(tx.session, line.id, D("1000.50"), oid)
    assert await state(world, line.id) == (D("1999.50"), D(0), D("8000.50"))
    with pytest.raises(Conflict) as info:
        async with world.db.write() as tx:
            await budgets.release(tx.session, line.id, D("1999.51"), oid)
    assert info.value.code == "budget_release_failed"
    assert await state(world, line.id) == (D("1999.50"), D(0), D("8000.50"))
    async with world.db.write() as tx:
        await budgets.shrink(tx.session, line.id, D(0), oid)  # shrinking by nothing writes nothing
        await budgets.release(tx.session, line.id, D("1999.50"), oid)
    assert await state(world, line.id) == (D(0), D(0), D("10000.00"))
    assert await movements(world, line.id) == [
        ("release", D("1000.50")),
        ("release", D("1999.50")),
        ("reserve", D("3000.00")),
    ]
    await assert_trail_matches(world, line.id)


async def test_consume_with_a_lower_paid_amount_releases_the_difference(world: World) -> None:
    line = await world.budget("u4", "buyer_a", "20000.00")
    oid = await an_order_id(world)
    async with world.db.write() as tx:
        await budgets.reserve(tx.session, line.id, D("9600.00"), oid)
        await budgets.reserve(tx.session, line.id, D("1000.00"), oid)
    async with world.db.write() as tx:
        await budgets.consume(tx.session, line.id, D("9600.00"), D("9123.45"), oid)
    assert await state(world, line.id) == (D("1000.00"), D("9123.45"), D("9876.55"))
    assert await movements(world, line.id) == [
        ("consume", D("9123.45")),
        ("release", D("476.55")),
        ("reserve", D("1000.00")),
        ("reserve", D("9600.00")),
    ]

    # Paying the full reservation writes no release.
    async with world.db.write() as tx:
        await budgets.consume(tx.session, line.id, D("1000.00"), D("1000.00"), oid)
    assert await state(world, line.id) == (D(0), D("10123.45"), D("9876.55"))
    assert totals(await movements(world, line.id))["release"] == D("476.55")
    await assert_trail_matches(world, line.id)

    # Paying more than was reserved is refused; so is consuming a reservation that is not there.
    with pytest.raises(RuleViolation) as info:
        async with world.db.write() as tx:
            await budgets.consume(tx.session, line.id, D("100.00"), D("100.01"), oid)
    assert info.value.code == "payment_exceeds_reservation"
    with pytest.raises(Conflict) as c_info:
        async with world.db.write() as tx:
            await budgets.consume(tx.session, line.id, D("100.00"), D("100.00"), oid)
    assert c_info.value.code == "budget_consume_failed"
    assert await state(world, line.id) == (D(0), D("10123.45"), D("9876.55"))
    await assert_trail_matches(world, line.id)


async def test_the_database_itself_refuses_an_overspent_line(world: World) -> None:
    line = await world.budget("u5", "buyer_a", "100.00")
    with pytest.raises(IntegrityError):
        async with world.db.write() as tx:
            # 分: 100.00 + 0.01 reserved on a 100.00 line violates the table's CHECK constraint.
            await tx.session.execute(
                text("UPDATE budget_lines SET reserved = 10001 WHERE project_code = 'P-u5'")
            )
    assert await state(world, line.id) == (D(0), D(0), D("100.00"))


async def test_order_lifecycle_keeps_the_trail(client: Any, world: World) -> None:
    line = await world.budget("u6", "buyer_a", "30000.00")
    r = await checkout(client, world, [("laptop", "2")], line="u6")
    order = r.json()["orders"][0]
    oid = order["id"]
    assert await state(world, line.id) == (D("10000.00"), D(0), D("20000.00"))
    sup, buy = world.h("supplier_x"), world.h("buyer_a")
    r = await client.post(
        f"/api/orders/{oid}/confirm", json={"prices": {order["lines"][0]["id"]: "4750.00"}}, headers=sup
    )
    assert r.status_code == 200, r.text
    assert await state(world, line.id) == (D("9500.00"), D(0), D("20500.00"))
    for path, headers, payload in [
        ("sign", sup, None),
        ("sign", buy, None),
        ("contract", buy, None),
        ("ship", sup, {"note": "SF1"}),
        ("receive", buy, None),
        ("accept", buy, {"inspectors": ["王建国"], "score": 5, "comment": ""}),
    ]:
        r = await client.post(f"/api/orders/{oid}/{path}", json=payload, headers=headers)
        assert r.status_code == 200, (path, r.text)
    await settle(world, uuid.UUID(oid), world.who["supplier_x"], world.who["buyer_a"])
    assert await state(world, line.id) == (D(0), D("9500.00"), D("20500.00"))
    assert await movements(world, line.id) == [
        ("consume", D("9500.00")),
        ("release", D("500.00")),
        ("reserve", D("10000.00")),
    ]
    await assert_trail_matches(world, line.id)

    # A cancelled order gives everything back.
    oid = (await checkout(client, world, [("desk", "3")], line="u6")).json()["orders"][0]["id"]
    assert (await state(world, line.id))[0] == D("2400.00")
    r = await client.post(f"/api/orders/{oid}/cancel", json={"reason": "需求变更"}, headers=buy)
    assert r.status_code == 200
    assert await state(world, line.id) == (D(0), D("9500.00"), D("20500.00"))
    await assert_trail_matches(world, line.id)


# ---------------------------------------------------------------- concurrency: never overspend


def _request(world: World, line: str, qty: str, key: str | None = None) -> orders.CheckoutRequest:
    return orders.CheckoutRequest(
        budget_line_id=world.lines[line].id,
        idempotency_key=key or uuid.uuid4().hex,
        items=((world.listings["laptop"].id, qty),),
    )


async def _stock(world: World) -> Decimal:
    async with world.db.read() as s:
        listing = await s.get(Listing, world.listings["laptop"].id)
        assert listing is not None
        return listing.stock


@pytest.mark.parametrize(
    ("budget", "qty", "n", "expected_ok"),
    [
        ("50000.00", "1", 20, 10),  # 20 × 5,000.00 against 50,000.00
        ("52000.00", "2", 8, 5),  # 8 × 10,000.00: five fit (50,000.00), 2,000.00 stays available
    ],
)
async def test_concurrent_checkouts_never_overspend_a_line(
    world: World, budget: str, qty: str, n: int, expected_ok: int
) -> None:
    line = await world.budget("hot", "buyer_a", budget)
    stock_before = await _stock(world)
    who = world.who["buyer_a"]
    results = await asyncio.gather(
        *[orders.checkout(world.db, world.settings, who, _request(world, "hot", qty)) for _ in range(n)],
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    unexpected = [r for r in failed if not (isinstance(r, RuleViolation) and r.code == "budget_insufficient")]
    assert not unexpected, unexpected
    assert len(ok) == expected_ok and len(failed) == n - expected_ok
    assert all(replayed is False and len(placed) == 1 for placed, replayed in ok)

    per_order = D("5000.00") * D(qty)
    reserved, consumed, available = await state(world, line.id)
    assert reserved == per_order * expected_ok
    assert consumed == 0
    assert available == D(budget) - per_order * expected_ok
    assert available >= 0 and available < per_order
    async with world.db.read() as s:
        assert (
            await s.scalar(select(func.count()).select_from(Order).where(Order.budget_line_id == line.id))
            == expected_ok
        )
        assert (
            await s.scalar(select(func.count()).select_from(Checkout)) == expected_ok
        )  # refused ones leave no checkout row
    moves = await movements(world, line.id)
    assert moves == [("reserve", per_order)] * expected_ok
    assert totals(moves)["reserve"] == reserved
    # All or nothing: refused checkouts took no stock either.
    assert await _stock(world) == stock_before - D(qty) * expected_ok


async def test_concurrent_http_checkouts_never_overspend_a_line(http: Any, world: World) -> None:
    client = http
    line = await world.budget("hot", "buyer_a", "50000.00")
    responses = await asyncio.gather(
        *[checkout(client, world, [("laptop", "1")], line="hot") for _ in range(20)]
    )
    created = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(created) == 10 and len(refused) == 10, [r.status_code for r in responses]
    for r in refused:
        assert_problem(r, 422, "budget_insufficient")
    assert all(r.json()["orders"][0]["total_amount"] == "5000.00" for r in created)
    assert len({r.json()["orders"][0]["id"] for r in created}) == 10
    reserved, consumed, available = await state(world, line.id)
    assert (reserved, consumed, available) == (D("50000.00"), D(0), D(0))
    r = await client.get("/api/orders", params={"per_page": 100}, headers=world.h("buyer_a"))
    assert r.json()["total"] == 10
    moves = await movements(world, line.id)
    assert moves == [("reserve", D("5000.00"))] * 10
    r = await client.get("/api/budgets", headers=world.h("buyer_a"))
    hot = next(b for b in r.json() if b["id"] == str(line.id))
    assert hot["reserved"] == "50000.00" and hot["available"] == "0.00"


async def test_concurrent_replays_of_one_idempotency_key_make_one_order(http: Any, world: World) -> None:
    client = http
    line = await world.budget("hot", "buyer_a", "50000.00")
    responses = await asyncio.gather(
        *[checkout(client, world, [("laptop", "1")], key="same-key-concurrent", line="hot") for _ in range(8)]
    )
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201], [r.text for r in responses]
    assert all(r.json()["replayed"] is (r.status_code == 200) for r in responses)
    assert len({r.json()["orders"][0]["id"] for r in responses}) == 1
    assert await state(world, line.id) == (D("5000.00"), D(0), D("45000.00"))
    assert await movements(world, line.id) == [("reserve", D("5000.00"))]


async def test_concurrent_same_key_different_body_is_refused(live: Any, world: World) -> None:
    # The twin that loses the race on the (user, key) index must still compare request bodies.
    await world.budget("hot", "buyer_a", "50000.00")
    for attempt in range(5):
        key = f"twin-key-{attempt}-{uuid.uuid4().hex[:8]}"
        a, b = await asyncio.gather(
            checkout(live, world, [("laptop", "1")], key=key, line="hot"),
            checkout(live, world, [("laptop", "2")], key=key, line="hot"),
        )
        assert sorted([a.status_code, b.status_code]) == [201, 409], (a.text, b.text)
        assert_problem(a if a.status_code == 409 else b, 409, "idempotency_key_reused")


async def test_concurrent_refusal_message_reports_the_current_available_amount(world: World) -> None:
    # The refusal message must report the line as it is after waiting for the row lock, not as first read.
    await world.budget("hot", "buyer_a", "50000.00")
    who = world.who["buyer_a"]
    results = await asyncio.gather(
        *[orders.checkout(world.db, world.settings, who, _request(world, "hot", "1")) for _ in range(20)],
        return_exceptions=True,
    )
    details = [str(r) for r in results if isinstance(r, RuleViolation)]
    assert len(details) == 10
    assert all("可用 0.00 元" in d for d in details), details


async def test_sequential_checkouts_refuse_the_eleventh(world: World) -> None:
    line = await world.budget("seq", "buyer_a", "50000.00")
    who = world.who["buyer_a"]
    for _ in range(10):
        await orders.checkout(world.db, world.settings, who, _request(world, "seq", "1"))
    with pytest.raises(DomainError) as info:
        await orders.checkout(world.db, world.settings, who, _request(world, "seq", "1"))
    assert info.value.code == "budget_insufficient"
    assert await state(world, line.id) == (D("50000.00"), D(0), D(0))


async def test_absurd_quantity_is_a_400_not_a_500(client: Any, world: World) -> None:
    # Huge numbers once escaped as decimal.InvalidOperation (a 500); they are input errors.
    assert_problem(await checkout(client, world, [("laptop", "1e30")]), 400, "invalid_quantity")


async def test_absurd_confirm_price_is_a_400_not_a_500(client: Any, world: World) -> None:
    order = (await checkout(client, world, [("laptop", "1")])).json()["orders"][0]
    r = await client.post(
        f"/api/orders/{order['id']}/confirm",
        json={"prices": {order["lines"][0]["id"]: "1e30"}},
        headers=world.h("supplier_x"),
    )
    assert_problem(r, 400, "invalid_price")


async def test_a_locked_budget_line_lets_another_transaction_insert_a_row_that_names_it(world: World) -> None:
    """The line's lock (`budgets.lock_line`) excludes other writers of the line, not the key-share
    lock a foreign-key check takes: a checkout holding the line must not wait for, or deadlock with,
    a transaction inserting an order or a movement of that line."""
    from sqlalchemy.ext.asyncio import AsyncSession

    db = world.db
    if db.is_sqlite:
        pytest.skip("SQLite has no row locks (its write transaction excludes every other writer)")
    line_id = world.lines["a1"].id
    async with db.engine.connect() as holder, db.engine.connect() as other:
        await holder.begin()
        await budgets.lock_line(AsyncSession(bind=holder), line_id)
        await other.begin()
        await other.execute(text("SET LOCAL lock_timeout = '5s'"))  # FOR UPDATE would make this wait
        await other.execute(
            text(
                "INSERT INTO budget_movements (id, budget_line_id, kind, amount, at)"
                " VALUES (:id, :line, 'reserve', 0, now())"
            ),
            {"id": uuid.uuid4(), "line": line_id},
        )
        await other.rollback()
        # and another writer of the line still waits for the holder
        await other.begin()
        await other.execute(text("SET LOCAL lock_timeout = '200ms'"))
        with pytest.raises(Exception, match="lock timeout"):
            await other.execute(
                text("UPDATE budget_lines SET reserved = reserved WHERE id = :id"), {"id": line_id}
            )
        await other.rollback()
        await holder.rollback()

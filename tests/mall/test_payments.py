"""Invoices and payments: the invoice number formats, the voucher format, the sums that bind them (no
payment without a confirmed invoice, never above the contract), several payments per contract, the
budget spent payment by payment, the order paid once accepted and fully paid."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from mall import orders
from mall.budgets.models import BudgetLine
from mall.core import clock
from mall.core.auth import Principal
from mall.core.errors import Conflict, InvalidInput, RuleViolation
from mall.orders import payments
from mall.orders.models import InvoiceStatus
from mall.sme.rules import is_sme
from tests.factories import World, sign_and_file
from tests.security.login_helpers import assert_problem

D = Decimal
_numbers = random.Random(20261207)


def digital_invoice_no(day: date | None = None) -> str:
    """A 全电发票 number of this year (its first two digits), unique in the run."""
    year = (day or clock.local_date(clock.now())).year % 100
    return f"{year:02d}41" + "".join(str(_numbers.randrange(10)) for _ in range(16))


async def settle(
    world: World, order_id: uuid.UUID, supplier: Principal, buyer: Principal, voucher: str = ""
) -> Any:
    """Invoice the whole contract, confirm it and pay it in one payment; the payment."""
    async with world.db.read() as s:
        order = await orders.get_order(s, buyer, order_id)
    total = order.total_amount
    invoice = await orders.record_invoice(
        world.db, supplier, order_id, invoice_no=digital_invoice_no(), amount=total, issued_on=None
    )
    await orders.confirm_invoice(world.db, buyer, order_id, invoice.id)
    return await orders.pay(
        world.db,
        world.settings,
        buyer,
        order_id,
        voucher_no=voucher or f"ZF-{uuid.uuid4().hex[:10].upper()}",
        amount=total,
    )


# ------------------------------------------------------------------ pure rules


def test_a_digital_invoice_number_is_20_digits_beginning_with_its_year() -> None:
    day = date(2026, 12, 1)
    assert payments.invoice_number("", "26412000000012345678", day) == ("", "26412000000012345678")
    assert payments.invoice_number(None, " 2641 2000 0000 1234 5678 ", day)[1] == "26412000000012345678"
    for bad in (
        "2641200000001234567",
        "264120000000123456789",
        "2641200000001234567X",
        "25412000000012345678",
    ):
        with pytest.raises(InvalidInput) as e:
            payments.invoice_number("", bad, day)
        assert e.value.code == "invalid_invoice_no", bad


def test_an_older_invoice_has_a_10_or_12_digit_code_and_an_8_digit_number() -> None:
    day = date(2026, 12, 1)
    assert payments.invoice_number("4100231130", "01234567", day) == ("4100231130", "01234567")
    assert payments.invoice_number("041002300111", "01234567", day) == ("041002300111", "01234567")
    for code, number, error in (
        ("41002311301", "01234567", "invalid_invoice_code"),  # 11 digits
        ("410023113A", "01234567", "invalid_invoice_code"),
        ("4100231130", "0123456", "invalid_invoice_no"),
        ("4100231130", "26412000000012345678", "invalid_invoice_no"),  # a digital number with a code
    ):
        with pytest.raises(InvalidInput) as e:
            payments.invoice_number(code, number, day)
        assert e.value.code == error, (code, number)
    with pytest.raises(InvalidInput) as e:
        payments.invoice_number("4100\u202e231130", "01234567", day)
    assert e.value.code == "text_invalid"


def test_a_voucher_number_is_4_to_30_digits_capitals_or_hyphens_with_a_digit() -> None:
    assert payments.voucher_number("zf-2026-0001") == "ZF-2026-0001"
    assert payments.voucher_number("1234") == "1234"
    assert payments.voucher_number("A" * 29 + "1") == "A" * 29 + "1"
    for bad in ("abc", "ABCD", "123", "-1234", "1234-", "ZF 2026", "ZF_2026", "国库2026", "A" * 30 + "1", ""):
        with pytest.raises(InvalidInput) as e:
            payments.voucher_number(bad)
        assert e.value.code == "invalid_voucher_no", bad


def test_amounts_are_positive_with_two_decimals_at_most() -> None:
    assert payments.amount_of("100.5") == D("100.50")
    for bad in ("0", "0.00", "-1", "1.234", "1e3", "abc", ""):
        with pytest.raises(InvalidInput):
            payments.amount_of(bad)


def test_the_room_for_a_payment_is_within_the_confirmed_invoices_and_the_contract() -> None:
    assert payments.payment_room(D(100), D(40), D(0)) == D(40)
    assert payments.payment_room(D(100), D(40), D(40)) == D(0)
    assert payments.payment_room(D(100), D(100), D(30)) == D(70)
    assert payments.payment_room(D(100), D(0), D(0)) == D(0)


# ------------------------------------------------------------------ service


async def contracted(world: World, listing: str = "laptop", quantity: str = "2") -> uuid.UUID:
    buyer = world.who["buyer_a"]
    supplier = world.who["supplier_x" if listing in ("laptop", "printer") else "supplier_y"]
    placed, _ = await orders.checkout(
        world.db,
        world.settings,
        buyer,
        orders.CheckoutRequest(
            world.lines["a1"].id, uuid.uuid4().hex, ((world.listings[listing].id, quantity),)
        ),
    )
    await orders.confirm(world.db, supplier, placed[0].id)
    await file_contract(world, placed[0].id, supplier, buyer)
    return placed[0].id


async def file_contract(world: World, order_id: uuid.UUID, supplier: Principal, buyer: Principal) -> None:
    """Both parties sign the e-contract, then the buyer files it."""
    await sign_and_file(world.db, world.settings, buyer, order_id)


async def budget(world: World) -> BudgetLine:
    async with world.db.read() as s:
        line = await s.get(BudgetLine, world.lines["a1"].id)
        assert line is not None
        return line


async def test_a_prepayment_then_the_balance_spend_the_budget_and_keep_its_totals(world: World) -> None:
    buyer, supplier = world.who["buyer_a"], world.who["supplier_x"]
    before = await budget(world)
    oid = await contracted(world)  # 2 laptops at 5000.00
    after_order = await budget(world)
    assert after_order.reserved - before.reserved == D("10000.00")
    held = after_order.reserved + after_order.consumed

    # No invoice, no payment.
    with pytest.raises(RuleViolation) as e:
        await orders.pay(world.db, world.settings, buyer, oid, voucher_no="ZF-1001", amount="3000")
    assert e.value.code == "invoice_required"
    first = await orders.record_invoice(
        world.db, supplier, oid, invoice_no=digital_invoice_no(), amount="3000.00", issued_on=None
    )
    # Recorded is not confirmed.
    with pytest.raises(RuleViolation):
        await orders.pay(world.db, world.settings, buyer, oid, voucher_no="ZF-1001", amount="3000")
    await orders.confirm_invoice(world.db, buyer, oid, first.id)
    # Within the confirmed invoices only.
    with pytest.raises(RuleViolation) as e:
        await orders.pay(world.db, world.settings, buyer, oid, voucher_no="ZF-1001", amount="3000.01")
    assert e.value.code == "invoice_required"
    await orders.pay(world.db, world.settings, buyer, oid, voucher_no="zf-1001", amount="3000")
    line = await budget(world)
    assert line.consumed - after_order.consumed == D("3000.00")
    assert line.reserved + line.consumed == held  # the reservation became spending, nothing more
    # The same voucher twice is refused.
    second = await orders.record_invoice(
        world.db, supplier, oid, invoice_no=digital_invoice_no(), amount="7000.00", issued_on=None
    )
    await orders.confirm_invoice(world.db, buyer, oid, second.id)
    with pytest.raises(Conflict) as c:
        await orders.pay(world.db, world.settings, buyer, oid, voucher_no="ZF-1001", amount="100")
    assert c.value.code == "voucher_duplicate"

    # The balance before acceptance: all paid, but the order waits for acceptance.
    with pytest.raises(RuleViolation) as e:
        await orders.pay(world.db, world.settings, buyer, oid, voucher_no="ZF-1002", amount="7000.01")
    assert e.value.code == "payment_exceeds_contract"
    await orders.ship(world.db, supplier, oid, "")
    await orders.pay(world.db, world.settings, buyer, oid, voucher_no="ZF-1002", amount="7000")
    line = await budget(world)
    assert (line.reserved, line.consumed) == (
        after_order.reserved - D("10000.00"),
        after_order.consumed + D("10000.00"),
    )
    await orders.receive(world.db, buyer, oid)
    await orders.accept(world.db, world.settings, buyer, oid, inspectors=["王建国"], score=5)
    async with world.db.read() as s:
        order = await orders.get_order(s, buyer, oid)
        assert (order.status, order.reserved_amount, order.payment_overdue) == ("paid", D(0), False)
        events = [e.action for e in await orders.events_of(s, oid)]
    assert events.count("paid") == 2 and events.count("invoice_recorded") == 2
    assert events.count("invoice_confirmed") == 2


async def test_invoices_never_total_above_the_contract_and_are_dated_within_it(world: World) -> None:
    supplier, buyer = world.who["supplier_x"], world.who["buyer_a"]
    oid = await contracted(world, quantity="1")  # 5000.00
    today = clock.local_date(clock.now())
    with pytest.raises(InvalidInput) as e:
        await orders.record_invoice(
            world.db,
            supplier,
            oid,
            invoice_no=digital_invoice_no(),
            amount="1",
            issued_on=str(today + timedelta(days=1)),
        )
    assert e.value.code == "invalid_issued_on"
    early = today - timedelta(days=400)
    with pytest.raises(InvalidInput) as e:
        await orders.record_invoice(
            world.db,
            supplier,
            oid,
            invoice_no=digital_invoice_no(early),
            amount="1",
            issued_on=early.isoformat(),
        )
    assert e.value.code == "invalid_issued_on"
    number = digital_invoice_no()
    first = await orders.record_invoice(
        world.db, supplier, oid, invoice_no=number, amount="4000", issued_on=None
    )
    with pytest.raises(RuleViolation) as r:
        await orders.record_invoice(
            world.db, supplier, oid, invoice_no=digital_invoice_no(), amount="1000.01", issued_on=None
        )
    assert r.value.code == "invoices_exceed_contract"
    with pytest.raises(Conflict):  # one invoice, recorded once
        await orders.record_invoice(world.db, supplier, oid, invoice_no=number, amount="1", issued_on=None)
    # A rejected invoice no longer counts, and may be recorded again once corrected.
    rejected = await orders.reject_invoice(world.db, buyer, oid, first.id, "金额与合同不符")
    assert rejected.status == InvoiceStatus.REJECTED
    with pytest.raises(Conflict):  # decided once
        await orders.confirm_invoice(world.db, buyer, oid, first.id)
    again = await orders.record_invoice(
        world.db,
        supplier,
        oid,
        invoice_code="4100231130",
        invoice_no="01234567",
        amount="5000",
        issued_on=None,
    )
    assert (again.invoice_code, again.invoice_no, again.amount) == ("4100231130", "01234567", D("5000.00"))
    with pytest.raises(InvalidInput):  # a rejection needs its reason
        await orders.reject_invoice(world.db, buyer, oid, again.id, " ")


async def test_the_sme_rule_is_judged_on_the_final_payment_after_acceptance(world: World) -> None:
    supplier, buyer = world.who["supplier_y"], world.who["buyer_a"]
    oid = await contracted(world, "desk", "1")
    await orders.ship(world.db, supplier, oid, "")
    await orders.receive(world.db, buyer, oid)
    await orders.accept(world.db, world.settings, buyer, oid, inspectors=["李四", "王五"], score=4)
    clock.clock.freeze(clock.now() + timedelta(days=31))
    try:
        await settle(world, oid, supplier, buyer)
        async with world.db.read() as s:
            order = await orders.get_order(s, buyer, oid)
    finally:
        clock.clock.unfreeze()
    assert order.status == "paid" and order.payment_days == 31
    assert order.payment_overdue is is_sme(order.supplier_scale)


# ------------------------------------------------------------------ API


async def test_the_api_records_confirms_and_pays(client: Any, world: World) -> None:
    oid = await contracted(world, quantity="1")
    sup, buy = world.h("supplier_x"), world.h("buyer_a")
    base = f"/api/orders/{oid}"
    body = {"invoice_no": "123", "amount": "5000.00", "issued_on": clock.local_date(clock.now()).isoformat()}
    assert_problem(await client.post(f"{base}/invoices", json=body, headers=sup), 400, "invalid_invoice_no")
    assert_problem(await client.post(f"{base}/invoices", json=body, headers=buy), 403, "forbidden")
    r = await client.post(f"{base}/invoices", json={**body, "invoice_no": digital_invoice_no()}, headers=sup)
    assert r.status_code == 200, r.text
    view = (await client.get(f"{base}/fulfilment", headers=buy)).json()
    (invoice,) = view["invoices"]
    assert (invoice["status"], view["invoiced_amount"], view["confirmed_invoice_amount"]) == (
        "recorded",
        "5000.00",
        "0.00",
    )
    pay = {"voucher_no": "ZF-2026-0001", "amount": "5000.00"}
    assert_problem(await client.post(f"{base}/pay", json=pay, headers=buy), 422, "invoice_required")
    r = await client.post(f"{base}/invoices/confirm", json={"invoice_id": invoice["id"]}, headers=buy)
    assert r.status_code == 200, r.text
    bad = {**pay, "voucher_no": "随便写"}
    assert_problem(await client.post(f"{base}/pay", json=bad, headers=buy), 400, "invalid_voucher_no")
    r = await client.post(f"{base}/pay", json=pay, headers=buy)
    assert r.status_code == 200 and r.json()["status"] == "contracted"  # paid in full, not yet accepted
    view = (await client.get(f"{base}/fulfilment", headers=sup)).json()
    assert view["paid_amount"] == "5000.00" and view["payments"][0]["voucher_no"] == "ZF-2026-0001"


async def test_one_invoice_is_recorded_once_even_by_two_requests_at_once(world: World) -> None:
    """The same invoice recorded on two orders at the same moment: one is recorded, the other is
    refused (on PostgreSQL the unique index decides; on SQLite the one writer at a time does)."""
    import asyncio

    supplier = world.who["supplier_x"]
    first = await contracted(world, quantity="1")
    second = await contracted(world, quantity="1")
    number = digital_invoice_no()

    async def record(order_id: uuid.UUID) -> Any:
        return await orders.record_invoice(
            world.db, supplier, order_id, invoice_no=number, amount="100.00", issued_on=None
        )

    outcomes = await asyncio.gather(record(first), record(second), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], Conflict), outcomes
    assert refused[0].code == "invoice_duplicate"

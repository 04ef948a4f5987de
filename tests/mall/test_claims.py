"""After-sales claims (售后): the buyer opens one on an accepted order, the supplier answers within the
set working days, the buyer records the outcome; the supplier's after-sales record counts them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from mall import orders
from mall.core import clock
from mall.core.models import AuditEntry
from mall.core.personal_data import READ
from mall.orders import claims
from mall.orders.fulfilment import LineVerdict
from mall.orders.models import ClaimStatus, OrderClaim
from tests.factories import World, frozen_at, sign_and_file
from tests.mall.test_pages import HTML, login_ok, post_form
from tests.security.login_helpers import assert_problem

BODY = {"kind": "repair", "reason": "开机黑屏，无法使用", "line_no": 1}


async def accepted_order(world: World, listing: str = "laptop") -> uuid.UUID:
    """An order of buyer_a from the listing's supplier, through every step up to acceptance."""
    buyer = world.who["buyer_a"]
    supplier = world.who["supplier_x" if listing in ("laptop", "printer") else "supplier_y"]
    placed, _ = await orders.checkout(
        world.db,
        world.settings,
        buyer,
        orders.CheckoutRequest(world.lines["a1"].id, uuid.uuid4().hex, ((world.listings[listing].id, "1"),)),
    )
    order_id = placed[0].id
    await orders.confirm(world.db, supplier, order_id)
    await sign_and_file(world.db, world.settings, buyer, order_id)
    await orders.ship(world.db, supplier, order_id, "顺丰 SF100")
    await orders.receive(world.db, buyer, order_id)
    verdict = {placed[0].lines[0].id: LineVerdict(True, "外观完好，经王建国核对")}
    await orders.accept(
        world.db, world.settings, buyer, order_id, inspectors=["王建国"], score=5, lines=verdict
    )
    return order_id


def url(order_id: uuid.UUID, *rest: str) -> str:
    return "/".join([f"/api/orders/{order_id}/claims", *rest])


async def test_open_answer_close_and_the_suppliers_record(client: Any, world: World) -> None:
    order_id = await accepted_order(world)
    r = await client.post(url(order_id), json=BODY, headers=world.h("buyer_a"))
    assert r.status_code == 201, r.text
    claim = r.json()
    assert (claim["status"], claim["kind"], claim["line_no"], claim["answered_late"]) == (
        "open",
        "repair",
        1,
        False,
    )
    # Due at the end of the third working day after today, China time.
    opened = clock.local_date(clock.now())
    due = world.settings.work_calendar.add_working_days(opened, world.settings.claim_answer_working_days)
    assert claim["answer_due_at"].startswith(due.isoformat())

    # A second claim waits until the first is closed; the supplier and other buyers cannot open one.
    assert_problem(
        await client.post(url(order_id), json=BODY, headers=world.h("buyer_a")), 409, "claim_unfinished"
    )
    assert_problem(
        await client.post(url(order_id), json=BODY, headers=world.h("supplier_x")), 403, "forbidden"
    )
    assert (await client.post(url(order_id), json=BODY, headers=world.h("buyer_b"))).status_code == 404
    # Closing before the supplier answered and before its deadline is refused.
    closing = {"outcome": "unresolved", "note": "等不及了"}
    r = await client.post(url(order_id, claim["id"], "close"), json=closing, headers=world.h("buyer_a"))
    assert_problem(r, 409, "claim_answer_pending")

    r = await client.post(
        url(order_id, claim["id"], "answer"), json={"answer": "明天上门维修"}, headers=world.h("supplier_x")
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "answered" and r.json()["answer"] == "明天上门维修"
    r = await client.post(
        url(order_id, claim["id"], "answer"), json={"answer": "再答一次"}, headers=world.h("supplier_x")
    )
    assert_problem(r, 409, "invalid_claim_state")
    r = await client.post(
        url(order_id, claim["id"], "close"),
        json={"outcome": "resolved", "note": "已修好"},
        headers=world.h("buyer_a"),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["outcome"]) == ("closed", "resolved")

    listed = (await client.get(url(order_id), headers=world.h("regulator"))).json()
    assert [c["id"] for c in listed] == [claim["id"]]
    assert (await client.get(url(order_id), headers=world.h("supplier_y"))).status_code == 404
    events = (await client.get(f"/api/orders/{order_id}/events", headers=world.h("buyer_a"))).json()
    actions = [e["action"] for e in (events["items"] if isinstance(events, dict) else events)]
    assert actions[-3:] == ["claim_opened", "claim_answered", "claim_closed"]
    async with world.db.read() as s:
        record = await claims.record_of(s, world.who["supplier_x"].org_id)
    assert record == claims.AfterSalesRecord(claims=1, open=0, answered_late=0, unresolved=0)
    # Once closed, a new claim may be opened.
    assert (
        await client.post(url(order_id), json={**BODY, "kind": "return"}, headers=world.h("buyer_a"))
    ).status_code == 201


async def test_claims_need_an_accepted_order_a_known_kind_and_a_line_of_the_order(
    client: Any, world: World
) -> None:
    placed, _ = await orders.checkout(
        world.db,
        world.settings,
        world.who["buyer_a"],
        orders.CheckoutRequest(world.lines["a1"].id, uuid.uuid4().hex, ((world.listings["laptop"].id, "1"),)),
    )
    assert_problem(
        await client.post(url(placed[0].id), json=BODY, headers=world.h("buyer_a")), 409, "invalid_state"
    )
    order_id = await accepted_order(world)
    h = world.h("buyer_a")
    assert_problem(
        await client.post(url(order_id), json={**BODY, "kind": "refund"}, headers=h),
        400,
        "invalid_claim_kind",
    )
    assert_problem(
        await client.post(url(order_id), json={**BODY, "line_no": 2}, headers=h), 400, "invalid_line_no"
    )
    assert_problem(
        await client.post(url(order_id), json={**BODY, "reason": "坏"}, headers=h), 400, "reason_required"
    )
    assert (
        await client.post(url(order_id), json={**BODY, "reason": "x" * 301}, headers=h)
    ).status_code == 400
    assert_problem(
        await client.post(
            url(order_id, str(uuid.uuid4()), "answer"), json={"answer": "好的"}, headers=world.h("supplier_x")
        ),
        404,
        "claim_not_found",
    )
    async with world.db.read() as s:
        assert (await s.execute(OrderClaim.__table__.select())).all() == []


async def test_an_unanswered_claim_can_be_closed_unresolved_after_its_deadline_and_a_late_answer_counts(
    world: World,
) -> None:
    buyer, supplier = world.who["buyer_a"], world.who["supplier_x"]
    first = await accepted_order(world)
    second = await accepted_order(world, "printer")
    a = await claims.open_claim(world.db, world.settings, buyer, first, "exchange", "外壳破损，要求换货")
    b = await claims.open_claim(world.db, world.settings, buyer, second, "repair", "卡纸", 1)
    now = clock.now()
    assert claims.next_step(a, now).actor == "supplier"
    later = a.answer_due_at + timedelta(seconds=1)
    assert claims.next_step(a, later).actor == "buyer"
    with frozen_at(later):
        try:
            await claims.close_claim(world.db, buyer, first, a.id, "resolved", "未答复")
        except Exception as exc:
            assert getattr(exc, "code", "") == "unanswered_claim_unresolved"
        else:
            raise AssertionError("an unanswered claim closed as resolved")
        closed = await claims.close_claim(world.db, buyer, first, a.id, "unresolved", "供应商逾期未答复")
        answered = await claims.answer_claim(world.db, supplier, second, b.id, "今天上门")
    assert closed.status == ClaimStatus.CLOSED and claims.next_step(closed, later).actor is None
    assert answered.answered_late
    async with world.db.read() as s:
        record = await claims.record_of(s, supplier.org_id)
    assert record == claims.AfterSalesRecord(claims=2, open=1, answered_late=1, unresolved=1)


async def test_the_order_page_runs_a_claim_and_the_workbench_lists_it(client: Any, world: World) -> None:
    order_id = await accepted_order(world)
    await login_ok(client, "buyer_a")
    page = (await client.get(f"/orders/{order_id}", headers=HTML)).text
    assert "申请售后（退货、换货或维修）" in page
    r = await post_form(
        client,
        f"/orders/{order_id}/claims",
        {"kind": "return", "line_no": "", "reason": "尺寸不符"},
        f"/orders/{order_id}",
    )
    assert r.status_code == 303
    page = (await client.get(f"/orders/{order_id}", headers=HTML)).text
    assert "售后申请已提交" in page and "待供应商答复" in page and "尺寸不符" in page and "整单" in page
    # A refused form keeps what was typed and says why.
    r = await post_form(
        client, f"/orders/{order_id}/claims", {"kind": "return", "reason": "再来"}, f"/orders/{order_id}"
    )
    assert "本订单已有未结束的售后申请" in (await client.get(f"/orders/{order_id}", headers=HTML)).text

    board = (await client.get("/api/workbench", headers=world.h("supplier_x"))).json()
    rows = [i for i in board["yours"] if i["kind"] == "售后"]
    assert len(rows) == 1 and rows[0]["href"].startswith(f"/orders/{order_id}#claim-")
    waiting = [
        i
        for i in (await client.get("/api/workbench", headers=world.h("buyer_a"))).json()["waiting"]
        if i["kind"] == "售后"
    ]
    assert len(waiting) == 1


async def test_the_order_pages_side_card_points_each_party_to_the_claim_it_must_act_on(
    client: Any, world: World
) -> None:
    order_id = await accepted_order(world)
    await claims.open_claim(world.db, world.settings, world.who["buyer_a"], order_id, "repair", "无法开机")
    await login_ok(client, "supplier_x")
    assert "售后申请待您答复" in (await client.get(f"/orders/{order_id}", headers=HTML)).text
    await login_ok(client, "buyer_a")
    assert "售后申请待您登记结果" not in (await client.get(f"/orders/{order_id}", headers=HTML)).text


async def test_oversight_reading_the_claims_is_logged_and_the_parties_reading_them_is_not(
    client: Any, world: World
) -> None:
    order_id = await accepted_order(world)
    await claims.open_claim(world.db, world.settings, world.who["buyer_a"], order_id, "repair", "请联系张工")
    for who in ("buyer_a", "supplier_x", "regulator", "center"):
        r = await client.get(url(order_id), headers=world.h(who))
        assert r.status_code == 200 and r.json()[0]["reason"] == "请联系张工"
    async with world.db.read() as s:
        reads = (await s.execute(select(AuditEntry).where(AuditEntry.action == READ))).scalars().all()
    names = {p.user_id: n for n, p in world.who.items()}
    assert sorted(names[e.actor_user_id] for e in reads) == ["center", "regulator"]
    assert all(e.target.startswith(f"/api/orders/{order_id}/claims ") for e in reads)

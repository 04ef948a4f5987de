"""Risk rules that open cases (mall.supervision): the engine, the incremental run against the full
one, the workflow (explain, decide), permissions, region scope and refusals."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from mall.core import clock
from mall.core.models import Organization, OrgKind, Outbox
from mall.notify.models import Kind
from mall.orders.events import record_event
from mall.orders.models import Checkout, Order, OrderLine, OrderStatus
from mall.sme.current import size_on
from mall.supervision import engine
from mall.supervision import rules as R
from mall.supervision.models import CaseEvent, OversightCase
from tests.factories import World
from workers import supervision_jobs

HTML = {"Accept": "text/html,application/xhtml+xml"}


async def make_order(
    world: World,
    buyer: str,
    supplier: str,
    amount: str,
    *,
    status: str = OrderStatus.CONFIRMED,
    line: str = "a1",
    category: str = "A02010104",
    model: str = "M-1",
    days_ago: int = 1,
    event: bool = True,
    **fields: Any,
) -> uuid.UUID:
    """An order of one line inserted as the ledger holds it, its event recorded (which stages the
    risk rules' outbox row, as the business code does)."""
    b, sup = world.who[buyer], world.who[supplier]
    assert b.org_id and sup.org_id
    at = clock.now() - timedelta(days=days_ago)
    async with world.db.write() as tx:
        s = tx.session
        ck = Checkout(
            id=uuid.uuid4(),
            user_id=b.user_id,
            idempotency_key=uuid.uuid4().hex,
            request_digest="-",
            created_at=at,
        )
        region = await s.scalar(select(Organization.region_code).where(Organization.id == b.org_id))
        o = Order(
            id=uuid.uuid4(),
            order_no=f"RK{uuid.uuid4().hex[:16]}",
            mode="supermarket",
            status=status,
            buyer_org_id=b.org_id,
            buyer_user_id=b.user_id,
            supplier_org_id=sup.org_id,
            budget_line_id=world.lines[line].id,
            checkout_id=ck.id,
            region_code=region,
            total_amount=Decimal(amount),
            reserved_amount=Decimal(amount),
            placed_at=at,
            confirm_due_at=at,
            confirmed_at=at if status != OrderStatus.PLACED else None,
            # the size its supplier declared, as checkout records it (mall.sme)
            supplier_scale=await size_on(s, sup.org_id, clock.local_date(at)),
            **fields,
        )
        o.lines.append(
            OrderLine(
                id=uuid.uuid4(),
                line_no=1,
                item_name="台式计算机",
                brand="联想",
                spec_model=model,
                category_code=category,
                category_version="2022",
                unit="台",
                quantity=Decimal(1),
                listed_unit_price=Decimal(amount),
                unit_price=Decimal(amount),
                amount=Decimal(amount),
            )
        )
        s.add_all([ck, o])
        await s.flush()
        if event:
            record_event(s, o, None, "placed")
    return o.id


async def split_purchase(world: World, buyer: str = "buyer_a", line: str = "a1") -> list[uuid.UUID]:
    """Three orders of one class on one budget line adding up above the open-tender threshold."""
    return [
        await make_order(world, buyer, "supplier_x", "700000.00", line=line, model=f"M-{n}") for n in range(3)
    ]


async def cases_of(world: World, rule: str | None = None) -> list[OversightCase]:
    async with world.db.read() as s:
        stmt = select(OversightCase).order_by(OversightCase.rule, OversightCase.subject_key)
        if rule:
            stmt = stmt.where(OversightCase.rule == rule)
        return list((await s.execute(stmt)).scalars())


async def test_a_split_purchase_opens_one_case_with_a_notice_and_history(world: World) -> None:
    await split_purchase(world)
    first = await engine.run_full(world.db, world.settings)
    [case] = await cases_of(world, R.SPLIT_PURCHASE)
    assert first.opened >= 1
    assert case.party_org_id == world.who["buyer_a"].org_id and case.status == "open" and case.hits == 1
    assert case.region_code == "410100" and case.case_no.startswith("JG")
    assert case.explain_due_at > case.opened_at + timedelta(days=4)  # five working days
    again = await engine.run_full(world.db, world.settings)
    assert again.opened == 0
    [same] = await cases_of(world, R.SPLIT_PURCHASE)
    assert same.id == case.id and same.hits == 2
    async with world.db.read() as s:
        events = list((await s.execute(select(CaseEvent).where(CaseEvent.case_id == case.id))).scalars())
        staged = list((await s.execute(select(Outbox).where(Outbox.topic == "notify"))).scalars())
    assert [e.action for e in events] == ["opened"]
    items = [i for row in staged for i in row.payload["items"] if i["kind"] == Kind.CASE_OPENED]
    mine = [i for i in items if i["link"] == f"/cases/{case.id}"]
    assert len(mine) == 1 and mine[0]["org_id"] == str(case.party_org_id)  # one notice, on opening


async def test_a_case_whose_subject_no_longer_hits_is_marked_not_closed(world: World) -> None:
    ids = await split_purchase(world)
    await engine.run_full(world.db, world.settings)
    async with world.db.write() as tx:
        await tx.session.execute(update(Order).where(Order.id == ids[0]).values(status=OrderStatus.CANCELLED))
    await engine.run_full(world.db, world.settings)
    [case] = await cases_of(world, R.SPLIT_PURCHASE)
    assert case.still_hit is False and case.status == "open"


def _shape(cases: list[OversightCase]) -> list[tuple[Any, ...]]:
    return sorted(
        (c.rule, c.subject_key, c.status, c.party_org_id, c.region_code, c.still_hit, c.summary)
        for c in cases
    )


async def test_incremental_and_full_runs_open_the_same_cases(world: World) -> None:
    await split_purchase(world)
    await make_order(world, "buyer_b", "supplier_y", "960000.00", line="b1")  # just below the limit
    await make_order(
        world,
        "buyer_b",
        "supplier_y",
        "100.00",
        line="b1",
        status=OrderStatus.ACCEPTED,
        accepted_at=clock.now() - timedelta(days=40),
    )
    await make_order(world, "buyer_a", "supplier_y", "10.00", status=OrderStatus.CANCELLED)
    drained = await supervision_jobs.drain_risk(world.db, world.settings)
    assert drained["outbox_rows"] >= 1
    incremental = _shape(await cases_of(world))
    assert {c[0] for c in incremental} >= {R.SPLIT_PURCHASE, R.NEAR_THRESHOLD, R.LATE_PAYMENT}
    # The full run over the same events finds exactly these cases: none more, none no longer hit.
    full = await engine.run_full(world.db, world.settings)
    assert (full.opened, full.no_longer) == (0, 0)
    assert full.hit_again == len(incremental)
    assert _shape(await cases_of(world)) == incremental


async def test_the_party_explains_and_the_regulator_decides(client: Any, world: World) -> None:
    await split_purchase(world)
    await engine.run_full(world.db, world.settings)
    [case] = await cases_of(world, R.SPLIT_PURCHASE)

    r = await client.get("/api/cases?rule=split_purchase", headers=world.h("buyer_a"))
    assert r.status_code == 200 and [c["id"] for c in r.json()["items"]] == [str(case.id)]
    assert (await client.get("/api/cases", headers=world.h("buyer_b"))).json()["total"] == 0
    r = await client.get(f"/api/cases/{case.id}", headers=world.h("buyer_b"))
    assert r.status_code == 404 and r.json()["code"] == "case_not_found"
    r = await client.post(
        f"/api/cases/{case.id}/explanation", json={"explanation": "分批\x07采购"}, headers=world.h("buyer_a")
    )
    # the API's schema refuses them before the service (the service refuses the same on the page)
    assert r.status_code == 400 and r.json()["code"] == "invalid_input"
    r = await client.post(
        f"/api/cases/{case.id}/explanation", json={"explanation": "x" * 2001}, headers=world.h("buyer_a")
    )
    assert r.status_code == 400 and r.json()["code"] == "invalid_input"
    r = await client.post(
        f"/api/cases/{case.id}/explanation",
        json={"explanation": "三批为不同学期的教学用机，预算分别下达。"},
        headers=world.h("buyer_a"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "explained" and r.json()["explained_late"] is False
    r = await client.post(
        f"/api/cases/{case.id}/explanation", json={"explanation": "再说一次"}, headers=world.h("buyer_a")
    )
    assert r.status_code == 409 and r.json()["code"] == "case_not_open"

    for who in ("buyer_a", "supplier_x", "center"):
        r = await client.post(
            f"/api/oversight/cases/{case.id}/decision", json={"decision": "justified"}, headers=world.h(who)
        )
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = await client.post(
        f"/api/oversight/cases/{case.id}/decision",
        json={"decision": "violation"},
        headers=world.h("regulator"),
    )
    assert r.status_code == 400 and r.json()["code"] == "note_required"
    r = await client.post(
        f"/api/oversight/cases/{case.id}/decision", json={"decision": "maybe"}, headers=world.h("regulator")
    )
    assert r.status_code == 400 and r.json()["code"] == "invalid_decision"
    r = await client.post(
        f"/api/oversight/cases/{case.id}/decision",
        json={"decision": "justified", "note": "说明成立"},
        headers=world.h("regulator"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "justified"
    assert [h["action"] for h in body["history"]] == ["opened", "explained", "justified"]
    r = await client.post(
        f"/api/oversight/cases/{case.id}/decision",
        json={"decision": "escalate", "note": "再议"},
        headers=world.h("regulator"),
    )
    assert r.status_code == 409 and r.json()["code"] == "case_closed"
    # the center reads, the rule catalogue is listed
    r = await client.get(f"/api/oversight/cases/{case.id}", headers=world.h("center"))
    assert r.status_code == 200 and r.json()["status"] == "justified"
    r = await client.get("/api/oversight/rules", headers=world.h("regulator"))
    assert len(r.json()) == 14
    r = await client.get("/api/oversight/cases", headers=world.h("buyer_a"))
    assert r.status_code == 403


async def test_an_explanation_after_the_deadline_is_taken_and_marked_late(client: Any, world: World) -> None:
    await split_purchase(world)
    await engine.run_full(world.db, world.settings)
    [case] = await cases_of(world, R.SPLIT_PURCHASE)
    async with world.db.write() as tx:
        await tx.session.execute(
            update(OversightCase)
            .where(OversightCase.id == case.id)
            .values(explain_due_at=clock.now() - timedelta(hours=1))
        )
    r = await client.post(
        f"/api/cases/{case.id}/explanation", json={"explanation": "迟到的说明"}, headers=world.h("buyer_a")
    )
    assert r.status_code == 200 and r.json()["explained_late"] is True
    assert r.json()["history"][-1]["detail"].startswith("（逾期说明）")


async def test_a_city_regulator_sees_its_city_the_province_sees_all(client: Any, world: World) -> None:
    await world.org("buyer_k", OrgKind.BUDGET_UNIT, "开封单位")
    await world.org("regulator_k", OrgKind.REGULATOR, "开封市财政局")
    await world.org("regulator_p", OrgKind.REGULATOR, "河南省财政厅")
    async with world.db.write() as tx:
        for name, region in (("buyer_k", "410200"), ("regulator_k", "410200"), ("regulator_p", "410000")):
            await tx.session.execute(
                update(Organization)
                .where(Organization.id == world.who[name].org_id)
                .values(region_code=region)
            )
    await world.budget("k1", "buyer_k", "500000.00")
    await split_purchase(world)  # 郑州 (410100)
    await split_purchase(world, "buyer_k", "k1")  # 开封 (410200)
    await engine.run_full(world.db, world.settings)
    zz = next(c for c in await cases_of(world, R.SPLIT_PURCHASE) if c.region_code == "410100")
    kf = next(c for c in await cases_of(world, R.SPLIT_PURCHASE) if c.region_code == "410200")

    def ids(r: Any) -> set[str]:
        return {c["id"] for c in r.json()["items"]}

    r = await client.get("/api/oversight/cases?rule=split_purchase", headers=world.h("regulator_k"))
    assert ids(r) == {str(kf.id)}
    r = await client.get("/api/oversight/cases?rule=split_purchase", headers=world.h("regulator"))
    assert ids(r) == {str(zz.id)}
    r = await client.get("/api/oversight/cases?rule=split_purchase", headers=world.h("regulator_p"))
    assert ids(r) == {str(zz.id), str(kf.id)}
    r = await client.get(f"/api/oversight/cases/{zz.id}", headers=world.h("regulator_k"))
    assert r.status_code == 404
    r = await client.post(
        f"/api/oversight/cases/{zz.id}/decision",
        json={"decision": "violation", "note": "越权"},
        headers=world.h("regulator_k"),
    )
    assert r.status_code == 404 and r.json()["code"] == "case_not_found"
    r = await client.get("/api/oversight/cases?status=bogus", headers=world.h("regulator"))
    assert r.status_code == 400 and r.json()["code"] == "unknown_status"
    # the watch lists too: each regulator sees the split purchases of its own region
    for who, projects in (("regulator_k", {"k1"}), ("regulator", {"a1"}), ("regulator_p", {"a1", "k1"})):
        r = await client.get("/api/oversight/split-purchases", headers=world.h(who))
        assert r.status_code == 200
        lines = {str(world.lines[p].id): p for p in ("a1", "k1")}
        assert {lines[c["budget_line_id"]] for c in r.json()} == projects, who


async def test_an_order_takes_its_buyers_region_and_stages_the_risk_rules(world: World) -> None:
    from mall import orders

    async with world.db.write() as tx:
        await tx.session.execute(
            update(Organization)
            .where(Organization.id == world.who["buyer_a"].org_id)
            .values(region_code="410105")
        )
    placed, _ = await orders.checkout(
        world.db,
        world.settings,
        world.who["buyer_a"],
        orders.CheckoutRequest(world.lines["a1"].id, uuid.uuid4().hex, ((world.listings["laptop"].id, "1"),)),
    )
    async with world.db.read() as s:
        order = await s.get(Order, placed[0].id)
        risk = list((await s.execute(select(Outbox).where(Outbox.topic == "risk"))).scalars())
    assert order is not None and order.region_code == "410105"
    assert [r.payload["buyers"] for r in risk] == [[str(world.who["buyer_a"].org_id)]]


async def test_case_pages_for_the_regulator_and_the_party(client: Any, world: World) -> None:
    from tests.mall.test_pages import assert_page, login_ok, post_form

    await split_purchase(world)
    await engine.run_full(world.db, world.settings)
    [case] = await cases_of(world, R.SPLIT_PURCHASE)
    await login_ok(client, "regulator")
    page = assert_page(await client.get("/oversight/cases", headers=HTML))
    assert case.case_no in page
    page = assert_page(await client.get(f"/oversight/cases/{case.id}", headers=HTML))
    assert "提交处理结论" in page and "疑似化整为零" in page
    client.cookies.clear()
    await login_ok(client, "buyer_a")
    assert case.case_no in assert_page(await client.get("/cases", headers=HTML))
    page = assert_page(await client.get(f"/cases/{case.id}", headers=HTML))
    assert "提交说明" in page
    r = await post_form(client, f"/cases/{case.id}/explanation", {"explanation": "教学用机分批到位"})
    assert r.status_code == 303 and r.headers["location"] == f"/cases/{case.id}"
    client.cookies.clear()
    [after] = await cases_of(world, R.SPLIT_PURCHASE)
    assert after.status == "explained" and after.explanation == "教学用机分批到位"


async def test_the_demo_data_opens_a_case_of_every_rule(world: World) -> None:
    from mall.devtools.demo.supervision import make_cases

    await world.org("supplier_z", OrgKind.SUPPLIER, "丙供应商有限公司")
    roles = {
        "buyer": "buyer_a",
        "buyer2": "buyer_b",
        "supplier": "supplier_x",
        "supplier2": "supplier_y",
        "supplier3": "supplier_z",
    }
    opened = await make_cases(world.db, world.settings, world.who, roles)
    assert set(opened) == {r.code for r in R.catalogue()}
    assert {c.rule for c in await cases_of(world)} == set(opened)

"""Sanctions bind everywhere (DOMAIN.md "Sanctions bind everywhere"): one matrix over every selling
path and every kind of sanction. A suspension, an emergency suspension or a ban refuses each path with
422 `supplier_sanctioned` naming the decision; a warning refuses none. Then the due process: the
rebuttal of an emergency suspension, the appeal and its outcome, the end of a term, the public list."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bidding import offers
from catalog import agreement_setup, designated
from mall import cart, orders
from mall.core import clock, files
from mall.core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from mall.core.models import Organization, OrgKind
from mall.orders.models import Order, OrderStatus
from mall.sanctions import reports, rules, service, standing
from mall.sanctions.models import AppealStatus, ReportStatus, Sanction, SanctionKind, SanctionStatus
from search_index import sync
from tests.factories import World, frozen_at, sign_both

PATHS = (
    "search",
    "cart",
    "checkout",
    "confirm_order",
    "invite",
    "quote",
    "bid",
    "designation",
    "agreement_entry",
)


async def _order(world: World, key: str) -> Any:
    made = await orders.checkout(
        world.db,
        world.settings,
        world.who["buyer_a"],
        orders.CheckoutRequest(
            budget_line_id=world.lines["a1"].id,
            idempotency_key=f"sanction-{key}",
            items=((world.listings["laptop"].id, "1"),),
        ),
    )
    return made[0][0]


async def _credit_code(world: World, name: str) -> str:
    async with world.db.read() as s:
        code = await s.scalar(
            select(Organization.credit_code).where(Organization.id == world.who[name].org_id)
        )
    assert code
    return code


async def _paths(world: World) -> dict[str, Callable[[], Awaitable[Any]]]:
    """Each path, set up before the sanction so that only the sanction can refuse it."""
    third = await world.org("supplier_z", OrgKind.SUPPLIER, "丙供应商有限公司")
    fourth = await world.org("supplier_w", OrgKind.SUPPLIER, "丁供应商有限公司")
    x, y = world.who["supplier_x"], world.who["supplier_y"]
    order = await _order(world, "confirm")
    inquiry = await world.procedure("inquiry", invited=[x, y, third], hours=2)
    auction = await world.procedure(
        "auction", "办公台式计算机竞价项目", invited=[x, y, third], hours=2, decrement="100"
    )
    agreement = await world.agreement("台式计算机协议供货", "A02010105", days=30)
    code = await _credit_code(world, "supplier_x")

    async def search() -> None:
        upserts, _deletes = await sync._load(world.db, [world.listings["laptop"].id])
        if not upserts:
            raise standing.refusal(await _sanction_of(world), "", "被检索", own=False)

    return {
        "search": search,
        "cart": lambda: cart.add_to_cart(world.db, world.who["buyer_b"], world.listings["laptop"].id, "1"),
        "checkout": lambda: _order(world, "after"),
        "confirm_order": lambda: orders.confirm(world.db, x, order.id),
        "invite": lambda: world.procedure("inquiry", "第二个询价项目", invited=[x, y, fourth], hours=2),
        "quote": lambda: offers.quote(world.db, x, inquiry.id, "50000.00"),
        "bid": lambda: offers.bid(world.db, x, auction.id, "59000.00"),
        "designation": lambda: designated.apply(
            world.db,
            world.settings,
            x,
            "C23090100",
            "410100",
            [designated.PriceItemDraft("印刷", "页", "0.20")],
        ),
        "agreement_entry": lambda: agreement_setup.add_supplier(
            world.db, world.who["center"], agreement.id, code
        ),
    }


async def _sanction_of(world: World) -> Any:
    async with world.db.read() as s:
        found = await standing.barring(s, [world.who["supplier_x"].org_id])
    return found[world.who["supplier_x"].org_id]


async def _impose(world: World, kind: str, months: int = 6, **kw: Any) -> Any:
    return await service.impose(
        world.db,
        world.settings,
        world.who["center"],
        world.who["supplier_x"].org_id,
        kind,
        months,
        "成交后拒不供货，经查证属实",
        "政府采购法第七十七条",
        **kw,
    )


@pytest.mark.parametrize("kind", [k.value for k in SanctionKind])
async def test_a_sanction_binds_every_path_and_a_warning_none(world: World, kind: str) -> None:
    paths = await _paths(world)
    x = await _impose(world, kind)
    outcome: dict[str, str] = {}
    for name in PATHS:
        try:
            await paths[name]()
            outcome[name] = "ok"
        except DomainError as exc:
            outcome[name] = exc.code
            if exc.code == standing.CODE:
                assert x.sanction_no in exc.detail, exc.detail
    expected = "ok" if kind == SanctionKind.WARNING else standing.CODE
    assert outcome == dict.fromkeys(PATHS, expected)


async def test_a_deal_made_before_a_suspension_is_signed_under_it(world: World) -> None:
    order = await _order(world, "signed")
    await orders.confirm(world.db, world.who["supplier_x"], order.id)
    await _impose(world, SanctionKind.SUSPENSION)
    # signing the contract of a deal already made is not new business: it proceeds
    await sign_both(world.db, world.settings, world.who["buyer_a"], order.id)
    async with world.db.read() as s:
        got = await s.get(Order, order.id)
        assert got is not None and got.status == OrderStatus.SIGNED


def test_terms_and_when_they_bind() -> None:
    start = clock.now().replace(month=1, day=31)
    assert rules.add_months(start, 1).day in (28, 29)  # the last day of February
    assert rules.ends_at(SanctionKind.SUSPENSION, start, 24) == rules.add_months(start, 24)
    assert rules.ends_at(SanctionKind.BAN, start, 0) is None
    assert rules.months_of(SanctionKind.BAN, "") == 0
    for bad in ("0", "25", "x"):
        with pytest.raises(InvalidInput):
            rules.months_of(SanctionKind.SUSPENSION, bad)
    end = rules.add_months(start, 1)
    assert rules.bars(
        SanctionKind.SUSPENSION, SanctionStatus.IN_FORCE, start, end, end - timedelta(seconds=1)
    )
    assert not rules.bars(SanctionKind.SUSPENSION, SanctionStatus.IN_FORCE, start, end, end)
    assert not rules.bars(SanctionKind.WARNING, SanctionStatus.IN_FORCE, start, end, start)
    assert not rules.bars(SanctionKind.BAN, SanctionStatus.LIFTED, start, None, start)


async def test_only_the_center_decides_and_a_reason_is_required(world: World) -> None:
    with pytest.raises(Forbidden):
        await service.impose(
            world.db,
            world.settings,
            world.who["regulator"],
            world.who["supplier_x"].org_id,
            "warning",
            1,
            "理由",
        )
    with pytest.raises(InvalidInput) as no_reason:
        await service.impose(
            world.db, world.settings, world.who["center"], world.who["supplier_x"].org_id, "warning", 1, "  "
        )
    assert no_reason.value.code == "reason_required"
    with pytest.raises(InvalidInput):
        await _impose(world, SanctionKind.SUSPENSION, months=25)
    with pytest.raises(InvalidInput):  # a case must be escalated and about this supplier
        await _impose(world, SanctionKind.WARNING, case_id=uuid.uuid4())


async def test_an_emergency_suspension_is_rebutted_within_a_working_day_then_lifted(world: World) -> None:
    x = await _impose(world, SanctionKind.EMERGENCY)
    assert x.ends_at is None and x.rebut_due_at is not None
    with pytest.raises(NotFound):  # not its own: another supplier does not even learn of it
        await service.rebut(world.db, world.who["supplier_y"], x.id, "申辩")
    await service.rebut(world.db, world.who["supplier_x"], x.id, "货物已于当日补发，附物流单号")
    with pytest.raises(Conflict):
        await service.rebut(world.db, world.who["supplier_x"], x.id, "再次申辩")
    lifted = await service.review_emergency(world.db, world.who["center"], x.id, "lift", 0, "申辩属实")
    assert lifted.status == SanctionStatus.LIFTED
    async with world.db.read() as s:
        assert await standing.barring(s, [world.who["supplier_x"].org_id]) == {}


async def test_a_late_rebuttal_is_refused_and_a_confirmed_emergency_runs_from_its_start(world: World) -> None:
    x = await _impose(world, SanctionKind.EMERGENCY)
    assert x.rebut_due_at is not None
    with frozen_at(x.rebut_due_at + timedelta(seconds=1)), pytest.raises(Conflict) as late:
        await service.rebut(world.db, world.who["supplier_x"], x.id, "迟到的申辩")
    assert late.value.code == "rebuttal_late"
    confirmed = await service.review_emergency(world.db, world.who["center"], x.id, "confirm", 3, "查证属实")
    assert confirmed.kind == SanctionKind.SUSPENSION
    assert confirmed.ends_at == rules.add_months(x.starts_at, 3)


async def test_an_appeal_once_within_the_window_and_its_outcome_is_kept(world: World) -> None:
    x = await _impose(world, SanctionKind.SUSPENSION, months=3)
    with pytest.raises(Forbidden):
        await service.decide_appeal(world.db, world.who["center"], x.id, "overturned", "不由集中采购机构处理")
    await service.appeal(world.db, world.who["supplier_x"], x.id, "延迟供货系不可抗力，附证明")
    with pytest.raises(Conflict):
        await service.appeal(world.db, world.who["supplier_x"], x.id, "第二次申诉")
    done = await service.decide_appeal(world.db, world.who["regulator"], x.id, "overturned", "证据不足")
    assert done.appeal_status == AppealStatus.OVERTURNED and done.status == SanctionStatus.LIFTED
    upserts, _ = await sync._load(world.db, [world.listings["laptop"].id])
    assert [d.id for d in upserts] == [str(world.listings["laptop"].id)]


async def test_an_appeal_after_the_window_is_refused(world: World) -> None:
    x = await _impose(world, SanctionKind.WARNING, months=12)
    with frozen_at(x.appeal_due_at + timedelta(seconds=1)), pytest.raises(Conflict) as late:
        await service.appeal(world.db, world.who["supplier_x"], x.id, "逾期申诉")
    assert late.value.code == "appeal_window_closed"


async def test_a_term_ends_by_itself_and_the_tick_marks_it_and_the_list_follows(world: World) -> None:
    x = await _impose(world, SanctionKind.SUSPENSION, months=1)
    async with world.db.read() as s:
        total, rows = await service.public_list(s)
    assert total == 1 and rows[0][0].sanction_no == x.sanction_no
    assert x.ends_at is not None
    with frozen_at(x.ends_at):
        async with world.db.read() as s:  # the end binds before the tick runs
            assert await standing.barring(s, [world.who["supplier_x"].org_id]) == {}
            assert (await service.public_list(s))[0] == 0
        assert await service.expire_due(world.db) == 1
        assert await service.expire_due(world.db) == 0
    async with world.db.read() as s:
        got = await s.get(type(x), x.id)
        assert got is not None and got.status == SanctionStatus.EXPIRED


PDF = b"%PDF-1.4\n% evidence\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def _report(world: World, evidence: list[tuple[str, bytes]] | None = None, **kw: Any) -> Any:
    return await reports.file_report(
        world.db,
        world.settings,
        files.store_for(world.settings, world.db),
        kw.pop("who", world.who["buyer_a"]),
        kw.pop("supplier", world.who["supplier_x"].org_id),
        kw.pop("reason", "not_delivered"),
        kw.pop("description", "中标后十日未供货，多次催告无果"),
        [("合同.pdf", PDF), ("照片.png", PNG)] if evidence is None else evidence,
        **kw,
    )


async def test_a_report_keeps_its_evidence_and_only_its_parties_and_overseers_read_it(world: World) -> None:
    r = await _report(world)
    assert r.status == ReportStatus.SUBMITTED and len(r.evidence) == 2
    assert r.decide_due_at > r.filed_at
    store = files.store_for(world.settings, world.db)
    item, chunks = await reports.evidence_file(world.db, store, world.who["center"], r.id, 1)
    got = b"".join([c async for c in chunks])
    assert got == PDF and item["sha256"] == hashlib.sha256(PDF).hexdigest()
    for reader in ("buyer_a", "supplier_x", "center", "regulator"):
        async with world.db.read() as s:
            assert (await reports.get_report(s, world.who[reader], r.id)).id == r.id
    for outsider in ("buyer_b", "supplier_y"):
        async with world.db.read() as s:
            with pytest.raises(NotFound):
                await reports.get_report(s, world.who[outsider], r.id)
        with pytest.raises(NotFound):
            await reports.evidence_file(world.db, store, world.who[outsider], r.id, 1)


@pytest.mark.parametrize(
    ("evidence", "code"),
    [
        ([("a.exe", b"MZ\x90\x00")], "evidence_type"),
        ([("a.pdf", b"")], "evidence_empty"),
        ([("a.pdf", b"%PDF-" + b"0" * reports.EVIDENCE_BYTES)], "evidence_too_large"),
        ([(f"{n}.pdf", PDF) for n in range(reports.EVIDENCE_FILES + 1)], "too_many_files"),
    ],
    ids=["type", "empty", "size", "count"],
)
async def test_bad_evidence_is_refused_and_nothing_is_kept(world: World, evidence: Any, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await _report(world, evidence)
    assert refused.value.code == code
    async with world.db.read() as s:
        assert (await reports.list_reports(s, world.who["center"]))[0] == 0


async def test_a_report_names_a_real_supplier_and_only_the_buyers_own_order(world: World) -> None:
    with pytest.raises(Forbidden):
        await _report(world, who=world.who["supplier_y"])
    with pytest.raises(InvalidInput):
        await _report(world, reason="gossip")
    with pytest.raises(NotFound):
        await _report(world, supplier=world.who["buyer_b"].org_id)
    other = await orders.checkout(
        world.db,
        world.settings,
        world.who["buyer_b"],
        orders.CheckoutRequest(
            budget_line_id=world.lines["b1"].id,
            idempotency_key="sanction-other",
            items=((world.listings["laptop"].id, "1"),),
        ),
    )
    with pytest.raises(InvalidInput) as not_own:
        await _report(world, order_id=other[0][0].id)
    assert not_own.value.code == "invalid_order"
    mine = await _order(world, "reported")
    assert (await _report(world, order_id=mine.id)).order_id == mine.id


async def test_the_center_upholds_a_report_with_a_sanction_or_dismisses_it_with_reasons(world: World) -> None:
    r = await _report(world)
    with pytest.raises(InvalidInput):  # upheld without a sanction
        await reports.decide(world.db, world.settings, world.who["center"], r.id, "upheld", "属实")
    with pytest.raises(Forbidden):
        await reports.decide(world.db, world.settings, world.who["regulator"], r.id, "dismissed", "不属实")
    terms = service.checked(world.who["center"], "suspension", 3, "拒不供货", "政府采购法第七十七条")
    done = await reports.decide(
        world.db, world.settings, world.who["center"], r.id, "upheld", "查证属实", terms
    )
    assert done.status == ReportStatus.UPHELD and done.sanction_id is not None
    x = await _sanction_of(world)
    assert x.id == done.sanction_id and x.report_id == r.id and x.months == 3
    with pytest.raises(Conflict):
        await reports.decide(world.db, world.settings, world.who["center"], r.id, "dismissed", "再次处理")
    other = await _report(world, supplier=world.who["supplier_y"].org_id)
    dismissed = await reports.decide(
        world.db, world.settings, world.who["center"], other.id, "dismissed", "证据不足"
    )
    assert dismissed.status == ReportStatus.DISMISSED and dismissed.sanction_id is None


async def test_a_report_past_its_deadline_shows_as_overdue(world: World) -> None:
    r = await _report(world)
    assert not reports.is_overdue(r)
    assert reports.is_overdue(r, r.decide_due_at + timedelta(seconds=1))


async def _evidence_keys(world: World) -> list[str]:
    from mall.core.models import StoredFile

    async with world.db.read() as s:
        rows = await s.execute(select(StoredFile.key).where(StoredFile.key.like("evidence/%")))
        return sorted(rows.scalars())


async def test_a_refused_report_leaves_no_evidence_file_behind(world: World, monkeypatch: Any) -> None:
    mine = await _order(world, "kept")
    with pytest.raises(InvalidInput):  # refused before anything is stored
        await _report(world, order_id=uuid.uuid4())
    assert await _evidence_keys(world) == []

    async def lost(*args: Any, **kwargs: Any) -> Any:  # the insert fails after the files were stored
        raise Conflict("模拟：写入失败", code="simulated")

    monkeypatch.setattr(reports, "_insert", lost)
    with pytest.raises(Conflict):
        await _report(world, order_id=mine.id)
    assert await _evidence_keys(world) == []
    monkeypatch.undo()
    kept = await _report(world, order_id=mine.id)
    assert await _evidence_keys(world) == sorted(str(e["key"]) for e in kept.evidence)


async def test_the_center_sanctions_without_a_report_and_the_supplier_lists_its_own(
    client: Any, world: World
) -> None:
    from tests.mall.test_pages import HTML, assert_page, login_ok, post_form

    y = world.who["supplier_y"]
    await login_ok(client, "center")
    page = assert_page(await client.get(f"/sanctions/new?supplier={y.org_id}", headers=HTML))
    assert "乙供应商有限公司" in page and "作出处理决定" in page
    bad = {"supplier_org_id": str(y.org_id), "kind": "suspension", "months": "30", "reason": "拒不履约"}
    r = await post_form(client, "/sanctions/new", bad)
    assert r.status_code == 303 and r.headers["location"] == "/sanctions/new"
    page = assert_page(await client.get("/sanctions/new", headers=HTML))
    assert "拒不履约" in page  # what was typed is kept with the message
    good = {**bad, "months": "2", "basis": "《政府采购法》第七十七条"}
    r = await post_form(client, "/sanctions/new", good)
    assert r.status_code == 303 and r.headers["location"].startswith("/sanctions/"), r.headers
    assert r.headers["location"] != "/sanctions/new"
    async with world.db.read() as s:
        [x] = (await s.execute(select(Sanction).where(Sanction.supplier_org_id == y.org_id))).scalars()
    assert (x.kind, x.months, x.status) == ("suspension", 2, "in_force")
    client.cookies.clear()
    await login_ok(client, "supplier_y")
    page = assert_page(await client.get("/sanctions/mine", headers=HTML))
    assert x.sanction_no in page and "暂停交易资格" in page
    client.cookies.clear()
    await login_ok(client, "supplier_x")
    assert x.sanction_no not in assert_page(await client.get("/sanctions/mine", headers=HTML))
    client.cookies.clear()
    await login_ok(client, "buyer_a")
    assert (await client.get("/sanctions/new", headers=HTML)).status_code == 403

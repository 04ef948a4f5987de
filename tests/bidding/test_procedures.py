"""Inquiries and auctions in the database: budget reservation, sealed quotes, the bid path with
the database as arbiter (also under concurrency), closing and failure."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from bidding import award, close, offers, publish, rules, service, views
from bidding.models import Offer, Procedure
from mall.budgets.models import BudgetLine
from mall.core import clock
from mall.core.errors import DomainError, InvalidInput, NotFound, RuleViolation
from mall.core.models import OrgKind
from tests.factories import World, frozen_at, sign_and_file


@pytest.fixture
def frozen() -> Iterator[datetime]:
    with frozen_at(clock.now().replace(microsecond=0)) as start:
        yield start


def advance(delta: timedelta) -> None:
    clock.clock.freeze(clock.now() + delta)


def draft(
    world: World, kind: str, *, ceiling: str = "60000.00", minutes: int = 60, invited: Any = None, **kw: Any
) -> publish.ProcedureIn:
    now = clock.now()
    return publish.ProcedureIn(
        kind=kind,
        title="办公台式计算机采购项目",
        budget_line_id=world.lines["a1"].id,
        ceiling=ceiling,
        starts_at=now,
        ends_at=now + timedelta(minutes=minutes),
        items=[publish.ItemIn("A02010105", "台式计算机", "10", "台", "i5/16G/512G")],
        invited=invited,
        **kw,
    )


async def create(world: World, kind: str, **kw: Any) -> Procedure:
    return await publish.create(
        world.db,
        world.who["buyer_a"],
        draft(world, kind, **kw),
        open_tender_threshold=world.settings.open_tender_threshold,
        region_code="410100",
    )


async def suppliers(world: World, n: int) -> list[Any]:
    return [await world.org(f"bidder{i}", OrgKind.SUPPLIER, f"竞价供应商{i}有限公司") for i in range(n)]


async def available(world: World) -> Decimal:
    async with world.db.read() as s:
        line = await s.get(BudgetLine, world.lines["a1"].id)
        assert line is not None
        return line.available


async def test_publication_reserves_the_ceiling_and_a_failure_releases_it(
    world: World, frozen: datetime
) -> None:
    before = await available(world)
    xs = await suppliers(world, 3)
    p = await create(world, "inquiry", invited=[x.org_id for x in xs])
    assert p.status == "open" and await available(world) == before - Decimal("60000.00")
    await offers.quote(world.db, xs[0], p.id, "50000.00")
    await offers.quote(world.db, xs[1], p.id, "51000.00")  # the third never quotes
    advance(timedelta(minutes=61))
    closed = await close.close(world.db, p.id)
    assert closed.status == "failed" and "不足3家" in closed.result_note
    assert await available(world) == before
    assert (await close.close(world.db, p.id)).status == "failed"  # idempotent: nothing released twice
    assert await available(world) == before


async def test_bad_procedures_are_refused_and_nothing_is_reserved(world: World, frozen: datetime) -> None:
    before = await available(world)
    for kw, code in [
        ({"ceiling": "2000000.00"}, "procedure_invalid"),  # at the open-tender threshold
        ({"ceiling": "abc"}, "procedure_invalid"),
        ({"minutes": 5}, "procedure_invalid"),
        ({"ceiling": "600000.00"}, "budget_insufficient"),  # more than the line has
        ({"decrement": "0", "kind_override": "auction"}, "invalid_auction_rules"),
    ]:
        kind = kw.pop("kind_override", "inquiry")
        with pytest.raises(DomainError) as err:
            await create(world, kind, **kw)
        assert err.value.code == code, (kw, err.value.code, err.value.detail)
    assert await available(world) == before
    async with world.db.read() as s:
        assert list((await s.execute(select(Procedure))).scalars()) == []


async def test_quotes_are_sealed_until_the_deadline(world: World, frozen: datetime) -> None:
    xs = await suppliers(world, 3)
    p = await create(world, "inquiry", invited=[x.org_id for x in xs])
    await offers.quote(world.db, xs[0], p.id, "52000.00")
    await offers.quote(world.db, xs[1], p.id, "50000.00")
    await offers.quote(world.db, xs[1], p.id, "49000.00")  # a revision: the latest counts
    await offers.quote(world.db, xs[2], p.id, "48000.00")
    await offers.withdraw(world.db, xs[2], p.id)  # withdrawn before the deadline
    buyer = await views.view_for(world.db, world.who["buyer_a"], p.id)
    assert buyer["sealed"] and buyer["mine"] == [] and "ranked" not in buyer and "bidders" not in buyer
    seen = await views.view_for(world.db, xs[1], p.id)
    assert [v.amount for v in seen["mine"]] == ["50000.00", "49000.00"] and "ranked" not in seen
    assert "52000" not in repr(seen)  # another supplier's quote is nowhere in what it gets
    with pytest.raises(NotFound):  # not invited: the procedure does not exist for this supplier
        await offers.quote(world.db, world.who["supplier_x"], p.id, "1.00")
    with pytest.raises(rules.BidRefused) as err:
        await offers.quote(world.db, xs[0], p.id, "60000.01")
    assert err.value.code == "above_ceiling"

    advance(timedelta(minutes=60))
    with pytest.raises(rules.BidRefused):
        await offers.quote(world.db, xs[0], p.id, "40000.00")  # at the deadline: closed
    after = await views.view_for(world.db, world.who["buyer_a"], p.id)
    assert not after["sealed"]
    assert [(v.label, v.amount) for v in after["ranked"]] == [
        ("供应商 #2", "49000.00"),
        ("供应商 #1", "52000.00"),
    ]


async def test_an_inquiry_with_enough_quotes_is_awarded_to_the_lowest(world: World, frozen: datetime) -> None:
    xs = await suppliers(world, 4)
    p = await create(world, "inquiry", invited=[x.org_id for x in xs])
    for x, amount in zip(xs, ["55000.00", "51000.00", "51000.00", "58000.00"], strict=True):
        await offers.quote(world.db, x, p.id, amount)
    advance(timedelta(hours=2))
    closed = await close.close(world.db, p.id)
    assert closed.status == "awarded"
    view = await views.view_for(world.db, xs[1], p.id)
    assert view["ranked"][0].mine  # equal amounts: the earlier quote ranks first


async def test_bids_follow_the_rules_and_refusals_are_logged(world: World, frozen: datetime) -> None:
    xs = await suppliers(world, 3)
    p = await create(world, "auction", invited=[x.org_id for x in xs], decrement="100")
    r = await offers.bid(world.db, xs[0], p.id, "59000.00")
    assert r.accepted and r.seq == 1 and r.lowest == Decimal("59000.00")
    for who, amount, code in [
        (xs[0], "58950.00", "not_below_own"),  # less than the 100 yuan decrement below its own bid
        (xs[1], "60000.01", "above_ceiling"),
        (xs[1], "5e3", "bad_amount"),
    ]:
        advance(timedelta(seconds=1))  # the log is read back in time order
        with pytest.raises(RuleViolation) as err:
            await offers.bid(world.db, who, p.id, amount)
        assert err.value.code == code
    advance(timedelta(seconds=1))
    r = await offers.bid(world.db, xs[1], p.id, "59500.00")  # default rule: below its own bid, not the lowest
    assert r.accepted and r.lowest == Decimal("59000.00")
    async with world.db.read() as s:
        log = list(
            (
                await s.execute(select(Offer).where(Offer.procedure_id == p.id).order_by(Offer.at, Offer.seq))
            ).scalars()
        )
    assert [(o.status, o.refuse_code) for o in log] == [
        ("accepted", ""),
        ("refused", "not_below_own"),
        ("refused", "above_ceiling"),
        ("refused", "bad_amount"),
        ("accepted", ""),
    ]
    assert all(o.reason for o in log if o.status == "refused")
    view = await views.view_for(world.db, xs[1], p.id)
    assert view["lowest"] == "59000.00" and view["my_rank"] == 2 and view["bidders"] == 2
    assert all(v.label.startswith("供应商 #") for v in view["mine"])


async def test_a_bid_in_the_last_minutes_extends_the_end(world: World, frozen: datetime) -> None:
    xs = await suppliers(world, 3)
    p = await create(world, "auction", invited=[x.org_id for x in xs], decrement="100")
    advance(timedelta(minutes=58))
    r = await offers.bid(world.db, xs[0], p.id, "50000.00")
    assert r.ends_at == clock.now() + timedelta(minutes=5)
    advance(timedelta(minutes=6))
    with pytest.raises(rules.BidRefused) as err:
        await offers.bid(world.db, xs[0], p.id, "49000.00")
    assert err.value.code == "closed"


async def assert_replay(world: World, procedure_id: uuid.UUID, acknowledged: list[int]) -> None:
    """The final state equals a sequential replay of the accepted-bid log: every accepted bid obeys
    the rules against the state before it, the sequence has no gaps, every acknowledged bid is in
    the database and nothing else was accepted."""
    async with world.db.read() as s:
        accepted = list(
            (
                await s.execute(
                    select(Offer)
                    .where(Offer.procedure_id == procedure_id, Offer.status == "accepted")
                    .order_by(Offer.seq)
                )
            ).scalars()
        )
        final = await s.get(Procedure, procedure_id, populate_existing=True)
    assert final is not None and accepted
    assert [o.seq for o in accepted] == list(range(1, len(accepted) + 1))
    assert sorted(acknowledged) == [o.seq for o in accepted]
    ar = service.rules_of(final)
    own: dict[uuid.UUID, Decimal] = {}
    lowest: Decimal | None = None
    for o in accepted:  # sequential replay
        assert o.amount is not None
        rules.check_bid(
            ar,
            o.amount,
            own_previous=own.get(o.supplier_org_id),
            current_lowest=lowest,
            now=o.at,
            starts_at=final.starts_at,
            ends_at=final.ends_at,
        )
        own[o.supplier_org_id] = o.amount
        lowest = o.amount if lowest is None else min(lowest, o.amount)
    assert final.lowest_amount == lowest and final.offer_seq == len(accepted)


@pytest.mark.slow
async def test_concurrent_bids_equal_a_sequential_replay_of_the_accepted_log(
    world: World, frozen: datetime
) -> None:
    """50 suppliers, 400 bids at once: every accepted bid obeys the rules against the state before
    it, the sequence has no gaps, the final lowest is the lowest accepted bid, every acknowledged bid
    is in the database."""
    xs = await suppliers(world, 50)
    p = await create(world, "auction", invited=[x.org_id for x in xs], decrement="10", minutes=600)
    rng = random.Random(7)
    acknowledged: list[int] = []

    async def one(i: int) -> None:
        who = xs[i % 50]
        amount = Decimal(rng.randrange(3_000_000, 5_999_999)) / 100
        try:
            r = await offers.bid(world.db, who, p.id, str(amount.quantize(Decimal("0.01"))))
            acknowledged.append(int(r.seq or 0))
        except RuleViolation:
            pass

    await asyncio.gather(*(one(i) for i in range(400)))
    await assert_replay(world, p.id, acknowledged)


async def test_invalid_input_never_reaches_the_log_as_accepted(world: World, frozen: datetime) -> None:
    xs = await suppliers(world, 3)
    p = await create(world, "inquiry", invited=[x.org_id for x in xs])
    for raw in ["", "-1", "1.001", "NaN", "1e3"]:
        with pytest.raises((rules.BidRefused, InvalidInput)):
            await offers.quote(world.db, xs[0], p.id, raw)
    async with world.db.read() as s:
        assert list((await s.execute(select(Offer).where(Offer.status == "accepted"))).scalars()) == []


async def test_closing_is_idempotent_under_concurrency_and_the_job_reschedules_early_runs(
    world: World, frozen: datetime
) -> None:
    from mall.budgets.models import BudgetMovement
    from workers import jobs

    xs = await suppliers(world, 3)
    p = await create(world, "inquiry", invited=[x.org_id for x in xs])
    assert await asyncio.to_thread(jobs.close_procedure, str(p.id)) == "rescheduled"  # too early
    advance(timedelta(minutes=61))
    results = await asyncio.gather(*(close.close(world.db, p.id) for _ in range(3)))
    assert {r.status for r in results} == {"failed"}
    async with world.db.read() as s:
        moves = list(
            (
                await s.execute(select(BudgetMovement.kind).where(BudgetMovement.procedure_id == p.id))
            ).scalars()
        )
    assert sorted(moves) == ["release", "reserve"]  # released exactly once
    assert await award.close_due(world.db) == []  # nothing left for the safety net


async def test_the_safety_net_closes_what_the_scheduler_missed(world: World, frozen: datetime) -> None:
    xs = await suppliers(world, 3)
    p = await create(world, "inquiry", invited=[x.org_id for x in xs])
    for x, amount in zip(xs, ["50000.00", "49000.00", "48000.00"], strict=True):
        await offers.quote(world.db, x, p.id, amount)
    advance(timedelta(hours=1, seconds=10))
    assert await award.close_due(world.db) == [p.id]
    async with world.db.read() as s:
        closed = await s.get(Procedure, p.id)
    assert closed is not None and closed.status == "awarded"


async def _awarded(world: World, amounts: list[str]) -> tuple[Procedure, list[Any]]:
    xs = await suppliers(world, max(3, len(amounts)))  # an invitation names at least 3 suppliers
    p = await create(world, "inquiry", invited=[x.org_id for x in xs])
    for x, amount in zip(xs, amounts, strict=False):  # the suppliers beyond the amounts never quote
        await offers.quote(world.db, x, p.id, amount)
    advance(timedelta(hours=1))
    return await close.close(world.db, p.id), xs


async def test_the_winner_confirms_and_an_order_and_a_deal_record_follow(
    world: World, frozen: datetime
) -> None:
    import json

    from mall.ledger import disclosure
    from mall.ledger.models import DisclosureRecord

    before = await available(world)
    p, xs = await _awarded(world, ["52000.00", "50000.00", "51000.00"])
    assert p.status == "awarded" and p.awarded_supplier_id == xs[1].org_id
    with pytest.raises(DomainError) as err:
        await award.confirm_award(world.db, xs[0], p.id)  # not the winner
    assert err.value.code == "no_award"
    order = await award.confirm_award(world.db, xs[1], p.id)
    assert (
        order.mode == "inquiry" and order.status == "confirmed" and order.total_amount == Decimal("50000.00")
    )
    assert [(line.quantity, line.unit_price, line.amount) for line in order.lines] == [
        (Decimal("10"), Decimal("5000.00"), Decimal("50000.00"))
    ]
    assert await available(world) == before - Decimal("50000.00")  # the reservation shrank to the price
    # the same fulfilment flow as the supermarket
    filed = await sign_and_file(world.db, world.settings, world.who["buyer_a"], order.id)
    assert filed.status == "contracted"
    assert await disclosure.publish_pending(world.db) == 1
    async with world.db.read() as s:
        record = json.loads((await s.execute(select(DisclosureRecord.body))).scalar_one())
    assert record["mode"] == "inquiry" and record["kind"] == "deal" and record["total_amount"] == "50000.00"
    assert [(q["rank"], q["supplier_name"], q["total_amount"]) for q in record["quotes"]] == [
        (1, "竞价供应商1有限公司", "50000.00"),
        (2, "竞价供应商2有限公司", "51000.00"),
        (3, "竞价供应商0有限公司", "52000.00"),
    ]
    assert all(q["submitted_at"].endswith("Z") or "+" in q["submitted_at"] for q in record["quotes"])
    with pytest.raises(DomainError):
        await award.confirm_award(world.db, xs[1], p.id)  # only once


async def test_the_whole_specification_reaches_the_order_and_the_published_record(
    world: World, frozen: datetime
) -> None:
    """Point 11: the requirement's specification (up to SPEC_MAX characters, several lines) becomes the
    order line's specification whole; it used to be cut to 200 characters on the way, and the published
    deal record lost the rest."""
    import json

    from mall.core import fields
    from mall.ledger import disclosure
    from mall.ledger.models import DisclosureRecord
    from mall.orders.models import OrderLine

    spec = ("第一行：i5 处理器，16G 内存，512G 固态硬盘\n" + "规" * fields.SPEC_MAX)[: fields.SPEC_MAX]
    xs = await suppliers(world, 3)
    p = await publish.create(
        world.db,
        world.who["buyer_a"],
        msgspec.structs.replace(
            draft(world, "inquiry", invited=[x.org_id for x in xs]),
            items=[publish.ItemIn("A02010105", "台式计算机", "10", "台", spec)],
        ),
        open_tender_threshold=world.settings.open_tender_threshold,
        region_code="410100",
    )
    for x, amount in zip(xs, ["52000.00", "50000.00", "51000.00"], strict=True):
        await offers.quote(world.db, x, p.id, amount)
    advance(timedelta(hours=1))
    await close.close(world.db, p.id)
    order = await award.confirm_award(world.db, xs[1], p.id)
    assert await disclosure.publish_pending(world.db) == 1
    async with world.db.read() as s:
        stored = (
            await s.execute(select(OrderLine.spec_model).where(OrderLine.order_id == order.id))
        ).scalar_one()
        record = json.loads((await s.execute(select(DisclosureRecord.body))).scalar_one())
    assert len(spec) == fields.SPEC_MAX and stored == spec
    assert record["lines"][0]["spec_model"] == spec


async def test_declines_and_lapses_pass_the_award_on_then_fail(world: World, frozen: datetime) -> None:
    import json

    from mall.ledger import disclosure
    from mall.ledger.models import DisclosureRecord

    before = await available(world)
    p, xs = await _awarded(world, ["52000.00", "50000.00", "51000.00"])
    p = await award.decline_award(world.db, xs[1], p.id)
    assert p.status == "awarded" and p.awarded_supplier_id == xs[2].org_id  # the next in rank
    assert (await award.decline_award(world.db, None, p.id, lapsed=True)).awarded_supplier_id == xs[2].org_id
    advance(timedelta(hours=73))  # the second one lets its 72 hours lapse
    assert await award.close_due(world.db) == [p.id]
    async with world.db.read() as s:
        p2 = await s.get(Procedure, p.id)
    assert p2 is not None and p2.awarded_supplier_id == xs[0].org_id
    p3 = await award.decline_award(world.db, xs[0], p.id)
    assert p3.status == "failed" and "放弃" in p3.result_note
    assert await available(world) == before  # everything released
    assert await disclosure.publish_pending(world.db) == 1
    async with world.db.read() as s:
        record = json.loads((await s.execute(select(DisclosureRecord.body))).scalar_one())
    assert record["kind"] == "failure" and record["supplier"] is None and record["total_amount"] is None
    assert record["order_no"] == p.number and record["reason"] == p3.result_note
    assert record["lines"][0]["unit_price"] is None and record["lines"][0]["item_name"] == "台式计算机"
    assert len(record["quotes"]) == 3
    # each decline and the lapse count against its supplier's credit, once (mall.credit)
    from mall.credit.models import CreditEvent

    async with world.db.read() as s:
        events = {
            (e.supplier_org_id, e.kind, e.ref) for e in (await s.execute(select(CreditEvent))).scalars()
        }
    assert events == {
        (xs[1].org_id, "award_declined", p.number),
        (xs[2].org_id, "award_lapsed", p.number),
        (xs[0].org_id, "award_declined", p.number),
    }


async def test_a_failed_inquiry_publishes_a_failure_notice(world: World, frozen: datetime) -> None:
    import json

    from mall.ledger import disclosure
    from mall.ledger.models import DisclosureRecord

    p, _ = await _awarded(world, ["52000.00"])
    assert p.status == "failed"
    assert await disclosure.publish_pending(world.db) == 1
    async with world.db.read() as s:
        record = json.loads((await s.execute(select(DisclosureRecord.body))).scalar_one())
    assert record["kind"] == "failure" and "不足3家" in record["reason"]
    assert [q["total_amount"] for q in record["quotes"]] == ["52000.00"]
    assert (await disclosure.verify_chain(world.db)).ok


async def test_the_buyer_rejects_a_non_compliant_quote_and_the_award_moves(
    world: World, frozen: datetime
) -> None:
    import json

    from mall.ledger import disclosure
    from mall.ledger.models import DisclosureRecord

    p, xs = await _awarded(world, ["52000.00", "50000.00", "51000.00", "53000.00"])
    assert p.awarded_supplier_id == xs[1].org_id
    with pytest.raises(InvalidInput):
        await award.reject_quote(world.db, world.who["buyer_a"], p.id, 2, "")  # a reason is required
    with pytest.raises(DomainError):
        await award.reject_quote(
            world.db, world.who["buyer_b"], p.id, 2, "技术参数不符合要求"
        )  # not its inquiry
    p = await award.reject_quote(world.db, world.who["buyer_a"], p.id, 2, "所报型号内存仅8G，不满足16G要求")
    assert p.status == "awarded" and p.awarded_supplier_id == xs[2].org_id  # the next compliant one
    order = await award.confirm_award(world.db, xs[2], p.id)
    assert order.total_amount == Decimal("51000.00")
    await disclosure.publish_pending(world.db)
    async with world.db.read() as s:
        record = json.loads((await s.execute(select(DisclosureRecord.body))).scalar_one())
    assert [q["total_amount"] for q in record["quotes"]] == ["51000.00", "52000.00", "53000.00"]
    assert record["rejected_quotes"][0]["reason"] == "所报型号内存仅8G，不满足16G要求"


async def test_rejecting_below_the_minimum_fails_the_inquiry(world: World, frozen: datetime) -> None:
    p, _xs = await _awarded(world, ["52000.00", "50000.00", "51000.00"])
    p = await award.reject_quote(world.db, world.who["buyer_a"], p.id, 1, "未提供原厂授权书")
    assert p.status == "failed" and "不足3家" in p.result_note


async def test_abnormally_low_quotes_are_flagged_after_opening(world: World, frozen: datetime) -> None:
    p, _xs = await _awarded(world, ["52000.00", "50000.00", "20000.00"])  # 20000 < 45% of 60000
    view = await views.view_for(world.db, world.who["buyer_a"], p.id)
    flags = {v.amount: v.flags for v in view["ranked"]}
    assert flags["20000.00"] and any("最高限价" in f for f in flags["20000.00"])
    assert flags["50000.00"] == () and flags["52000.00"] == ()


async def test_the_regulator_sees_abnormally_low_offers_failures_and_decliners(
    world: World, frozen: datetime, client: Any
) -> None:
    from bidding.oversight import bidding_watch

    # 20000 is below 45% of the 60000 ceiling and below 55% of the second lowest; it wins, then
    # its supplier declines, and the award passes on.
    p, xs = await _awarded(world, ["52000.00", "50000.00", "20000.00"])
    assert p.awarded_supplier_id == xs[2].org_id
    await award.decline_award(world.db, xs[2], p.id)
    failed = await create(world, "auction", invited=[x.org_id for x in xs], decrement="10")
    advance(timedelta(hours=1))
    await close.close(world.db, failed.id)  # nobody bid: fails

    async with world.db.read() as s:
        watch = await bidding_watch(s)
    assert watch.examined == 2
    [low] = watch.low_offers
    assert (low.number, low.supplier_name, low.amount, low.won) == (
        p.number,
        "竞价供应商2有限公司",
        Decimal("20000.00"),
        False,  # the award moved on after the decline
    )
    assert any("最高限价" in r for r in low.reasons) and any("次低报价" in r for r in low.reasons)
    assert [f.number for f in watch.failed] == [failed.number]
    assert [(d.supplier_name, d.declined) for d in watch.decliners] == [("竞价供应商2有限公司", 1)]

    from tests.mall.test_pages import HTML, login_ok

    await login_ok(client, "regulator")
    page = (await client.get("/oversight", headers=HTML)).text
    assert "询价与竞价监管" in page and p.number in page and failed.number in page
    assert "20,000.00" in page and "竞价供应商2有限公司" in page
    api = (await client.get("/api/oversight/bidding", headers=world.h("regulator"))).json()
    assert api["examined"] == 2 and [f["number"] for f in api["failed"]] == [failed.number]
    assert [(o["number"], o["amount"], o["won"]) for o in api["low_offers"]] == [
        (p.number, "20000.00", False)
    ]
    assert api["decliners"] == [
        {"supplier_name": "竞价供应商2有限公司", "declined": 1, "procedures": [p.number]}
    ]
    await login_ok(client, "supplier_x")  # a supplier is not the regulator
    assert (await client.get("/oversight", headers=HTML)).status_code == 403

"""Who acts next, and by when, for every state of an order, a procedure, a listing and a designation
application (mall.core.steps and the areas' rules): pure, from objects built in memory."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from bidding import steps as procedure_steps
from bidding.models import Procedure, ProcedureKind, ProcedureStatus
from catalog import steps as catalog_steps
from catalog.models import Designation, DesignationStatus, Listing, ListingStatus
from mall.core import clock
from mall.core.models import Organization
from mall.core.workdays import load_calendar
from mall.orders import steps as order_steps
from mall.orders.models import Order, OrderStatus

# The shipped 2026 calendar: National Day week off (10-01..10-07), Saturday 10-10 worked (调休).
CALENDAR = load_calendar()
BUYER, SUPPLIER = uuid.uuid4(), uuid.uuid4()


def _order(status: str, *, sme: bool = True, **at: datetime | str) -> Order:
    placed = datetime(2026, 9, 29, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing
    o = Order(
        status=status,
        buyer_org_id=BUYER,
        supplier_org_id=SUPPLIER,
        placed_at=placed,
        confirm_due_at=placed + timedelta(days=15),
        cancel_requested_by=None,
    )
    o.supplier = Organization(name="甲供应商")
    o.supplier_scale = "small" if sme else "large"
    for k, v in at.items():
        setattr(o, k, v)
    return o


def test_a_new_order_waits_for_the_supplier_until_it_cancels_itself() -> None:
    o = _order(OrderStatus.PLACED)
    s = order_steps.next_step(o, CALENDAR, 30)
    assert (s.step, s.actor, s.due) == ("待供应商确认", "supplier", o.confirm_due_at)
    assert "自动取消" in s.at_due
    assert s.stance("supplier") == "yours"
    assert s.stance("buyer") == "waiting"
    # another supplier reading it (it cannot, but the rule must not say "yours") is not the party
    assert s.stance("supplier", own=False) == "waiting"
    assert not s.overdue(o.confirm_due_at) and s.overdue(o.confirm_due_at + timedelta(seconds=1))


def test_after_confirmation_both_sign_then_the_buyer_files_within_seven_working_days() -> None:
    # confirmed on Wednesday 30 September (Beijing); the holiday week does not count, the worked
    # Saturday 10 October does: 10-08 (1), 10-09 (2), 10-10 (3), 10-12 (4) .. 10-14 (6), 10-15 (7)
    confirmed = datetime(2026, 9, 30, 1, 0, tzinfo=UTC)
    s = order_steps.next_step(_order(OrderStatus.CONFIRMED, confirmed_at=confirmed), CALENDAR, 30)
    assert (s.step, s.actor) == ("待双方签署合同", "supplier")
    assert "供应商、采购人" in s.action
    assert s.due is not None and s.due.astimezone(clock.SHANGHAI).date() == date(2026, 10, 15)
    assert s.due.astimezone(clock.SHANGHAI).time() > datetime.min.time().replace(hour=23, minute=59)
    # the supplier signed: the buyer's turn
    s = order_steps.next_step(
        _order(OrderStatus.CONFIRMED, confirmed_at=confirmed, supplier_signed_at=confirmed), CALENDAR, 30
    )
    assert s.actor == "buyer" and "采购人" in s.action and "供应商" not in s.action
    # both signed on Friday 9 October: 7 working days from the signing (政府采购法第四十七条):
    # 10-10 (1, a worked Saturday), 10-12 (2) .. 10-16 (6), 10-19 (7)
    signed = datetime(2026, 10, 9, 2, 0, tzinfo=UTC)
    s = order_steps.next_step(
        _order(OrderStatus.SIGNED, confirmed_at=confirmed, signed_at=signed), CALENDAR, 30
    )
    assert (s.step, s.actor) == ("待备案合同", "buyer")
    assert s.due is not None and s.due.astimezone(clock.SHANGHAI).date() == date(2026, 10, 19)
    assert s.stance("supplier") == "waiting"


@pytest.mark.parametrize("asked_by, answers", [("buyer", "supplier"), ("supplier", "buyer")])
def test_a_cancellation_asked_for_waits_on_the_other_side(asked_by: str, answers: str) -> None:
    o = _order(
        OrderStatus.CONFIRMED, confirmed_at=datetime(2026, 9, 30, tzinfo=UTC), cancel_requested_by=asked_by
    )
    s = order_steps.next_step(o, CALENDAR, 30)
    assert (s.step, s.actor) == ("取消申请待处理", answers)
    assert s.stance(asked_by) == "waiting"


def test_payment_is_due_thirty_days_after_acceptance_for_an_sme_only() -> None:
    accepted = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    s = order_steps.next_step(_order(OrderStatus.ACCEPTED, accepted_at=accepted), CALENDAR, 30)
    assert (s.step, s.actor, s.due) == ("待付款", "buyer", accepted + timedelta(days=30))
    big = order_steps.next_step(_order(OrderStatus.ACCEPTED, sme=False, accepted_at=accepted), CALENDAR, 30)
    assert big.actor == "buyer" and big.due is None and "合同约定" in big.at_due


@pytest.mark.parametrize(
    "status, step, actor",
    [
        (OrderStatus.CONTRACTED, "待发货", "supplier"),
        (OrderStatus.SHIPPED, "待收货", "buyer"),
        (OrderStatus.RECEIVED, "待验收", "buyer"),
        (OrderStatus.PAID, "已完成", None),
        (OrderStatus.CANCELLED, "已取消", None),
    ],
)
def test_every_other_order_state(status: str, step: str, actor: str | None) -> None:
    s = order_steps.next_step(_order(status), CALENDAR, 30)
    assert (s.step, s.actor) == (step, actor)
    assert s.stance("buyer") == ("finished" if actor is None else "yours" if actor == "buyer" else "waiting")


def _procedure(kind: str, status: str, **kw: object) -> Procedure:
    now = clock.now()
    p = Procedure(
        kind=kind,
        status=status,
        buyer_org_id=BUYER,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
        min_participants=3,
        snipe_window_seconds=300,
        ceiling=Decimal("1000.00"),
    )
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def test_an_open_procedure_waits_for_offers_until_its_deadline() -> None:
    now = clock.now()
    p = _procedure(ProcedureKind.INQUIRY, ProcedureStatus.PUBLISHED)
    s = procedure_steps.next_step(p, now)  # published and begun: shown as open, whoever has quoted
    assert (s.step, s.actor, s.due) == ("报价中", "supplier", p.ends_at)
    assert "少于 3 家则流标" in s.at_due
    assert procedure_steps.stance(p, s, "supplier", SUPPLIER) == "yours"
    assert procedure_steps.stance(p, s, "buyer", BUYER) == "waiting"
    assert procedure_steps.stance(p, s, "", None) == "waiting"  # a visitor reads whom it waits for
    later = _procedure(ProcedureKind.AUCTION, ProcedureStatus.PUBLISHED, starts_at=now + timedelta(hours=1))
    s = procedure_steps.next_step(later, now)
    assert (s.step, s.actor, s.due) == ("已发布，待开始", "platform", later.starts_at)
    auction = procedure_steps.next_step(_procedure(ProcedureKind.AUCTION, ProcedureStatus.OPEN), now)
    assert auction.step == "竞价中" and "最后 5 分钟" in auction.at_due


def test_an_award_is_the_first_ranked_suppliers_to_confirm_only() -> None:
    due = clock.now() + timedelta(hours=72)
    p = _procedure(
        ProcedureKind.AUCTION, ProcedureStatus.AWARDED, awarded_supplier_id=SUPPLIER, confirm_due_at=due
    )
    s = procedure_steps.next_step(p, clock.now())
    assert (s.step, s.actor, s.due) == ("待成交确认", "supplier", due)
    assert procedure_steps.stance(p, s, "supplier", SUPPLIER) == "yours"
    assert procedure_steps.stance(p, s, "supplier", uuid.uuid4()) == "waiting"
    assert procedure_steps.stance(p, s, "buyer", uuid.uuid4()) == "waiting"


@pytest.mark.parametrize(
    "status, step, actor",
    [
        (ProcedureStatus.DRAFT, "草稿", "buyer"),
        (ProcedureStatus.CLOSED, "已截止，正在评审", "platform"),
        (ProcedureStatus.FAILED, "采购失败", None),
        (ProcedureStatus.CONFIRMED, "已成交", None),
        (ProcedureStatus.CANCELLED, "已撤销", None),
    ],
)
def test_every_other_procedure_state(status: str, step: str, actor: str | None) -> None:
    s = procedure_steps.next_step(_procedure(ProcedureKind.INQUIRY, status), clock.now())
    assert (s.step, s.actor) == (step, actor)


def test_a_submitted_listing_is_the_centers_to_review_within_seven_working_days() -> None:
    li = Listing(status=ListingStatus.SUBMITTED, submitted_at=datetime(2026, 9, 30, 1, 0, tzinfo=UTC))
    s = catalog_steps.listing_step(li, CALENDAR)
    assert (s.step, s.actor) == ("待审核", "center")
    assert s.due is not None and s.due.astimezone(clock.SHANGHAI).date() == date(2026, 10, 15)
    assert s.stance("center") == "yours" and s.stance("supplier") == "waiting"


@pytest.mark.parametrize(
    "status, by, step, actor",
    [
        (ListingStatus.DRAFT, "", "草稿", "supplier"),
        (ListingStatus.REJECTED, "center", "已退回", "supplier"),
        (ListingStatus.LIVE, "", "在售", None),
        (ListingStatus.DELISTED, "supplier", "已下架", "supplier"),
        (ListingStatus.DELISTED, "regulator", "已下架", "regulator"),
        (ListingStatus.FROZEN, "regulator", "已冻结", "regulator"),
        (ListingStatus.FROZEN, "center", "已冻结", "center"),
    ],
)
def test_every_other_listing_state(status: str, by: str, step: str, actor: str | None) -> None:
    s = catalog_steps.listing_step(Listing(status=status, status_by=by), CALENDAR)
    assert (s.step, s.actor) == (step, actor)


def test_a_designation_application_is_the_centers_to_review_by_its_due_date() -> None:
    due = datetime(2026, 10, 15, 15, 59, tzinfo=UTC)
    s = catalog_steps.designation_step(Designation(status=DesignationStatus.APPLIED, review_due_at=due))
    assert (s.step, s.actor, s.due) == ("待审核", "center", due)
    assert catalog_steps.designation_step(Designation(status=DesignationStatus.REJECTED)).actor == "supplier"
    assert catalog_steps.designation_step(Designation(status=DesignationStatus.APPROVED)).finished
    assert catalog_steps.designation_step(Designation(status=DesignationStatus.REVOKED)).finished

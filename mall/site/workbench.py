"""The 工作台: each business role's landing page after login, listing what waits for it (with the
deadline) and what it waits for from others. Every row is an order, procedure, listing or
application with its next step (mall.core.steps), computed by the same rules its own page shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from litestar import Controller, get
from litestar.response import Template
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding import steps as procedure_steps
from bidding import views as procedure_views
from bidding.models import Procedure, ProcedureInvite, ProcedureStatus
from catalog import steps as catalog_steps
from catalog.models import (
    Designation,
    DesignationStatus,
    Listing,
    ListingStatus,
    PriceRequest,
    PriceRequestStatus,
)
from mall import oversight
from mall.core import clock
from mall.core.auth import Principal
from mall.core.guards import allow
from mall.core.money import money_str
from mall.core.settings import Settings
from mall.core.steps import NextStep
from mall.notify import inbox
from mall.orders import claims
from mall.orders import steps as order_steps
from mall.orders.models import ClaimKind, Order, OrderClaim, OrderStatus
from mall.web.deps import UserCall

# A 工作台 list shows this many rows, the most urgent first, and links to the full list for more.
SHOWN = 50
# The 工作台 shows this many unread notifications; the message centre has them all.
UNREAD_SHOWN = 10
# How far back a business's open work is looked for: anything older is on its own list's pages.
SCANNED = 500

OPEN_ORDER_STATES = (
    OrderStatus.PLACED,
    OrderStatus.CONFIRMED,
    OrderStatus.SIGNED,
    OrderStatus.CONTRACTED,
    OrderStatus.SHIPPED,
    OrderStatus.RECEIVED,
    OrderStatus.ACCEPTED,
)
OPEN_PROCEDURE_STATES = (
    ProcedureStatus.DRAFT,
    ProcedureStatus.PUBLISHED,
    ProcedureStatus.OPEN,
    ProcedureStatus.CLOSED,
    ProcedureStatus.AWARDED,
)


@dataclass(frozen=True)
class Item:
    """One row: what it is, its title and link, and its next step."""

    kind: str  # 订单 / 售后 / 询价 / 竞价 / 商品 / 定点申请 / 调价申请
    title: str
    href: str
    step: NextStep
    amount: Decimal | None = None  # the order's amount, the procedure's ceiling
    detail: str = ""


@dataclass
class Board:
    yours: list[Item]
    waiting: list[Item]
    counts: dict[str, int]  # the regulator's and the center's summary figures, with their links

    def add(self, item: Item, yours: bool) -> None:
        (self.yours if yours else self.waiting).append(item)

    def sort(self) -> None:
        far = datetime.max.replace(tzinfo=clock.SHANGHAI)
        self.yours.sort(key=lambda i: i.step.due or far)
        self.waiting.sort(key=lambda i: i.step.due or far)
        del self.yours[SHOWN:], self.waiting[SHOWN:]


async def _oldest(s: AsyncSession, model: Any, order: tuple[Any, ...], *where: Any) -> list[Any]:
    """The first SCANNED rows of `model` matching `where`, in `order` (the oldest first)."""
    rows = await s.execute(select(model).where(*where).order_by(*order).limit(SCANNED))
    return list(rows.scalars().unique())


def _is_party(who: Principal, order: Order) -> bool:
    return who.org_id == (order.buyer_org_id if who.role == "buyer" else order.supplier_org_id)


async def _orders(s: AsyncSession, who: Principal, settings: Settings, board: Board) -> None:
    own = Order.buyer_org_id if who.role == "buyer" else Order.supplier_org_id
    rows = await _oldest(
        s, Order, (Order.placed_at, Order.id), own == who.org_id, Order.status.in_(OPEN_ORDER_STATES)
    )
    for o in rows:
        step = order_steps.next_step(o, settings.work_calendar, settings.payment_due_days)
        item = Item(
            "订单",
            f"{o.order_no} · {(o.supplier if who.role == 'buyer' else o.buyer).name}",
            f"/orders/{o.id}",
            step,
            o.total_amount,
        )
        board.add(item, step.stance(who.role, own=_is_party(who, o)) == "yours")


async def _claims(s: AsyncSession, who: Principal, board: Board) -> None:
    """After-sales claims still open on the party's orders."""
    own = Order.buyer_org_id if who.role == "buyer" else Order.supplier_org_id
    rows = await s.execute(
        select(OrderClaim, Order.order_no)
        .join(Order, Order.id == OrderClaim.order_id)
        .where(own == who.org_id, OrderClaim.status.in_(claims.UNFINISHED))
        .order_by(OrderClaim.opened_at, OrderClaim.id)
        .limit(SCANNED)
    )
    now = clock.now()
    for c, order_no in rows.all():
        step = claims.next_step(c, now)
        item = Item(
            "售后", f"{order_no} · {ClaimKind(c.kind).label}", f"/orders/{c.order_id}#claim-{c.id}", step
        )
        board.add(item, step.stance(who.role) == "yours")


def _procedure_item(p: Procedure, step: NextStep) -> Item:
    kind = "询价" if p.kind == "inquiry" else "竞价"
    return Item(kind, p.title, f"/procedures/{p.id}", step, p.ceiling)


async def _procedures(s: AsyncSession, who: Principal, board: Board) -> None:
    now = clock.now()
    if who.role == "buyer":
        stmt = select(Procedure).where(
            Procedure.buyer_org_id == who.org_id, Procedure.status.in_(OPEN_PROCEDURE_STATES)
        )
    else:
        # a supplier's: awards waiting for its confirmation, and the procedures it is invited to
        # that still take offers (the open ones of its 品目 are on /procedures)
        invited = select(ProcedureInvite.procedure_id).where(ProcedureInvite.supplier_org_id == who.org_id)
        stmt = select(Procedure).where(
            procedure_views.visible_clause(who),
            or_(
                and_(
                    Procedure.status == ProcedureStatus.AWARDED,
                    Procedure.awarded_supplier_id == who.org_id,
                ),
                and_(
                    Procedure.id.in_(invited),
                    Procedure.status.in_((ProcedureStatus.PUBLISHED, ProcedureStatus.OPEN)),
                    Procedure.ends_at > now,
                ),
            ),
        )
    for p in (await s.execute(stmt.order_by(Procedure.created_at, Procedure.id).limit(SCANNED))).scalars():
        step = procedure_steps.next_step(p, now)
        yours = procedure_steps.stance(p, step, who.role, who.org_id) == "yours"
        board.add(_procedure_item(p, step), yours)


async def _supplier_catalog(s: AsyncSession, who: Principal, settings: Settings, board: Board) -> None:
    listings = await _oldest(
        s,
        Listing,
        (Listing.updated_at, Listing.id),
        Listing.supplier_org_id == who.org_id,
        Listing.status.in_(
            (
                ListingStatus.DRAFT,
                ListingStatus.SUBMITTED,
                ListingStatus.REJECTED,
                ListingStatus.FROZEN,
            )
        ),
    )
    for li in listings:
        step = catalog_steps.listing_step(li, settings.work_calendar)
        item = Item(
            "商品", f"{li.name} · {li.brand} {li.spec_model}", f"/supplier/listings/{li.id}/edit", step
        )
        board.add(item, step.stance("supplier") == "yours")
    apps = await _oldest(
        s,
        Designation,
        (Designation.applied_at, Designation.id),
        Designation.supplier_org_id == who.org_id,
        Designation.status.in_((DesignationStatus.APPLIED, DesignationStatus.REJECTED)),
    )
    for d in apps:
        step = catalog_steps.designation_step(d)
        item = Item(
            "定点申请", f"{d.category_code} · {d.region_code}", "/designated", step, detail=d.review_note
        )
        board.add(item, step.stance("supplier") == "yours")


async def _center_queues(s: AsyncSession, settings: Settings, board: Board) -> None:
    listings = await _oldest(
        s, Listing, (Listing.submitted_at, Listing.id), Listing.status == ListingStatus.SUBMITTED
    )
    for li in listings:
        step = catalog_steps.listing_step(li, settings.work_calendar)
        board.yours.append(Item("商品审核", f"{li.name} · {li.supplier.name}", "/center/listings", step))
    apps = await _oldest(
        s,
        Designation,
        (Designation.applied_at, Designation.id),
        Designation.status == DesignationStatus.APPLIED,
    )
    for d in apps:
        board.yours.append(
            Item(
                "定点申请",
                f"{d.category_code} · {d.region_code}",
                "/designated?status=applied",
                catalog_steps.designation_step(d),
            )
        )
    requests = await _oldest(
        s,
        PriceRequest,
        (PriceRequest.requested_at, PriceRequest.id),
        PriceRequest.status == PriceRequestStatus.PENDING,
    )
    for r in requests:
        board.yours.append(
            Item(
                "调价申请",
                f"{r.listing.name} · 新价格 ¥{r.price}",
                "/center/listings?status=prices",
                NextStep("待审核", "center", "审核调价，通过后新价格生效"),
            )
        )


async def _regulator_counts(s: AsyncSession, settings: Settings, board: Board) -> None:
    now = clock.now()
    board.counts = {
        "unfiled": await oversight.unfiled_count(s, now, settings.work_calendar),
        "late_payments": await oversight.late_payment_count(s),
        "overdue_reviews": len(await oversight.overdue_designation_reviews(s, now)),
    }


async def board_of(s: AsyncSession, who: Principal, settings: Settings) -> Board:
    board = Board([], [], {})
    if who.role in ("buyer", "supplier") and who.org_id is not None:
        await _orders(s, who, settings, board)
        await _claims(s, who, board)
        await _procedures(s, who, board)
        if who.role == "supplier":
            await _supplier_catalog(s, who, settings, board)
    elif who.role == "center":
        await _center_queues(s, settings, board)
        await _regulator_counts(s, settings, board)
    elif who.role == "regulator":
        await _regulator_counts(s, settings, board)
    board.sort()
    return board


TAGS = ["工作台"]


class NextStepOut(msgspec.Struct):
    step: str  # 当前环节
    actor: str | None  # buyer | supplier | center | regulator | platform; null once finished
    actor_label: str
    action: str
    due: datetime | None  # the deadline a rule sets, if any
    at_due: str  # what happens when it passes
    overdue: bool


class WorkItemOut(msgspec.Struct):
    kind: str  # 订单 / 询价 / 竞价 / 商品 / 定点申请 / 调价申请 / 商品审核
    title: str
    href: str  # the item's page
    amount: str | None  # an order's amount, a procedure's ceiling
    detail: str
    next: NextStepOut

    @classmethod
    def of(cls, i: Item, now: datetime) -> WorkItemOut:
        s = i.step
        return cls(
            i.kind,
            i.title,
            i.href,
            money_str(i.amount) if i.amount is not None else None,
            i.detail,
            NextStepOut(s.step, s.actor, s.actor_label, s.action, s.due, s.at_due, s.overdue(now)),
        )


class WorkbenchOut(msgspec.Struct):
    yours: list[WorkItemOut]  # what waits for the caller, the nearest deadline first
    waiting: list[WorkItemOut]  # what the caller waits for from others
    counts: dict[str, int]  # the center's and the regulator's oversight figures


class WorkbenchApi(Controller):
    path = "/api/workbench"
    tags = TAGS

    @get(
        "/",
        opt=allow("buyer", "supplier", "center", "regulator"),
        summary="工作台：待我处理与等待他方处理的事项（各至多 50 项，期限近的在前）",
    )
    async def workbench(self, call: UserCall) -> WorkbenchOut:
        async with call.db.read() as s:
            board = await board_of(s, call.me, call.settings)
        now = clock.now()
        return WorkbenchOut(
            [WorkItemOut.of(i, now) for i in board.yours],
            [WorkItemOut.of(i, now) for i in board.waiting],
            board.counts,
        )


class WorkbenchPage(Controller):
    path = "/workbench"
    include_in_schema = False

    @get("/", opt=allow("buyer", "supplier", "center", "regulator"))
    async def workbench(self, call: UserCall) -> Template:
        async with call.db.read() as s:
            board = await board_of(s, call.me, call.settings)
            # the unread notifications, each linking to the page where it is done
            unread = await inbox.unread(s, call.me.user_id, UNREAD_SHOWN)
        return call.render("workbench.html", board=board, unread_messages=unread, now=clock.now())


ROUTES = [WorkbenchApi]
PAGES = [WorkbenchPage]

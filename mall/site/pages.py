"""Server-rendered pages (Chinese), gathered from their areas; the template globals and the home page.
Forms post with a CSRF token; refusals come back as a message."""

from __future__ import annotations

from decimal import Decimal

from litestar import Controller, Litestar, get
from litestar.response import Template
from sqlalchemy import BigInteger, and_, case, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from bidding import views
from bidding.models import Procedure, ProcedureKind, ProcedureStatus
from catalog.categories import name_of
from catalog.models import Agreement, AgreementStatus, Designation, DesignationStatus, Listing, ListingStatus
from mall.budgets import scope as budget_scope
from mall.core import clock, fields, regions
from mall.core.auth import ROLE_LABELS
from mall.core.guards import PUBLIC
from mall.core.money import quantity_str, yuan_display, yuan_uppercase
from mall.ledger import disclosure
from mall.ledger.models import DisclosureRecord
from mall.orders.models import ORDER_STATUS_LABELS, OrderStatus
from mall.site import (
    account_pages,
    admin_pages,
    audit_routes,
    budget_routes,
    cart_pages,
    case_routes,
    credit_routes,
    disclosure_routes,
    notice_routes,
    order_pages,
    oversight_routes,
    pricewatch_routes,
    sanction_routes,
    sme_routes,
    stats_routes,
    workbench,
)
from mall.web.deps import DB, Config
from mall.web.helpers import AnyRequest, render

ACTION_LABELS = {
    "placed": "下单",
    "confirmed": "确认订单",
    "cancelled": "取消",
    "cancel_requested": "申请取消",
    "cancel_refused": "拒绝取消",
    "supplier_signed": "供应商签署合同",
    "buyer_signed": "采购人签署合同",
    "contract_filed": "合同备案",
    "shipped": "发货",
    "received": "收货",
    "accepted": "验收",
    "acceptance_refused": "验收不合格",
    "invoice_recorded": "登记发票",
    "invoice_confirmed": "确认发票",
    "invoice_rejected": "退回发票",
    "paid": "付款",
    "corrected": "更正成交记录",
    "claim_opened": "申请售后",
    "claim_answered": "答复售后",
    "claim_closed": "售后结束",
}


def configure_templates(app: Litestar, settings: Config) -> None:
    env = app.template_engine.engine  # type: ignore[union-attr]
    env.globals.update(
        yuan=yuan_display,
        yuan_upper=yuan_uppercase,
        qty=quantity_str,
        local=clock.local_display,
        status_label=lambda s: ORDER_STATUS_LABELS.get(OrderStatus(s), s),
        mode_label=lambda m: disclosure.MODE_LABELS.get(m, m),
        kind_label=lambda k: disclosure.KIND_LABELS.get(k, k),
        action_label=lambda a: ACTION_LABELS.get(a, a),
        category_name=name_of,
        role_labels=ROLE_LABELS,
        limits=fields,  # the fields' maximum lengths, for the forms' maxlength
        site_name="阳光卖场",
        region_name=settings.region_name,
        region_label=regions.region_name,
        scope_label=budget_scope.describe,
        scope_short=budget_scope.short,
    )
    env.autoescape = True


class HomePage(Controller):
    path = "/"
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def home(self, request: AnyRequest, db: DB) -> Template:
        async with db.read() as s:
            recent = list(
                (
                    await s.execute(select(DisclosureRecord).order_by(DisclosureRecord.seq.desc()).limit(8))
                ).scalars()
            )
            published = await s.scalar(select(func.count()).where(DisclosureRecord.kind == "deal")) or 0
            cancelled = (
                await s.scalar(select(func.count()).where(DisclosureRecord.kind == "cancellation")) or 0
            )
            deals = published - cancelled  # the same deals the amount below counts
            # Money columns hold 分; cancelled deals are taken off again.
            signed = case((DisclosureRecord.kind == "cancellation", -1), else_=1)
            cents = await s.scalar(
                select(func.sum(type_coerce(DisclosureRecord.total_amount, BigInteger) * signed)).where(
                    DisclosureRecord.kind.in_(("deal", "cancellation"))
                )
            )
            live = await s.scalar(select(func.count()).where(Listing.status == ListingStatus.LIVE)) or 0
            modes = await _mode_counts(s)
        total = Decimal(cents or 0) / 100
        return render(request, "home.html", recent=recent, deals=deals, amount=total, live=live, modes=modes)


async def _mode_counts(s: AsyncSession) -> dict[str, int]:
    """What each way of buying has open now, as anyone may see it: agreements in force, designated
    suppliers, and the public inquiry and auction notices open for offers."""
    open_now = and_(views.public_clause(), views.shown_status_clause(ProcedureStatus.OPEN, clock.now()))
    by_kind = dict(
        (await s.execute(select(Procedure.kind, func.count()).where(open_now).group_by(Procedure.kind))).all()
    )
    return {
        "agreements": await s.scalar(select(func.count()).where(Agreement.status == AgreementStatus.ACTIVE))
        or 0,
        "designated": await s.scalar(
            select(func.count(func.distinct(Designation.supplier_org_id))).where(
                Designation.status == DesignationStatus.APPROVED
            )
        )
        or 0,
        "inquiries": int(by_kind.get(ProcedureKind.INQUIRY, 0)),
        "auctions": int(by_kind.get(ProcedureKind.AUCTION, 0)),
    }


ROUTES = [
    HomePage,
    *account_pages.ROUTES,
    *cart_pages.ROUTES,
    *order_pages.ROUTES,
    *budget_routes.PAGES,
    *disclosure_routes.PAGES,
    *notice_routes.PAGES,
    *oversight_routes.PAGES,
    *case_routes.PAGES,
    *sanction_routes.PAGES,
    *credit_routes.PAGES,
    *sme_routes.PAGES,
    *pricewatch_routes.PAGES,
    *stats_routes.PAGES,
    *admin_pages.ROUTES,
    *audit_routes.PAGES,
    *workbench.PAGES,
]

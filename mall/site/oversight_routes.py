"""The regulator's watch lists: the API (paged, one list each) and the oversight page (all of them)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from mall import oversight
from mall.core import clock
from mall.core.auth import allow
from mall.orders.models import ORDER_STATUS_LABELS
from mall.structs import WatchedOrderOut, WatchedOrderPage
from mall.web.deps import DB, Config
from mall.web.helpers import AnyRequest, PageNo, PerPage, render

TAGS = ["监管"]


class OversightApi(Controller):
    path = "/api/oversight"
    tags = TAGS

    @get(
        "/unpaid-orders",
        opt=allow("regulator"),
        summary="验收后超期未付款的中小企业订单（等待最久的在前）",
    )
    async def oversight_unpaid(
        self, db: DB, settings: Config, page: PageNo = 1, per_page: PerPage = 20
    ) -> WatchedOrderPage:
        now = clock.now()
        async with db.read() as s:
            total = await oversight.unpaid_count(s, settings, now)
            rows = await oversight.unpaid_orders(
                s, settings, now, limit=per_page, offset=(page - 1) * per_page
            )
            return WatchedOrderPage(
                total, page, per_page, [WatchedOrderOut.of(r.order, r.days) for r in rows]
            )

    @get("/late-payments", opt=allow("regulator"), summary="逾期付款记录（最近付款的在前）")
    async def oversight_late_payments(
        self, db: DB, page: PageNo = 1, per_page: PerPage = 20
    ) -> WatchedOrderPage:
        async with db.read() as s:
            total = await oversight.late_payment_count(s)
            rows = await oversight.late_payments(s, limit=per_page, offset=(page - 1) * per_page)
            return WatchedOrderPage(total, page, per_page, [WatchedOrderOut.of(o) for o in rows])

    @get(
        "/unfiled-contracts",
        opt=allow("regulator"),
        summary="确认后超期未备案合同的订单（最早确认的在前）",
    )
    async def oversight_unfiled(self, db: DB, page: PageNo = 1, per_page: PerPage = 20) -> WatchedOrderPage:
        now = clock.now()
        async with db.read() as s:
            total = await oversight.unfiled_count(s, now)
            rows = await oversight.unfiled_contracts(s, now, limit=per_page, offset=(page - 1) * per_page)
            return WatchedOrderPage(
                total, page, per_page, [WatchedOrderOut.of(r.order, r.days) for r in rows]
            )


class OversightPages(Controller):
    path = "/oversight"
    include_in_schema = False

    @get("/", opt=allow("regulator", "center"))
    async def oversight_page(self, request: AnyRequest, db: DB, settings: Config) -> Template:
        now = clock.now()
        async with db.read() as s:
            view = await oversight.overview(s, settings, now)
        return render(
            request,
            "oversight.html",
            unpaid=[(late.order, late.days) for late in view.unpaid],
            late_paid=view.late_paid,
            counts=view.counts,
            pending=view.pending,
            split_cases=view.split_cases,
            watch=view.watch,
            overdue_reviews=view.overdue_reviews,
            unfiled=[(late.order, late.days) for late in view.unfiled],
            filing_days=oversight.CONTRACT_FILING_DAYS,
            settings=settings,
            statuses=ORDER_STATUS_LABELS,
        )


ROUTES = [OversightApi]
PAGES = [OversightPages]

"""The regulator's watch lists: the API (paged, one list each) and the oversight page (all of them)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import msgspec
from litestar import Controller, get
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.oversight import BiddingWatch, bidding_watch
from mall import oversight
from mall.core import clock
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.guards import allow
from mall.core.money import money_str
from mall.core.regions import org_region, region_name
from mall.orders.models import ORDER_STATUS_LABELS
from mall.orders.steps import CONTRACT_FILING_WORKING_DAYS
from mall.structs import WatchedOrderOut, WatchedOrderPage
from mall.web.deps import DB, Config, Me
from mall.web.helpers import AnyRequest, PageNo, PerPage, render

TAGS = ["监管"]


Rows = Callable[[AsyncSession, int, int], Awaitable[list[WatchedOrderOut]]]


async def scope_of(db: Database, me: Principal) -> str:
    """The region the overseer oversees: its organization's (a province all of it, a city its own)."""
    async with db.read() as s:
        return await org_region(s, me.org_id)


async def _watched(
    db: Database, page: int, per_page: int, count: Callable[[AsyncSession], Awaitable[int]], rows: Rows
) -> WatchedOrderPage:
    """One page of a watch list: its count and the rows at (limit, offset), read together."""
    async with db.read() as s:
        return WatchedOrderPage(
            await count(s), page, per_page, await rows(s, per_page, (page - 1) * per_page)
        )


class OversightApi(Controller):
    path = "/api/oversight"
    tags = TAGS

    @get(
        "/unpaid-orders",
        opt=allow("regulator"),
        summary="验收后超期未付款的中小企业订单（等待最久的在前）",
    )
    async def oversight_unpaid(
        self, db: DB, settings: Config, me: Me, page: PageNo = 1, per_page: PerPage = 20
    ) -> WatchedOrderPage:
        now = clock.now()
        scope = await scope_of(db, me)

        async def rows(s: AsyncSession, limit: int, offset: int) -> list[WatchedOrderOut]:
            late = await oversight.unpaid_orders(s, settings, now, limit=limit, offset=offset, scope=scope)
            return [WatchedOrderOut.of(r.order, r.days) for r in late]

        return await _watched(
            db, page, per_page, lambda s: oversight.unpaid_count(s, settings, now, scope), rows
        )

    @get("/late-payments", opt=allow("regulator"), summary="逾期付款记录（最近付款的在前）")
    async def oversight_late_payments(
        self, db: DB, me: Me, page: PageNo = 1, per_page: PerPage = 20
    ) -> WatchedOrderPage:
        scope = await scope_of(db, me)

        async def rows(s: AsyncSession, limit: int, offset: int) -> list[WatchedOrderOut]:
            late = await oversight.late_payments(s, limit=limit, offset=offset, scope=scope)
            return [WatchedOrderOut.of(o) for o in late]

        return await _watched(db, page, per_page, lambda s: oversight.late_payment_count(s, scope), rows)

    @get(
        "/unfiled-contracts",
        opt=allow("regulator"),
        summary="确认后超过7个工作日未备案合同的订单（最早确认的在前）",
    )
    async def oversight_unfiled(
        self, db: DB, settings: Config, me: Me, page: PageNo = 1, per_page: PerPage = 20
    ) -> WatchedOrderPage:
        now = clock.now()
        calendar = settings.work_calendar
        scope = await scope_of(db, me)

        async def rows(s: AsyncSession, limit: int, offset: int) -> list[WatchedOrderOut]:
            late = await oversight.unfiled_contracts(
                s, now, calendar, limit=limit, offset=offset, scope=scope
            )
            return [WatchedOrderOut.of(r.order, r.days) for r in late]

        return await _watched(
            db, page, per_page, lambda s: oversight.unfiled_count(s, now, calendar, scope), rows
        )

    @get(
        "/split-purchases",
        opt=allow("regulator", "center"),
        summary="疑似化整为零：同一预算项目年内同类品目累计超过公开招标数额标准（金额大的在前）",
    )
    async def oversight_split(self, db: DB, settings: Config, me: Me) -> list[SplitCaseOut]:
        scope = await scope_of(db, me)
        async with db.read() as s:
            cases = await oversight.split_purchase_cases(s, settings, scope)
        return [SplitCaseOut.of(c) for c in cases]

    @get(
        "/bidding",
        opt=allow("regulator", "center"),
        summary="询价与竞价监管：异常低价、失败项目、放弃成交的供应商（最近截止的 200 个项目）",
    )
    async def oversight_bidding(self, db: DB, me: Me) -> BiddingWatch:
        scope = await scope_of(db, me)
        async with db.read() as s:
            return await bidding_watch(s, scope=scope)


class SplitCaseOut(msgspec.Struct):
    buyer_name: str
    budget_line_id: uuid.UUID
    project_code: str
    fiscal_year: int
    category_class: str  # the 品目 class (first 7 characters of the code)
    class_name: str
    orders: int
    total: str

    @classmethod
    def of(cls, c: oversight.SplitCase) -> SplitCaseOut:
        return cls(
            c.buyer_name,
            c.budget_line_id,
            c.project_code,
            c.fiscal_year,
            c.category_class,
            c.class_name,
            c.orders,
            money_str(c.total),
        )


class OversightPages(Controller):
    path = "/oversight"
    include_in_schema = False

    @get("/", opt=allow("regulator", "center"))
    async def oversight_page(self, request: AnyRequest, db: DB, settings: Config, me: Me) -> Template:
        now = clock.now()
        async with db.read() as s:
            scope = await org_region(s, me.org_id)
            view = await oversight.overview(s, settings, now, scope)
        return render(
            request,
            "oversight.html",
            scope_name=region_name(scope) or scope,
            unpaid=[(late.order, late.days) for late in view.unpaid],
            late_paid=view.late_paid,
            counts=view.counts,
            pending=view.pending,
            split_cases=view.split_cases,
            watch=view.watch,
            overdue_reviews=view.overdue_reviews,
            unfiled=[(late.order, late.days) for late in view.unfiled],
            late_notices=view.late_notices,
            filing_days=CONTRACT_FILING_WORKING_DAYS,
            settings=settings,
            statuses=ORDER_STATUS_LABELS,
        )


ROUTES = [OversightApi]
PAGES = [OversightPages]

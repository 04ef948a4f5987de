"""Price monitoring: the center's alert list and actions, the supplier's answers, the public 价格监测 page (mall.pricewatch)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Template

from catalog.browse import get_listing
from mall.core.clock import rfc3339
from mall.core.db import Database
from mall.core.errors import DomainError
from mall.core.fields import CategoryCodeText, DateText, OptionalName
from mall.core.guards import PUBLIC, allow
from mall.pricewatch import service
from mall.pricewatch.models import ALERT_KIND_LABELS, ALERT_STATUS_LABELS, AlertStatus
from mall.pricewatch.stats import market_for
from mall.pricewatch.structs import (
    AnswerIn,
    AskIn,
    ClassOut,
    CloseIn,
    FreezeIn,
    ListingMarketOut,
    MarketOut,
    MonitoringOut,
    PriceAlertOut,
    PriceAlertPage,
)
from mall.web import forms
from mall.web.deps import DB, UserCall
from mall.web.helpers import AnyRequest, Form, PageNo, PerPage, page_no, paging, render

TAGS = ["价格监测"]
OVERSEERS = allow("center", "regulator")
Filter = FromQuery[str]
PER_PAGE = 20


class PriceAlertApi(Controller):
    path = "/api/oversight/price-alerts"
    tags = TAGS
    opt = OVERSEERS

    @get(
        "/",
        summary="价格预警（本单位所辖区域内供应商的商品；最新的在前）",
        description="筛选：kind 预警类型，status 状态，category 品目编码前缀，supplier 供应商名称（部分），"
        "since/until 发现日期（YYYY-MM-DD，含当日）。",
    )
    async def list_alerts(
        self,
        call: UserCall,
        kind: FromQuery[str] = "",
        status: FromQuery[str] = "",
        category: FromQuery[CategoryCodeText] = "",
        supplier: FromQuery[OptionalName] = "",
        since: FromQuery[DateText] = "",
        until: FromQuery[DateText] = "",
        page: PageNo = 1,
        per_page: PerPage = PER_PAGE,
    ) -> PriceAlertPage:
        f = service.filters_of(kind, status, category, supplier, since, until)
        async with call.db.read() as s:
            total, rows = await service.list_alerts(s, call.me, f, page=page, per_page=per_page)
        return PriceAlertPage(total, page, per_page, [PriceAlertOut.of(r) for r in rows])

    @get("/{alert_id:uuid}", summary="一条价格预警")
    async def get_alert(self, call: UserCall, alert_id: FromPath[uuid.UUID]) -> PriceAlertOut:
        return await _out(call.db, call, alert_id)

    @post("/{alert_id:uuid}/ask", status_code=200, summary="要求供应商说明（限期若干个工作日，通知供应商）")
    async def ask(
        self, call: UserCall, alert_id: FromPath[uuid.UUID], data: JSONBody[AskIn]
    ) -> PriceAlertOut:
        await service.ask(call.db, call.settings, call.me, alert_id, data.note)
        return await _out(call.db, call, alert_id)

    @post("/{alert_id:uuid}/freeze", status_code=200, summary="冻结该预警的商品（须写明原因）")
    async def freeze(
        self, call: UserCall, alert_id: FromPath[uuid.UUID], data: JSONBody[FreezeIn]
    ) -> PriceAlertOut:
        await service.freeze(call.db, call.settings, call.me, alert_id, data.reason)
        return await _out(call.db, call, alert_id)

    @post("/{alert_id:uuid}/close", status_code=200, summary="关闭预警（须写明处理说明）")
    async def close(
        self, call: UserCall, alert_id: FromPath[uuid.UUID], data: JSONBody[CloseIn]
    ) -> PriceAlertOut:
        await service.close(call.db, call.me, alert_id, data.note)
        return await _out(call.db, call, alert_id)


async def _out(db: Database, call: Any, alert_id: uuid.UUID) -> PriceAlertOut:
    async with db.read() as s:
        return PriceAlertOut.of(await service.one(s, call.me, alert_id))


class SupplierPriceAlertApi(Controller):
    path = "/api/supplier/price-alerts"
    tags = TAGS
    opt = allow("supplier")

    @get("/", summary="本供应商被要求说明的价格预警（最新的在前）")
    async def my_alerts(
        self, call: UserCall, status: FromQuery[str] = "", page: PageNo = 1, per_page: PerPage = PER_PAGE
    ) -> PriceAlertPage:
        async with call.db.read() as s:
            total, rows = await service.supplier_alerts(
                s, call.me, status=status, page=page, per_page=per_page
            )
        return PriceAlertPage(total, page, per_page, [PriceAlertOut.of(r) for r in rows])

    @post("/{alert_id:uuid}/answer", status_code=200, summary="对价格预警作出说明")
    async def answer(
        self, call: UserCall, alert_id: FromPath[uuid.UUID], data: JSONBody[AnswerIn]
    ) -> PriceAlertOut:
        await service.answer(call.db, call.me, alert_id, data.answer)
        return await _out(call.db, call, alert_id)


async def monitoring_out(db: Database) -> MonitoringOut:
    async with db.read() as s:
        last, rows = await service.monitoring(s)
    classes = [ClassOut.of(r) for r in rows]
    return MonitoringOut(
        rfc3339(last.finished_at) if last is not None and last.finished_at else None,
        sum(c.monitored for c in classes),
        sum(c.flagged for c in classes),
        classes,
    )


class PublicPriceApi(Controller):
    path = "/api"
    tags = TAGS
    opt = PUBLIC

    @get("/price-monitoring", summary="价格监测：各品目类在售商品数与触发预警的比例，最近一次监测时间")
    async def monitoring(self, db: DB) -> MonitoringOut:
        return await monitoring_out(db)

    @get(
        "/listings/{listing_id:uuid}/market",
        summary="在售商品的市场成交价：同品牌同型号近90日成交单价的中位数与四分位数、样本数（无成交为 null）",
    )
    async def listing_market(self, db: DB, listing_id: FromPath[uuid.UUID]) -> ListingMarketOut:
        async with db.read() as s:
            listing = await get_listing(s, listing_id)
            stat = await market_for(s, listing.brand_key, listing.model_key)
        return ListingMarketOut(listing.id, f"{listing.price:.2f}", MarketOut.of(stat) if stat else None)


# ---------------------------------------------------------------- pages


def _kinds() -> list[tuple[str, str]]:
    return list(ALERT_KIND_LABELS.items())


def _statuses() -> list[tuple[str, str]]:
    return list(ALERT_STATUS_LABELS.items())


class PriceAlertPages(Controller):
    path = "/oversight/price-alerts"
    include_in_schema = False
    opt = OVERSEERS

    @get("/")
    async def alerts_page(
        self,
        call: UserCall,
        kind: Filter = "",
        status: Filter = "",
        category: Filter = "",
        supplier: Filter = "",
        since: Filter = "",
        until: Filter = "",
        page: Filter = "1",
    ) -> Template:
        values = {
            "kind": kind,
            "status": status,
            "category": category,
            "supplier": supplier,
            "since": since,
            "until": until,
        }
        pg, error, total = page_no(page), "", 0
        rows: list[service.AlertRow] = []
        try:
            f = service.filters_of(**{k: v[:200] for k, v in values.items()})
            async with call.db.read() as s:
                total, rows = await service.list_alerts(s, call.me, f, page=pg, per_page=PER_PAGE)
        except DomainError as exc:
            error = exc.detail
        qs = urlencode({k: v for k, v in values.items() if v})
        return call.render(
            "pricewatch_alerts.html",
            rows=rows,
            values=values,
            qs=qs,
            error=error,
            kinds=_kinds(),
            statuses=_statuses(),
            kind_labels=ALERT_KIND_LABELS,
            alert_status_labels=ALERT_STATUS_LABELS,
            **paging(total, pg, PER_PAGE),
        )

    @get("/{alert_id:uuid}")
    async def alert_page(self, call: UserCall, alert_id: FromPath[uuid.UUID]) -> Template:
        async with call.db.read() as s:
            row = await service.one(s, call.me, alert_id)
        return call.render(
            "pricewatch_alert.html",
            row=row,
            a=row.alert,
            kind_labels=ALERT_KIND_LABELS,
            alert_status_labels=ALERT_STATUS_LABELS,
            days=service.answer_working_days(call.settings),
            can_ask=row.alert.status in (AlertStatus.OPEN, AlertStatus.ANSWERED),
            can_freeze=row.alert.status not in (AlertStatus.FROZEN, AlertStatus.CLOSED),
            can_close=row.alert.status != AlertStatus.CLOSED,
            note_max=service.NOTE_MAX,
        )

    @post("/{alert_id:uuid}/ask")
    async def ask(self, call: UserCall, alert_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        back = f"/oversight/price-alerts/{alert_id}"

        async def go() -> Any:
            return await service.ask(
                call.db, call.settings, call.me, alert_id, forms.decode(AskIn, data).note
            )

        return await call.act(go, "已要求供应商说明，并已通知供应商", back)

    @post("/{alert_id:uuid}/freeze")
    async def freeze(self, call: UserCall, alert_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        back = f"/oversight/price-alerts/{alert_id}"

        async def go() -> Any:
            reason = forms.decode(FreezeIn, data).reason
            return await service.freeze(call.db, call.settings, call.me, alert_id, reason)

        return await call.act(go, "商品已冻结，供应商已收到处理决定", back, keep=data)

    @post("/{alert_id:uuid}/close")
    async def close(self, call: UserCall, alert_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        back = f"/oversight/price-alerts/{alert_id}"

        async def go() -> Any:
            return await service.close(call.db, call.me, alert_id, forms.decode(CloseIn, data).note)

        return await call.act(go, "预警已关闭", back, keep=data)


class SupplierPriceAlertPages(Controller):
    path = "/supplier/price-alerts"
    include_in_schema = False
    opt = allow("supplier")

    @get("/")
    async def my_alerts_page(self, call: UserCall, status: Filter = "", page: Filter = "1") -> Template:
        pg = page_no(page)
        status = status if status in ALERT_STATUS_LABELS else ""
        async with call.db.read() as s:
            total, rows = await service.supplier_alerts(s, call.me, status=status, page=pg, per_page=PER_PAGE)
        return call.render(
            "pricewatch_supplier.html",
            rows=rows,
            status=status,
            statuses=[(k, v) for k, v in _statuses() if k != AlertStatus.OPEN],
            kind_labels=ALERT_KIND_LABELS,
            alert_status_labels=ALERT_STATUS_LABELS,
            **paging(total, pg, PER_PAGE),
        )

    @get("/{alert_id:uuid}")
    async def my_alert_page(self, call: UserCall, alert_id: FromPath[uuid.UUID]) -> Template:
        async with call.db.read() as s:
            row = await service.one(s, call.me, alert_id)
        return call.render(
            "pricewatch_answer.html",
            row=row,
            a=row.alert,
            kind_labels=ALERT_KIND_LABELS,
            alert_status_labels=ALERT_STATUS_LABELS,
            answer_max=service.ANSWER_MAX,
        )

    @post("/{alert_id:uuid}/answer")
    async def answer(self, call: UserCall, alert_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Any:
            return await service.answer(call.db, call.me, alert_id, forms.decode(AnswerIn, data).answer)

        return await call.act(
            go, "说明已提交，采购中心将据此处理", f"/supplier/price-alerts/{alert_id}", keep=data
        )


class PublicPricePages(Controller):
    path = "/price-monitoring"
    include_in_schema = False
    opt = PUBLIC

    @get("/")
    async def monitoring_page(self, request: AnyRequest, db: DB) -> Template:
        view = await monitoring_out(db)
        async with db.read() as s:
            last, _ = await service.monitoring(s)
        return render(
            request,
            "pricewatch_public.html",
            view=view,
            last_at=last.finished_at if last is not None else None,
        )


ROUTES: list[Any] = [PriceAlertApi, SupplierPriceAlertApi, PublicPriceApi]
PAGES: list[Any] = [PriceAlertPages, SupplierPriceAlertPages, PublicPricePages]

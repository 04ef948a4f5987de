"""Pages of framework agreements (协议供货) and designated services (定点服务).

The center drafts an agreement, enters suppliers and products, puts it in force and follows its
summary; a buyer orders a product under it (or starts a second-stage competition); suppliers apply
to be designated; a buyer finds designated suppliers by region and 品目 and orders a service."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from catalog import agreement_orders, agreement_queries, agreement_setup, steps
from catalog import designated as dd
from catalog.categories import name_of
from catalog.models import (
    AGREEMENT_STATUS_LABELS,
    DESIGNATION_STATUS_LABELS,
    AgreementStatus,
    DesignationStatus,
)
from mall import budgets
from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.errors import DomainError, InvalidInput
from mall.core.guards import PUBLIC, allow
from mall.structs import ReasonIn
from mall.web import forms
from mall.web.deps import DB, Config, UserCall, Viewer
from mall.web.helpers import AnyRequest, Form, flash, pop_form, render

WATCHERS = ("center", "regulator")


async def _budget_lines(s: AsyncSession, who: Principal | None) -> list[Any]:
    if who is None or who.role != "buyer" or who.org_id is None:
        return []
    year = clock.local_date(clock.now()).year
    return [b for b in await budgets.lines_of(s, who.org_id) if b.fiscal_year == year]


def _picked(ids: Iterable[str], message: str) -> None:
    """Choices left empty on a form (a radio button, a select): say what to choose, not that an id
    is malformed."""
    for value in ids:
        try:
            uuid.UUID(value)
        except ValueError:
            raise InvalidInput(message, code="invalid_form") from None


def _without(data: Mapping[str, str], *names: str) -> dict[str, str]:
    """A form's fields but the ones the page adds for itself (the order key, the filters)."""
    return {k: v for k, v in data.items() if k not in names}


# ---------------------------------------------------------------- agreements


class AgreementPages(Controller):
    path = "/agreements"
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def agreements_page(
        self, request: AnyRequest, viewer: Viewer, db: DB, status: FromQuery[str] = ""
    ) -> Template:
        """Public: agreements in force and past ones are public information; drafts are the center's."""
        async with db.read() as s:
            rows = await agreement_queries.listed(
                s, viewer, status if status in AGREEMENT_STATUS_LABELS else ""
            )
        return render(
            request,
            "agreements.html",
            rows=rows,
            status=status,
            labels=AGREEMENT_STATUS_LABELS,
            kinds=agreement_setup.AGREEMENT_KIND_LABELS,
            name_of=name_of,
        )

    @get("/new", opt=allow("center"))
    async def new_agreement_page(self, request: AnyRequest) -> Template:
        today = clock.local_date(clock.now())
        defaults = {
            "kind": "goods",
            "starts_on": today.isoformat(),
            "ends_on": (agreement_setup.add_years(today, 1) - timedelta(days=1)).isoformat(),
            "direct_limit": str(agreement_setup.DEFAULT_DIRECT_LIMIT),
        }
        return render(
            request,
            "agreement_new.html",
            form={**defaults, **pop_form(request)},
            kinds=agreement_setup.AGREEMENT_KIND_LABELS,
        )

    @post("/new", opt=allow("center"))
    async def create_agreement(self, call: UserCall, data: Form) -> Redirect:
        async def go() -> Any:
            draft = forms.decode(agreement_setup.AgreementDraft, data)
            return await agreement_setup.create(call.db, call.settings, call.me, draft)

        return await call.act(
            go,
            lambda a: f"已创建协议草稿 {a.number}：请增加入围供应商和协议产品，然后生效",
            "/agreements/new",
            keep=data,
            to=lambda a: f"/agreements/{a.id}",
        )

    @get("/{agreement_id:uuid}", opt=PUBLIC)
    async def agreement_page(
        self, request: AnyRequest, viewer: Viewer, agreement_id: FromPath[uuid.UUID], db: DB, settings: Config
    ) -> Template:
        who = viewer
        async with db.read() as s:
            a = await agreement_queries.visible(s, who, agreement_id)
            entered = await agreement_queries.entered(s, a.id)
            products = await agreement_queries.products_of(s, a.id)
            # the deal summary is public once the agreement has ended; the center and the regulator
            # follow it all along
            ended = a.status in (AgreementStatus.EXPIRED, AgreementStatus.TERMINATED)
            watcher = who is not None and who.role in WATCHERS
            summary = await agreement_queries.summary(s, a.id) if ended or watcher else None
            lines = await _budget_lines(s, who)
        own = who is not None and who.role == "center" and who.org_id == a.center_org_id
        # the term's last day for an agreement that expired, the day it was ended for a terminated one
        ended_on = (
            a.ends_on
            if a.status == AgreementStatus.EXPIRED
            else (clock.local_date(a.ended_at) if a.ended_at else None)
        )
        summary_due = (
            settings.work_calendar.add_working_days(ended_on, agreement_setup.SUMMARY_WORKING_DAYS)
            if ended_on
            else None
        )
        today = clock.local_date(clock.now())
        return render(
            request,
            "agreement.html",
            a=a,
            entered=entered,
            products=products,
            summary=summary,
            budget_lines=lines,
            own=own,
            can_order=who is not None and who.role == "buyer" and agreement_setup.in_force(a, today),
            summary_due=summary_due,
            order_key=secrets.token_urlsafe(16),
            labels=AGREEMENT_STATUS_LABELS,
            kinds=agreement_setup.AGREEMENT_KIND_LABELS,
            category_name=name_of(a.category_code),
            form=pop_form(request),
        )

    @post("/{agreement_id:uuid}/suppliers", opt=allow("center"))
    async def add_supplier(self, call: UserCall, agreement_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Any:
            entry = forms.decode(agreement_setup.SupplierEntry, data)
            return await agreement_setup.add_supplier(call.db, call.me, agreement_id, entry.credit_code)

        return await call.act(go, "已增加入围供应商", f"/agreements/{agreement_id}")

    @post("/{agreement_id:uuid}/products", opt=allow("center"))
    async def add_product(self, call: UserCall, agreement_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Any:
            _picked([data.get("supplier_org_id", "")], "请选择入围供应商")
            draft = forms.decode(agreement_setup.ProductDraft, data)
            return await agreement_setup.add_product(call.db, call.me, agreement_id, draft)

        return await call.act(
            go,
            lambda p: f"已增加协议产品：{p.brand} {p.spec_model}",
            f"/agreements/{agreement_id}",
            keep=data,
        )

    @post("/{agreement_id:uuid}/activate", opt=allow("center"))
    async def activate(self, call: UserCall, agreement_id: FromPath[uuid.UUID]) -> Redirect:
        return await call.act(
            lambda: agreement_setup.activate(call.db, call.me, agreement_id),
            "协议已生效，采购人可以下单",
            f"/agreements/{agreement_id}",
        )

    @post("/{agreement_id:uuid}/terminate", opt=allow("center"))
    async def terminate(self, call: UserCall, agreement_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Any:
            reason = forms.decode(ReasonIn, data).reason
            return await agreement_setup.terminate(call.db, call.me, agreement_id, reason)

        return await call.act(go, "协议已终止", f"/agreements/{agreement_id}")

    @post("/{agreement_id:uuid}/order", opt=allow("buyer"))
    async def order(self, call: UserCall, agreement_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Any:
            _picked([data.get("product_id", ""), data.get("budget_line_id", "")], "请选择协议产品和预算指标")
            body = forms.decode(agreement_orders.AgreementOrderIn, _without(data, "order_key"))
            return await agreement_orders.place_order(
                call.db, call.settings, call.me, body.keyed(data.get("order_key", ""))
            )

        return await call.act(
            go,
            _placed_message("待供应商确认（供应商可在确认时议价降价）"),
            f"/agreements/{agreement_id}",
            keep=_without(data, "order_key"),
            to=lambda placed: f"/orders/{placed[0].id}",
        )


def _placed_message(then: str) -> Any:
    """What a page says after an order: its number and what comes next; a resubmitted form says the
    order was already made (the idempotency key answered with it)."""

    def message(placed: tuple[Any, bool]) -> str:
        order, replayed = placed
        return (
            f"订单 {order.order_no} 已提交过，未重复下单" if replayed else f"已下单 {order.order_no}，{then}"
        )

    return message


# ---------------------------------------------------------------- designated services

SERVICE_CATEGORIES = {
    "C23120301": "车辆维修和保养服务",
    "C23120302": "车辆加油服务",
    "C22010200": "一般会议服务",
    "C23090100": "印刷服务",
}


def _price_rows(data: Mapping[str, str]) -> list[dict[str, str]]:
    """Price-list rows from a form: item_name_1, item_unit_1, item_price_1, item_spec_1, …"""
    out = []
    for n in range(1, dd.MAX_PRICE_ITEMS + 1):
        name, unit, price = (data.get(f"item_{k}_{n}", "").strip() for k in ("name", "unit", "price"))
        if name or unit or price:
            out.append({"name": name, "unit": unit, "price": price, "spec": data.get(f"item_spec_{n}", "")})
    return out


def _designation_form(struct: type[dd.ApplicationIn], data: Mapping[str, str]) -> Any:
    """The application (or direct designation) form as the API's body: its rows are the price list."""
    rows = {k: v for k, v in data.items() if not k.startswith("item_")}
    return forms.decode(struct, {**rows, "prices": _price_rows(data)})


class ReviewForm(msgspec.Struct, forbid_unknown_fields=True):
    """The review form: two buttons name the decision (approve or reject), the note says why."""

    decision: fields.Choice = ""
    note: fields.Reason = ""


class DesignatedPages(Controller):
    path = "/designated"
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def designated_page(
        self,
        request: AnyRequest,
        viewer: Viewer,
        db: DB,
        settings: Config,
        region: FromQuery[str] = "",
        category: FromQuery[str] = "",
    ) -> Template:
        """Public: who is designated for which service and region, and at what prices, is public
        information (anyone may look before buying or applying); applications waiting for review and
        a supplier's own are shown to the center, the regulator and that supplier only."""
        role = viewer.role if viewer else ""
        async with db.read() as s:
            try:
                found = await dd.find(s, region_code=region, category_code=category)
            except DomainError as exc:  # a filter that is no region or 品目 code: said, nothing searched
                flash(request, exc.detail, "error")
                found = []
            pending = await dd.find(s, status=DesignationStatus.APPLIED) if role in WATCHERS else []
            mine: list[dd.Found] = []
            if viewer is not None and role == "supplier":
                for status in DesignationStatus:
                    mine += await dd.find(s, status=status, supplier_org_id=viewer.org_id)
            lines = await _budget_lines(s, viewer)
        return render(
            request,
            "designated.html",
            found=found,
            pending=pending,
            mine=mine,
            region=region,
            category=category,
            categories=SERVICE_CATEGORIES,
            labels=DESIGNATION_STATUS_LABELS,
            budget_lines=lines,
            order_key=secrets.token_urlsafe(16),
            default_region=settings.region_code,
            name_of=name_of,
            designation_step=steps.designation_step,
            form=pop_form(request),
        )

    @post("/apply", opt=allow("supplier"))
    async def apply(self, call: UserCall, data: Form) -> Redirect:
        async def go() -> Any:
            body = _designation_form(dd.ApplicationIn, data)
            return await dd.apply(
                call.db,
                call.settings,
                call.me,
                body.category_code,
                body.region_code,
                body.prices,
                body.service_address,
            )

        return await call.act(go, "已提交定点申请，集中采购机构将在7个工作日内审核", "/designated", keep=data)

    @post("/new", opt=allow("center"))
    async def designate(self, call: UserCall, data: Form) -> Redirect:
        async def go() -> Any:
            body = _designation_form(dd.DesignateIn, data)
            return await dd.designate(
                call.db,
                call.me,
                body.credit_code,
                body.category_code,
                body.region_code,
                body.prices,
                body.service_address,
            )

        return await call.act(go, "已确定定点供应商", "/designated", keep=data)

    @post("/{designation_id:uuid}/review", opt=allow("center"))
    async def review(self, call: UserCall, designation_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Any:
            form = forms.decode(ReviewForm, data)
            return await dd.review(call.db, call.me, designation_id, form.decision == "approve", form.note)

        return await call.act(
            go,
            lambda d: "已通过定点申请" if d.status == DesignationStatus.APPROVED else "已驳回定点申请",
            "/designated",
        )

    @post("/{designation_id:uuid}/revoke", opt=allow("center"))
    async def revoke(self, call: UserCall, designation_id: FromPath[uuid.UUID], data: Form) -> Redirect:
        async def go() -> Any:
            return await dd.revoke(call.db, call.me, designation_id, forms.decode(ReasonIn, data).reason)

        return await call.act(go, "已撤销定点资格", "/designated")

    @post("/{designation_id:uuid}/order", opt=allow("buyer"))
    async def service_order(
        self, call: UserCall, designation_id: FromPath[uuid.UUID], data: Form
    ) -> Redirect:
        quantities = {
            k.removeprefix("qty_"): v.strip()
            for k, v in data.items()
            if k.startswith("qty_") and v.strip() not in ("", "0")
        }

        async def go() -> Any:
            _picked([data.get("budget_line_id", ""), *quantities], "请选择预算指标并填写服务数量")
            body = forms.decode(
                dd.ServiceOrderIn,
                {
                    "designation_id": str(designation_id),
                    "items": [{"price_item_id": i, "quantity": q} for i, q in quantities.items()],
                    **{k: v for k, v in data.items() if k in ("budget_line_id", "service_address", "note")},
                },
            )
            return await dd.place_order(
                call.db, call.settings, call.me, body.keyed(data.get("order_key", ""))
            )

        back = "/designated?" + urlencode(
            {"region": data.get("region", ""), "category": data.get("category", "")}
        )
        return await call.act(
            go,
            _placed_message("待定点供应商确认"),
            back,
            keep={
                "order_for": str(designation_id),
                "order_address": data.get("service_address", ""),
                "order_note": data.get("note", ""),
            },
            to=lambda placed: f"/orders/{placed[0].id}",
        )


ROUTES = [AgreementPages, DesignatedPages]

"""Pages of framework agreements (协议供货) and designated services (定点服务).

The center drafts an agreement, enters suppliers and products, puts it in force and follows its
summary; a buyer orders a product under it (or starts a second-stage competition); suppliers apply
to be designated; a buyer finds designated suppliers by region and 品目 and orders a service."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy import select

from catalog import agreements as ag
from catalog import designated as dd
from catalog.categories import name_of
from mall import budgets
from mall.core import clock
from mall.core.auth import PUBLIC, Principal, allow
from mall.core.errors import DomainError, InvalidInput, NotFound
from mall.web.deps import DB, Config
from mall.web.helpers import act, current_user, flash, keep_form, pop_form, render

# ---------------------------------------------------------------- agreements


async def _budget_lines(s: Any, who: Principal) -> list[Any]:
    if who.role != "buyer" or who.org_id is None:
        return []
    year = clock.local_date(clock.now()).year
    return [b for b in await budgets.lines_of(s, who.org_id) if b.fiscal_year == year]


@get("/agreements", opt=PUBLIC, include_in_schema=False)
async def agreements_page(request: Request[Any, Any, Any], db: DB, status: FromQuery[str] = "") -> Template:
    """Public: agreements in force and past ones are public information; drafts are the center's."""
    who = current_user(request)
    async with db.read() as s:
        stmt = select(ag.Agreement).order_by(ag.Agreement.created_at.desc()).limit(200)
        if status in ag.AGREEMENT_STATUS_LABELS:
            stmt = stmt.where(ag.Agreement.status == status)
        rows = [a for a in (await s.execute(stmt)).scalars() if ag.visible_to(who, a)]
    return render(
        request,
        "agreements.html",
        rows=rows,
        status=status,
        labels=ag.AGREEMENT_STATUS_LABELS,
        kinds=ag.AGREEMENT_KIND_LABELS,
        name_of=name_of,
    )


@get("/agreements/new", opt=allow("center"), include_in_schema=False)
async def new_agreement_page(request: Request[Any, Any, Any]) -> Template:
    today = clock.local_date(clock.now())
    defaults = {
        "kind": "goods",
        "starts_on": today.isoformat(),
        "ends_on": (ag.add_years(today, 1) - timedelta(days=1)).isoformat(),
        "direct_limit": str(ag.DEFAULT_DIRECT_LIMIT),
    }
    return render(
        request, "agreement_new.html", form={**defaults, **pop_form(request)}, kinds=ag.AGREEMENT_KIND_LABELS
    )


@post("/agreements/new", opt=allow("center"), include_in_schema=False)
async def create_agreement(
    request: Request[Any, Any, Any], db: DB, settings: Config, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    who = current_user(request)
    assert who
    fields = ("title", "kind", "category_code", "starts_on", "ends_on", "direct_limit")
    try:
        a = await ag.create(db, settings, who, ag.AgreementDraft(**{f: data.get(f, "") for f in fields}))
    except DomainError as exc:
        flash(request, exc.detail, "error")
        keep_form(request, {f: data.get(f, "") for f in fields})
        return Redirect("/agreements/new", status_code=303)
    flash(request, f"已创建协议草稿 {a.number}：请增加入围供应商和协议产品，然后生效")
    return Redirect(f"/agreements/{a.id}", status_code=303)


@get("/agreements/{agreement_id:uuid}", opt=PUBLIC, include_in_schema=False)
async def agreement_page(
    request: Request[Any, Any, Any], agreement_id: FromPath[uuid.UUID], db: DB, settings: Config
) -> Template:
    who = current_user(request)
    async with db.read() as s:
        a = await ag.get(s, agreement_id)
        if not ag.visible_to(who, a):
            raise NotFound("框架协议不存在", code="agreement_not_found")
        entered = await ag.entered(s, a.id)
        products = await ag.products_of(s, a.id)
        # the deal summary is public once the agreement has ended; the center and the regulator
        # follow it all along
        ended = a.status in (ag.AgreementStatus.EXPIRED, ag.AgreementStatus.TERMINATED)
        watcher = who is not None and who.role in ("center", "regulator", "admin")
        summary = await ag.summary(s, a.id) if ended or watcher else None
        lines = await _budget_lines(s, who) if who else []
    own = who is not None and who.role == "center" and who.org_id == a.center_org_id
    # the term's last day for an agreement that expired, the day it was ended for a terminated one
    ended_on = (
        a.ends_on
        if a.status == ag.AgreementStatus.EXPIRED
        else (clock.local_date(a.ended_at) if a.ended_at else None)
    )
    summary_due = (
        clock.add_working_days(ended_on, ag.SUMMARY_WORKING_DAYS, settings.holiday_dates)
        if ended_on
        else None
    )
    return render(
        request,
        "agreement.html",
        a=a,
        entered=entered,
        products=products,
        summary=summary,
        budget_lines=lines,
        own=own,
        can_order=who is not None and who.role == "buyer" and ag.in_force(a, clock.local_date(clock.now())),
        summary_due=summary_due,
        order_key=secrets.token_urlsafe(16),
        labels=ag.AGREEMENT_STATUS_LABELS,
        kinds=ag.AGREEMENT_KIND_LABELS,
        category_name=name_of(a.category_code),
        form=pop_form(request),
    )


def came_from(agreement_id: uuid.UUID) -> str:
    return f"/agreements/{agreement_id}"


@post("/agreements/{agreement_id:uuid}/suppliers", opt=allow("center"), include_in_schema=False)
async def add_supplier(
    request: Request[Any, Any, Any],
    agreement_id: FromPath[uuid.UUID],
    db: DB,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    code = data.get("credit_code", "")
    return await act(
        request,
        lambda: ag.add_supplier(db, who, agreement_id, code),
        "已增加入围供应商",
        came_from(agreement_id),
    )


@post("/agreements/{agreement_id:uuid}/products", opt=allow("center"), include_in_schema=False)
async def add_product(
    request: Request[Any, Any, Any],
    agreement_id: FromPath[uuid.UUID],
    db: DB,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    fields = ("name", "brand", "spec_model", "category_code", "unit", "price", "list_price", "discount_rate")
    try:
        supplier = uuid.UUID(data.get("supplier_org_id", ""))
    except ValueError:
        flash(request, "请选择入围供应商", "error")
        return Redirect(came_from(agreement_id), status_code=303)
    draft = ag.ProductDraft(supplier, **{f: data.get(f, "") for f in fields})
    try:
        await ag.add_product(db, who, agreement_id, draft)
    except DomainError as exc:
        flash(request, exc.detail, "error")
        keep_form(request, {f: data.get(f, "") for f in (*fields, "supplier_org_id")})
        return Redirect(came_from(agreement_id), status_code=303)
    flash(request, f"已增加协议产品：{draft.brand} {draft.spec_model}")
    return Redirect(came_from(agreement_id), status_code=303)


@post("/agreements/{agreement_id:uuid}/activate", opt=allow("center"), include_in_schema=False)
async def activate(request: Request[Any, Any, Any], agreement_id: FromPath[uuid.UUID], db: DB) -> Redirect:
    who = current_user(request)
    assert who
    return await act(
        request,
        lambda: ag.activate(db, who, agreement_id),
        "协议已生效，采购人可以下单",
        came_from(agreement_id),
    )


@post("/agreements/{agreement_id:uuid}/terminate", opt=allow("center"), include_in_schema=False)
async def terminate(
    request: Request[Any, Any, Any],
    agreement_id: FromPath[uuid.UUID],
    db: DB,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    reason = data.get("reason", "")
    return await act(
        request, lambda: ag.terminate(db, who, agreement_id, reason), "协议已终止", came_from(agreement_id)
    )


@post("/agreements/{agreement_id:uuid}/order", opt=allow("buyer"), include_in_schema=False)
async def order(
    request: Request[Any, Any, Any],
    agreement_id: FromPath[uuid.UUID],
    db: DB,
    settings: Config,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    try:
        try:
            product_id = uuid.UUID(data.get("product_id", ""))
            line_id = uuid.UUID(data.get("budget_line_id", ""))
        except ValueError:
            raise InvalidInput("请选择协议产品和预算指标", code="invalid_form") from None
        req = ag.AgreementOrderRequest(
            product_id=product_id,
            quantity=data.get("quantity", ""),
            budget_line_id=line_id,
            idempotency_key=data.get("order_key", ""),
            unit_price=data.get("unit_price", ""),
            delivery_address=data.get("delivery_address", ""),
            note=data.get("note", ""),
        )
        placed, replayed = await ag.place_order(db, settings, who, req)
    except DomainError as exc:
        flash(request, exc.detail, "error")
        keep_form(request, data, omit=("order_key",))
        return Redirect(came_from(agreement_id), status_code=303)
    if not replayed:
        flash(request, f"已下单 {placed.order_no}，待供应商确认（供应商可在确认时议价降价）")
    return Redirect(f"/orders/{placed.id}", status_code=303)


# ---------------------------------------------------------------- designated services

SERVICE_CATEGORIES = {
    "C23120301": "车辆维修和保养服务",
    "C23120302": "车辆加油服务",
    "C22010200": "一般会议服务",
    "C23090100": "印刷服务",
}


@get("/designated", opt=allow("user"), include_in_schema=False)
async def designated_page(
    request: Request[Any, Any, Any],
    db: DB,
    settings: Config,
    region: FromQuery[str] = "",
    category: FromQuery[str] = "",
) -> Template:
    who = current_user(request)
    assert who
    async with db.read() as s:
        try:
            found = await dd.find(s, region_code=region, category_code=category)
        except DomainError as exc:  # a filter that is no region or 品目 code: said, nothing searched
            flash(request, exc.detail, "error")
            found = []
        pending = (
            await dd.find(s, status=dd.DesignationStatus.APPLIED)
            if who.role in ("center", "regulator", "admin")
            else []
        )
        mine: list[dd.Found] = []
        if who.role == "supplier":
            for status in dd.DESIGNATION_STATUS_LABELS:
                mine += await dd.find(s, status=status, supplier_org_id=who.org_id)
        lines = await _budget_lines(s, who)
    return render(
        request,
        "designated.html",
        found=found,
        pending=pending,
        mine=mine,
        region=region,
        category=category,
        categories=SERVICE_CATEGORIES,
        labels=dd.DESIGNATION_STATUS_LABELS,
        budget_lines=lines,
        order_key=secrets.token_urlsafe(16),
        default_region=settings.region_code,
        name_of=name_of,
        form=pop_form(request),
    )


def _price_drafts(data: dict[str, str]) -> list[dd.PriceItemDraft]:
    """Price-list rows from a form: item_name_1, item_unit_1, item_price_1, item_spec_1, …"""
    out = []
    for n in range(1, dd.MAX_PRICE_ITEMS + 1):
        name, unit, price = (data.get(f"item_{k}_{n}", "").strip() for k in ("name", "unit", "price"))
        if name or unit or price:
            out.append(dd.PriceItemDraft(name, unit, price, data.get(f"item_spec_{n}", "")))
    return out


@post("/designated/apply", opt=allow("supplier"), include_in_schema=False)
async def apply(
    request: Request[Any, Any, Any], db: DB, settings: Config, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    who = current_user(request)
    assert who
    try:
        await dd.apply(
            db,
            settings,
            who,
            data.get("category_code", ""),
            data.get("region_code", ""),
            _price_drafts(data),
            data.get("service_address", ""),
        )
    except DomainError as exc:
        flash(request, exc.detail, "error")
        keep_form(request, data)
        return Redirect("/designated", status_code=303)
    flash(request, "已提交定点申请，集中采购机构将在7个工作日内审核")
    return Redirect("/designated", status_code=303)


@post("/designated/new", opt=allow("center"), include_in_schema=False)
async def designate(
    request: Request[Any, Any, Any], db: DB, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    who = current_user(request)
    assert who
    try:
        await dd.designate(
            db,
            who,
            data.get("credit_code", ""),
            data.get("category_code", ""),
            data.get("region_code", ""),
            _price_drafts(data),
            data.get("service_address", ""),
        )
    except DomainError as exc:
        flash(request, exc.detail, "error")
        keep_form(request, data)
        return Redirect("/designated", status_code=303)
    flash(request, "已确定定点供应商")
    return Redirect("/designated", status_code=303)


@post("/designated/{designation_id:uuid}/review", opt=allow("center"), include_in_schema=False)
async def review(
    request: Request[Any, Any, Any],
    designation_id: FromPath[uuid.UUID],
    db: DB,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    approve = data.get("decision") == "approve"
    note = data.get("note", "")
    return await act(
        request,
        lambda: dd.review(db, who, designation_id, approve, note),
        "已通过定点申请" if approve else "已驳回定点申请",
        "/designated",
    )


@post("/designated/{designation_id:uuid}/revoke", opt=allow("center"), include_in_schema=False)
async def revoke(
    request: Request[Any, Any, Any],
    designation_id: FromPath[uuid.UUID],
    db: DB,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    reason = data.get("reason", "")
    return await act(
        request, lambda: dd.revoke(db, who, designation_id, reason), "已撤销定点资格", "/designated"
    )


@post("/designated/{designation_id:uuid}/order", opt=allow("buyer"), include_in_schema=False)
async def service_order(
    request: Request[Any, Any, Any],
    designation_id: FromPath[uuid.UUID],
    db: DB,
    settings: Config,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = current_user(request)
    assert who
    back = "/designated?" + urlencode(
        {"region": data.get("region", ""), "category": data.get("category", "")}
    )
    try:
        try:
            line_id = uuid.UUID(data.get("budget_line_id", ""))
            items = tuple(
                (uuid.UUID(k.removeprefix("qty_")), v.strip())
                for k, v in data.items()
                if k.startswith("qty_") and v.strip() not in ("", "0")
            )
        except ValueError:
            raise InvalidInput("请选择预算指标并填写服务数量", code="invalid_form") from None
        req = dd.ServiceOrderRequest(
            designation_id,
            items,
            line_id,
            data.get("order_key", ""),
            data.get("service_address", ""),
            data.get("note", ""),
        )
        placed, replayed = await dd.place_order(db, settings, who, req)
    except DomainError as exc:
        flash(request, exc.detail, "error")
        keep_form(
            request,
            {
                "order_for": str(designation_id),
                "order_address": data.get("service_address", ""),
                "order_note": data.get("note", ""),
            },
        )
        return Redirect(back, status_code=303)
    if not replayed:
        flash(request, f"已下单 {placed.order_no}，待定点供应商确认")
    return Redirect(f"/orders/{placed.id}", status_code=303)


ROUTES = [
    agreements_page,
    new_agreement_page,
    create_agreement,
    agreement_page,
    add_supplier,
    add_product,
    activate,
    terminate,
    order,
    designated_page,
    apply,
    designate,
    review,
    revoke,
    service_order,
]

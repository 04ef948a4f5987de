"""Catalogue pages: browse goods, a product's page, a supplier's own listings."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from catalog import categories, service
from catalog.models import LISTING_STATUS_LABELS
from catalog.service import ListingDraft, ListingQuery
from mall.auth import PUBLIC, allow
from mall.deps import DB, Config
from mall.errors import DomainError
from mall.money import MoneyError, money
from mall.pages import _act, _page_no, _user, flash, pages_of, pop_form, render

# The top-level goods classes shown as quick filters on the goods page.
QUICK_CATEGORIES = [
    ("A02010105", "台式计算机"),
    ("A02010108", "便携式计算机"),
    ("A02010104", "服务器"),
    ("A02021000", "打印机"),
    ("A02020000", "办公设备"),
    ("A05010000", "家具"),
    ("A02091000", "电视设备"),
]


@get("/goods", opt=PUBLIC, include_in_schema=False)
async def goods_page(request: Request[Any, Any, Any], db: DB) -> Template:
    p = dict(request.query_params)
    errors = []

    def price(name: str) -> Any:
        raw = (p.get(name) or "").strip()
        if not raw:
            return None
        try:
            return money(raw)
        except MoneyError:
            errors.append(f"{'最低价' if name == 'price_min' else '最高价'}格式不正确")
            return None

    query = ListingQuery(
        q=(p.get("q") or "").strip()[:100],
        category=(p.get("category") or "").strip()[:16],
        brand=(p.get("brand") or "").strip()[:100],
        price_min=price("price_min"),
        price_max=price("price_max"),
        in_stock=p.get("in_stock") == "1",
        sort=str(p.get("sort")) if p.get("sort") in service.SORTS else "newest",
        page=_page_no(p.get("page")),
        per_page=24,
    )
    async with db.read() as s:
        total, rows = await service.browse(s, query)
        last = pages_of(total, query.per_page)
        if query.page > last and total:  # a page past the end shows the last one
            query = replace(query, page=last)
            total, rows = await service.browse(s, query)
        brands = await service.brands_in(s, query.category)
    qs = urlencode({k: v for k, v in p.items() if k != "page" and v})
    return render(
        request,
        "goods.html",
        rows=rows,
        total=total,
        query=query,
        brands=brands,
        qs=qs,
        pages=pages_of(total, query.per_page),
        quick=QUICK_CATEGORIES,
        errors=errors,
        category_label=categories.name_of(query.category),
    )


@get("/goods/{listing_id:uuid}", opt=PUBLIC, include_in_schema=False)
async def goods_detail(
    request: Request[Any, Any, Any], listing_id: FromPath[uuid.UUID], db: DB, settings: Config
) -> Template:
    async with db.read() as s:
        listing = await service.get_listing(s, listing_id)
        _, same_category = await service.browse(
            s, ListingQuery(category=listing.category_code, per_page=6, sort="sales")
        )
    others = [x for x in same_category if x.id != listing.id][:5]
    return render(
        request,
        "goods_detail.html",
        listing=listing,
        others=others,
        category_label=categories.name_of(listing.category_code),
    )


@get("/supplier/listings", opt=allow("supplier"), include_in_schema=False)
async def my_listings(
    request: Request[Any, Any, Any], db: DB, settings: Config, page: FromQuery[str] = "1"
) -> Template:
    who = _user(request)
    assert who and who.org_id
    pg = _page_no(page)
    async with db.read() as s:
        total, rows = await service.listings_of_supplier(s, who.org_id, pg, 30)
    return render(
        request,
        "supplier_listings.html",
        rows=rows,
        total=total,
        page=pg,
        pages=pages_of(total, 30),
        status_labels=LISTING_STATUS_LABELS,
        margin=settings.price_margin,
        form=pop_form(request),
    )


@post("/supplier/listings", opt=allow("supplier"), include_in_schema=False)
async def create_listing(
    request: Request[Any, Any, Any], db: DB, settings: Config, data: URLEncodedBody[dict[str, str]]
) -> Redirect:
    who = _user(request)
    assert who
    fields = (
        "name",
        "brand",
        "spec_model",
        "category_code",
        "unit",
        "price",
        "reference_price",
        "stock",
        "reference_source",
        "description",
    )
    draft = ListingDraft(**{f: (data.get(f) or "").strip() for f in fields})
    try:
        listing = await service.create_listing(
            db, who, draft, margin=settings.price_margin, ceiling=settings.decentralized_threshold
        )
    except DomainError as exc:
        flash(request, exc.detail, "error")
        request.session["form"] = {f: getattr(draft, f) for f in fields}  # keep what was typed
        return Redirect("/supplier/listings", status_code=303)
    flash(request, f"商品「{listing.name}」已上架")
    return Redirect("/supplier/listings", status_code=303)


@post("/supplier/listings/{listing_id:uuid}/status", opt=allow("supplier"), include_in_schema=False)
async def listing_status(
    request: Request[Any, Any, Any],
    listing_id: FromPath[uuid.UUID],
    db: DB,
    data: URLEncodedBody[dict[str, str]],
) -> Redirect:
    who = _user(request)
    assert who
    status = data.get("status", "")
    ok = "商品已下架" if status == "delisted" else "商品已重新上架"
    return await _act(
        request, lambda: service.set_listing_status(db, who, listing_id, status), ok, "/supplier/listings"
    )


ROUTES = [goods_page, goods_detail, my_listings, create_listing, listing_status]

"""Catalogue API: the 品目 tree and listings."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from catalog import categories, service
from catalog.service import ListingDraft, ListingQuery
from mall.api import PageNo, me_of
from mall.auth import PUBLIC, allow
from mall.deps import DB, Config
from mall.errors import InvalidInput
from mall.money import MoneyError, money
from mall.structs import ListingCreate, ListingOut, ListingPage


class CategoryOut(msgspec.Struct):
    code: str
    name: str
    parent_code: str | None
    level: int
    type: str
    version: str


@get("/api/categories", opt=PUBLIC, tags=["商品"], summary="品目目录（按上级编码逐级展开）")
async def list_categories(db: DB, parent: FromQuery[str | None] = None) -> list[CategoryOut]:
    async with db.read() as s:
        rows = await categories.children(s, parent)
    return [CategoryOut(c.code, c.name, c.parent_code, c.level, c.type, c.version) for c in rows]


def _price(raw: str | None, name: str) -> Decimal | None:
    if raw in (None, ""):
        return None
    try:
        return money(raw)
    except MoneyError:
        raise InvalidInput(f"参数 {name} 应为金额", code="invalid_parameter") from None


@get("/api/listings", opt=PUBLIC, tags=["商品"], summary="在售商品（简单筛选）")
async def browse(
    db: DB,
    page: PageNo = 1,
    per_page: Annotated[int, QueryParameter(ge=1, le=100)] = 24,
    q: Annotated[str, QueryParameter(max_length=100)] = "",
    category: Annotated[str, QueryParameter(max_length=16)] = "",
    brand: Annotated[str, QueryParameter(max_length=100)] = "",
    price_min: FromQuery[str | None] = None,
    price_max: FromQuery[str | None] = None,
    sort: Annotated[str, QueryParameter(pattern="^(newest|price_asc|price_desc|sales)$")] = "newest",
) -> ListingPage:
    query = ListingQuery(
        q=q.strip(),
        category=category.strip(),
        brand=brand.strip(),
        price_min=_price(price_min, "price_min"),
        price_max=_price(price_max, "price_max"),
        sort=sort,
        page=page,
        per_page=per_page,
    )
    async with db.read() as s:
        total, rows = await service.browse(s, query)
    return ListingPage(total, page, per_page, [ListingOut.of(x) for x in rows])


@get("/api/listings/{listing_id:uuid}", opt=PUBLIC, tags=["商品"])
async def listing_detail(listing_id: FromPath[uuid.UUID], db: DB) -> ListingOut:
    async with db.read() as s:
        return ListingOut.of(await service.get_listing(s, listing_id))


@post("/api/listings", opt=allow("supplier"), status_code=201, tags=["商品"], summary="供应商上架商品")
async def create_listing(
    request: Request[Any, Any, Any], data: JSONBody[ListingCreate], db: DB, settings: Config
) -> ListingOut:
    draft = ListingDraft(**msgspec.structs.asdict(data))
    listing = await service.create_listing(
        db, me_of(request), draft, margin=settings.price_margin, ceiling=settings.decentralized_threshold
    )
    async with db.read() as s:
        return ListingOut.of(await service.get_listing(s, listing.id, live_only=False))


@get("/api/supplier/listings", opt=allow("supplier"), tags=["商品"], summary="本供应商的商品")
async def my_listings(
    request: Request[Any, Any, Any],
    db: DB,
    page: PageNo = 1,
    per_page: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
) -> ListingPage:
    who = me_of(request)
    assert who.org_id
    async with db.read() as s:
        total, rows = await service.listings_of_supplier(s, who.org_id, page, per_page)
    return ListingPage(total, page, per_page, [ListingOut.of(x) for x in rows])


@post("/api/listings/{listing_id:uuid}/delist", opt=allow("supplier"), status_code=200, tags=["商品"])
async def delist(request: Request[Any, Any, Any], listing_id: FromPath[uuid.UUID], db: DB) -> ListingOut:
    await service.set_listing_status(db, me_of(request), listing_id, "delisted")
    async with db.read() as s:
        return ListingOut.of(await service.get_listing(s, listing_id, live_only=False))


@post("/api/listings/{listing_id:uuid}/relist", opt=allow("supplier"), status_code=200, tags=["商品"])
async def relist(request: Request[Any, Any, Any], listing_id: FromPath[uuid.UUID], db: DB) -> ListingOut:
    await service.set_listing_status(db, me_of(request), listing_id, "live")
    async with db.read() as s:
        return ListingOut.of(await service.get_listing(s, listing_id, live_only=False))


ROUTES = [list_categories, browse, listing_detail, create_listing, my_listings, delist, relist]

"""Listings: suppliers put goods up; buyers browse them. (Full search lives in search_index.)"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.categories import CATALOG_VERSION
from catalog.models import Category, Listing, ListingStatus
from mall import clock
from mall.auth import Principal
from mall.db import Database
from mall.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from mall.models import AuditEntry
from mall.money import MoneyError, money, round_money, whole_quantity


@dataclass(frozen=True)
class ListingDraft:
    name: str
    brand: str
    spec_model: str
    category_code: str
    unit: str
    price: str
    reference_price: str
    stock: str
    reference_source: str = ""
    description: str = ""


def _amount(raw: str, label: str, errors: list[str]) -> Decimal:
    try:
        value = money(raw)
    except MoneyError:
        errors.append(f"{label}格式不正确，应为不超过两位小数的金额，如 4599.00")
        return Decimal(0)
    if value <= 0:
        errors.append(f"{label}必须大于0")
    return value


def _escape_like(text: str) -> str:
    """% and _ typed by a user are characters to find, not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _key(text: str) -> str:
    return re.sub(r"[\s\-_/]+", "", text).upper()


async def create_listing(
    db: Database, who: Principal, draft: ListingDraft, *, margin: Decimal, ceiling: Decimal | None = None
) -> Listing:
    """A supplier lists goods. `ceiling`: a unit price at or above it could never be bought here (the
    decentralized threshold), so it is refused as a mistake."""
    name, brand, model, unit = (
        draft.name.strip(),
        draft.brand.strip(),
        draft.spec_model.strip(),
        draft.unit.strip(),
    )
    errors = []
    if not 2 <= len(name) <= 200:
        errors.append("商品名称应为2至200个字符")
    if not 1 <= len(brand) <= 100:
        errors.append("请填写品牌")
    if not 1 <= len(model) <= 200:
        errors.append("请填写规格型号")
    if not 1 <= len(unit) <= 20:
        errors.append("请填写计量单位")
    price = _amount(draft.price, "售价", errors)
    reference = _amount(draft.reference_price, "参考市场价", errors)
    if ceiling is not None and price >= ceiling:
        errors.append(f"售价应低于分散采购限额标准 {ceiling:,.0f} 元")
    try:
        stock = whole_quantity(draft.stock) if str(draft.stock).strip() != "0" else Decimal(0)
    except MoneyError:
        errors.append("库存应为0或正整数")
        stock = Decimal(0)
    if not draft.category_code.strip():
        errors.append("请填写品目编码")
    if errors:
        raise InvalidInput("；".join(errors), code="listing_invalid")
    limit = round_money(reference * (1 + margin))
    if price > limit:
        raise RuleViolation(
            f"售价 {price:,.2f} 元高于参考市场价 {reference:,.2f} 元上浮 {margin * 100:.0f}% 的上限"
            f"（最高 {limit:,.2f} 元），不能上架",
            code="price_above_reference",
        )
    assert who.org_id is not None
    now = clock.now()
    async with db.write() as tx:
        category = await tx.session.get(Category, (CATALOG_VERSION, draft.category_code.strip()))
        if category is None:
            raise InvalidInput(
                f"品目编码 {draft.category_code} 不在{CATALOG_VERSION}版品目目录中", code="unknown_category"
            )
        if category.type != "goods":
            raise RuleViolation("网上超市只能上架货物类品目", code="category_not_goods")
        duplicate = await tx.session.scalar(
            select(Listing.id).where(
                Listing.supplier_org_id == who.org_id,
                Listing.brand_key == _key(brand),
                Listing.model_key == _key(model),
            )
        )
        if duplicate:
            raise Conflict("已存在相同品牌和型号的商品，不能重复上架", code="duplicate_listing")
        listing = Listing(
            supplier_org_id=who.org_id,
            name=name,
            brand=brand,
            spec_model=model,
            brand_key=_key(brand),
            model_key=_key(model),
            category_code=category.code,
            category_version=category.version,
            unit=unit,
            price=price,
            reference_price=reference,
            reference_source=draft.reference_source.strip()[:300],
            stock=stock,
            description=draft.description.strip()[:2000],
            status=ListingStatus.LIVE,
            created_at=now,
            updated_at=now,
        )
        tx.session.add(listing)
        await tx.session.flush()
        tx.session.add(
            AuditEntry(at=now, actor_user_id=who.user_id, action="listing_created", target=str(listing.id))
        )
    return listing


async def get_listing(session: AsyncSession, listing_id: uuid.UUID, *, live_only: bool = True) -> Listing:
    listing = await session.get(Listing, listing_id)
    if listing is None or (live_only and listing.status != ListingStatus.LIVE):
        raise NotFound("商品不存在或已下架", code="listing_not_found")
    return listing


async def set_listing_status(db: Database, who: Principal, listing_id: uuid.UUID, status: str) -> Listing:
    if status not in (ListingStatus.LIVE, ListingStatus.DELISTED):
        raise InvalidInput("不支持的状态", code="invalid_status")
    async with db.write() as tx:
        listing = await tx.session.get(Listing, listing_id)
        if listing is None or listing.supplier_org_id != who.org_id:
            raise NotFound("商品不存在", code="listing_not_found")
        if listing.status == ListingStatus.FROZEN:
            raise Forbidden("商品已被冻结，不能变更", code="listing_frozen")
        listing.status = status
        listing.updated_at = clock.now()
        tx.session.add(
            AuditEntry(
                at=clock.now(), actor_user_id=who.user_id, action=f"listing_{status}", target=str(listing_id)
            )
        )
    return listing


@dataclass(frozen=True)
class ListingQuery:
    q: str = ""
    category: str = ""
    brand: str = ""
    supplier_id: uuid.UUID | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    in_stock: bool = False
    sort: str = "newest"
    page: int = 1
    per_page: int = 24


SORTS: dict[str, Any] = {
    "newest": (Listing.created_at.desc(), Listing.id),
    "price_asc": (Listing.price.asc(), Listing.id),
    "price_desc": (Listing.price.desc(), Listing.id),
    "sales": (Listing.sales_count.desc(), Listing.id),
}


async def browse(session: AsyncSession, query: ListingQuery) -> tuple[int, list[Listing]]:
    """Live listings matching simple filters (substring match; the search engine does better)."""
    stmt = select(Listing).where(Listing.status == ListingStatus.LIVE)
    if query.q:
        for word in query.q.split()[:5]:
            like = f"%{_escape_like(word)}%"
            stmt = stmt.where(
                or_(
                    Listing.name.like(like, escape="\\"),
                    Listing.brand.like(like, escape="\\"),
                    Listing.spec_model.like(like, escape="\\"),
                )
            )
    if query.category:
        stmt = stmt.where(Listing.category_code.like(f"{_escape_like(query.category)}%", escape="\\"))
    if query.brand:
        stmt = stmt.where(Listing.brand == query.brand)
    if query.supplier_id:
        stmt = stmt.where(Listing.supplier_org_id == query.supplier_id)
    if query.price_min is not None:
        stmt = stmt.where(Listing.price >= query.price_min)
    if query.price_max is not None:
        stmt = stmt.where(Listing.price <= query.price_max)
    if query.in_stock:
        stmt = stmt.where(Listing.stock > Decimal(0))
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    order = SORTS.get(query.sort, SORTS["newest"])
    rows = await session.execute(
        stmt.order_by(*order).offset((query.page - 1) * query.per_page).limit(query.per_page)
    )
    return total, list(rows.scalars())


async def listings_of_supplier(
    session: AsyncSession, org_id: uuid.UUID, page: int, per_page: int
) -> tuple[int, list[Listing]]:
    stmt = select(Listing).where(Listing.supplier_org_id == org_id)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await session.execute(
        stmt.order_by(Listing.created_at.desc(), Listing.id).offset((page - 1) * per_page).limit(per_page)
    )
    return total, list(rows.scalars())


async def brands_in(session: AsyncSession, category: str = "") -> list[str]:
    stmt = select(Listing.brand).where(Listing.status == ListingStatus.LIVE)
    if category:
        stmt = stmt.where(Listing.category_code.like(f"{category}%"))
    rows = await session.execute(stmt.group_by(Listing.brand).order_by(func.count().desc()).limit(30))
    return [r[0] for r in rows]

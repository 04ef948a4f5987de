"""Reading the catalogue: a listing, its offers and price history, the simple browse, and the lists the
suppliers and the center work through. (Full-text search is `catalog.search`; changes are
`catalog.service` and `catalog.prices`.)"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import Listing, ListingStatus, PriceChange
from mall.core.errors import InvalidInput, NotFound
from mall.sanctions import standing

T = TypeVar("T")


async def paged(
    session: AsyncSession, stmt: Select[T], order: tuple[Any, ...], page: int, per_page: int
) -> tuple[int, list[T]]:
    """One page of `stmt` in `order`, with the number of rows of all pages."""
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await session.execute(stmt.order_by(*order).offset((page - 1) * per_page).limit(per_page))
    return total, list(rows.scalars().unique())


async def get_listing(session: AsyncSession, listing_id: uuid.UUID, *, live_only: bool = True) -> Listing:
    listing = await session.get(Listing, listing_id)
    if listing is None or (live_only and listing.status != ListingStatus.LIVE):
        raise NotFound("商品不存在或已下架", code="listing_not_found")
    return listing


async def price_history(session: AsyncSession, listing_id: uuid.UUID, limit: int = 50) -> list[PriceChange]:
    rows = await session.execute(
        select(PriceChange)
        .where(PriceChange.listing_id == listing_id)
        .order_by(PriceChange.at.desc(), PriceChange.id)
        .limit(limit)
    )
    return list(rows.scalars())


async def same_model_offers(session: AsyncSession, listing: Listing, limit: int = 20) -> list[Listing]:
    """比价: the same brand and model offered live by every supplier (this one included), cheapest first."""
    rows = await session.execute(
        select(Listing)
        .where(
            Listing.status == ListingStatus.LIVE,
            standing.not_barred(Listing.supplier_org_id),
            Listing.brand_key == listing.brand_key,
            Listing.model_key == listing.model_key,
        )
        .order_by(Listing.price, Listing.id)
        .limit(limit)
    )
    return list(rows.scalars())


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


SORTS: dict[str, tuple[Any, ...]] = {
    "newest": (Listing.created_at.desc(), Listing.id),
    "price_asc": (Listing.price.asc(), Listing.id),
    "price_desc": (Listing.price.desc(), Listing.id),
    "sales": (Listing.sales_count.desc(), Listing.id),
}
LATEST_FIRST = (Listing.updated_at.desc(), Listing.id)

BROWSE_WORDS_MAX = 10


def _escape_like(text: str) -> str:
    """% and _ typed by a user are characters to find, not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def browse(session: AsyncSession, query: ListingQuery) -> tuple[int, list[Listing]]:
    """Live listings matching simple filters (substring match; the search engine does better).
    Every word must match; more words than BROWSE_WORDS_MAX are refused, never dropped."""
    stmt = select(Listing).where(
        Listing.status == ListingStatus.LIVE, standing.not_barred(Listing.supplier_org_id)
    )
    words = list(dict.fromkeys(query.q.split()))
    if len(words) > BROWSE_WORDS_MAX:
        raise InvalidInput(
            f"搜索词最多 {BROWSE_WORDS_MAX} 个（以空格分隔），现为 {len(words)} 个",
            code="invalid_parameter",
            parameter="q",
        )
    for word in words:
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
    return await paged(session, stmt, SORTS.get(query.sort, SORTS["newest"]), query.page, query.per_page)


async def listings_of_supplier(
    session: AsyncSession, org_id: uuid.UUID, page: int, per_page: int, *, status: str = ""
) -> tuple[int, list[Listing]]:
    stmt = select(Listing).where(Listing.supplier_org_id == org_id)
    if status:
        stmt = stmt.where(Listing.status == status)
    return await paged(session, stmt, LATEST_FIRST, page, per_page)


async def listings_by_status(
    session: AsyncSession, status: ListingStatus, page: int, per_page: int
) -> tuple[int, list[Listing]]:
    return await paged(session, select(Listing).where(Listing.status == status), LATEST_FIRST, page, per_page)


async def review_queue(session: AsyncSession, page: int, per_page: int) -> tuple[int, list[Listing]]:
    """Submitted listings, oldest first (the center works through them in order)."""
    stmt = select(Listing).where(Listing.status == ListingStatus.SUBMITTED)
    return await paged(session, stmt, (Listing.submitted_at, Listing.id), page, per_page)


async def status_counts(session: AsyncSession, org_id: uuid.UUID | None) -> dict[str, int]:
    """Listings per status (of one supplier, or of the whole catalogue)."""
    stmt = select(Listing.status, func.count()).group_by(Listing.status)
    if org_id is not None:
        stmt = stmt.where(Listing.supplier_org_id == org_id)
    return {status: int(n) for status, n in (await session.execute(stmt)).all()}

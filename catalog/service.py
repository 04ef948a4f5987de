"""Listings: suppliers put goods up, the center reviews them; buyers browse them. (Price changes after
review are `catalog.prices`; full search lives in search_index.)"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.agreement_queries import check_ceiling
from catalog.categories import CATALOG_VERSION
from catalog.goods import brand_key, model_key
from catalog.models import (
    LISTING_STATUS_LABELS,
    Category,
    Listing,
    ListingStatus,
    PriceChange,
)
from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, Tx
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from mall.core.fields import REASON_MAX, text
from mall.core.models import AuditEntry
from mall.core.money import MoneyError, money, round_money, whole_quantity
from search_index import sync as search_sync

PRICE_NOTE_MAX = fields.PRICE_NOTE_MAX  # listing_price_changes.note
REFERENCE_SOURCE_MAX = fields.SOURCE_MAX  # listings.reference_source


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


def parse_amount(raw: str, label: str, errors: list[str]) -> Decimal:
    """An amount as typed; what is wrong with it goes to `errors` (the caller reports them together)."""
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


@dataclass(frozen=True)
class Checked:
    """A draft that passed the form checks (not yet the price rule or the category)."""

    name: str
    brand: str
    spec_model: str
    category_code: str
    unit: str
    price: Decimal
    reference_price: Decimal
    stock: Decimal
    reference_source: str
    description: str


def check_draft(draft: ListingDraft, *, ceiling: Decimal | None = None) -> Checked:
    """The form rules. A text with a refused character or past its limit is refused first, naming
    the field; then every other problem is reported in one Chinese message (listing_invalid)."""
    name = text(draft.name, "商品名称", fields.NAME_MAX, field="name")
    brand = text(draft.brand, "品牌", fields.SHORT_MAX, field="brand")
    model = text(draft.spec_model, "规格型号", fields.MODEL_MAX, field="spec_model")
    category_code = text(draft.category_code, "品目编码", fields.CATEGORY_CODE_MAX, field="category_code")
    unit = text(draft.unit, "计量单位", fields.UNIT_MAX, field="unit")
    source = text(draft.reference_source, "参考价来源", fields.SOURCE_MAX, field="reference_source")
    description = text(
        draft.description, "商品说明", fields.DESCRIPTION_MAX, multiline=True, field="description"
    )
    errors: list[str] = []
    if len(name) < 2:
        errors.append(f"商品名称应为2至{fields.NAME_MAX}个字符")
    if not brand:
        errors.append("请填写品牌")
    if not model:
        errors.append("请填写规格型号")
    if not unit:
        errors.append("请填写计量单位")
    price = parse_amount(draft.price, "售价", errors)
    reference = parse_amount(draft.reference_price, "参考市场价", errors)
    if ceiling is not None and price >= ceiling:
        errors.append(f"售价应低于分散采购限额标准 {ceiling:,.0f} 元")
    try:
        stock = whole_quantity(draft.stock) if str(draft.stock).strip() != "0" else Decimal(0)
    except MoneyError:
        errors.append("库存应为0或正整数")
        stock = Decimal(0)
    if not category_code:
        errors.append("请填写品目编码")
    if errors:
        raise InvalidInput("；".join(errors), code="listing_invalid")
    return Checked(
        name,
        brand,
        model,
        category_code.upper(),
        unit,
        price,
        reference,
        stock,
        source,
        description,
    )


async def check_agreement_ceiling(session: AsyncSession, brand: str, spec_model: str, price: Decimal) -> None:
    """The other half of the price rule: never above the agreement price of the same goods."""
    await check_ceiling(session, brand, spec_model, price)


def check_price(price: Decimal, reference: Decimal, margin: Decimal) -> None:
    """The price rule: at most `margin` above the supplier's declared reference price (and, checked
    in the transaction by `check_agreement_ceiling`, never above an agreement price of the same goods)."""
    limit = round_money(reference * (1 + margin))
    if price > limit:
        raise RuleViolation(
            f"售价 {price:,.2f} 元高于参考市场价 {reference:,.2f} 元上浮 {margin * 100:.0f}% 的上限"
            f"（最高 {limit:,.2f} 元），不能上架",
            code="price_above_reference",
        )


async def category_for_listing(session: AsyncSession, code: str) -> Category:
    category = await session.get(Category, (CATALOG_VERSION, code))
    if category is None:
        raise InvalidInput(f"品目编码 {code} 不在{CATALOG_VERSION}版品目目录中", code="unknown_category")
    if category.type != "goods":
        raise RuleViolation("网上超市只能上架货物类品目", code="category_not_goods")
    return category


def audit(tx: Tx, who: Principal, action: str, listing_id: uuid.UUID, detail: str = "") -> None:
    """One line of a listing's audit trail, in the caller's transaction."""
    tx.session.add(
        AuditEntry(
            at=clock.now(), actor_user_id=who.user_id, action=action, target=str(listing_id), detail=detail
        )
    )


async def add_listing(
    tx: Tx, who: Principal, checked: Checked, category: Category, *, submit: bool = True
) -> Listing:
    """Insert a checked listing in the caller's transaction (used by the form and by imports)."""
    assert who.org_id is not None
    now = clock.now()
    duplicate = await tx.session.scalar(
        select(Listing.id).where(
            Listing.supplier_org_id == who.org_id,
            Listing.brand_key == brand_key(checked.brand),
            Listing.model_key == model_key(checked.spec_model),
        )
    )
    if duplicate:
        raise Conflict("已存在相同品牌和型号的商品，不能重复上架", code="duplicate_listing")
    listing = Listing(
        supplier_org_id=who.org_id,
        name=checked.name,
        brand=checked.brand,
        spec_model=checked.spec_model,
        brand_key=brand_key(checked.brand),
        model_key=model_key(checked.spec_model),
        category_code=category.code,
        category_version=category.version,
        unit=checked.unit,
        price=checked.price,
        reference_price=checked.reference_price,
        reference_source=checked.reference_source,
        stock=checked.stock,
        description=checked.description,
        status=ListingStatus.SUBMITTED if submit else ListingStatus.DRAFT,
        submitted_at=now if submit else None,
        created_at=now,
        updated_at=now,
    )
    tx.session.add(listing)
    await tx.session.flush()
    tx.session.add(
        PriceChange(
            listing_id=listing.id,
            at=now,
            price=checked.price,
            reference_price=checked.reference_price,
            previous_price=None,
            by_user_id=who.user_id,
            note="首次报价",
        )
    )
    audit(tx, who, "listing_created", listing.id, listing.status)
    return listing


async def create_listing(
    db: Database,
    who: Principal,
    draft: ListingDraft,
    *,
    margin: Decimal,
    ceiling: Decimal | None = None,
    submit: bool = True,
) -> Listing:
    """A supplier lists goods: saved as a draft, or submitted for the center's review. `ceiling`: a unit
    price at or above it could never be bought here (the decentralized threshold): refused as a mistake.
    A price above the reference rule is refused before review (blocked automatically)."""
    checked = check_draft(draft, ceiling=ceiling)
    check_price(checked.price, checked.reference_price, margin)
    async with db.write() as tx:
        category = await category_for_listing(tx.session, checked.category_code)
        await check_agreement_ceiling(tx.session, checked.brand, checked.spec_model, checked.price)
        return await add_listing(tx, who, checked, category, submit=submit)


async def own_listing(tx: Tx, who: Principal, listing_id: uuid.UUID) -> Listing:
    """The caller's own listing, locked for the change (404 for anyone else's)."""
    listing = await tx.session.get(Listing, listing_id, with_for_update={"of": Listing})
    if listing is None or listing.supplier_org_id != who.org_id:
        raise NotFound("商品不存在", code="listing_not_found")
    return listing


async def update_listing(
    db: Database,
    who: Principal,
    listing_id: uuid.UUID,
    draft: ListingDraft,
    *,
    margin: Decimal,
    ceiling: Decimal | None = None,
    submit: bool = True,
) -> Listing:
    """Edit a draft or a rejected listing (and submit it again for review)."""
    checked = check_draft(draft, ceiling=ceiling)
    check_price(checked.price, checked.reference_price, margin)
    async with db.write() as tx:
        listing = await own_listing(tx, who, listing_id)
        if listing.status not in (ListingStatus.DRAFT, ListingStatus.REJECTED):
            raise Conflict("只有草稿或未通过审核的商品可以修改后重新提交", code="listing_not_editable")
        category = await category_for_listing(tx.session, checked.category_code)
        await check_agreement_ceiling(tx.session, checked.brand, checked.spec_model, checked.price)
        bkey, mkey = brand_key(checked.brand), model_key(checked.spec_model)
        duplicate = await tx.session.scalar(
            select(Listing.id).where(
                Listing.supplier_org_id == who.org_id,
                Listing.brand_key == bkey,
                Listing.model_key == mkey,
                Listing.id != listing.id,
            )
        )
        if duplicate:
            raise Conflict("已存在相同品牌和型号的商品，不能重复上架", code="duplicate_listing")
        now = clock.now()
        if checked.price != listing.price or checked.reference_price != listing.reference_price:
            tx.session.add(
                PriceChange(
                    listing_id=listing.id,
                    at=now,
                    price=checked.price,
                    reference_price=checked.reference_price,
                    previous_price=listing.price,
                    by_user_id=who.user_id,
                    note="修改后重新提交",
                )
            )
        for field_name in ("name", "brand", "spec_model", "unit", "price", "reference_price", "stock"):
            setattr(listing, field_name, getattr(checked, field_name))
        listing.reference_source, listing.description = checked.reference_source, checked.description
        listing.brand_key, listing.model_key = bkey, mkey
        listing.category_code, listing.category_version = category.code, category.version
        if submit:
            listing.status, listing.submitted_at = ListingStatus.SUBMITTED, now
            listing.status_reason = ""
        listing.updated_at = now
        audit(tx, who, "listing_edited", listing.id, listing.status)
    return listing


async def submit_listing(db: Database, who: Principal, listing_id: uuid.UUID, *, margin: Decimal) -> Listing:
    async with db.write() as tx:
        listing = await own_listing(tx, who, listing_id)
        if listing.status not in (ListingStatus.DRAFT, ListingStatus.REJECTED):
            raise Conflict("该商品当前不能提交审核", code="listing_not_submittable")
        check_price(listing.price, listing.reference_price, margin)
        await check_agreement_ceiling(tx.session, listing.brand, listing.spec_model, listing.price)
        listing.status, listing.submitted_at, listing.status_reason = ListingStatus.SUBMITTED, clock.now(), ""
        listing.updated_at = clock.now()
        audit(tx, who, "listing_submitted", listing.id)
    return listing


async def review_listing(
    db: Database,
    who: Principal,
    listing_id: uuid.UUID,
    *,
    approve: bool,
    reason: str,
    margin: Decimal,
    seen_price: str | None = None,
    seen_reference: str | None = None,
) -> Listing:
    """The procurement center approves a submitted listing (it goes live) or rejects it with a reason.
    Approval re-checks the price rule: a listing that breaks it can never go live. `seen_price` and
    `seen_reference`, when given, are what the reviewer looked at: a price the supplier changed
    meanwhile is not approved unseen (409 `listing_changed`)."""
    # Checked whether approving or not: the audit log keeps it either way.
    reason = text(reason, "驳回原因", REASON_MAX, multiline=True, field="reason")
    if not approve and len(reason) < 2:
        raise InvalidInput(
            f"驳回时请填写原因（2至{REASON_MAX}个字符）", code="reason_required", field="reason"
        )
    errors: list[str] = []
    seen = [
        None if raw in (None, "") else parse_amount(str(raw), label, errors)
        for raw, label in ((seen_price, "审核时的售价"), (seen_reference, "审核时的参考价"))
    ]
    if errors:
        raise InvalidInput("；".join(errors), code="price_invalid")
    async with db.write() as tx:
        listing = await tx.session.get(Listing, listing_id, with_for_update={"of": Listing})
        if listing is None:
            raise NotFound("商品不存在", code="listing_not_found")
        if listing.status != ListingStatus.SUBMITTED:
            raise Conflict("该商品不在待审核状态", code="listing_not_submitted")
        if approve and (
            (seen[0] is not None and seen[0] != listing.price)
            or (seen[1] is not None and seen[1] != listing.reference_price)
        ):
            raise Conflict(
                f"供应商已修改价格（现售价 {listing.price:,.2f} 元，参考价 {listing.reference_price:,.2f} 元），"
                "请刷新后重新审核",
                code="listing_changed",
            )
        now = clock.now()
        if approve:
            check_price(listing.price, listing.reference_price, margin)
            await check_agreement_ceiling(tx.session, listing.brand, listing.spec_model, listing.price)
            listing.status, listing.status_reason = ListingStatus.LIVE, ""
            search_sync.stage(tx, [listing.id])
        else:
            listing.status, listing.status_reason = ListingStatus.REJECTED, reason
        listing.status_by, listing.reviewed_at, listing.reviewed_by = who.role, now, who.user_id
        listing.updated_at = now
        audit(tx, who, "listing_approved" if approve else "listing_rejected", listing.id, reason)
    return listing


async def set_listing_status(
    db: Database, who: Principal, listing_id: uuid.UUID, status: str, *, margin: Decimal | None = None
) -> Listing:
    """The supplier takes a live listing off sale, or puts back one it took off itself."""
    if status not in (ListingStatus.LIVE, ListingStatus.DELISTED):
        raise InvalidInput("不支持的状态", code="invalid_status")
    async with db.write() as tx:
        listing = await own_listing(tx, who, listing_id)
        if listing.status == ListingStatus.FROZEN:
            raise Forbidden("商品已被冻结，不能变更", code="listing_frozen")
        if status == ListingStatus.DELISTED:
            if listing.status != ListingStatus.LIVE:
                raise Conflict("只有在售商品可以下架", code="listing_not_live")
        else:
            if listing.status != ListingStatus.DELISTED:
                raise Conflict("只有已下架的商品可以重新上架", code="listing_not_delisted")
            if listing.status_by not in ("supplier", ""):
                raise Forbidden("该商品由监管方下架，不能自行重新上架", code="listing_delisted_by_authority")
            if margin is not None:
                check_price(listing.price, listing.reference_price, margin)
                await check_agreement_ceiling(tx.session, listing.brand, listing.spec_model, listing.price)
        listing.status = status
        listing.status_by = "supplier" if status == ListingStatus.DELISTED else ""
        listing.status_reason = ""
        listing.updated_at = clock.now()
        audit(tx, who, f"listing_{status}", listing.id)
        search_sync.stage(tx, [listing.id])
    return listing


MODERATION = {
    # action: (from statuses, label)
    "freeze": ((ListingStatus.LIVE, ListingStatus.SUBMITTED), "冻结"),
    "unfreeze": ((ListingStatus.FROZEN,), "解冻"),
    "delist": ((ListingStatus.LIVE,), "下架"),
    "relist": ((ListingStatus.DELISTED,), "恢复上架"),
}


async def moderate(
    db: Database, who: Principal, listing_id: uuid.UUID, action: str, reason: str, *, margin: Decimal
) -> Listing:
    """The center or the regulator freezes / unfreezes, delists / relists a listing, with a reason.
    A frozen listing returns to what it was (on sale, or waiting for review — never live without
    an approval). What the regulator did, only the regulator undoes."""
    if action not in MODERATION:
        raise InvalidInput("不支持的操作", code="invalid_action", field="action")
    # Checked for every action: the audit log keeps it.
    reason = text(reason, "原因", REASON_MAX, multiline=True, field="reason")
    if action in ("freeze", "delist") and len(reason) < 2:
        raise InvalidInput(f"请填写原因（2至{REASON_MAX}个字符）", code="reason_required", field="reason")
    sources, label = MODERATION[action]
    async with db.write() as tx:
        listing = await tx.session.get(Listing, listing_id, with_for_update={"of": Listing})
        if listing is None:
            raise NotFound("商品不存在", code="listing_not_found")
        if listing.status not in sources:
            raise Conflict(
                f"商品当前为「{LISTING_STATUS_LABELS.get(listing.status, listing.status)}」，不能{label}",
                code="listing_wrong_state",
            )
        if action in ("unfreeze", "relist"):
            if listing.status_by == "regulator" and who.role != "regulator":
                raise Forbidden("该商品由财政部门处理，只能由财政部门撤销", code="regulator_decision")
            if action == "relist" and listing.status_by == "supplier":
                raise Forbidden("该商品由供应商自行下架，应由供应商重新上架", code="delisted_by_supplier")
        if action == "freeze":
            listing.frozen_from, listing.status = listing.status, ListingStatus.FROZEN
        elif action == "delist":
            listing.status = ListingStatus.DELISTED
        else:
            target = listing.frozen_from if action == "unfreeze" else ListingStatus.LIVE
            target = (
                target if target in (ListingStatus.LIVE, ListingStatus.SUBMITTED) else ListingStatus.SUBMITTED
            )
            if target == ListingStatus.LIVE:
                check_price(listing.price, listing.reference_price, margin)
                await check_agreement_ceiling(tx.session, listing.brand, listing.spec_model, listing.price)
            listing.status, listing.frozen_from = target, ""
        listing.status_reason = reason if action in ("freeze", "delist") else ""
        listing.status_by = who.role if action in ("freeze", "delist") else ""
        listing.updated_at = clock.now()
        audit(tx, who, f"listing_{action}", listing.id, reason)
        search_sync.stage(tx, [listing.id])
    return listing


async def review_queue(session: AsyncSession, page: int, per_page: int) -> tuple[int, list[Listing]]:
    """Submitted listings, oldest first (the center works through them in order)."""
    stmt = select(Listing).where(Listing.status == ListingStatus.SUBMITTED)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await session.execute(
        stmt.order_by(Listing.submitted_at, Listing.id).offset((page - 1) * per_page).limit(per_page)
    )
    return total, list(rows.scalars())


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
            Listing.brand_key == listing.brand_key,
            Listing.model_key == listing.model_key,
        )
        .order_by(Listing.price, Listing.id)
        .limit(limit)
    )
    return list(rows.scalars())


async def get_listing(session: AsyncSession, listing_id: uuid.UUID, *, live_only: bool = True) -> Listing:
    listing = await session.get(Listing, listing_id)
    if listing is None or (live_only and listing.status != ListingStatus.LIVE):
        raise NotFound("商品不存在或已下架", code="listing_not_found")
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


BROWSE_WORDS_MAX = 10


async def browse(session: AsyncSession, query: ListingQuery) -> tuple[int, list[Listing]]:
    """Live listings matching simple filters (substring match; the search engine does better).
    Every word must match; more words than BROWSE_WORDS_MAX are refused, never dropped."""
    stmt = select(Listing).where(Listing.status == ListingStatus.LIVE)
    words = list(dict.fromkeys(query.q.split()))
    if len(words) > BROWSE_WORDS_MAX:
        raise InvalidInput(
            f"搜索词最多 {BROWSE_WORDS_MAX} 个（以空格分隔），现为 {len(words)} 个",
            code="invalid_parameter",
            parameter="q",
        )
    if words:
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
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    order = SORTS.get(query.sort, SORTS["newest"])
    rows = await session.execute(
        stmt.order_by(*order).offset((query.page - 1) * query.per_page).limit(query.per_page)
    )
    return total, list(rows.scalars())


async def listings_of_supplier(
    session: AsyncSession, org_id: uuid.UUID, page: int, per_page: int, *, status: str = ""
) -> tuple[int, list[Listing]]:
    stmt = select(Listing).where(Listing.supplier_org_id == org_id)
    if status:
        stmt = stmt.where(Listing.status == status)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await session.execute(
        stmt.order_by(Listing.updated_at.desc(), Listing.id).offset((page - 1) * per_page).limit(per_page)
    )
    return total, list(rows.scalars())


async def listings_by_status(
    session: AsyncSession, status: str, page: int, per_page: int
) -> tuple[int, list[Listing]]:
    stmt = select(Listing).where(Listing.status == status)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await session.execute(
        stmt.order_by(Listing.updated_at.desc(), Listing.id).offset((page - 1) * per_page).limit(per_page)
    )
    return total, list(rows.scalars())


async def status_counts(session: AsyncSession, org_id: uuid.UUID | None) -> dict[str, int]:
    """Listings per status (of one supplier, or of the whole catalogue)."""
    stmt = select(Listing.status, func.count()).group_by(Listing.status)
    if org_id is not None:
        stmt = stmt.where(Listing.supplier_org_id == org_id)
    return {status: int(n) for status, n in (await session.execute(stmt)).all()}


async def brands_in(session: AsyncSession, category: str = "") -> list[str]:
    stmt = select(Listing.brand).where(Listing.status == ListingStatus.LIVE)
    if category:
        stmt = stmt.where(Listing.category_code.like(f"{category}%"))
    rows = await session.execute(stmt.group_by(Listing.brand).order_by(func.count().desc()).limit(30))
    return [r[0] for r in rows]

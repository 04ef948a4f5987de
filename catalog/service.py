"""Listings through their lives: a supplier drafts, submits and edits them and takes them off sale and
back; the procurement center approves or rejects them; the center or the regulator freezes or delists
them. The price rule is checked at every step that can put a listing on sale. (Reading the catalogue
is `catalog.browse`; price changes after review are `catalog.prices`.)"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog import media, policy
from catalog.agreement_queries import check_ceiling
from catalog.categories import CATALOG_VERSION
from catalog.goods import brand_key, model_key
from catalog.models import LISTING_STATUS_LABELS, Category, Listing, ListingStatus, PriceChange
from catalog.structs import EcommerceIn, ListingCreate, PolicyIn, ReviewIn
from catalog.structs import ListingDraft as ListingDraft  # the shape callers build a listing in
from mall.core import audit as audit_log
from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, Tx, retried, retried_if_rolled_back
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from mall.core.fields import REASON_MAX, text
from mall.core.money import MoneyError, money, round_money, typed_negative, whole_quantity
from mall.core.settings import Settings
from mall.notify import notices
from search_index import sync as search_sync


def parse_amount(raw: str, label: str, errors: list[str]) -> Decimal:
    """An amount as typed; what is wrong with it goes to `errors` (the caller reports them together)."""
    try:
        value = money(raw)
    except MoneyError:
        if typed_negative(raw):
            errors.append(f"{label}须大于 0")
        else:
            errors.append(f"{label}格式不正确，应为不超过两位小数的金额，如 4599.00")
        return Decimal(0)
    if value <= 0:
        errors.append(f"{label}须大于 0")
    return value


@dataclass(frozen=True)
class Ecommerce:
    """A declared e-commerce price (电商比价): all None/"" when none is declared."""

    price: Decimal | None = None
    url: str = ""
    captured_on: date | None = None


def check_ecommerce(raw_price: str, raw_url: str, raw_day: str, errors: list[str]) -> Ecommerce:
    """The e-commerce fields as typed: a price above 0, an http(s) address of at most URL_MAX
    characters, and the capture day (YYYY-MM-DD, not in the future), required with the price.
    Texts with refused characters are refused at once (text_invalid); other problems go to `errors`."""
    url = text(raw_url, "电商页面网址", fields.URL_MAX, field="ecommerce_url")
    day_text = text(raw_day, "电商价采集日期", fields.DATE_MAX, field="ecommerce_captured_on")
    price_text = text(raw_price, "电商价格", fields.AMOUNT_MAX, field="ecommerce_price")
    price = parse_amount(price_text, "电商价格", errors) if price_text else None
    if url:
        parsed = urlsplit(url)
        if parsed.scheme.lower() not in ("http", "https") or not parsed.netloc or " " in url:
            errors.append("电商页面网址应以 http:// 或 https:// 开头")
    captured: date | None = None
    if day_text:
        try:
            captured = date.fromisoformat(day_text)
        except ValueError:
            errors.append("电商价采集日期格式应为 YYYY-MM-DD")
        else:
            if captured > clock.local_date(clock.now()):
                errors.append("电商价采集日期不能晚于今天")
    if price_text and not day_text:
        errors.append("填写电商价格时请填写采集日期")
    if not price_text and (url or day_text):
        errors.append("请填写电商价格（或清空电商网址与采集日期）")
    return Ecommerce(price, url, captured)


@dataclass(frozen=True)
class Checked:
    """A draft that passed the form checks (not yet the price rule or the category): its texts
    trimmed and checked, its amounts and stock parsed."""

    draft: ListingDraft
    price: Decimal
    reference_price: Decimal
    stock: Decimal
    ecommerce: Ecommerce = Ecommerce()


def check_draft(draft: ListingDraft, *, ceiling: Decimal | None = None) -> Checked:
    """The form rules, for a draft from anywhere (the API, a page, a spreadsheet row). A text with a
    refused character or past its limit is refused first, naming the field; then every other problem
    is reported in one Chinese message (listing_invalid)."""
    code = text(draft.category_code, "品目编码", fields.CATEGORY_CODE_MAX, field="category_code")
    texts = ListingDraft(
        name=text(draft.name, "商品名称", fields.NAME_MAX, field="name"),
        brand=text(draft.brand, "品牌", fields.SHORT_MAX, field="brand"),
        spec_model=text(draft.spec_model, "规格型号", fields.MODEL_MAX, field="spec_model"),
        category_code=code.upper(),
        unit=text(draft.unit, "计量单位", fields.UNIT_MAX, field="unit"),
        price=draft.price,
        reference_price=draft.reference_price,
        stock=draft.stock,
        reference_source=text(
            draft.reference_source, "参考价来源", fields.SOURCE_MAX, field="reference_source"
        ),
        description=text(
            draft.description, "商品说明", fields.DESCRIPTION_MAX, multiline=True, field="description"
        ),
        params=media.params_text(media.parse_params(draft.params)),
        ecommerce_price=draft.ecommerce_price,
        ecommerce_url=draft.ecommerce_url,
        ecommerce_captured_on=draft.ecommerce_captured_on,
    )
    errors: list[str] = []
    ecommerce = check_ecommerce(
        draft.ecommerce_price, draft.ecommerce_url, draft.ecommerce_captured_on, errors
    )
    if len(texts.name) < 2:
        errors.append(f"商品名称应为2至{fields.NAME_MAX}个字符")
    if not texts.brand:
        errors.append("请填写品牌")
    if not texts.spec_model:
        errors.append("请填写规格型号")
    if not texts.unit:
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
    if not code:
        errors.append("请填写品目编码")
    if errors:
        raise InvalidInput("；".join(errors), code="listing_invalid")
    return Checked(texts, price, reference, stock, ecommerce)


def check_price(price: Decimal, reference: Decimal, margin: Decimal) -> None:
    """The price rule: at most `margin` above the supplier's declared reference price (and, checked
    in the transaction by `catalog.agreements.check_ceiling`, never above an agreement price of the
    same goods)."""
    limit = round_money(reference * (1 + margin))
    if price > limit:
        raise RuleViolation(
            f"售价 {price:,.2f} 元高于参考市场价 {reference:,.2f} 元上浮 {margin * 100:.0f}% 的上限"
            f"（最高 {limit:,.2f} 元），不能上架",
            code="price_above_reference",
        )


async def recheck_price(
    session: AsyncSession, listing: Listing, margin: Decimal, price: Decimal, reference: Decimal
) -> None:
    """Both halves of the price rule for `price` on this listing, before it may sell at it."""
    check_price(price, reference, margin)
    await check_ceiling(session, listing.brand, listing.spec_model, price)


async def category_for_listing(session: AsyncSession, code: str) -> Category:
    category = await session.get(Category, (CATALOG_VERSION, code))
    if category is None:
        raise InvalidInput(f"品目编码 {code} 不在{CATALOG_VERSION}版品目目录中", code="unknown_category")
    if category.type != "goods":
        raise RuleViolation("网上超市只能上架货物类品目", code="category_not_goods")
    return category


def supplier_org(who: Principal) -> uuid.UUID:
    """The caller's organization: only a supplier's user, who always has one, lists goods."""
    if who.org_id is None:
        raise Forbidden("您没有权限执行此操作", code="forbidden")
    return who.org_id


def audit(
    tx: Tx,
    who: Principal,
    action: str,
    listing_id: uuid.UUID,
    detail: str = "",
    *,
    before: Mapping[str, object] | None = None,
    after: Mapping[str, object] | None = None,
) -> None:
    """One line of a listing's audit trail, in the caller's transaction (mall.core.audit)."""
    audit_log.record(
        tx,
        who,
        action,
        target_kind="listing",
        target=str(listing_id),
        detail=detail,
        before=before,
        after=after,
    )


def record_price(
    tx: Tx, listing: Listing, *, previous: Decimal | None, at: datetime, by: uuid.UUID | None, note: str
) -> None:
    """The listing's price as it now is, into its price history (`previous`: None for the first)."""
    tx.session.add(
        PriceChange(
            listing_id=listing.id,
            at=at,
            price=listing.price,
            reference_price=listing.reference_price,
            previous_price=previous,
            by_user_id=by,
            note=note,
        )
    )


async def refuse_duplicate(
    session: AsyncSession,
    org_id: uuid.UUID | None,
    draft: ListingDraft,
    *,
    other_than: uuid.UUID | None = None,
) -> tuple[str, str]:
    """The draft's goods keys, unless the supplier already lists the same brand and model (409)."""
    keys = brand_key(draft.brand), model_key(draft.spec_model)
    stmt = select(Listing.id).where(
        Listing.supplier_org_id == org_id, Listing.brand_key == keys[0], Listing.model_key == keys[1]
    )
    if other_than is not None:
        stmt = stmt.where(Listing.id != other_than)
    if await session.scalar(stmt):
        raise Conflict("已存在相同品牌和型号的商品，不能重复上架", code="duplicate_listing")
    return keys


def _fill(listing: Listing, checked: Checked, category: Category, keys: tuple[str, str]) -> None:
    draft = checked.draft
    listing.name, listing.brand, listing.spec_model = draft.name, draft.brand, draft.spec_model
    listing.brand_key, listing.model_key = keys
    listing.category_code, listing.category_version = category.code, category.version
    listing.unit, listing.stock, listing.description = draft.unit, checked.stock, draft.description
    listing.price, listing.reference_price = checked.price, checked.reference_price
    listing.reference_source = draft.reference_source
    listing.params = media.parse_params(draft.params)
    listing.ecommerce_price = checked.ecommerce.price
    listing.ecommerce_url = checked.ecommerce.url
    listing.ecommerce_captured_on = checked.ecommerce.captured_on


async def add_listing(
    tx: Tx, who: Principal, checked: Checked, category: Category, *, submit: bool = True
) -> Listing:
    """Insert a checked listing in the caller's transaction (used by the form and by imports)."""
    org_id = supplier_org(who)
    keys = await refuse_duplicate(tx.session, org_id, checked.draft)
    now = clock.now()
    listing = Listing(
        supplier_org_id=org_id,
        status=ListingStatus.SUBMITTED if submit else ListingStatus.DRAFT,
        submitted_at=now if submit else None,
        created_at=now,
        updated_at=now,
    )
    _fill(listing, checked, category, keys)
    tx.session.add(listing)
    await tx.session.flush()
    record_price(tx, listing, previous=None, at=now, by=who.user_id, note="首次报价")
    audit(tx, who, "listing_created", listing.id, listing.status)
    return listing


@retried_if_rolled_back
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
        category = await category_for_listing(tx.session, checked.draft.category_code)
        await check_ceiling(tx.session, checked.draft.brand, checked.draft.spec_model, checked.price)
        return await add_listing(tx, who, checked, category, submit=submit)


async def locked_listing(tx: Tx, listing_id: uuid.UUID, *, owner: Principal | None = None) -> Listing:
    """A listing locked for a change: the `owner`'s own (404 for anyone else's), or any listing for
    the center or the regulator."""
    listing = await tx.session.get(Listing, listing_id, with_for_update={"of": Listing, "key_share": True})
    if listing is None or (owner is not None and listing.supplier_org_id != owner.org_id):
        raise NotFound("商品不存在", code="listing_not_found")
    return listing


@retried
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
        listing = await locked_listing(tx, listing_id, owner=who)
        if listing.status not in (ListingStatus.DRAFT, ListingStatus.REJECTED):
            raise Conflict("只有草稿或未通过审核的商品可以修改后重新提交", code="listing_not_editable")
        category = await category_for_listing(tx.session, checked.draft.category_code)
        await check_ceiling(tx.session, checked.draft.brand, checked.draft.spec_model, checked.price)
        keys = await refuse_duplicate(tx.session, who.org_id, checked.draft, other_than=listing.id)
        now, before = clock.now(), (listing.price, listing.reference_price)
        _fill(listing, checked, category, keys)
        if (listing.price, listing.reference_price) != before:
            record_price(tx, listing, previous=before[0], at=now, by=who.user_id, note="修改后重新提交")
        if submit:
            listing.status, listing.submitted_at = ListingStatus.SUBMITTED, now
            listing.status_reason = ""
        listing.updated_at = now
        audit(tx, who, "listing_edited", listing.id, listing.status)
    return listing


async def save_listing(
    db: Database, settings: Settings, who: Principal, data: ListingCreate, listing_id: uuid.UUID | None = None
) -> Listing:
    """What the API and the page save: a new listing, or an edit of `listing_id`; submitted for review
    unless `data.draft`."""
    margin, ceiling, submit = settings.price_margin, settings.decentralized_threshold, not data.draft
    if listing_id is None:
        return await create_listing(db, who, data, margin=margin, ceiling=ceiling, submit=submit)
    return await update_listing(db, who, listing_id, data, margin=margin, ceiling=ceiling, submit=submit)


@retried
async def set_ecommerce(db: Database, who: Principal, listing_id: uuid.UUID, data: EcommerceIn) -> Listing:
    """The supplier declares (or clears) its listing's e-commerce price in any state but frozen; no
    review: the listing sells at its own price, and price monitoring compares the two."""
    errors: list[str] = []
    found = check_ecommerce(data.ecommerce_price, data.ecommerce_url, data.ecommerce_captured_on, errors)
    if errors:
        raise InvalidInput("；".join(errors), code="ecommerce_invalid")
    async with db.write() as tx:
        listing = await locked_listing(tx, listing_id, owner=who)
        if listing.status == ListingStatus.FROZEN:
            raise Forbidden("商品已被冻结，不能变更", code="listing_frozen")
        before = {
            "ecommerce_price": listing.ecommerce_price,
            "ecommerce_url": listing.ecommerce_url,
            "ecommerce_captured_on": listing.ecommerce_captured_on,
        }
        listing.ecommerce_price, listing.ecommerce_url = found.price, found.url
        listing.ecommerce_captured_on = found.captured_on
        listing.updated_at = clock.now()
        after = {
            "ecommerce_price": found.price,
            "ecommerce_url": found.url,
            "ecommerce_captured_on": found.captured_on,
        }
        audit(tx, who, "listing_edited", listing.id, "电商比价", before=before, after=after)
    return listing


@retried
async def set_policy(db: Database, who: Principal, listing_id: uuid.UUID, data: PolicyIn) -> Listing:
    """The supplier declares its listing's certificates and origin (catalog.policy), in any state but
    frozen; no review, but audited: what it declares is its own statement, and the center sees it."""
    energy_no, energy_until, errors = policy.cert_problems(
        data.energy_cert_no, data.energy_cert_until, "节能产品认证"
    )
    eco_no, eco_until, more = policy.cert_problems(data.eco_cert_no, data.eco_cert_until, "环境标志产品认证")
    origin = data.origin.strip()
    approval = data.import_approval_ref.strip()
    errors += more + policy.origin_problems(origin, approval)
    if errors:
        raise InvalidInput("；".join(errors), code="policy_invalid")
    if origin != "imported":
        approval = ""
    async with db.write() as tx:
        listing = await locked_listing(tx, listing_id, owner=who)
        if listing.status == ListingStatus.FROZEN:
            raise Forbidden("商品已被冻结，不能变更", code="listing_frozen")
        names = (
            "energy_cert_no",
            "energy_cert_until",
            "eco_cert_no",
            "eco_cert_until",
            "origin",
            "import_approval_ref",
        )
        before = {n: getattr(listing, n) for n in names}
        values = (energy_no, energy_until, eco_no, eco_until, origin, approval)
        for n, v in zip(names, values, strict=True):
            setattr(listing, n, v)
        listing.updated_at = clock.now()
        after = dict(zip(names, values, strict=True))
        audit(tx, who, "listing_edited", listing.id, "政策属性", before=before, after=after)
        # the search index's badge and filters follow
        search_sync.stage(tx, [listing.id])
    return listing


async def restage_expired_certificates(db: Database, days: int = 3) -> int:
    """Listings whose certificate expired in the last `days` days go back through the search index
    (its 节能 / 环保 badge and the green filter were computed when indexed). Idempotent: the periodic
    tick asks every few minutes; indexing a listing again changes nothing."""
    today = clock.local_date(clock.now())
    since = today - timedelta(days=days)
    async with db.read() as s:
        ids = list(
            (
                await s.execute(
                    select(Listing.id).where(
                        Listing.status == ListingStatus.LIVE,
                        ((Listing.energy_cert_until >= since) & (Listing.energy_cert_until < today))
                        | ((Listing.eco_cert_until >= since) & (Listing.eco_cert_until < today)),
                    )
                )
            ).scalars()
        )
    if ids:
        async with db.write() as tx:
            search_sync.stage(tx, ids)
    return len(ids)


@retried
async def submit_listing(db: Database, who: Principal, listing_id: uuid.UUID, *, margin: Decimal) -> Listing:
    async with db.write() as tx:
        listing = await locked_listing(tx, listing_id, owner=who)
        if listing.status not in (ListingStatus.DRAFT, ListingStatus.REJECTED):
            raise Conflict("该商品当前不能提交审核", code="listing_not_submittable")
        await recheck_price(tx.session, listing, margin, listing.price, listing.reference_price)
        listing.status, listing.submitted_at, listing.status_reason = ListingStatus.SUBMITTED, clock.now(), ""
        listing.updated_at = clock.now()
        audit(tx, who, "listing_submitted", listing.id)
    return listing


def reason_of(raw: str, label: str, *, required: bool, missing: str) -> str:
    """A reason as typed, checked for every action (the audit log keeps it); at least two characters
    where the action needs one (400 reason_required)."""
    reason = text(raw, label, REASON_MAX, multiline=True, field="reason")
    if required and len(reason) < 2:
        raise InvalidInput(f"{missing}（2至{REASON_MAX}个字符）", code="reason_required", field="reason")
    return reason


@retried
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
    reason = reason_of(reason, "驳回原因", required=not approve, missing="驳回时请填写原因")
    errors: list[str] = []
    seen = [
        None if raw in (None, "") else parse_amount(str(raw), label, errors)
        for raw, label in ((seen_price, "审核时的售价"), (seen_reference, "审核时的参考价"))
    ]
    if errors:
        raise InvalidInput("；".join(errors), code="price_invalid")
    async with db.write() as tx:
        listing = await locked_listing(tx, listing_id)
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
            await recheck_price(tx.session, listing, margin, listing.price, listing.reference_price)
            listing.status, listing.status_reason = ListingStatus.LIVE, ""
            search_sync.stage(tx, [listing.id])
        else:
            listing.status, listing.status_reason = ListingStatus.REJECTED, reason
            notices.listing_returned(tx.session, listing.supplier_org_id, listing.id, listing.name, reason)
        listing.status_by, listing.reviewed_at, listing.reviewed_by = who.role, now, who.user_id
        listing.updated_at = now
        audit(
            tx,
            who,
            "listing_approved" if approve else "listing_rejected",
            listing.id,
            reason,
            before={
                "status": ListingStatus.SUBMITTED,
                "price": listing.price,
                "reference_price": listing.reference_price,
            },
            after={"status": listing.status, "reason": reason},
        )
    return listing


async def review(
    db: Database, settings: Settings, who: Principal, listing_id: uuid.UUID, data: ReviewIn
) -> Listing:
    """The center's decision as the API and the page send it."""
    return await review_listing(
        db,
        who,
        listing_id,
        approve=data.approves(),
        reason=data.reason,
        margin=settings.price_margin,
        seen_price=data.price,
        seen_reference=data.reference_price,
    )


@retried
async def set_listing_status(
    db: Database, who: Principal, listing_id: uuid.UUID, status: str, *, margin: Decimal | None = None
) -> Listing:
    """The supplier takes a live listing off sale, or puts back one it took off itself."""
    if status not in (ListingStatus.LIVE, ListingStatus.DELISTED):
        raise InvalidInput("不支持的状态", code="invalid_status")
    async with db.write() as tx:
        listing = await locked_listing(tx, listing_id, owner=who)
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
                await recheck_price(tx.session, listing, margin, listing.price, listing.reference_price)
        listing.status = ListingStatus(status)
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


@retried
async def moderate(
    db: Database, who: Principal, listing_id: uuid.UUID, action: str, reason: str, *, margin: Decimal
) -> Listing:
    """The center or the regulator freezes / unfreezes, delists / relists a listing, with a reason.
    A frozen listing returns to what it was (on sale, or waiting for review — never live without
    an approval). What the regulator did, only the regulator undoes."""
    if action not in MODERATION:
        raise InvalidInput("不支持的操作", code="invalid_action", field="action")
    reason = reason_of(reason, "原因", required=action in ("freeze", "delist"), missing="请填写原因")
    async with db.write() as tx:
        return await moderate_in(tx, who, listing_id, action, reason, margin=margin)


async def moderate_in(
    tx: Tx, who: Principal, listing_id: uuid.UUID, action: str, reason: str, *, margin: Decimal
) -> Listing:
    """`moderate` in the caller's write transaction, with a reason already checked (`reason_of`):
    for a decision taken together with another change (a price alert's freeze)."""
    if action not in MODERATION:
        raise InvalidInput("不支持的操作", code="invalid_action", field="action")
    sources, label = MODERATION[action]
    listing = await locked_listing(tx, listing_id)
    before = {"status": listing.status, "by": listing.status_by, "reason": listing.status_reason}
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
            await recheck_price(tx.session, listing, margin, listing.price, listing.reference_price)
        listing.status, listing.frozen_from = ListingStatus(target), ""
    listing.status_reason = reason if action in ("freeze", "delist") else ""
    listing.status_by = who.role if action in ("freeze", "delist") else ""
    listing.updated_at = clock.now()
    audit(
        tx,
        who,
        f"listing_{action}",
        listing.id,
        reason,
        before=before,
        after={"status": listing.status, "by": listing.status_by, "reason": listing.status_reason},
    )
    if action in ("freeze", "delist"):  # a decision against the supplier: it is told, with the reason
        notices.sanction_decided(
            tx.session, listing.supplier_org_id, listing.id, listing.name, label, who.role, reason
        )
    search_sync.stage(tx, [listing.id])
    return listing

"""协议供货, the agreement's own life: a procurement center drafts a framework agreement per category,
enters the suppliers that won entry (入围) and their products and prices (a ceiling, or a discount
off a list price), puts it in force and ends it.

States: draft → active → expired (the term ended) / terminated (by the center, with a reason).
Suppliers and products are added while drafting, or later as a supplementary entry (补充入围).
Ordering under an agreement is `catalog.agreement_orders`; reading it, `catalog.agreement_queries`.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import date
from decimal import Decimal, InvalidOperation

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.categories import CATALOG_VERSION, name_of, prefix_of
from catalog.goods import brand_key, model_key
from catalog.models import (
    AGREEMENT_STATUS_LABELS,
    Agreement,
    AgreementProduct,
    AgreementStatus,
    AgreementSupplier,
    Category,
)
from mall.core import audit, clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, retried, retried_if_rolled_back
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from mall.core.models import Organization, OrgKind
from mall.core.money import MoneyError, money, money_str, round_money
from mall.core.settings import Settings
from mall.sanctions import standing

AGREEMENT_KIND_LABELS = {"goods": "货物", "services": "服务"}
# Terms (DOMAIN: ≤ 1 year for goods, ≤ 2 years for services).
MAX_TERM_YEARS = {"goods": 1, "services": 2}
DEFAULT_DIRECT_LIMIT = Decimal("200000.00")
# The summary of all deals under an agreement is due within 10 working days after it ends.
SUMMARY_WORKING_DAYS = 10


# ---------------------------------------------------------------- pure rules


def add_years(d: date, years: int) -> date:
    if d.year + years > date.max.year:
        raise InvalidInput("日期超出范围", code="invalid_date")
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def check_term(kind: str, starts_on: date, ends_on: date) -> None:
    """The term must not be longer than a year for goods, two years for services."""
    if kind not in MAX_TERM_YEARS:
        raise InvalidInput("协议类型应为货物或服务", code="invalid_agreement_kind")
    if ends_on < starts_on:
        raise InvalidInput("协议截止日期不能早于开始日期", code="invalid_agreement_term")
    years = MAX_TERM_YEARS[kind]
    if ends_on >= add_years(starts_on, years):
        label = AGREEMENT_KIND_LABELS[kind]
        raise RuleViolation(f"{label}类框架协议期限不得超过{years}年", code="agreement_term_too_long")


def discounted(list_price: Decimal, rate: Decimal) -> Decimal:
    """The agreement price from a list price and a discount rate (0 < rate ≤ 1)."""
    if not rate.is_finite() or not Decimal(0) < rate <= Decimal(1) or rate.as_tuple().exponent < -4:  # type: ignore[operator]
        raise InvalidInput("折扣率应大于0且不超过1，最多四位小数（如 0.92）", code="invalid_discount_rate")
    price = round_money(list_price * rate)
    if price <= 0:
        raise InvalidInput("报价乘折扣率后不足0.01元", code="invalid_discount_rate")
    return price


def in_force(a: Agreement, today: date) -> bool:
    return a.status == AgreementStatus.ACTIVE and a.starts_on <= today <= a.ends_on


def check_call_off(a: Agreement, total: Decimal) -> None:
    if total >= a.direct_limit:
        raise RuleViolation(
            f"订单金额 {total:,.2f} 元达到本协议直接选定限额 {a.direct_limit:,.2f} 元，请发起二次竞价",
            code="second_stage_required",
            direct_limit=money_str(a.direct_limit),
        )


# ---------------------------------------------------------------- the center's side


class AgreementDraft(msgspec.Struct, forbid_unknown_fields=True):
    """A new agreement as the center types it: the API's body and the page's form."""

    title: fields.Name
    kind: fields.Choice  # goods | services
    category_code: fields.CategoryCode
    starts_on: fields.DateText  # YYYY-MM-DD
    ends_on: fields.DateText
    direct_limit: fields.Amount = str(DEFAULT_DIRECT_LIMIT)


class SupplierEntry(msgspec.Struct, forbid_unknown_fields=True):
    """A supplier to enter, named by its 统一社会信用代码."""

    credit_code: fields.CreditCodeText


class ProductDraft(msgspec.Struct, forbid_unknown_fields=True):
    """An agreement product: its agreement price, or a list price and a discount rate."""

    supplier_org_id: uuid.UUID
    name: fields.Name
    brand: fields.RequiredShortText
    spec_model: fields.Model
    category_code: fields.CategoryCode
    unit: fields.Unit
    price: fields.OptionalAmount = ""  # the agreement price; or
    list_price: fields.OptionalAmount = ""  # a list price and
    discount_rate: fields.Rate = ""  # a discount rate


def _date(raw: str, what: str, field: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(f"{what}应为 YYYY-MM-DD 格式的日期", code="invalid_date", field=field) from None


def parse_amount(raw: str, what: str, field: str = "") -> Decimal:
    try:
        value = money(raw.strip())
    except (MoneyError, AttributeError):
        raise InvalidInput(
            f"{what}应为最多两位小数的金额", code="invalid_amount", field=field or what
        ) from None
    if value <= 0:
        raise InvalidInput(f"{what}必须大于0", code="invalid_amount", field=field or what)
    return value


def text_field(
    raw: str, what: str, limit: int, *, field: str, required: bool = True, multiline: bool = False
) -> str:
    """A text as `mall.core.fields.text` checks it (characters, limit), and present if `required`."""
    value = fields.text(raw, what, limit, multiline=multiline, field=field)
    if required and not value:
        raise InvalidInput(f"请填写{what}", code="missing_field", field=field)
    return value


def code_field(raw: str, what: str, limit: int, *, field: str) -> str:
    """A code typed by a person, checked as text before the database is asked about it."""
    return fields.text(raw, what, limit, field=field).upper()


def _center(who: Principal) -> uuid.UUID:
    if who.role != "center" or who.org_id is None:
        raise Forbidden("只有集中采购机构可以管理框架协议", code="forbidden")
    return who.org_id


async def category_of(s: AsyncSession, code: str) -> Category:
    """The 品目 of a code typed by a person, in the current catalogue."""
    category = await s.get(Category, (CATALOG_VERSION, code.strip().upper()))
    if category is None:
        raise InvalidInput(f"品目编码 {code} 不在{CATALOG_VERSION}版品目目录中", code="unknown_category")
    return category


async def supplier_by_code(s: AsyncSession, credit_code: str) -> Organization:
    """The supplier with this 统一社会信用代码 (as typed, checked with `code_field`)."""
    org = await s.scalar(select(Organization).where(Organization.credit_code == credit_code))
    if org is None or org.kind != OrgKind.SUPPLIER:
        raise NotFound("未找到该统一社会信用代码的供应商", code="supplier_not_found")
    return org


def _number() -> str:
    return f"XYKJ{clock.local_date(clock.now()):%Y%m%d}{secrets.randbelow(10**6):06d}"


@retried_if_rolled_back
async def create(db: Database, settings: Settings, who: Principal, draft: AgreementDraft) -> Agreement:
    center = _center(who)
    title = text_field(draft.title, "协议名称", fields.NAME_MAX, field="title")
    category_code = code_field(
        draft.category_code, "品目编码", fields.CATEGORY_CODE_MAX, field="category_code"
    )
    starts_on = _date(draft.starts_on, "开始日期", "starts_on")
    ends_on = _date(draft.ends_on, "截止日期", "ends_on")
    check_term(draft.kind, starts_on, ends_on)
    limit = parse_amount(draft.direct_limit, "直接选定限额", "direct_limit")
    async with db.write() as tx:
        category = await category_of(tx.session, category_code)
        expected = "goods" if draft.kind == "goods" else "service"
        if category.type != expected:
            raise InvalidInput(
                f"品目 {category.code} {category.name} 不是{AGREEMENT_KIND_LABELS[draft.kind]}类品目",
                code="category_kind_mismatch",
            )
        a = Agreement(
            id=uuid.uuid4(),
            number=_number(),
            title=title,
            center_org_id=center,
            kind=draft.kind,
            category_code=category.code,
            region_code=settings.region_code,
            starts_on=starts_on,
            ends_on=ends_on,
            direct_limit=limit,
            status=AgreementStatus.DRAFT,
            created_at=clock.now(),
        )
        tx.session.add(a)
        audit.record(
            tx,
            who,
            "agreement_created",
            target_kind="agreement",
            target=a.number,
            detail=title,
            after={
                "title": title,
                "kind": a.kind,
                "category_code": a.category_code,
                "starts_on": starts_on,
                "ends_on": ends_on,
                "direct_limit": limit,
                "status": a.status,
            },
        )
    return a


async def _own(s: AsyncSession, who: Principal, agreement_id: uuid.UUID, *, lock: bool = False) -> Agreement:
    center = _center(who)
    a = await s.get(Agreement, agreement_id, with_for_update=lock)
    if a is None or a.center_org_id != center:
        raise NotFound("框架协议不存在", code="agreement_not_found")
    return a


def _open_for_entry(a: Agreement) -> bool:
    """Suppliers and products may be added while drafting, or as a supplementary entry while active."""
    if a.status not in (AgreementStatus.DRAFT, AgreementStatus.ACTIVE):
        raise Conflict(
            f"协议{AGREEMENT_STATUS_LABELS[a.status]}，不能再增加入围供应商或产品", code="agreement_closed"
        )
    return a.status == AgreementStatus.ACTIVE


async def _entered(s: AsyncSession, agreement_id: uuid.UUID, supplier_org_id: uuid.UUID) -> bool:
    found = await s.scalar(
        select(AgreementSupplier.id).where(
            AgreementSupplier.agreement_id == agreement_id,
            AgreementSupplier.supplier_org_id == supplier_org_id,
        )
    )
    return found is not None


@retried
async def add_supplier(
    db: Database, who: Principal, agreement_id: uuid.UUID, credit_code: str
) -> AgreementSupplier:
    code = code_field(credit_code, "统一社会信用代码", fields.CREDIT_CODE_LENGTH, field="credit_code")
    async with db.write() as tx:
        s = tx.session
        a = await _own(s, who, agreement_id, lock=True)
        supplementary = _open_for_entry(a)
        org = await supplier_by_code(s, code)
        if await _entered(s, a.id, org.id):
            raise Conflict(f"{org.name} 已入围本协议", code="already_entered")
        await standing.require_good_standing(s, [org.id], "入围协议")
        entry = AgreementSupplier(
            id=uuid.uuid4(),
            agreement_id=a.id,
            supplier_org_id=org.id,
            supplementary=supplementary,
            entered_at=clock.now(),
        )
        s.add(entry)
        audit.record(
            tx,
            who,
            "agreement_supplier_added",
            target_kind="agreement",
            target=a.number,
            detail=f"{org.name}（{org.credit_code}）" + ("，补充入围" if supplementary else ""),
            after={"supplier": org.credit_code, "supplementary": supplementary},
        )
    return entry


@retried_if_rolled_back
async def add_product(
    db: Database, who: Principal, agreement_id: uuid.UUID, d: ProductDraft
) -> AgreementProduct:
    name = text_field(d.name, "产品名称", fields.NAME_MAX, field="name")
    brand = text_field(d.brand, "品牌", fields.SHORT_MAX, field="brand")
    spec_model = text_field(d.spec_model, "规格型号", fields.MODEL_MAX, field="spec_model")
    unit = text_field(d.unit, "单位", fields.UNIT_MAX, field="unit")
    category_code = code_field(d.category_code, "品目编码", fields.CATEGORY_CODE_MAX, field="category_code")
    list_price: Decimal | None = None
    rate: Decimal | None = None
    if d.price.strip():
        if d.list_price.strip() or d.discount_rate.strip():
            raise InvalidInput("协议价与“报价×折扣率”只能二选一", code="price_or_discount", field="price")
        price = parse_amount(d.price, "协议价", "price")
    elif d.list_price.strip() and d.discount_rate.strip():
        list_price = parse_amount(d.list_price, "产品报价", "list_price")
        try:
            rate = Decimal(d.discount_rate.strip())
        except InvalidOperation:
            raise InvalidInput(
                "折扣率应为小数，如 0.92", code="invalid_discount_rate", field="discount_rate"
            ) from None
        price = discounted(list_price, rate)
    else:
        raise InvalidInput("请填写协议价，或填写产品报价和折扣率", code="price_or_discount", field="price")
    async with db.write() as tx:
        s = tx.session
        a = await _own(s, who, agreement_id, lock=True)
        _open_for_entry(a)
        category = await category_of(s, category_code)
        # A02030000 (车辆) covers every code starting A0203
        if not category.code.startswith(prefix_of(a.category_code)):
            raise InvalidInput(
                f"品目 {category.code} 不属于本协议的品目 {a.category_code} {name_of(a.category_code)}",
                code="category_outside_agreement",
            )
        if not await _entered(s, a.id, d.supplier_org_id):
            raise RuleViolation("该供应商未入围本协议", code="supplier_not_entered")
        await standing.require_good_standing(s, [d.supplier_org_id], "增加协议产品")
        product = AgreementProduct(
            id=uuid.uuid4(),
            agreement_id=a.id,
            supplier_org_id=d.supplier_org_id,
            name=name,
            brand=brand,
            spec_model=spec_model,
            brand_key=brand_key(brand),
            model_key=model_key(spec_model),
            category_code=category.code,
            unit=unit,
            list_price=list_price,
            discount_rate=rate,
            price=price,
            active=True,
            created_at=clock.now(),
        )
        s.add(product)
        audit.record(
            tx,
            who,
            "agreement_product_added",
            target_kind="agreement",
            target=a.number,
            detail=f"{brand} {spec_model} {price} 元",
            after={
                "supplier_org_id": d.supplier_org_id,
                "name": name,
                "brand": brand,
                "spec_model": spec_model,
                "category_code": category.code,
                "price": price,
                "list_price": list_price,
                "discount_rate": rate,
            },
        )
    return product


@retried
async def activate(db: Database, who: Principal, agreement_id: uuid.UUID) -> Agreement:
    async with db.write() as tx:
        s = tx.session
        a = await _own(s, who, agreement_id, lock=True)
        if a.status != AgreementStatus.DRAFT:
            raise Conflict("只有草稿状态的协议可以生效", code="agreement_not_draft")
        today = clock.local_date(clock.now())
        if a.ends_on < today:
            raise RuleViolation("协议截止日期已过，不能生效", code="agreement_term_passed")
        products = await s.scalar(
            select(func.count()).select_from(AgreementProduct).where(AgreementProduct.agreement_id == a.id)
        )
        if not products:
            raise RuleViolation("协议至少需要一家入围供应商和一个协议产品才能生效", code="agreement_empty")
        a.status, a.activated_at = AgreementStatus.ACTIVE, clock.now()
        audit.record(
            tx,
            who,
            "agreement_activated",
            target_kind="agreement",
            target=a.number,
            before={"status": AgreementStatus.DRAFT},
            after={"status": a.status},
        )
    return a


@retried
async def terminate(db: Database, who: Principal, agreement_id: uuid.UUID, reason: str) -> Agreement:
    reason = text_field(reason, "终止原因", fields.REASON_MAX, field="reason", multiline=True)
    async with db.write() as tx:
        a = await _own(tx.session, who, agreement_id, lock=True)
        if a.status not in (AgreementStatus.DRAFT, AgreementStatus.ACTIVE):
            raise Conflict(f"协议{AGREEMENT_STATUS_LABELS[a.status]}，不能终止", code="agreement_closed")
        before = {"status": a.status}
        a.status, a.end_reason, a.ended_at = AgreementStatus.TERMINATED, reason, clock.now()
        audit.record(
            tx,
            who,
            "agreement_terminated",
            target_kind="agreement",
            target=a.number,
            detail=reason,
            before=before,
            after={"status": a.status, "reason": reason},
        )
    return a


@retried
async def expire_due(db: Database) -> list[uuid.UUID]:
    """Active agreements whose term has ended become expired (run by the periodic process)."""
    today = clock.local_date(clock.now())
    async with db.write() as tx:
        rows = list(
            (
                await tx.session.execute(
                    select(Agreement)
                    .where(Agreement.status == AgreementStatus.ACTIVE, Agreement.ends_on < today)
                    .with_for_update()
                )
            ).scalars()
        )
        for a in rows:
            a.status, a.ended_at, a.end_reason = AgreementStatus.EXPIRED, clock.now(), "协议期满"
    return [a.id for a in rows]

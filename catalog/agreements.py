"""协议供货: framework agreements a procurement center signs per category with the suppliers that won
entry (入围), their agreement products and prices (a ceiling, or a discount off a list price), and
orders placed under them.

States: draft → active → expired (the term ended) / terminated (by the center, with a reason).
Suppliers and products are added while drafting, or later as a supplementary entry (补充入围).
An order under an agreement is a direct selection (直接选定) at or below the agreement price; the
supplier may lower it when confirming (议价), and from there it runs the supermarket's fulfilment
flow (`mall.orders`). A call-off at or above the agreement's direct-order limit goes to a
second-stage competition (二次竞价): an inquiry or auction open only to the entered suppliers, with
the agreement prices as the ceiling (`bidding.service`).
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Numeric, String, UniqueConstraint, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from catalog.categories import CATALOG_VERSION, name_of, prefix_of
from catalog.goods import brand_key, model_key
from catalog.models import Category
from mall import orders
from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.db import Base, Database, IdMixin, Money, UTCDateTime
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from mall.core.models import Order, OrderStatus, Organization, OrgKind
from mall.core.money import MoneyError, money, money_str, round_money, whole_quantity
from mall.core.settings import Settings


class AgreementStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    EXPIRED = "expired"
    TERMINATED = "terminated"


AGREEMENT_STATUS_LABELS = {"draft": "草稿", "active": "执行中", "expired": "已到期", "terminated": "已终止"}
AGREEMENT_KIND_LABELS = {"goods": "货物", "services": "服务"}
# Terms (DOMAIN: ≤ 1 year for goods, ≤ 2 years for services).
MAX_TERM_YEARS = {"goods": 1, "services": 2}
DEFAULT_DIRECT_LIMIT = Decimal("200000.00")
# The summary of all deals under an agreement is due within 10 working days after it ends.
SUMMARY_WORKING_DAYS = 10


class Agreement(IdMixin, Base):
    __tablename__ = "agreements"

    number: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    center_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # goods | services
    category_code: Mapped[str] = mapped_column(String(16))  # products must lie under this 品目
    region_code: Mapped[str] = mapped_column(String(6))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)  # the last day of the term
    # A call-off at or above this amount goes to a second-stage competition (二次竞价).
    direct_limit: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(12), index=True)
    end_reason: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AgreementSupplier(IdMixin, Base):
    """A supplier that won entry (入围); `supplementary` when it entered after activation."""

    __tablename__ = "agreement_suppliers"
    __table_args__ = (UniqueConstraint("agreement_id", "supplier_org_id", name="uq_agreement_supplier"),)

    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agreements.id"), index=True)
    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    supplementary: Mapped[bool] = mapped_column(Boolean, default=False)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgreementProduct(IdMixin, Base):
    """A product an entered supplier supplies under the agreement, at most at `price` (协议价).
    With a discount rate, `price` is the list price times the rate, rounded to the 分."""

    __tablename__ = "agreement_products"

    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agreements.id"), index=True)
    supplier_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str] = mapped_column(String(100))
    spec_model: Mapped[str] = mapped_column(String(200))
    # brand and model folded like the catalogue's duplicate rule, to find the same goods listed there
    brand_key: Mapped[str] = mapped_column(String(100))
    model_key: Mapped[str] = mapped_column(String(200))
    category_code: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(20))
    list_price: Mapped[Decimal | None] = mapped_column(Money)
    discount_rate: Mapped[Decimal | None] = mapped_column(Numeric(6, 4))
    price: Mapped[Decimal] = mapped_column(Money)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


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


@dataclass(frozen=True)
class AgreementDraft:
    title: str
    kind: str
    category_code: str
    starts_on: str
    ends_on: str
    direct_limit: str = str(DEFAULT_DIRECT_LIMIT)


@dataclass(frozen=True)
class ProductDraft:
    supplier_org_id: uuid.UUID
    name: str
    brand: str
    spec_model: str
    category_code: str
    unit: str
    price: str = ""  # the agreement price; or
    list_price: str = ""  # a list price and
    discount_rate: str = ""  # a discount rate


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


async def _category(s: AsyncSession, code: str) -> Category:
    category = await s.get(Category, (CATALOG_VERSION, code.strip().upper()))
    if category is None:
        raise InvalidInput(f"品目编码 {code} 不在{CATALOG_VERSION}版品目目录中", code="unknown_category")
    return category


def _prefix(code: str) -> str:
    """The part of a 品目 code its descendants share: A02030000 (车辆) covers every code starting A0203."""
    return prefix_of(code)


def _number() -> str:
    import secrets

    return f"XYKJ{clock.local_date(clock.now()):%Y%m%d}{secrets.randbelow(10**6):06d}"


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
        category = await _category(tx.session, category_code)
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


async def add_supplier(
    db: Database, who: Principal, agreement_id: uuid.UUID, credit_code: str
) -> AgreementSupplier:
    code = code_field(credit_code, "统一社会信用代码", fields.CREDIT_CODE_LENGTH, field="credit_code")
    async with db.write() as tx:
        s = tx.session
        a = await _own(s, who, agreement_id, lock=True)
        supplementary = _open_for_entry(a)
        org = await s.scalar(select(Organization).where(Organization.credit_code == code))
        if org is None or org.kind != OrgKind.SUPPLIER:
            raise NotFound("未找到该统一社会信用代码的供应商", code="supplier_not_found")
        if await s.scalar(
            select(AgreementSupplier.id).where(
                AgreementSupplier.agreement_id == a.id, AgreementSupplier.supplier_org_id == org.id
            )
        ):
            raise Conflict(f"{org.name} 已入围本协议", code="already_entered")
        entry = AgreementSupplier(
            id=uuid.uuid4(),
            agreement_id=a.id,
            supplier_org_id=org.id,
            supplementary=supplementary,
            entered_at=clock.now(),
        )
        s.add(entry)
    return entry


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
        category = await _category(s, category_code)
        if not category.code.startswith(_prefix(a.category_code)):
            raise InvalidInput(
                f"品目 {category.code} 不属于本协议的品目 {a.category_code} {name_of(a.category_code)}",
                code="category_outside_agreement",
            )
        if not await s.scalar(
            select(AgreementSupplier.id).where(
                AgreementSupplier.agreement_id == a.id, AgreementSupplier.supplier_org_id == d.supplier_org_id
            )
        ):
            raise RuleViolation("该供应商未入围本协议", code="supplier_not_entered")
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
    return product


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
    return a


async def terminate(db: Database, who: Principal, agreement_id: uuid.UUID, reason: str) -> Agreement:
    reason = text_field(reason, "终止原因", fields.REASON_MAX, field="reason", multiline=True)
    async with db.write() as tx:
        a = await _own(tx.session, who, agreement_id, lock=True)
        if a.status not in (AgreementStatus.DRAFT, AgreementStatus.ACTIVE):
            raise Conflict(f"协议{AGREEMENT_STATUS_LABELS[a.status]}，不能终止", code="agreement_closed")
        a.status, a.end_reason, a.ended_at = AgreementStatus.TERMINATED, reason, clock.now()
    return a


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


# ---------------------------------------------------------------- reading


async def get(s: AsyncSession, agreement_id: uuid.UUID) -> Agreement:
    a = await s.get(Agreement, agreement_id)
    if a is None:
        raise NotFound("框架协议不存在", code="agreement_not_found")
    return a


def visible_to(who: Principal | None, a: Agreement) -> bool:
    """Drafts (and drafts abandoned without ever being in force) are the center's own business; an
    agreement that was put in force is public, also once it has ended."""
    if a.activated_at is not None:
        return True
    return who is not None and who.role == "center" and who.org_id == a.center_org_id


async def entered(s: AsyncSession, agreement_id: uuid.UUID) -> list[tuple[AgreementSupplier, Organization]]:
    rows = await s.execute(
        select(AgreementSupplier, Organization)
        .join(Organization, Organization.id == AgreementSupplier.supplier_org_id)
        .where(AgreementSupplier.agreement_id == agreement_id)
        .order_by(AgreementSupplier.entered_at)
    )
    return [(r[0], r[1]) for r in rows.all()]


async def products_of(
    s: AsyncSession, agreement_id: uuid.UUID, *, active_only: bool = True
) -> list[tuple[AgreementProduct, str]]:
    stmt = (
        select(AgreementProduct, Organization.name)
        .join(Organization, Organization.id == AgreementProduct.supplier_org_id)
        .where(AgreementProduct.agreement_id == agreement_id)
        .order_by(AgreementProduct.category_code, AgreementProduct.price)
    )
    if active_only:
        stmt = stmt.where(AgreementProduct.active.is_(True))
    return [(r[0], str(r[1])) for r in (await s.execute(stmt)).all()]


@dataclass(frozen=True)
class SummaryRow:
    supplier_name: str
    orders: int
    amount: Decimal


@dataclass(frozen=True)
class Summary:
    """成交结果汇总: every deal under the agreement (confirmed or later, not cancelled)."""

    orders: int
    amount: Decimal
    by_supplier: list[SummaryRow]


DEALT = (
    OrderStatus.CONFIRMED,
    OrderStatus.CONTRACTED,
    OrderStatus.SHIPPED,
    OrderStatus.RECEIVED,
    OrderStatus.ACCEPTED,
    OrderStatus.PAID,
)


async def summary(s: AsyncSession, agreement_id: uuid.UUID) -> Summary:
    rows = (
        await s.execute(
            select(Organization.name, func.count(Order.id), func.sum(Order.total_amount))
            .join(Organization, Organization.id == Order.supplier_org_id)
            # direct orders, and the deals of its second-stage competitions (二次竞价)
            .where(
                Order.source_id == agreement_id,
                Order.mode.in_(("agreement", "inquiry", "auction")),
                Order.status.in_(DEALT),
            )
            .group_by(Organization.id, Organization.name)
        )
    ).all()
    by = sorted(
        (SummaryRow(str(n), int(c), money(str(t or 0))) for n, c, t in rows),
        key=lambda r: r.amount,
        reverse=True,
    )
    return Summary(sum(r.orders for r in by), sum((r.amount for r in by), Decimal(0)), by)


# ---------------------------------------------------------------- ordering under an agreement


@dataclass(frozen=True)
class AgreementOrderRequest:
    product_id: uuid.UUID
    quantity: str
    budget_line_id: uuid.UUID
    idempotency_key: str
    unit_price: str = ""  # empty: the agreement price; lower is allowed, higher never
    delivery_address: str = ""
    note: str = ""


def _digest(req: AgreementOrderRequest) -> str:
    body = {k: str(v) for k, v in req.__dict__.items() if k != "idempotency_key"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


async def place_order(
    db: Database, settings: Settings, who: Principal, req: AgreementOrderRequest
) -> tuple[Order, bool]:
    """Direct selection (直接选定): one agreement product, at or below its agreement price."""
    if who.role != "buyer" or who.org_id is None:
        raise Forbidden("只有采购人可以下协议供货订单", code="forbidden")
    try:
        quantity = whole_quantity(req.quantity)
    except MoneyError:
        raise InvalidInput(
            "数量应为正整数（1 到 9999999）", code="invalid_quantity", field="quantity"
        ) from None
    wanted = parse_amount(req.unit_price, "成交单价", "unit_price") if req.unit_price.strip() else None
    digest = _digest(req)

    async def attempt(key: str) -> list[Order]:
        async with db.write() as tx:
            s = tx.session
            # a retry of an order already made is answered with it, whatever changed since
            line, ck, address = await orders.begin(
                s, who, key, digest, req.budget_line_id, req.delivery_address
            )
            product = await s.get(AgreementProduct, req.product_id)
            if product is None or not product.active:
                raise NotFound("协议产品不存在或已停供", code="agreement_product_not_found")
            # a shared lock: a termination or expiry waits for this order (or this order sees it)
            a = await s.get(Agreement, product.agreement_id, with_for_update={"read": True})
            assert a is not None
            if not in_force(a, clock.local_date(clock.now())):
                raise RuleViolation(
                    f"框架协议 {a.number} 不在有效期内（{AGREEMENT_STATUS_LABELS[a.status]}），不能下单",
                    code="agreement_not_in_force",
                )
            price = product.price if wanted is None else wanted
            if price > product.price:
                raise RuleViolation(
                    f"成交单价 {price:,.2f} 元高于协议价 {product.price:,.2f} 元",
                    code="above_agreement_price",
                    max_allowed=money_str(product.price),
                )
            check_call_off(a, round_money(price * quantity))
            await orders.require_active_suppliers(s, [product.supplier_org_id])
            draft = orders.LineDraft(
                product.name,
                product.brand,
                product.spec_model,
                product.category_code,
                CATALOG_VERSION,
                product.unit,
                quantity,
                product.price,
                price,
            )
            order = await orders.open_order(
                s,
                settings,
                who,
                line,
                ck,
                product.supplier_org_id,
                [draft],
                mode="agreement",
                address=address,
                note=req.note,
                note_prefix=f"框架协议 {a.number}",
                note_max=fields.AGREEMENT_NOTE_MAX,
                source_id=a.id,
            )
            return [order]

    placed, replayed = await orders.idempotent(db, who, req.idempotency_key, attempt, digest)
    return placed[0], replayed


async def second_stage_ceiling(
    s: AsyncSession, agreement_id: uuid.UUID, items: list[tuple[str, Decimal]]
) -> tuple[Agreement, Decimal, list[uuid.UUID]]:
    """For a second-stage competition (二次竞价) under an agreement: the agreement in force, the
    highest ceiling it allows (per item, the highest agreement price in that 品目 times the
    quantity), and the entered suppliers, who alone may take part."""
    a = await get(s, agreement_id)
    if not in_force(a, clock.local_date(clock.now())):
        raise RuleViolation("该框架协议不在有效期内，不能发起二次竞价", code="agreement_not_in_force")
    total = Decimal(0)
    for code, quantity in items:
        highest = await s.scalar(
            select(func.max(AgreementProduct.price)).where(
                AgreementProduct.agreement_id == a.id,
                AgreementProduct.active.is_(True),
                AgreementProduct.category_code == code,
            )
        )
        if highest is None:
            raise RuleViolation(f"本协议没有品目 {code} 的协议产品", code="category_outside_agreement")
        total += round_money(Decimal(str(highest)) * quantity)
    suppliers = [e.supplier_org_id for e, _ in await entered(s, a.id)]
    return a, total, suppliers


async def ceiling_for(s: AsyncSession, brand: str, spec_model: str) -> tuple[Decimal, str] | None:
    """The lowest agreement price of the same goods (brand and model) in an agreement in force, and
    that agreement's number: the supermarket may not sell them dearer (DOMAIN: agreement ceiling)."""
    today = clock.local_date(clock.now())
    row = (
        await s.execute(
            select(AgreementProduct.price, Agreement.number)
            .join(Agreement, Agreement.id == AgreementProduct.agreement_id)
            .where(
                AgreementProduct.brand_key == brand_key(brand),
                AgreementProduct.model_key == model_key(spec_model),
                AgreementProduct.active.is_(True),
                Agreement.status == AgreementStatus.ACTIVE,
                Agreement.starts_on <= today,
                Agreement.ends_on >= today,
            )
            .order_by(AgreementProduct.price)
            .limit(1)
        )
    ).first()
    return None if row is None else (Decimal(str(row[0])), str(row[1]))


async def ceilings_in_force(s: AsyncSession) -> dict[tuple[str, str], tuple[Decimal, str]]:
    """(brand key, model key) → (lowest agreement price, agreement number), for agreements in force:
    the same rule as `ceiling_for`, loaded once for a bulk import."""
    today = clock.local_date(clock.now())
    rows = await s.execute(
        select(
            AgreementProduct.brand_key, AgreementProduct.model_key, AgreementProduct.price, Agreement.number
        )
        .join(Agreement, Agreement.id == AgreementProduct.agreement_id)
        .where(
            AgreementProduct.active.is_(True),
            Agreement.status == AgreementStatus.ACTIVE,
            Agreement.starts_on <= today,
            Agreement.ends_on >= today,
        )
    )
    out: dict[tuple[str, str], tuple[Decimal, str]] = {}
    for brand, model, price, number in rows.all():
        price = Decimal(str(price))
        if (brand, model) not in out or price < out[(brand, model)][0]:
            out[(brand, model)] = (price, str(number))
    return out


async def check_ceiling(s: AsyncSession, brand: str, spec_model: str, price: Decimal) -> None:
    found = await ceiling_for(s, brand, spec_model)
    if found is not None and price > found[0]:
        raise RuleViolation(
            f"售价 {price:,.2f} 元高于框架协议 {found[1]} 中同品牌同型号的协议价 {found[0]:,.2f} 元，不能上架",
            code="price_above_agreement",
            max_allowed=money_str(found[0]),
        )


def as_dict(a: Agreement) -> dict[str, Any]:
    return {
        "id": str(a.id),
        "number": a.number,
        "title": a.title,
        "kind": a.kind,
        "category_code": a.category_code,
        "category_name": name_of(a.category_code),
        "starts_on": a.starts_on.isoformat(),
        "ends_on": a.ends_on.isoformat(),
        "direct_limit": money_str(a.direct_limit),
        "status": a.status,
        "status_label": AGREEMENT_STATUS_LABELS[a.status],
    }

"""定点服务: service suppliers designated by the procurement center per service 品目 and region
(vehicle repair, conferences, printing, fuel…), with their service price lists, and service orders.

A designation is made by the center directly, or on a supplier's open application (开放式定点),
which the center reviews within 7 working days: applied → approved / rejected; an approved
designation can be revoked. A buyer filters designated suppliers by region and 品目, orders items
of the price list (hours, times, items), and the order runs the supermarket's flow (`mall.orders`):
the supplier confirms (may lower prices), performs, the buyer accepts and pays.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.agreement_setup import category_of, code_field, parse_amount, supplier_by_code, text_field
from catalog.categories import CATALOG_VERSION, prefix_of
from catalog.models import DESIGNATION_STATUS_LABELS, Category, Designation, ServicePriceItem

# Named through this module by the callers of its services (the oversight lists, the demo data).
from catalog.models import DesignationStatus as DesignationStatus
from catalog.steps import REVIEW_WORKING_DAYS
from mall import orders
from mall.cart import quantity_of
from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, retried, retried_if_rolled_back
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from mall.core.models import Organization
from mall.core.settings import Settings
from mall.orders.models import Order
from mall.sanctions import standing

MAX_PRICE_ITEMS = 50


class PriceItemDraft(msgspec.Struct, forbid_unknown_fields=True):
    """One line of a price list as typed (the API's body and the page's rows)."""

    name: fields.Name
    unit: fields.Unit
    price: fields.Amount
    spec: fields.Model = ""


PriceList = Annotated[list[PriceItemDraft], msgspec.Meta(max_length=MAX_PRICE_ITEMS)]


class ApplicationIn(msgspec.Struct, forbid_unknown_fields=True):
    """A supplier's application to be designated (开放式定点)."""

    category_code: fields.CategoryCode
    region_code: fields.RegionCode
    prices: PriceList
    service_address: fields.Address = ""


class DesignateIn(ApplicationIn, forbid_unknown_fields=True):
    """The center designating a supplier directly: an application, and whom it is for."""

    credit_code: fields.CreditCodeText = ""


def _price_items(drafts: list[PriceItemDraft]) -> list[tuple[str, str, str, Decimal]]:
    if not 1 <= len(drafts) <= MAX_PRICE_ITEMS:
        raise InvalidInput(f"服务价格清单应有1至{MAX_PRICE_ITEMS}项", code="price_list_invalid")
    out = []
    seen: set[tuple[str, str]] = set()
    for n, d in enumerate(drafts, start=1):
        name = text_field(d.name, f"第{n}项服务名称", fields.NAME_MAX, field="name")
        spec = text_field(d.spec, f"第{n}项服务内容", fields.MODEL_MAX, field="spec", required=False)
        if (name, spec) in seen:
            raise InvalidInput(f"第{n}项与前面的服务项目重复", code="price_list_invalid", field="prices")
        seen.add((name, spec))
        unit = text_field(d.unit, f"第{n}项计价单位", fields.UNIT_MAX, field="unit")
        out.append((name, spec, unit, parse_amount(d.price, f"第{n}项单价", "price")))
    return out


async def _service_category(s: AsyncSession, raw: str) -> Category:
    category = await category_of(
        s, code_field(raw, "品目编码", fields.CATEGORY_CODE_MAX, field="category_code")
    )
    if category.type != "service":
        raise InvalidInput(
            f"品目 {category.code} {category.name} 不是服务类品目", code="category_not_service"
        )
    return category


def _region(raw: str) -> str:
    region = (raw or "").strip()
    if not re.fullmatch(fields.REGION_CODE_PATTERN, region):
        raise InvalidInput("服务区域应为6位行政区划代码", code="invalid_region", field="region_code")
    return region


async def _duplicate(s: AsyncSession, supplier: uuid.UUID, category: str, region: str) -> None:
    # the supplier's row lock serializes its applications and designations, so two concurrent ones
    # for the same 品目 and region cannot both pass this check
    await s.execute(select(Organization.id).where(Organization.id == supplier).with_for_update())
    if await s.scalar(
        select(Designation.id).where(
            Designation.supplier_org_id == supplier,
            Designation.category_code == category,
            Designation.region_code == region,
            Designation.status.in_((DesignationStatus.APPLIED, DesignationStatus.APPROVED)),
        )
    ):
        raise Conflict("该供应商在此区域、此品目已定点或正在审核", code="already_designated")


async def _open(
    s: AsyncSession,
    supplier_org_id: uuid.UUID,
    category_code: str,
    region_code: str,
    prices: list[PriceItemDraft],
    service_address: str,
    **decided: Any,
) -> Designation:
    """A designation of the supplier with its price list, once its 品目, region and list are checked
    and no pending or active one exists for the same triple; `decided` are its status fields."""
    region = _region(region_code)
    items = _price_items(prices)
    address = text_field(
        service_address, "服务地点", fields.ADDRESS_MAX, field="service_address", required=False
    )
    category = await _service_category(s, category_code)
    await _duplicate(s, supplier_org_id, category.code, region)
    d = Designation(
        id=uuid.uuid4(),
        supplier_org_id=supplier_org_id,
        category_code=category.code,
        region_code=region,
        service_address=address,
        **decided,
    )
    s.add(d)
    await s.flush()
    now = clock.now()
    for n, (name, spec, unit, price) in enumerate(items, start=1):
        s.add(
            ServicePriceItem(
                id=uuid.uuid4(),
                designation_id=d.id,
                position=n,
                name=name,
                spec=spec,
                unit=unit,
                price=price,
                created_at=now,
            )
        )
    return d


@retried_if_rolled_back
async def apply(
    db: Database,
    settings: Settings,
    who: Principal,
    category_code: str,
    region_code: str,
    prices: list[PriceItemDraft],
    service_address: str = "",
) -> Designation:
    """A supplier applies to join the designated list (open list); the center reviews it."""
    if who.role != "supplier" or who.org_id is None:
        raise Forbidden("只有供应商可以申请定点", code="forbidden")
    now = clock.now()
    due = settings.work_calendar.add_working_days(clock.local_date(now), REVIEW_WORKING_DAYS)
    async with db.write() as tx:
        await standing.require_good_standing(tx.session, [who.org_id], "申请定点", own=True)
        return await _open(
            tx.session,
            who.org_id,
            category_code,
            region_code,
            prices,
            service_address,
            status=DesignationStatus.APPLIED,
            by_application=True,
            applied_at=now,
            # the end of the last working day of the review period, China time
            review_due_at=datetime.combine(due, datetime.max.time(), clock.SHANGHAI),
        )


def _center(who: Principal) -> uuid.UUID:
    if who.role != "center" or who.org_id is None:
        raise Forbidden("只有集中采购机构可以管理定点供应商", code="forbidden")
    return who.org_id


@retried_if_rolled_back
async def designate(
    db: Database,
    who: Principal,
    credit_code: str,
    category_code: str,
    region_code: str,
    prices: list[PriceItemDraft],
    service_address: str = "",
) -> Designation:
    """The center designates a supplier directly (e.g. after its own selection procedure)."""
    center = _center(who)
    code = code_field(credit_code, "统一社会信用代码", fields.CREDIT_CODE_LENGTH, field="credit_code")
    async with db.write() as tx:
        s = tx.session
        org = await supplier_by_code(s, code)
        now = clock.now()
        return await _open(
            s,
            org.id,
            category_code,
            region_code,
            prices,
            service_address,
            status=DesignationStatus.APPROVED,
            by_application=False,
            applied_at=now,
            reviewed_at=now,
            reviewer_org_id=center,
            review_note="集中采购机构直接确定",
        )


@retried
async def review(
    db: Database, who: Principal, designation_id: uuid.UUID, approve: bool, note: str
) -> Designation:
    center = _center(who)
    note = text_field(note, "审核意见", fields.REASON_MAX, field="note", required=not approve, multiline=True)
    async with db.write() as tx:
        d = await tx.session.get(Designation, designation_id, with_for_update=True)
        if d is None:
            raise NotFound("定点申请不存在", code="designation_not_found")
        if d.status != DesignationStatus.APPLIED:
            raise Conflict(f"该申请{DESIGNATION_STATUS_LABELS[d.status]}，不能再审核", code="not_pending")
        d.status = DesignationStatus.APPROVED if approve else DesignationStatus.REJECTED
        d.reviewed_at, d.reviewer_org_id, d.review_note = clock.now(), center, note
    return d


@retried
async def revoke(db: Database, who: Principal, designation_id: uuid.UUID, reason: str) -> Designation:
    center = _center(who)
    reason = text_field(reason, "撤销原因", fields.REASON_MAX, field="reason", multiline=True)
    async with db.write() as tx:
        d = await tx.session.get(Designation, designation_id, with_for_update=True)
        if d is None:
            raise NotFound("定点供应商不存在", code="designation_not_found")
        if d.status != DesignationStatus.APPROVED:
            raise Conflict("只有定点中的供应商可以撤销", code="not_designated")
        d.status, d.reviewed_at, d.reviewer_org_id, d.review_note = (
            DesignationStatus.REVOKED,
            clock.now(),
            center,
            reason,
        )
    return d


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class Found:
    designation: Designation
    supplier_name: str
    items: list[ServicePriceItem]


async def find(
    s: AsyncSession,
    *,
    region_code: str = "",
    category_code: str = "",
    status: str = DesignationStatus.APPROVED,
    supplier_org_id: uuid.UUID | None = None,
) -> list[Found]:
    """Designated suppliers by region and service 品目 (a prefix: C2312 finds every vehicle service)."""
    # Filters from a query string go into the SQL: what is not a region, a code or a status is refused.
    if region_code.strip() and not re.fullmatch(fields.REGION_CODE_PATTERN, region_code.strip()):
        raise InvalidInput("服务区域应为6位行政区划代码", code="invalid_parameter", parameter="region")
    if category_code.strip() and not re.fullmatch(fields.CATEGORY_CODE_PATTERN, category_code.strip()):
        raise InvalidInput("品目编码格式不正确", code="invalid_parameter", parameter="category")
    if status not in DESIGNATION_STATUS_LABELS:
        raise InvalidInput("定点状态不正确", code="invalid_parameter", parameter="status")
    stmt = (
        select(Designation, Organization.name)
        .join(Organization, Organization.id == Designation.supplier_org_id)
        .where(Designation.status == status)
        .order_by(Designation.category_code, Organization.name)
        .limit(200)
    )
    if region_code.strip():
        stmt = stmt.where(Designation.region_code == region_code.strip())
    if category_code.strip():
        stmt = stmt.where(Designation.category_code.startswith(prefix_of(category_code.strip().upper())))
    if supplier_org_id is not None:
        stmt = stmt.where(Designation.supplier_org_id == supplier_org_id)
    rows = (await s.execute(stmt)).all()
    ids = [r[0].id for r in rows]
    items: dict[uuid.UUID, list[ServicePriceItem]] = {i: [] for i in ids}
    if ids:
        for it in (
            await s.execute(
                select(ServicePriceItem)
                .where(ServicePriceItem.designation_id.in_(ids), ServicePriceItem.active.is_(True))
                .order_by(ServicePriceItem.position)
            )
        ).scalars():
            items[it.designation_id].append(it)
    return [Found(r[0], str(r[1]), items[r[0].id]) for r in rows]


async def get(s: AsyncSession, designation_id: uuid.UUID) -> Found:
    row = (
        await s.execute(
            select(Designation, Organization.name)
            .join(Organization, Organization.id == Designation.supplier_org_id)
            .where(Designation.id == designation_id)
        )
    ).first()
    if row is None:
        raise NotFound("定点供应商不存在", code="designation_not_found")
    items = list(
        (
            await s.execute(
                select(ServicePriceItem)
                .where(ServicePriceItem.designation_id == designation_id, ServicePriceItem.active.is_(True))
                .order_by(ServicePriceItem.position)
            )
        ).scalars()
    )
    return Found(row[0], str(row[1]), items)


# ---------------------------------------------------------------- service orders


@dataclass(frozen=True)
class ServiceOrderRequest:
    designation_id: uuid.UUID
    items: tuple[tuple[uuid.UUID, str], ...]  # (price item, quantity)
    budget_line_id: uuid.UUID
    idempotency_key: str
    service_address: str = ""  # where the service is wanted; default: the unit's address
    note: str = ""


class ServiceItemIn(msgspec.Struct, forbid_unknown_fields=True):
    price_item_id: uuid.UUID
    quantity: fields.QuantityText  # a malformed one: invalid_quantity, as on every way of ordering


class ServiceOrderIn(msgspec.Struct, forbid_unknown_fields=True):
    """A service order as the buyer asks for it (the API's body; the page's quantities per item)."""

    designation_id: uuid.UUID
    items: Annotated[list[ServiceItemIn], msgspec.Meta(max_length=MAX_PRICE_ITEMS)]
    budget_line_id: uuid.UUID
    service_address: fields.Address = ""
    note: fields.Note = ""

    def keyed(self, idempotency_key: str) -> ServiceOrderRequest:
        """The order with the key that makes it idempotent."""
        return ServiceOrderRequest(
            self.designation_id,
            tuple((i.price_item_id, i.quantity) for i in self.items),
            self.budget_line_id,
            idempotency_key,
            self.service_address,
            self.note,
        )


def _digest(req: ServiceOrderRequest) -> str:
    body = {
        "designation_id": str(req.designation_id),
        "items": sorted([str(i), q] for i, q in req.items),
        "budget_line_id": str(req.budget_line_id),
        "service_address": req.service_address,
        "note": req.note,
    }
    return orders.request_digest(body)


async def place_order(
    db: Database, settings: Settings, who: Principal, req: ServiceOrderRequest
) -> tuple[Order, bool]:
    if who.role != "buyer" or who.org_id is None:
        raise Forbidden("只有采购人可以下定点服务订单", code="forbidden")
    if not 1 <= len(req.items) <= MAX_PRICE_ITEMS:
        raise InvalidInput("请选择至少一项服务", code="no_items")
    if len({i for i, _ in req.items}) != len(req.items):
        raise InvalidInput("同一服务项目不能重复出现", code="duplicate_item")
    wanted = [(item_id, quantity_of(raw)) for item_id, raw in req.items]
    digest = _digest(req)

    async def attempt(key: str) -> list[Order]:
        async with db.write() as tx:
            s = tx.session
            # a retry of an order already made is answered with it, whatever changed since
            line, ck, address = await orders.begin(
                s, who, key, digest, req.budget_line_id, req.service_address
            )
            # a shared lock: a revocation waits for this order (or this order sees it)
            d = await s.get(Designation, req.designation_id, with_for_update={"read": True})
            if d is None or d.status != DesignationStatus.APPROVED:
                raise RuleViolation("该供应商不是定点供应商（或已被撤销），不能下单", code="not_designated")
            prices = {
                p.id: p
                for p in (
                    await s.execute(
                        select(ServicePriceItem).where(
                            ServicePriceItem.designation_id == d.id, ServicePriceItem.active.is_(True)
                        )
                    )
                ).scalars()
            }
            drafts = []
            for item_id, q in wanted:
                p = prices.get(item_id)
                if p is None:
                    raise InvalidInput("所选服务项目不在该定点供应商的价格清单中", code="unknown_price_item")
                spec = f"{p.spec}" if p.spec else ""
                drafts.append(
                    orders.LineDraft(
                        p.name, "", spec, d.category_code, CATALOG_VERSION, p.unit, q, p.price, p.price
                    )
                )
            await orders.require_active_suppliers(s, [d.supplier_org_id])
            order = await orders.open_order(
                s,
                settings,
                who,
                line,
                ck,
                d.supplier_org_id,
                drafts,
                mode="designated",
                address=address,
                note=req.note,
                source_id=d.id,
            )
            return [order]

    placed, replayed = await orders.idempotent(db, who, req.idempotency_key, attempt, digest)
    return placed[0], replayed


def as_dict(f: Found) -> dict[str, Any]:
    d = f.designation
    return {
        "id": str(d.id),
        "supplier_name": f.supplier_name,
        "category_code": d.category_code,
        "region_code": d.region_code,
        "status": d.status,
        "status_label": DESIGNATION_STATUS_LABELS[d.status],
        "service_address": d.service_address,
        "items": [
            {"id": str(i.id), "name": i.name, "spec": i.spec, "unit": i.unit, "price": str(i.price)}
            for i in f.items
        ],
    }

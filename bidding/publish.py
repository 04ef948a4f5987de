"""Publishing an inquiry or a reverse auction: the shape a buyer sends (the API and the page form
decode into `ProcedureIn`), its checks, the budget reservation and the scheduled close."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding import rules
from bidding.models import Procedure, ProcedureInvite, ProcedureItem, ProcedureKind, ProcedureStatus
from bidding.service import schedule_close
from catalog.agreement_orders import second_stage_ceiling
from catalog.categories import CATALOG_VERSION
from catalog.models import Category
from mall import budgets
from mall.budgets import scope as budget_scope
from mall.budgets.models import BudgetLine
from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, retried_if_rolled_back
from mall.core.errors import InvalidInput, NotFound, RuleViolation
from mall.core.models import Organization, OrgKind, OrgStatus
from mall.core.money import MoneyError, money, whole_quantity
from mall.core.settings import Settings
from mall.notify import notices
from mall.sanctions import standing

MIN_OPEN = timedelta(minutes=10)
MAX_OPEN = timedelta(days=30)
# The platform's minimum of participants when a caller names none (settings.min_participants).
MIN_PARTICIPANTS = 3
MAX_PARTICIPANTS = 20
MAX_ITEMS = 50


class ItemIn(msgspec.Struct, forbid_unknown_fields=True):
    category_code: fields.CategoryCode
    item_name: fields.Name
    quantity: fields.Quantity
    unit: fields.Unit
    spec: fields.Spec = ""


class ProcedureIn(msgspec.Struct, forbid_unknown_fields=True):
    # a word the service checks, so that another one is refused with its own code (invalid_kind)
    kind: Annotated[
        str,
        msgspec.Meta(max_length=fields.CHOICE_MAX, description="inquiry（在线询价）| auction（反向竞价）"),
    ]
    title: fields.Name
    budget_line_id: uuid.UUID
    ceiling: fields.Amount
    ends_at: datetime  # with its time zone
    items: Annotated[list[ItemIn], msgspec.Meta(max_length=MAX_ITEMS)]
    starts_at: datetime | None = None  # default: now
    # yuan, or percent; the auction's rules check it (invalid_auction_rules)
    decrement: Annotated[str, msgspec.Meta(max_length=fields.AMOUNT_MAX)] = "0"
    decrement_is_percent: bool = False
    beat_lowest: bool = False
    # at least the platform's minimum (settings.min_participants), which is the default; the service
    # refuses fewer (min_participants_too_low) and more than anyone could reach
    min_participants: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None
    # supplier organization ids (at least min_participants active suppliers); omitted: suppliers live in the 品目
    invited: Annotated[list[uuid.UUID], msgspec.Meta(max_length=1000)] | None = None
    agreement_id: uuid.UUID | None = None  # 二次竞价: only this framework agreement's entered suppliers
    # 小微企业价格扣除: small and micro suppliers ranked at their price less MALL_SME_PRICE_DEDUCTION
    sme_deduction: bool = False


def _number(kind: str) -> str:
    prefix = "XJ" if kind == ProcedureKind.INQUIRY else "JJ"
    now = clock.local_date(clock.now())
    return f"{prefix}{now:%Y%m%d}{uuid.uuid4().int % 10**8:08d}"


def participants_wanted(data: ProcedureIn, platform_minimum: int) -> int:
    """The procedure's minimum of participants: the platform's, or more if the buyer asks (400 naming
    `min_participants` for fewer, or for more than anyone could reach)."""
    wanted = platform_minimum if data.min_participants is None else data.min_participants
    if wanted < platform_minimum:
        raise InvalidInput(
            f"最少有效供应商数不能少于 {platform_minimum} 家（平台规定，采购人只能提高）",
            code="min_participants_too_low",
            field="min_participants",
            minimum=platform_minimum,
        )
    if wanted > max(MAX_PARTICIPANTS, platform_minimum):
        raise InvalidInput(
            f"最少有效供应商数不能超过 {max(MAX_PARTICIPANTS, platform_minimum)} 家",
            code="min_participants_invalid",
            field="min_participants",
        )
    return wanted


async def active_suppliers(s: AsyncSession, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `ids` are active supplier organizations (the only ones a procedure may invite)."""
    return set(
        (
            await s.execute(
                select(Organization.id).where(
                    Organization.id.in_(ids),
                    Organization.kind == OrgKind.SUPPLIER.value,
                    Organization.status == OrgStatus.ACTIVE,
                    standing.not_barred(Organization.id),
                )
            )
        ).scalars()
    )


async def _check_invited(s: AsyncSession, invited: list[uuid.UUID], wanted: int) -> list[uuid.UUID]:
    """An invitation names at least `wanted` distinct active supplier organizations, and nothing else
    (400 naming `invited`): otherwise a "competition" could be run with one supplier."""
    ids = sorted(set(invited))
    if len(ids) < wanted:
        raise InvalidInput(
            f"邀请的供应商不足 {wanted} 家（至少邀请 {wanted} 家不同的供应商）",
            code="too_few_invited",
            field="invited",
            minimum=wanted,
        )
    await standing.require_good_standing(s, ids, "被邀请参加询价或竞价")
    found = await active_suppliers(s, ids)
    unknown = [str(i) for i in ids if i not in found]
    if unknown:
        raise InvalidInput(
            f"邀请名单中有 {len(unknown)} 个编号不是可参与的供应商（不存在、不是供应商或已冻结）",
            code="invited_invalid",
            field="invited",
            invalid=unknown,
        )
    return ids


def _decrement(raw: str) -> Decimal:
    try:
        value = Decimal(str(raw).strip() or "0")
    except InvalidOperation:
        raise InvalidInput("最小降价幅度格式不正确", code="procedure_invalid", field="decrement") from None
    return value


def _items(data: ProcedureIn, errors: list[str]) -> list[tuple[ItemIn, Decimal]]:
    """The items as stored (text checked and trimmed) with their whole quantities; what is wrong with
    them goes to `errors`."""
    if not 1 <= len(data.items) <= MAX_ITEMS:
        errors.append(f"请填写1至{MAX_ITEMS}项采购需求")
    items: list[tuple[ItemIn, Decimal]] = []
    for n, raw in enumerate(data.items, start=1):
        item = ItemIn(
            category_code=fields.text(
                raw.category_code, f"第{n}项品目编码", fields.CATEGORY_CODE_MAX, field="category_code"
            ).upper(),
            item_name=fields.text(raw.item_name, f"第{n}项品名", fields.NAME_MAX, field="item_name"),
            spec=fields.text(raw.spec, f"第{n}项技术要求", fields.SPEC_MAX, multiline=True, field="spec"),
            quantity=raw.quantity,
            unit=fields.text(raw.unit, f"第{n}项单位", fields.UNIT_MAX, field="unit"),
        )
        try:
            q = whole_quantity(item.quantity)
        except MoneyError:
            errors.append(f"第{n}项数量应为正整数")
            continue
        if not item.item_name or not item.unit:
            errors.append(f"第{n}项请填写品名和单位")
        items.append((item, q))
    return items


@retried_if_rolled_back
async def create(
    db: Database,
    who: Principal,
    data: ProcedureIn,
    *,
    open_tender_threshold: Decimal,
    region_code: str,
    min_participants: int = MIN_PARTICIPANTS,
    sme_deduction: Decimal = Decimal("0.10"),
) -> Procedure:
    """A buyer publishes an inquiry or an auction: checked, budget reserved, visible at once.
    `min_participants` is the platform's minimum (settings.min_participants)."""
    for t in (data.ends_at, data.starts_at):
        if t is not None and t.tzinfo is None:
            raise InvalidInput("时间须带时区，如 2026-12-01T10:00:00+08:00", code="invalid_parameter")
    errors: list[str] = []
    if data.kind not in (ProcedureKind.INQUIRY, ProcedureKind.AUCTION):
        raise InvalidInput(
            "采购方式应为 inquiry（在线询价）或 auction（反向竞价）", code="invalid_kind", field="kind"
        )
    wanted = participants_wanted(data, min_participants)
    decrement = _decrement(data.decrement)
    title = fields.text(data.title, "项目名称", fields.NAME_MAX, field="title")
    if len(title) < 4:
        errors.append("项目名称应为4至200个字符")
    try:
        ceiling = money(data.ceiling)
    except MoneyError:
        errors.append("最高限价格式不正确")
        ceiling = Decimal(0)
    if ceiling <= 0:
        errors.append("最高限价必须大于0")
    elif ceiling >= open_tender_threshold:
        errors.append(f"最高限价应低于公开招标数额标准 {open_tender_threshold:,.0f} 元（达到标准须公开招标）")
    now = clock.now()
    starts_at = data.starts_at or now
    if starts_at < now - timedelta(minutes=1):
        errors.append("开始时间不能早于现在")
    if data.ends_at - max(starts_at, now) < MIN_OPEN:
        # said in China time: a browser elsewhere shows its own clock, the platform keeps China's
        shown = data.ends_at.astimezone(clock.SHANGHAI).strftime("%Y-%m-%d %H:%M")
        current = max(starts_at, now).astimezone(clock.SHANGHAI).strftime("%Y-%m-%d %H:%M")
        errors.append(
            f"截止时间（北京时间 {shown}）应在开始时间（北京时间 {current}）10 分钟以后；"
            "截止时间按北京时间（UTC+8）填写，与本机所在时区无关"
        )
    if data.ends_at - starts_at > MAX_OPEN:
        errors.append("报价期不能超过30天")
    items = _items(data, errors)
    if errors:
        raise InvalidInput("；".join(errors), code="procedure_invalid")
    if data.kind == ProcedureKind.AUCTION:
        # the rules object checks the decrement settings (and says what is wrong, in Chinese)
        rules.AuctionRules(
            ceiling=ceiling,
            decrement=decrement,
            decrement_is_percent=data.decrement_is_percent,
            beat_lowest=data.beat_lowest,
            min_participants=wanted,
        )
    assert who.org_id is not None
    async with db.write() as tx:
        s = tx.session
        line = await s.get(BudgetLine, data.budget_line_id)
        if line is None or line.org_id != who.org_id:
            raise NotFound("预算指标不存在", code="budget_line_not_found")
        for item, _q in items:
            category = await s.get(Category, (CATALOG_VERSION, item.category_code))
            if category is None:
                raise InvalidInput(f"品目编码 {item.category_code} 不在品目目录中", code="unknown_category")
        budget_scope.check(
            line.project_code, line.project_name, line.scope, (i.category_code for i, _q in items)
        )
        invited = None if data.invited is None else await _check_invited(s, data.invited, wanted)
        eligibility = "invited" if invited is not None else "category"
        if data.agreement_id is not None:
            invited = await _second_stage(s, data, ceiling, wanted, [(i.category_code, q) for i, q in items])
            eligibility = "agreement"
        p = Procedure(
            id=uuid.uuid4(),
            number=_number(data.kind),
            kind=data.kind,
            status=ProcedureStatus.OPEN if starts_at <= now else ProcedureStatus.PUBLISHED,
            title=title,
            buyer_org_id=who.org_id,
            buyer_user_id=who.user_id,
            budget_line_id=line.id,
            region_code=region_code,
            ceiling=ceiling,
            reserved_amount=ceiling,
            decrement=str(decrement),
            decrement_is_percent=data.decrement_is_percent,
            beat_lowest=data.beat_lowest,
            sme_deduction=sme_deduction if data.sme_deduction else None,
            min_participants=wanted,
            eligibility=eligibility,
            agreement_id=data.agreement_id,
            starts_at=starts_at,
            scheduled_end=data.ends_at,
            ends_at=data.ends_at,
            created_at=now,
            published_at=now,
        )
        s.add(p)
        for n, (item, q) in enumerate(items, start=1):
            s.add(
                ProcedureItem(
                    procedure_id=p.id,
                    line_no=n,
                    category_code=item.category_code,
                    item_name=item.item_name,
                    spec=item.spec,
                    quantity=q,
                    unit=item.unit,
                )
            )
        for supplier_id in sorted(set(invited or [])):
            s.add(ProcedureInvite(procedure_id=p.id, supplier_org_id=supplier_id))
        if invited:
            notices.invited(s, invited, p.id, p.kind, p.title, p.ends_at)
        await s.flush()
        await budgets.lock_line(s, line.id)
        await budgets.reserve(s, line.id, ceiling, None, procedure_id=p.id)
        schedule_close(tx, p.id, p.ends_at)
    return p


async def create_under(db: Database, settings: Settings, who: Principal, data: ProcedureIn) -> Procedure:
    """`create` under the platform's settings: its open-tender threshold, region (for a buyer whose
    organization names none) and minimum of participants."""
    # The buying organization's region (procedures made before 2026-12-07 carry the platform's).
    async with db.read() as s:
        region = await s.scalar(select(Organization.region_code).where(Organization.id == who.org_id))
    return await create(
        db,
        who,
        data,
        open_tender_threshold=settings.open_tender_threshold,
        region_code=region or settings.region_code,
        min_participants=settings.min_participants,
        sme_deduction=settings.sme_price_deduction,
    )


async def _second_stage(
    s: AsyncSession,
    data: ProcedureIn,
    ceiling: Decimal,
    wanted: int,
    quantities: list[tuple[str, Decimal]],
) -> list[uuid.UUID]:
    """A second-stage competition under a framework agreement: the agreement's entered suppliers are
    invited. Like an explicit invitation, at least the procedure's minimum of them must be able to
    take part, or it is refused now, not at its deadline; it ends within the agreement's term, and
    its ceiling is at most the agreement prices' total."""
    assert data.agreement_id is not None
    agreement, highest, invited = await second_stage_ceiling(s, data.agreement_id, quantities)
    able = len(await active_suppliers(s, invited))
    if able < wanted:
        raise InvalidInput(
            f"框架协议 {agreement.number} 的有效入围供应商只有 {able} 家，"
            f"少于最少有效供应商数 {wanted} 家，不能发起二次竞价",
            code="too_few_entered",
            field="agreement_id",
            minimum=wanted,
        )
    if clock.local_date(data.ends_at) > agreement.ends_on:
        raise RuleViolation(
            f"二次竞价须在框架协议期内结束（协议截止 {agreement.ends_on.isoformat()}）",
            code="ends_after_agreement",
        )
    if ceiling > highest:
        raise RuleViolation(
            f"二次竞价的最高限价不得高于协议价合计 {highest:,.2f} 元（框架协议 {agreement.number}）",
            code="above_agreement_price",
            max_allowed=str(highest),
        )
    return invited

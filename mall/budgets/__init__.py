"""Budget lines (无预算不采购): reserve on order, release on cancel, consume on payment.

Every change is one conditional UPDATE, so concurrent orders can never overspend a line on any
database: the row only changes if the money is still there when the statement runs.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import BigInteger, Table, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mall import accounts
from mall.budgets import scope as budget_scope
from mall.budgets.models import BudgetAdjustment, BudgetLine, BudgetMovement
from mall.core import audit, clock, fields
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.errors import Conflict, InvalidInput, NotFound, RuleViolation
from mall.core.models import OrgKind
from mall.core.money import MoneyError, money, to_cents, typed_negative

_T = cast(Table, BudgetLine.__table__)


async def lines_of(session: AsyncSession, org_id: uuid.UUID) -> list[BudgetLine]:
    rows = await session.execute(
        select(BudgetLine)
        .where(BudgetLine.org_id == org_id)
        .order_by(BudgetLine.fiscal_year.desc(), BudgetLine.project_code)
    )
    return list(rows.scalars())


async def get_line(session: AsyncSession, line_id: uuid.UUID, org_id: uuid.UUID) -> BudgetLine:
    line = await session.get(BudgetLine, line_id)
    if line is None or line.org_id != org_id:
        raise NotFound("预算指标不存在", code="budget_line_not_found")
    return line


async def lock_line(session: AsyncSession, line_id: uuid.UUID) -> None:
    """Take the budget line's row lock now (PostgreSQL; SQLite's write transaction already excludes
    other writers), so every path locks the line before any listing. `FOR NO KEY UPDATE`: it excludes
    every other writer of the line, but not the key-share lock another transaction's foreign-key
    check takes when it inserts a row naming the line (an order, a movement)."""
    await session.execute(select(_T.c.id).where(_T.c.id == line_id).with_for_update(key_share=True))


async def reserve(
    session: AsyncSession,
    line_id: uuid.UUID,
    amount: Decimal,
    order_id: uuid.UUID | None,
    *,
    procedure_id: uuid.UUID | None = None,
) -> None:
    cents = _cents(amount)
    if not await _update(
        session, line_id, _T.c.amount - _T.c.reserved - _T.c.consumed >= cents, reserved=_T.c.reserved + cents
    ):
        line = (
            await session.execute(
                select(BudgetLine).where(BudgetLine.id == line_id).execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        available = line.available if line else Decimal(0)
        raise RuleViolation(
            f"预算指标可用余额不足：可用 {available:,.2f} 元，本单需 {amount:,.2f} 元",
            code="budget_insufficient",
        )
    _move(session, line_id, order_id, "reserve", amount, procedure_id)


async def release(
    session: AsyncSession,
    line_id: uuid.UUID,
    amount: Decimal,
    order_id: uuid.UUID | None,
    *,
    procedure_id: uuid.UUID | None = None,
) -> None:
    cents = _cents(amount)
    if not await _update(session, line_id, _T.c.reserved >= cents, reserved=_T.c.reserved - cents):
        raise Conflict("预算占用记录异常，无法释放", code="budget_release_failed")
    _move(session, line_id, order_id, "release", amount, procedure_id)


async def consume(
    session: AsyncSession, line_id: uuid.UUID, reserved: Decimal, paid: Decimal, order_id: uuid.UUID
) -> None:
    """Turn a reservation into spending. `paid` may be below `reserved` (a lower confirmed price)."""
    if paid > reserved:
        raise RuleViolation("支付金额超过预算占用金额", code="payment_exceeds_reservation")
    r, p = _cents(reserved), _cents(paid)
    if not await _update(
        session, line_id, _T.c.reserved >= r, reserved=_T.c.reserved - r, consumed=_T.c.consumed + p
    ):
        raise Conflict("预算占用记录异常，无法支付", code="budget_consume_failed")
    if reserved != paid:
        _move(session, line_id, order_id, "release", reserved - paid)
    _move(session, line_id, order_id, "consume", paid)


async def shrink(session: AsyncSession, line_id: uuid.UUID, by: Decimal, order_id: uuid.UUID) -> None:
    """Release part of a reservation (the supplier confirmed at a lower price)."""
    if by > 0:
        await release(session, line_id, by, order_id)


async def _update(session: AsyncSession, line_id: uuid.UUID, condition: Any, **values: Any) -> bool:
    """The one conditional UPDATE of a line: True if the money was there and the row changed."""
    result = await session.execute(update(_T).where(_T.c.id == line_id, condition).values(**values))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _move(
    session: AsyncSession,
    line_id: uuid.UUID,
    order_id: uuid.UUID | None,
    kind: str,
    amount: Decimal,
    procedure_id: uuid.UUID | None = None,
) -> None:
    session.add(
        BudgetMovement(
            budget_line_id=line_id,
            order_id=order_id,
            procedure_id=procedure_id,
            kind=kind,
            amount=amount,
            at=clock.now(),
        )
    )


def _cents(amount: Decimal) -> Any:
    # Bound as a plain integer: the columns hold 分, and the Money type must not convert twice.
    return literal(to_cents(amount), BigInteger())


async def add_budget_line(
    db: Database,
    who: Principal | None,
    org_id: uuid.UUID,
    fiscal_year: int,
    project_code: str,
    project_name: str,
    amount: str,
    scope: str = "",
) -> BudgetLine:
    """An approved budget (预算指标) of a budget unit, as the finance system hands it over, with the
    品目 it may buy (`scope`: mall.budgets.scope)."""
    code = fields.text(project_code, "项目编码", fields.PROJECT_CODE_MAX, field="project_code")
    name = fields.text(project_name, "项目名称", fields.NAME_MAX, field="project_name")
    errors = []
    if not re.fullmatch(r"[0-9A-Za-z\-_.]{2,40}", code):
        errors.append("项目编码应为2至40位字母、数字或 - _ .")
    if len(name) < 2:
        errors.append("请填写项目名称")
    if not 2000 <= fiscal_year <= 2100:
        errors.append("预算年度不正确")
    try:
        value = money(amount)
        if value <= 0:
            errors.append("预算金额须大于 0")
    except MoneyError:
        errors.append(
            "预算金额须大于 0" if typed_negative(amount) else "预算金额格式不正确，应为不超过两位小数的金额"
        )
        value = Decimal(0)
    try:
        scope = budget_scope.parse(scope)
    except InvalidInput as exc:
        errors.append(exc.detail)
    if errors:
        raise InvalidInput("；".join(errors), code="budget_line_invalid")
    async with db.write() as tx:
        org = await accounts.organization(tx, org_id)
        if org.kind != OrgKind.BUDGET_UNIT:
            raise InvalidInput("只有预算单位可以有预算指标", code="not_a_budget_unit")
        exists = await tx.session.scalar(
            select(BudgetLine.id).where(
                BudgetLine.org_id == org_id,
                BudgetLine.fiscal_year == fiscal_year,
                BudgetLine.project_code == code,
            )
        )
        if exists:
            raise Conflict("该单位本年度已有相同项目编码的预算指标", code="budget_line_exists")
        line = BudgetLine(
            id=uuid.uuid4(),
            org_id=org_id,
            fiscal_year=fiscal_year,
            project_code=code,
            project_name=name,
            amount=value,
            scope=scope,
            reserved=Decimal(0),
            consumed=Decimal(0),
            created_at=clock.now(),
        )
        tx.session.add(line)
        audit.record(
            tx,
            who,
            "budget_line_added",
            target_kind="budget_line",
            target=f"{org.credit_code}/{fiscal_year}/{code}",
            detail=f"{org.name}：{name} {value} 元，品目范围 {budget_scope.describe(scope)}",
            after={
                "fiscal_year": fiscal_year,
                "project_code": code,
                "project_name": name,
                "amount": value,
                "scope": scope,
            },
        )
    return line


ADJUSTMENT_KINDS = {"increase": "追加", "decrease": "调减"}


async def adjust_budget_line(
    db: Database, who: Principal, line_id: uuid.UUID, kind: str, amount: str, reason: str
) -> BudgetLine:
    """追加 or 调减 a budget line's approved amount, as the finance system decides it. A decrease never
    takes the amount below what is reserved and spent (the same conditional UPDATE as a reservation),
    and each change is kept with the amounts before and after, its reason and who made it."""
    if kind not in ADJUSTMENT_KINDS:
        raise InvalidInput(
            "调整类型应为 increase（追加）或 decrease（调减）", code="budget_adjustment_invalid"
        )
    why = fields.text(reason, "调整原因", fields.REASON_MAX, min_length=1, field="reason")
    try:
        value = money(amount)
    except MoneyError:
        value = Decimal(-1)
    if value <= 0:
        raise InvalidInput("调整金额须大于 0，最多两位小数", code="budget_adjustment_invalid")
    cents = _cents(value)
    async with db.write() as tx:
        s = tx.session
        await lock_line(s, line_id)
        line = (
            await s.execute(
                select(BudgetLine).where(BudgetLine.id == line_id).execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if line is None:
            raise NotFound("预算指标不存在", code="budget_line_not_found")
        before = line.amount
        if kind == "increase":
            await _update(s, line_id, _T.c.amount >= 0, amount=_T.c.amount + cents)
        elif not await _update(
            s, line_id, _T.c.amount - cents >= _T.c.reserved + _T.c.consumed, amount=_T.c.amount - cents
        ):
            raise RuleViolation(
                f"调减后的指标金额不能低于已冻结与已支付的合计 {line.reserved + line.consumed:,.2f} 元"
                f"（可调减至多 {line.available:,.2f} 元）",
                code="budget_decrease_too_large",
            )
        await s.refresh(line)
        s.add(
            BudgetAdjustment(
                budget_line_id=line_id,
                kind=kind,
                amount=value,
                amount_before=before,
                amount_after=line.amount,
                reason=why,
                by_user_id=who.user_id,
                at=clock.now(),
            )
        )
        audit.record(
            tx,
            who,
            "budget_line_adjusted",
            target_kind="budget_line",
            target=f"{line.fiscal_year}/{line.project_code}",
            detail=f"{ADJUSTMENT_KINDS[kind]} {value:,.2f} 元：{before:,.2f} → {line.amount:,.2f} 元；{why}",
            before={"amount": before},
            after={"amount": line.amount},
        )
    return line


async def adjustments_of(
    session: AsyncSession, line_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[BudgetAdjustment]]:
    """Each line's adjustments, the earliest first."""
    out: dict[uuid.UUID, list[BudgetAdjustment]] = {i: [] for i in line_ids}
    if line_ids:
        rows = await session.execute(
            select(BudgetAdjustment)
            .where(BudgetAdjustment.budget_line_id.in_(line_ids))
            .order_by(BudgetAdjustment.at, BudgetAdjustment.id)
        )
        for a in rows.scalars():
            out[a.budget_line_id].append(a)
    return out

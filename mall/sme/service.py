"""Filing a 中小企业声明函 and reading them (mall.sme).

A supplier states its industry and last year's figures; the mall classifies it by the thresholds of
工信部联企业〔2011〕300号 and keeps the declaration with the text it signs (the 声明函 of 财库〔2020〕46号),
from the day it is filed for a year. A new one supersedes it from its own day on; the old one is kept.
Orders record the size in force when they are made."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import audit, clock
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.errors import Forbidden, InvalidInput
from mall.core.models import Organization
from mall.sme import rules
from mall.sme.models import SmeDeclaration

READERS = ("center", "regulator")
MAX_FIGURE = Decimal("99999999")  # 万元, or persons


def _figure(raw: str, label: str, errors: list[str], *, whole: bool = False) -> Decimal | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        errors.append(f"{label}应为数字")
        return None
    if not value.is_finite() or value < 0 or value > MAX_FIGURE:
        errors.append(f"{label}应为 0 至 {MAX_FIGURE} 之间的数")
        return None
    if whole and value != value.to_integral_value():
        errors.append(f"{label}应为整数")
        return None
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        errors.append(f"{label}最多两位小数")
        return None
    return value


def statement_of(
    org: Organization, t: rules.Thresholds, values: dict[str, Decimal | None], size: str, day: str
) -> str:
    figures = "，".join(
        f"{rules.INDICATORS[k].split('（')[0]} {values[k]}{'人' if k == 'employees' else '万元'}"
        for k in (t.first, t.second)
        if k and values.get(k) is not None
    )
    return (
        f"中小企业声明函：本公司（{org.name}，统一社会信用代码 {org.credit_code}）郑重声明，根据《政府采购促进中小企业发展"
        f"管理办法》（财库〔2020〕46号）的规定，本公司属于{t.label}；上一年度{figures}，"
        f"按《中小企业划型标准规定》（工信部联企业〔2011〕300号）划型为{rules.SIZES[size]}。"
        f"本公司对上述声明内容的真实性负责，如有虚假，将依法承担相应责任。（{day}）"
    )


async def declare(
    db: Database, who: Principal, industry: str, employees: str, revenue: str, assets: str
) -> SmeDeclaration:
    """The supplier's own declaration, from today for a year (400 `sme_invalid` naming what is wrong)."""
    if who.role != "supplier" or who.org_id is None:
        raise Forbidden("只有供应商可以出具中小企业声明函", code="forbidden")
    t = rules.thresholds().get((industry or "").strip())
    if t is None:
        raise InvalidInput("请选择所属行业", code="sme_invalid", field="industry")
    errors: list[str] = []
    values = {
        "employees": _figure(employees, "从业人员", errors, whole=True),
        "revenue": _figure(revenue, "营业收入", errors),
        "assets": _figure(assets, "资产总额", errors),
    }
    for k in (t.first, t.second):
        if k and values[k] is None and not any(rules.INDICATORS[k].split("（")[0] in e for e in errors):
            errors.append(f"{t.label}按{rules.INDICATORS[k]}划型，请填写")
    if errors:
        raise InvalidInput("；".join(errors), code="sme_invalid")
    size = rules.classify(t.industry, values)
    now = clock.now()
    today = clock.local_date(now)
    async with db.write() as tx:
        org = await tx.session.get(Organization, who.org_id)
        assert org is not None
        d = SmeDeclaration(
            id=uuid.uuid4(),
            org_id=org.id,
            industry=t.industry,
            employees=int(values["employees"]) if values["employees"] is not None else None,
            revenue=values["revenue"],
            assets=values["assets"],
            size=size,
            declared_on=today,
            valid_until=today + timedelta(days=rules.VALID_DAYS - 1),
            source="declared",
            statement=statement_of(org, t, values, size, today.isoformat()),
            declared_at=now,
            declared_by=who.user_id,
        )
        tx.session.add(d)
        audit.record(
            tx,
            who,
            "sme_declared",
            target_kind="organization",
            target=org.credit_code,
            detail=f"{t.label}，{rules.SIZES[size]}",
            after={"industry": t.industry, "size": size, "valid_until": d.valid_until.isoformat()},
        )
    return d


async def listed(
    s: AsyncSession, who: Principal, *, org_id: uuid.UUID | None = None, page: int = 1, per_page: int = 20
) -> tuple[int, list[tuple[SmeDeclaration, str]]]:
    """A supplier's own declarations; the center and the regulator see every supplier's."""
    where: list[ColumnElement[bool]] = []
    if who.role == "supplier" and who.org_id is not None:
        where.append(SmeDeclaration.org_id == who.org_id)
    elif who.role in READERS:
        if org_id is not None:
            where.append(SmeDeclaration.org_id == org_id)
    else:
        raise Forbidden("无权查看中小企业声明函", code="forbidden")
    total = await s.scalar(select(func.count()).select_from(SmeDeclaration).where(*where)) or 0
    rows = (
        await s.execute(
            select(SmeDeclaration, Organization.name)
            .join(Organization, Organization.id == SmeDeclaration.org_id)
            .where(*where)
            .order_by(SmeDeclaration.declared_at.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    ).all()
    return int(total), [(r[0], r[1]) for r in rows]

"""Reading the audit log: the audit administrator's filters (who, what, when) and the search behind
the log's page and API. Writing and checking the log are in mall/core/audit.py."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock, fields
from mall.core.audit import ACTIONS
from mall.core.errors import InvalidInput
from mall.core.models import AuditEntry


@dataclasses.dataclass(frozen=True)
class Filter:
    actor: str = ""  # username, exact (the actor's, or the account a failed login named)
    action: str = ""  # an action code
    target: str = ""  # part of the target
    ip: str = ""  # client address, exact
    outcome: str = ""  # "ok" | "failed" | ""
    date_from: date | None = None  # local (Asia/Shanghai) days, inclusive
    date_to: date | None = None

    def params(self) -> dict[str, str]:
        """The filter as query parameters (for links to further pages, and the audit entry of a read)."""
        out = {
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "ip": self.ip,
            "outcome": self.outcome,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }
        return {k: v for k, v in out.items() if v}


def _day(raw: str, name: str) -> date | None:
    raw = fields.text(raw, name, fields.DATE_MAX, field=name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            f"参数 {name} 应为 YYYY-MM-DD 格式的日期", code="invalid_parameter", parameter=name
        ) from None


def parse_filter(params: Mapping[str, str]) -> Filter:
    """Query parameters as a filter; anything malformed is refused naming the parameter (400)."""
    action = fields.text(params.get("action", ""), "action", fields.CHOICE_MAX * 2, field="action")
    if action and action not in ACTIONS:
        raise InvalidInput("参数 action 不是已知的操作代码", code="invalid_parameter", parameter="action")
    outcome = fields.text(params.get("outcome", ""), "outcome", fields.CHOICE_MAX, field="outcome")
    if outcome not in ("", "ok", "failed"):
        raise InvalidInput("参数 outcome 应为 ok 或 failed", code="invalid_parameter", parameter="outcome")
    f = Filter(
        actor=fields.text(params.get("actor", ""), "actor", fields.USERNAME_MAX, field="actor").lower(),
        action=action,
        target=fields.text(params.get("target", ""), "target", fields.NAME_MAX, field="target"),
        ip=fields.text(params.get("ip", ""), "ip", 64, field="ip"),
        outcome=outcome,
        date_from=_day(params.get("from", ""), "from"),
        date_to=_day(params.get("to", ""), "to"),
    )
    if f.date_from and f.date_to and f.date_from > f.date_to:
        raise InvalidInput("起始日期不能晚于截止日期", code="invalid_parameter", parameter="from")
    return f


def _local_midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=clock.SHANGHAI).astimezone(UTC)


async def search(session: AsyncSession, f: Filter, page: int, per_page: int) -> tuple[int, list[AuditEntry]]:
    """Entries matching the filter, newest first."""
    stmt = select(AuditEntry)
    if f.actor:
        stmt = stmt.where(
            or_(
                AuditEntry.actor_username == f.actor,
                (AuditEntry.target_kind == "user") & (AuditEntry.target == f.actor),
            )
        )
    if f.action:
        stmt = stmt.where(AuditEntry.action == f.action)
    if f.target:
        pattern = "%" + f.target.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(AuditEntry.target.like(pattern, escape="\\"))
    if f.ip:
        stmt = stmt.where(AuditEntry.ip == f.ip)
    if f.outcome:
        stmt = stmt.where(AuditEntry.succeeded.is_(f.outcome == "ok"))
    if f.date_from:
        stmt = stmt.where(AuditEntry.at >= _local_midnight(f.date_from))
    if f.date_to:
        stmt = stmt.where(AuditEntry.at < _local_midnight(f.date_to + timedelta(days=1)))
    total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await session.execute(
        stmt.order_by(AuditEntry.seq.desc()).offset((page - 1) * per_page).limit(per_page)
    )
    return total, list(rows.scalars())


def parsed_state(raw: str | None) -> Any:
    return None if raw is None else json.loads(raw)

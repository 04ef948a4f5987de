"""Credit checks of suppliers (信用核查) at registration and at each order, with their evidence.

The checker is pluggable (`MALL_CREDIT_CHECKER`):
- `blacklist` (the default) reads the blacklist the system administrator imports from CSV
  (`mall.credit.blacklist`), each entry with its source, its date and its reason;
- `http` asks a national credit service as well, where a province has access to one: at registration
  it is asked then and there; an order, which must not wait on a remote service, reads the service's
  latest answer about the supplier, kept as a check of its own.

A blacklisted supplier is refused at registration (422 `supplier_blacklisted`, the refused check kept
with no organization) and at each order (the same code). Every order keeps the check it passed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import httpx
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock
from mall.core.errors import RuleViolation, Unavailable
from mall.core.models import Organization
from mall.core.settings import Settings
from mall.credit.models import BlacklistEntry, CreditCheck

REFUSED_CODE = "supplier_blacklisted"


@dataclass(frozen=True)
class Outcome:
    checker: str
    listed: bool
    records: list[dict[str, Any]] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        return {"checker": self.checker, "records": self.records}


class Checker(Protocol):
    name: str

    async def check(self, s: AsyncSession, credit_code: str, today: date) -> Outcome: ...


def entry_record(e: BlacklistEntry) -> dict[str, Any]:
    return {
        "entry_id": str(e.id),
        "source": e.source,
        "name": e.name,
        "reason": e.reason,
        "listed_on": e.listed_on.isoformat(),
        "until": e.until.isoformat() if e.until else None,
    }


class BlacklistChecker:
    """The administrator's blacklist: entries of the newest import of each source, in force today."""

    name = "blacklist"

    async def check(self, s: AsyncSession, credit_code: str, today: date) -> Outcome:
        rows = (
            await s.execute(
                select(BlacklistEntry)
                .where(
                    BlacklistEntry.credit_code == credit_code,
                    BlacklistEntry.superseded_at.is_(None),
                    BlacklistEntry.listed_on <= today,
                    or_(BlacklistEntry.until.is_(None), BlacklistEntry.until >= today),
                )
                .order_by(BlacklistEntry.listed_on, BlacklistEntry.source)
            )
        ).scalars()
        records = [entry_record(e) for e in rows]
        return Outcome(self.name, bool(records), records)


class HttpChecker:
    """A national credit service: GET <url>?credit_code=… with a bearer token; the answer is JSON
    {"listed": bool, "records": [{"source", "reason", "listed_on", "until"}...]}. A service that
    fails or answers otherwise is an error (503 `credit_check_unavailable`): nobody is registered
    unchecked."""

    name = "http"

    def __init__(self, url: str, token: str = "", timeout: float = 5.0, transport: Any = None) -> None:
        self.url, self.token, self.timeout, self.transport = url, token, timeout, transport

    async def check(self, s: AsyncSession, credit_code: str, today: date) -> Outcome:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
                r = await client.get(self.url, params={"credit_code": credit_code}, headers=headers)
            r.raise_for_status()
            body = r.json()
            listed = body["listed"]
            records = body.get("records") or []
            if not isinstance(listed, bool) or not isinstance(records, list):
                raise ValueError("unexpected answer")
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise Unavailable(
                "全国信用信息服务暂时无法核查，请稍后重试", code="credit_check_unavailable"
            ) from exc
        kept = [
            {k: str(x.get(k, ""))[:300] for k in ("source", "reason", "listed_on", "until")}
            for x in records[:20]
            if isinstance(x, dict)
        ]
        return Outcome(self.name, listed, kept)


def checker_for(settings: Settings) -> Checker | None:
    """The external checker the settings name (None: the blacklist alone)."""
    if settings.credit_checker == "http":
        return HttpChecker(
            settings.credit_check_url, settings.credit_check_token, settings.credit_check_timeout_seconds
        )
    return None


def refusal(name: str, records: list[dict[str, Any]]) -> RuleViolation:
    first = records[0] if records else {}
    where = (
        f"（{first.get('source', '')}，{first.get('listed_on', '')} 列入：{first.get('reason', '')}）"
        if first
        else ""
    )
    return RuleViolation(f"供应商 {name} 已被列入失信名单{where}，不能登记或交易", code=REFUSED_CODE)


def check_row(
    org_id: uuid.UUID | None,
    credit_code: str,
    name: str,
    purpose: str,
    outcome: Outcome,
    *,
    ref: str = "",
    who: uuid.UUID | None = None,
    at: datetime | None = None,
    external: dict[str, Any] | None = None,
) -> CreditCheck:
    evidence = outcome.evidence()
    if external is not None:
        evidence["external"] = external
    return CreditCheck(
        id=uuid.uuid4(),
        org_id=org_id,
        credit_code=credit_code,
        name=name[:200],
        purpose=purpose,
        ref=ref[:40],
        checker=outcome.checker,
        result="listed" if outcome.listed else "clear",
        evidence=evidence,
        checked_at=at or clock.now(),
        checked_by=who,
    )


async def latest_external(s: AsyncSession, org_id: uuid.UUID) -> CreditCheck | None:
    """The national service's latest answer about this organization."""
    return (
        await s.execute(
            select(CreditCheck)
            .where(CreditCheck.org_id == org_id, CreditCheck.checker == HttpChecker.name)
            .order_by(CreditCheck.checked_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def at_order(s: AsyncSession, supplier_id: uuid.UUID, order_no: str) -> None:
    """In the order's transaction: refuse a supplier on the blacklist, or whom the national service
    last found listed; else keep the check the order passed (with the service's latest answer)."""
    org = await s.get(Organization, supplier_id)
    if org is None:
        return
    outcome = await BlacklistChecker().check(s, org.credit_code, clock.local_date(clock.now()))
    external = None
    last = await latest_external(s, supplier_id)
    if last is not None:
        external = {
            "check_id": str(last.id),
            "checked_at": last.checked_at.isoformat(),
            "result": last.result,
        }
        if last.result == "listed":
            raise refusal(org.name, list(last.evidence.get("records") or []))
    if outcome.listed:
        raise refusal(org.name, outcome.records)
    s.add(
        check_row(supplier_id, org.credit_code, org.name, "order", outcome, ref=order_no, external=external)
    )

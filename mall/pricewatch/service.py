"""The procurement center's work on price alerts, and the supplier's answers.

A center or a regulator sees the alerts of suppliers in its organization's region (mall.core.regions);
an alert outside it is "not found", as one that does not exist. The center (or the regulator):

- asks the supplier to explain (open or answered → asked): the answer is due in
  `price_alert_answer_working_days` working days (default 5); the supplier's users are told;
- freezes the listing from the alert (catalog.service's freeze, with the reason, in the same
  transaction): the alert becomes frozen;
- closes it with a note.

The supplier answers an alert it was asked about (asked → answered), on its own page. Every action
is written to the audit log; every refusal is a DomainError with a stable code.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog import service as catalog_service
from catalog.models import Listing
from mall.core import audit, clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, Tx, retried
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from mall.core.models import Organization
from mall.core.regions import in_scope, org_region
from mall.core.settings import Settings
from mall.core.steps import end_of_day
from mall.notify.models import Kind
from mall.notify.stage import for_org, stage
from mall.pricewatch.models import (
    ALERT_KIND_LABELS,
    ALERT_STATUS_LABELS,
    AlertStatus,
    PriceAlert,
    PriceSweep,
    PriceWatchSummary,
    SweepStatus,
)

ANSWER_MIN, ANSWER_MAX = 2, 1000  # the supplier's explanation
NOTE_MAX = 300  # the center's closing note (price_alerts.close_note), a question, a freeze's reason
OVERSEERS = ("center", "regulator")
REGION = PriceAlert.region_code.expression


def answer_working_days(settings: Settings) -> int:
    return settings.price_alert_answer_working_days


@dataclass(frozen=True)
class Filters:
    kind: str = ""
    status: str = ""
    category: str = ""  # a 品目 code prefix
    supplier: str = ""  # part of the supplier's name
    since: date | None = None  # opened on or after (China time)
    until: date | None = None  # opened on or before


def filters_of(
    kind: str = "", status: str = "", category: str = "", supplier: str = "", since: str = "", until: str = ""
) -> Filters:
    """Filters as typed (a query string): unknown kinds and statuses, malformed dates refused (400)."""
    kind = fields.text(kind, "预警类型", fields.CHOICE_MAX, field="kind")
    status = fields.text(status, "状态", fields.CHOICE_MAX, field="status")
    if kind and kind not in ALERT_KIND_LABELS:
        raise InvalidInput(f"不支持的预警类型：{kind}", code="invalid_kind", field="kind")
    if status and status not in ALERT_STATUS_LABELS:
        raise InvalidInput(f"不支持的状态：{status}", code="invalid_status", field="status")
    category = fields.text(category, "品目编码", fields.CATEGORY_CODE_MAX, field="category").upper()
    if category and not category.isalnum():
        raise InvalidInput("品目编码只能含字母和数字", code="invalid_category", field="category")
    supplier = fields.text(supplier, "供应商名称", fields.NAME_MAX, field="supplier")
    return Filters(kind, status, category, supplier, _day(since, "since"), _day(until, "until"))


def _day(raw: str, name: str) -> date | None:
    raw = fields.text(raw, "日期", fields.DATE_MAX, field=name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("日期格式应为 YYYY-MM-DD", code="invalid_date", field=name) from None


async def scope_of(s: AsyncSession, who: Principal) -> str | None:
    """The region an overseer sees (None: everything); a supplier sees only its own alerts."""
    if who.role not in OVERSEERS:
        raise Forbidden("您没有权限执行此操作", code="forbidden")
    return await org_region(s, who.org_id)


@dataclass(frozen=True)
class AlertRow:
    alert: PriceAlert
    listing_name: str
    listing_status: str
    brand: str
    spec_model: str
    supplier_name: str


Rows = Select[PriceAlert, str, str, str, str, str]


def _row(r: Any) -> AlertRow:
    alert, name, status, brand, model, supplier = r
    return AlertRow(alert, str(name), str(status), str(brand), str(model), str(supplier))


def _rows(where: list[ColumnElement[bool]]) -> Rows:
    return (
        select(PriceAlert, Listing.name, Listing.status, Listing.brand, Listing.spec_model, Organization.name)
        .join(Listing, Listing.id == PriceAlert.listing_id)
        .join(Organization, Organization.id == PriceAlert.supplier_org_id)
        .where(*where)
    )


def _conditions(f: Filters) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if f.kind:
        out.append(PriceAlert.kind == f.kind)
    if f.status:
        out.append(PriceAlert.status == f.status)
    if f.category:
        out.append(PriceAlert.category_code.like(f.category + "%"))
    if f.supplier:
        like = "%" + f.supplier.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        out.append(Organization.name.like(like, escape="\\"))
    if f.since:
        out.append(PriceAlert.opened_at >= datetime.combine(f.since, time.min, clock.SHANGHAI))
    if f.until:
        out.append(
            PriceAlert.opened_at < datetime.combine(f.until + timedelta(days=1), time.min, clock.SHANGHAI)
        )
    return out


def _page(stmt: Rows, page: int, per_page: int) -> Rows:
    return (
        stmt.order_by(PriceAlert.opened_at.desc(), PriceAlert.id)
        .offset((page - 1) * per_page)
        .limit(per_page)
    )


async def _listed(
    s: AsyncSession, where: list[ColumnElement[bool]], page: int, per_page: int
) -> tuple[int, list[AlertRow]]:
    stmt = _rows(where)
    total = await s.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = (await s.execute(_page(stmt, page, per_page))).all()
    return total, [_row(r) for r in rows]


async def list_alerts(
    s: AsyncSession, who: Principal, f: Filters, *, page: int = 1, per_page: int = 20
) -> tuple[int, list[AlertRow]]:
    """The alerts an overseer sees, newest first: (how many in all, this page)."""
    scope = await scope_of(s, who)
    return await _listed(s, [in_scope(REGION, scope), *_conditions(f)], page, per_page)


async def supplier_alerts(
    s: AsyncSession, who: Principal, *, status: str = "", page: int = 1, per_page: int = 20
) -> tuple[int, list[AlertRow]]:
    """A supplier's own alerts that the center has taken up (asked, answered, frozen, and closed ones
    it had been asked about), newest first. Alerts nobody has looked at yet are the center's."""
    if who.role != "supplier" or who.org_id is None:
        raise Forbidden("您没有权限执行此操作", code="forbidden")
    f = filters_of(status=status)
    where = [PriceAlert.supplier_org_id == who.org_id, PriceAlert.asked_at.is_not(None), *_conditions(f)]
    return await _listed(s, where, page, per_page)


async def one(s: AsyncSession, who: Principal, alert_id: uuid.UUID) -> AlertRow:
    """One alert as its viewer may see it: an overseer's in its region, a supplier's own that it
    was asked about; anything else is 404 price_alert_not_found."""
    where: list[ColumnElement[bool]] = [PriceAlert.id == alert_id]
    if who.role in OVERSEERS:
        where.append(in_scope(REGION, await scope_of(s, who)))
    elif who.role == "supplier" and who.org_id is not None:
        where += [PriceAlert.supplier_org_id == who.org_id, PriceAlert.asked_at.is_not(None)]
    else:
        raise Forbidden("您没有权限执行此操作", code="forbidden")
    row = (await s.execute(_rows(where))).first()
    if row is None:
        raise NotFound("价格预警不存在", code="price_alert_not_found")
    return _row(row)


async def _locked(tx: Tx, who: Principal, alert_id: uuid.UUID) -> PriceAlert:
    """The alert locked for a change by an overseer in whose region it lies (404 otherwise)."""
    scope = await scope_of(tx.session, who)
    stmt = select(PriceAlert).where(PriceAlert.id == alert_id, in_scope(REGION, scope)).with_for_update()
    alert: PriceAlert | None = (await tx.session.execute(stmt)).scalar_one_or_none()
    if alert is None:
        raise NotFound("价格预警不存在", code="price_alert_not_found")
    return alert


def _wrong_state(alert: PriceAlert, what: str) -> Conflict:
    return Conflict(
        f"该预警当前为「{ALERT_STATUS_LABELS.get(alert.status, alert.status)}」，不能{what}",
        code="price_alert_wrong_state",
    )


def _note(raw: str, label: str, *, required: bool, field: str) -> str:
    note = fields.text(raw, label, NOTE_MAX, multiline=True, field=field)
    if required and len(note) < 2:
        raise InvalidInput(f"请填写{label}（2至{NOTE_MAX}个字符）", code="note_required", field=field)
    return note


def _audit(tx: Tx, who: Principal, action: str, alert: PriceAlert, detail: str, before: str) -> None:
    audit.record(
        tx,
        who,
        action,
        target_kind="price_alert",
        target=str(alert.id),
        detail=detail,
        before={"status": before},
        after={"status": alert.status},
    )


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


@retried
async def ask(
    db: Database, settings: Settings, who: Principal, alert_id: uuid.UUID, note: str = ""
) -> PriceAlert:
    """Ask the supplier to explain the price, by a deadline in working days; the supplier is told."""
    note = _note(note, "说明要求", required=False, field="note")
    async with db.write() as tx:
        alert = await _locked(tx, who, alert_id)
        if alert.status not in (AlertStatus.OPEN, AlertStatus.ANSWERED):
            raise _wrong_state(alert, "要求说明")
        listing = await tx.session.get(Listing, alert.listing_id)
        assert listing is not None  # an alert's listing is never deleted (a foreign key)
        now, before = clock.now(), alert.status
        days = answer_working_days(settings)
        due = end_of_day(settings.work_calendar.add_working_days(clock.local_date(now), days))
        alert.status, alert.asked_at, alert.asked_by, alert.answer_due_at = (
            AlertStatus.ASKED,
            now,
            who.user_id,
            due,
        )
        _audit(tx, who, "price_alert_asked", alert, note, before)
        kind = ALERT_KIND_LABELS.get(alert.kind, alert.kind)
        body = (
            f"商品「{listing.name}」售价 {_money(alert.price)} 元触发价格监测「{kind}」"
            + (f"（参照 {_money(alert.reference)} 元）" if alert.reference is not None else "")
            + f"，请于 {clock.local_date(due).isoformat()} 前说明。"
            + (f"说明要求：{note}" if note else "")
        )
        stage(
            tx.session,
            [
                for_org(
                    alert.supplier_org_id,
                    Kind.PRICE_ALERT,
                    f"价格监测：请说明商品「{listing.name}」的价格",
                    body,
                    f"/supplier/price-alerts/{alert.id}",
                    ref=f"price_alert:{alert.id}",
                )
            ],
        )
    return alert


@retried
async def answer(db: Database, who: Principal, alert_id: uuid.UUID, text: str) -> PriceAlert:
    """The supplier explains the price of an alert it was asked about."""
    if who.role != "supplier" or who.org_id is None:
        raise Forbidden("您没有权限执行此操作", code="forbidden")
    text = fields.text(text, "说明", ANSWER_MAX, multiline=True, field="answer")
    if len(text) < ANSWER_MIN:
        raise InvalidInput(
            f"请填写说明（{ANSWER_MIN}至{ANSWER_MAX}个字符）", code="answer_required", field="answer"
        )
    async with db.write() as tx:
        stmt = select(PriceAlert).where(
            PriceAlert.id == alert_id,
            PriceAlert.supplier_org_id == who.org_id,
            PriceAlert.asked_at.is_not(None),
        )
        alert: PriceAlert | None = (await tx.session.execute(stmt.with_for_update())).scalar_one_or_none()
        if alert is None:
            raise NotFound("价格预警不存在", code="price_alert_not_found")
        if alert.status != AlertStatus.ASKED:
            raise _wrong_state(alert, "提交说明")
        before = alert.status
        alert.status, alert.answer, alert.answered_at, alert.answered_by = (
            AlertStatus.ANSWERED,
            text,
            clock.now(),
            who.user_id,
        )
        _audit(tx, who, "price_alert_answered", alert, "", before)
    return alert


@retried
async def freeze(
    db: Database, settings: Settings, who: Principal, alert_id: uuid.UUID, reason: str
) -> PriceAlert:
    """Freeze the alert's listing (catalog.service's freeze: the supplier is told the reason) and
    mark the alert frozen, in one transaction."""
    reason = catalog_service.reason_of(reason, "冻结原因", required=True, missing="请填写冻结原因")
    async with db.write() as tx:
        alert = await _locked(tx, who, alert_id)
        if alert.status in (AlertStatus.FROZEN, AlertStatus.CLOSED):
            raise _wrong_state(alert, "冻结商品")
        kind = ALERT_KIND_LABELS.get(alert.kind, alert.kind)
        await catalog_service.moderate_in(
            tx,
            who,
            alert.listing_id,
            "freeze",
            f"价格监测（{kind}）：{reason}"[: fields.REASON_MAX],
            margin=settings.price_margin,
        )
        before = alert.status
        alert.status = AlertStatus.FROZEN
        _audit(tx, who, "price_alert_frozen", alert, reason, before)
    return alert


@retried
async def close(db: Database, who: Principal, alert_id: uuid.UUID, note: str) -> PriceAlert:
    """Close the alert with a note (the explanation holds, the price was corrected, a false alarm)."""
    note = _note(note, "关闭说明", required=True, field="note")
    async with db.write() as tx:
        alert = await _locked(tx, who, alert_id)
        if alert.status == AlertStatus.CLOSED:
            raise _wrong_state(alert, "关闭")
        before = alert.status
        alert.status, alert.closed_at, alert.closed_by, alert.close_note = (
            AlertStatus.CLOSED,
            clock.now(),
            who.user_id,
            note,
        )
        _audit(tx, who, "price_alert_closed", alert, note, before)
    return alert


async def monitoring(s: AsyncSession) -> tuple[PriceSweep | None, list[PriceWatchSummary]]:
    """What the public 价格监测 page shows: the last finished sweep and its per-class summary."""
    last = await s.scalar(
        select(PriceSweep)
        .where(PriceSweep.status == SweepStatus.DONE)
        .order_by(PriceSweep.started_at.desc())
        .limit(1)
    )
    rows = list(
        (await s.execute(select(PriceWatchSummary).order_by(PriceWatchSummary.category_class))).scalars()
    )
    return last, rows

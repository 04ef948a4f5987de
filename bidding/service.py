"""Inquiries and reverse auctions: publication with a budget reservation, sealed quotes, the bid
path with the database as final arbiter, and closing with the outcome of `bidding.rules`.

Sealing: before the deadline no function here returns another supplier's quote, or how many
quotes there are, to anyone — the buyer included. What people see of offers is `bidding.views`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bidding import rules
from bidding.models import (
    Offer,
    OfferStatus,
    Participant,
    Procedure,
    ProcedureInvite,
    ProcedureItem,
    ProcedureKind,
    ProcedureStatus,
)
from bidding.views import bids_of, inquiry_labels, quotes_of, visible_clause
from catalog.agreement_orders import second_stage_ceiling
from catalog.categories import CATALOG_VERSION
from catalog.models import Category, Listing, ListingStatus
from mall import budgets, orders
from mall.core import clock, fields, outbox
from mall.core.auth import Principal
from mall.core.db import Database, Tx
from mall.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation, TooManyAttempts
from mall.core.models import BudgetLine, Order, Organization, OrgKind, OrgStatus
from mall.core.money import MoneyError, money, money_str, quantity_str, round_money, whole_quantity
from mall.ledger import disclosure

MIN_OPEN = timedelta(minutes=10)
MAX_OPEN = timedelta(days=30)
# The platform's minimum of participants when a caller names none (settings.min_participants).
MIN_PARTICIPANTS = 3
MAX_PARTICIPANTS = 20
# Refused bids counted against a user's limit (settings.bid_refusals_per_minute) over this window.
REFUSAL_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class ItemDraft:
    category_code: str
    item_name: str
    spec: str
    quantity: str
    unit: str


@dataclass(frozen=True)
class ProcedureDraft:
    kind: str
    title: str
    budget_line_id: uuid.UUID
    ceiling: str
    starts_at: datetime
    ends_at: datetime
    items: list[ItemDraft]
    decrement: str = "0"
    decrement_is_percent: bool = False
    beat_lowest: bool = False
    min_participants: int | None = None  # None: the platform's minimum; a buyer may only ask for more
    invited: list[uuid.UUID] | None = None  # None: every supplier with live listings in the 品目
    # 二次竞价: only the agreement's entered suppliers, the agreement prices as the highest ceiling
    agreement_id: uuid.UUID | None = None


def rules_of(p: Procedure) -> rules.AuctionRules:
    return rules.AuctionRules(
        ceiling=p.ceiling,
        decrement=Decimal(p.decrement),
        decrement_is_percent=p.decrement_is_percent,
        beat_lowest=p.beat_lowest,
        snipe_window=timedelta(seconds=p.snipe_window_seconds),
        extension=timedelta(seconds=p.extension_seconds),
        max_extensions=p.max_extensions,
        min_participants=p.min_participants,
        confirm_window=timedelta(hours=p.confirm_hours),
    )


def inquiry_rules_of(p: Procedure) -> rules.InquiryRules:
    return rules.InquiryRules(
        ceiling=p.ceiling, min_valid=p.min_participants, confirm_window=timedelta(hours=p.confirm_hours)
    )


def _number(kind: str) -> str:
    prefix = "XJ" if kind == ProcedureKind.INQUIRY else "JJ"
    now = clock.local_date(clock.now())
    return f"{prefix}{now:%Y%m%d}{uuid.uuid4().int % 10**8:08d}"


def participants_wanted(draft: ProcedureDraft, platform_minimum: int) -> int:
    """The procedure's minimum of participants: the platform's, or more if the buyer asks (400 naming
    `min_participants` for fewer, or for more than anyone could reach)."""
    wanted = platform_minimum if draft.min_participants is None else draft.min_participants
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
    found = set(
        (
            await s.execute(
                select(Organization.id).where(
                    Organization.id.in_(ids),
                    Organization.kind == OrgKind.SUPPLIER.value,
                    Organization.status == OrgStatus.ACTIVE,
                )
            )
        ).scalars()
    )
    unknown = [str(i) for i in ids if i not in found]
    if unknown:
        raise InvalidInput(
            f"邀请名单中有 {len(unknown)} 个编号不是可参与的供应商（不存在、不是供应商或已冻结）",
            code="invited_invalid",
            field="invited",
            invalid=unknown,
        )
    return ids


async def create(
    db: Database,
    who: Principal,
    draft: ProcedureDraft,
    *,
    open_tender_threshold: Decimal,
    region_code: str,
    min_participants: int = MIN_PARTICIPANTS,
) -> Procedure:
    """A buyer publishes an inquiry or an auction: checked, budget reserved, visible at once.
    `min_participants` is the platform's minimum (settings.min_participants)."""
    errors: list[str] = []
    if draft.kind not in (ProcedureKind.INQUIRY, ProcedureKind.AUCTION):
        raise InvalidInput(
            "采购方式应为 inquiry（在线询价）或 auction（反向竞价）", code="invalid_kind", field="kind"
        )
    wanted = participants_wanted(draft, min_participants)
    decrement = _decimal(draft.decrement)
    title = fields.text(draft.title, "项目名称", fields.NAME_MAX, field="title")
    if len(title) < 4:
        errors.append("项目名称应为4至200个字符")
    try:
        ceiling = money(draft.ceiling)
    except MoneyError:
        errors.append("最高限价格式不正确")
        ceiling = Decimal(0)
    if ceiling <= 0:
        errors.append("最高限价必须大于0")
    elif ceiling >= open_tender_threshold:
        errors.append(f"最高限价应低于公开招标数额标准 {open_tender_threshold:,.0f} 元（达到标准须公开招标）")
    now = clock.now()
    if draft.starts_at < now - timedelta(minutes=1):
        errors.append("开始时间不能早于现在")
    if draft.ends_at - max(draft.starts_at, now) < MIN_OPEN:
        errors.append("截止时间应在开始时间 10 分钟以后")
    if draft.ends_at - draft.starts_at > MAX_OPEN:
        errors.append("报价期不能超过30天")
    if not 1 <= len(draft.items) <= 50:
        errors.append("请填写1至50项采购需求")
    items: list[tuple[ItemDraft, Decimal]] = []
    for n, raw in enumerate(draft.items, start=1):
        item = ItemDraft(
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
    if errors:
        raise InvalidInput("；".join(errors), code="procedure_invalid")
    if draft.kind == ProcedureKind.AUCTION:
        # the rules object checks the decrement settings (and says what is wrong, in Chinese)
        rules.AuctionRules(
            ceiling=ceiling,
            decrement=decrement,
            decrement_is_percent=draft.decrement_is_percent,
            beat_lowest=draft.beat_lowest,
            min_participants=wanted,
        )
    assert who.org_id is not None
    async with db.write() as tx:
        s = tx.session
        line = await s.get(BudgetLine, draft.budget_line_id)
        if line is None or line.org_id != who.org_id:
            raise NotFound("预算指标不存在", code="budget_line_not_found")
        for item, _q in items:
            category = await s.get(Category, (CATALOG_VERSION, item.category_code))
            if category is None:
                raise InvalidInput(f"品目编码 {item.category_code} 不在品目目录中", code="unknown_category")
        invited = None if draft.invited is None else await _check_invited(s, draft.invited, wanted)
        eligibility = "invited" if invited is not None else "category"
        if draft.agreement_id is not None:
            # the agreement's entered suppliers are invited: like an explicit invitation, at least the
            # procedure's minimum of them must be able to take part, or it is refused now, not at its deadline
            agreement, highest, invited = await second_stage_ceiling(
                s, draft.agreement_id, [(i.category_code, q) for i, q in items]
            )
            able = await s.scalar(
                select(func.count()).where(
                    Organization.id.in_(invited),
                    Organization.kind == OrgKind.SUPPLIER.value,
                    Organization.status == OrgStatus.ACTIVE,
                )
            )
            if (able or 0) < wanted:
                raise InvalidInput(
                    f"框架协议 {agreement.number} 的有效入围供应商只有 {able or 0} 家，"
                    f"少于最少有效供应商数 {wanted} 家，不能发起二次竞价",
                    code="too_few_entered",
                    field="agreement_id",
                    minimum=wanted,
                )
            if clock.local_date(draft.ends_at) > agreement.ends_on:
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
            eligibility = "agreement"
        p = Procedure(
            id=uuid.uuid4(),
            number=_number(draft.kind),
            kind=draft.kind,
            status=ProcedureStatus.OPEN if draft.starts_at <= now else ProcedureStatus.PUBLISHED,
            title=title,
            buyer_org_id=who.org_id,
            buyer_user_id=who.user_id,
            budget_line_id=line.id,
            region_code=region_code,
            ceiling=ceiling,
            reserved_amount=ceiling,
            decrement=str(decrement),
            decrement_is_percent=draft.decrement_is_percent,
            beat_lowest=draft.beat_lowest,
            min_participants=wanted,
            eligibility=eligibility,
            agreement_id=draft.agreement_id,
            starts_at=draft.starts_at,
            scheduled_end=draft.ends_at,
            ends_at=draft.ends_at,
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
        await s.flush()
        await budgets.lock_line(s, line.id)
        await budgets.reserve(s, line.id, ceiling, None, procedure_id=p.id)
        _schedule_close(tx, p.id, p.ends_at)
    return p


def _schedule_close(tx: Tx, procedure_id: uuid.UUID, at: datetime) -> None:
    tx.after_commit(lambda: outbox.kick(outbox.CLOSE_PROCEDURE, procedure_id, at))


async def close_due(db: Database, limit: int = 50, *, pause: float = 0.0) -> list[uuid.UUID]:
    """The safety net: close every procedure whose end has passed (a lost or failed close job)."""
    now = clock.now()
    async with db.read() as s:
        due = list(
            (
                await s.execute(
                    select(Procedure.id)
                    .where(
                        Procedure.status.in_((ProcedureStatus.PUBLISHED, ProcedureStatus.OPEN)),
                        Procedure.ends_at <= now,
                    )
                    .order_by(Procedure.ends_at)
                    .limit(limit)
                )
            ).scalars()
        )
    for procedure_id in due:
        await close(db, procedure_id, pause=pause)
    async with db.read() as s:
        lapsed = list(
            (
                await s.execute(
                    select(Procedure.id)
                    .where(Procedure.status == ProcedureStatus.AWARDED, Procedure.confirm_due_at <= now)
                    .limit(limit)
                )
            ).scalars()
        )
    for procedure_id in lapsed:
        await decline_award(db, None, procedure_id, lapsed=True)
    return due + lapsed


def _decimal(raw: str) -> Decimal:
    try:
        value = Decimal(str(raw).strip() or "0")
    except InvalidOperation:
        raise InvalidInput("最小降价幅度格式不正确", code="procedure_invalid", field="decrement") from None
    return value


async def _eligible(tx: Tx, p: Procedure, supplier_org_id: uuid.UUID) -> bool:
    s = tx.session
    if p.eligibility in ("invited", "agreement"):  # an agreement's suppliers are invited at publication
        return bool(
            await s.scalar(
                select(ProcedureInvite.id).where(
                    ProcedureInvite.procedure_id == p.id, ProcedureInvite.supplier_org_id == supplier_org_id
                )
            )
        )
    codes = list(
        (
            await s.execute(select(ProcedureItem.category_code).where(ProcedureItem.procedure_id == p.id))
        ).scalars()
    )
    # live in every requested 品目 class (the third level: 计算机, 打印设备, …)
    for code in codes:
        found = await s.scalar(
            select(Listing.id)
            .where(
                Listing.supplier_org_id == supplier_org_id,
                Listing.status == ListingStatus.LIVE,
                Listing.category_code.like(f"{code[:7]}%"),
            )
            .limit(1)
        )
        if not found:
            return False
    return True


async def _participant(tx: Tx, p: Procedure, supplier_org_id: uuid.UUID) -> Participant:
    s = tx.session
    part = await s.scalar(
        select(Participant).where(
            Participant.procedure_id == p.id, Participant.supplier_org_id == supplier_org_id
        )
    )
    if part is None:
        n = await s.scalar(select(func.count()).where(Participant.procedure_id == p.id)) or 0
        part = Participant(
            procedure_id=p.id, supplier_org_id=supplier_org_id, label_no=n + 1, joined_at=clock.now()
        )
        s.add(part)
        await s.flush()
    return part


async def _require_visible(s: AsyncSession, who: Principal, p: Procedure) -> None:
    """Writes answer like reads: a procedure `who` may not see is one that does not exist (404), so
    a refusal never tells an outsider that an invitation-only procedure is there."""
    if await s.scalar(select(Procedure.id).where(Procedure.id == p.id, visible_clause(who))) is None:
        raise NotFound("采购项目不存在", code="procedure_not_found")


async def _load_open(tx: Tx, who: Principal, procedure_id: uuid.UUID, kind: str) -> Procedure:
    p = await tx.session.get(Procedure, procedure_id, with_for_update=True)
    if p is None or p.kind != kind:
        raise NotFound("采购项目不存在", code="procedure_not_found")
    await _require_visible(tx.session, who, p)
    assert who.org_id is not None
    if not await _eligible(tx, p, who.org_id):
        raise Forbidden("贵单位不在本项目的邀请或品目范围内，不能报价", code="not_eligible")
    now = clock.now()
    if p.status == ProcedureStatus.PUBLISHED and p.starts_at <= now < p.ends_at:
        p.status = ProcedureStatus.OPEN
    return p


def _money_or_refuse(raw: str) -> Decimal:
    try:
        return money(raw)
    except MoneyError:
        raise rules.BidRefused("bad_amount", "报价金额格式不正确，应为不超过两位小数的金额") from None


def typed_amount(raw: str) -> str:
    """A quote or bid as typed, kept in the bid log: a malformed amount is an offer refused by the
    rules (and logged), but text the log cannot keep as typed is refused before it is an offer."""
    return fields.text(raw, "报价金额", fields.BID_TEXT_MAX, field="amount")


async def quote(db: Database, who: Principal, procedure_id: uuid.UUID, amount_raw: str) -> Offer:
    """Submit or revise a sealed quote. The latest one counts; nobody else sees it before the deadline."""
    amount_raw = typed_amount(amount_raw)
    async with db.write() as tx:
        p = await _load_open(tx, who, procedure_id, ProcedureKind.INQUIRY)
        amount = _money_or_refuse(amount_raw)
        rules.check_quote(inquiry_rules_of(p), amount, now=clock.now(), deadline=p.ends_at)
        assert who.org_id is not None
        await _check_revisions(tx, p, who.org_id)
        # No label is drawn here: a label numbered on arrival would tell the supplier how many quoted
        # before it. Inquiry labels are given at opening (`inquiry_labels`).
        p.offer_seq += 1
        offer = Offer(
            procedure_id=p.id,
            supplier_org_id=who.org_id,
            user_id=who.user_id,
            seq=p.offer_seq,
            amount=amount,
            typed=amount_raw,
            status=OfferStatus.ACCEPTED,
            at=clock.now(),
        )
        tx.session.add(offer)
    return offer


QUOTE_REVISIONS_MAX = 20


async def _check_revisions(tx: Tx, p: Procedure, supplier_org_id: uuid.UUID) -> None:
    """A sealed quote may be revised or withdrawn, but not without end: every revision stays in the
    procedure's record, so a supplier gets QUOTE_REVISIONS_MAX of them per inquiry."""
    n = await tx.session.scalar(
        select(func.count()).where(Offer.procedure_id == p.id, Offer.supplier_org_id == supplier_org_id)
    )
    if (n or 0) >= QUOTE_REVISIONS_MAX:
        raise Conflict(
            f"贵单位在本项目的报价及撤回已达 {QUOTE_REVISIONS_MAX} 次上限，不能再修改",
            code="too_many_revisions",
            limit=QUOTE_REVISIONS_MAX,
        )


async def withdraw(db: Database, who: Principal, procedure_id: uuid.UUID) -> None:
    async with db.write() as tx:
        p = await _load_open(tx, who, procedure_id, ProcedureKind.INQUIRY)
        if clock.now() >= p.ends_at:
            raise rules.BidRefused("closed", "报价已截止，不能撤回")
        assert who.org_id is not None
        latest = await tx.session.scalar(
            select(Offer)
            .where(
                Offer.procedure_id == p.id,
                Offer.supplier_org_id == who.org_id,
                Offer.status == OfferStatus.ACCEPTED,
            )
            .order_by(Offer.seq.desc())
            .limit(1)
        )
        if latest is None:
            raise Conflict("贵单位没有可撤回的报价", code="no_quote")
        await _check_revisions(tx, p, who.org_id)
        p.offer_seq += 1
        tx.session.add(
            Offer(
                procedure_id=p.id,
                supplier_org_id=who.org_id,
                user_id=who.user_id,
                seq=p.offer_seq,
                amount=None,
                status=OfferStatus.WITHDRAWN,
                at=clock.now(),
            )
        )


def too_many_refusals() -> TooManyAttempts:
    return TooManyAttempts(
        "出价被拒绝次数过多，请核对竞价规则后一分钟再出价",
        code="too_many_refused_bids",
    )


async def _recent_refusals(tx: Tx, procedure_id: uuid.UUID, user_id: uuid.UUID, now: datetime) -> int:
    n = await tx.session.scalar(
        select(func.count()).where(
            Offer.procedure_id == procedure_id,
            Offer.user_id == user_id,
            Offer.status == OfferStatus.REFUSED,
            Offer.at > now - REFUSAL_WINDOW,
        )
    )
    return int(n or 0)


class StaleFence(Exception):
    """The room-lock token is older than one the database already accepted."""

    def __init__(self, current: int) -> None:
        super().__init__(current)
        self.current = current


@dataclass(frozen=True)
class BidResult:
    accepted: bool
    seq: int | None
    amount: Decimal | None
    lowest: Decimal | None
    ends_at: datetime
    code: str = ""
    detail: str = ""


async def bid(
    db: Database,
    who: Principal,
    procedure_id: uuid.UUID,
    amount_raw: str,
    *,
    fence: int | None = None,
    max_refusals: int | None = None,
) -> BidResult:
    """One bid into an auction room. The rules are checked against the state read in this
    transaction, and the acceptance is a conditional UPDATE on the procedure's sequence number: if
    anything was accepted meanwhile the UPDATE changes nothing and the bid is refused ("stale"), so
    no two bids are ever accepted against the same state. `fence` is the room lock's token: a bid
    made under an older token than one already committed (its lock expired) is refused too.
    Refused bids are logged with the reason — at most `max_refusals` per user and room a minute:
    past that the bid is answered 429 and nothing is written (a supplier cannot flood the log)."""
    assert who.org_id is not None
    amount_raw = typed_amount(amount_raw)
    refused: rules.BidRefused | None = None
    async with db.write() as tx:
        s = tx.session
        p = await _load_open(tx, who, procedure_id, ProcedureKind.AUCTION)
        seen_seq = p.offer_seq
        now = clock.now()
        own = await s.scalar(
            select(func.min(Offer.amount)).where(
                Offer.procedure_id == p.id,
                Offer.supplier_org_id == who.org_id,
                Offer.status == OfferStatus.ACCEPTED,
            )
        )
        amount: Decimal | None = None
        try:
            amount = _money_or_refuse(amount_raw)
            rules.check_bid(
                rules_of(p),
                amount,
                own_previous=own,
                current_lowest=p.lowest_amount,
                now=now,
                starts_at=p.starts_at,
                ends_at=p.ends_at,
            )
        except rules.BidRefused as exc:
            refused = exc
        if refused is None:
            assert amount is not None
            new_end, extensions = rules.extended_end(
                rules_of(p), bid_at=now, ends_at=p.ends_at, extensions_so_far=p.extensions
            )
            lowest = amount if p.lowest_amount is None else min(amount, p.lowest_amount)
            t = cast(Table, Procedure.__table__)
            stmt = update(t).where(t.c.id == p.id, t.c.offer_seq == seen_seq, t.c.ends_at > now)
            values: dict[str, Any] = {
                "offer_seq": seen_seq + 1,
                "ends_at": new_end,
                "extensions": extensions,
                "lowest_amount": lowest,
            }
            if fence is not None:
                stmt = stmt.where(t.c.fence < fence)
                values["fence"] = fence
            result = await s.execute(stmt.values(**values))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                current_fence = await s.scalar(select(t.c.fence).where(t.c.id == p.id))
                if fence is not None and current_fence is not None and current_fence >= fence:
                    # our room lock expired and a newer holder committed (or Redis restarted and its
                    # counter went back): nothing is written; the caller raises its counter and retries
                    raise StaleFence(int(current_fence))
                refused = rules.BidRefused("stale", "出价时竞价状态已变化，请刷新后重试")
            else:
                if extensions != p.extensions:
                    _schedule_close(tx, p.id, new_end)  # the close job moves with the end
                # the anonymous label comes with the first accepted bid, so it counts only bidders,
                # whom the room shows anyway (never suppliers that were only refused)
                await _participant(tx, p, who.org_id)
                s.add(
                    Offer(
                        procedure_id=p.id,
                        supplier_org_id=who.org_id,
                        user_id=who.user_id,
                        seq=seen_seq + 1,
                        amount=amount,
                        typed=amount_raw,
                        status=OfferStatus.ACCEPTED,
                        at=now,
                    )
                )
                return BidResult(True, seen_seq + 1, amount, lowest, new_end)
        if max_refusals is not None and await _recent_refusals(tx, p.id, who.user_id, now) >= max_refusals:
            raise too_many_refusals()  # counted under the procedure's row lock: exact, whatever the races
        s.add(
            Offer(
                procedure_id=p.id,
                supplier_org_id=who.org_id,
                user_id=who.user_id,
                seq=None,
                amount=amount,
                typed=amount_raw,
                status=OfferStatus.REFUSED,
                refuse_code=refused.code,
                reason=refused.detail,  # the rules' own message: a short fixed text with amounts
                at=now,
            )
        )
        ends_at = p.ends_at
    # the refusal is logged (committed above) and then reported as a 422 with its stable code
    raise refused if refused else RuleViolation("出价未被接受", code="bid_refused", ends_at=str(ends_at))


async def close(db: Database, procedure_id: uuid.UUID, *, pause: float = 0.0) -> Procedure:
    """At the deadline: compute the outcome. Idempotent — a closed procedure is returned as it is.
    Success names the first in rank, who must confirm within the confirmation window; failure
    releases the budget reservation and publishes a failure notice. `pause` is fault injection for
    the test suite: the transaction stalls after writing the outcome and before committing it."""
    async with db.write() as tx:
        s = tx.session
        p = await s.get(Procedure, procedure_id, with_for_update=True)
        if p is None:
            raise NotFound("采购项目不存在", code="procedure_not_found")
        if p.status not in (ProcedureStatus.PUBLISHED, ProcedureStatus.OPEN):
            return p
        now = clock.now()
        if now < p.ends_at:
            raise Conflict("尚未到截止时间", code="not_yet_closed")
        p.closed_at = now
        result = await _outcome(tx, p)
        if result.failed:
            await _fail(tx, p, result.failed_reason)
        else:
            winner = result.winner
            assert winner is not None
            _award(tx, p, uuid.UUID(winner.supplier), winner.amount, now)
        if pause:
            await asyncio.sleep(pause)
    return p


async def _outcome(tx: Tx, p: Procedure) -> Any:
    offers = list((await tx.session.execute(select(Offer).where(Offer.procedure_id == p.id))).scalars())
    if p.kind == ProcedureKind.INQUIRY:
        return rules.inquiry_outcome(inquiry_rules_of(p), quotes_of(offers))
    return rules.outcome(rules_of(p), bids_of(offers))


def _award(tx: Tx, p: Procedure, supplier_id: uuid.UUID, amount: Decimal, now: datetime) -> None:
    p.status = ProcedureStatus.AWARDED
    p.awarded_supplier_id, p.awarded_amount, p.awarded_at = supplier_id, amount, now
    p.confirm_due_at = now + timedelta(hours=p.confirm_hours)

    tx.after_commit(lambda: outbox.kick(outbox.AWARD_LAPSE, p.id, p.confirm_due_at))


async def _fail(tx: Tx, p: Procedure, reason: str) -> None:
    p.status, p.result_note = ProcedureStatus.FAILED, reason  # the rules' or this module's fixed text
    if p.reserved_amount > 0:
        await budgets.release(tx.session, p.budget_line_id, p.reserved_amount, None, procedure_id=p.id)
        p.reserved_amount = Decimal(0)

    disclosure.stage(tx, await failure_payload(tx, p, reason))


async def _buyer_and_items(tx: Tx, p: Procedure) -> tuple[Any, list[ProcedureItem]]:
    buyer = await tx.session.get(Organization, p.buyer_org_id)
    items = list(
        (
            await tx.session.execute(
                select(ProcedureItem)
                .where(ProcedureItem.procedure_id == p.id)
                .order_by(ProcedureItem.line_no)
            )
        ).scalars()
    )
    return buyer, items


async def ranked_quotes(tx: Tx, p: Procedure) -> list[dict[str, Any]]:
    """Every valid quote or final bid, ranked, with the supplier's name: published with the result."""
    result = await _outcome(tx, p)
    names = {
        str(i): n
        for i, n in (
            await tx.session.execute(
                select(Organization.id, Organization.name).where(
                    Organization.id.in_([uuid.UUID(o.supplier) for o in result.ranked])
                )
            )
        ).all()
    }
    return [
        {
            "rank": n,
            "supplier_name": names.get(o.supplier, ""),
            "total_amount": money_str(o.amount),
            "submitted_at": clock.rfc3339(o.at),
        }
        for n, o in enumerate(result.ranked, start=1)
    ]


async def rejected_quotes(tx: Tx, p: Procedure) -> list[dict[str, Any]]:
    """Quotes the buyer found non-compliant, with its written reason (disclosed with the result)."""
    rows = (
        await tx.session.execute(
            select(Offer, Organization.name)
            .join(Organization, Organization.id == Offer.supplier_org_id)
            .where(Offer.procedure_id == p.id, Offer.rejected.is_(True))
            .order_by(Offer.seq)
        )
    ).all()
    return [
        {
            "supplier_name": name,
            "total_amount": None if o.amount is None else money_str(o.amount),
            "submitted_at": clock.rfc3339(o.at),
            "reason": o.reason,
        }
        for o, name in rows
    ]


async def failure_payload(tx: Tx, p: Procedure, reason: str) -> dict[str, Any]:
    buyer, items = await _buyer_and_items(tx, p)
    return {
        "kind": "failure",
        "amends": None,
        "mode": p.kind,
        "order_no": p.number,
        "region_code": p.region_code,
        "deal_date": clock.local_date(clock.now()).isoformat(),
        "buyer": {"name": buyer.name, "credit_code": buyer.credit_code},
        "supplier": None,
        "total_amount": None,
        "currency": "CNY",
        "lines": [
            {
                "item_name": i.item_name,
                "brand": "",
                "spec_model": i.spec,
                "category_code": i.category_code,
                "quantity": quantity_str(i.quantity),
                "unit": i.unit,
                "unit_price": None,
                "amount": None,
            }
            for i in items
        ],
        "quotes": await ranked_quotes(tx, p),
        "rejected_quotes": await rejected_quotes(tx, p),
        "reason": reason,
    }


async def confirm_award(
    db: Database, who: Principal, procedure_id: uuid.UUID, unit_prices: dict[int, str] | None = None
) -> Any:
    """The awarded supplier confirms: the deal is made. An order (mode inquiry / auction) is created
    already confirmed — it then runs the supermarket's fulfilment flow — the reservation shrinks from
    the ceiling to the price, and the deal record is published with every valid quote.
    For several items the supplier splits its total into unit prices (分项报价) that add up exactly."""
    async with db.write() as tx:
        s = tx.session
        p = await s.get(Procedure, procedure_id, with_for_update=True)
        if p is None:
            raise NotFound("采购项目不存在", code="procedure_not_found")
        await _require_visible(s, who, p)
        if p.status != ProcedureStatus.AWARDED or p.awarded_supplier_id != who.org_id:
            raise Conflict("贵单位没有待确认的成交", code="no_award")
        now = clock.now()
        assert p.confirm_due_at is not None and p.awarded_amount is not None
        if now >= p.confirm_due_at:
            raise Conflict("已超过成交确认期限，成交资格已顺延", code="award_lapsed")
        _buyer, items = await _buyer_and_items(tx, p)
        total = p.awarded_amount
        prices = _split(items, total, unit_prices or {})
        assert who.org_id is not None
        order = await orders.open_confirmed_order(
            s,
            mode=p.kind,
            number_prefix=ORDER_PREFIX.get(p.kind, p.kind),
            buyer_org_id=p.buyer_org_id,
            buyer_user_id=p.buyer_user_id,
            supplier_id=who.org_id,
            budget_line_id=p.budget_line_id,
            idempotency_key=f"procedure:{p.number}",
            region_code=p.region_code,
            total=total,
            note=f"{KIND_NAMES[p.kind]} {p.number}",
            drafts=[
                orders.LineDraft(
                    item_name=item.item_name,
                    brand="",
                    spec_model=item.spec,  # the whole specification (order_lines.spec_model holds SPEC_MAX)
                    category_code=item.category_code,
                    category_version=CATALOG_VERSION,
                    unit=item.unit,
                    quantity=item.quantity,
                    listed_unit_price=price,
                    unit_price=price,
                    line_no=item.line_no,
                )
                for item, price in zip(items, prices, strict=True)
            ],
            at=now,
            source_id=p.agreement_id,  # a second-stage competition's deal counts under its agreement
        )
        # the reservation moves from the procedure to the order: what is above the price is released
        if p.reserved_amount > total:
            await budgets.release(s, p.budget_line_id, p.reserved_amount - total, None, procedure_id=p.id)
        p.reserved_amount = Decimal(0)
        p.status, p.order_id = ProcedureStatus.CONFIRMED, order.id
        await s.flush()
        loaded = (
            await s.execute(
                select(Order).where(Order.id == order.id).execution_options(populate_existing=True)
            )
        ).scalar_one()
        payload = disclosure.deal_payload(loaded)
        payload["quotes"] = await ranked_quotes(tx, p)
        if p.kind == ProcedureKind.INQUIRY:
            payload["rejected_quotes"] = await rejected_quotes(tx, p)
        loaded.disclosure_id = disclosure.stage(tx, payload)
        orders.record_event(
            s,
            loaded,
            who,
            "confirmed",
            f"{KIND_NAMES[p.kind]} {p.number} 成交确认，成交金额 {total:,.2f} 元，生成电子合同 {order.contract_no}",
        )
    return loaded


async def reject_quote(
    db: Database, who: Principal, procedure_id: uuid.UUID, label_no: int, reason: str
) -> Procedure:
    """After opening, the buyer rejects a non-compliant quote with a written reason (kept, and
    disclosed with the result). While the award is not yet confirmed the ranking is recomputed
    without it: the award may pass to the next, or the inquiry fail for too few valid quotes."""
    reason = fields.text(reason, "原因", fields.REASON_MAX, multiline=True, field="reason")
    if len(reason) < 4:
        raise InvalidInput(
            f"请写明不符合要求的原因（4至{fields.REASON_MAX}个字符）", code="reason_required", field="reason"
        )
    async with db.write() as tx:
        s = tx.session
        p = await s.get(Procedure, procedure_id, with_for_update=True)
        if p is None or p.buyer_org_id != who.org_id:
            raise NotFound("采购项目不存在", code="procedure_not_found")
        if p.kind != ProcedureKind.INQUIRY or p.status != ProcedureStatus.AWARDED:
            raise Conflict("只能在询价开启后、成交确认前认定报价无效", code="cannot_reject_now")
        offers = list((await s.execute(select(Offer).where(Offer.procedure_id == p.id))).scalars())
        supplier = next((k for k, n in inquiry_labels(offers).items() if n == label_no), None)
        if supplier is None:
            raise NotFound("没有这个报价供应商", code="quote_not_found")
        latest = await s.scalar(
            select(Offer)
            .where(Offer.procedure_id == p.id, Offer.supplier_org_id == supplier, Offer.seq.is_not(None))
            .order_by(Offer.seq.desc())
            .limit(1)
        )
        if latest is None or latest.status != OfferStatus.ACCEPTED or latest.rejected:
            raise Conflict("该供应商没有有效报价", code="quote_not_valid")
        latest.rejected, latest.reason = True, reason
        await s.flush()
        result = await _outcome(tx, p)
        if result.failed:
            await _fail(tx, p, result.failed_reason)
        else:
            winner = result.winner
            assert winner is not None
            if uuid.UUID(winner.supplier) != p.awarded_supplier_id:
                _award(tx, p, uuid.UUID(winner.supplier), winner.amount, clock.now())
    return p


KIND_NAMES = {"inquiry": "在线询价", "auction": "反向竞价"}


ORDER_PREFIX = {"inquiry": "XJD", "auction": "JJD"}  # the numbers of the orders awards make


def _split(items: list[ProcedureItem], total: Decimal, unit_prices: dict[int, str]) -> list[Decimal]:
    """Unit prices per item whose line amounts add up to the total exactly."""
    if len(items) == 1 and not unit_prices:
        item = items[0]
        price = round_money(total / item.quantity)
        if round_money(price * item.quantity) != total:
            raise InvalidInput(
                f"成交总价 {total:,.2f} 元不能被数量 {item.quantity:g} 整除到分，请填写单价使金额合计等于成交总价",
                code="split_required",
            )
        return [price]
    prices = []
    for item in items:
        raw = unit_prices.get(item.line_no)
        if raw is None:
            raise InvalidInput(f"请填写第{item.line_no}项「{item.item_name}」的单价", code="split_required")
        try:
            prices.append(money(raw))
        except MoneyError:
            raise InvalidInput(f"第{item.line_no}项单价格式不正确", code="split_invalid") from None
    amount = sum((round_money(pr * i.quantity) for pr, i in zip(prices, items, strict=True)), Decimal(0))
    if amount != total:
        raise InvalidInput(
            f"分项金额合计 {amount:,.2f} 元应等于成交总价 {total:,.2f} 元", code="split_mismatch"
        )
    return prices


async def decline_award(
    db: Database, who: Principal | None, procedure_id: uuid.UUID, *, lapsed: bool = False
) -> Procedure:
    """The awarded supplier declines (or its confirmation window lapsed): the award passes to the next
    in rank; with nobody left the procedure fails (budget released, failure notice published)."""
    async with db.write() as tx:
        s = tx.session
        p = await s.get(Procedure, procedure_id, with_for_update=True)
        if p is None:
            raise NotFound("采购项目不存在", code="procedure_not_found")
        if who is not None:
            await _require_visible(s, who, p)
        if p.status != ProcedureStatus.AWARDED:
            if lapsed:
                return p  # already confirmed, passed on or failed: the lapse job has nothing to do
            raise Conflict("该项目没有待确认的成交", code="no_award")
        now = clock.now()
        assert p.confirm_due_at is not None
        if lapsed:
            if now < p.confirm_due_at:
                return p
        elif who is None or p.awarded_supplier_id != who.org_id:
            raise Conflict("贵单位没有待确认的成交", code="no_award")
        p.passed_over = [*p.passed_over, str(p.awarded_supplier_id)]
        result = await _outcome(tx, p)
        nxt = rules.pass_on(result.ranked, set(p.passed_over))
        if nxt is None:
            await _fail(tx, p, "排名在前的供应商均放弃或未在期限内确认成交，项目失败")
        else:
            _award(tx, p, uuid.UUID(nxt.supplier), nxt.amount, now)
    return p

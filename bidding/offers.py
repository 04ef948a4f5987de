"""Offers into a procedure: sealed quotes into an inquiry (submit, revise, withdraw) and bids into
an auction, each one a row of `offers` (refused bids too), with the database as the final arbiter.

Sealing: before the deadline nothing here returns another supplier's quote, or how many quotes
there are, to anyone — the buyer included. What people see of offers is `bidding.views`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import msgspec
from sqlalchemy import Table, func, select, update

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
from bidding.service import inquiry_rules_of, lock, rules_of, schedule_close
from catalog.models import Listing, ListingStatus
from mall.core import clock, fields
from mall.core.auth import Principal
from mall.core.db import Database, Tx, commit_may_have_happened, retried, retried_if_rolled_back
from mall.core.errors import Conflict, Forbidden, NotFound, RuleViolation, TooManyAttempts
from mall.core.money import MoneyError, money
from mall.notify import notices
from mall.sanctions import standing

# Refused bids counted against a user's limit (settings.bid_refusals_per_minute) over this window.
REFUSAL_WINDOW = timedelta(minutes=1)


class AmountIn(msgspec.Struct, forbid_unknown_fields=True):
    """A quote or a bid. Free-form within its limit: a malformed amount is an offer the rules refuse
    and the bid log keeps."""

    amount: fields.BidText


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


async def _load_open(tx: Tx, who: Principal, procedure_id: uuid.UUID, kind: str) -> Procedure:
    p = await lock(tx, procedure_id, who)
    if p.kind != kind:
        raise NotFound("采购项目不存在", code="procedure_not_found")
    assert who.org_id is not None
    if not await _eligible(tx, p, who.org_id):
        raise Forbidden("贵单位不在本项目的邀请或品目范围内，不能报价", code="not_eligible")
    now = clock.now()
    if p.status == ProcedureStatus.PUBLISHED and p.starts_at <= now < p.ends_at:
        p.status = ProcedureStatus.OPEN
    return p


def _log(
    tx: Tx,
    p: Procedure,
    who: Principal,
    status: OfferStatus,
    seq: int | None,
    amount: Decimal | None,
    typed: str,
    at: datetime,
    refuse_code: str = "",
    reason: str = "",
) -> Offer:
    """One row of the procedure's offer log: every quote, withdrawal and bid attempt is one."""
    assert who.org_id is not None
    offer = Offer(
        procedure_id=p.id,
        supplier_org_id=who.org_id,
        user_id=who.user_id,
        seq=seq,
        amount=amount,
        typed=typed,
        status=status,
        refuse_code=refuse_code,
        reason=reason,
        at=at,
    )
    tx.session.add(offer)
    return offer


def _money_or_refuse(raw: str) -> Decimal:
    try:
        return money(raw)
    except MoneyError:
        raise rules.BidRefused("bad_amount", "报价金额格式不正确，应为不超过两位小数的金额") from None


def typed_amount(raw: str) -> str:
    """A quote or bid as typed, kept in the bid log: a malformed amount is an offer refused by the
    rules (and logged), but text the log cannot keep as typed is refused before it is an offer."""
    return fields.text(raw, "报价金额", fields.BID_TEXT_MAX, field="amount")


@retried_if_rolled_back
async def quote(db: Database, who: Principal, procedure_id: uuid.UUID, amount_raw: str) -> Offer:
    """Submit or revise a sealed quote. The latest one counts; nobody else sees it before the deadline."""
    amount_raw = typed_amount(amount_raw)
    async with db.write() as tx:
        p = await _load_open(tx, who, procedure_id, ProcedureKind.INQUIRY)
        assert who.org_id is not None
        await standing.require_good_standing(tx.session, [who.org_id], "报价", own=True)
        amount = _money_or_refuse(amount_raw)
        rules.check_quote(inquiry_rules_of(p), amount, now=clock.now(), deadline=p.ends_at)
        assert who.org_id is not None
        await _check_revisions(tx, p, who.org_id)
        # No label is drawn here: a label numbered on arrival would tell the supplier how many quoted
        # before it. Inquiry labels are given at opening (`inquiry_labels`).
        p.offer_seq += 1
        offer = _log(tx, p, who, OfferStatus.ACCEPTED, p.offer_seq, amount, amount_raw, clock.now())
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


@retried
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
        _log(tx, p, who, OfferStatus.WITHDRAWN, p.offer_seq, None, "", clock.now())


def too_many_refusals() -> TooManyAttempts:
    return TooManyAttempts(
        "出价被拒绝次数过多，请核对竞价规则后一分钟再出价",
        code="too_many_refused_bids",
    )


async def _landed(tx: Tx, p: Procedure, org_id: uuid.UUID, own: Decimal, amount_raw: str) -> int | None:
    """The seq of this bid if an earlier run of it committed unseen: the supplier's own lowest
    accepted bid is this very amount (a new bid of it would be refused as not below its own)."""
    try:
        amount = money(amount_raw)
    except MoneyError:
        return None
    if amount != own:
        return None
    seq: int | None = await tx.session.scalar(
        select(func.max(Offer.seq)).where(
            Offer.procedure_id == p.id,
            Offer.supplier_org_id == org_id,
            Offer.status == OfferStatus.ACCEPTED,
            Offer.amount == amount,
        )
    )
    return seq


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


async def _tell_outbid(tx: Tx, p: Procedure, bidder: uuid.UUID, previous: Decimal) -> None:
    """The suppliers that held the room's lowest bid before this one beat it are told (mall.notify)."""
    held = await tx.session.scalars(
        select(Offer.supplier_org_id)
        .where(
            Offer.procedure_id == p.id,
            Offer.status == OfferStatus.ACCEPTED,
            Offer.amount == previous,
            Offer.supplier_org_id != bidder,
        )
        .distinct()
    )
    notices.outbid(tx.session, list(held), p.id, p.title)


@dataclass(frozen=True)
class BidResult:
    accepted: bool
    seq: int | None
    amount: Decimal | None
    lowest: Decimal | None
    ends_at: datetime
    code: str = ""
    detail: str = ""


@retried  # after a connection lost in COMMIT, a bid that landed is recognised (commit_may_have_happened)
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
        await standing.require_good_standing(s, [who.org_id], "出价", own=True)
        seen_seq = p.offer_seq
        now = clock.now()
        own = await s.scalar(
            select(func.min(Offer.amount)).where(
                Offer.procedure_id == p.id,
                Offer.supplier_org_id == who.org_id,
                Offer.status == OfferStatus.ACCEPTED,
            )
        )
        if commit_may_have_happened() and own is not None:
            landed = await _landed(tx, p, who.org_id, own, amount_raw)
            if landed is not None:
                return BidResult(True, landed, own, p.lowest_amount, p.ends_at)
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
            previous = p.lowest_amount
            lowest = amount if previous is None else min(amount, previous)
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
                    schedule_close(tx, p.id, new_end)  # the close job moves with the end
                # the anonymous label comes with the first accepted bid, so it counts only bidders,
                # whom the room shows anyway (never suppliers that were only refused)
                await _participant(tx, p, who.org_id)
                _log(tx, p, who, OfferStatus.ACCEPTED, seen_seq + 1, amount, amount_raw, now)
                if previous is not None and amount < previous:
                    await _tell_outbid(tx, p, who.org_id, previous)
                return BidResult(True, seen_seq + 1, amount, lowest, new_end)
        if max_refusals is not None and await _recent_refusals(tx, p.id, who.user_id, now) >= max_refusals:
            raise too_many_refusals()  # counted under the procedure's row lock: exact, whatever the races
        # the reason is the rules' own message: a short fixed text with amounts
        _log(tx, p, who, OfferStatus.REFUSED, None, amount, amount_raw, now, refused.code, refused.detail)
        ends_at = p.ends_at
    # the refusal is logged (committed above) and then reported as a 422 with its stable code
    raise refused if refused else RuleViolation("出价未被接受", code="bid_refused", ends_at=str(ends_at))

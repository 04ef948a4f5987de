"""What people see of a procedure and its offers: who may see a procedure at all (`visible_clause`,
the one rule the API, the pages, the list and the room share), the status shown, the anonymous labels,
and `view_for`, the only way offers leave the bidding code. Sealing: before the deadline nothing here
returns another supplier's quote, or how many quotes there are, to anyone — the buyer included."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from bidding import rules
from bidding.models import (
    KIND_LABELS,
    PROCEDURE_STATUS_LABELS,
    Offer,
    OfferStatus,
    Participant,
    Procedure,
    ProcedureInvite,
    ProcedureItem,
    ProcedureKind,
    ProcedureStatus,
)
from mall.core import clock
from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.errors import InvalidInput, NotFound
from mall.credit.models import SupplierCredit
from mall.credit.record import scores_for
from mall.sme.current import declarations_on
from mall.sme.rules import SIZES, SMALL_OR_MICRO


def quotes_of(offers: list[Offer]) -> list[rules.Quote]:
    """An inquiry's offers as the rules see them (accepted and withdrawn quotes, in order)."""
    out = []
    for o in offers:
        if o.seq is None or o.status not in (OfferStatus.ACCEPTED, OfferStatus.WITHDRAWN):
            continue
        out.append(
            rules.Quote(
                supplier=str(o.supplier_org_id),
                amount=o.amount if o.amount is not None else Decimal(0),
                at=o.at,
                seq=o.seq,
                withdrawn=o.status == OfferStatus.WITHDRAWN,
                rejected_reason=o.reason if o.rejected else "",
            )
        )
    return out


def bids_of(offers: list[Offer]) -> list[rules.Bid]:
    """An auction's accepted bids as the rules see them."""
    return [
        rules.Bid(supplier=str(o.supplier_org_id), amount=o.amount, at=o.at, seq=o.seq)
        for o in offers
        if o.status == OfferStatus.ACCEPTED and o.seq is not None and o.amount is not None
    ]


async def sizes_for_deduction(
    s: AsyncSession, p: Procedure, suppliers: Iterable[uuid.UUID]
) -> dict[str, str]:
    """When the buyer enabled the 小微企业 price deduction: each supplier's size by its 中小企业声明函 in
    force on the deadline's day (mall.sme); nothing otherwise."""
    if p.sme_deduction is None:
        return {}
    declared = await declarations_on(s, suppliers, clock.local_date(p.ends_at))
    return {str(k): d.size for k, d in declared.items()}


def deductions_from(p: Procedure, sizes: dict[str, str]) -> dict[str, Decimal]:
    """The price deduction by supplier: the procedure's rate for each small or micro enterprise."""
    if p.sme_deduction is None:
        return {}
    return {k: p.sme_deduction for k, size in sizes.items() if size in SMALL_OR_MICRO}


async def deductions_of(s: AsyncSession, p: Procedure, suppliers: Iterable[uuid.UUID]) -> dict[str, Decimal]:
    """The 小微企业 price deduction by supplier, when the buyer enabled it."""
    return deductions_from(p, await sizes_for_deduction(s, p, suppliers))


def ranked_with_flags(p: Procedure, offers: list[Offer]) -> tuple[list[Any], dict[str, list[str]]]:
    """The valid offers in rank order, and the abnormally-low triggers (财库〔2026〕2号) per supplier."""
    valid: list[Any] = (
        rules.ranking(bids_of(offers))
        if p.kind == ProcedureKind.AUCTION
        else rules.current_quotes(quotes_of(offers))
    )
    ordered = sorted(valid, key=lambda o: (o.amount, o.seq))
    return ordered, (rules.abnormally_low_offers(ordered, p.ceiling) if ordered else {})


# What suppliers may see of procedures they may take part in: not drafts, not withdrawn ones.
SUPPLIER_SEES = (
    ProcedureStatus.PUBLISHED,
    ProcedureStatus.OPEN,
    ProcedureStatus.CLOSED,
    ProcedureStatus.AWARDED,
    ProcedureStatus.CONFIRMED,
    ProcedureStatus.FAILED,
)


def public_clause() -> ColumnElement[bool]:
    """What anyone, logged in or not, may read as a public notice (公告): a procedure open to every
    supplier of its 品目, once published (a draft or a withdrawn one is nobody's business); one by
    invitation is not published to the public."""
    return and_(Procedure.status.in_(SUPPLIER_SEES), Procedure.eligibility == "category")


def visible_clause(who: Principal | None) -> ColumnElement[bool]:
    """Who may read a procedure's page: its parties (`party_clause`) and, for the public notices
    (`public_clause`), anyone, logged in or not. What each reads of its offers is `view_for`'s."""
    if who is None:
        return public_clause()
    return or_(party_clause(who), public_clause())


def party_clause(who: Principal | None) -> ColumnElement[bool]:
    """The one rule of who takes part in a procedure (the lists, the room, every write use it): the
    center and the regulator in all (the platform's administrators in none: business records are
    not their duty); a buyer in its own unit's; a supplier in those open to its 品目 or to which it
    is invited (an agreement's suppliers are invited); a visitor who is not logged in reads the
    public notices (`public_clause`); nobody else takes part in any."""
    if who is None:
        return public_clause()
    if who.role in ("center", "regulator"):
        return true()
    if who.role == "buyer" and who.org_id is not None:
        return Procedure.buyer_org_id == who.org_id
    if who.role == "supplier" and who.org_id is not None:
        invited = select(ProcedureInvite.procedure_id).where(ProcedureInvite.supplier_org_id == who.org_id)
        return and_(
            Procedure.status.in_(SUPPLIER_SEES),
            or_(Procedure.eligibility == "category", Procedure.id.in_(invited)),
        )
    return false()


async def visible(s: AsyncSession, who: Principal | None, procedure_id: uuid.UUID) -> Procedure:
    """The procedure, if `who` may see it; otherwise the same 404 as for one that does not exist."""
    p = await s.scalar(select(Procedure).where(Procedure.id == procedure_id, visible_clause(who)))
    if p is None:
        raise NotFound("采购项目不存在", code="procedure_not_found")
    return p


async def require_visible(s: AsyncSession, who: Principal, procedure_id: uuid.UUID) -> None:
    """Writes answer like reads: a procedure `who` is no party to is one that does not exist (404),
    so a refusal never tells an outsider that an invitation-only procedure is there."""
    if await s.scalar(select(Procedure.id).where(Procedure.id == procedure_id, party_clause(who))) is None:
        raise NotFound("采购项目不存在", code="procedure_not_found")


async def is_party(s: AsyncSession, who: Principal | None, procedure_id: uuid.UUID) -> bool:
    """Whether `who` takes part in the procedure (its buyer's unit, an eligible supplier, the center
    or the regulator): only they enter an auction's room or read more than the public notice."""
    if who is None:
        return False
    return (
        await s.scalar(select(Procedure.id).where(Procedure.id == procedure_id, party_clause(who)))
        is not None
    )


async def items_of(s: AsyncSession, procedure_id: uuid.UUID) -> list[ProcedureItem]:
    """The procedure's items in their order."""
    return list(
        (
            await s.execute(
                select(ProcedureItem)
                .where(ProcedureItem.procedure_id == procedure_id)
                .order_by(ProcedureItem.line_no)
            )
        ).scalars()
    )


def shown_status_clause(status: str, now: datetime) -> ColumnElement[bool]:
    """Procedures whose shown status (`shown_status`) is `status`: a filter that tells no more than
    the status shown does (an open one matches whether or not anyone has quoted yet)."""
    if status == ProcedureStatus.OPEN:
        begun = and_(Procedure.status == ProcedureStatus.PUBLISHED, Procedure.starts_at <= now)
        return or_(Procedure.status == ProcedureStatus.OPEN, begun)
    if status == ProcedureStatus.PUBLISHED:
        return and_(Procedure.status == ProcedureStatus.PUBLISHED, Procedure.starts_at > now)
    return Procedure.status == status


@dataclass(frozen=True)
class ListFilter:
    kind: str = ""  # ProcedureKind, or "" for both
    status: str = ""  # a shown status, or "" for any
    category: str = ""  # a 品目 code prefix that one of its items falls under
    region: str = ""  # a region code prefix (410000 → the province, as 41)


def list_filter(kind: str = "", status: str = "", category: str = "", region: str = "") -> ListFilter:
    """The list's filters as given, checked (400 naming the parameter)."""
    kind, status, category, region = (v.strip() for v in (kind, status, category, region))
    if kind and kind not in KIND_LABELS:
        raise InvalidInput(
            "项目类型应为 inquiry（在线询价）或 auction（反向竞价）",
            code="invalid_parameter",
            parameter="kind",
        )
    if (status and status not in PROCEDURE_STATUS_LABELS) or status == ProcedureStatus.DRAFT:
        raise InvalidInput("项目状态不正确", code="invalid_parameter", parameter="status")
    if category and not re.fullmatch(r"[ABC][0-9]{0,15}", category):
        raise InvalidInput("品目编码格式不正确，如 A0201", code="invalid_parameter", parameter="category")
    if region and not re.fullmatch(r"[1-9][0-9]{5}", region):
        raise InvalidInput("行政区划代码应为6位数字", code="invalid_parameter", parameter="region")
    return ListFilter(kind, status, category, region)


async def list_visible(
    s: AsyncSession, who: Principal | None, f: ListFilter, page: int, per_page: int
) -> tuple[int, list[Procedure]]:
    """The procedures `who` may see that match `f`, newest first: the total and one page."""
    # a logged-in user's list is of the procedures it takes part in; a visitor's, the public notices
    stmt = select(Procedure).where(party_clause(who) if who is not None else public_clause())
    if f.kind:
        stmt = stmt.where(Procedure.kind == f.kind)
    if f.status:
        stmt = stmt.where(shown_status_clause(f.status, clock.now()))
    if f.category:
        under = select(ProcedureItem.procedure_id).where(ProcedureItem.category_code.startswith(f.category))
        stmt = stmt.where(Procedure.id.in_(under))
    if f.region:
        level = (
            f.region[:2]
            if f.region.endswith("0000")
            else f.region[:4]
            if f.region.endswith("00")
            else f.region
        )
        stmt = stmt.where(Procedure.region_code.startswith(level))
    total = await s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await s.execute(
        stmt.order_by(Procedure.created_at.desc(), Procedure.id).offset((page - 1) * per_page).limit(per_page)
    )
    return total, list(rows.scalars())


def shown_status(p: Procedure, now: datetime) -> str:
    """The status people see. The stored status moves from published to open only when the first
    offer arrives; shown as stored, it would tell that someone has quoted."""
    if p.status == ProcedureStatus.PUBLISHED and p.starts_at <= now:
        return ProcedureStatus.OPEN
    return p.status


def inquiry_labels(offers: list[Offer]) -> dict[uuid.UUID, int]:
    """An inquiry's anonymous labels, given at opening: suppliers numbered in the order of their first
    quote. Never shown before the deadline (it would count the suppliers that quoted earlier)."""
    first: dict[uuid.UUID, int] = {}
    for o in sorted((o for o in offers if o.seq is not None), key=lambda o: o.seq or 0):
        first.setdefault(o.supplier_org_id, len(first) + 1)
    return first


@dataclass(frozen=True)
class OfferView:
    label: str  # 供应商 #n until the result is published; the name after
    amount: str | None
    at: datetime
    status: str
    mine: bool
    flags: tuple[str, ...] = ()  # abnormally-low triggers (财库〔2026〕2号), for the buyer's review
    credit: str = ""  # the supplier's credit score and grade (mall.credit), for the buyer and overseers
    # with the 小微企业 price deduction: the price it is ranked at, and why ("小型企业，扣除10%")
    evaluated: str | None = None
    deduction: str = ""


CREDIT_READERS = ("buyer", "center", "regulator")  # who sees each offer's supplier credit, once opened


def _credit(c: SupplierCredit | None) -> str:
    return "" if c is None else c.label


OWN = "本单位"  # how a supplier's own offers are labelled while no anonymous label may be shown


async def view_for(db: Database, who: Principal | None, procedure_id: uuid.UUID) -> dict[str, Any]:
    """What `who` may see of a procedure's offers right now (404 if it may not see the procedure).

    Inquiry, before the deadline: a supplier sees only its own quotes, labelled as its own; the
    buyer and everyone else see neither quotes nor their number. Auction, while open: the current
    lowest price, the caller's own bids and rank, anonymous labels. After closing: every valid
    offer, ranked. A visitor who is not logged in (`who` None) reads the notice: nothing of the
    offers while the procedure is open, not even of an auction (the room is for its participants),
    and after closing the ranked offers, as the published result, without the review's flags."""
    async with db.read() as s:
        p = await visible(s, who, procedure_id)
        if not await is_party(s, who, procedure_id):
            who = None  # a logged-in outsider reads the public notice, as a visitor does
        offers = list(
            (await s.execute(select(Offer).where(Offer.procedure_id == p.id).order_by(Offer.at))).scalars()
        )
        if p.kind == ProcedureKind.INQUIRY:
            labels = inquiry_labels(offers)
        else:
            labels = {
                part.supplier_org_id: part.label_no
                for part in (
                    await s.execute(select(Participant).where(Participant.procedure_id == p.id))
                ).scalars()
            }
        credits = (
            await scores_for(s, (o.supplier_org_id for o in offers))
            if who is not None and who.role in CREDIT_READERS
            else {}
        )
        sizes = await sizes_for_deduction(s, p, {o.supplier_org_id for o in offers})
        deductions = deductions_from(p, sizes)
    now = clock.now()
    sealed = p.status in (ProcedureStatus.PUBLISHED, ProcedureStatus.OPEN) and now < p.ends_at
    out: dict[str, Any] = {"status": shown_status(p, now), "ends_at": p.ends_at, "sealed": sealed}
    hide_labels = p.kind == ProcedureKind.INQUIRY and sealed

    def label_of(supplier_org_id: uuid.UUID) -> str:
        n = None if hide_labels else labels.get(supplier_org_id)
        return OWN if n is None else f"供应商 #{n}"

    org_id = who.org_id if who is not None else None
    mine = [o for o in offers if org_id is not None and o.supplier_org_id == org_id]
    out["mine"] = [
        OfferView(
            label_of(o.supplier_org_id), None if o.amount is None else str(o.amount), o.at, o.status, True
        )
        for o in mine
    ]
    if sealed and (p.kind == ProcedureKind.INQUIRY or who is None):
        return out  # nothing about anyone else, not even how many
    if p.kind == ProcedureKind.AUCTION:
        out["lowest"] = None if p.lowest_amount is None else str(p.lowest_amount)
        ranked = rules.ranking(bids_of(offers))
        if org_id is not None:
            rank = next((i for i, b in enumerate(ranked, start=1) if b.supplier == str(org_id)), None)
            out["my_rank"] = rank
        out["bidders"] = len(ranked)
    if not sealed:
        ordered, flagged = ranked_with_flags(p, offers)
        # the order of the result: after the 小微企业 price deduction, as the award was made
        ordered = sorted(ordered, key=lambda o: (rules.evaluated(o, deductions), o.seq))
        out["sme_deduction"] = None if p.sme_deduction is None else str(p.sme_deduction)
        out["ranked"] = [
            OfferView(
                f"供应商 #{labels.get(uuid.UUID(o.supplier), 0)}",
                str(o.amount),
                o.at,
                OfferStatus.ACCEPTED,
                org_id is not None and o.supplier == str(org_id),
                tuple(flagged.get(o.supplier, ())) if who is not None else (),
                _credit(credits.get(uuid.UUID(o.supplier))),
                str(rules.evaluated(o, deductions)) if o.supplier in deductions else None,
                f"{SIZES[sizes[o.supplier]]}，扣除{(deductions[o.supplier] * 100).normalize():f}%"
                if o.supplier in deductions
                else "",
            )
            for o in ordered
        ]
    return out

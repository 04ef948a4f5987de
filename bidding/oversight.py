"""What the regulator watches in inquiries and auctions (在线监管): abnormally low offers, failed
procedures, and suppliers that decline or let lapse the awards they won."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.models import Offer, Procedure, ProcedureStatus
from bidding.views import ranked_with_flags
from mall import accounts
from mall.core.regions import in_scope

# Statuses after the deadline, once offers are open (identities may be shown to the regulator).
OPENED = (
    ProcedureStatus.CLOSED,
    ProcedureStatus.AWARDED,
    ProcedureStatus.FAILED,
    ProcedureStatus.CONFIRMED,
)


@dataclass(frozen=True)
class LowOffer:
    procedure_id: uuid.UUID
    number: str
    title: str
    kind: str
    buyer_name: str
    supplier_name: str
    amount: Decimal
    ceiling: Decimal
    reasons: tuple[str, ...]
    won: bool
    closed_at: datetime | None


@dataclass(frozen=True)
class FailedProcedure:
    procedure_id: uuid.UUID
    number: str
    title: str
    kind: str
    buyer_name: str
    reason: str
    closed_at: datetime | None


@dataclass(frozen=True)
class Decliner:
    supplier_name: str
    declined: int  # awards declined or let lapse
    procedures: tuple[str, ...]  # their numbers


@dataclass(frozen=True)
class BiddingWatch:
    low_offers: list[LowOffer]
    failed: list[FailedProcedure]
    decliners: list[Decliner]
    examined: int  # how many recently closed procedures were looked at


async def bidding_watch(
    session: AsyncSession, *, recent: int = 200, scope: str | None = None
) -> BiddingWatch:
    """Look at the most recently closed procedures (at most `recent`), in the region `scope` (None:
    everywhere)."""
    procedures = list(
        (
            await session.execute(
                select(Procedure)
                .where(
                    Procedure.status.in_(OPENED),
                    Procedure.closed_at.is_not(None),
                    in_scope(Procedure.region_code, scope),
                )
                .order_by(Procedure.closed_at.desc())
                .limit(recent)
            )
        ).scalars()
    )
    ids = [p.id for p in procedures]
    offers: dict[uuid.UUID, list[Offer]] = {i: [] for i in ids}
    if ids:
        for o in (
            await session.execute(select(Offer).where(Offer.procedure_id.in_(ids)).order_by(Offer.at))
        ).scalars():
            offers[o.procedure_id].append(o)
    org_ids: set[uuid.UUID] = {p.buyer_org_id for p in procedures}
    org_ids |= {o.supplier_org_id for group in offers.values() for o in group}
    org_ids |= {uuid.UUID(s) for p in procedures for s in (p.passed_over or [])}
    names = await accounts.names_of(session, org_ids)

    low: list[LowOffer] = []
    failed: list[FailedProcedure] = []
    declines: Counter[uuid.UUID] = Counter()
    declined_in: dict[uuid.UUID, list[str]] = {}
    for p in procedures:
        buyer = str(names.get(p.buyer_org_id, ""))
        ordered, flagged = ranked_with_flags(p, offers[p.id])
        for o in ordered:
            reasons = flagged.get(o.supplier)
            if reasons:
                supplier = uuid.UUID(o.supplier)
                low.append(
                    LowOffer(
                        p.id,
                        p.number,
                        p.title,
                        p.kind,
                        buyer,
                        str(names.get(supplier, "")),
                        o.amount,
                        p.ceiling,
                        tuple(reasons),
                        supplier == p.awarded_supplier_id,
                        p.closed_at,
                    )
                )
        if p.status == ProcedureStatus.FAILED:
            failed.append(FailedProcedure(p.id, p.number, p.title, p.kind, buyer, p.result_note, p.closed_at))
        for raw in p.passed_over or []:
            supplier = uuid.UUID(raw)
            declines[supplier] += 1
            declined_in.setdefault(supplier, []).append(p.number)
    decliners = [Decliner(str(names.get(s, "")), n, tuple(declined_in[s])) for s, n in declines.most_common()]
    return BiddingWatch(low, failed, decliners, len(procedures))

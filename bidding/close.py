"""Closing a procedure at its deadline: the outcome of `bidding.rules` over the offer log, the award
to the first in rank, or the failure (budget released, failure notice published with the ranking)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from bidding import rules
from bidding.models import Offer, Procedure, ProcedureKind, ProcedureStatus
from bidding.service import inquiry_rules_of, lock, rules_of
from bidding.views import bids_of, deductions_of, items_of, quotes_of
from mall import accounts, budgets
from mall.core import clock, outbox
from mall.core.db import Database, Tx, retried
from mall.core.errors import Conflict
from mall.core.models import Organization
from mall.core.money import money_str, quantity_str
from mall.ledger import disclosure


@retried
async def close(db: Database, procedure_id: uuid.UUID, *, pause: float = 0.0) -> Procedure:
    """At the deadline: compute the outcome. Idempotent — a closed procedure is returned as it is.
    Success names the first in rank, who must confirm within the confirmation window; failure
    releases the budget reservation and publishes a failure notice. `pause` is fault injection for
    the test suite: the transaction stalls after writing the outcome and before committing it."""
    async with db.write() as tx:
        p = await lock(tx, procedure_id)
        if p.status not in (ProcedureStatus.PUBLISHED, ProcedureStatus.OPEN):
            return p
        now = clock.now()
        if now < p.ends_at:
            raise Conflict("尚未到截止时间", code="not_yet_closed")
        p.closed_at = now
        await settle(tx, p, now)
        if pause:
            await asyncio.sleep(pause)
    return p


async def outcome(tx: Tx, p: Procedure) -> Any:
    offers = list((await tx.session.execute(select(Offer).where(Offer.procedure_id == p.id))).scalars())
    deductions = await deductions_of(tx.session, p, {o.supplier_org_id for o in offers})
    if p.kind == ProcedureKind.INQUIRY:
        return rules.inquiry_outcome(inquiry_rules_of(p), quotes_of(offers), deductions)
    return rules.outcome(rules_of(p), bids_of(offers), deductions=deductions)


async def settle(tx: Tx, p: Procedure, now: datetime) -> None:
    """The outcome of the offers as they now stand: the first in rank is awarded (unless it already
    is), or the procedure fails."""
    result = await outcome(tx, p)
    if result.failed:
        await fail(tx, p, result.failed_reason)
        return
    winner = result.winner
    assert winner is not None
    if p.status != ProcedureStatus.AWARDED or uuid.UUID(winner.supplier) != p.awarded_supplier_id:
        award_to(tx, p, uuid.UUID(winner.supplier), winner.amount, now)


def award_to(tx: Tx, p: Procedure, supplier_id: uuid.UUID, amount: Decimal, now: datetime) -> None:
    """Name the supplier that must confirm within the confirmation window; the lapse job waits for it."""
    p.status = ProcedureStatus.AWARDED
    p.awarded_supplier_id, p.awarded_amount, p.awarded_at = supplier_id, amount, now
    p.confirm_due_at = now + timedelta(hours=p.confirm_hours)

    tx.after_commit(lambda: outbox.kick(outbox.AWARD_LAPSE, p.id, p.confirm_due_at))


async def fail(tx: Tx, p: Procedure, reason: str) -> None:
    """The procedure fails: the budget reservation is released and a failure notice published."""
    p.status, p.result_note = ProcedureStatus.FAILED, reason  # the rules' or this module's fixed text
    if p.reserved_amount > 0:
        await budgets.release(tx.session, p.budget_line_id, p.reserved_amount, None, procedure_id=p.id)
        p.reserved_amount = Decimal(0)

    disclosure.stage(tx, await failure_payload(tx, p, reason))


async def ranked_quotes(tx: Tx, p: Procedure) -> list[dict[str, Any]]:
    """Every valid quote or final bid, ranked, with the supplier's name: published with the result."""
    result = await outcome(tx, p)
    names = {
        str(i): n
        for i, n in (
            await accounts.names_of(tx.session, (uuid.UUID(o.supplier) for o in result.ranked))
        ).items()
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
    buyer = await tx.session.get(Organization, p.buyer_org_id)
    assert buyer is not None
    items = await items_of(tx.session, p.id)
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

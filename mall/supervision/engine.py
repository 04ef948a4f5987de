"""Running the rules: a hit opens a case (once per rule and subject), a case whose subject no longer
hits is marked so (never closed by the machine).

`run_full` (nightly) reads everything in batches; `run_incremental` reads only the buyers,
procedures and designation applications whose events were staged on the "risk" outbox topic
(mall.core.outbox.stage_risk). Over the same facts both open the same cases.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock
from mall.core.db import Database
from mall.core.settings import Settings
from mall.notify.models import Kind
from mall.notify.stage import Item, for_org, stage
from mall.orders.steps import CONTRACT_FILING_WORKING_DAYS
from mall.supervision import facts
from mall.supervision import rules as R
from mall.supervision.facts import Scope
from mall.supervision.models import CaseEvent, OversightCase

log = logging.getLogger("mall.supervision")

ORDER_RULES = (R.NEAR_THRESHOLD, R.ABOVE_MARKET, R.LATE_PAYMENT, R.UNFILED_CONTRACT, R.LATE_ACCEPTANCE)
PROCEDURE_RULES = (
    R.FEW_PARTICIPANTS,
    R.IDENTICAL_OFFERS,
    R.CLOSE_TO_RUNNER_UP,
    R.ABNORMALLY_LOW,
    R.DECLINED_AWARD,
)
OPEN_STATUSES = ("open", "explained")


def params_of(settings: Settings, now: datetime) -> R.Params:
    """The rules' parameters: the settings, and the cut-offs the working-day calendar gives today."""
    cal = settings.work_calendar
    today = clock.local_date(now)
    filing = datetime.combine(
        cal.add_working_days(today, -CONTRACT_FILING_WORKING_DAYS), time.min, clock.SHANGHAI
    )
    accept = datetime.combine(
        cal.add_working_days(today, -settings.acceptance_working_days), time.min, clock.SHANGHAI
    )
    return R.Params(
        open_tender_threshold=settings.open_tender_threshold,
        decentralized_threshold=settings.decentralized_threshold,
        min_participants=settings.min_participants,
        payment_due_days=settings.payment_due_days,
        now=now,
        filing_cutoff=filing,
        acceptance_cutoff=accept,
        market_margin=settings.pricewatch_above_market_share,
        market_min_samples=settings.pricewatch_min_samples,
        acceptance_working_days=settings.acceptance_working_days,
        explain_working_days=settings.case_explain_working_days,
    )


def explain_due(settings: Settings, now: datetime, days: int) -> datetime:
    """The end (China time) of the `days`-th working day after today."""
    due = settings.work_calendar.add_working_days(clock.local_date(now), days)
    return datetime.combine(due, datetime.max.time(), clock.SHANGHAI)


def new_case_no(now: datetime) -> str:
    return f"JG{clock.local_date(now):%Y%m%d}{uuid.uuid4().hex[:8].upper()}"


@dataclass
class RunResult:
    opened: int = 0
    hit_again: int = 0
    no_longer: int = 0
    facts: int = 0  # orders and procedures read
    per_rule: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- applying hits


async def _apply(
    db: Database, settings: Settings, now: datetime, hits: list[R.Hit], result: RunResult
) -> None:
    if not hits:
        return
    for h in hits:
        result.per_rule[h.rule] = result.per_rule.get(h.rule, 0) + 1
    due = explain_due(settings, now, settings.case_explain_working_days)
    # one hit per subject (a batch could name one twice)
    unique = list({(h.rule, h.subject_key): h for h in hits}.values())
    for i in range(0, len(unique), 300):
        chunk = unique[i : i + 300]
        async with db.write() as tx:
            s = tx.session
            existing = {
                (c.rule, c.subject_key): c
                for c in (
                    await s.execute(
                        select(OversightCase).where(
                            tuple_(OversightCase.rule, OversightCase.subject_key).in_(
                                [(h.rule, h.subject_key) for h in chunk]
                            )
                        )
                    )
                ).scalars()
            }
            notices: list[Item] = []
            for h in chunk:
                case = existing.get((h.rule, h.subject_key))
                if case is None:
                    case_id = await _open(s, db.is_sqlite, h, now, due, notices)
                    if case_id is not None:
                        result.opened += 1
                        continue
                    case = (
                        await s.execute(
                            select(OversightCase).where(
                                OversightCase.rule == h.rule, OversightCase.subject_key == h.subject_key
                            )
                        )
                    ).scalar_one()
                _hit_again(case, h, now)
                result.hit_again += 1
            # the parties' notices of this chunk's new cases: one outbox row
            stage(s, notices)


async def _open(
    s: AsyncSession, is_sqlite: bool, h: R.Hit, now: datetime, due: datetime, notices: list[Item]
) -> uuid.UUID | None:
    """Insert the case unless another run did it first; the history line and the party's notice."""
    case_id = uuid.uuid4()
    values = {
        "id": case_id,
        "case_no": new_case_no(now),
        "rule": h.rule,
        "subject_key": h.subject_key[:200],
        "status": "open",
        "region_code": (h.region_code or "")[:6],
        "buyer_org_id": h.buyer_org_id,
        "supplier_org_id": h.supplier_org_id,
        "party_org_id": h.party_org_id,
        "summary": h.summary[:300],
        "evidence": h.evidence,
        "hits": 1,
        "still_hit": True,
        "opened_at": now,
        "last_hit_at": now,
        "explain_due_at": due,
        "explanation": "",
        "decision_note": "",
    }
    insert = sqlite.insert if is_sqlite else postgresql.insert
    stmt = (
        insert(OversightCase)
        .values(values)
        .on_conflict_do_nothing(index_elements=["rule", "subject_key"])
        .returning(OversightCase.id)
    )
    got = (await s.execute(stmt)).scalar()
    if got is None:
        return None
    s.add(
        CaseEvent(
            id=uuid.uuid4(),
            case_id=case_id,
            at=now,
            actor_user_id=None,
            actor_label="系统",
            action="opened",
            detail=h.summary[:300],
        )
    )
    name = R.RULE_NAMES.get(h.rule, h.rule)
    notices.append(
        for_org(
            h.party_org_id,
            Kind.CASE_OPENED,
            f"监管立案：{name}",
            f"{h.summary}。请于 {clock.local_date(due).isoformat()} 前在「监管事项」中作出说明。",
            f"/cases/{case_id}",
            ref=f"case:{case_id}",
            key=f"case:{case_id}",
        )
    )
    return case_id


def _hit_again(case: OversightCase, h: R.Hit, now: datetime) -> None:
    case.still_hit = True
    if case.status in OPEN_STATUSES:
        case.hits = (case.hits or 0) + 1
        case.last_hit_at = now
        case.evidence = h.evidence
        case.summary = h.summary[:300]


async def _no_longer(
    db: Database, rules_: Iterable[str], seen: set[tuple[str, str]], where: object | None, result: RunResult
) -> None:
    """Cases of these rules (within `where`) that the run did not hit: still_hit becomes False."""
    rules_ = list(rules_)
    async with db.read() as s:
        stmt = select(OversightCase.id, OversightCase.rule, OversightCase.subject_key).where(
            OversightCase.rule.in_(rules_), OversightCase.still_hit.is_(True)
        )
        if where is not None:
            stmt = stmt.where(where)  # type: ignore[arg-type]
        gone = [i for i, rule, key in (await s.execute(stmt)).all() if (rule, key) not in seen]
    for i in range(0, len(gone), 500):
        async with db.write() as tx:
            await tx.session.execute(
                update(OversightCase).where(OversightCase.id.in_(gone[i : i + 500])).values(still_hit=False)
            )
    result.no_longer += len(gone)


# ---------------------------------------------------------------- the runs


async def _run(db: Database, settings: Settings, now: datetime, scope: Scope | None) -> RunResult:
    p = params_of(settings, now)
    result = RunResult()
    buyers: set[uuid.UUID] | None = None if scope is None else set(scope.buyers)
    procedures: set[uuid.UUID] | None = None if scope is None else set(scope.procedures)
    designations: set[uuid.UUID] | None = None if scope is None else set(scope.designations)
    if scope is not None and procedures:
        async with db.read() as s:
            rotation_buyers: set[uuid.UUID] | None = set(buyers or ()) | await facts.buyers_of_procedures(
                s, procedures
            )
    else:
        rotation_buyers = buyers

    async def seen_of(hits: list[R.Hit], seen: set[tuple[str, str]]) -> None:
        seen.update((h.rule, h.subject_key[:200]) for h in hits)
        await _apply(db, settings, now, hits, result)

    # orders: per-order rules and the checkout's near-threshold rule
    if buyers is None or buyers:
        seen: set[tuple[str, str]] = set()
        async with db.read() as s:
            batches = facts.order_batches(s, buyers)
            async for batch in batches:
                result.facts += len(batch)
                market = await facts.market_for(s, batch)
                hits = (
                    R.near_threshold(batch, p)
                    + R.above_market(batch, market, p)
                    + R.late_payment(batch, p)
                    + R.unfiled_contract(batch, p)
                    + R.late_acceptance(batch, p)
                )
                await seen_of(hits, seen)
        await _no_longer(db, ORDER_RULES, seen, _buyer_clause(buyers), result)

        seen = set()
        async with db.read() as s:
            groups = await facts.split_groups(s, p.open_tender_threshold, buyers)
        await seen_of(R.split_purchase(groups, p), seen)
        await _no_longer(db, (R.SPLIT_PURCHASE,), seen, _buyer_clause(buyers), result)
        seen = set()
        async with db.read() as s:
            async for spend in facts.spend_batches(s, now, buyers):
                await seen_of(R.supplier_concentration(spend, p), seen)
        await _no_longer(db, (R.SUPPLIER_CONCENTRATION,), seen, _buyer_clause(buyers), result)

    if procedures is None or procedures:
        seen = set()
        async with db.read() as s:
            async for procs in facts.procedure_batches(s, procedures):
                result.facts += len(procs)
                hits = (
                    R.few_participants(procs, p)
                    + R.identical_offers(procs)
                    + R.close_to_runner_up(procs, p)
                    + R.abnormally_low_offers(procs)
                    + R.declined_award(procs)
                )
                await seen_of(hits, seen)
        where = (
            None
            if procedures is None
            else func.substr(OversightCase.subject_key, 1, 36).in_([str(x) for x in procedures])
        )
        await _no_longer(db, PROCEDURE_RULES, seen, where, result)

    if rotation_buyers is None or rotation_buyers:
        seen = set()
        async with db.read() as s:
            won = await facts.wins(s, now, p.rotation_months, rotation_buyers)
        await seen_of(R.rotating_winners(won, p), seen)
        await _no_longer(db, (R.ROTATING_WINNERS,), seen, _buyer_clause(rotation_buyers), result)

    if designations is None or designations:
        seen = set()
        async with db.read() as s:
            apps = await facts.applications(s, now, designations)
        await seen_of(R.unreviewed_designation(apps, p), seen)
        where = (
            None if designations is None else OversightCase.subject_key.in_([str(x) for x in designations])
        )
        await _no_longer(db, (R.UNREVIEWED_DESIGNATION,), seen, where, result)
    return result


def _buyer_clause(buyers: set[uuid.UUID] | None) -> object | None:
    return None if buyers is None else OversightCase.buyer_org_id.in_(list(buyers))


async def run_full(db: Database, settings: Settings, now: datetime | None = None) -> RunResult:
    """Every rule over everything (the nightly run)."""
    result = await _run(db, settings, now or clock.now(), None)
    log.info(
        "risk rules: %d fact rows, %d case(s) opened, %d hit again, %d no longer hit",
        result.facts,
        result.opened,
        result.hit_again,
        result.no_longer,
    )
    return result


async def run_incremental(db: Database, settings: Settings, now: datetime | None, scope: Scope) -> RunResult:
    """The rules that read what `scope` names, over it only."""
    if not scope:
        return RunResult()
    return await _run(db, settings, now or clock.now(), scope)

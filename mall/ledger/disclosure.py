"""The disclosure ledger (信息公开): every deal becomes a hash-chained, append-only public record.

Deals write an outbox row in their own transaction; `publish_pending` turns pending rows into
ledger records in outbox order, under the ledger-head lock, so sequence numbers are gap-free and a
record is never visible before the ones before it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mall.core import clock, outbox
from mall.core.db import Database, Tx, retried
from mall.core.errors import InvalidInput, NotFound
from mall.core.models import Outbox, OutboxStatus
from mall.core.money import money
from mall.ledger.models import DisclosureRecord, LedgerHead

log = logging.getLogger("mall.disclosure")
GENESIS = "0" * 64
TOPIC = "disclosure"
MODES = ("supermarket", "agreement", "designated", "inquiry", "auction")
KINDS = ("deal", "correction", "cancellation", "failure")
MODE_LABELS = {
    "supermarket": "网上超市",
    "agreement": "协议供货",
    "designated": "定点服务",
    "inquiry": "在线询价",
    "auction": "反向竞价",
}
KIND_LABELS = {"deal": "成交", "correction": "更正", "cancellation": "取消", "failure": "失败"}


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the record without its `hash` key."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def stage(tx: Tx, payload: dict[str, Any], record_id: uuid.UUID | None = None) -> uuid.UUID:
    """Write the outbox row for a record in the caller's transaction; enqueue the publisher after commit."""
    record_id = record_id or uuid.uuid4()
    row = Outbox(
        id=uuid.uuid4(),
        topic=TOPIC,
        payload={**payload, "record_id": str(record_id)},
        status=OutboxStatus.PENDING,
        created_at=clock.now(),
    )
    tx.session.add(row)

    tx.after_commit(lambda: outbox.kick(outbox.PUBLISH, row.id))
    return record_id


@retried
async def publish_pending(db: Database, *, limit: int = 200, pause: float = 0.0) -> int:
    """Publish pending outbox rows, oldest first. Safe to run any number of times, concurrently."""
    async with db.write() as tx:
        s = tx.session
        head = (await s.execute(select(LedgerHead).where(LedgerHead.id == 1).with_for_update())).scalar_one()
        rows = (
            await s.execute(
                select(Outbox)
                .where(Outbox.topic == TOPIC, Outbox.status == OutboxStatus.PENDING)
                .order_by(Outbox.created_at, Outbox.id)
                .limit(limit)
            )
        ).scalars()
        published = 0
        now = clock.now()
        batch = _amended_first(list(rows))
        targets = {uuid.UUID(str(r.payload["amends"])) for r in batch if r.payload.get("amends")}
        in_ledger = (
            set(
                (
                    await s.execute(select(DisclosureRecord.id).where(DisclosureRecord.id.in_(targets)))
                ).scalars()
            )
            if targets
            else set()
        )
        for row in batch:
            amends = row.payload.get("amends")
            if amends and uuid.UUID(str(amends)) not in in_ledger:
                # The record it amends is not published yet (a later batch: clocks disagreed about
                # which came first). Wait for it rather than publish out of order.
                log.warning("outbox %s waits for the record it amends (%s)", row.id, amends)
                continue
            in_ledger.add(uuid.UUID(str(row.payload["record_id"])))
            record = _record_from(row, head.last_seq + 1, head.last_hash, now)
            s.add(_ledger_row(record, row.id, now))
            head.last_seq = record["seq"]
            head.last_hash = record["hash"]
            row.status = OutboxStatus.DONE
            row.attempts += 1
            row.processed_at = now
            published += 1
        if published and pause:
            # Fault injection for tests: die here and nothing of this batch is visible.
            log.warning(
                "publication paused inside its transaction for %ss (MALL_PUBLISH_PAUSE_SECONDS)", pause
            )
            await asyncio.sleep(pause)
    return published


def _amended_first(rows: list[Outbox]) -> list[Outbox]:
    """Outbox order, except that a record never goes before the record it amends (rows staged in the
    same instant, or under a clock that stepped back, would otherwise be ordered by their random id)."""
    position = {str(r.payload.get("record_id")): i for i, r in enumerate(rows)}
    out: list[Outbox] = []
    placed: set[int] = set()

    def place(i: int, seen: frozenset[int] = frozenset()) -> None:
        if i in placed or i in seen:
            return
        target = position.get(str(rows[i].payload.get("amends")))
        if target is not None and target != i:
            place(target, seen | {i})
        placed.add(i)
        out.append(rows[i])

    for i in range(len(rows)):
        place(i)
    return out


def _record_from(row: Outbox, seq: int, prev_hash: str, now: datetime) -> dict[str, Any]:
    payload = dict(row.payload)
    record_id = payload.pop("record_id")
    record: dict[str, Any] = {
        "seq": seq,
        "id": record_id,
        **payload,
        "published_at": clock.rfc3339(now),
        "prev_hash": prev_hash,
    }
    record["hash"] = record_hash(record)
    return record


def _ledger_row(record: dict[str, Any], source_id: uuid.UUID, now: datetime) -> DisclosureRecord:
    supplier = record.get("supplier") or {}
    total = record.get("total_amount")
    return DisclosureRecord(
        seq=record["seq"],
        id=uuid.UUID(record["id"]),
        kind=record["kind"],
        amends=uuid.UUID(record["amends"]) if record.get("amends") else None,
        mode=record["mode"],
        order_no=record["order_no"],
        deal_date=record["deal_date"],
        buyer_name=record["buyer"]["name"],
        buyer_credit_code=record["buyer"]["credit_code"],
        supplier_name=supplier.get("name"),
        supplier_credit_code=supplier.get("credit_code"),
        total_amount=money(total) if total is not None else None,
        published_at=now,
        source_id=source_id,
        prev_hash=record["prev_hash"],
        hash=record["hash"],
        body=canonical(record),
    )


@dataclass(frozen=True)
class FeedQuery:
    after: int = 0
    limit: int = 100
    mode: str | None = None
    buyer_credit_code: str | None = None
    supplier_credit_code: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    kind: str | None = None


def parse_feed_query(params: dict[str, str], *, max_limit: int = 500, default_limit: int = 100) -> FeedQuery:
    """Validate the public feed's parameters; anything odd is a 400 with a reason."""

    def as_int(name: str, default: int, lo: int, hi: int) -> int:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        if not re.fullmatch(r"[0-9]{1,19}", raw):
            raise InvalidInput(f"参数 {name} 应为非负整数", code="invalid_parameter", parameter=name)
        value = int(raw)
        if not lo <= value <= hi:
            raise InvalidInput(
                f"参数 {name} 应在 {lo} 到 {hi} 之间", code="invalid_parameter", parameter=name
            )
        return value

    def as_date(name: str) -> date | None:
        raw = params.get(name)
        if not raw:
            return None
        try:
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw):
                raise ValueError(raw)
            return date.fromisoformat(raw)
        except ValueError:
            raise InvalidInput(
                f"参数 {name} 应为 YYYY-MM-DD 格式的日期", code="invalid_parameter", parameter=name
            ) from None

    def as_code(name: str) -> str | None:
        raw = params.get(name)
        if not raw:
            return None
        if not re.fullmatch(r"[0-9A-Za-z]{18}", raw):
            raise InvalidInput(
                f"参数 {name} 应为18位统一社会信用代码", code="invalid_parameter", parameter=name
            )
        return raw.upper()

    mode = params.get("mode") or None
    if mode is not None and mode not in MODES:
        raise InvalidInput(
            f"参数 mode 应为 {' | '.join(MODES)} 之一", code="invalid_parameter", parameter="mode"
        )
    kind = params.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise InvalidInput(
            f"参数 kind 应为 {' | '.join(KINDS)} 之一", code="invalid_parameter", parameter="kind"
        )
    q = FeedQuery(
        after=as_int("after", 0, 0, 2**62),
        limit=as_int("limit", default_limit, 1, max_limit),
        mode=mode,
        buyer_credit_code=as_code("buyer_credit_code"),
        supplier_credit_code=as_code("supplier_credit_code"),
        date_from=as_date("from"),
        date_to=as_date("to"),
        kind=kind,
    )
    if q.date_from and q.date_to and q.date_from > q.date_to:
        raise InvalidInput("起始日期不能晚于截止日期", code="invalid_parameter", parameter="from")
    return q


def records_matching(q: FeedQuery) -> Any:
    """The ledger's records that pass the feed's filters, as a query to page, count or stream."""
    stmt = select(DisclosureRecord)
    if q.mode:
        stmt = stmt.where(DisclosureRecord.mode == q.mode)
    if q.kind:
        stmt = stmt.where(DisclosureRecord.kind == q.kind)
    if q.buyer_credit_code:
        stmt = stmt.where(DisclosureRecord.buyer_credit_code == q.buyer_credit_code)
    if q.supplier_credit_code:
        stmt = stmt.where(DisclosureRecord.supplier_credit_code == q.supplier_credit_code)
    if q.date_from:
        stmt = stmt.where(DisclosureRecord.deal_date >= q.date_from.isoformat())
    if q.date_to:
        stmt = stmt.where(DisclosureRecord.deal_date <= q.date_to.isoformat())
    return stmt


async def feed_page(session: AsyncSession, q: FeedQuery) -> tuple[list[str], int]:
    """Bodies (canonical JSON) of the next records after `q.after`, and the cursor to continue from."""
    stmt = (
        records_matching(q)
        .where(DisclosureRecord.seq > q.after)
        .order_by(DisclosureRecord.seq)
        .limit(q.limit)
    )
    rows = list(
        (await session.execute(stmt.with_only_columns(DisclosureRecord.seq, DisclosureRecord.body))).all()
    )
    if rows:
        next_after = rows[-1][0]
    else:
        # Nothing after the cursor: answer with the newest seq if the cursor ran past it, so a client
        # holding a wrong cursor is brought back instead of skipping every future record.
        head = await session.scalar(select(LedgerHead.last_seq).where(LedgerHead.id == 1)) or 0
        next_after = min(q.after, head)
    return [r[1] for r in rows], next_after


async def page_desc(
    session: AsyncSession, q: FeedQuery, page: int, per_page: int
) -> tuple[int, list[DisclosureRecord]]:
    """Newest first, for the public page."""
    from sqlalchemy import func

    base = records_matching(q)
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = await session.execute(
        base.order_by(DisclosureRecord.seq.desc()).offset((page - 1) * per_page).limit(per_page)
    )
    return total, list(rows.scalars())


async def get_record(session: AsyncSession, seq: int) -> DisclosureRecord:
    if not 1 <= seq < 2**63:
        raise NotFound("公开记录不存在", code="record_not_found")
    row = await session.get(DisclosureRecord, seq)
    if row is None:
        raise NotFound("公开记录不存在", code="record_not_found")
    return row


async def records_of_order(session: AsyncSession, order_no: str) -> list[DisclosureRecord]:
    rows = await session.execute(
        select(DisclosureRecord).where(DisclosureRecord.order_no == order_no).order_by(DisclosureRecord.seq)
    )
    return list(rows.scalars())


@dataclass
class VerifyResult:
    checked: int
    ok: bool
    problem: str = ""
    seq: int | None = None


async def records_after(db: Database, after: int, limit: int, *columns: Any) -> list[Any]:
    """The given columns of at most `limit` ledger records after `after`, in chain order: rows to
    unpack."""
    async with db.read() as s:
        stmt = (
            select(*columns).where(DisclosureRecord.seq > after).order_by(DisclosureRecord.seq).limit(limit)
        )
        return list((await s.execute(stmt)).all())


async def iter_bodies(db: Database, batch: int = 2000) -> AsyncIterator[tuple[int, str, str, str]]:
    after = 0
    while True:
        rows = await records_after(
            db,
            after,
            batch,
            DisclosureRecord.seq,
            DisclosureRecord.body,
            DisclosureRecord.hash,
            DisclosureRecord.prev_hash,
        )
        if not rows:
            return
        for seq, body, h, prev in rows:
            yield seq, body, h, prev
        after = rows[-1][0]


async def verify_chain(db: Database) -> VerifyResult:
    """Recompute the whole chain from the stored bodies, as any outside auditor can from the feed.
    Checks up to the head as it was when verification began, so a live system can be verified."""
    async with db.read() as s:
        head = await s.get(LedgerHead, 1)
        upto, head_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS)
    expected_seq, prev = 1, GENESIS
    checked = 0
    async for seq, body, stored_hash, stored_prev in iter_bodies(db):
        if seq > upto:
            break
        record = json.loads(body)
        if seq != expected_seq or record.get("seq") != seq:
            return VerifyResult(checked, False, f"序号不连续：期望 {expected_seq}，实际 {seq}", seq)
        if record.get("prev_hash") != prev or stored_prev != prev:
            return VerifyResult(checked, False, "prev_hash 与上一条记录的 hash 不一致", seq)
        if record_hash(record) != record.get("hash") or stored_hash != record.get("hash"):
            return VerifyResult(checked, False, "hash 与记录内容不符", seq)
        prev = record["hash"]
        expected_seq += 1
        checked += 1
    if checked != upto or prev != head_hash:
        return VerifyResult(checked, False, "账本头与最后一条记录不一致", upto)
    return VerifyResult(checked, True)

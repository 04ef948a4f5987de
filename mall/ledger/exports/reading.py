"""What an export reads: its filters (the public feed's plus a 品目 prefix) and the matching records,
in `seq` order, a batch per read transaction, up to the ledger head as it was when the export began."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select

from mall.core.db import Database
from mall.core.errors import InvalidInput, NotFound
from mall.ledger.disclosure import KIND_LABELS, MODE_LABELS, FeedQuery, parse_feed_query, records_matching
from mall.ledger.models import DisclosureRecord, LedgerHead

BATCH = 1000
PROGRESS_EVERY = 5000
FILTER_KEYS = ("mode", "kind", "buyer_credit_code", "supplier_credit_code", "from", "to", "category")


FILTER_LABELS = {
    "mode": "采购方式",
    "kind": "记录类型",
    "buyer_credit_code": "采购人",
    "supplier_credit_code": "供应商",
    "from": "成交日期从",
    "to": "成交日期至",
    "category": "品目",
    "after": "公开序号大于",
}


def describe_filters(filters: dict[str, str]) -> str:
    """The filters of an export in words, for its pages."""
    labels = {"mode": MODE_LABELS, "kind": KIND_LABELS}
    parts = [f"{FILTER_LABELS.get(k, k)}：{labels.get(k, {}).get(v, v)}" for k, v in filters.items() if v]
    return "，".join(parts) or "全部记录"


@dataclass(frozen=True)
class ExportQuery:
    feed: FeedQuery
    category: str | None = None

    def params(self) -> dict[str, str]:
        """The filters as query parameters (what a job stores and a page links to)."""
        f = self.feed
        raw = {
            "mode": f.mode,
            "kind": f.kind,
            "buyer_credit_code": f.buyer_credit_code,
            "supplier_credit_code": f.supplier_credit_code,
            "from": f.date_from.isoformat() if f.date_from else None,
            "to": f.date_to.isoformat() if f.date_to else None,
            "category": self.category,
        }
        if f.after:
            raw["after"] = str(f.after)
        return {k: v for k, v in raw.items() if v}


def parse_export_query(params: dict[str, str]) -> ExportQuery:
    """The feed's parameters (validated by the feed's own parser) plus `category`; no `limit`."""
    given = {k: v.strip() for k, v in params.items() if isinstance(v, str) and v.strip()}
    given.pop("limit", None)
    feed = replace(parse_feed_query(given), limit=0)
    category = given.get("category")
    if category is not None:
        category = category.upper()
        if not re.fullmatch(r"[ABC][0-9]{0,8}", category):
            raise InvalidInput(
                "参数 category 应为品目编码或其前缀，如 A02 或 A02010104",
                code="invalid_parameter",
                parameter="category",
            )
    return ExportQuery(feed, category)


def matching_lines(record: dict[str, Any], category: str | None) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = record.get("lines") or []
    if category is None:
        return lines
    return [x for x in lines if str(x.get("category_code") or "").startswith(category)]


def statement(q: ExportQuery) -> Any:
    stmt = records_matching(q.feed)
    if q.category:
        # Canonical JSON has no whitespace and fixed keys, so this finds every record with a line in
        # the 品目 (and a few false friends — a code inside a product name — dropped in Python).
        stmt = stmt.where(DisclosureRecord.body.like(f'%"category_code":"{q.category}%'))
    return stmt


async def ledger_head(db: Database) -> int:
    async with db.read() as s:
        return await s.scalar(select(LedgerHead.last_seq).where(LedgerHead.id == 1)) or 0


async def count_records(db: Database, q: ExportQuery, *, upto: int | None = None) -> int:
    """How many records the export will read (with a 品目 filter: an upper bound)."""
    stmt = statement(q).where(DisclosureRecord.seq > q.feed.after)
    if upto is not None:
        stmt = stmt.where(DisclosureRecord.seq <= upto)
    async with db.read() as s:
        return await s.scalar(select(func.count()).select_from(stmt.subquery())) or 0


@dataclass
class Tally:
    """Counts the records an export has written and reports progress every so often."""

    records: int = 0
    progress: Callable[[int], Awaitable[None]] | None = None

    async def tick(self) -> None:
        self.records += 1
        if self.progress is not None and self.records % PROGRESS_EVERY == 0:
            await self.progress(self.records)


async def iter_records(
    db: Database, q: ExportQuery, *, upto: int | None = None, batch: int = BATCH, tally: Tally | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Matching records in `seq` order, one read transaction per batch, up to the head at the start."""
    if upto is None:
        upto = await ledger_head(db)
    after = q.feed.after
    base = statement(q).with_only_columns(DisclosureRecord.seq, DisclosureRecord.body)
    while after < upto:
        async with db.read() as s:
            rows = (
                await s.execute(
                    base.where(DisclosureRecord.seq > after, DisclosureRecord.seq <= upto)
                    .order_by(DisclosureRecord.seq)
                    .limit(batch)
                )
            ).all()
        if not rows:
            return
        for _seq, body in rows:
            record: dict[str, Any] = json.loads(body)
            if q.category and not matching_lines(record, q.category):
                continue
            yield record
            if tally is not None:
                await tally.tick()
        after = rows[-1][0]


async def require_records(db: Database, q: ExportQuery) -> None:
    """An OCDS release package holds at least one release (the schema's `minItems: 1`)."""
    if not await count_records(db, q):
        raise NotFound("没有符合条件的记录：OCDS 数据包至少要有一条记录", code="export_empty")

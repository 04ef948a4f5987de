"""Helpers of the point-11 tests: what a refused text is made of, and a fingerprint of everything the
database holds, to show that a refused request wrote nothing."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa

from mall.core import audit
from mall.core.db import Database
from mall.core.models import AuditEntry

NUL = "\x00"
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "abc\u202egpj.exe" displays as "abcexe.jpg"

# Reference data, a column that reading with a token touches (at most every few minutes), and the
# audit log's head, which moves with the entries of reads (pages that show people's details are
# recorded): those entries are left out, every other entry counts.
NOT_FINGERPRINTED = {"categories", "alembic_version", "audit_head"}
VOLATILE_COLUMNS = {("api_tokens", "last_used_at")}


def variants(sample: str, max_length: int) -> dict[str, str]:
    """The three refused forms of a field: with a NUL, with a bidi override, one character too long."""
    sample = sample or "文本"
    over = (sample * (max_length // len(sample) + 2))[: max_length + 1]
    short = sample[: max(max_length - 1, 1)]  # the refused character, not the length, is what is wrong
    half = len(short) // 2
    return {"nul": short[:half] + NUL + short[half:], "rlo": RLO + short, "over": over}


async def fingerprint(db: Database) -> str:
    """A digest of every row of every table (reference data aside)."""
    from mall.schema import metadata

    digest = hashlib.sha256()
    async with db.read() as s:
        for table in metadata.sorted_tables:
            if table.name in NOT_FINGERPRINTED:
                continue
            columns = [c for c in table.columns if (table.name, c.name) not in VOLATILE_COLUMNS]
            order = list(table.primary_key.columns) or columns
            stmt = sa.select(*columns).order_by(*order)
            if table.name == AuditEntry.__tablename__:
                stmt = stmt.where(AuditEntry.action.not_in(audit.READS))
            rows = (await s.execute(stmt)).all()
            digest.update(table.name.encode())
            for row in rows:
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def chinese(text: Any) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in str(text))

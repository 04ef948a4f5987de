"""The ledger's witness: the head (seq and hash) written down outside the mall, so that a restore which
lost published records cannot pass unnoticed.

A head is written to the operations log as a line with the stable event name `ledger.head`, and
appended to the witness file (`MALL_WITNESS_FILE`: JSON lines, one head a line, never rewritten), by
the worker once a day and by `mall ledger witness`. Keep that file where a restore of the mall's own
data cannot reach it: another host, a mounted share, a file system with the append-only attribute.

A check compares every head a witness file holds with the ledger: a witnessed `seq` beyond the
ledger's head means published records were lost; a `hash` that differs at a witnessed `seq` means
the ledger was rewritten. Any JSON-lines file whose lines carry `seq` and `hash` is a witness: the
records a push receiver stored, or an export made with `mall export --format jsonl`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from mall.core import clock
from mall.core.db import Database
from mall.core.settings import Settings
from mall.ledger.disclosure import GENESIS, canonical
from mall.ledger.models import DisclosureRecord, LedgerHead

log = logging.getLogger("mall.ledger.witness")

EVENT = "ledger.head"
MISMATCH_EVENT = "ledger.witness_mismatch"
_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


class WitnessFileError(ValueError):
    """A witness file that cannot be read (missing, or a line that is not a head)."""


@dataclass(frozen=True)
class WitnessCheck:
    ok: bool
    witnessed: int  # heads read from the file
    highest: Head | None  # the highest witnessed head
    ledger: Head  # the head of the ledger checked
    problem: str = ""  # what is wrong, for a person (Chinese)
    seq: int | None = None  # the witnessed seq that failed


async def current_head(db: Database) -> Head:
    async with db.read() as s:
        row = await s.get(LedgerHead, 1)
    return Head(row.last_seq, row.last_hash) if row is not None else Head(0, GENESIS)


async def hashes_at(db: Database, seqs: Iterable[int]) -> dict[int, str]:
    """The ledger's hash at each of these seqs that it holds."""
    wanted = sorted(set(seqs))
    found: dict[int, str] = {}
    for i in range(0, len(wanted), 500):
        async with db.read() as s:
            rows = await s.execute(
                select(DisclosureRecord.seq, DisclosureRecord.hash).where(
                    DisclosureRecord.seq.in_(wanted[i : i + 500])
                )
            )
            found.update({int(seq): str(h) for seq, h in rows.all()})
    return found


def read_witness(path: Path) -> list[Head]:
    """Every head in a witness file, in file order. Blank lines are skipped; anything else that is not
    a JSON object with an integer `seq` and a 64-hex `hash` makes the file unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise WitnessFileError(f"见证文件不存在：{path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise WitnessFileError(f"无法读取见证文件 {path}：{exc}") from exc
    heads = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        seq = item.get("seq") if isinstance(item, dict) else None
        digest = item.get("hash") if isinstance(item, dict) else None
        if (
            not isinstance(seq, int)
            or isinstance(seq, bool)
            or seq < 0
            or not isinstance(digest, str)
            or not _HASH.fullmatch(digest)
        ):
            raise WitnessFileError(
                f"见证文件 {path} 第 {n} 行不是账本头（需要整数 seq 和 64 位十六进制 hash）"
            )
        heads.append(Head(seq, digest))
    return heads


def compare(witnessed: list[Head], ledger: Head, found: Mapping[int, str]) -> WitnessCheck:
    """Witnessed heads against a ledger whose head is `ledger` and whose hash at each witnessed seq
    (that it holds) is in `found`. The first problem in seq order is reported, the loss first."""
    highest = max(witnessed, key=lambda h: h.seq) if witnessed else None
    if highest is not None and highest.seq > ledger.seq:
        return WitnessCheck(
            False,
            len(witnessed),
            highest,
            ledger,
            f"账本缺少已见证的记录 (records lost)：见证到第 {highest.seq} 条（hash {highest.hash[:16]}…），"
            f"账本只到第 {ledger.seq} 条，已公开的 {highest.seq - ledger.seq} 条记录不在账本中",
            highest.seq,
        )
    for head in sorted(witnessed, key=lambda h: h.seq):
        expected = GENESIS if head.seq == 0 else found.get(head.seq)
        if expected != head.hash:
            return WitnessCheck(
                False,
                len(witnessed),
                highest,
                ledger,
                f"账本与见证不符 (hash mismatch)：第 {head.seq} 条记录的 hash 为 {str(expected)[:16]}…，"
                f"见证的是 {head.hash[:16]}…",
                head.seq,
            )
    return WitnessCheck(True, len(witnessed), highest, ledger)


def check_heads(
    witnessed: list[Head], ledger: Head, lookup: Callable[[list[int]], Mapping[int, str]]
) -> WitnessCheck:
    """`compare`, with the ledger's hashes looked up synchronously (a backup's SQLite file)."""
    seqs = sorted({h.seq for h in witnessed if 0 < h.seq <= ledger.seq})
    return compare(witnessed, ledger, lookup(seqs) if seqs else {})


async def check(db: Database, path: Path) -> WitnessCheck:
    """The ledger in `db` against every head of the witness file at `path`."""
    witnessed = read_witness(path)
    ledger = await current_head(db)
    seqs = [h.seq for h in witnessed if 0 < h.seq <= ledger.seq]
    return compare(witnessed, ledger, await hashes_at(db, seqs))


def head_line(head: Head, at: datetime, *, source: str, mall: str) -> str:
    """One line of the witness file (canonical JSON)."""
    return canonical(
        {
            "event": EVENT,
            "seq": head.seq,
            "hash": head.hash,
            "at": clock.rfc3339(at),
            "source": source,
            "mall": mall,
        }
    )


def append(path: Path, line: str) -> None:
    """Append one line and flush it to disk: the file is only ever appended to."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


async def witness(db: Database, settings: Settings, *, source: str, path: Path | None = None) -> Head:
    """Write the ledger head to the operations log and append it to the witness file (`path`, else
    `MALL_WITNESS_FILE`; none: the log line only). Before appending, the ledger is checked against what
    the file already holds: a mismatch is logged as an error (`ledger.witness_mismatch`) and the new
    head is appended anyway — the file records what the mall published, losses included."""
    head = await current_head(db)
    now = clock.now()
    log.info(
        "%s seq=%d hash=%s",
        EVENT,
        head.seq,
        head.hash,
        extra={"event": EVENT, "fields": {"seq": head.seq, "hash": head.hash, "source": source}},
    )
    target = path or (Path(settings.witness_file) if settings.witness_file else None)
    if target is None:
        return head
    if target.exists():
        try:
            result = await check(db, target)
        except WitnessFileError as exc:
            log.error("%s %s", MISMATCH_EVENT, exc, extra={"event": MISMATCH_EVENT, "fields": {}})
        else:
            if not result.ok:
                log.error(
                    "%s seq=%s %s",
                    MISMATCH_EVENT,
                    result.seq,
                    result.problem,
                    extra={"event": MISMATCH_EVENT, "fields": {"seq": result.seq}},
                )
    append(target, head_line(head, now, source=source, mall=settings.public_base_url))
    return head

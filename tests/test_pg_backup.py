"""PostgreSQL backups, for real: the point-in-time recovery procedure of docs/operations.md (a base
backup with pg_basebackup, WAL archiving, recovery to a target time) on a throw-away cluster; and
`mall backup` / `mall restore` through pg_dump and pg_restore.

They run in the PostgreSQL run of the suite (DATABASE_URL names a reachable PostgreSQL) and need the
server programs (initdb, pg_ctl, pg_basebackup: Debian's postgresql-15); otherwise they are skipped
with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from mall.core import clock
from mall.core.db import Database
from mall.core.encryption import new_key
from mall.ledger import disclosure, witness
from tests.ops_helpers import deal_payload, mall_cli

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")

pytestmark = pytest.mark.slow


def given_postgres() -> str:
    """The PostgreSQL server of DATABASE_URL (plain libpq form), or a skip saying why not."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "postgresql+asyncpg://")):
        pytest.skip(
            "DATABASE_URL does not name PostgreSQL: the PostgreSQL backup tests run in the PostgreSQL run"
        )
    plain = "postgresql://" + url.split("://", 1)[1]

    async def ping() -> None:
        import asyncpg

        conn = await asyncpg.connect(plain, timeout=5)
        await conn.close()

    try:
        asyncio.run(ping())
    except Exception as exc:
        pytest.skip(f"PostgreSQL at DATABASE_URL is not reachable ({type(exc).__name__})")
    return plain


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------ point-in-time recovery


class Cluster:
    """A throw-away PostgreSQL cluster in a temporary directory, run as the `postgres` OS user when
    the tests run as root (initdb refuses root)."""

    def __init__(self, top: Path, name: str) -> None:
        self.top = top
        self.dir = top / name
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def run(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [*self.as_postgres, *args], capture_output=True, text=True, timeout=120, check=False, **kw
        )
        assert out.returncode == 0, f"{args[0]} failed: {out.stdout}{out.stderr}"
        return out

    def psql(self, sql: str) -> str:
        return self.run(
            str(PG_BIN / "psql"), "-h", str(self.top), "-p", str(self.port), "-U", "postgres", "-d", "postgres",
            "-qtAX", "-v", "ON_ERROR_STOP=1", "-c", sql,
        ).stdout.strip()  # fmt: skip

    def start(self) -> None:
        log = Path(f"{self.dir}.log")
        out = subprocess.run(
            [
                *self.as_postgres,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.dir),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "start",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert out.returncode == 0, (
            f"{self.dir.name} did not start:\n{log.read_text()[-3000:] if log.exists() else out.stderr}"
        )

    def stop(self, mode: str = "immediate") -> None:
        subprocess.run(
            [*self.as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-m", mode, "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )

    def configure(self, lines: list[str], file: str = "postgresql.conf") -> None:
        with (self.dir / file).open("a") as fh:
            fh.write("\n".join(lines) + "\n")


def test_point_in_time_recovery_with_a_base_backup_and_archived_wal() -> None:
    given_postgres()
    missing = [p for p in ("initdb", "pg_ctl", "pg_basebackup", "psql") if not (PG_BIN / p).exists()]
    if missing:
        pytest.skip(f"PostgreSQL 15 server programs missing in {PG_BIN}: {', '.join(missing)}")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot run initdb as the postgres user")
    top = Path(tempfile.mkdtemp(prefix="bk_pitr_"))
    primary = Cluster(top, "primary")
    restored = Cluster(top, "restored")
    archive = top / "archive"
    started = time.monotonic()
    try:
        if os.geteuid() == 0:
            shutil.chown(top, "postgres", "postgres")
        top.chmod(0o700)
        primary.run("mkdir", str(archive))
        primary.run(
            str(PG_BIN / "initdb"), "-D", str(primary.dir), "-U", "postgres", "-A", "trust", "--no-sync"
        )
        # docs/operations.md, step 1: archiving on the primary.
        primary.configure(
            [
                f"port = {primary.port}",
                "listen_addresses = ''",
                f"unix_socket_directories = '{top}'",
                "wal_level = replica",
                "archive_mode = on",
                f"archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f.part && mv {archive}/%f.part {archive}/%f'",
                "archive_timeout = 60",
            ]
        )
        primary.start()
        primary.psql("CREATE TABLE deals (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
        primary.psql("INSERT INTO deals (id) SELECT generate_series(1, 100)")
        # Step 2: the base backup.
        primary.run(
            str(PG_BIN / "pg_basebackup"), "-h", str(top), "-p", str(primary.port), "-U", "postgres",
            "-D", str(restored.dir), "-X", "stream", "-c", "fast",
        )  # fmt: skip
        primary.psql("INSERT INTO deals (id) SELECT generate_series(101, 200)")
        target = primary.psql("SELECT clock_timestamp()")  # the moment to recover to
        time.sleep(1.1)
        primary.psql("INSERT INTO deals (id) SELECT generate_series(201, 300)")  # the mistake
        segment = primary.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        primary.psql("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 30
        while primary.psql("SELECT last_archived_wal FROM pg_stat_archiver") < segment:
            assert time.monotonic() < deadline, f"WAL segment {segment} was not archived"
            time.sleep(0.2)
        assert primary.psql("SELECT failed_count FROM pg_stat_archiver") == "0"
        primary.stop("fast")

        # Step 3: recovery into the copy, up to the target time.
        restored.configure(
            [
                f"port = {restored.port}",
                f"restore_command = 'cp {archive}/%f %p'",
                f"recovery_target_time = '{target}'",
                "recovery_target_action = 'promote'",
            ],
            file="postgresql.auto.conf",
        )
        restored.run("touch", str(restored.dir / "recovery.signal"))
        restored.start()
        deadline = time.monotonic() + 60
        while restored.psql("SELECT pg_is_in_recovery()") != "f":
            assert time.monotonic() < deadline, "recovery did not finish"
            time.sleep(0.2)
        assert restored.psql("SELECT count(*), min(id), max(id) FROM deals") == "200|1|200"
        assert "recovery stopping before commit" in Path(f"{restored.dir}.log").read_text()
        assert not (restored.dir / "recovery.signal").exists()  # promoted: a primary of its own
    finally:
        primary.stop()
        restored.stop()
        shutil.rmtree(top, ignore_errors=True)
        print(f"point-in-time recovery: {time.monotonic() - started:.1f} s")


# ------------------------------------------------------------------- mall backup with pg_dump


async def publish(url: str, count: int) -> witness.Head:
    db = Database(url)
    try:
        for n in range(count):
            async with db.write() as tx:
                disclosure.stage(tx, deal_payload(n, "PG"))
        await disclosure.publish_pending(db)
        return await witness.current_head(db)
    finally:
        await db.dispose()


async def bodies(url: str) -> list[str]:
    db = Database(url)
    try:
        return [body async for _, body, _, _ in disclosure.iter_bodies(db)]
    finally:
        await db.dispose()


async def admin(server: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def test_mall_backup_and_restore_through_pg_dump(tmp_path: Path) -> None:
    plain = given_postgres()
    for tool in ("pg_dump", "pg_restore"):
        if shutil.which(tool) is None and not (PG_BIN / tool).exists():
            pytest.skip(f"{tool} not installed (postgresql-client)")
    server = plain.rsplit("/", 1)[0]
    tag = secrets.token_hex(3)
    src, dst = f"bk_src_{tag}", f"bk_dst_{tag}"
    started = time.monotonic()
    asyncio.run(admin(f"{server}/postgres", f'CREATE DATABASE "{src}"'))
    asyncio.run(admin(f"{server}/postgres", f'CREATE DATABASE "{dst}"'))
    base_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("MALL_")
    }
    base_env["MALL_DATA_DIR"] = str(tmp_path / "data")
    base_env["MALL_DATA_KEY"] = new_key()  # a server database needs one: the same for both sides
    src_env = {**base_env, "DATABASE_URL": f"{server}/{src}"}
    dst_env = {**base_env, "DATABASE_URL": f"{server}/{dst}"}
    src_url = "postgresql+asyncpg://" + f"{server}/{src}".split("://", 1)[1]
    dst_url = "postgresql+asyncpg://" + f"{server}/{dst}".split("://", 1)[1]
    try:
        assert mall_cli(src_env, "migrate").returncode == 0
        from mall.core import outbox

        outbox.drop_unregistered()
        head = asyncio.run(publish(src_url, 3))
        heads = tmp_path / "heads.jsonl"
        witness.append(heads, witness.head_line(head, clock.now(), source="manual", mall="test"))

        made = mall_cli(src_env, "backup", str(tmp_path / "b"))
        assert made.returncode == 0, made.stdout + made.stderr
        assert "pg_dump -Fc" in made.stdout
        manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
        assert manifest["database"] == {
            "backend": "postgresql",
            "file": "mall.pgdump",
            "method": "pg_dump --format=custom",
            "alembic_revision": manifest["database"]["alembic_revision"],
        }
        assert manifest["ledger_head"] == {"seq": 3, "hash": head.hash}
        assert manifest["redis"]["included"] is False and "pg_dump" in manifest["versions"]
        assert (tmp_path / "b" / "mall.pgdump").read_bytes()[:5] == b"PGDMP"

        restored = mall_cli(dst_env, "restore", str(tmp_path / "b"), "--witness", str(heads))
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert asyncio.run(bodies(dst_url)) == asyncio.run(bodies(src_url))
        verify = mall_cli(dst_env, "ledger", "verify", "--witness", str(heads))
        assert verify.returncode == 0 and "见证检查通过" in verify.stdout, verify.stdout + verify.stderr

        # A database that holds tables is replaced only with --force; one in use never.
        again = mall_cli(dst_env, "restore", str(tmp_path / "b"))
        assert again.returncode == 1 and "数据库已有" in again.stderr and "--force" in again.stderr

        async def while_connected() -> subprocess.CompletedProcess[str]:
            import asyncpg

            conn = await asyncpg.connect(f"{server}/{dst}")
            try:
                return await asyncio.to_thread(mall_cli, dst_env, "restore", str(tmp_path / "b"), "--force")
            finally:
                await conn.close()

        busy = asyncio.run(while_connected())
        assert busy.returncode == 1 and "其他连接 (database in use)" in busy.stderr, busy.stderr
        forced = mall_cli(dst_env, "restore", str(tmp_path / "b"), "--force", "--no-reindex")
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert asyncio.run(bodies(dst_url)) == asyncio.run(bodies(src_url))
        assert "原有数据已移到模式 replaced_" in forced.stdout  # moved aside, not deleted

        # The witness saw more than the dump holds: refused.
        later = asyncio.run(publish(src_url, 2))
        witness.append(heads, witness.head_line(later, clock.now(), source="manual", mall="test"))
        lossy = mall_cli(dst_env, "restore", str(tmp_path / "b"), "--force", "--witness", str(heads))
        assert lossy.returncode == 1 and "records lost" in lossy.stderr, lossy.stderr
    finally:
        for name in (src, dst):
            asyncio.run(admin(f"{server}/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        print(f"pg_dump backup and restore: {time.monotonic() - started:.1f} s")

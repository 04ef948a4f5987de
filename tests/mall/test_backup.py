"""`mall backup` and `mall restore` on the embedded defaults, in process: what a backup holds, a
snapshot taken while records are written, the refusals, and a restore that the witness shows lost
published records. (The whole drill with running processes is tests/test_restore_drill.py.)

Each test makes a data directory of its own with a SQLite database, whatever the suite's backend.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from mall.core.db import Database
from mall.core.files import DatabaseStore
from mall.core.settings import Settings, load_settings
from mall.ledger import disclosure, witness
from mall.ops import backup, restore
from mall.ops.backup import BackupError
from mall.ops.restore import RestoreOptions
from tests.ops_helpers import deal_payload

GENESIS = "0" * 64
MakeMall = Callable[[Path], Settings]
AOF = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty mall database at the code's schema revision, made once for the module."""
    from mall.schema import metadata

    path = tmp_path_factory.mktemp("template") / "mall.db"
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": backup.code_head_revision()})
        conn.execute(
            text("INSERT INTO ledger_head (id, last_seq, last_hash) VALUES (1, 0, :g)"), {"g": GENESIS}
        )
    engine.dispose()
    return path


@pytest.fixture
def make_mall(template: Path) -> MakeMall:
    """A stopped embedded mall in a data directory: its SQLite database, the append-only file its
    Redis left, its secret key."""

    def make(data: Path) -> Settings:
        data.mkdir(parents=True)
        shutil.copyfile(template, data / "mall.db")
        (data / "redis.aof").write_bytes(AOF)
        settings = load_settings({}, data_dir=data)
        settings.resolved_secret()
        settings.resolved_data_keys()  # the key file beside the database, as a mall that ran has
        return settings

    return make


async def publish(settings: Settings, count: int) -> None:
    db = Database(settings.resolved_database_url)
    try:
        for _ in range(count):
            async with db.write() as tx:
                disclosure.stage(tx, deal_payload(uuid.uuid4().int % 100000))
        await disclosure.publish_pending(db)
    finally:
        await db.dispose()


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def ledger(path: Path) -> list[tuple[Any, ...]]:
    return rows(path, "SELECT seq, hash, body FROM disclosure_records ORDER BY seq")


def quiet(_: str) -> None:
    pass


def test_a_backup_holds_the_database_redis_and_key_with_checksums(
    tmp_path: Path, make_mall: MakeMall
) -> None:
    settings = make_mall(tmp_path / "data")
    asyncio.run(publish(settings, 3))

    async def put_file() -> None:
        db = Database(settings.resolved_database_url)
        try:
            await DatabaseStore(db).put("exports/kept.csv", b"a,b\n1,2\n")
        finally:
            await db.dispose()

    asyncio.run(put_file())
    manifest = backup.backup(settings, tmp_path / "b", say=quiet)
    on_disk = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["format"] == "sunshine-mall-backup" and manifest["format_version"] == 1
    ((seq, digest),) = rows(tmp_path / "data" / "mall.db", "SELECT last_seq, last_hash FROM ledger_head")
    assert manifest["ledger_head"] == {"seq": 3, "hash": digest} and seq == 3
    assert manifest["database"]["backend"] == "sqlite"
    assert manifest["database"]["alembic_revision"] == backup.code_head_revision()
    assert manifest["counts"]["disclosure_records"] == 3
    assert manifest["file_store"] == {
        "backend": "database",
        "included": True,
        "in": "mall.db",
        "files": 1,
        "bytes": 8,
    }
    assert manifest["redis"]["included"] and manifest["redis"]["file"] == "redis.aof"
    assert manifest["search_index"]["included"] is False and "rebuilt" in manifest["search_index"]["restore"]
    assert manifest["secret_key"] == {"included": True, "file": "secret_key"}
    assert manifest["data_key"] == {"included": True, "file": "data_key"}  # the personal fields' key
    assert set(manifest["files"]) == {"mall.db", "redis.aof", "secret_key", "data_key"}
    for name, meta in manifest["files"].items():
        assert meta == {
            "bytes": (tmp_path / "b" / name).stat().st_size,
            "sha256": backup.sha256_of(tmp_path / "b" / name),
        }
    assert {"mall", "python", "sqlite", "redis_server"} <= set(manifest["versions"])
    assert (tmp_path / "b").stat().st_mode & 0o777 == 0o700
    # One self-contained file: no journal beside it.
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "data_key",
        "mall.db",
        "manifest.json",
        "redis.aof",
        "secret_key",
    ]

    # Restored into an empty data directory: the same ledger, file, Redis data and key.
    fresh = load_settings({}, data_dir=tmp_path / "fresh")
    restore.restore(fresh, tmp_path / "b", RestoreOptions(reindex=False), say=quiet)
    assert ledger(tmp_path / "fresh" / "mall.db") == ledger(tmp_path / "data" / "mall.db")
    assert (tmp_path / "fresh" / "redis.aof").read_bytes() == AOF
    assert fresh.resolved_secret() == settings.resolved_secret()
    assert ((tmp_path / "fresh" / "secret_key").stat().st_mode & 0o777) == 0o600
    assert (tmp_path / "fresh" / "data_key").read_bytes() == (tmp_path / "data" / "data_key").read_bytes()

    async def read_back() -> bytes:
        db = Database(fresh.resolved_database_url)
        try:
            return await DatabaseStore(db).read("exports/kept.csv", max_bytes=100)
        finally:
            await db.dispose()

    assert asyncio.run(read_back()) == b"a,b\n1,2\n"
    assert asyncio.run(_verify(fresh)).ok


async def _verify(settings: Settings) -> disclosure.VerifyResult:
    db = Database(settings.resolved_database_url)
    try:
        return await disclosure.verify_chain(db)
    finally:
        await db.dispose()


def test_a_backup_taken_while_records_are_published_is_one_consistent_instant(
    tmp_path: Path, make_mall: MakeMall
) -> None:
    settings = make_mall(tmp_path / "data")
    asyncio.run(publish(settings, 5))
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        async def go() -> None:
            db = Database(settings.resolved_database_url)
            try:
                while not stop.is_set():
                    async with db.write() as tx:
                        disclosure.stage(tx, deal_payload(written[0]))
                    await disclosure.publish_pending(db)
                    written[0] += 1
            finally:
                await db.dispose()

        asyncio.run(go())

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while written[0] < 5:
            threading.Event().wait(0.01)
        before = written[0]
        manifest = backup.backup(settings, tmp_path / "b", say=quiet)
        after = written[0]
        while written[0] < after + 3:  # and goes on after it
            threading.Event().wait(0.01)
    finally:
        stop.set()
        thread.join(30)
    fresh = load_settings({}, data_dir=tmp_path / "fresh")
    restore.restore(fresh, tmp_path / "b", RestoreOptions(reindex=False), say=quiet)
    assert asyncio.run(_verify(fresh)).ok
    restored = ledger(tmp_path / "fresh" / "mall.db")
    live = ledger(tmp_path / "data" / "mall.db")
    # A prefix of the ledger as it went on: the chain up to one instant, nothing half-published.
    assert restored == live[: len(restored)] and len(live) > len(restored) >= 5 + before
    assert manifest["ledger_head"] == {"seq": restored[-1][0], "hash": restored[-1][1]}


def damage_missing_manifest(b: Path) -> None:
    (b / "manifest.json").unlink()


def damage_flipped_byte(b: Path) -> None:
    data = bytearray((b / "mall.db").read_bytes())
    data[5000] ^= 0x01
    (b / "mall.db").write_bytes(bytes(data))


def damage_missing_file(b: Path) -> None:
    (b / "redis.aof").unlink()


def damage_unknown_revision(b: Path) -> None:
    manifest = json.loads((b / "manifest.json").read_text())
    manifest["database"]["alembic_revision"] = "9999"
    (b / "manifest.json").write_text(json.dumps(manifest))


def damage_unreadable_manifest(b: Path) -> None:
    (b / "manifest.json").write_text("{")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (damage_missing_manifest, "备份不完整 (incomplete backup)：缺少 manifest.json"),
        (damage_flipped_byte, "备份校验失败 (checksum mismatch)：mall.db"),
        (damage_missing_file, "备份不完整 (incomplete backup)：缺少文件 redis.aof"),
        (damage_unknown_revision, "alembic revision 9999"),
        (damage_unreadable_manifest, "备份清单无法读取"),
    ],
)
def test_an_incomplete_or_damaged_backup_is_refused(
    tmp_path: Path, make_mall: MakeMall, damage: Any, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_mall(tmp_path / "data")
    asyncio.run(publish(settings, 2))
    backup.backup(settings, tmp_path / "b", say=quiet)
    damage(tmp_path / "b")
    fresh = load_settings({}, data_dir=tmp_path / "fresh")
    with pytest.raises(BackupError, match=message.replace("(", r"\(").replace(")", r"\)")):
        restore.restore(fresh, tmp_path / "b", RestoreOptions(reindex=False), say=quiet)
    assert not (tmp_path / "fresh" / "mall.db").exists()
    assert restore.restore_command(fresh, tmp_path / "b", RestoreOptions(reindex=False)) == 1
    assert "恢复失败：" in capsys.readouterr().err


def test_existing_data_is_replaced_only_with_force_and_moved_aside(
    tmp_path: Path, make_mall: MakeMall
) -> None:
    settings = make_mall(tmp_path / "data")
    asyncio.run(publish(settings, 2))
    backup.backup(settings, tmp_path / "b", say=quiet)
    asyncio.run(publish(settings, 2))
    newer = ledger(tmp_path / "data" / "mall.db")
    with pytest.raises(BackupError, match=r"数据目录已有数据 \(data exists\).*--force"):
        restore.restore(settings, tmp_path / "b", RestoreOptions(reindex=False), say=quiet)
    assert ledger(tmp_path / "data" / "mall.db") == newer

    said: list[str] = []
    restore.restore(settings, tmp_path / "b", RestoreOptions(force=True, reindex=False), say=said.append)
    assert len(ledger(tmp_path / "data" / "mall.db")) == 2
    (aside,) = (tmp_path / "data").glob("replaced-*")
    assert ledger(aside / "mall.db") == newer and (aside / "redis.aof").read_bytes() == AOF
    assert any(str(aside) in line for line in said)
    assert not (tmp_path / "data" / "mall.db-wal").exists()


def test_a_backup_goes_only_into_a_new_or_empty_directory_and_leaves_nothing_when_it_fails(
    tmp_path: Path,
    make_mall: MakeMall,
) -> None:
    settings = make_mall(tmp_path / "data")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(BackupError, match="destination not empty"):
        backup.backup(settings, tmp_path / "full", say=quiet)
    (tmp_path / "data" / "mall.db").rename(tmp_path / "elsewhere.db")
    with pytest.raises(BackupError, match="数据库文件不存在"):
        backup.backup(settings, tmp_path / "b", say=quiet)
    assert not (tmp_path / "b").exists()


def test_restoring_an_older_backup_than_the_witness_is_refused_then_detected(
    tmp_path: Path, make_mall: MakeMall, capsys: pytest.CaptureFixture[str]
) -> None:
    """Witness, back up an older state, restore, detect."""
    settings = make_mall(tmp_path / "data")
    asyncio.run(publish(settings, 2))
    backup.backup(settings, tmp_path / "older", say=quiet)
    asyncio.run(publish(settings, 3))
    heads = tmp_path / "elsewhere" / "heads.jsonl"

    async def witness_now(s: Settings) -> witness.Head:
        db = Database(s.resolved_database_url)
        try:
            return await witness.witness(db, s, source="manual", path=heads)
        finally:
            await db.dispose()

    witnessed = asyncio.run(witness_now(settings))
    assert witnessed.seq == 5

    options = RestoreOptions(force=True, witness_file=heads, reindex=False)
    with pytest.raises(
        BackupError, match=r"拒绝恢复：账本缺少已见证的记录 \(records lost\)：见证到第 5 条.*只到第 2 条"
    ):
        restore.restore(settings, tmp_path / "older", options, say=quiet)
    assert len(ledger(tmp_path / "data" / "mall.db")) == 5  # nothing was touched

    # The operator insists: restored, and every later check still reports the loss.
    said: list[str] = []
    options.accept_ledger_loss = True
    restore.restore(settings, tmp_path / "older", options, say=said.append)
    assert len(ledger(tmp_path / "data" / "mall.db")) == 2
    assert any("--accept-ledger-loss" in line for line in said)

    async def check() -> tuple[witness.WitnessCheck, int]:
        from mall.ops.ledger import verify_witness

        db = Database(settings.resolved_database_url)
        try:
            return await witness.check(db, heads), await verify_witness(db, heads)
        finally:
            await db.dispose()

    result, code = asyncio.run(check())
    assert not result.ok and result.seq == 5 and code == 1
    assert "records lost" in capsys.readouterr().err

    # A backup that holds every witnessed record restores without a word.
    asyncio.run(publish(settings, 1))
    said.clear()
    backup.backup(settings, tmp_path / "latest", say=quiet)
    heads.write_text("")  # a witness of the current ledger only
    asyncio.run(witness_now(settings))
    restore.restore(
        settings,
        tmp_path / "latest",
        RestoreOptions(force=True, witness_file=heads, reindex=False),
        say=said.append,
    )
    assert any("见证检查通过" in line for line in said)

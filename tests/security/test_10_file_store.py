"""Point 10: uploads and export files live in a shared file store that every process on every host
reaches — the application database by default, an S3-compatible store by setting — never only on the
web host's disk.

"Another host" is played by running the worker's job function with a data directory of its own:
whatever the job reads or writes must then come from the store. The S3 backend runs against a real
local S3-compatible server: moto's server (`python -m moto.server`, from PyPI) started as a
subprocess, standing in for MinIO, Alibaba OSS or Tencent COS, which cannot run here.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select

from catalog import imports
from catalog.models import ListingImport
from mall.core import files
from mall.core.db import Database
from mall.core.models import StoredFile, StoredFileChunk
from mall.core.settings import Settings
from mall.ledger import disclosure, exports
from mall.ledger.models import ExportJob
from tests.factories import World
from tests.mall.test_disclosure import deal

MIB = 1024 * 1024


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def payload(n: int) -> bytes:
    return bytes((i * 7 + i // 251) % 256 for i in range(n))


async def chunk_rows(db: Database, key: str) -> list[int]:
    async with db.read() as s:
        rows = await s.execute(
            select(func.length(StoredFileChunk.data))
            .where(StoredFileChunk.file_key == key)
            .order_by(StoredFileChunk.n)
        )
        return list(rows.scalars())


async def joined(store: files.FileStore, key: str) -> bytes:
    return b"".join([c async for c in store.chunks(key)])


@pytest.fixture
def other_host(tmp_path: Path, settings: Settings) -> Iterator[Settings]:
    """The worker's job functions run as on another host: a data directory of their own."""
    from workers import runtime

    elsewhere = replace(settings, data_dir=tmp_path / "other-host")
    elsewhere.data_dir.mkdir()
    runtime.configure(elsewhere)
    try:
        yield elsewhere
    finally:
        runtime.configure(settings)


# ---------------------------------------------------------------- the database backend


async def test_the_database_store_keeps_a_file_in_chunks_and_streams_it_back(
    clean: None, db: Database, settings: Settings
) -> None:
    store = files.store_for(settings, db)
    assert isinstance(store, files.DatabaseStore)
    data = payload(3 * MIB + 12345)
    size = await store.put("test/a.bin", pieces(data, 300_001), content_type="application/x-test")
    assert size == len(data)
    info = await store.stat("test/a.bin")
    assert info == files.FileInfo("test/a.bin", len(data), "application/x-test")
    # memory stays flat: the content sits in pieces of at most one chunk, and comes back in them
    assert await chunk_rows(db, "test/a.bin") == [files.CHUNK_BYTES] * 3 + [12345]
    assert [len(c) async for c in store.chunks("test/a.bin")] == [files.CHUNK_BYTES] * 3 + [12345]
    assert await joined(store, "test/a.bin") == data
    assert await store.read("test/a.bin", max_bytes=len(data)) == data
    with pytest.raises(files.FileTooLarge):
        await store.read("test/a.bin", max_bytes=len(data) - 1)
    # a second put under the same key replaces the file
    assert await store.put("test/a.bin", b"short") == 5
    assert await joined(store, "test/a.bin") == b"short" and await chunk_rows(db, "test/a.bin") == [5]
    await store.delete("test/a.bin")
    await store.delete("test/a.bin")  # deleting twice is fine
    assert await store.stat("test/a.bin") is None and await chunk_rows(db, "test/a.bin") == []
    with pytest.raises(files.FileMissing):
        await joined(store, "test/a.bin")
    assert await store.put("test/empty", b"") == 0 and await joined(store, "test/empty") == b""


async def test_a_write_that_fails_half_way_leaves_no_file(
    clean: None, db: Database, settings: Settings
) -> None:
    store = files.store_for(settings, db)

    async def broken() -> AsyncIterator[bytes]:
        yield payload(2 * MIB + 1)
        raise RuntimeError("the writer died")

    with pytest.raises(RuntimeError):
        await store.put("test/broken.bin", broken())
    assert await store.stat("test/broken.bin") is None
    assert await chunk_rows(db, "test/broken.bin") == []


# ---------------------------------------------------------------- imports and exports use it


def listing_csv(n: int) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        ["商品名称", "品牌", "规格型号", "品目编码", "计量单位", "售价（元）", "参考市场价（元）", "库存"]
    )
    for i in range(n):
        w.writerow([f"得力 订书机 {i}", "得力", f"DL-{i}", "A02021102", "个", "25.00", "26", 5])
    return buf.getvalue().encode("utf-8-sig")


async def test_an_import_upload_is_kept_in_the_store_and_processed_on_another_host(
    client: Any, world: World, settings: Settings, other_host: Settings
) -> None:
    h = world.h("supplier_y")
    r = await client.post(
        "/api/supplier/imports", headers=h, files={"file": ("商品.csv", listing_csv(4), "text/csv")}
    )
    assert r.status_code == 202, r.text
    import_id = uuid.UUID(r.json()["id"])
    async with world.db.read() as s:
        batch = await s.get(ListingImport, import_id)
        assert batch is not None and batch.file_key
        key = batch.file_key
    store = files.store_for(settings, world.db)
    assert await joined(store, key) == listing_csv(4)
    # the upload is not in the import's row, nor anywhere on this host's disk
    columns = await world.db.engine.connect()
    try:
        names = await columns.run_sync(
            lambda c: [x["name"] for x in inspect(c).get_columns("listing_imports")]
        )
    finally:
        await columns.close()
    assert "content" not in names
    # (files of the size only: opening SQLite's own files here would drop this process's locks on them)
    size = len(listing_csv(4))
    same_size = [p for p in settings.data_dir.rglob("*") if p.is_file() and p.stat().st_size == size]
    assert [
        p for p in same_size if not p.name.startswith("mall.db") and p.read_bytes() == listing_csv(4)
    ] == []

    from workers import jobs

    assert await asyncio.to_thread(jobs.run_import, str(import_id)) == {"accepted": 4, "refused": 0}
    assert list(other_host.data_dir.iterdir()) == []  # the other host wrote nothing of its own
    # processed: the upload is no longer needed (the per-row report stays with the import)
    assert await store.stat(key) is None
    report = await client.get(f"/api/supplier/imports/{import_id}/report.csv", headers=h)
    assert report.status_code == 200 and report.text.count("通过") == 4


async def test_an_export_job_writes_to_the_store_and_the_web_streams_it(
    client: Any, world: World, settings: Settings, other_host: Settings
) -> None:
    await deal(world, "laptop", "2")
    await deal(world, "desk", "1", who="buyer_b", line="b1")
    while await disclosure.publish_pending(world.db):
        pass
    h = world.h("center")
    from workers import jobs

    for fmt in ("csv", "xlsx", "ocds"):
        r = await client.post("/api/exports", json={"format": fmt}, headers=h)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert await asyncio.to_thread(jobs.run_export, job_id) == "done"
        r = await client.get(f"/api/exports/{job_id}/download", headers=h)
        assert r.status_code == 200, r.text
        assert int(r.headers["content-length"]) == len(r.content) > 0
        async with world.db.read() as s:
            job = await s.get(ExportJob, uuid.UUID(job_id))
            assert job is not None and job.file_key == f"exports/{job_id}{exports.SUFFIXES[fmt]}"
        stored = await files.store_for(settings, world.db).stat(job.file_key)
        assert stored is not None and stored.size == len(r.content)
    assert not (settings.data_dir / "exports").exists() or not any(
        (settings.data_dir / "exports").rglob("*.*")
    )
    assert list(other_host.data_dir.iterdir()) == []


async def test_retention_deletes_export_files_from_the_store(world: World, settings: Settings) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from mall.core import clock

    job = await exports.start_job(world.db, world.who["center"], "csv", exports.parse_export_query({}))
    assert await exports.run_job(world.db, settings, job.id) == "done"
    async with world.db.read() as s:
        key = (await s.get(ExportJob, job.id)).file_key  # type: ignore[union-attr]
    store = files.store_for(settings, world.db)
    assert await store.stat(key) is not None
    async with world.db.write() as tx:
        await tx.session.execute(
            update(ExportJob)
            .where(ExportJob.id == job.id)
            .values(finished_at=clock.now() - timedelta(days=settings.export_keep_days, minutes=1))
        )
    assert await exports.prune_files(world.db, settings) == 1
    assert await store.stat(key) is None and await chunk_rows(world.db, key) == []
    async with world.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(StoredFile)) == 0


# ---------------------------------------------------------------- the S3 backend


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3-compatible server on 127.0.0.1, as a subprocess; stands in for MinIO / OSS / COS."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the S3 server did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3_settings(settings: Settings, s3_server: str) -> Settings:
    import boto3

    bucket = f"mall-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    return replace(
        settings,
        file_store="s3",
        s3_endpoint_url=s3_server,
        s3_bucket=bucket,
        s3_access_key="k",
        s3_secret_key="s",
    )


@pytest.mark.slow
async def test_the_s3_store_round_trip(db: Database, s3_settings: Settings) -> None:
    store = files.store_for(s3_settings, db)
    assert isinstance(store, files.S3Store)
    big = payload(11 * MIB + 7)  # more than one multipart part
    assert await store.put("exports/big.csv", pieces(big, 700_000), content_type="text/csv") == len(big)
    assert await store.stat("exports/big.csv") == files.FileInfo("exports/big.csv", len(big), "text/csv")
    assert await joined(store, "exports/big.csv") == big
    assert await store.put("imports/small.csv", b"abc") == 3
    assert await store.read("imports/small.csv", max_bytes=3) == b"abc"
    with pytest.raises(files.FileTooLarge):
        await store.read("imports/small.csv", max_bytes=2)
    await store.delete("exports/big.csv")
    await store.delete("exports/big.csv")
    assert await store.stat("exports/big.csv") is None
    with pytest.raises(files.FileMissing):
        await joined(store, "exports/big.csv")

    async def broken() -> AsyncIterator[bytes]:
        yield payload(9 * MIB)
        raise RuntimeError("the writer died")

    with pytest.raises(RuntimeError):
        await store.put("exports/broken.csv", broken())
    assert await store.stat("exports/broken.csv") is None


@pytest.mark.slow
async def test_imports_and_exports_through_s3(
    world: World, settings: Settings, s3_settings: Settings, tmp_path: Path
) -> None:
    from workers import runtime

    await deal(world, "laptop", "1")
    while await disclosure.publish_pending(world.db):
        pass
    store = files.store_for(s3_settings, world.db)
    batch = await imports.start_import(world.db, store, world.who["supplier_y"], "商品.csv", listing_csv(2))
    job = await exports.start_job(world.db, world.who["center"], "xlsx", exports.parse_export_query({}))
    runtime.configure(replace(s3_settings, data_dir=tmp_path))
    try:
        from workers import jobs

        assert await asyncio.to_thread(jobs.run_import, str(batch.id)) == {"accepted": 2, "refused": 0}
        assert await asyncio.to_thread(jobs.run_export, str(job.id)) == "done"
    finally:
        runtime.configure(settings)
    key = f"exports/{job.id}.xlsx"
    content = await joined(store, key)
    assert content[:2] == b"PK"
    async with world.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(StoredFile)) == 0  # nothing in the database
    assert await exports.prune_files(world.db, s3_settings) == 0
    from datetime import timedelta

    from sqlalchemy import update

    from mall.core import clock

    async with world.db.write() as tx:
        await tx.session.execute(
            update(ExportJob)
            .where(ExportJob.id == job.id)
            .values(finished_at=clock.now() - timedelta(days=30))
        )
    assert await exports.prune_files(world.db, s3_settings) == 1
    assert await store.stat(key) is None

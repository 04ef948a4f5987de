"""Retention: export files are deleted after `export_keep_days` (the job record stays, marked
expired), push delivery-log rows after `push_log_keep_days`; the ledger is never pruned."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from mall.core import clock, files
from mall.core.errors import NotFound
from mall.core.settings import Settings
from mall.ledger import exports, push
from mall.ledger.models import ExportJob, PushDelivery
from tests.factories import World


async def test_old_export_files_are_deleted_and_the_job_says_so(world: World, settings: Settings) -> None:
    who = world.who["center"]
    old = await exports.start_job(world.db, who, "csv", exports.parse_export_query({}))
    new = await exports.start_job(world.db, who, "csv", exports.parse_export_query({}))
    for job in (old, new):
        assert await exports.run_job(world.db, settings, job.id) == "done"
    async with world.db.write() as tx:
        await tx.session.execute(
            update(ExportJob)
            .where(ExportJob.id == old.id)
            .values(finished_at=clock.now() - timedelta(days=settings.export_keep_days, minutes=1))
        )
    async with world.db.read() as s:
        old_row, new_row = await s.get(ExportJob, old.id), await s.get(ExportJob, new.id)
        assert old_row is not None and new_row is not None
    store = files.store_for(settings, world.db)
    old_file = await exports.job_file(store, settings, old_row)
    assert await store.stat(old_file.key) is not None

    assert await exports.prune_files(world.db, settings) == 1
    assert await exports.prune_files(world.db, settings) == 0  # once
    assert await store.stat(old_file.key) is None  # deleted from the file store
    async with world.db.read() as s:
        old_row, new_row = await s.get(ExportJob, old.id), await s.get(ExportJob, new.id)
        assert old_row is not None and new_row is not None
    assert old_row.status == "expired" and exports.STATUS_LABELS[old_row.status] == "文件已清理"
    with pytest.raises(NotFound) as err:
        await exports.job_file(store, settings, old_row)
    assert err.value.code == "export_file_expired"
    assert await exports.job_file(store, settings, new_row)  # a recent file stays


async def test_the_push_delivery_log_keeps_its_window(world: World, settings: Settings) -> None:
    local = replace(settings, push_allowed_hosts="127.0.0.1")  # loopback receivers must be listed
    sub, _ = await push.create(
        world.db, local, world.who["center"], name="接收", url="http://127.0.0.1:9/hook"
    )
    now = clock.now()
    async with world.db.write() as tx:
        for days in (1, 89, 91, 400):
            tx.session.add(
                PushDelivery(
                    subscription_id=sub.id,
                    seq=days,
                    record_id=uuid.uuid4(),
                    attempt=1,
                    started_at=now - timedelta(days=days),
                    status_code=200,
                    ok=True,
                    error_kind="",
                    duration_ms=3,
                )
            )
    assert await push.prune_log(world.db, settings) == 2
    assert await push.prune_log(world.db, settings) == 0  # once
    async with world.db.read() as s:
        left = sorted((await s.execute(select(PushDelivery.seq))).scalars())
        assert left == [1, 89]
        assert await s.scalar(select(func.count()).select_from(PushDelivery)) == 2

"""The ledger's witness: the head written to the log and to an append-only file, daily by the worker and
on demand, and the check that finds a ledger which lost or rewrote witnessed records."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import text

from mall.core import clock, logs, retention
from mall.core.settings import Settings
from mall.ledger import disclosure, witness
from mall.ledger.witness import Head
from mall.ops.ledger import verify_witness
from tests.factories import World
from tests.mall.test_disclosure import deal
from workers import queues

H = {n: f"{n:064x}" for n in range(1, 10)}
GENESIS = "0" * 64


def test_compare_finds_lost_and_rewritten_records() -> None:
    ledger = Head(5, H[5])
    found = {3: H[3], 5: H[5]}
    assert witness.compare([Head(3, H[3]), Head(5, H[5])], ledger, found).ok
    assert witness.compare([], ledger, {}).ok
    assert witness.compare([Head(0, GENESIS)], Head(0, GENESIS), {}).ok

    lost = witness.compare([Head(3, H[3]), Head(7, H[7])], ledger, found)
    assert not lost.ok and lost.seq == 7 and lost.highest == Head(7, H[7])
    assert "见证到第 7 条" in lost.problem and "只到第 5 条" in lost.problem and "2 条" in lost.problem

    rewritten = witness.compare([Head(3, H[4]), Head(5, H[5])], ledger, found)
    assert not rewritten.ok and rewritten.seq == 3 and "hash mismatch" in rewritten.problem


def test_a_witness_file_is_json_lines_with_seq_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    # witness lines, a blank line, and a record as a push receiver stored it: all are heads
    record = {"seq": 2, "hash": H[2], "prev_hash": H[1], "kind": "deal", "lines": []}
    path.write_text(
        witness.head_line(Head(1, H[1]), clock.now(), source="daily", mall="http://x")
        + "\n\n"
        + json.dumps(record)
        + "\n"
    )
    assert witness.read_witness(path) == [Head(1, H[1]), Head(2, H[2])]
    for bad in (json.dumps({"seq": "2", "hash": H[2]}), '{"seq": 2, "hash": "XYZ"}', "not json", "[1, 2]"):
        path.write_text(bad + "\n")
        with pytest.raises(witness.WitnessFileError, match="第 1 行"):
            witness.read_witness(path)
    with pytest.raises(witness.WitnessFileError, match="不存在"):
        witness.read_witness(tmp_path / "missing.jsonl")


async def test_witness_logs_the_head_and_appends_it(
    world: World, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for key in ("laptop", "desk"):
        await deal(world, key)
    await disclosure.publish_pending(world.db)
    path = tmp_path / "witness" / "heads.jsonl"
    caplog.set_level(logging.INFO, logger="mall.ledger.witness")
    head = await witness.witness(world.db, replace(settings, witness_file=str(path)), source="manual")
    assert head == await witness.current_head(world.db) and head.seq == 2
    (line,) = path.read_text().splitlines()
    item = json.loads(line)
    assert item["event"] == "ledger.head" and item["seq"] == 2 and item["hash"] == head.hash
    assert item["source"] == "manual" and item["at"].endswith("Z")
    (logged,) = [r for r in caplog.records if r.name == "mall.ledger.witness"]
    assert logged.getMessage() == f"ledger.head seq=2 hash={head.hash}"
    as_json = json.loads(logs.JsonFormatter().format(logged))
    assert as_json["event"] == "ledger.head" and as_json["seq"] == 2 and as_json["hash"] == head.hash
    assert as_json["message"].startswith("ledger.head ")

    # Appended, never rewritten; without a file the head goes to the log only.
    await deal(world, "printer")
    await disclosure.publish_pending(world.db)
    await witness.witness(world.db, replace(settings, witness_file=str(path)), source="daily")
    assert [json.loads(x)["seq"] for x in path.read_text().splitlines()] == [2, 3]
    await witness.witness(world.db, replace(settings, witness_file=""), source="manual")
    assert len(path.read_text().splitlines()) == 2
    result = await witness.check(world.db, path)
    assert result.ok and result.witnessed == 2 and result.highest is not None and result.highest.seq == 3
    assert await verify_witness(world.db, path) == 0


async def test_a_ledger_that_lost_or_rewrote_witnessed_records_fails_the_check(
    world: World, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in ("laptop", "desk", "printer"):
        await deal(world, key)
    await disclosure.publish_pending(world.db)
    path = tmp_path / "heads.jsonl"
    await witness.witness(world.db, replace(settings, witness_file=str(path)), source="manual")
    head = await witness.current_head(world.db)

    # What a restore of an older state looks like: the last record is gone and the head is back.
    async with world.db.engine.begin() as conn, retention.opened(conn):
        prev = (await conn.execute(text("SELECT hash FROM disclosure_records WHERE seq = 2"))).scalar_one()
        await conn.execute(text("DELETE FROM disclosure_records WHERE seq = 3"))
        await conn.execute(text("UPDATE ledger_head SET last_seq = 2, last_hash = :h"), {"h": prev})
    assert (await disclosure.verify_chain(world.db)).ok  # the chain alone cannot tell
    result = await witness.check(world.db, path)
    assert not result.ok and result.seq == 3 and "records lost" in result.problem
    assert await verify_witness(world.db, path) == 1
    assert "见证检查失败" in capsys.readouterr().err

    # New deals then reuse seq 3 with another hash: the fork is found too.
    await deal(world, "laptop")
    await disclosure.publish_pending(world.db)
    assert (await witness.current_head(world.db)).seq == 3
    result = await witness.check(world.db, path)
    assert not result.ok and result.seq == 3 and "hash mismatch" in result.problem
    assert (await witness.current_head(world.db)).hash != head.hash


async def test_the_daily_witness_is_enqueued_once_a_day_by_every_periodic_process(
    clean: None, settings: Settings
) -> None:
    from workers.cron import Cron

    conn = Redis.from_url(settings.resolved_redis_url)
    queue = Queue(settings.queue_name, connection=conn, serializer=JSONSerializer)
    try:
        first, second = Cron(settings), Cron(settings)
        for _ in range(5):  # ticks of two periodic processes (two hosts) on the same day
            first.witness_daily()
            second.witness_daily()
            first.next_witness_check = second.next_witness_check = 0.0  # as if the check interval passed
        (job_id,) = queue.job_ids
        today = job_id.removeprefix("witness-ledger-")
        job = queue.fetch_job(job_id)
        assert job is not None and job.func_name == "workers.jobs.witness_ledger" and job.args == [today]
        assert first.witnessed_on == second.witnessed_on == ""  # not written yet: still looked at
        queues.mark_witnessed(today)  # what the job does once the head is written
        first.witness_daily()
        second.witness_daily()
        assert first.witnessed_on == second.witnessed_on == today and len(queue.job_ids) == 1
        # Another day: enqueued once; a job that failed (its claim lapsed, the day not done) is
        # enqueued again by a later tick, and not before.
        assert not queues.witness_daily("2099-01-01") and len(queue.job_ids) == 2
        assert not queues.witness_daily("2099-01-01") and len(queue.job_ids) == 2
        queue.empty()
        conn.delete(f"mall:{settings.queue_name}:witness:2099-01-01:claimed")  # WITNESS_CLAIM_SECONDS on
        assert not queues.witness_daily("2099-01-01") and queue.job_ids == ["witness-ledger-2099-01-01"]
        queues.mark_witnessed("2099-01-01")
        assert queues.witness_daily("2099-01-01")
    finally:
        conn.close()


async def test_the_witness_job_appends_the_head(world: World, settings: Settings, tmp_path: Path) -> None:
    import asyncio

    from workers import jobs, runtime

    await deal(world, "laptop")
    await disclosure.publish_pending(world.db)
    path = tmp_path / "daily.jsonl"
    runtime.configure(replace(settings, witness_file=str(path)))
    try:
        seq = await asyncio.to_thread(jobs.witness_ledger)
    finally:
        runtime.configure(settings)
    assert seq == 1
    (line,) = path.read_text().splitlines()
    assert json.loads(line)["source"] == "daily" and json.loads(line)["seq"] == 1

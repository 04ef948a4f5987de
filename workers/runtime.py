"""The one job wrapper: every job opens its own database engine on its own event loop.

RQ runs each job in a forked work horse; an engine (and its pool) created elsewhere must never be
reused there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rq import get_current_job

from mall.core import logs, metrics
from mall.core.db import Database
from mall.core.settings import Settings, load_settings
from workers import queues

T = TypeVar("T")
log = logging.getLogger("mall.jobs")
_settings: Settings | None = None


def configure(settings: Settings) -> None:
    global _settings
    _settings = settings


def settings() -> Settings:
    if _settings is None:
        configure(load_settings())
    assert _settings is not None
    return _settings


def run(fn: Callable[[Database, Settings], Awaitable[T]]) -> T:
    s = settings()
    queues.register_topics()  # a job run by a plain `rq worker` has no other root

    async def main() -> T:
        db = Database(
            s.resolved_database_url, pool_size=2, retries=s.db_retries, data_keys=s.resolved_data_keys()
        )
        try:
            return await fn(db, s)
        finally:
            await db.dispose()

    job = get_current_job()
    if job is not None:  # the id of the request that caused the job, for its log lines
        caused_by = job.meta.get("request_id")
        logs.REQUEST_ID.set(logs.accept_request_id(caused_by) if isinstance(caused_by, str) else None)
    started = time.perf_counter()
    ok = False
    try:
        result = asyncio.run(main())
        ok = True
        return result
    finally:
        _record(s, time.perf_counter() - started, ok)


def _record(s: Settings, seconds: float, ok: bool) -> None:
    """The job's duration, for /metrics; a Redis hiccup never fails the job for it."""
    job = get_current_job()
    if job is None:  # run outside RQ (the tests call jobs directly)
        return
    try:
        metrics.record_job(
            queues.redis_conn(s), s.queue_name, (job.func_name or "?").rsplit(".", 1)[-1], seconds, ok
        )
    except Exception as exc:
        log.warning("job duration not recorded: %s", exc)

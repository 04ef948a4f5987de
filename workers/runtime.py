"""The one job wrapper: every job opens its own database engine on its own event loop.

RQ runs each job in a forked work horse; an engine (and its pool) created elsewhere must never be
reused there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

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
        db = Database(s.resolved_database_url, pool_size=2)
        try:
            return await fn(db, s)
        finally:
            await db.dispose()

    return asyncio.run(main())

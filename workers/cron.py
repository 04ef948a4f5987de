"""Periodic work, run by every worker process: the outbox sweeper and the auto-cancel job.

Several workers may run it at once; each tick only enqueues idempotent jobs, so duplicates are
harmless. A Redis outage makes a tick do nothing; the next tick tries again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from mall.db import Database
from mall.settings import Settings
from workers import outbox, queues

log = logging.getLogger("mall.cron")


class Cron(threading.Thread):
    def __init__(self, settings: Settings) -> None:
        super().__init__(name="mall-cron", daemon=True)
        self.settings = settings
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        db = Database(self.settings.resolved_database_url, pool_size=1)
        last_cancel = 0.0
        try:
            while not self.stopping.is_set():
                try:
                    await outbox.sweep(db, self.settings.outbox_grace_seconds)
                except Exception:
                    log.exception("outbox sweep failed")
                due = time.monotonic() - last_cancel >= self.settings.cancel_interval_seconds
                if due and queues.enqueue("workers.jobs.cancel_overdue", job_id="cancel-overdue"):
                    last_cancel = time.monotonic()
                await asyncio.to_thread(self.stopping.wait, self.settings.sweep_interval_seconds)
        finally:
            await db.dispose()

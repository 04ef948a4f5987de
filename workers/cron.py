"""Periodic work: the outbox sweeper, the auto-cancel tick and the daily ledger witness, in a process
of its own.

`mall worker` starts it beside the RQ worker. It is a separate process, not a thread, because RQ
forks a work horse for every job, and forking a process that has other threads can copy a lock
held mid-operation into the child, which then waits forever.

Several may run at once (one per worker); each tick only enqueues idempotent jobs, so duplicates
are harmless, and a job already waiting (or just started) is not enqueued again. A Redis outage makes a tick do nothing; the next tick tries again.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from bidding.models import Procedure, ProcedureStatus
from mall.core import clock, logs
from mall.core.db import Database
from mall.core.settings import Settings, load_settings
from mall.ledger import push
from workers import outbox, queues

log = logging.getLogger("mall.cron")
WITNESS_CHECK_SECONDS = 10.0


class Cron:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = False
        self.witnessed_on = ""  # the Chinese calendar day whose ledger witness is written
        self.next_witness_check = 0.0  # monotonic time of the next look at it

    def stop(self, *_: object) -> None:
        self.stopping = True

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        db = Database(
            self.settings.resolved_database_url, pool_size=1, data_keys=self.settings.resolved_data_keys()
        )
        last_cancel = 0.0
        try:
            while not self.stopping:
                try:
                    await outbox.sweep(db, self.settings.outbox_grace_seconds)
                except Exception:
                    log.exception("outbox sweep failed")
                due = time.monotonic() - last_cancel >= self.settings.cancel_interval_seconds
                if due and queues.enqueue_unless_busy("workers.jobs.cancel_overdue", "cancel-overdue"):
                    # the same slow tick ends framework agreements whose term is over
                    queues.enqueue_unless_busy("workers.jobs.expire_agreements", "expire-agreements")
                    # and sanctions whose term is over (mall.sanctions)
                    queues.enqueue_unless_busy("workers.jobs.expire_sanctions", "expire-sanctions")
                    # late deliveries and every supplier's credit score (mall.credit)
                    queues.enqueue_unless_busy("workers.jobs.refresh_credit", "refresh-credit")
                    queues.enqueue_unless_busy("workers.jobs.prune", "prune")
                    # payments falling due and the daily digests (mall.notify)
                    queues.enqueue_unless_busy("workers.jobs.notify_periodic", "notify-periodic")
                    # the daily price sweep (it runs once per Chinese calendar day; later asks do nothing)
                    queues.enqueue_unless_busy("workers.pricewatch_jobs.price_sweep", "price-sweep")
                    # the risk rules in full, once a day, and any incremental run a lost job left behind
                    queues.enqueue_unless_busy("workers.supervision_jobs.run_risk_nightly", "risk-nightly")
                    last_cancel = time.monotonic()
                self.witness_daily()
                try:
                    await push.kick(db)  # behind and due for an attempt: a lost job or a retry
                except Exception:
                    log.exception("push subscription check failed")
                try:
                    if await _procedures_due(db):
                        queues.enqueue_unless_busy("workers.jobs.close_due_procedures", "close-due")
                except Exception:
                    log.exception("procedure close check failed")
                await asyncio.sleep(self.settings.sweep_interval_seconds)
        finally:
            await db.dispose()

    def witness_daily(self) -> None:
        """Once a day (from the first tick of each day in China), the ledger head is witnessed; until
        the job has written it, the day is looked at again every WITNESS_CHECK_SECONDS."""
        today = clock.local_date(clock.now()).isoformat()
        if self.witnessed_on == today or time.monotonic() < self.next_witness_check:
            return
        if queues.witness_daily(today):
            self.witnessed_on = today
        else:
            self.next_witness_check = time.monotonic() + WITNESS_CHECK_SECONDS


async def _procedures_due(db: Database) -> bool:
    """An inquiry or auction past its end and not closed, or an award past its confirmation window
    (the scheduled job was lost, or runs late)."""
    from datetime import timedelta

    from sqlalchemy import select

    late = clock.now() - timedelta(seconds=5)
    async with db.read() as s:
        found = await s.scalar(
            select(Procedure.id)
            .where(
                (
                    Procedure.status.in_((ProcedureStatus.PUBLISHED, ProcedureStatus.OPEN))
                    & (Procedure.ends_at <= late)
                )
                | ((Procedure.status == ProcedureStatus.AWARDED) & (Procedure.confirm_due_at <= late))
            )
            .limit(1)
        )
    return found is not None


def main() -> None:
    logs.configure()
    settings = load_settings()
    queues.configure(settings)
    queues.register_topics()
    Cron(settings).run()


if __name__ == "__main__":
    main()

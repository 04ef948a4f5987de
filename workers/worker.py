"""`mall worker`: one RQ worker (with the scheduler) plus the cron thread."""

from __future__ import annotations

import logging
import os
import socket

from rq import Worker
from rq.serializers import JSONSerializer

from mall.settings import Settings
from workers import queues, runtime
from workers.cron import Cron

log = logging.getLogger("mall.worker")


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    queues.configure(settings)
    runtime.configure(settings)
    # A burst run drains the queue and exits: no scheduler, no periodic work.
    cron = Cron(settings)
    if not burst:
        cron.start()
    try:
        worker = Worker(
            [queues.queue(settings)],
            connection=queues.redis_conn(settings),
            serializer=JSONSerializer,
            name=f"mall-{socket.gethostname()}-{os.getpid()}",
        )
        worker.work(with_scheduler=not burst, burst=burst, logging_level="INFO")
    finally:
        cron.stop()

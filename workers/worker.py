"""`mall worker`: one RQ worker (with the scheduler) plus the periodic-work process."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys

from rq import Worker
from rq.serializers import JSONSerializer

from mall.core.settings import Settings
from mall.launcher import die_with_parent
from mall.ledger import push
from search_index import text
from workers import queues, runtime

log = logging.getLogger("mall.worker")


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    text.warm_up()  # jieba's dictionary loads once here; every forked horse inherits it

    push.ssl_context()  # likewise the TLS context push deliveries use

    queues.configure(settings)
    queues.register_topics()
    runtime.configure(settings)
    cron = None
    if not burst:  # a burst run drains the queue and exits: no scheduler, no periodic work
        cron = subprocess.Popen([sys.executable, "-m", "workers.cron"], preexec_fn=die_with_parent)
    try:
        worker = Worker(
            [queues.queue(settings)],
            connection=queues.redis_conn(settings),
            serializer=JSONSerializer,
            name=f"mall-{socket.gethostname()}-{os.getpid()}",
        )
        worker.work(with_scheduler=not burst, burst=burst, logging_level="INFO")
    finally:
        if cron is not None:
            cron.terminate()
            try:
                cron.wait(10)
            except subprocess.TimeoutExpired:
                cron.kill()

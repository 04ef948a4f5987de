"""One RQ worker process (`python -m workers.worker`), started by `mall worker` (workers.supervisor).

Its work horses ask the kernel for SIGTERM when it dies, so a killed worker leaves no job running.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from rq import Worker
from rq.serializers import JSONSerializer

from mall.core import logs
from mall.core.processes import die_with_parent
from mall.core.settings import Settings, load_settings
from mall.ledger import push
from search_index import text
from workers import queues, runtime

log = logging.getLogger("mall.worker")


class MallWorker(Worker):
    """An RQ worker whose work horses die with it (RQ starts a horse in a new process group, so a
    killed worker would otherwise leave its running job behind)."""

    def main_work_horse(self, job: Any, queue: Any) -> None:
        die_with_parent()
        super().main_work_horse(job, queue)


def run_rq_worker(settings: Settings, *, burst: bool = False) -> None:
    """One RQ worker in this process. The scheduler runs in a process of its own (workers.scheduler)."""
    text.warm_up()  # jieba's dictionary loads once here; every forked horse inherits it
    push.ssl_context()  # likewise the TLS context push deliveries use
    queues.configure(settings)
    queues.register_topics()
    runtime.configure(settings)
    worker = MallWorker(
        [queues.queue(settings)],
        connection=queues.redis_conn(settings),
        serializer=JSONSerializer,
        name=f"mall-{socket.gethostname()}-{os.getpid()}",
    )
    worker.work(with_scheduler=False, burst=burst, logging_level="INFO")


def main() -> None:
    logs.configure()
    run_rq_worker(load_settings())


if __name__ == "__main__":
    main()

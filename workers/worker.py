"""`mall worker`: a supervisor of this host's job processes.

It starts the periodic-work process (workers.cron), the RQ scheduler (workers.scheduler) and
`processes` RQ workers (this module's `main`), each as a child that dies with it, and restarts any
that exits, with backoff. Killing `mall worker`, even with SIGKILL, takes all of them down: every
child asks the kernel for SIGTERM when its parent dies, and so does every work horse an RQ worker
forks for a job.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from rq import Worker
from rq.serializers import JSONSerializer

from mall.core.processes import Child, Supervisor, die_with_parent, python_module
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


def run_worker(settings: Settings, *, burst: bool = False, processes: int = 1) -> None:
    if burst:  # drain the queue and exit: no scheduler, no periodic work
        run_rq_worker(settings, burst=True)
        return
    supervisor = Supervisor()
    supervisor.trap_signals()
    try:
        supervisor.add(Child("cron", python_module("workers.cron")))
        supervisor.add(Child("scheduler", python_module("workers.scheduler")))
        for n in range(max(1, processes)):
            supervisor.add(Child(f"worker-{n + 1}", python_module("workers.worker")))
        log.info("mall worker %s: %d RQ worker(s), scheduler, periodic work", os.getpid(), processes)
        supervisor.watch()
    finally:
        supervisor.stop_all()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_rq_worker(load_settings())


if __name__ == "__main__":
    main()

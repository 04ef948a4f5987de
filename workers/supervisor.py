"""`mall worker`: a supervisor of this host's job processes.

It starts the periodic-work process (workers.cron), the RQ scheduler (workers.scheduler) and
`processes` RQ workers (workers.worker), each as a child that dies with it, and restarts any that
exits, with backoff. Killing `mall worker`, even with SIGKILL, takes all of them down: every child
asks the kernel for SIGTERM when its parent dies, and so does every work horse an RQ worker forks
for a job. This module imports little, so the supervisor starts fast; its children load the jobs.
"""

from __future__ import annotations

import logging
import os

from mall.core import logs
from mall.core.processes import Child, Supervisor, python_module

log = logging.getLogger("mall.worker")


def run_supervisor(processes: int = 1) -> None:
    logs.configure()
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

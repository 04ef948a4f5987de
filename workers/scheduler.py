"""RQ's scheduler (jobs enqueued for later: closes of procedures, award lapses, retries) in a process
of its own, started by `mall worker` as a child that dies with it.

Several hosts may run one each: a Redis lock per queue lets one of them work at a time. RQ itself
would try again for a lock only every ten minutes; this process tries every second, and takes over at
once a lock whose holder was a scheduler of this host that is no longer running (a `mall worker`
killed with SIGKILL leaves its lock behind for a minute).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time

from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from mall.core import logs
from mall.core.settings import load_settings
from workers import queues

log = logging.getLogger("mall.scheduler")


def _name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_local_holder(holder: bytes | None) -> bool:
    if not holder:
        return False
    host, _, pid = holder.decode(errors="replace").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def main() -> None:
    logs.configure()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # until it holds the lock; then RQ's handlers
    settings = load_settings()
    queues.configure(settings)
    conn = queues.redis_conn(settings)
    scheduler = RQScheduler(
        [queues.queue(settings)], connection=conn, serializer=JSONSerializer, name=_name()
    )
    key = RQScheduler.get_locking_key(settings.queue_name)
    while not scheduler.acquire_locks():  # type: ignore[no-untyped-call]
        holder = conn.get(key)
        if _dead_local_holder(holder):  # type: ignore[arg-type]
            # Delete only if it is still that holder's lock (another host may have taken it meanwhile).
            conn.eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                1,
                key,
                holder,  # type: ignore[arg-type]
            )
            log.info("took over the scheduler lock of a stopped scheduler on this host")
        time.sleep(1)
    scheduler.work()  # type: ignore[no-untyped-call]  # until SIGTERM


if __name__ == "__main__":
    main()

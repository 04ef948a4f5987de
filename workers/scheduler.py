"""RQ's scheduler (jobs enqueued for later, retries with a delay) in a process of its own, started by
`mall worker` as a child that dies with it. Several hosts may run one each: a Redis lock per queue
lets one of them work at a time."""

from __future__ import annotations

import logging

from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from mall.core.settings import load_settings
from workers import queues


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    queues.configure(settings)
    scheduler = RQScheduler(
        [queues.queue(settings)], connection=queues.redis_conn(settings), serializer=JSONSerializer
    )
    scheduler.acquire_locks()  # type: ignore[no-untyped-call]
    scheduler.work()  # type: ignore[no-untyped-call]  # until SIGTERM; takes the lock over when another host's scheduler stops


if __name__ == "__main__":
    main()

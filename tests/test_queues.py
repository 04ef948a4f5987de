"""The periodic process ticks several times a second: it must never fill the queue with copies of a
job that is already waiting, or a job enqueued behind them (a publication) waits for every copy."""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from mall.core.settings import Settings
from workers import queues


def _queue(settings: Settings) -> tuple[Redis, Queue]:
    conn = Redis.from_url(settings.resolved_redis_url)
    return conn, Queue(settings.queue_name, connection=conn, serializer=JSONSerializer)


async def test_a_waiting_periodic_job_is_not_enqueued_again(clean: None, settings: Settings) -> None:
    conn, queue = _queue(settings)
    try:
        assert queues.enqueue_unless_busy("workers.jobs.close_due_procedures", "close-due")
        for _ in range(20):  # twenty ticks while no worker takes it
            assert not queues.enqueue_unless_busy("workers.jobs.close_due_procedures", "close-due")
        assert queue.job_ids == ["close-due"]

        # A worker takes it and finishes: the next tick enqueues it again.
        job = Job.fetch("close-due", connection=conn, serializer=JSONSerializer)
        queue.remove(job)
        job.set_status("finished")
        assert queues.enqueue_unless_busy("workers.jobs.close_due_procedures", "close-due")
        assert queue.job_ids == ["close-due"]
    finally:
        conn.close()


async def test_the_sweeper_keeps_at_most_one_waiting_index_job(clean: None, settings: Settings) -> None:
    conn, queue = _queue(settings)
    try:
        assert queues.enqueue_index(unless_busy=True)
        for _ in range(20):
            assert not queues.enqueue_index(unless_busy=True)
        assert len(queue.job_ids) == 1 and queue.job_ids[0].startswith("search-sync-")

        # Once it has started (the job clears the waiting marker), one more may wait behind it.
        queue.remove(queue.job_ids[0])
        queues.indexer_started()
        assert queues.enqueue_index(unless_busy=True)
        assert not queues.enqueue_index(unless_busy=True)
        assert len(queue.job_ids) == 1
    finally:
        conn.close()


async def test_a_job_just_taken_by_a_worker_is_not_enqueued_again(clean: None, settings: Settings) -> None:
    """Between taking a job from the list and marking it started, a worker holds a job that is
    "queued" but in no list: it is not enqueued again then (a second copy would overwrite the job's
    state while it runs); only once it has stayed so for longer than a job may (its worker died)."""
    from datetime import UTC, datetime, timedelta

    conn, queue = _queue(settings)
    try:
        assert queues.enqueue_unless_busy("workers.jobs.prune", "prune")
        queue.remove("prune")  # as a worker's dequeue does, before the job starts
        assert not queues.enqueue_unless_busy("workers.jobs.prune", "prune")
        assert queue.job_ids == []

        job = Job.fetch("prune", connection=conn, serializer=JSONSerializer)
        job.enqueued_at = datetime.now(UTC) - timedelta(seconds=settings.stale_job_seconds + 1)
        job.save()  # it stayed taken and unstarted too long: its worker is gone
        assert queues.enqueue_unless_busy("workers.jobs.prune", "prune")
        assert queue.job_ids == ["prune"]
    finally:
        conn.close()

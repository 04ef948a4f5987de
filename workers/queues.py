"""Redis connections and the job queue. Enqueueing never fails a business transaction."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from mall.core import logs, outbox
from mall.core.settings import Settings

log = logging.getLogger("mall.queues")

_settings: Settings | None = None
_redis: Redis | None = None


def configure(settings: Settings) -> None:
    global _settings, _redis
    _settings = settings
    _redis = None


def redis_conn(settings: Settings | None = None) -> Redis:
    global _redis
    settings = settings or _settings
    if settings is None:
        raise RuntimeError("queues not configured")
    if settings is not _settings:
        return Redis.from_url(settings.resolved_redis_url, socket_timeout=5, socket_connect_timeout=2)
    if _redis is None:
        _redis = Redis.from_url(settings.resolved_redis_url, socket_timeout=5, socket_connect_timeout=2)
    return _redis


def queue(settings: Settings | None = None) -> Queue:
    settings = settings or _settings
    assert settings is not None
    return Queue(settings.queue_name, connection=redis_conn(settings), serializer=JSONSerializer)


def _meta() -> dict[str, str]:
    """What a job carries from the request that caused it: its request id, for the job's log lines."""
    request_id = logs.REQUEST_ID.get()
    return {"request_id": request_id} if request_id else {}


def enqueue(func: str, *args: Any, job_id: str | None = None, **kwargs: Any) -> bool:
    """Enqueue by dotted name with JSON arguments. A Redis outage is logged, not raised: the outbox
    sweeper will enqueue the work again once Redis is back."""
    if _settings is None:
        return False
    try:
        queue().enqueue(
            func, *args, job_id=job_id, result_ttl=60, failure_ttl=24 * 3600, meta=_meta(), **kwargs
        )
        return True
    except Exception as exc:  # any Redis/connection failure
        log.warning("enqueue of %s failed (%s); the sweeper will retry", func, exc)
        return False


def enqueue_unless_busy(func: str, job_id: str) -> bool:
    """A periodic job under a fixed id: enqueued unless that job is already waiting in the queue or
    started recently. The periodic process ticks several times a second; without this, a worker
    slowed down (or just starting) would find the queue full of copies of the same job, and what is
    enqueued behind them (a publication) would wait for every copy to run."""
    if _busy(job_id):
        return False
    return enqueue(func, job_id=job_id)


def _waiting_key(kind: str) -> str:
    assert _settings is not None
    return f"mall:{_settings.queue_name}:{kind}-waiting"


def _soon(kind: str, marker: str, enqueue_job: Callable[[], bool]) -> bool:
    """After a commit: make sure a job of this kind runs after this moment. A job that is queued but
    has not started reads the outbox after this commit anyway, so one waiting job serves every commit
    until it starts: the queue holds at most one waiting job per kind, however fast commits come."""
    if _settings is None:
        return False
    try:
        conn = redis_conn()
        if not conn.set(_waiting_key(kind), marker, nx=True, ex=60):
            return True
    except Exception as exc:
        log.warning("%s job not enqueued (%s); the sweeper will retry", kind, exc)
        return False
    if enqueue_job():
        return True
    with contextlib.suppress(Exception):
        conn.delete(_waiting_key(kind))
    return False


def _started(kind: str) -> None:
    """Called by a job before it reads the outbox: commits from now on need a new job."""
    with contextlib.suppress(Exception):
        redis_conn().delete(_waiting_key(kind))


def publish_soon(outbox_id: uuid.UUID) -> bool:
    return _soon("publisher", str(outbox_id), lambda: enqueue_publish(outbox_id))


def publisher_started() -> None:
    _started("publisher")


def index_soon() -> bool:
    """After a listing change commits: the search index job runs after this moment."""
    job_id = f"search-sync-{uuid.uuid4().hex[:12]}"
    if _settings is None:
        return False
    try:
        conn = redis_conn()
        # a waiting marker whose job is gone (queue emptied, worker died) must not hold back the index
        if not conn.set(_waiting_key("indexer"), job_id, nx=True, ex=60) and _indexer_busy():
            return True
        conn.set(_waiting_key("indexer"), job_id, ex=60)
    except Exception as exc:
        log.warning("indexer job not enqueued (%s); the sweeper will retry", exc)
        return False
    if enqueue_index(job_id=job_id):
        return True
    with contextlib.suppress(Exception):
        conn.delete(_waiting_key("indexer"))
    return False


def indexer_started() -> None:
    _started("indexer")


def enqueue_index(*, unless_busy: bool = False, job_id: str | None = None) -> bool:
    """The search index job. With `unless_busy` (the sweeper), nothing is enqueued while the job the
    waiting marker names is still waiting or recently started, and the new job becomes the marker's:
    at most one waiting sync job, however often the sweeper looks."""
    job_id = job_id or f"search-sync-{uuid.uuid4().hex[:12]}"
    if unless_busy:
        if _indexer_busy():
            return False
        with contextlib.suppress(Exception):
            redis_conn().set(_waiting_key("indexer"), job_id, ex=60)
    return enqueue("workers.jobs.sync_search", job_id=job_id)


def _indexer_busy() -> bool:
    """The sync job named by the waiting marker is still queued or recently started. A marker whose
    job is gone (the queue was emptied, the worker died) does not count."""
    try:
        raw = redis_conn().get(_waiting_key("indexer"))
    except Exception:
        return False
    if not raw:
        return False
    return _busy(raw.decode() if isinstance(raw, bytes) else str(raw))


def search_sync_lock(settings: Settings | None = None) -> Any:
    """Held by every writer of index changes, so states are applied in the order they were read."""
    settings = settings or _settings
    assert settings is not None
    return redis_conn(settings).lock(
        f"mall:{settings.queue_name}:search-sync", timeout=120, blocking_timeout=120, thread_local=False
    )


def reindex_lock(settings: Settings | None = None) -> Any:
    """Held for the length of `mall reindex`; renewed while it runs (`reacquire`)."""
    settings = settings or _settings
    assert settings is not None
    return redis_conn(settings).lock(f"mall:{settings.queue_name}:reindex", timeout=120, thread_local=False)


def enqueue_publish(outbox_id: uuid.UUID, *, unless_busy: bool = False) -> bool:
    """Enqueue the publisher for an outbox row. The sweeper passes `unless_busy`: a job that is already
    waiting, or started less than `stale_job_seconds` ago, is left alone."""
    job_id = f"publish-{outbox_id}"
    if unless_busy and _busy(job_id):
        return False
    return enqueue("workers.jobs.publish", str(outbox_id), job_id=job_id)


def _busy(job_id: str) -> bool:
    from datetime import UTC, datetime, timedelta

    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        job = Job.fetch(job_id, connection=redis_conn(), serializer=JSONSerializer)
        status = job.get_status()
    except NoSuchJobError:
        return False
    except Exception:
        return False  # Redis trouble: let enqueue try and log it
    stale_after = timedelta(seconds=_settings.stale_job_seconds if _settings else 60)

    def recent(at: datetime | None) -> bool:
        return (
            at is not None and datetime.now(UTC) - (at if at.tzinfo else at.replace(tzinfo=UTC)) < stale_after
        )

    if status == "queued":
        # Waiting in the list; or just taken from it by a worker that has not marked it started yet
        # (trusted for a while, as a started job is); or lost with a worker that died holding it.
        return job.get_position() is not None or recent(job.enqueued_at)
    if status in ("deferred", "scheduled"):
        return True
    if status == "started":
        # A started job is trusted for a while; after that its worker may have died with it, and the
        # job is enqueued again (a second run is harmless: publishing is idempotent).
        return recent(job.started_at)
    return False


def _schedule(
    at: Any,
    func: str,
    job_id: str,
    target: uuid.UUID,
    *,
    keep: int,
    lost: str,
    keep_failed: int | None = 24 * 3600,
) -> bool:
    """Enqueue `func` for one record at `at` (RQ's scheduler); `keep` and `keep_failed` are how long
    a result and a failure are kept (None: RQ's default). A Redis outage is logged, not raised: the
    cron catches a lost schedule (`lost` names the job and what the cron will do)."""
    if _settings is None:
        return False
    try:
        queue().enqueue_at(
            at, func, str(target), job_id=job_id, result_ttl=keep, failure_ttl=keep_failed, meta=_meta()
        )
        return True
    except Exception as exc:
        log.warning(lost, target, exc)
        return False


def schedule_close(procedure_id: uuid.UUID, at: Any) -> bool:
    """Close a procedure at its end time. One job id per procedure: scheduling again (an anti-sniping
    extension) moves the same job."""
    job_id = f"close-{procedure_id}"
    lost = "close of %s not scheduled (%s); the cron will close it"
    return _schedule(at, "workers.jobs.close_procedure", job_id, procedure_id, keep=3600, lost=lost)


def schedule_award_lapse(procedure_id: uuid.UUID, at: Any) -> bool:
    """When the winner's confirmation window ends, pass the award on (the job checks it is still due)."""
    job_id = f"lapse-{procedure_id}"
    lost = "award lapse of %s not scheduled (%s); the cron will pass it on"
    return _schedule(
        at, "workers.jobs.lapse_award", job_id, procedure_id, keep=3600, lost=lost, keep_failed=None
    )


def push_soon(subscription_id: uuid.UUID) -> bool:
    """After new records (or a resume): a delivery job for this subscription runs after this moment.
    At most one waiting job per subscription, however many records are published meanwhile."""
    sid = str(subscription_id)
    return _soon(
        f"push-{sid}",
        sid,
        lambda: enqueue("workers.jobs.deliver_push", sid, job_id=f"push-{sid}-{uuid.uuid4().hex[:8]}"),
    )


def push_started(subscription_id: str) -> None:
    _started(f"push-{subscription_id}")


def schedule_push(subscription_id: uuid.UUID, at: Any) -> bool:
    """The next attempt after a failure, at the end of its backoff. One scheduled job per
    subscription: a later failure moves it."""
    job_id = f"push-retry-{subscription_id}"
    lost = "push retry of %s not scheduled (%s); the cron will retry"
    return _schedule(at, "workers.jobs.deliver_push", job_id, subscription_id, keep=60, lost=lost)


WITNESS_CLAIM_SECONDS = 900  # a witness job not done by then (it failed, its worker died) is enqueued again


def _witness_keys(day: str) -> tuple[str, str]:
    assert _settings is not None
    base = f"mall:{_settings.queue_name}:witness:{day}"
    return f"{base}:done", f"{base}:claimed"


def witness_daily(day: str) -> bool:
    """The daily witness of the ledger head, once per (Chinese) calendar day across every periodic
    process. True once the day's witness is written (`mark_witnessed`, by the job). Otherwise the
    first process to claim the day enqueues the job; the claim lapses after WITNESS_CLAIM_SECONDS, so
    a job that failed or died is enqueued again by a later tick. False: not written yet."""
    if _settings is None:
        return False
    done, claimed = _witness_keys(day)
    try:
        conn = redis_conn()
        if conn.exists(done):
            return True
        if not conn.set(claimed, "1", nx=True, ex=WITNESS_CLAIM_SECONDS):
            return False  # another process (or an earlier tick) enqueued it: wait for the job
    except Exception as exc:
        log.warning("daily ledger witness not enqueued (%s); the next tick retries", exc)
        return False
    if not enqueue("workers.jobs.witness_ledger", day, job_id=f"witness-ledger-{day}"):
        with contextlib.suppress(Exception):
            conn.delete(claimed)
    return False


def mark_witnessed(day: str) -> None:
    """The day's witness is written: no periodic process enqueues it again that day."""
    if _settings is None:
        return
    done, _ = _witness_keys(day)
    redis_conn().set(done, "1", ex=3 * 24 * 3600)


def _daily_key(kind: str, day: str) -> str:
    assert _settings is not None
    return f"mall:{_settings.queue_name}:{kind}:{day}:done"


def done_today(kind: str, day: str) -> bool:
    """Whether a once-a-day job (`kind`) already ran to its end on this Chinese calendar day, in any
    process. Without Redis settings (a job run by hand) it never counts as done."""
    if _settings is None:
        return False
    return bool(redis_conn().exists(_daily_key(kind, day)))


def mark_done_today(kind: str, day: str) -> None:
    if _settings is None:
        return
    redis_conn().set(_daily_key(kind, day), "1", ex=3 * 24 * 3600)


def notify_soon() -> bool:
    """After notices were staged: a delivery job (notification rows, then their e-mail) runs after
    this moment. At most one waiting job, however many commits stage notices meanwhile."""
    return _soon("notifier", "1", lambda: enqueue_notify())


def enqueue_notify(*, unless_busy: bool = False) -> bool:
    """The delivery job. With `unless_busy` (the sweeper), nothing is enqueued while one waits."""
    if unless_busy:
        return enqueue_unless_busy("workers.jobs.deliver_notifications", "deliver-notifications")
    return enqueue("workers.jobs.deliver_notifications", job_id=f"notify-{uuid.uuid4().hex[:12]}")


def notifier_started() -> None:
    _started("notifier")


def risk_soon() -> bool:
    """After events the risk rules read: an incremental run (workers.supervision_jobs.run_risk)
    after this moment. At most one waiting job, however many commits stage rows meanwhile."""
    return _soon(
        "risk",
        "1",
        lambda: enqueue("workers.supervision_jobs.run_risk", job_id=f"risk-{uuid.uuid4().hex[:12]}"),
    )


def risk_started() -> None:
    _started("risk")


def enqueue_import(import_id: uuid.UUID) -> bool:
    return enqueue("workers.jobs.run_import", str(import_id), job_id=f"import-{import_id}")


def enqueue_export(export_id: uuid.UUID) -> bool:
    return enqueue("workers.jobs.run_export", str(export_id), job_id=f"export-{export_id}")


def register_topics() -> None:
    """What each outbox topic enqueues in this process. Every process root calls it at start-up (the
    web app factory, the command line, the worker, its periodic process and the job wrapper); until
    `configure` is called the enqueuers do nothing and return False, as before."""
    outbox.register(
        {
            outbox.PUBLISH: publish_soon,
            outbox.INDEX: index_soon,
            outbox.IMPORT: enqueue_import,
            outbox.EXPORT: enqueue_export,
            outbox.CLOSE_PROCEDURE: schedule_close,
            outbox.AWARD_LAPSE: schedule_award_lapse,
            outbox.PUSH: push_soon,
            outbox.PUSH_RETRY: schedule_push,
            outbox.NOTIFY: notify_soon,
            outbox.RISK: risk_soon,
        }
    )

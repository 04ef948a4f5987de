"""What the processes measure for Prometheus (`/metrics`, served by the web shell).

Counters a process keeps in memory live here so any layer may count (database retries, open room
connections). Job
durations are kept in Redis instead: jobs run in worker processes on any host, and the web process
that Prometheus scrapes reads them back, so one scrape sees every worker's jobs.
"""

from __future__ import annotations

import math
from typing import Any

from prometheus_client import Counter, Gauge, disable_created_metrics

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series beside every counter and histogram

DB_RETRIES = Counter(
    "mall_db_retries_total",
    "Units of work run again after a deadlock, serialization failure, busy database or lost connection",
    ["reason"],
)

# Counted by the auction room's WebSocket handler (bidding), which the web shell's /metrics serves.
ROOM_CONNECTIONS = Gauge("mall_room_connections", "Open auction-room WebSocket connections in this process")

# Upper bounds (seconds) of the job duration histogram's buckets.
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, math.inf)


def job_stats_key(queue_name: str) -> str:
    return f"mall:{queue_name}:metrics:jobs"


def _bound(b: float) -> str:
    return "+Inf" if math.isinf(b) else repr(b)


def record_job(redis: Any, queue_name: str, job: str, seconds: float, ok: bool) -> None:
    """Count one finished job (a sync Redis client, as the workers have): its bucket, sum and outcome."""
    key = job_stats_key(queue_name)
    pipe = redis.pipeline(transaction=False)
    for b in JOB_BUCKETS:
        if seconds <= b:
            pipe.hincrby(key, f"{job}|le|{_bound(b)}", 1)
    pipe.hincrbyfloat(key, f"{job}|sum", seconds)
    pipe.hincrby(key, f"{job}|{'ok' if ok else 'failed'}", 1)
    pipe.execute()


def read_jobs(fields: dict[bytes | str, bytes | str]) -> dict[str, dict[str, float]]:
    """The hash `record_job` writes, per job: {"le|0.5": n, …, "sum": s, "ok": n, "failed": n}."""
    out: dict[str, dict[str, float]] = {}
    for raw_key, raw_value in fields.items():
        key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
        value = raw_value.decode() if isinstance(raw_value, bytes) else raw_value
        job, _, rest = key.partition("|")
        out.setdefault(job, {})[rest] = float(value)
    return out


def bucket_bounds() -> list[str]:
    return [_bound(b) for b in JOB_BUCKETS]

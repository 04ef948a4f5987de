"""What runs the work a commit leaves behind, by topic.

Business code stages its outbox rows (or changes) in the transaction and, after the commit, asks
for the topic's job with `kick`. It never knows the job queue: each process's root (the web app
factory, the worker, the command line) registers what every topic enqueues. A kick that nobody
registered is a wiring mistake and raises, unless the process said explicitly that such work is
dropped (`drop_unregistered`, used by tests that run services without any queue).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# The topics, and the arguments their enqueuer takes.
PUBLISH = "publish"  # (outbox_id): publish pending disclosure records
INDEX = "index"  # (): apply pending search index changes
IMPORT = "import"  # (import_id): run a spreadsheet import
EXPORT = "export"  # (export_id): write an export file
CLOSE_PROCEDURE = "close_procedure"  # (procedure_id, at): close an inquiry or auction at its end
AWARD_LAPSE = "award_lapse"  # (procedure_id, at): pass an unconfirmed award on
PUSH = "push"  # (subscription_id): deliver pending records to a receiver
PUSH_RETRY = "push_retry"  # (subscription_id, at): the next delivery attempt after a failure
NOTIFY = "notify"  # (): turn pending notification rows into the message centre's, then mail them

TOPICS = (PUBLISH, INDEX, IMPORT, EXPORT, CLOSE_PROCEDURE, AWARD_LAPSE, PUSH, PUSH_RETRY, NOTIFY)

Enqueuer = Callable[..., bool]


class NotRegistered(RuntimeError):
    """A kick for a topic no process root registered."""


_enqueuers: dict[str, Enqueuer] = {}
_drop_unregistered = False


def register(enqueuers: Mapping[str, Enqueuer]) -> None:
    """Called by a process root at start-up. Registering a topic again replaces its enqueuer."""
    unknown = set(enqueuers) - set(TOPICS)
    if unknown:
        raise ValueError(f"unknown outbox topics: {sorted(unknown)}")
    _enqueuers.update(enqueuers)


def drop_unregistered(drop: bool = True) -> None:
    """Let kicks for unregistered topics do nothing (and return False) instead of raising. Only for
    processes that run business code without a queue on purpose, such as the test suite."""
    global _drop_unregistered
    _drop_unregistered = drop


def kick(topic: str, *args: Any) -> bool:
    """Enqueue the topic's job; False when it was not enqueued (the outbox sweeper or the cron
    catches up later). Never raises for a queue outage: the enqueuers log and return False."""
    enqueuer = _enqueuers.get(topic)
    if enqueuer is None:
        if _drop_unregistered:
            return False
        raise NotRegistered(f"no enqueuer registered for outbox topic {topic!r}")
    return enqueuer(*args)

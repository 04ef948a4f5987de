"""What runs the work a commit leaves behind, by topic.

Business code stages its outbox rows (or changes) in the transaction and, after the commit, asks
for the topic's job with `kick`. It never knows the job queue: each process's root (the web app
factory, the worker, the command line) registers what every topic enqueues. A kick that nobody
registered is a wiring mistake and raises, unless the process said explicitly that such work is
dropped (`drop_unregistered`, used by tests that run services without any queue).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from mall.core import clock
from mall.core.models import Outbox, OutboxStatus

log = logging.getLogger("mall.outbox")

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
RISK = "risk"  # (): run the risk rules over the buyers, procedures and applications of pending rows

TOPICS = (PUBLISH, INDEX, IMPORT, EXPORT, CLOSE_PROCEDURE, AWARD_LAPSE, PUSH, PUSH_RETRY, NOTIFY, RISK)

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


# ---------------------------------------------------------------- the risk rules' trigger

_RISK_ROW = "mall_risk_row"
_RISK_KICK = "mall_risk_kick"
_tasks: set[asyncio.Task[Any]] = set()


def stage_risk(
    session: AsyncSession | Session,
    *,
    buyers: Iterable[uuid.UUID | None] = (),
    procedures: Iterable[uuid.UUID | None] = (),
    designations: Iterable[uuid.UUID | None] = (),
) -> None:
    """In the caller's transaction: the risk rules (mall.supervision) are to look again at these
    buyers, procedures and designation applications once it commits. One outbox row per
    transaction, however many events it records; the topic is kicked after the commit (the nightly
    full run catches anything a lost kick left behind)."""
    names = {
        "buyers": {str(x) for x in buyers if x is not None},
        "procedures": {str(x) for x in procedures if x is not None},
        "designations": {str(x) for x in designations if x is not None},
    }
    if not any(names.values()):
        return
    row: Outbox | None = session.info.get(_RISK_ROW)
    if row is None:
        row = Outbox(
            id=uuid.uuid4(),
            topic=RISK,
            payload={k: sorted(v) for k, v in names.items()},
            status=OutboxStatus.PENDING,
            created_at=clock.now(),
        )
        session.add(row)
        session.info[_RISK_ROW] = row
        _kick_after_commit(session)
        return
    old = row.payload or {}
    row.payload = {k: sorted(set(old.get(k, [])) | v) for k, v in names.items()}  # a new dict: tracked


def _kick_after_commit(session: AsyncSession | Session) -> None:
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    if session.info.get(_RISK_KICK):
        return
    session.info[_RISK_KICK] = True

    def committed(_: Session) -> None:
        if session.info.pop(_RISK_ROW, None) is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            _kick_risk()
            return
        task = loop.create_task(asyncio.to_thread(_kick_risk))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    def rolled_back(_: Session, _previous: Any) -> None:
        session.info.pop(_RISK_ROW, None)

    event.listen(sync, "after_commit", committed)
    event.listen(sync, "after_soft_rollback", rolled_back)


def _kick_risk() -> None:
    try:
        kick(RISK)
    except Exception:
        log.exception("risk rules not kicked; the nightly run will catch up")

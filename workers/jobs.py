"""RQ jobs. They take ids, not objects, and are idempotent: running one twice changes nothing more."""

from __future__ import annotations

from mall import disclosure, orders
from mall.db import Database
from mall.settings import Settings
from workers import queues, runtime


def publish(outbox_id: str) -> int:
    """Publish pending disclosure records (this one and any older ones), in outbox order."""

    queues.publisher_started()

    async def go(db: Database, s: Settings) -> int:
        total = 0
        while True:
            n = await disclosure.publish_pending(db, pause=s.publish_pause_seconds)
            total += n
            if n == 0:
                return total

    return runtime.run(go)


def cancel_overdue() -> int:
    async def go(db: Database, s: Settings) -> int:
        return await orders.cancel_overdue(db)

    return runtime.run(go)


def sync_search() -> int:
    """Apply pending listing changes to the search index (under the sync lock)."""

    queues.indexer_started()

    async def go(db: Database, s: Settings) -> int:
        from search_index import sync
        from search_index.factory import backend_for

        backend = backend_for(s, writer=True)
        with queues.search_sync_lock(s):
            return await sync.drain(db, backend)

    return runtime.run(go)

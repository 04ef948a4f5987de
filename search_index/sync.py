"""Keeping the search index in step with the catalogue.

A change to a listing writes an outbox row (topic `search`) in the same transaction; after the commit
the index job is enqueued (`workers.queues.index_soon`). The job (`drain`) takes the sync lock, reads
the pending rows and the listings' current state, upserts live listings and deletes every other one,
then marks the rows done. Reading the state *inside* the lock means two jobs can never write an older
state over a newer one. A lost job is enqueued again by the outbox sweeper.

`rebuild` (the `mall reindex` command) streams every live listing into a fresh index and swaps it in;
changes committed while it ran are applied again right after the swap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from catalog import categories
from catalog.models import Listing, ListingStatus
from mall.core import clock, outbox
from mall.core.db import Database, Tx
from mall.core.models import Organization, Outbox, OutboxStatus
from mall.core.money import to_cents
from mall.sanctions import standing
from search_index.backend import ProductDocument, SearchBackend
from search_index.documents import document_of

log = logging.getLogger("mall.search")

TOPIC = "search"
BATCH = 500


def stage(tx: Tx, listing_ids: Iterable[uuid.UUID]) -> None:
    """In the caller's transaction: these listings changed; the index follows after the commit."""
    ids = sorted({str(i) for i in listing_ids})
    if not ids:
        return
    tx.session.add(
        Outbox(
            id=uuid.uuid4(),
            topic=TOPIC,
            payload={"ids": ids},
            status=OutboxStatus.PENDING,
            created_at=clock.now(),
        )
    )

    tx.after_commit(lambda: outbox.kick(outbox.INDEX))


def documents(rows: Iterable[Listing]) -> Iterator[ProductDocument]:
    for x in rows:
        yield document_of(x, x.supplier.name, categories.name_of(x.category_code))


async def _load(db: Database, ids: list[uuid.UUID]) -> tuple[list[ProductDocument], list[str]]:
    async with db.read() as s:
        rows = list((await s.execute(select(Listing).where(Listing.id.in_(ids)))).scalars())
        # a supplier a sanction bars is not found: its listings leave the index while it lasts
        barred = await standing.barring(s, {x.supplier_org_id for x in rows})
    live = [x for x in rows if x.status == ListingStatus.LIVE and x.supplier_org_id not in barred]
    gone = {str(i) for i in ids} - {str(x.id) for x in live}
    return list(documents(live)), sorted(gone)


async def drain(db: Database, backend: SearchBackend, *, limit: int = BATCH) -> int:
    """Apply pending index changes, oldest first. Returns the number of outbox rows handled."""
    total = 0
    while True:
        async with db.read() as s:
            rows = list(
                (
                    await s.execute(
                        select(Outbox.id, Outbox.payload)
                        .where(Outbox.topic == TOPIC, Outbox.status == OutboxStatus.PENDING)
                        .order_by(Outbox.created_at, Outbox.id)
                        .limit(limit)
                    )
                ).all()
            )
        if not rows:
            return total
        ids = sorted({uuid.UUID(i) for _, payload in rows for i in payload.get("ids", [])})
        upserts, deletes = await _load(db, ids)
        await asyncio.to_thread(_apply, backend, upserts, deletes)
        async with db.write() as tx:
            await tx.session.execute(
                update(Outbox)
                .where(Outbox.id.in_([r[0] for r in rows]))
                .values(status=OutboxStatus.DONE, processed_at=clock.now(), attempts=Outbox.attempts + 1)
            )
        total += len(rows)
        if len(rows) < limit:
            return total


def _apply(backend: SearchBackend, upserts: list[ProductDocument], deletes: list[str]) -> None:
    if deletes:
        backend.delete(deletes)
    if upserts:
        backend.upsert(upserts)


async def _live_docs(db: Database, batch: int = 5000) -> AsyncIterator[list[ProductDocument]]:
    """Every live listing as a search document, in id order, a batch at a time (constant memory).
    Plain column tuples, not ORM objects: a rebuild reads the whole catalogue."""
    t, o = Listing, Organization
    cols = (
        t.id,
        t.name,
        t.brand,
        t.spec_model,
        t.category_code,
        t.supplier_org_id,
        o.name,
        o.region_code,
        t.price,
        t.stock,
        t.sales_count,
        t.created_at,
        t.description,
    )
    after: uuid.UUID | None = None
    while True:
        async with db.read() as s:
            stmt = (
                select(*cols)
                .join(o, o.id == t.supplier_org_id)
                .where(t.status == ListingStatus.LIVE, standing.not_barred(t.supplier_org_id))
                .order_by(t.id)
                .limit(batch)
            )
            if after is not None:
                stmt = stmt.where(t.id > after)
            rows = (await s.execute(stmt)).all()
        if not rows:
            return
        yield [
            ProductDocument(
                id=str(r[0]),
                title=r[1],
                brand=r[2],
                spec_model=r[3],
                category_code=r[4],
                category_name=categories.name_of(r[4]),
                supplier_id=str(r[5]),
                supplier_name=r[6],
                region_code=r[7] or "",
                price_cents=to_cents(r[8]),
                stock=int(r[9]),
                sales=int(r[10] or 0),
                created_ts=int((r[11] if r[11].tzinfo else r[11].replace(tzinfo=UTC)).timestamp()),
                description=r[12] or "",
            )
            for r in rows
        ]
        after = rows[-1][0]


def _sync_iter(
    agen: AsyncIterator[list[ProductDocument]], loop: asyncio.AbstractEventLoop
) -> Iterator[ProductDocument]:
    """Drive the async batches from the thread that feeds the index writer."""

    async def next_batch() -> list[ProductDocument] | None:
        try:
            return await agen.__anext__()
        except StopAsyncIteration:
            return None

    while True:
        docs = asyncio.run_coroutine_threadsafe(next_batch(), loop).result()
        if docs is None:
            return
        yield from docs


async def rebuild(
    db: Database,
    backend: SearchBackend,
    *,
    lock: Any = None,
    progress: Callable[[int], None] | None = None,
    sync_lock: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> dict[str, int]:
    """Rebuild the whole index from the database and swap it in. `lock` (optional) is kept alive while
    building (an object with `reacquire()`, e.g. a redis-py Lock); `sync_lock` is the lock the index
    jobs hold, taken for the catch-up after the swap. Returns counts."""
    started: datetime = clock.now() - timedelta(seconds=2)  # margin for clock skew between processes
    loop = asyncio.get_running_loop()
    counter = {"n": 0}

    def feed() -> Iterator[ProductDocument]:
        for doc in _sync_iter(_live_docs(db), loop):
            counter["n"] += 1
            if counter["n"] % 5000 == 0:
                if lock is not None:
                    lock.reacquire()
                if progress is not None:
                    progress(counter["n"])
            yield doc

    indexed = await asyncio.to_thread(backend.rebuild, feed())
    # Changes committed while the rebuild read the table went into the old index; apply them again.
    async with db.read() as s:
        changed = list((await s.execute(select(Listing.id).where(Listing.updated_at >= started))).scalars())
    caught_up = 0
    with sync_lock():
        for i in range(0, len(changed), BATCH):
            upserts, deletes = await _load(db, changed[i : i + BATCH])
            await asyncio.to_thread(_apply, backend, upserts, deletes)
            caught_up += len(upserts) + len(deletes)
    return {"indexed": indexed, "caught_up": caught_up}

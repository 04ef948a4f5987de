"""Index sync: listing changes reach the index through the outbox; `mall reindex` rebuilds, swaps,
catches up with what changed meanwhile, and refuses to run twice at once."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from catalog import prices, service
from mall.core.models import Outbox
from mall.core.settings import Settings
from search_index import sync
from search_index.backend import ProductDocument, SearchQuery
from search_index.embedded import EmbeddedBackend
from tests.factories import World


def backend(settings: Settings) -> EmbeddedBackend:
    return EmbeddedBackend(settings.data_dir / "search", writer=True, heap_bytes=15_000_000)


def ids_for(b: Any, **kw: Any) -> set[str]:
    return {h.id for h in b.search(SearchQuery(per_page=100, **kw)).hits}


async def pending(world: World) -> int:
    async with world.db.read() as s:
        return (
            await s.scalar(select(func.count()).where(Outbox.topic == "search", Outbox.status == "pending"))
            or 0
        )


async def test_changes_flow_through_the_outbox_and_only_live_listings_are_indexed(world: World) -> None:
    b = backend(world.settings)
    waiting = await world.listing("ups", "supplier_y", "3200.00", category="A02061504", live=False)
    assert await pending(world) == 3  # the three approvals of the factory's world
    assert await sync.drain(world.db, b) == 3
    assert await pending(world) == 0
    live = {str(world.listings[k].id) for k in ("laptop", "printer", "desk")}
    assert ids_for(b) == live and str(waiting.id) not in ids_for(b)

    desk = world.listings["desk"]
    await service.set_listing_status(world.db, world.who["supplier_y"], desk.id, "delisted")
    await prices.change_price(
        world.db,
        world.who["supplier_x"],
        world.listings["laptop"].id,
        "4800.00",
        "5100.00",
        margin=world.settings.price_margin,
    )
    assert await sync.drain(world.db, b) == 2
    assert ids_for(b) == live - {str(desk.id)}
    assert [h.price for h in b.search(SearchQuery(q="laptop")).hits] == ["4800.00"]
    assert await sync.drain(world.db, b) == 0  # nothing left: running it again changes nothing


async def test_overlapping_drains_end_in_the_latest_state(world: World) -> None:
    b = backend(world.settings)
    await sync.drain(world.db, b)
    desk = world.listings["desk"]
    y = world.who["supplier_y"]
    for status in ("delisted", "live", "delisted", "live", "delisted"):
        await service.set_listing_status(world.db, y, desk.id, status, margin=world.settings.price_margin)
    await asyncio.gather(sync.drain(world.db, b), sync.drain(world.db, b), sync.drain(world.db, b))
    assert str(desk.id) not in ids_for(b)
    assert await pending(world) == 0


async def test_rebuild_catches_up_with_changes_made_while_it_ran(world: World) -> None:
    real = backend(world.settings)
    await sync.drain(world.db, real)
    desk = world.listings["desk"]
    loop = asyncio.get_running_loop()
    regulator = world.who["regulator"]

    class FreezeMidway:
        name = "embedded"

        def rebuild(self, docs: Iterable[ProductDocument]) -> int:
            snapshot = list(docs)  # the table as the rebuild read it: the desk is live
            assert str(desk.id) in {d.id for d in snapshot}
            asyncio.run_coroutine_threadsafe(
                service.moderate(
                    world.db, regulator, desk.id, "freeze", "价格异常", margin=world.settings.price_margin
                ),
                loop,
            ).result()
            return real.rebuild(snapshot)

        def upsert(self, docs: Iterable[ProductDocument]) -> None:
            real.upsert(docs)

        def delete(self, ids: Iterable[str]) -> None:
            real.delete(ids)

    counts = await sync.rebuild(world.db, FreezeMidway())  # type: ignore[arg-type]
    assert counts["indexed"] == 3 and counts["caught_up"] >= 1
    assert str(desk.id) not in ids_for(real)  # frozen during the rebuild: gone after the catch-up
    assert len(ids_for(real)) == 2


async def test_reindex_command_swaps_and_refuses_a_second_run(
    world: World, settings: Settings, capsys: Any
) -> None:
    from mall.cli import cmd_reindex
    from workers import queues

    b = backend(settings)
    await sync.drain(world.db, b)
    before = (settings.data_dir / "search" / "CURRENT").read_text()
    args = argparse.Namespace()
    lock = queues.reindex_lock(settings)
    assert lock.acquire(blocking=False)
    try:
        assert await asyncio.to_thread(cmd_reindex, settings, args) == 1
        assert "另一个索引重建正在进行" in capsys.readouterr().err
    finally:
        lock.release()
    assert (settings.data_dir / "search" / "CURRENT").read_text() == before  # nothing happened
    assert await asyncio.to_thread(cmd_reindex, settings, args) == 0
    assert "3 条在售商品" in capsys.readouterr().out
    assert (settings.data_dir / "search" / "CURRENT").read_text() != before  # a fresh index swapped in
    assert len(ids_for(b)) == 3

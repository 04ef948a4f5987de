"""400 bids from 50 suppliers at once into one auction room, over HTTP, into two web processes.

The room's Redis lock is shared by both processes and the database arbitrates behind it. Whatever
the interleaving, the final state must equal a sequential replay of the accepted-bid log, every
acknowledged bid must be in the database, and every refusal must be a 4xx problem+json.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from mall.core.settings import Settings
from tests.bidding.test_procedures import assert_replay, create, suppliers
from tests.e2e.conftest import web_server
from tests.factories import World


@pytest.fixture
def two_web_processes(settings: Settings, tmp_path: Path) -> Iterator[str]:
    with web_server(settings, tmp_path, "--workers", "2", worker=False) as base:
        yield base


@pytest.mark.slow
async def test_400_concurrent_http_bids_equal_a_sequential_replay(
    world: World, two_web_processes: str
) -> None:
    xs = await suppliers(world, 50)
    names = [f"bidder{i}" for i in range(50)]
    p = await create(world, "auction", invited=[x.org_id for x in xs], decrement="10", minutes=600)
    rng = random.Random(11)
    amounts = [
        (Decimal(rng.randrange(3_000_000, 5_999_999)) / 100).quantize(Decimal("0.01")) for _ in range(400)
    ]
    acknowledged: list[int] = []
    statuses: dict[int, int] = {}
    refusals: set[str] = set()
    gate = asyncio.Semaphore(50)  # 50 bidders in flight at any moment

    async with httpx.AsyncClient(
        base_url=two_web_processes,
        timeout=120,
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=50),
    ) as client:

        async def one(i: int) -> None:
            async with gate:
                r = await client.post(
                    f"/api/procedures/{p.id}/bids",
                    json={"amount": str(amounts[i])},
                    headers=world.h(names[i % 50]),
                )
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 201:
                body: dict[str, Any] = r.json()
                assert body["accepted"] is True and body["amount"] == str(amounts[i])
                acknowledged.append(int(body["seq"]))
            else:
                assert r.status_code == 422, r.text
                assert r.headers["content-type"].startswith("application/problem+json")
                refusals.add(r.json()["code"])

        await asyncio.gather(*(one(i) for i in range(400)))
        view = (await client.get(f"/api/procedures/{p.id}", headers=world.h("buyer_a"))).json()

    print(f"\n400 bids over HTTP: {statuses}, refusal codes {sorted(refusals)}")
    assert sum(statuses.values()) == 400 and set(statuses) <= {201, 422}, statuses
    assert acknowledged and statuses.get(422), statuses  # both kinds happened under this load
    # amounts are all below the ceiling: the only reasons left are the own-bid rule and a stale state
    assert refusals <= {"not_below_own", "stale"}, refusals
    await assert_replay(world, p.id, acknowledged)
    accepted_amounts = {amounts[i] for i in range(400)} & {Decimal(view["lowest"])}
    assert accepted_amounts, view  # what the room shows is one of the bids sent

"""Policy attributes of listings (catalog.policy): certificates with their expiry, the mandatory list of
energy-saving 品目 refusing uncertified goods at checkout while a certified one is live, the origin with
its import approval, the search filters and badges, the order lines' record and the statistics."""

from __future__ import annotations

import csv
import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from catalog import policy
from catalog.structs import PolicyIn
from mall import orders
from mall.core import clock
from mall.core.errors import RuleViolation
from mall.orders.models import OrderLine
from search_index import embedded
from tests.factories import World
from tests.security.login_helpers import assert_problem

TODAY = date(2026, 12, 7)


def test_certificates_count_while_not_expired() -> None:
    assert policy.green_of("CQC1234", TODAY, "", None, TODAY) == "energy"
    assert policy.green_of("CQC1234", TODAY - timedelta(days=1), "HJ2019", TODAY, TODAY) == "eco"
    assert policy.green_of("CQC1234", TODAY, "HJ2019", TODAY, TODAY) == "energy,eco"
    assert policy.green_of("", TODAY, "", None, TODAY) == ""
    assert policy.cert_problems("", "", "节能") == ("", None, [])
    assert policy.cert_problems("CQC-2024/01", "2027-01-01", "节能")[:2] == ("CQC-2024/01", date(2027, 1, 1))
    assert policy.cert_problems("x", "2027-01-01", "节能")[2]  # too short
    assert policy.cert_problems("CQC12345", "", "节能")[2]  # the expiry goes with the number
    assert policy.cert_problems("CQC 1234", "2027-01-01", "节能")[2]
    assert policy.origin_problems("imported", "") and not policy.origin_problems(
        "imported", "豫财采审〔2026〕12号"
    )
    assert policy.origin_problems("abroad", "") and not policy.origin_problems("domestic", "")


def test_the_mandatory_list_names_2022_catalogue_codes() -> None:
    with (Path(policy.__file__).parent / "data" / "categories-2022.csv").open(encoding="utf-8") as f:
        codes = {r["code"] for r in csv.DictReader(f)}
    items = policy.mandatory()
    assert {"A02010105", "A02010108", "A02061804", "A05020106"} <= set(items)
    assert set(items) <= codes, set(items) - codes
    assert items["A02010105"].name == "台式计算机"


async def _policy(client: Any, world: World, key: str, who: str = "supplier_x", **body: str) -> Any:
    return await client.put(f"/api/listings/{world.listings[key].id}/policy", json=body, headers=world.h(who))


async def test_the_supplier_declares_certificates_and_origin(client: Any, world: World) -> None:
    until = (clock.local_date(clock.now()) + timedelta(days=365)).isoformat()
    r = await _policy(client, world, "laptop", energy_cert_no="CQC21701234567", energy_cert_until=until)
    assert r.status_code == 200, r.text
    assert (r.json()["green"], r.json()["energy_cert_until"], r.json()["origin"]) == (
        "energy",
        until,
        "domestic",
    )
    assert_problem(
        await _policy(client, world, "laptop", energy_cert_no="CQC21701234567"), 400, "policy_invalid"
    )
    assert_problem(await _policy(client, world, "laptop", origin="imported"), 400, "policy_invalid")
    assert_problem(await _policy(client, world, "laptop", origin="elsewhere"), 400, "policy_invalid")
    assert_problem(
        await _policy(client, world, "laptop", "supplier_y", origin="domestic"), 404, "listing_not_found"
    )
    bad = await _policy(client, world, "laptop", energy_cert_no="CQC\u202e1234", energy_cert_until=until)
    assert bad.status_code == 400
    r = await _policy(client, world, "printer", origin="imported", import_approval_ref="豫财采审〔2026〕12号")
    assert r.status_code == 200 and r.json()["import_approval_ref"] == "豫财采审〔2026〕12号"
    # the laptop's certificate stands (a failed request changed nothing)
    r = await client.get(f"/api/listings/{world.listings['laptop'].id}")
    assert r.status_code == 200 and r.json()["green"] == "energy"


async def test_uncertified_goods_of_a_mandatory_item_are_refused_while_certified_ones_sell(
    world: World,
) -> None:
    y = world.who["supplier_y"]
    from catalog import service

    other = await world.listing("laptop2", "supplier_y", "4800.00", category="A02010108")
    today = clock.local_date(clock.now())

    def checkout(key: str) -> Any:
        return orders.checkout(
            world.db,
            world.settings,
            world.who["buyer_a"],
            orders.CheckoutRequest(world.lines["a1"].id, uuid.uuid4().hex, ((world.listings[key].id, "1"),)),
        )

    await checkout("laptop")  # no certified listing of the 品目 is live: nothing to prefer
    await service.set_policy(
        world.db,
        y,
        other.id,
        PolicyIn(energy_cert_no="CQC21709999999", energy_cert_until=(today + timedelta(days=30)).isoformat()),
    )
    with pytest.raises(RuleViolation) as e:
        await checkout("laptop")
    assert (
        e.value.code == "energy_certificate_required"
        and "便携式计算机" in e.value.detail
        and "财库〔2019〕19号" in e.value.detail
    )
    placed, _ = await checkout("laptop2")
    await checkout("desk")  # a 品目 not on the list
    async with world.db.read() as s:
        line = (await s.execute(select(OrderLine).where(OrderLine.order_id == placed[0].id))).scalar_one()
    assert (line.green, line.origin) == ("energy", "domestic")
    # once the only certificate has expired, the uncertified laptop sells again
    yesterday = (today - timedelta(days=1)).isoformat()
    await service.set_policy(
        world.db, y, other.id, PolicyIn(energy_cert_no="CQC21709999999", energy_cert_until=yesterday)
    )
    await checkout("laptop")


async def test_search_filters_and_badges(client: Any, world: World) -> None:
    from catalog import service

    until = (clock.local_date(clock.now()) + timedelta(days=365)).isoformat()
    await service.set_policy(
        world.db,
        world.who["supplier_x"],
        world.listings["laptop"].id,
        PolicyIn(eco_cert_no="CEC2025ELP001", eco_cert_until=until),
    )
    await service.set_policy(
        world.db,
        world.who["supplier_y"],
        world.listings["desk"].id,
        PolicyIn(origin="imported", import_approval_ref="豫财采审〔2026〕12号"),
    )
    await world.index()

    async def ids(**params: str) -> set[str]:
        r = await client.get("/api/catalog/search", params=params)
        assert r.status_code == 200, r.text
        return {h["id"] for h in r.json()["hits"]}

    assert await ids(green="1") == {str(world.listings["laptop"].id)}
    assert await ids(origin="imported") == {str(world.listings["desk"].id)}
    assert await ids(origin="domestic") == {
        str(world.listings["laptop"].id),
        str(world.listings["printer"].id),
    }
    assert_problem(
        await client.get("/api/catalog/search", params={"origin": "mars"}), 400, "invalid_parameter"
    )
    r = await client.get("/goods?green=1", headers={"Accept": "text/html"})
    assert r.status_code == 200 and "环保</span>" in r.text and "节能环保认证产品 ✕" in r.text
    r = await client.get("/goods?origin=imported", headers={"Accept": "text/html"})
    assert "进口</span>" in r.text and "商品desk" in r.text


async def test_the_statistics_report_green_and_origin_shares(client: Any, world: World) -> None:
    from catalog import service

    until = (clock.local_date(clock.now()) + timedelta(days=365)).isoformat()
    await service.set_policy(
        world.db,
        world.who["supplier_x"],
        world.listings["printer"].id,
        PolicyIn(energy_cert_no="CQC21700000001", energy_cert_until=until),
    )
    await service.set_policy(
        world.db,
        world.who["supplier_y"],
        world.listings["desk"].id,
        PolicyIn(origin="imported", import_approval_ref="豫财采审〔2026〕12号"),
    )
    for key in ("printer", "desk"):
        placed, _ = await orders.checkout(
            world.db,
            world.settings,
            world.who["buyer_a"],
            orders.CheckoutRequest(world.lines["a1"].id, uuid.uuid4().hex, ((world.listings[key].id, "1"),)),
        )
        await orders.confirm(
            world.db, world.who["supplier_x" if key == "printer" else "supplier_y"], placed[0].id
        )
    r = await client.get("/api/statistics")
    assert r.status_code == 200, r.text
    charts = r.json()["charts"]
    green = {row["key"]: row for row in charts["green_share"]["rows"]}
    origin = {row["key"]: row for row in charts["origin_share"]["rows"]}
    assert (green["green"]["amount"], green["other"]["amount"]) == ("1200.00", "800.00")
    assert green["green"]["share"] == "60.00"
    assert (origin["domestic"]["amount"], origin["imported"]["amount"], origin["imported"]["share"]) == (
        "1200.00",
        "800.00",
        "40.00",
    )


def test_an_index_of_an_older_release_is_known_and_rebuilt(tmp_path: Path) -> None:
    backend = embedded.EmbeddedBackend(tmp_path / "search", writer=True, heap_bytes=15_000_000)
    backend.close()
    assert embedded.schema_is_current(tmp_path / "search")
    name = (tmp_path / "search" / "CURRENT").read_text().strip()
    meta_path = tmp_path / "search" / name / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert {f["name"] for f in meta["schema"]} == set(embedded.SCHEMA_FIELDS)
    meta["schema"] = [f for f in meta["schema"] if f["name"] != "policy"]  # as the last release built it
    meta_path.write_text(json.dumps(meta))
    assert not embedded.schema_is_current(tmp_path / "search")
    assert not embedded.schema_is_current(tmp_path / "nowhere")


async def test_a_certificate_that_expired_sends_its_listing_back_through_the_index(world: World) -> None:
    from catalog import service
    from mall.core.models import Outbox

    today = clock.local_date(clock.now())
    for key, days in (("laptop", -1), ("printer", 30), ("desk", -10)):
        await service.set_policy(
            world.db,
            world.who["supplier_y" if key == "desk" else "supplier_x"],
            world.listings[key].id,
            PolicyIn(
                energy_cert_no="CQC21700000002", energy_cert_until=(today + timedelta(days=days)).isoformat()
            ),
        )
    async with world.db.read() as s:
        before = len(list((await s.execute(select(Outbox))).scalars()))
    assert await service.restage_expired_certificates(world.db) == 1  # the laptop's, not a long-expired one
    async with world.db.read() as s:
        rows = list((await s.execute(select(Outbox).order_by(Outbox.created_at))).scalars())
    assert len(rows) == before + 1 and rows[-1].payload["ids"] == [str(world.listings["laptop"].id)]

"""A quoting supplier's label never counts the suppliers that quoted before it: the third to quote is
not told it is 供应商 #3. After the deadline every valid quote carries its own anonymous label."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from mall.core import clock
from mall.core.models import OrgKind
from tests.factories import World
from tests.mall.test_pages import HTML, login_ok


async def test_the_third_to_quote_is_not_told_it_is_third(client: Any, world: World) -> None:
    names = ["q1", "q2", "q3"]
    for n in names:
        await world.org(n, OrgKind.SUPPLIER, f"标签供应商{n}")
    invited = [str(world.who[n].org_id) for n in names]
    r = await client.post("/api/procedures", json=world.procedure_json(invited), headers=world.h("buyer_a"))
    assert r.status_code == 201, r.text
    pid = r.json()["id"]

    labels: dict[str, set[str]] = {}
    for n, amount in zip(names, ("28000.00", "27000.00", "29000.00"), strict=True):
        r = await client.post(f"/api/procedures/{pid}/quotes", json={"amount": amount}, headers=world.h(n))
        assert r.status_code == 201, r.text
        labels[n] = {q["label"] for q in r.json()["mine"]}
        r = await client.post(f"/api/procedures/{pid}/quotes", json={"amount": amount}, headers=world.h(n))
        labels[n] |= {q["label"] for q in r.json()["mine"]}
    for n in names:  # what each one reads later, once all three have quoted
        got = (await client.get(f"/api/procedures/{pid}", headers=world.h(n))).json()
        labels[n] |= {q["label"] for q in got["mine"]}
    # the same label whoever came first: the order of arrival is not in it
    assert labels["q1"] == labels["q2"] == labels["q3"], labels
    assert not any(re.search(r"#\s*[0-9]", label) for label in labels["q3"]), labels

    await login_ok(client, "q3")
    page = (await client.get(f"/procedures/{pid}", headers=HTML)).text
    assert not re.search(r"供应商\s*#\s*[0-9]", page), "the page names a numbered label before the deadline"

    clock.clock.freeze(clock.now() + timedelta(hours=3))
    try:
        opened = {n: (await client.get(f"/api/procedures/{pid}", headers=world.h(n))).json() for n in names}
    finally:
        clock.clock.unfreeze()
    ranked = opened["q1"]["ranked"]
    assert [q["amount"] for q in ranked] == ["27000.00", "28000.00", "29000.00"]
    assert len({q["label"] for q in ranked}) == 3 and all(q["label"].startswith("供应商 #") for q in ranked)
    for n, amount in zip(names, ("28000.00", "27000.00", "29000.00"), strict=True):
        mine = [q for q in opened[n]["ranked"] if q["mine"]]
        assert [q["amount"] for q in mine] == [amount]

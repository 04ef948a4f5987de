"""Demo policy attributes (catalog.policy): most listings of the mandatory energy-saving 品目 carry an
energy certificate, so an uncertified one is refused at checkout (try a laptop without the 节能 badge);
office furniture and paper carry environmental-label certificates; some projectors, printers and
servers are imported, with the approval's reference."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from sqlalchemy import select

from catalog import policy
from catalog import service as catalog_service
from catalog.models import Listing
from catalog.structs import PolicyIn
from mall.core import clock
from mall.core.auth import Principal
from mall.core.db import Database

ECO_PREFIXES = ("A0501", "A0504")  # furniture, paper
IMPORTED_CODES = ("A02020200", "A02010104")  # projectors, servers (some brands)


async def make_policy(
    db: Database, rng: random.Random, principals: dict[str, Principal], ids: list[uuid.UUID]
) -> dict[str, int]:
    by_org = {p.org_id: p for p in principals.values() if p.role == "supplier"}
    today = clock.local_date(clock.now())
    async with db.read() as s:
        listings = list(
            (await s.execute(select(Listing).where(Listing.id.in_(ids)).order_by(Listing.id))).scalars()
        )
    made = {"energy_certified": 0, "eco_certified": 0, "imported": 0}
    for n, x in enumerate(listings):
        who = by_org.get(x.supplier_org_id)
        if who is None:
            continue
        data: dict[str, str] = {}
        if policy.needs_energy_certificate(x.category_code) and rng.random() < 0.7:
            data["energy_cert_no"] = f"CQC{today.year - 1}{rng.randrange(10**8):08d}"
            data["energy_cert_until"] = (today + timedelta(days=rng.randrange(120, 1000))).isoformat()
            made["energy_certified"] += 1
        if x.category_code.startswith(ECO_PREFIXES) and rng.random() < 0.5:
            data["eco_cert_no"] = f"CEC{today.year - 1}ELP{rng.randrange(10**5):05d}"
            data["eco_cert_until"] = (today + timedelta(days=rng.randrange(90, 900))).isoformat()
            made["eco_certified"] += 1
        if x.category_code in IMPORTED_CODES and n % 3 == 0:
            data["origin"] = "imported"
            data["import_approval_ref"] = f"豫财采审〔{today.year}〕{10 + n}号"
            made["imported"] += 1
        if data:
            await catalog_service.set_policy(db, who, x.id, PolicyIn(**data))
    return made

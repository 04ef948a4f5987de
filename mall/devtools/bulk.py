"""`mall seed --products N`: many realistic listings, fast, for benchmarks and load tests.

The listings come from `mall.devtools.generator` (deterministic by seed) and are offered by a set of
supplier organizations registered the normal way. They are written with bulk inserts (thousands of
rows per statement) as live listings approved by the procurement center — the review rules are
the generator's own (every price within the reference margin), so nothing breaks them — and then
the search index is rebuilt from the database.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select

from catalog.categories import CATALOG_VERSION
from catalog.goods import brand_key, model_key
from catalog.models import Listing, ListingStatus
from mall import accounts
from mall.core import clock
from mall.core.credit_code import make
from mall.core.db import Database
from mall.core.models import Organization, OrgKind, User
from mall.devtools.generator import generate

BATCH = 2000

# Realistic supplier names (region code, name) — the generated listings are spread over them.
SUPPLIER_NAMES: tuple[tuple[str, str], ...] = (
    ("410100", "郑州中原信息技术有限公司"),
    ("410100", "河南华鼎办公设备有限公司"),
    ("410300", "洛阳博远电子科技有限公司"),
    ("410200", "开封宏图商贸有限公司"),
    ("410700", "新乡恒达计算机系统有限公司"),
    ("411000", "许昌明德办公用品有限公司"),
    ("410100", "郑州天成家具制造有限公司"),
    ("410500", "安阳瑞丰电器有限公司"),
    ("411300", "南阳卓越数码科技有限公司"),
    ("410800", "焦作信达网络工程有限公司"),
    ("410100", "河南九州通办公设备有限公司"),
    ("410400", "平顶山金盾科技有限公司"),
    ("411100", "漯河宏业商贸有限公司"),
    ("411500", "信阳中科数码有限公司"),
    ("410900", "濮阳佳和电子有限公司"),
    ("411600", "周口新世纪办公用品有限公司"),
    ("411700", "驻马店华强计算机有限公司"),
    ("410600", "鹤壁恒信电器有限公司"),
    ("411200", "三门峡正元科技有限公司"),
    ("411400", "商丘鸿运办公设备有限公司"),
)


async def _suppliers(db: Database, rng: random.Random, count: int) -> list[uuid.UUID]:
    """The suppliers the listings are spread over: existing ones with these names, or registered now."""
    ids: list[uuid.UUID] = []
    for i in range(count):
        region, base = SUPPLIER_NAMES[i % len(SUPPLIER_NAMES)]
        name = base if i < len(SUPPLIER_NAMES) else f"{base[:-4]}第{i // len(SUPPLIER_NAMES) + 1}分公司"
        async with db.read() as s:
            existing = await s.scalar(select(Organization.id).where(Organization.name == name))
        if existing is not None:
            ids.append(existing)
            continue
        body = "".join(rng.choice("0123456789") for _ in range(8))
        draft = accounts.OrgDraft(
            kind=OrgKind.SUPPLIER.value,
            name=name,
            credit_code=make("9", "1", region, body),
            region_code=region,
            address=f"{name}经营地址",
            contact_phone=f"0371-{rng.randint(60000000, 69999999)}",
        )
        org = await accounts.register_org(db, None, draft)
        ids.append(org.id)
    return ids


async def seed_products(
    db: Database,
    n: int,
    *,
    seed: int = 1,
    suppliers: int = 20,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Insert n generated live listings. Refuses (returns written=0) when these suppliers already
    carry generated listings for this seed, so running it twice does not double the catalogue."""
    rng = random.Random(f"suppliers-{seed}")
    supplier_ids = await _suppliers(db, rng, suppliers)
    async with db.read() as s:
        already = await s.scalar(
            select(func.count()).where(
                Listing.supplier_org_id.in_(supplier_ids), Listing.reference_source.like(f"%#{seed}")
            )
        )
        reviewer = await s.scalar(
            select(User.id)
            .join(Organization, Organization.id == User.org_id)
            .where(Organization.kind == OrgKind.CENTER.value)
            .limit(1)
        )
    if already:
        return {"written": 0, "existing": int(already)}
    id_rng = random.Random(f"ids-{seed}")
    now = clock.now()
    rows: list[dict[str, Any]] = []
    written = 0

    async def flush() -> None:
        nonlocal written
        if not rows:
            return
        async with db.write() as tx:
            await tx.session.execute(insert(Listing), rows)
        written += len(rows)
        rows.clear()
        if progress is not None:
            progress(written)

    for i, (supplier_index, g) in enumerate(generate(n, seed=seed, suppliers=suppliers)):
        created = now - timedelta(seconds=n - i)  # listed one after another: "newest" has an order
        rows.append(
            {
                "id": uuid.UUID(int=id_rng.getrandbits(128), version=4),
                "supplier_org_id": supplier_ids[supplier_index],
                "name": g.name,
                "brand": g.brand,
                "spec_model": g.spec_model,
                "brand_key": brand_key(g.brand),
                "model_key": model_key(g.spec_model),
                "category_code": g.category_code,
                "category_version": CATALOG_VERSION,
                "unit": g.unit,
                "price": g.price,
                "reference_price": g.reference_price,
                # the seed is recorded so a second run with the same seed is recognized
                "reference_source": f"{g.reference_source} #{seed}",
                "stock": g.stock,
                "description": g.description,
                "status": ListingStatus.LIVE,
                "status_reason": "",
                "status_by": "",
                "sales_count": id_rng.randrange(0, 200),
                "submitted_at": now,
                "reviewed_at": now,
                "reviewed_by": reviewer,
                "created_at": created,
                "updated_at": created,
            }
        )
        if len(rows) >= BATCH:
            await flush()
    await flush()
    return {"written": written, "suppliers": len(supplier_ids)}

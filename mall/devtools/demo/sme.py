"""Demo 中小企业声明函, filed before the history starts (so its orders record each supplier's size):
small, medium and micro suppliers, and one large one (河南裕华汽车销售服务, a retailer above the ceiling)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

from mall.core.auth import Principal
from mall.core.db import Database
from mall.core.models import Organization
from mall.sme import rules
from mall.sme.models import SmeDeclaration
from mall.sme.service import statement_of

# username: (industry, employees, revenue 万元, assets 万元)
FIGURES: dict[str, tuple[str, int, str, str | None]] = {
    "supplier1": ("wholesale", 45, "3800", None),  # small
    "supplier2": ("software", 160, "2600", None),  # medium
    "supplier3": ("industry", 420, "26000", None),  # medium
    "supplier4": ("retail", 60, "8000", None),  # medium
    "supplier5": ("retail", 350, "26000", None),  # large (a car dealer group)
    "supplier6": ("industry", 18, "260", None),  # micro
    "supplier7": ("lodging", 120, "3600", None),  # medium
    "supplier8": ("retail", 2, "36", None),  # micro (a sole proprietor's shop)
}


async def make_sme_declarations(
    db: Database, principals: dict[str, Principal], filed: datetime
) -> dict[str, int]:
    day: date = filed.date()
    made: dict[str, int] = {}
    async with db.write() as tx:
        for username, (industry, employees, revenue, assets) in FIGURES.items():
            who = principals.get(username)
            if who is None or who.org_id is None:
                continue
            org = await tx.session.get(Organization, who.org_id)
            assert org is not None
            values = {
                "employees": Decimal(employees),
                "revenue": Decimal(revenue),
                "assets": Decimal(assets) if assets else None,
            }
            size = rules.classify(industry, values)
            tx.session.add(
                SmeDeclaration(
                    id=uuid.uuid4(),
                    org_id=org.id,
                    industry=industry,
                    employees=employees,
                    revenue=values["revenue"],
                    assets=values["assets"],
                    size=size,
                    declared_on=day,
                    valid_until=day + timedelta(days=rules.VALID_DAYS - 1),
                    source="declared",
                    statement=statement_of(org, rules.thresholds()[industry], values, size, day.isoformat()),
                    declared_at=filed,
                    declared_by=who.user_id,
                )
            )
            made[size] = made.get(size, 0) + 1
    return {f"sme_{k}": v for k, v in made.items()}

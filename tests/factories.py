"""A small world of organizations, users, budgets and listings, made through the real services."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar

from argon2 import PasswordHasher
from sqlalchemy import inspect, select
from sqlalchemy.orm import make_transient_to_detached

from bidding import publish
from bidding.models import Procedure
from catalog import agreements, designated
from catalog import service as catalog_service
from catalog.models import Listing
from mall.budgets.models import BudgetLine
from mall.core import auth, clock, tokens
from mall.core.auth import Principal
from mall.core.credit_code import make
from mall.core.db import Database
from mall.core.models import Organization, OrgKind, User
from mall.core.settings import Settings

PASSWORD = "pw-correct-horse"
# The one item of most test procedures: ten desktop computers (品目 A02010105).
DESKTOPS = ("A02010105", "台式计算机", "i5/16G/512G", "10", "台")
LAPTOP = ("A02010108", "便携式计算机", "", "1", "台")
T = TypeVar("T", BudgetLine, Listing)


def sme_declaration(org_id: uuid.UUID, size: str, *, days_ago: int = 30) -> Any:
    """A 中小企业声明函 of `size` filed `days_ago` days ago (in force for a year from then)."""
    from mall.sme.models import SmeDeclaration

    today = clock.local_date(clock.now())
    return SmeDeclaration(
        id=uuid.uuid4(),
        org_id=org_id,
        industry="wholesale",
        employees={"micro": 3, "small": 12, "medium": 80, "large": 500}.get(size),
        revenue=None,
        assets=None,
        size=size,
        declared_on=today - timedelta(days=days_ago),
        valid_until=today - timedelta(days=days_ago) + timedelta(days=365),
        source="declared",
        statement="测试用声明函",
        declared_at=clock.now(),
        declared_by=None,
    )


@contextlib.contextmanager
def frozen_at(at: datetime) -> Iterator[datetime]:
    """The clock stands at `at` inside the block and runs again after it."""
    clock.clock.freeze(at)
    try:
        yield at
    finally:
        clock.clock.unfreeze()


@contextlib.contextmanager
def movable_clock() -> Iterator[Callable[[timedelta], None]]:
    """The clock stands at the present moment inside the block; the function it yields moves it
    forward by a delta."""
    at = [clock.now()]

    def advance(delta: timedelta) -> None:
        at[0] = at[0] + delta
        clock.clock.freeze(at[0])

    with frozen_at(at[0]):
        yield advance


@lru_cache(maxsize=1)
def password_hash() -> str:
    """The test users' password hash: argon2id as the mall stores it, at argon2's smallest cost.
    Checking a password costs what its stored hash names, so logging in as a test user takes
    microseconds instead of the production parameters' ~20 ms (hundreds of logins a run). Hashes
    the mall makes itself (accounts created, passwords changed through the API) keep the production
    parameters; `tests/mall/test_password_hash.py` checks them."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)


def _detached_copy(row: T) -> T:
    """A detached copy of a loaded row: the same column values and identity, no shared state."""
    mapper = inspect(type(row))
    copy = type(row)(**{attr.key: getattr(row, attr.key) for attr in mapper.column_attrs})
    make_transient_to_detached(copy)
    return copy


@dataclass
class World:
    db: Database
    settings: Settings
    who: dict[str, Principal] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    lines: dict[str, BudgetLine] = field(default_factory=dict)
    listings: dict[str, Listing] = field(default_factory=dict)
    _n: int = 0

    def copy(self) -> World:
        """A world of its own over the same rows: its dictionaries and the loaded rows are copies, so a
        test that changes them leaves the next test's world as it was built."""
        return World(
            self.db,
            self.settings,
            who=dict(self.who),
            tokens=dict(self.tokens),
            lines={k: _detached_copy(v) for k, v in self.lines.items()},
            listings={k: _detached_copy(v) for k, v in self.listings.items()},
            _n=self._n,
        )

    def h(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    async def org(
        self,
        name: str,
        kind: OrgKind,
        org_name: str,
        *,
        admin_role: str | None = None,
        sme: str | None = "small",
    ) -> Principal:
        """A user `name` of a new organization; users of the platform operator (`admin_role`) share
        its one organization. A supplier has a 中小企业声明函 in force of size `sme` (None: none)."""
        self._n += 1
        code = make("9" if kind == OrgKind.SUPPLIER else "1", "1", "410100", f"{self._n:08d}")
        async with self.db.write() as tx:
            platform = (
                await tx.session.scalar(select(Organization).where(Organization.kind == OrgKind.PLATFORM))
                if kind == OrgKind.PLATFORM
                else None
            )
            org = platform or Organization(
                id=uuid.uuid4(),
                kind=kind.value,
                name=org_name,
                credit_code=code,
                address=f"{org_name}地址",
                region_code="410100",
                created_at=clock.now(),
            )
            user = User(
                id=uuid.uuid4(),
                org_id=org.id,
                username=name,
                display_name=name,
                password_hash=password_hash(),
                admin_role=admin_role,
                created_at=clock.now(),
            )
            user.org = org
            tx.session.add_all([org, user])
            if kind == OrgKind.SUPPLIER and sme is not None:
                await tx.session.flush()
                tx.session.add(sme_declaration(org.id, sme))
        p = auth.principal_of(user)
        self.who[name] = p
        self.tokens[name], _ = await tokens.issue_token(self.db, p, "test")
        return p

    async def budget(
        self, key: str, owner: str, amount: str, *, year: int | None = None, scope: str = ""
    ) -> BudgetLine:
        p = self.who[owner]
        assert p.org_id
        line = BudgetLine(
            id=uuid.uuid4(),
            org_id=p.org_id,
            fiscal_year=year or clock.local_date(clock.now()).year,
            project_code=f"P-{key}",
            project_name=f"项目{key}",
            amount=Decimal(amount),
            scope=scope,
            reserved=Decimal(0),
            consumed=Decimal(0),
            created_at=clock.now(),
        )
        async with self.db.write() as tx:
            tx.session.add(line)
        self.lines[key] = line
        return line

    async def listing(
        self,
        key: str,
        supplier: str,
        price: str,
        *,
        reference: str | None = None,
        stock: str = "1000",
        category: str = "A02010108",
        name: str | None = None,
        live: bool = True,
    ) -> Listing:
        draft = catalog_service.ListingDraft(
            name=name or f"商品{key}",
            brand=f"品牌{key}",
            spec_model=f"型号-{key}",
            category_code=category,
            unit="台",
            price=price,
            reference_price=reference or price,
            stock=stock,
        )
        listing = await catalog_service.create_listing(
            self.db, self.who[supplier], draft, margin=self.settings.price_margin
        )
        if live:  # reviewed and approved by the procurement center
            listing = await catalog_service.review_listing(
                self.db,
                self.who["center"],
                listing.id,
                approve=True,
                reason="",
                margin=self.settings.price_margin,
            )
        self.listings[key] = listing
        return listing

    async def meeting_room(self, supplier: str, price: str = "1500.00") -> None:
        """`supplier` designated by the center for meetings (一般会议服务) in 郑州, one item on its list."""
        async with self.db.read() as s:
            org = await s.get(Organization, self.who[supplier].org_id)
        assert org is not None
        await designated.designate(
            self.db,
            self.who["center"],
            org.credit_code,
            "C22010200",
            "410100",
            [designated.PriceItemDraft("中型会议室（半天）", "场", price)],
        )

    async def procedure(
        self,
        kind: str,
        title: str = "办公台式计算机采购项目",
        *,
        invited: Iterable[Principal] | None = None,
        ceiling: str = "60000.00",
        item: tuple[str, str, str, str, str] = DESKTOPS,
        hours: float = 1,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        buyer: str = "buyer_a",
        region_code: str = "410100",
        **draft: Any,
    ) -> Procedure:
        """An inquiry or auction of one item published through the service on budget line a1: open
        from `starts_at` (now) for `hours` unless `ends_at` is given; other draft fields in `draft`."""
        starts_at = starts_at or clock.now()
        code, name, spec, quantity, unit = item
        return await publish.create(
            self.db,
            self.who[buyer],
            publish.ProcedureIn(
                kind=kind,
                title=title,
                budget_line_id=self.lines["a1"].id,
                ceiling=ceiling,
                starts_at=starts_at,
                ends_at=ends_at or starts_at + timedelta(hours=hours),
                items=[publish.ItemIn(code, name, quantity, unit, spec)],
                invited=None if invited is None else [p.org_id for p in invited],
                **draft,
            ),
            open_tender_threshold=self.settings.open_tender_threshold,
            region_code=region_code,
        )

    async def agreement(
        self, title: str, category: str, *, days: int = 0, **terms: str
    ) -> agreements.Agreement:
        """A goods agreement drafted by the center, its term from today to `days` days later."""
        today = clock.local_date(clock.now())
        ends_on = today + timedelta(days=days)
        draft = agreements.AgreementDraft(
            title, "goods", category, today.isoformat(), ends_on.isoformat(), **terms
        )
        return await agreements.create(self.db, self.settings, self.who["center"], draft)

    async def index(self) -> int:
        """Apply pending listing changes to the search index, as the worker's job does."""
        from search_index import sync
        from search_index.embedded import EmbeddedBackend

        backend = EmbeddedBackend(self.settings.data_dir / "search", writer=True, heap_bytes=15_000_000)
        return await sync.drain(self.db, backend)

    def procedure_json(self, invited: list[str] | None, **fields: Any) -> dict[str, Any]:
        """A body for POST /api/procedures: buyer_a's inquiry for ten printers, open two hours."""
        body: dict[str, Any] = {
            "kind": "inquiry",
            "title": "办公打印机采购项目",
            "budget_line_id": str(self.lines["a1"].id),
            "ceiling": "30000.00",
            "ends_at": (clock.now() + timedelta(hours=2)).isoformat(),
            "items": [
                {
                    "category_code": "A02021003",
                    "item_name": "A4黑白激光打印机",
                    "quantity": "10",
                    "unit": "台",
                }
            ],
            **fields,
        }
        if invited is not None:
            body["invited"] = invited
        return body

    def procedure_form(self, **fields: str) -> dict[str, str]:
        """The fields of the /procedures/new form: the same inquiry as `procedure_json`, as a page posts it."""
        ends_at = clock.now() + timedelta(hours=2)
        return {
            "kind": "inquiry",
            "title": "办公打印机采购项目",
            "budget_line_id": str(self.lines["a1"].id),
            "ceiling": "30000.00",
            "ends_at": ends_at.astimezone(clock.SHANGHAI).strftime("%Y-%m-%dT%H:%M"),
            "category_code": "A02021003",
            "item_name": "A4黑白激光打印机",
            "quantity": "10",
            "unit": "台",
            **fields,
        }

    @classmethod
    async def build(cls, db: Database, settings: Settings) -> World:
        w = cls(db, settings)
        await w.org("buyer_a", OrgKind.BUDGET_UNIT, "甲单位")
        await w.org("buyer_b", OrgKind.BUDGET_UNIT, "乙单位")
        await w.org("supplier_x", OrgKind.SUPPLIER, "甲供应商有限公司")
        await w.org("supplier_y", OrgKind.SUPPLIER, "乙供应商有限公司")
        await w.org("center", OrgKind.CENTER, "采购中心")
        await w.org("regulator", OrgKind.REGULATOR, "财政监管处")
        # The platform operator's three administrators (三员分立), one role each.
        for role in ("sysadmin", "secadmin", "auditor"):
            await w.org(role, OrgKind.PLATFORM, "平台", admin_role=role)
        await w.budget("a1", "buyer_a", "500000.00")
        await w.budget("b1", "buyer_b", "500000.00")
        await w.listing("laptop", "supplier_x", "5000.00", reference="5100.00")
        await w.listing("printer", "supplier_x", "1200.00", category="A02021003")
        await w.listing("desk", "supplier_y", "800.00", category="A05010201")
        return w


async def sign_both(db: Database, settings: Settings, buyer: Principal, order_id: uuid.UUID) -> None:
    """Both parties sign a confirmed order's e-contract, the supplier first, each with its own key
    (the supplier's user is looked up: any active user of the order's supplier)."""
    from mall.contracts import service as contracts  # the contract machinery: only tests that sign
    from mall.core import files
    from mall.orders.models import Order

    async with db.read() as s:
        order = await s.get(Order, order_id)
        assert order is not None
        supplier_user = (
            await s.execute(select(User).where(User.org_id == order.supplier_org_id).limit(1))
        ).scalar_one()
        supplier = auth.principal_of(supplier_user)
    store = files.store_for(settings, db)
    await contracts.sign_contract(db, settings, store, supplier, order_id)
    await contracts.sign_contract(db, settings, store, buyer, order_id)


async def sign_and_file(db: Database, settings: Settings, buyer: Principal, order_id: uuid.UUID) -> Any:
    """Sign by both parties, then file: confirmed → signed → contracted."""
    from mall import orders  # see sign_both

    await sign_both(db, settings, buyer, order_id)
    return await orders.file_contract(db, buyer, order_id)

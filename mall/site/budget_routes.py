"""A budget unit's budget lines (预算指标): the API and the page."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from mall import budgets
from mall.budgets.models import BudgetLine
from mall.core.auth import allow
from mall.structs import BudgetLineOut
from mall.web.deps import DB, Me
from mall.web.helpers import AnyRequest, render

TAGS = ["预算"]

BUYERS = allow("buyer")


async def _lines(db: DB, me: Me) -> list[BudgetLine]:
    assert me.org_id  # a buyer always belongs to a budget unit
    async with db.read() as s:
        return await budgets.lines_of(s, me.org_id)


class BudgetApi(Controller):
    path = "/api/budgets"
    tags = TAGS

    @get("/", opt=BUYERS, summary="本单位的预算指标")
    async def list_budgets(self, me: Me, db: DB) -> list[BudgetLineOut]:
        return [BudgetLineOut.of(b) for b in await _lines(db, me)]


class BudgetPages(Controller):
    path = "/budgets"
    include_in_schema = False

    @get("/", opt=BUYERS)
    async def budgets_page(self, request: AnyRequest, me: Me, db: DB) -> Template:
        return render(request, "budgets.html", rows=await _lines(db, me))


ROUTES = [BudgetApi]
PAGES = [BudgetPages]

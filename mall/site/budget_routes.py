"""A budget unit's budget lines (预算指标): the API and the page."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from mall import budgets
from mall.budgets.models import BudgetLine
from mall.core.guards import allow
from mall.structs import BudgetLineOut
from mall.web.deps import Call, UserCall

TAGS = ["预算"]

BUYERS = allow("buyer")


async def _lines(call: Call) -> list[BudgetLine]:
    assert call.me.org_id  # a buyer always belongs to a budget unit
    async with call.db.read() as s:
        return await budgets.lines_of(s, call.me.org_id)


class BudgetApi(Controller):
    path = "/api/budgets"
    tags = TAGS

    @get("/", opt=BUYERS, summary="本单位的预算指标")
    async def list_budgets(self, call: UserCall) -> list[BudgetLineOut]:
        return [BudgetLineOut.of(b) for b in await _lines(call)]


class BudgetPages(Controller):
    path = "/budgets"
    include_in_schema = False

    @get("/", opt=BUYERS)
    async def budgets_page(self, call: UserCall) -> Template:
        return call.render("budgets.html", rows=await _lines(call))


ROUTES = [BudgetApi]
PAGES = [BudgetPages]

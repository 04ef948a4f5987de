"""The public record of deals (成交记录公开): the JSON feed and the pages that list and show records."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import urlencode

from litestar import Controller, Response, get
from litestar.params import FromPath, QueryParameter
from litestar.response import Template
from sqlalchemy import select

from mall.core.errors import DomainError
from mall.core.guards import PUBLIC
from mall.ledger import disclosure
from mall.ledger.models import DisclosureRecord
from mall.web.deps import DB
from mall.web.helpers import AnyRequest, page_no, paging, render

TAGS = ["信息公开"]

PER_PAGE = 20


class DisclosureApi(Controller):
    path = "/api/disclosures"
    tags = TAGS

    @get("/", opt=PUBLIC, summary="成交记录公开数据（按 seq 增量拉取）")
    async def feed(
        self,
        request: AnyRequest,
        db: DB,
        # Declared for the API documentation; parse_feed_query validates them with Chinese messages.
        after: Annotated[str | None, QueryParameter(description="上次返回的 next_after；从 0 开始")] = None,
        limit: Annotated[str | None, QueryParameter(description="每页条数，1–500，默认 100")] = None,
        mode: Annotated[
            str | None, QueryParameter(description="supermarket | agreement | designated | inquiry | auction")
        ] = None,
        kind: Annotated[
            str | None, QueryParameter(description="deal | correction | cancellation | failure")
        ] = None,
        buyer_credit_code: Annotated[str | None, QueryParameter(description="采购人统一社会信用代码")] = None,
        supplier_credit_code: Annotated[
            str | None, QueryParameter(description="供应商统一社会信用代码")
        ] = None,
        date_from: Annotated[
            str | None, QueryParameter(name="from", description="成交日期起，YYYY-MM-DD")
        ] = None,
        date_to: Annotated[
            str | None, QueryParameter(name="to", description="成交日期止，YYYY-MM-DD")
        ] = None,
    ) -> Response[bytes]:
        q = disclosure.parse_feed_query(dict(request.query_params))
        async with db.read() as s:
            bodies, next_after = await disclosure.feed_page(s, q)
        payload = '{"items":[' + ",".join(bodies) + '],"next_after":' + str(next_after) + "}"
        return Response(payload.encode("utf-8"), media_type="application/json")

    @get("/{seq:int}", opt=PUBLIC)
    async def feed_record(self, seq: FromPath[int], db: DB) -> Response[bytes]:
        async with db.read() as s:
            row = await disclosure.get_record(s, seq)
        return Response(row.body.encode("utf-8"), media_type="application/json")


class DisclosurePages(Controller):
    path = "/disclosures"
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def disclosures_page(self, request: AnyRequest, db: DB) -> Template:
        params = {k: v for k, v in request.query_params.items() if v}
        page = page_no(params.pop("page", "1"))
        try:  # a bad filter shows every record, with the reason
            q = disclosure.parse_feed_query(params)
            error = ""
        except DomainError as exc:
            q, error = disclosure.FeedQuery(), exc.detail
        async with db.read() as s:
            total, rows = await disclosure.page_desc(s, q, page, PER_PAGE)
        return render(
            request,
            "disclosures.html",
            rows=[(r, json.loads(r.body)) for r in rows],
            **paging(total, page, PER_PAGE),
            params=params,
            error=error,
            qs=urlencode(params),
            modes=disclosure.MODE_LABELS,
        )

    @get("/{seq:int}", opt=PUBLIC)
    async def disclosure_page(self, request: AnyRequest, seq: FromPath[int], db: DB) -> Template:
        async with db.read() as s:
            row = await disclosure.get_record(s, seq)
            amended_by = list(
                (await s.execute(select(DisclosureRecord).where(DisclosureRecord.amends == row.id))).scalars()
            )
            amends = None
            if row.amends:
                amends = (
                    await s.execute(select(DisclosureRecord).where(DisclosureRecord.id == row.amends))
                ).scalar_one_or_none()
        record = json.loads(row.body)
        return render(
            request,
            "disclosure.html",
            row=row,
            record=record,
            amended_by=amended_by,
            amends=amends,
            pretty=json.dumps(record, ensure_ascii=False, indent=2),
        )


ROUTES = [DisclosureApi]
PAGES = [DisclosurePages]

"""The JSON API (/api), gathered from its areas; and the health check. Bearer tokens only; every
handler declares who may call it."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Response, get
from rq import Worker
from sqlalchemy import select, text

from mall.core.guards import PUBLIC
from mall.ledger.models import LedgerHead
from mall.site import (
    account_routes,
    admin_routes,
    audit_routes,
    budget_routes,
    cart_routes,
    case_routes,
    credit_routes,
    disclosure_routes,
    notice_routes,
    order_routes,
    oversight_routes,
    pricewatch_routes,
    sanction_routes,
    sme_routes,
    stats_routes,
    workbench,
)
from mall.web.deps import DB, Config
from mall.web.helpers import AnyRequest
from workers import outbox, queues

TAGS = ["运维"]


class HealthApi(Controller):
    path = "/healthz"
    tags = TAGS

    @get("/", opt=PUBLIC, summary="数据库、Redis、任务进程与搜索的状态")
    async def healthz(self, request: AnyRequest, db: DB, settings: Config) -> Response[dict[str, Any]]:
        status: dict[str, Any] = {}
        try:
            async with db.read() as s:
                await s.execute(text("SELECT 1"))

                head = (await s.execute(select(LedgerHead.last_seq))).scalar_one()
            status["database"] = {
                "ok": True,
                "backend": "sqlite" if db.is_sqlite else "postgresql",
                "ledger_seq": head,
                "outbox_pending": await outbox.pending_count(db),
            }
        except Exception as exc:
            status["database"] = {"ok": False, "error": type(exc).__name__}

        def redis_status() -> dict[str, Any]:
            conn = queues.redis_conn(settings)
            conn.ping()
            workers = Worker.all(connection=conn)
            return {"ok": True, "workers": len(workers), "queued": queues.queue(settings).count}

        try:
            info = await asyncio.to_thread(redis_status)
            status["redis"] = {"ok": True, "embedded": settings.uses_embedded_redis}
            status["worker"] = {"ok": info["workers"] > 0, "count": info["workers"], "queued": info["queued"]}
        except Exception as exc:
            status["redis"] = {"ok": False, "error": type(exc).__name__}
            status["worker"] = {"ok": False, "error": "redis unavailable"}
        try:
            search = request.app.state.search
            docs = await asyncio.wait_for(asyncio.to_thread(search.count), 2.0)
            status["search"] = {"ok": True, "backend": search.name, "documents": docs}
        except Exception as exc:
            status["search"] = {
                "ok": False,
                "backend": (settings.meili_url and "meilisearch") or "embedded",
                "error": type(exc).__name__,
            }
        ok = all(v.get("ok") for v in status.values())
        return Response({"ok": ok, **status}, status_code=200 if ok else 503)


ROUTES = [
    *account_routes.ROUTES,
    *budget_routes.ROUTES,
    *cart_routes.ROUTES,
    *order_routes.ROUTES,
    *admin_routes.ROUTES,
    *audit_routes.ROUTES,
    *disclosure_routes.ROUTES,
    *notice_routes.ROUTES,
    HealthApi,
    *oversight_routes.ROUTES,
    *case_routes.ROUTES,
    *sanction_routes.ROUTES,
    *credit_routes.ROUTES,
    *sme_routes.ROUTES,
    *pricewatch_routes.ROUTES,
    *stats_routes.ROUTES,
    *workbench.ROUTES,
]

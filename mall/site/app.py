"""The application factory: everything is built from explicit settings."""

from __future__ import annotations

import hashlib
import html
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar, Router
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.middleware.session.client_side import CookieBackendConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from bidding import pages as bidding_pages
from bidding import routes as bidding_routes
from catalog import agreement_pages, agreement_routes, shopping_routes
from catalog import pages as catalog_pages
from catalog import routes as catalog_routes
from mall.core import errors, logs
from mall.core.db import Database
from mall.core.errors import EXCEPTION_HANDLERS
from mall.core.guards import AuthMiddleware, access_guard
from mall.core.http_guards import JsonBodyGuard, SecurityHeaders
from mall.core.settings import Settings, load_settings
from mall.site import api, export_routes, message_routes, metrics, pages, push_pages, push_routes
from mall.web import helpers, serving
from mall.web.deps import CALLER
from mall.web.rerun import ReadsRunAgain
from search_index.factory import backend_for
from workers import queues

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATES = ROOT / "templates"


class SwaggerPage(SwaggerRenderPlugin):
    """Swagger UI without inline script: the initialiser is /static/swagger-init.js (CSP)."""

    def render(self, request: helpers.AnyRequest, openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema["info"]["title"]))
        return (
            "<!DOCTYPE html><html><head>"
            f'<title>{title}</title><meta charset="utf-8"/>'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link href="{self.css_url}" rel="stylesheet">'
            f'<script src="{self.js_url}"></script>'
            f'<script src="{self.standalone_preset_js_url}"></script>'
            '<script src="/static/swagger-init.js"></script>'
            '</head><body><div id="swagger-container"></div></body></html>'
        ).encode()

    def receive_router(self, router: Router) -> None:
        """No oauth2-redirect.html: the API signs in with bearer tokens, not OAuth2, and that page is
        an inline script the Content-Security-Policy would refuse anyway."""


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()

    secret = settings.resolved_secret()
    key = hashlib.sha256(secret.encode()).digest()
    db = Database(
        settings.resolved_database_url,
        retries=settings.db_retries,
        data_keys=settings.resolved_data_keys(),
    )
    queues.configure(settings)
    queues.register_topics()
    errors.use_error_page(helpers.error_page)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await db.dispose()
            await room_redis.aclose()

    async def provide_db() -> Database:
        return db

    async def provide_settings() -> Settings:
        return settings

    search = backend_for(settings, writer=False)  # web processes only read the index

    # The auction rooms: a Redis lock per room, and events to every web process's WebSocket clients
    # over Redis pub/sub (litestar channels).
    import redis.asyncio as aioredis
    from litestar.channels import ChannelsPlugin
    from litestar.channels.backends.redis import RedisChannelsPubSubBackend

    room_redis = aioredis.Redis.from_url(
        settings.resolved_redis_url, socket_connect_timeout=2, socket_timeout=5
    )
    channels = ChannelsPlugin(
        backend=RedisChannelsPubSubBackend(
            redis=room_redis, key_prefix=f"mall:{settings.queue_name}:channels"
        ),
        arbitrary_channels_allowed=True,
    )

    async def provide_search() -> Any:
        return search

    session_config = CookieBackendConfig(
        secret=key,
        key="mall_session",
        max_age=8 * 3600,
        samesite="lax",
        httponly=True,
        secure=settings.public_base_url.startswith("https"),
    )
    csrf = CSRFConfig(
        secret=secret,
        cookie_name="mall_csrf",
        cookie_httponly=False,
        cookie_secure=settings.public_base_url.startswith("https"),
        # The JSON API takes bearer tokens only (never cookies), so it has no CSRF exposure.
        exclude=["^/api/", "^/healthz$", "^/schema"],
    )
    template_engine = TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine)
    static = serving.StaticFiles(TEMPLATES / "static")
    app = Litestar(
        route_handlers=[
            *api.ROUTES,
            *catalog_routes.ROUTES,
            *agreement_routes.ROUTES,
            *agreement_pages.ROUTES,
            *bidding_routes.ROUTES,
            *push_routes.ROUTES,
            *export_routes.ROUTES,
            *shopping_routes.ROUTES,
            *shopping_routes.PAGES,
            *pages.ROUTES,
            *catalog_pages.ROUTES,
            *bidding_pages.ROUTES,
            *push_pages.ROUTES,
            *message_routes.ROUTES,
            *message_routes.PAGES,
            *metrics.ROUTES,
            create_static_files_router(
                path="/static", directories=[TEMPLATES / "static"], opt={"roles": ("public",)}
            ),
        ],
        dependencies={
            "db": Provide(provide_db),
            "settings": Provide(provide_settings),
            "search": Provide(provide_search),
            **CALLER,
        },
        guards=[access_guard],
        middleware=[
            serving.Compression(),
            serving.StaticCaching(static),
            logs.RequestIds(),
            metrics.RequestMetrics,
            ReadsRunAgain(),
            session_config.middleware,
            AuthMiddleware(),
            JsonBodyGuard(),
        ],
        before_send=[SecurityHeaders(settings.public_base_url)],
        after_request=message_routes.header_counts,  # the unread and to-do counts in the header
        csrf_config=csrf,
        template_config=template_engine,
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="阳光卖场 API",
            version="1.0.0",
            description="政府采购电子卖场的公开与业务接口。业务接口使用 Bearer 令牌（POST /api/auth/token 获取）。",
            path="/schema",
            # Served from our own /static: the docs must work on an intranet without a CDN.
            render_plugins=[
                SwaggerPage(
                    js_url=static.url("swagger/swagger-ui-bundle.js"),
                    css_url=static.url("swagger/swagger-ui.css"),
                    standalone_preset_js_url=static.url("swagger/swagger-ui-standalone-preset.js"),
                )
            ],
            openapi_router=Router(path="/schema", route_handlers=[], opt={"roles": ("public",)}),
        ),
        lifespan=[lifespan],
        plugins=[channels],
        debug=False,
        logging_config=None,
    )
    app.state.db = db
    app.state.settings = settings
    app.state.search = search
    app.state.room_redis = room_redis
    app.state.channels = channels
    pages.configure_templates(app, settings)
    app.template_engine.engine.globals["static_url"] = static.url  # type: ignore[union-attr]
    logging.getLogger("mall").setLevel(logging.INFO)
    return app


def app_from_env() -> Any:
    """uvicorn factory: `uvicorn --factory mall.site.app:app_from_env`."""
    logs.configure()  # each of uvicorn's worker processes starts afresh
    return create_app(load_settings())

"""Reads run again after a transient database failure.

A unit of work that writes is run again by its service function (`Database.retrying`). A GET or
HEAD has no effect to double, so when its database work fails for a transient reason (a deadlock, a
busy database, a connection the server cut) the whole request is run again here, up to the
database's `retries`, after the same jittered wait; only what fails every time is answered 503.

The error handler marks such a 503 with the `x-mall-transient` header (its reason); this
middleware holds that answer back and runs the request again, and strips the mark from whatever it
finally sends, whatever the method.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy.exc import DBAPIError

from mall.core import metrics
from mall.core.transient import retry_reason, retry_wait

TRANSIENT_HEADER = b"x-mall-transient"
SAFE_METHODS = ("GET", "HEAD")


class ReadsRunAgain(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        safe = scope.get("method") in SAFE_METHODS
        app = scope.get("litestar_app")
        retries = app.state.db.retries if safe and app is not None and "db" in app.state else 0
        attempt = 0
        while True:
            reason = await _attempt(
                next_app, scope, receive if attempt == 0 else _no_body(receive), send, attempt < retries
            )
            if reason is None:
                return
            attempt += 1
            metrics.DB_RETRIES.labels(reason).inc()
            await asyncio.sleep(retry_wait(attempt))


async def _attempt(app: ASGIApp, scope: Any, receive: Any, send: Any, may_retry: bool) -> str | None:
    """Runs the request once. The reason to run it again (its answer held back), or None: the
    answer was sent."""
    again: list[str] = []
    started = False

    async def relay(message: Any) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            headers = message.get("headers", ())
            mark = next((v for k, v in headers if k == TRANSIENT_HEADER), None)
            if mark is not None:
                if message["status"] == 503 and may_retry:
                    again.append(mark.decode("latin-1"))
                    return
                message = {**message, "headers": [(k, v) for k, v in headers if k != TRANSIENT_HEADER]}
            started = True
        elif again:
            return  # the body of an answer held back
        await send(message)

    try:
        await app(scope, receive, relay)
    except DBAPIError as exc:
        reason = retry_reason(exc)
        if started or reason is None or not may_retry:
            raise
        return reason
    return again[0] if again else None


def _no_body(receive: Any) -> Any:
    """What a request run again receives: its (empty) body once more, then the client's own events."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return await receive()

    return replay

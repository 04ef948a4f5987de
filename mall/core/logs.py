"""Process logging: plain text by default, one JSON object a line with `MALL_LOG_FORMAT=json`.

Every line written while a request is handled carries its request id (the `X-Request-ID` the client
or the proxy sent, if it is a plain token, or a new one), and so does every line of the jobs the
request caused: the id travels in the job's metadata and the job wrapper sets it again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

REQUEST_ID: ContextVar[str | None] = ContextVar("mall_request_id", default=None)
FORMATS = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Libraries that install handlers of their own; under JSON their lines go through the root's. (Not
# uvicorn's access log: `mall serve` turns it off, whatever the format.)
_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "rq.worker", "rq.scheduler")


def accept_request_id(raw: str | None) -> str:
    """The caller's id when it is a plain token (letters, digits, `._-`, at most 64), else a new one:
    whatever a client sends never reaches a log line unchecked."""
    return raw if raw is not None and _ID.fullmatch(raw) else uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        event = getattr(record, "event", None)
        if isinstance(event, str):  # a line with a stable event name (`extra={"event", "fields"}`)
            line["event"] = event
            fields = getattr(record, "fields", None)
            for key, value in fields.items() if isinstance(fields, dict) else ():
                line.setdefault(str(key), value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def log_format() -> str:
    fmt = os.environ.get("MALL_LOG_FORMAT", "").strip().lower() or "text"
    return fmt if fmt in FORMATS else "text"


def configure(level: int = logging.INFO) -> None:
    """The root logger writes to stderr in the chosen format; called first by every process root."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    fmt = log_format()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if fmt == "json":
        for name in _OWN_HANDLERS:
            logger = logging.getLogger(name)
            logger.handlers[:] = []
            logger.propagate = True
    raw = os.environ.get("MALL_LOG_FORMAT", "").strip().lower()
    if raw and raw not in FORMATS:
        logging.getLogger("mall").warning("MALL_LOG_FORMAT=%r is not text or json; writing text", raw[:20])


def uvicorn_log_config() -> dict[str, object] | None:
    """For `uvicorn.run`: None for text (uvicorn keeps its own configuration); for JSON, uvicorn's
    loggers without handlers of their own, so their lines reach the root logger's JSON handler."""
    if log_format() != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {n: {"handlers": [], "propagate": True} for n in _OWN_HANDLERS[:2]},
    }


class RequestIds(ASGIMiddleware):
    """ASGI middleware: the request id of each HTTP request (see `accept_request_id`) is set for
    everything the request runs and logs, and sent back as `X-Request-ID`."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        raw = next((v for k, v in scope.get("headers", ()) if k == b"x-request-id"), None)
        request_id = accept_request_id(raw.decode("latin-1") if raw is not None else None)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), (b"x-request-id", request_id.encode())],
                }
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await next_app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)

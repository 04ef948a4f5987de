"""Guards every HTTP exchange passes: request bodies a JSON handler would choke on are refused before
it parses them, and every response carries the browser security headers.

A body for a handler that reads JSON must be declared JSON (`Content-Type: application/json` or
`…+json`, else 415), at most `MAX_JSON_BYTES` (else 413), valid UTF-8 and nested at most
`MAX_JSON_DEPTH` levels (else 400) — the JSON decoder would otherwise fail with a Python error
(UnicodeDecodeError, RecursionError) that no handler can turn into a refusal.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar.enums import RequestEncodingType, ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from mall.core.errors import PROBLEM, problem_body

MAX_PATH_LENGTH = 1024  # far above any route of the mall (ids are 36 characters)
MAX_JSON_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped)."""
    brackets = _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for b in brackets:
        if b in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _reads_json(handler: Any) -> bool:
    """Whether the route handler decodes its body as JSON (its `data` parameter, JSON by default)."""
    signature = getattr(handler, "parsed_fn_signature", None)
    param = signature.parameters.get("data") if signature is not None else None
    if param is None:
        return False
    media = getattr(param.kwarg_definition, "media_type", None) or RequestEncodingType.JSON
    return bool(media == RequestEncodingType.JSON)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


class JsonBodyGuard(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        path = str(scope.get("path", ""))
        if "\x00" in path or len(path) > MAX_PATH_LENGTH:
            # No file or route has such a name; the file system would fail on it with a Python
            # error (embedded null byte, name too long) instead of "not found".
            await self._refuse(scope, send, 404, "not_found", "请求的资源不存在", instance="")
            return
        if scope.get("method") not in _BODY_METHODS or not _reads_json(scope.get("route_handler")):
            await next_app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw = message.get("body", b"")
            chunk = raw if isinstance(raw, bytes) else b""
            size += len(chunk)
            if size > MAX_JSON_BYTES:
                await self._refuse(
                    scope, send, 413, "body_too_large", f"请求体不能超过 {MAX_JSON_BYTES // 1024} KB"
                )
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        refusal = self._check(scope, body)
        if refusal is not None:
            await self._refuse(scope, send, *refusal)
            return
        replayed = False

        async def replay() -> ReceiveMessage:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await next_app(scope, replay, send)

    @staticmethod
    def _check(scope: Scope, body: bytes) -> tuple[int, str, str] | None:
        if not body.strip():
            return None  # the handler's own validation names what is missing
        media = _header(scope, b"content-type").split(";", 1)[0].strip().lower()
        if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
            return 415, "unsupported_media_type", "请求体应为 JSON，请使用 Content-Type: application/json"
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return 400, "invalid_json", "请求体不是有效的 UTF-8 编码的 JSON"
        if json_depth(body) > MAX_JSON_DEPTH:
            return 400, "json_too_deep", f"JSON 嵌套层级不能超过 {MAX_JSON_DEPTH} 层"
        return None

    @staticmethod
    async def _refuse(
        scope: Scope, send: Send, status: int, code: str, detail: str, *, instance: str | None = None
    ) -> None:
        path = str(scope.get("path", "")) if instance is None else instance
        body = msgspec.json.encode(problem_body(status, code, detail, path))
        headers = [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def content_security_policy(public_base_url: str) -> str:
    """No inline script, no framing, nothing loaded from elsewhere. Styles may be inline (the pages
    set a few widths and colours in `style` attributes); scripts only from our own /static."""
    parts = urlsplit(public_base_url)
    ws = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}" if parts.netloc else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            f"connect-src 'self' {ws}".strip(),
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    """A `before_send` hook: every response leaving the app (404s and error pages included, which no
    route middleware sees) carries the browser security headers, unless it set its own."""

    def __init__(self, public_base_url: str) -> None:
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-security-policy", content_security_policy(public_base_url).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if public_base_url.startswith("https"):
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers", []))
        present = {bytes(k).lower() for k, _ in headers}
        headers.extend((k, v) for k, v in self.headers if k not in present)
        message["headers"] = headers

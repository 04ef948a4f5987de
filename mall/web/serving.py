"""Serving bytes well: compressed answers, and static files with fingerprinted names and long caching.

**Compression.** An answer of a compressible type (HTML, JSON, CSS, JavaScript, XML, SVG) of at
least 1 KiB, sent in one piece, is gzipped when the browser accepts gzip, except on a request that
carries the session cookie: a logged-in page holds the CSRF token (the same one as in the cookie,
Litestar does not mask it) and personal data beside what the page reflects from its query, and
compressing those together is what BREACH measures. Static files are compressed for everyone
(nothing secret in them). A streamed answer (an export download) passes as it is.

**Static files.** `static_url("mall.css")` names a file with its content's fingerprint
(`/static/mall.css?v=1a2b3c4d5e6f`). Asked for by that name, a file is cached for a year
(`immutable`); by any other name for five minutes. Each has an ETag (its fingerprint), and a request
with a matching `If-None-Match` is answered 304 without a body. A logged-in user's answers are
`no-store` (mall.core.guards), static files excepted.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

STATIC_PREFIX = "/static/"
SESSION_COOKIE = b"mall_session="
MIN_SIZE = 1024
COMPRESSIBLE = (
    b"text/",
    b"application/json",
    b"application/problem+json",
    b"application/javascript",
    b"application/xml",
    b"application/atom+xml",
    b"image/svg+xml",
)
YEAR = b"public, max-age=31536000, immutable"
SHORT = b"public, max-age=300"


class StaticFiles:
    """The static directory's fingerprints, computed once at start (files change only with a release)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.fingerprints: dict[str, str] = {}
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            rel = path.relative_to(directory).as_posix()
            self.fingerprints[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    def url(self, name: str) -> str:
        """The address of a static file under its fingerprint (a name not found: plain, so a typo
        shows as a 404 in development rather than a crash)."""
        fingerprint = self.fingerprints.get(name)
        return f"{STATIC_PREFIX}{name}" + (f"?v={fingerprint}" if fingerprint else "")


def _header(scope: Scope, name: bytes) -> bytes:
    for k, v in scope.get("headers", ()):
        if k == name:
            return bytes(v)
    return b""


def accepts_gzip(scope: Scope) -> bool:
    for part in _header(scope, b"accept-encoding").lower().split(b","):
        coding, _, params = part.strip().partition(b";")
        if coding.strip() in (b"gzip", b"*"):
            q = params.strip()
            try:
                return not (q.startswith(b"q=") and float(q[2:] or b"0") == 0)
            except ValueError:
                return True
    return False


class StaticCaching(ASGIMiddleware):
    """ETags, 304s and cache lifetimes of /static/ files (see the module's text)."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, files: StaticFiles) -> None:
        self.files = files

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        path = scope.get("path", "")
        name = path[len(STATIC_PREFIX) :] if path.startswith(STATIC_PREFIX) else ""
        fingerprint = self.files.fingerprints.get(name)
        if fingerprint is None or scope.get("method") not in ("GET", "HEAD"):
            await next_app(scope, receive, send)
            return
        etag = f'W/"{fingerprint}"'.encode()
        asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("v", [""])[0]
        lifetime = YEAR if asked == fingerprint else SHORT
        if etag in [t.strip() for t in _header(scope, b"if-none-match").split(b",")]:
            headers = [(b"etag", etag), (b"cache-control", lifetime), (b"vary", b"accept-encoding")]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return

        async def with_caching(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                kept = [(k, v) for k, v in message.get("headers", ()) if k not in (b"etag", b"cache-control")]
                message = {**message, "headers": [*kept, (b"etag", etag), (b"cache-control", lifetime)]}
            await send(message)

        await next_app(scope, receive, with_caching)


class Compression(ASGIMiddleware):
    """gzip for answers that can be compressed safely (see the module's text)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        path = scope.get("path", "")
        logged_in = SESSION_COOKIE in _header(scope, b"cookie")
        if (
            not accepts_gzip(scope)
            or scope.get("method") == "HEAD"
            or (logged_in and not path.startswith(STATIC_PREFIX))
        ):
            await next_app(scope, receive, send)
            return
        start: Any = None  # the held http.response.start message
        passing = False

        async def compressing(message: Any) -> None:
            nonlocal start, passing
            if passing:
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body = bytes(message.get("body", b""))
            headers = list(start.get("headers", ()))
            kind = next((bytes(v).lower() for k, v in headers if k == b"content-type"), b"")
            encoded = any(k == b"content-encoding" for k, _ in headers)
            if (
                message.get("more_body", False)  # streamed: passed on as it comes
                or encoded
                or start["status"] in (204, 206, 304)
                or len(body) < MIN_SIZE
                or not compressible(kind)
            ):
                passing = True
                await send(_with_vary(start) if compressible(kind) else start)
                await send(message)
                return
            packed = gzip.compress(body, compresslevel=6, mtime=0)
            headers = [(k, v) for k, v in headers if k != b"content-length"]
            headers += [(b"content-encoding", b"gzip"), (b"content-length", str(len(packed)).encode())]
            passing = True
            await send(_with_vary({**start, "headers": headers}))
            await send({"type": "http.response.body", "body": packed, "more_body": False})

        await next_app(scope, receive, compressing)


def compressible(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip()
    return media.startswith(COMPRESSIBLE) or media.endswith((b"+json", b"+xml"))


def _with_vary(start: Any) -> Any:
    headers = list(start.get("headers", ()))
    for i, (k, v) in enumerate(headers):
        if k == b"vary":
            if b"accept-encoding" not in bytes(v).lower():
                headers[i] = (k, bytes(v) + b", accept-encoding")
            return {**start, "headers": headers}
    return {**start, "headers": [*headers, (b"vary", b"accept-encoding")]}

"""A fake Meilisearch server for the adapter's contract tests and for bench/meili_client.py.

No Meilisearch server can run on this machine, so the adapter is checked against this fake: an HTTP
server on 127.0.0.1 (a real socket, so whatever client the adapter uses sends real requests) that
records every request and answers the way the Meilisearch reference documents it. Writes answer 202
with an enqueued task summary (`taskUid`, `indexUid`, `status: "enqueued"`, `type`, `enqueuedAt`),
`GET /tasks/{uid}` answers the task object with `status: "succeeded"` (or `"failed"` with an `error`
object), searches answer `hits` (with `_formatted`), `facetDistribution`, `totalHits`, `page`,
`hitsPerPage`, `totalPages`. It is not a search engine: the search answer is canned.

References: https://www.meilisearch.com/docs/reference/api/ (indexes, settings, documents, search,
tasks, stats, swap-indexes).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

KEY = "test-master-key"


class FakeMeili:
    """Records requests; answers like the documented API. Keeps just enough state (index uids,
    document ids, tasks) to make the answers consistent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.indexes: dict[str, dict[str, dict[str, Any]]] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.fail_types: dict[str, dict[str, str]] = {}  # task type → error object
        self.search_response: dict[str, Any] = {"hits": [], "totalHits": 0, "facetDistribution": {}}
        self.tasks_stuck = False  # GET /tasks/{uid} answers "processing" for ever
        self._next_task = 0
        self.url = ""  # set by whoever serves it
        self.connections = 0

    # -- helpers for assertions
    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests]

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls() if c[0] != "GET"]

    def body(self, method: str, path: str) -> Any:
        for r in self.requests:
            if r.method == method and r.url.path == path:
                return json.loads(r.content)
        raise AssertionError(f"no {method} {path} in {self.calls()}")

    # -- the transport
    def _task(self, kind: str, index_uid: str | None, apply: Any = None) -> httpx.Response:
        uid = self._next_task
        self._next_task += 1
        error = self.fail_types.get(kind)
        if error is None and apply is not None:
            apply()
        self.tasks[uid] = {
            "uid": uid,
            "indexUid": index_uid,
            "status": "failed" if error else "succeeded",
            "type": kind,
            "error": error,
            "enqueuedAt": "2026-11-22T07:00:00.000000Z",
        }
        return httpx.Response(
            202,
            json={
                "taskUid": uid,
                "indexUid": index_uid,
                "status": "enqueued",
                "type": kind,
                "enqueuedAt": "2026-11-22T07:00:00.000000Z",
            },
        )

    def _not_found(self, uid: str) -> httpx.Response:
        return httpx.Response(
            404,
            json={
                "message": f"Index `{uid}` not found.",
                "code": "index_not_found",
                "type": "invalid_request",
                "link": "https://docs.meilisearch.com/errors#index_not_found",
            },
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return httpx.Response(
                401, json={"message": "missing key", "code": "missing_authorization_header"}
            )
        m, path = request.method, request.url.path
        body: Any = json.loads(request.content) if request.content else None
        if m == "GET" and (t := re.fullmatch(r"/tasks/(\d+)", path)):
            task = self.tasks[int(t.group(1))]
            if self.tasks_stuck:
                task = dict(task, status="processing", error=None)
            return httpx.Response(200, json=task)
        if m == "POST" and path == "/indexes":
            return self._task("indexCreation", body["uid"], lambda: self.indexes.setdefault(body["uid"], {}))
        if m == "POST" and path == "/swap-indexes":
            a, b = body[0]["indexes"]

            def swap() -> None:
                self.indexes[a], self.indexes[b] = self.indexes[b], self.indexes[a]

            return self._task("indexSwap", None, swap)
        idx = re.fullmatch(r"/indexes/([A-Za-z0-9_-]+)(/.*)?", path)
        assert idx, path
        uid, rest = idx.group(1), idx.group(2) or ""
        if m == "GET" and rest == "":
            if uid not in self.indexes:
                return self._not_found(uid)
            return httpx.Response(200, json={"uid": uid, "primaryKey": "id"})
        if m == "DELETE" and rest == "":
            return self._task("indexDeletion", uid, lambda: self.indexes.pop(uid, None))
        if m == "PATCH" and rest == "/settings":
            return self._task("settingsUpdate", uid)
        if m == "POST" and rest == "/documents":
            docs = self.indexes.setdefault(uid, {})
            return self._task(
                "documentAdditionOrUpdate", uid, lambda: docs.update({d["id"]: d for d in body})
            )
        if m == "POST" and rest == "/documents/delete-batch":
            docs = self.indexes.get(uid, {})
            return self._task("documentDeletion", uid, lambda: [docs.pop(i, None) for i in body])
        if m == "POST" and rest == "/search":
            if uid not in self.indexes:
                return self._not_found(uid)
            return httpx.Response(200, json=self.search_response)
        if m == "GET" and rest == "/stats":
            if uid not in self.indexes:
                return self._not_found(uid)
            return httpx.Response(
                200,
                json={
                    "numberOfDocuments": len(self.indexes[uid]),
                    "isIndexing": False,
                    "fieldDistribution": {},
                },
            )
        return httpx.Response(404, json={"message": "not found", "code": "not_found"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, for clients that reuse connections
    disable_nagle_algorithm = True  # headers and body go out in two writes: no delayed-ACK stall
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        content = self.rfile.read(length) if length else b""
        host, port = self.server.server_address[:2]
        request = httpx.Request(
            self.command,
            f"http://{host}:{port}{self.path}",
            headers=list(self.headers.items()),
            content=content,
        )
        with self.server.lock:
            response = self.server.fake(request)
        body = response.content
        self.send_response(response.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeMeili) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self.lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.fake.connections += 1  # one per accepted TCP connection
        super().process_request(request, client_address)


@contextmanager
def serve(fake: FakeMeili) -> Iterator[str]:
    """Serve `fake` on a free loopback port; yields its base URL."""
    server = _Server(fake)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

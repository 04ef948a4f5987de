"""Point 12: a malformed JSON body is refused with 400/413/415 problem+json on every endpoint that
reads JSON, for every caller — never a 500. The endpoints come from the app's route table, so an
endpoint added later is tested without anyone remembering to."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.factories import World

ROLE_USER = {
    "buyer": "buyer_a",
    "supplier": "supplier_x",
    "center": "center",
    "regulator": "regulator",
    "sysadmin": "sysadmin",
    "secadmin": "secadmin",
    "auditor": "auditor",
    "user": "buyer_a",
    "public": "buyer_a",
}

MALFORMED = {
    "invalid_utf8": (b'{"name": "\xff\xfe"}', "application/json"),
    "nested_100": (b'{"a":' * 100 + b"1" + b"}" * 100, "application/json"),
    "nested_10000": (b"[" * 10000 + b"]" * 10000, "application/json"),
    "text_plain": (b'{"username": "a", "password": "b"}', "text/plain"),
    "truncated": (b'{"username": "a", ', "application/json"),
}


def json_endpoints(app: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, path, roles) of every route handler whose body is JSON (its `data`, JSON by default)."""
    from litestar.enums import RequestEncodingType
    from litestar.routes import HTTPRoute

    out = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            param = handler.parsed_fn_signature.parameters.get("data")
            if param is None:
                continue
            media = getattr(param.kwarg_definition, "media_type", None) or RequestEncodingType.JSON
            if media != RequestEncodingType.JSON:
                continue
            for method in handler.http_methods:
                if method in ("POST", "PUT", "PATCH", "DELETE"):
                    out.append((method, route.path, tuple(handler.opt.get("roles", ()))))
    return sorted(set(out))


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "1" if ":int" in m.group(0) else str(uuid.uuid4()), path)


@pytest.mark.slow
async def test_every_json_endpoint_refuses_malformed_bodies(client: Any, app: Any, world: World) -> None:
    endpoints = json_endpoints(app)
    # the JSON API is large; a route table that lost most of it would make this test pass vacuously
    assert len(endpoints) >= 30, endpoints
    failures = []
    for method, path, roles in endpoints:
        user = ROLE_USER[next((r for r in roles if r in ROLE_USER), "public")]
        url = concrete(path)
        for name, (body, media) in MALFORMED.items():
            for auth in (None, world.h(user)):
                headers = {"Content-Type": media, "Idempotency-Key": "malformed-key-1"}
                if auth and path.startswith("/api"):
                    headers.update(auth)
                r = await client.request(method, url, content=body, headers=headers)
                ok = r.status_code < 500 and r.headers.get("content-type", "").startswith(
                    "application/problem+json"
                )
                if auth and path.startswith("/api") and name != "truncated":
                    # an allowed caller reaches the body check: these are body errors, not access errors
                    ok = ok and r.status_code in (400, 413, 415)
                if not ok:
                    failures.append(
                        f"{method} {path} [{name}, {'auth' if auth else 'anon'}] → {r.status_code}"
                    )
    assert not failures, "\n".join(failures[:40]) + f"\n… {len(failures)} in all"


@pytest.mark.parametrize(
    ("body", "media", "status", "code"),
    [
        (b'{"username": "\xff"}', "application/json", 400, "invalid_json"),
        (b"[" * 65 + b"]" * 65, "application/json", 400, "json_too_deep"),
        (b'{"username": "u", "password": "p"}', "text/plain", 415, "unsupported_media_type"),
        (
            b'{"username": "u", "password": "' + b"x" * (1024 * 1024) + b'"}',
            "application/json",
            413,
            "body_too_large",
        ),
    ],
)
async def test_refusals_name_the_problem(
    client: Any, body: bytes, media: str, status: int, code: str
) -> None:
    r = await client.post("/api/auth/token", content=body, headers={"Content-Type": media})
    assert r.status_code == status, r.text
    problem = r.json()
    assert problem["code"] == code
    assert re.search(r"[\u4e00-\u9fff]", problem["detail"])  # said in Chinese


async def test_sixty_four_levels_still_parse(client: Any, world: World) -> None:
    # 64 levels are allowed: the refusal is the depth, not JSON as such (the handler then refuses the shape)
    r = await client.post(
        "/api/auth/token", content=b"[" * 64 + b"]" * 64, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_input"


async def test_missing_idempotency_key_names_the_header(client: Any, world: World) -> None:
    r = await client.post(
        "/api/checkout",
        json={"budget_line_id": str(world.lines["a1"].id)},
        headers=world.h("buyer_a"),
    )
    assert r.status_code == 400, r.text
    assert "Idempotency-Key" in r.json()["detail"]


@pytest.mark.parametrize(
    "path",
    ["/static/%00", "/static/app.css%00.js", "/static/" + "a" * 5000, "/goods/%00", "/api/listings/%00"],
)
async def test_paths_no_file_can_have_are_not_found_not_a_server_error(client: Any, path: str) -> None:
    """A NUL or an overlong name reaches the file system as a Python error (embedded null byte, name
    too long); it is refused as not found before any handler runs."""
    r = await client.get(path)
    assert r.status_code == 404, r.text[:200]
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "not_found"

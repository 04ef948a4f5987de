"""Schemathesis against the real server, as every role: whatever the OpenAPI document allows a client
to send (and much that it does not), no operation answers with a 5xx.

Each role is fuzzed on the operations its access rule lets it call (`operations_open_to`); the rest
refuse it before reading anything. Bounded for CI: the examples of the document plus `FUZZ_EXAMPLES` generated cases per operation and
role (`OPERATOR_EXAMPLES` for the platform operator's roles), with a fixed seed per role so a failure reproduces (`MALL_FUZZ_SEED` and `MALL_FUZZ_EXAMPLES`
widen a run by hand). Path parameters are pinned to real objects of the world, so the generated
bodies reach the services instead of stopping at "not found".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mall.core.settings import Settings
from tests.e2e.conftest import web_server
from tests.factories import LAPTOP, World

FUZZ_EXAMPLES = int(os.environ.get("MALL_FUZZ_EXAMPLES", "8"))
# The platform operator's roles reach few operations beyond the refusals every role meets: fewer
# generated cases for them keep the run inside CI's time (their own operations have tests of their own).
OPERATOR_EXAMPLES = int(os.environ.get("MALL_FUZZ_OPERATOR_EXAMPLES", "3"))
OPERATOR_ROLES = {"sysadmin", "secadmin", "auditor"}
SEED = int(os.environ.get("MALL_FUZZ_SEED", "20261206"))
ROLES = [None, "buyer_a", "supplier_x", "center", "regulator", "sysadmin", "secadmin", "auditor"]
# Operations that end the caller's own credentials would only blind the rest of the run; so would the
# security administrator's, which end other users' (a role change, a token revoked, a reset second factor).
EXCLUDE = r"^/api/auth/(logout-all|password|tokens/)|^/api/security/(users/|tokens/)|^/healthz$"


def schemathesis_bin() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which(
        "schemathesis"
    )
    assert found, "schemathesis is a dev dependency (pip install -e '.[dev]')"
    return found


async def pinned_parameters(world: World) -> dict[str, str]:
    """Real ids for the path parameters the API uses, taken from a world with an order and an inquiry."""
    from mall import orders

    order = (
        await orders.checkout(
            world.db,
            world.settings,
            world.who["buyer_a"],
            orders.CheckoutRequest(
                budget_line_id=world.lines["a1"].id,
                idempotency_key="fuzz-order-0001",
                items=((world.listings["laptop"].id, "1"),),
            ),
        )
    )[0][0]
    inquiry = await world.procedure(
        "inquiry",
        "模糊测试询价项目",
        ceiling="9000.00",
        item=LAPTOP,
        hours=2,
        region_code=world.settings.region_code,
    )
    return {
        "path.listing_id": str(world.listings["laptop"].id),
        "path.order_id": str(order.id),
        "path.procedure_id": str(inquiry.id),
        "path.org_id": str(world.who["supplier_x"].org_id),
    }


def config_file(tmp_path: Path, parameters: dict[str, str]) -> Path:
    path = tmp_path / "schemathesis.toml"
    lines = ["[parameters]", *(f'"{k}" = "{v}"' for k, v in parameters.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def operations_open_to(app: Any, role: str | None) -> list[str]:
    """The API operations ("METHOD /path", as the OpenAPI document names them) whose access rule lets
    `role` (None: no one logged in) through. Every other operation refuses that caller at the access
    guard, before its parameters or body are read (tests/mall/test_access.py holds the guard to its
    matrix): fuzzing them as that caller would only repeat the refusal."""
    names = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", None) or []:
            if not route.path.startswith("/api") or not handler.resolve_include_in_schema():
                continue
            roles = handler.opt.get("roles") or ()
            if "public" in roles or (role is not None and ("user" in roles or role in roles)):
                path = PATH_PARAM.sub(r"{\1}", route.path)
                names += [f"{m} {path}" for m in sorted(handler.http_methods - {"HEAD", "OPTIONS"})]
    return sorted(set(names))


PATH_PARAM = re.compile(r"\{(\w+):\w+\}")


@pytest.mark.slow
async def test_no_role_can_make_the_api_fail(
    app: Any, settings: Settings, tmp_path: Path, world: World
) -> None:
    parameters = await pinned_parameters(world)
    config = config_file(tmp_path, parameters)
    failures: list[str] = []
    with web_server(settings, tmp_path) as base:
        for n, role in enumerate(ROLES):
            cmd = [
                schemathesis_bin(),
                "--config-file",
                str(config),
                "run",
                f"{base}/schema/openapi.json",
                "--checks",
                "not_a_server_error",
                "--phases",
                "examples,fuzzing",
                "--max-examples",
                str(OPERATOR_EXAMPLES if role in OPERATOR_ROLES else FUZZ_EXAMPLES),
                "--seed",
                str(SEED + n),
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--no-color",
                "--exclude-path-regex",
                EXCLUDE,
                "--request-timeout",
                "30",
            ]
            if role:
                cmd += ["-H", f"Authorization: Bearer {world.tokens[role]}"]
            open_to = operations_open_to(app, world.who[role].role if role else None)
            assert open_to, role
            cmd += ["--include-name-regex", "^(" + "|".join(re.escape(n) for n in open_to) + ")$"]
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path, check=False)
            out = run.stdout + run.stderr
            print(f"--- schemathesis as {role or 'anonymous'}: exit {run.returncode}\n{_summary(out)}")
            if run.returncode != 0:
                failures.append(f"as {role or 'anonymous'} (exit {run.returncode}):\n{out[-8000:]}")
    assert not failures, "\n\n".join(failures)


def _summary(out: str) -> str:
    keep = [
        line for line in out.splitlines() if "generated" in line or "Selected" in line or "Tested" in line
    ]
    return "\n".join(keep)


def test_the_api_is_worth_fuzzing(app: Any) -> None:
    # the document the fuzzing reads covers the API: a broken schema would make the run above vacuous
    schema = app.openapi_schema.to_schema()
    operations = sum(len(v) for k, v in schema["paths"].items() if k.startswith("/api"))
    assert operations >= 60, operations

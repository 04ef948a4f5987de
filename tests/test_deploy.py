"""deploy/: every metric the Grafana dashboard and the alert rules name is one /metrics exposes, and
the alert rules are valid for Prometheus (`promtool check rules`, from Debian's prometheus package)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mall.core.settings import Settings
from tests.factories import World
from tests.security.login_helpers import client_from, served

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
METRIC = re.compile(r"\bmall_[a-z_]+\b")
SUFFIXES = ("_bucket", "_count", "_sum")


def exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "sunshine-mall.json").read_text())
    found = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    found += re.findall(r"^\s*expr: (.+)$", rules, flags=re.M)
    return found


def family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


async def test_every_named_metric_is_exposed(world: World, settings: Settings) -> None:
    named = {family(m) for e in exprs() for m in METRIC.findall(e)}
    assert len(named) >= 10, named
    async with served(settings) as app, client_from(app, "127.0.0.1") as c:
        r = await c.get("/metrics")
    assert r.status_code == 200
    exposed = {line.split()[2] for line in r.text.splitlines() if line.startswith("# TYPE ")}
    assert named <= exposed, sorted(named - exposed)


@pytest.mark.slow
def test_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; .ci/run installs it)")
    r = subprocess.run(
        [promtool, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 9 rules found" in r.stdout, r.stdout

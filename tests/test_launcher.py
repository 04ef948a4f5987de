"""`mall run` on embedded defaults: everything starts, the demo mall answers, Ctrl-C leaves nothing running.

This always tests the embedded mode (SQLite + the bundled redis-server), whatever DATABASE_URL and
REDIS_URL say for the rest of the suite.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def processes_of(data_dir: Path) -> list[int]:
    """Processes started for this data directory: by their environment or their command line."""
    found = []
    marker = str(data_dir).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes() or marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def get_json(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (localhost)
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.slow
@pytest.mark.embedded_only
def test_mall_run_starts_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("MALL_")
    }
    env.update(MALL_DATA_DIR=str(data), MALL_PORT=str(port))
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mall.cli", "run"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        health: dict[str, object] = {}
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                status, health = get_json(f"{base}/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        else:
            raise AssertionError(f"the mall did not become healthy: {health}\n{log.read_text()[-3000:]}")
        assert health["redis"] == {"ok": True, "embedded": True}
        assert health["database"]["backend"] == "sqlite"  # type: ignore[index]
        assert health["worker"]["count"] >= 1  # type: ignore[index]
        # Demo data on first start, with a history of published deals.
        status, feed = get_json(f"{base}/api/disclosures?limit=500")
        assert status == 200 and len(feed["items"]) >= 10  # type: ignore[arg-type]
        status, goods = get_json(f"{base}/api/listings?per_page=1")
        assert goods["total"] >= 200  # type: ignore[operator]
        assert (data / "redis.sock").exists() and (data / "mall.db").exists()
        children = processes_of(data)
        assert len(children) >= 3, children  # redis-server, worker (+ its scheduler), web
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, log.read_text()[-3000:]
    deadline = time.monotonic() + 10
    while processes_of(data) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_of(data) == [], "processes left running after Ctrl-C"
    assert "已停止所有进程" in log.read_text()

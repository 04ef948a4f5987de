"""`mall worker` supervises its job processes, and nothing it started outlives it.

Runs real processes: the bundled redis-server on a unix socket, a migrated SQLite database, and
`mall worker --processes 2` (periodic work, RQ scheduler, two RQ workers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mall.core.settings import Settings
from mall.launcher import redis_command, wait_for_redis


def children_of(pid: int) -> dict[int, str]:
    """Direct children of `pid`: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            if ppid == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.embedded_only
def test_worker_children_are_restarted_and_die_with_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    settings = Settings(data_dir=data)
    redis = subprocess.Popen(redis_command(settings))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("MALL_")
    }
    env.update(MALL_DATA_DIR=str(data), REDIS_URL=f"unix://{settings.embedded_redis_socket}")
    worker: subprocess.Popen[bytes] | None = None
    try:
        wait_for_redis(settings.embedded_redis_socket)
        mall = [sys.executable, "-m", "mall.cli"]
        subprocess.run([*mall, "migrate"], env=env, check=True, capture_output=True, timeout=120)
        with (tmp_path / "worker.log").open("wb") as log:
            worker = subprocess.Popen(
                [*mall, "worker", "--processes", "2"], env=env, stdout=log, stderr=subprocess.STDOUT
            )

        # cron, scheduler and two RQ workers (a child just forked shows its parent's command line
        # until it has started its own program: wait for the programs, not only the processes)
        def started() -> bool:
            kids = children_of(worker.pid)
            return len(kids) == 4 and all("mall.cli" not in cmd for cmd in kids.values())

        wait_until(started, 60, "four children")
        kids = children_of(worker.pid)
        rq_workers = [pid for pid, cmd in kids.items() if cmd.rstrip().endswith("workers.worker")]
        assert len(rq_workers) == 2, kids
        assert any("workers.scheduler" in cmd for cmd in kids.values()), kids
        assert any("workers.cron" in cmd for cmd in kids.values()), kids

        # A worker killed outright is started again by the supervisor.
        os.kill(rq_workers[0], signal.SIGKILL)
        wait_until(
            lambda: rq_workers[0] not in children_of(worker.pid) and started(),
            30,
            "the killed RQ worker to be replaced",
        )
        everything = set(children_of(worker.pid))
        for pid in list(everything):
            everything |= set(children_of(pid))  # the RQ workers' own children, if any
        # `kill -9` of `mall worker` leaves no orphan: not the scheduler, not a worker, not cron.
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        wait_until(lambda: not any(alive(pid) for pid in everything), 15, "every child to exit")
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        redis.terminate()
        redis.wait(10)


@pytest.mark.slow
def test_processes_is_bounded() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mall.cli", "worker", "--processes", "0"], capture_output=True, timeout=60
    )
    assert r.returncode == 2
    assert "应为 1 至 64 的整数" in r.stderr.decode()

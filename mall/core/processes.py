"""Child processes that die with their parent and a supervisor that restarts them.

`mall run` and `mall worker` start children (Redis, the web server, RQ workers, the scheduler, the
periodic-work process). Each child asks the kernel for SIGTERM when its parent dies, so killing a
parent with SIGKILL leaves nothing behind; a supervisor restarts a child that exits, with backoff.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PR_SET_PDEATHSIG = 1
BACKOFF_FIRST = 0.5  # seconds before the first restart; doubled for each quick exit after it
BACKOFF_MAX = 30.0
STEADY = 60.0  # a child that ran this long before exiting starts again from the first backoff


def die_with_parent(parent_pid: int | None = None) -> None:
    """Ask for SIGTERM when the parent process dies (Linux). Called in the child: between fork and
    exec for a subprocess, first thing in a forked process. If the parent is already gone (it died
    before the request took effect), exit at once."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(0)


def _child_setup() -> Callable[[], None]:
    parent = os.getpid()
    return lambda: die_with_parent(parent)


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0  # restarts after quick exits in a row
    started_at: float = 0.0
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv,
            env={**os.environ, **self.env},
            start_new_session=True,
            preexec_fn=_child_setup(),
        )
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


class Supervisor:
    """Keeps its children running until asked to stop (SIGINT/SIGTERM, or `stopping`)."""

    def __init__(self, *, give_up_after: int | None = None) -> None:
        self.children: list[Child] = []
        self.stopping = False
        self.give_up_after = give_up_after  # quick exits in a row that stop the supervisor; None: never
        self.on_restart: Callable[[Child], None] = lambda child: None

    def trap_signals(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True

    def add(self, child: Child) -> Child:
        child.start()
        self.children.append(child)
        return child

    def backoff(self, child: Child) -> float:
        return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, child.restarts - 1)))

    def watch(self, poll: float = 0.3) -> None:
        """Restart children that exit, until stopping."""
        due: dict[int, float] = {}  # id(child) -> when it may start again
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                if self.stopping:
                    break
                if child.alive():
                    continue
                key = id(child)
                if key not in due:
                    code = child.proc.returncode if child.proc else None
                    if now - child.started_at >= STEADY:
                        child.restarts = 0
                    child.restarts += 1
                    if self.give_up_after is not None and child.restarts > self.give_up_after:
                        print(
                            f"! {child.name} 反复退出（代码 {code}），停止启动", file=sys.stderr, flush=True
                        )
                        self.stopping = True
                        break
                    wait = self.backoff(child)
                    print(
                        f"! {child.name} 已退出（代码 {code}），{wait:.1f} 秒后重启",
                        file=sys.stderr,
                        flush=True,
                    )
                    due[key] = now + wait
                elif now >= due[key]:
                    del due[key]
                    self.on_restart(child)
                    child.start()
            time.sleep(poll)

    def stop_all(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in reversed(self.children):  # started last, stopped first
            child.stop()

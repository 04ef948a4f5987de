"""Shared machinery for the benchmarks: a throw-away mall (database, Redis, `mall serve`, `mall worker`)
started as real subprocesses, data made through the real services, and an HTTP load driver.

Everything the harness starts is stopped again when the `Stack` context exits — also on Ctrl-C,
SIGTERM or an error — and children get SIGTERM from the kernel if the benchmark process itself dies
(PR_SET_PDEATHSIG). Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_BENCH_URL = "redis://127.0.0.1:6379/14"
BENCH_PASSWORD = "bench-pass-1234"
# Goods categories of the bundled catalogue (the same ones the tests use).
CATEGORIES = ["A02010108", "A02021003", "A05010201", "A02010105", "A02021104", "A05010301"]


def log(msg: str) -> None:
    """Progress lines go to stderr: stdout is kept for the results (JSON summary last)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- /proc


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS in KiB for one process (empty dict if it is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def children_of(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids.extend(int(x) for x in fh.read().split())
    except OSError:
        pass
    return kids


def tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children_of(p))
    return out


def cpu_seconds(pid: int) -> float:
    """utime+stime of the process plus its reaped children (RQ work horses are reaped children)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return total - idle, total


def background_cores(seconds: float = 1.0) -> float:
    """Machine CPU in use (cores) before the benchmark starts anything: the machine is shared."""
    b0, t0 = machine_cpu()
    time.sleep(seconds)
    b1, t1 = machine_cpu()
    return round((b1 - b0) / max(1, t1 - t0) * (os.cpu_count() or 1), 2)


class CpuMeter:
    """Machine CPU use (in cores) and per-process CPU seconds between start() and stop()."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.ncpu = os.cpu_count() or 1

    def start(self) -> CpuMeter:
        self._m0 = machine_cpu()
        self._p0 = {k: cpu_seconds(p) for k, p in self.pids.items()}
        self._p0["bench"] = time.process_time()
        self._t0 = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        busy1, total1 = machine_cpu()
        busy = (busy1 - self._m0[0]) / max(1, total1 - self._m0[1])
        wall = max(1e-9, time.monotonic() - self._t0)
        out = {"machine_cores_busy": round(busy * self.ncpu, 2)}
        for k, p in self.pids.items():
            out[f"{k}_cores"] = round((cpu_seconds(p) - self._p0[k]) / wall, 2)
        out["bench_client_cores"] = round((time.process_time() - self._p0["bench"]) / wall, 2)
        return out


# ---------------------------------------------------------------- statistics


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def r3(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def latency_summary(values: list[float]) -> dict[str, float | None]:
    return {
        "p50_ms": r3(None if not values else percentile(values, 50) * 1000),  # type: ignore[operator]
        "p99_ms": r3(None if not values else percentile(values, 99) * 1000),  # type: ignore[operator]
        "max_ms": r3(None if not values else max(values) * 1000),
    }


# ---------------------------------------------------------------- load driver


@dataclass
class PhaseResult:
    name: str
    clients: int
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    units: int = 0  # e.g. orders created (a checkout may create two)
    error_samples: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    def summary(self, unit_name: str = "orders") -> dict[str, Any]:
        out: dict[str, Any] = {
            "clients": self.clients,
            "requests_ok": self.ok,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.ok / self.seconds, 2) if self.seconds else None,
            **latency_summary(self.latencies),
        }
        if unit_name:
            out[unit_name] = self.units
            out[f"{unit_name}_per_s"] = round(self.units / self.seconds, 2) if self.seconds else None
        out["cpu"] = self.cpu
        return out


RequestFn = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response | None]]


async def closed_loop(
    client: httpx.AsyncClient,
    name: str,
    clients: int,
    make_request: RequestFn,
    on_ok: Callable[[httpx.Response], int],
    *,
    max_requests: int,
    max_seconds: float,
    meter: CpuMeter | None = None,
    ok_status: tuple[int, ...] = (200, 201),
) -> PhaseResult:
    """`clients` concurrent loops, each sending one request at a time, until `max_requests` were
    started or `max_seconds` passed. `make_request(client, client_no)` returns None when it has no more
    work. `on_ok` returns the number of units (orders) the response stands for."""
    res = PhaseResult(name, clients)
    started = 0
    deadline = time.monotonic() + max_seconds
    if meter:
        meter.start()

    async def one(n: int) -> None:
        nonlocal started
        while started < max_requests and time.monotonic() < deadline:
            started += 1
            t0 = time.perf_counter()
            try:
                resp = await make_request(client, n)
            except (httpx.HTTPError, OSError) as exc:
                res.errors += 1
                if len(res.error_samples) < 10:
                    res.error_samples.append(f"{type(exc).__name__}: {exc}")
                continue
            dt = time.perf_counter() - t0
            if resp is None:
                started -= 1
                return
            if resp.status_code in ok_status:
                res.ok += 1
                res.latencies.append(dt)
                res.units += on_ok(resp)
            else:
                res.errors += 1
                if len(res.error_samples) < 10:
                    res.error_samples.append(
                        f"HTTP {resp.status_code} {resp.request.method} "
                        f"{resp.request.url.path}: {resp.text[:500]}"
                    )

    t0 = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(clients)))
    res.seconds = time.perf_counter() - t0
    if meter:
        res.cpu = meter.stop()
    for sample in res.error_samples:
        print(f"  ! {name}: {sample}", flush=True)
    return res


def http_client(port: int, concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(  # idle connections dropped before the server's 5 s keep-alive timeout
        max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8, keepalive_expiry=2.0
    )
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=httpx.Timeout(60.0))


# ---------------------------------------------------------------- a push receiver


def receiver_protocol(got: list[dict[str, Any]]) -> type[asyncio.Protocol]:
    """A raw asyncio HTTP/1.1 server protocol (keep-alive) that logs every request it is sent into
    `got` (arrival time, path, signature, Idempotency-Key, seq header, body) and answers 200."""

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.t = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while True:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = self.buf[:end].decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
                n = int(headers.get("content-length", "0"))
                if len(self.buf) < end + 4 + n:
                    return
                body = self.buf[end + 4 : end + 4 + n]
                self.buf = self.buf[end + 4 + n :]
                got.append(
                    {
                        "t": time.time(),
                        "path": lines[0].split(" ")[1],
                        "sig": headers.get("x-mall-signature", ""),
                        "key": headers.get("idempotency-key", ""),
                        "seq": headers.get("x-mall-seq", ""),
                        "body": body.decode("utf-8"),
                    }
                )
                self.t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    return Proto


# ---------------------------------------------------------------- the world


class _Bearer:
    """A user that calls the API with its token (set by login_all)."""

    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Buyer(_Bearer):
    username: str
    org_id: uuid.UUID
    line_id: uuid.UUID
    token: str = ""


@dataclass
class Supplier(_Bearer):
    username: str
    org_id: uuid.UUID
    name: str
    listings: list[uuid.UUID] = field(default_factory=list)
    token: str = ""


@dataclass
class World:
    buyers: list[Buyer]  # one org (and budget line) each
    shared: list[Buyer]  # several users of one org sharing one budget line
    suppliers: list[Supplier]

    @property
    def supplier_by_name(self) -> dict[str, Supplier]:
        return {s.name: s for s in self.suppliers}

    @property
    def all_listings(self) -> list[tuple[uuid.UUID, Supplier]]:
        return [(lid, s) for s in self.suppliers for lid in s.listings]


# Personal data is encrypted at rest (MALL_DATA_KEY): every process a benchmark starts and every
# connection it opens itself use this one key, on SQLite as on PostgreSQL.
BENCH_DATA_KEY = base64.urlsafe_b64encode(b"sunshine-mall-bench-data-key-32b").decode()


def bench_db(url: str, pool_size: int = 20) -> Any:
    """A `Database` on `url` with the benchmark's data key."""
    from mall.core.db import Database
    from mall.core.encryption import DataKeys

    return Database(url, pool_size=pool_size, data_keys=DataKeys.parse(BENCH_DATA_KEY))


async def build_world(
    database_url: str,
    *,
    buyers: int,
    shared_users: int,
    suppliers: int,
    listings_per_supplier: int,
    bare_suppliers: int = 0,
) -> World:
    """Organizations, users, budget lines and listings, made through the services (as tests/factories.py).

    `bare_suppliers` more supplier organizations without listings (bidders of inquiries and auctions)
    come after the others in `World.suppliers`."""
    from decimal import Decimal

    from catalog import service as catalog_service
    from mall.budgets.models import BudgetLine
    from mall.core import auth, clock, passwords
    from mall.core.credit_code import make
    from mall.core.models import Organization, OrgKind, User
    from mall.core.settings import Settings
    from workers import queues

    queues.register_topics()  # this process is a root too; its enqueues do nothing (no queue configured)
    db = bench_db(database_url, pool_size=2)
    pw_hash = passwords.hash_password(BENCH_PASSWORD)
    year = clock.local_date(clock.now()).year
    counter = 0
    principals: dict[str, Any] = {}

    async def org(kind: OrgKind, name: str, usernames: list[str]) -> uuid.UUID:
        nonlocal counter
        counter += 1
        code = make("9" if kind == OrgKind.SUPPLIER else "1", "1", "410100", f"{counter:08d}")
        async with db.write() as tx:
            o = Organization(
                id=uuid.uuid4(),
                kind=kind.value,
                name=name,
                credit_code=code,
                address=f"{name}地址",
                region_code="410100",
                created_at=clock.now(),
            )
            tx.session.add(o)
            for u in usernames:
                user = User(
                    id=uuid.uuid4(),
                    org_id=o.id,
                    username=u,
                    display_name=u,
                    password_hash=pw_hash,
                    created_at=clock.now(),
                )
                user.org = o
                tx.session.add(user)
                principals[u] = user
        for u in usernames:
            principals[u] = auth.principal_of(principals[u])
        return o.id

    async def budget_line(org_id: uuid.UUID, code: str) -> uuid.UUID:
        line = BudgetLine(
            id=uuid.uuid4(),
            org_id=org_id,
            fiscal_year=year,
            project_code=code,
            project_name=f"压测项目{code}",
            amount=Decimal("90000000000.00"),
            reserved=Decimal(0),
            consumed=Decimal(0),
            created_at=clock.now(),
        )
        async with db.write() as tx:
            tx.session.add(line)
        return line.id

    try:
        out_buyers = []
        for i in range(buyers):
            u = f"bench_buyer{i + 1}"
            oid = await org(OrgKind.BUDGET_UNIT, f"压测采购单位{i + 1}", [u])
            out_buyers.append(Buyer(u, oid, await budget_line(oid, f"B{i + 1:03d}")))
        shared: list[Buyer] = []
        if shared_users:
            names = [f"bench_shared{i + 1}" for i in range(shared_users)]
            oid = await org(OrgKind.BUDGET_UNIT, "压测共享预算单位", names)
            lid = await budget_line(oid, "SHARED")
            shared = [Buyer(u, oid, lid) for u in names]
        out_suppliers = []
        await org(OrgKind.CENTER, "压测采购中心", ["bench_center"])
        center = principals["bench_center"]
        for j in range(suppliers):
            u = f"bench_supplier{j + 1}"
            name = f"压测供应商{j + 1}有限公司"
            oid = await org(OrgKind.SUPPLIER, name, [u])
            sup = Supplier(u, oid, name)
            for k in range(listings_per_supplier):
                price = f"{100 + 37 * k + 11 * j}.00"
                draft = catalog_service.ListingDraft(
                    name=f"压测商品{j + 1}-{k + 1}",
                    brand=f"品牌{j + 1}",
                    spec_model=f"型号-{k + 1}",
                    category_code=CATEGORIES[k % len(CATEGORIES)],
                    unit="台",
                    price=price,
                    reference_price=price,
                    stock="100000000",
                )
                listing = await catalog_service.create_listing(
                    db, principals[u], draft, margin=Settings().price_margin
                )
                # listings go live once the procurement center approves them
                await catalog_service.review_listing(
                    db, center, listing.id, approve=True, reason="", margin=Settings().price_margin
                )
                sup.listings.append(listing.id)
            out_suppliers.append(sup)
        for j in range(suppliers, suppliers + bare_suppliers):
            u = f"bench_supplier{j + 1}"
            name = f"压测供应商{j + 1}有限公司"
            out_suppliers.append(Supplier(u, await org(OrgKind.SUPPLIER, name, [u]), name))
    finally:
        await db.dispose()
    return World(out_buyers, shared, out_suppliers)


async def login_all(client: httpx.AsyncClient, people: list[Any], concurrency: int = 4) -> None:
    """Real logins over HTTP (POST /api/auth/token)."""
    sem = asyncio.Semaphore(concurrency)

    async def one(p: Any) -> None:
        async with sem:
            r = await client.post(
                "/api/auth/token", json={"username": p.username, "password": BENCH_PASSWORD, "name": "bench"}
            )
            if r.status_code != 201:
                raise RuntimeError(f"login of {p.username} failed: {r.status_code} {r.text[:300]}")
            p.token = r.json()["token"]

    await asyncio.gather(*(one(p) for p in people))


# ---------------------------------------------------------------- feed


async def fetch_feed(client: httpx.AsyncClient, after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
    """The whole public feed after `after`, following the cursor."""
    items: list[dict[str, Any]] = []
    while True:
        r = await client.get("/api/disclosures", params={"after": after, "limit": limit})
        r.raise_for_status()
        page = r.json()
        items.extend(page["items"])
        if not page["items"]:
            return items
        after = page["next_after"]


def verify_feed(items: list[dict[str, Any]], confirmed: set[str]) -> dict[str, Any]:
    """seqs gap-free 1..N; every confirmed order exactly once (as a deal); nothing unexpected."""
    seqs = [int(x["seq"]) for x in items]
    gap_free = seqs == list(range(1, len(seqs) + 1))
    counts: dict[str, int] = {}
    for x in items:
        if x.get("kind") == "deal":
            counts[x["order_no"]] = counts.get(x["order_no"], 0) + 1
    missing = sorted(confirmed - counts.keys())
    duplicated = sorted(k for k, v in counts.items() if v > 1)
    unexpected = sorted(set(counts) - confirmed)
    chain_ok = all(items[i]["prev_hash"] == items[i - 1]["hash"] for i in range(1, len(items)))
    ok = gap_free and not missing and not duplicated and not unexpected and chain_ok
    return {
        "ok": ok,
        "records": len(items),
        "max_seq": seqs[-1] if seqs else 0,
        "gap_free_1_to_n": gap_free,
        "prev_hash_links_ok": chain_ok,
        "confirmed_orders": len(confirmed),
        "missing": len(missing),
        "duplicated": len(duplicated),
        "unexpected": len(unexpected),
        "examples": {"missing": missing[:5], "duplicated": duplicated[:5], "unexpected": unexpected[:5]},
    }


# ---------------------------------------------------------------- the stack


class Stack:
    """A throw-away mall: `with Stack(...) as st:` sets up the data directory, database and Redis;
    `st.start_services()` starts `mall serve` and `mall worker`; leaving the block stops and removes all."""

    def __init__(
        self,
        db_kind: str,
        label: str,
        *,
        env_overrides: dict[str, str] | None = None,
        keep: bool = False,
        profile_web: str | None = None,
    ) -> None:
        assert db_kind in ("sqlite", "postgres")
        # cProfile output for the web process (its event-loop thread), written when it stops.
        self.profile_web = str(Path(profile_web).resolve()) if profile_web else None
        self.db_kind = db_kind
        self.label = label
        self.keep = keep
        self.env_overrides = env_overrides or {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"mall-bench-{label}-"))
        self.port = free_port()
        self.pg_name: str | None = None
        self.database_url = ""
        self.redis_url = ""
        self.queue_name = f"bench-{label}-{os.getpid()}"
        self._old_term: Any = None

    # -- lifecycle

    def __enter__(self) -> Stack:
        # Ctrl-C must work even when started from a shell that ignores SIGINT for background jobs.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self._old_term = signal.signal(signal.SIGTERM, self._on_term)
        self._old_hup = signal.signal(signal.SIGHUP, self._on_term)
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def _prepare(self) -> None:
        if self.db_kind == "postgres":
            self.pg_name = f"mall_bench_{os.getpid()}_{secrets.token_hex(3)}"
            _pg_admin(f'CREATE DATABASE "{self.pg_name}"')
            base = PG_ADMIN_URL.rpartition("/")[0]
            self.database_url = f"{base}/{self.pg_name}"
            self.redis_url = REDIS_BENCH_URL
            from redis import Redis

            Redis.from_url(self.redis_url).flushdb()
            log(f"PostgreSQL database {self.pg_name}, Redis {self.redis_url} (flushed)")
        else:
            self.database_url = f"sqlite:///{self.data_dir / 'mall.db'}"
            self._start_embedded_redis()
        t0 = time.monotonic()
        self._run_mall("migrate")
        log(f"migrated in {time.monotonic() - t0:.1f}s ({self.data_dir})")

    def _start_embedded_redis(self) -> None:
        from mall.core.processes import die_with_parent
        from mall.launcher import redis_command, wait_for_redis

        s = self.settings()
        if s.embedded_redis_socket.exists():
            s.embedded_redis_socket.unlink()
        self.procs["redis"] = subprocess.Popen(
            redis_command(s),
            start_new_session=True,
            preexec_fn=die_with_parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_redis(s.embedded_redis_socket)
        log(f"embedded redis-server on {s.embedded_redis_socket} (pid {self.procs['redis'].pid})")

    def settings(self) -> Any:
        from mall.core.settings import load_settings

        return load_settings(self.env())

    def env(self) -> dict[str, str]:
        env = inherited_env()
        env.update(
            {
                "MALL_DATA_DIR": str(self.data_dir),
                "MALL_PORT": str(self.port),
                "MALL_QUEUE_NAME": self.queue_name,
                "MALL_SECRET_KEY": "bench-secret-" + "x" * 24,
                "MALL_DATA_KEY": BENCH_DATA_KEY,
                "MALL_PUBLICATION_BASE_URL": f"http://127.0.0.1:{self.port}",
                # The load comes from loopback: the login throttles and rate limits must not slow
                # the benchmark's own logins.
                "MALL_RATE_LIMIT_EXEMPT": "127.0.0.0/8,::1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.update(self.env_overrides)
        return env

    @property
    def resolved_database_url(self) -> str:
        return str(self.settings().resolved_database_url)

    def _run_mall(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_mall(self.env(), *args, timeout=timeout)

    def ledger_verify(self) -> dict[str, Any]:
        return ledger_verify(self.env())

    def _spawn(self, name: str, *args: str) -> None:
        from mall.core.processes import die_with_parent

        logf = open(self.data_dir / f"{name}.log", "wb")  # noqa: SIM115
        profile = ["-m", "cProfile", "-o", self.profile_web] if name == "web" and self.profile_web else []
        self.procs[name] = subprocess.Popen(
            [sys.executable, *profile, "-m", "mall.cli", *args],
            cwd=ROOT,
            env=self.env(),
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        logf.close()

    def start_services(self, timeout: float = 60) -> None:
        self._spawn("worker", "worker")
        self._spawn("web", "serve", "--port", str(self.port))
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for name in ("web", "worker"):
                p = self.procs[name]
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited with {p.returncode}:\n{self.tail(name)}")
            try:
                r = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2)
                last = r.text
                if r.status_code == 200 and r.json().get("worker", {}).get("count", 0) >= 1:
                    log(
                        f"mall serve on 127.0.0.1:{self.port} (pid {self.pid('web')}), "
                        f"mall worker (pid {self.pid('worker')}) ready"
                    )
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"services not healthy after {timeout}s: {last}\n{self.tail('web')}\n{self.tail('worker')}"
        )

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def tail(self, name: str, n: int = 40) -> str:
        try:
            lines = (self.data_dir / f"{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"    {name}| {x}" for x in lines[-n:])

    def log_grep(self, name: str, *needles: str) -> list[str]:
        try:
            lines = (self.data_dir / f"{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [x for x in lines if any(n in x for n in needles)]

    def log_exceptions(self, name: str) -> list[dict[str, Any]]:
        """Unhandled errors in a service's log, grouped by final exception line and deepest project frame."""
        import re

        try:
            text = (self.data_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return []
        # one event per timestamped log line (uvicorn's own lines start with "INFO:" etc.)
        events = re.split(
            r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|(?:INFO|WARNING|ERROR|DEBUG|CRITICAL):\s)", text
        )
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for ev in events:
            if "Traceback (most recent call last)" not in ev:
                continue
            lines = ev.splitlines()
            exc_lines = [
                x for x in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*", x)
            ]
            frames = [
                x.strip() for x in lines if x.startswith("  File ") and str(ROOT) in x and "/.venv/" not in x
            ]
            sql = next((x for x in lines if x.startswith("[SQL")), "")
            exc = (exc_lines[-1] if exc_lines else lines[-1])[:300]
            where = " -> ".join(f.replace(f'File "{ROOT}/', "").replace('", line ', ":") for f in frames[-2:])
            g = groups.setdefault(
                (exc, where),
                {"exception": exc, "where": where, "sql": sql[:300], "count": 0, "first": lines[0][:120]},
            )
            g["count"] += 1
        return sorted(groups.values(), key=lambda g: -int(g["count"]))[:10]

    def report_log_exceptions(self, summary: dict[str, Any]) -> None:
        """The unhandled errors of the web and worker logs into `summary` (`web_log_exceptions`,
        `worker_log_exceptions`), each group also printed."""
        for name in ("web", "worker"):
            summary[f"{name}_log_exceptions"] = self.log_exceptions(name)
            for g in summary[f"{name}_log_exceptions"]:
                print(
                    f"  ! {name} log: {g['count']}x {g['exception']}\n      at {g['where']}\n      {g['sql']}"
                )

    def memory(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("web", "worker"):
            if name in self.procs and self.procs[name].poll() is None:
                pids = tree(self.pid(name))
                st = proc_status(self.pid(name))
                out[f"{name}_peak_rss_mib"] = round(st.get("VmHWM", 0) / 1024, 1)
                out[f"{name}_rss_mib"] = round(st.get("VmRSS", 0) / 1024, 1)
                if len(pids) > 1 and name == "web":
                    out["web_tree_peak_rss_mib"] = round(
                        sum(proc_status(p).get("VmHWM", 0) for p in pids) / 1024, 1
                    )
        return out

    def check_alive(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} died with {p.returncode}:\n{self.tail(name)}")

    def close(self) -> None:
        # Web first, then the worker, Redis last (as the launcher does).
        for name in ("web", "worker", "redis"):
            p = self.procs.pop(name, None)
            if p is None:
                continue
            # uvicorn re-raises SIGTERM after its graceful shutdown (so cProfile could not write its
            # stats); SIGINT ends in a KeyboardInterrupt that lets the profiler finish.
            signal_group(p, signal.SIGINT if name == "web" and self.profile_web else signal.SIGTERM)
            end_group(p, 15)
        for name, p in list(self.procs.items()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            self.procs.pop(name)
        drop_database(self.pg_name)
        self.pg_name = None
        if self.redis_url:
            try:
                from redis import Redis

                Redis.from_url(self.redis_url).flushdb()
            except Exception as exc:
                log(f"could not flush {self.redis_url}: {exc}")
        if self.keep:
            log(f"kept {self.data_dir}")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if self._old_term is not None:
            signal.signal(signal.SIGTERM, self._old_term)
            signal.signal(signal.SIGHUP, self._old_hup)
            self._old_term = None


def inherited_env() -> dict[str, str]:
    """This process's environment without the mall's settings: a started mall gets only those set."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MALL_") and k not in ("DATABASE_URL", "REDIS_URL", "MEILI_URL", "MEILI_KEY")
    }


def run_mall(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`mall <args>` to its end, with `env`; a failure raises with its output."""
    from mall.core.processes import die_with_parent

    r = subprocess.run(
        [sys.executable, "-m", "mall.cli", *args],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
        preexec_fn=die_with_parent,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"mall {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def ledger_verify(env: dict[str, str], timeout: float = 300) -> dict[str, Any]:
    """`mall ledger verify` on the mall `env` points at: whether it passed, and its verdict line."""
    r = subprocess.run(
        [sys.executable, "-m", "mall.cli", "ledger", "verify"],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    lines = (r.stdout + r.stderr).strip().splitlines()
    msg = next((x for x in reversed(lines) if "账本" in x), lines[-1] if lines else "")
    return {"ok": r.returncode == 0, "message": msg}


def signal_group(p: subprocess.Popen[bytes], sig: int) -> None:
    """Send `sig` to the process group of a process started with start_new_session, if it runs."""
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, sig)


def end_group(p: subprocess.Popen[bytes], wait: float) -> None:
    """Wait up to `wait` s for a signalled process, then kill it; whatever is left in its process
    group (an RQ work horse, a uvicorn child, the scheduler) goes too."""
    try:
        p.wait(wait)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, signal.SIGKILL)


def drop_database(name: str | None) -> None:
    if not name:
        return
    try:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        log(f"dropped {name}")
    except Exception as exc:
        log(f"could not drop {name}: {exc}")


def _pg_admin(sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    async def go() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def base_args(description: str) -> Any:
    import argparse

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a short run (about 30 s)")
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--keep", action="store_true", help="keep the temporary data directory (logs)")
    p.add_argument("--profile-web", metavar="FILE", help="run the web process under cProfile, stats to FILE")
    return p


def print_profile(path: str | None, top: int = 30) -> None:
    """The web process's hottest functions (own time), on stderr."""
    if not path or not Path(path).exists():
        return
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    log(f"web profile ({path}):\n{out.getvalue()}")


def emit(summary: dict[str, Any]) -> None:
    """The JSON summary: always the last line of stdout."""
    sys.stdout.flush()
    print(json.dumps(summary, ensure_ascii=False, separators=(",", ":")), flush=True)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    t0 = time.monotonic()
    log(f"{name}…")
    yield
    log(f"{name} done in {time.monotonic() - t0:.1f}s")


def run_once(
    name: str,
    description: str,
    run: Callable[[Stack, dict[str, Any]], Awaitable[dict[str, Any]]],
    quick: dict[str, Any],
    full: dict[str, Any],
    *,
    passed: Callable[[dict[str, Any]], bool],
    stack_name: str = "",
    describe: Callable[[Stack], dict[str, Any]] | None = None,
) -> int:
    """The main() of a benchmark that runs `run(stack, quick or full)` once on a fresh Stack.

    The summary (emitted last) has the machine, `describe(stack)`, what `run` returns and `ok`. The
    exit code: 0, 1 when it failed, 2 when it ran but `passed(summary)` is false, 130 when interrupted.
    """
    args = base_args(description).parse_args()
    t0 = time.monotonic()
    summary: dict[str, Any] = {
        "bench": name,
        "db": args.db,
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "background_cores_busy_before_start": background_cores(),
    }
    rc = 0
    try:
        with Stack(args.db, stack_name or name, keep=args.keep, profile_web=args.profile_web) as st:
            if describe is not None:
                summary.update(describe(st))
            try:
                summary.update(asyncio.run(run(st, quick if args.quick else full)))  # type: ignore[arg-type]
            except Exception:
                log("service logs:\n" + st.tail("web") + "\n" + st.tail("worker"))
                raise
    except KeyboardInterrupt:
        log("interrupted; everything stopped")
        summary["interrupted"] = True
        rc = 130
    except Exception as exc:
        log(f"failed: {type(exc).__name__}: {exc}")
        summary["failed"] = f"{type(exc).__name__}: {exc}"[:2000]
        rc = 1
    print_profile(args.profile_web)
    summary["wall_seconds"] = round(time.monotonic() - t0, 1)
    if rc == 0 and not passed(summary):
        rc = 2
    summary["ok"] = rc == 0
    emit(summary)
    return rc

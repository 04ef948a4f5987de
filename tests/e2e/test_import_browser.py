"""Imports in a real browser, with the real web and worker processes: a supplier uploads a sound file
and a spreadsheet bomb from 我的商品; the page follows each import until the worker has ended it, with
the bomb's reason in plain words."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import require_chromium, shot
from tests.e2e.pages import signed_in
from tests.factories import World
from tests.security.test_10_import_bomb import csv_file, shared_strings_bomb

require_chromium()
pytestmark = pytest.mark.browser


async def upload(page: Any, server: str, path: Path) -> str:
    await page.goto(f"{server}/supplier/listings")
    if await page.get_attribute("#import", "open") is None:  # folded until the first import
        await page.click("#import summary")
    await page.set_input_files("form.import-form input[name=file]", str(path))
    await page.click("form.import-form button[type=submit]")
    await page.wait_for_url("**/supplier/imports/*")
    # the page refreshes itself every second until the worker has ended the import
    deadline = time.monotonic() + 60
    while (
        "等待处理" in (text := await page.inner_text("#import-status"))
        or "正在读取" in text
        or "已校验" in text
    ):
        assert time.monotonic() < deadline, text
        await page.wait_for_timeout(500)
    return str(await page.inner_text("main"))


async def test_supplier_imports_a_file_and_sees_a_bomb_refused(
    server: str, browser: Any, world: World, tmp_path: Path
) -> None:
    errors: list[str] = []
    page = await signed_in(browser, errors, server, "supplier_y")
    sound = tmp_path / "商品.csv"
    sound.write_bytes(csv_file(3))
    text = await upload(page, server, sound)
    assert "已完成" in text and await page.inner_text("#accepted") == "3", text
    await shot(page, "import-done")
    bomb = tmp_path / "炸弹.xlsx"
    bomb.write_bytes(shared_strings_bomb())
    text = await upload(page, server, bomb)
    assert "失败" in text and "32 MB" in text and "压缩炸弹" in text, text
    await shot(page, "import-bomb-refused")
    assert errors == []

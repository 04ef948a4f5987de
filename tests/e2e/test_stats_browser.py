"""The statistics pages in a real browser: the public /statistics and the regulator's dashboard draw
their charts (ECharts, served from our own /static under the CSP) beside the tables, with no script
error; and, when axe-core is installed, they have no serious accessibility violation."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from mall.site.stats_routes import ECHARTS
from mall.stats import charts
from tests.e2e.conftest import login, new_page, require_chromium
from tests.factories import World
from tests.mall.test_stats import PERIOD, known_world

require_chromium()
pytestmark = pytest.mark.browser

AXE = Path(os.environ.get("MALL_AXE_JS", ""))
AXE_SOURCE = AXE.read_text(encoding="utf-8") if AXE.is_file() else ""
HAVE_ECHARTS = ECHARTS.is_file()
RUN_AXE = """async () => {
  const r = await axe.run(document, {
    runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
    resultTypes: ['violations'],
  });
  return r.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')}`);
}"""
# A drawn chart: its canvas has a size and some pixels that are not blank.
DRAWN = """el => {
  const canvas = el.querySelector('canvas');
  if (!canvas || !canvas.width || !canvas.height) return 0;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
  return painted;
}"""


async def drawn_charts(page: Any) -> dict[str, int]:
    out = {}
    for el in await page.locator("[data-chart]").all():
        key = await el.evaluate("el => el.closest('section').id")
        out[key] = await el.evaluate(DRAWN)
    return out


async def test_the_statistics_pages_draw_their_charts(server: str, browser: Any, world: World) -> None:
    if not HAVE_ECHARTS:
        pytest.skip("ECharts not installed (./dev test installs it into templates/static/echarts)")
    await known_world(world)
    errors: list[str] = []
    page = await new_page(browser, errors)
    qs = f"from={PERIOD['from']}&to={PERIOD['to']}"
    await page.goto(f"{server}/statistics?{qs}")
    await page.wait_for_load_state("networkidle")
    await page.wait_for_selector("[data-chart][data-drawn='1']")
    drawn = await drawn_charts(page)
    # every public chart has data in this world, and each is drawn with painted pixels
    assert set(drawn) == {f"chart-{k}" for k in charts.PUBLIC_CHARTS}, drawn
    assert all(n > 0 for n in drawn.values()), drawn
    out = Path(tempfile.gettempdir()) / "mall-statistics-public.png"
    await page.screenshot(path=str(out), full_page=True)
    print(f"\nscreenshot: {out}")
    violations: list[str] = []
    if AXE_SOURCE:
        await page.evaluate(AXE_SOURCE)
        violations += await page.evaluate(RUN_AXE)

    await login(page, server, "regulator")
    await page.goto(f"{server}/oversight/dashboard?{qs}")
    await page.wait_for_load_state("networkidle")
    await page.wait_for_selector("[data-chart][data-drawn='1']")
    drawn = await drawn_charts(page)
    assert "chart-cases_by_rule" in drawn and "chart-time_to_pay" in drawn, drawn
    assert all(n > 0 for n in drawn.values()), drawn
    assert await page.locator("table[data-chart-key]").count() == len(charts.PRIVATE_CHARTS)
    out = Path(tempfile.gettempdir()) / "mall-statistics-dashboard.png"
    await page.screenshot(path=str(out), full_page=True)
    print(f"screenshot: {out}")
    if AXE_SOURCE:
        await page.evaluate(AXE_SOURCE)
        violations += await page.evaluate(RUN_AXE)
    assert violations == [], violations
    assert errors == [], errors

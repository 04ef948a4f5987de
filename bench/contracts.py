"""The e-contract's CPU path, measured in one process: making the PDF, each party's signature, and the
verification the contract page runs on every view.

    .venv/bin/python bench/contracts.py [--runs 40] [--lines 10]

No database: the certificates are made in memory exactly as mall.contracts.keys makes them, and the
signatures and the check are the ones mall.contracts.signing runs. Prints p50/p99 per step, the
throughput of a whole contract (render + two signatures + verify) on one core, and peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402

from mall.contracts import keys, pdf, signing  # noqa: E402
from mall.core import pdf_fonts  # noqa: E402


def document(lines: int) -> pdf.ContractDoc:
    return pdf.ContractDoc(
        contract_no="HT2026120700000001",
        order_no="WS2026120700000001",
        mode="supermarket",
        mode_label="网上超市",
        site_name="阳光卖场",
        region_name="河南省",
        buyer=pdf.Party("某某市第一中学", "12410100000000001X", "某某市某某路 1 号", "0371-60000000"),
        supplier=pdf.Party("某某科技有限公司", "91410100000000002Y", "某某市某某路 2 号", "0371-60000001"),
        supplier_is_sme=True,
        lines=[
            pdf.Line(
                i,
                "A02010105",
                f"台式计算机 {i}",
                "品牌",
                "i5/16G/512G SSD/23.8 英寸",
                "2",
                "台",
                "4800.00",
                "9600.00",
            )
            for i in range(1, lines + 1)
        ],
        total=f"{9600 * lines}.00",
        total_upper="（大写金额）",
        delivery_place="某某市某某路 1 号 行政楼",
        delivery_term="合同备案之日起 15 日内交付全部货物",
        acceptance_plan="甲方收到货物后组织验收。",
        payment_terms="验收合格之日起 30 日内付清。",
        planned_payment="验收合格之日起第 30 日前付清全部价款",
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(runs: int, lines: int) -> None:
    ca = keys.make_pair(keys.CA_NAME, "SUNSHINE-MALL-CA", years=30)
    buyer = keys.make_pair("某某市第一中学", "12410100000000001X", issuer=ca)
    supplier = keys.make_pair("某某科技有限公司", "91410100000000002Y", issuer=ca)
    chain = [ca.certificate().public_bytes(serialization.Encoding.DER)]
    doc = document(lines)
    font = pdf_fonts.font_name()
    times: dict[str, list[float]] = {"render": [], "sign (supplier)": [], "sign (buyer)": [], "verify": []}
    size = 0
    started = time.perf_counter()
    for _ in range(runs):
        t = time.perf_counter()
        data = pdf.render(doc)
        times["render"].append(time.perf_counter() - t)
        t = time.perf_counter()
        once = await signing.sign_with(data, supplier, chain, signing.FIELDS["supplier"])
        times["sign (supplier)"].append(time.perf_counter() - t)
        t = time.perf_counter()
        both = await signing.sign_with(once, buyer, chain, signing.FIELDS["buyer"])
        times["sign (buyer)"].append(time.perf_counter() - t)
        t = time.perf_counter()
        checked = await signing.verify(both, chain)
        times["verify"].append(time.perf_counter() - t)
        assert checked.signed_by_both, checked
        size = len(both)
    total = time.perf_counter() - started
    print(f"contract of {lines} lines, {runs} runs, font {font}, signed PDF {size / 1024:.0f} KiB")
    for step, values in times.items():
        print(
            f"  {step:16s} p50 {statistics.median(values) * 1000:7.1f} ms   p99 {pct(values, 0.99) * 1000:7.1f} ms"
        )
    print(f"  whole contract   {runs / total:7.1f} per second on one core")
    print(f"  peak memory      {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:7.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--lines", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.lines))

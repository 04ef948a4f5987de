"""What the backup, restore and witness tests share: the `mall` command run to its end, and a deal
record's payload for staging ledger records directly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def mall_cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m mall.cli <args>` from the project root, with `env`; its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "mall.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def deal_payload(n: int, prefix: str = "BK") -> dict[str, Any]:
    """A supermarket deal record numbered `n` (its amount is n yuan)."""
    return {
        "kind": "deal",
        "mode": "supermarket",
        "order_no": f"{prefix}{n:06d}",
        "deal_date": "2026-12-06",
        "buyer": {"name": "郑州市第一中学", "credit_code": "12410100MB0000000X"},
        "supplier": {"name": "河南华信办公设备有限公司", "credit_code": "91410100MA0000000X"},
        "total_amount": f"{n}.00",
    }

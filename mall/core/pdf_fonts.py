"""The CJK font the mall's PDFs are set in, and the one lock they are built under.

Debian's `fonts-wqy-microhei` (installed by `./dev`) is embedded as a subset, so a file reads the same
on any machine; without it ReportLab's built-in STSong-Light (not embedded) is used, and the log says
so. ReportLab keeps a font's subsets in shared state, so documents set in it are built one at a
time (`build`), whichever thread builds them: the e-contract (mall.contracts.pdf) and the acceptance
report (mall.orders.acceptance_pdf).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont

log = logging.getLogger("mall.pdf")

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
EMBEDDED_FONT = "MallCJK"
FALLBACK_FONT = "STSong-Light"
_BUILDING = threading.Lock()
_REGISTERING = threading.Lock()


def font_name(path: str = "") -> str:
    """Register the CJK font once (`path`, else the first of FONT_CANDIDATES found); the name to set
    text in."""
    with _REGISTERING:
        registered = pdfmetrics.getRegisteredFontNames()
        if EMBEDDED_FONT in registered:
            return EMBEDDED_FONT
        for candidate in (path, *FONT_CANDIDATES) if path else FONT_CANDIDATES:
            if candidate and Path(candidate).is_file():
                kwargs = {"subfontIndex": 0} if candidate.endswith(".ttc") else {}
                pdfmetrics.registerFont(TTFont(EMBEDDED_FONT, candidate, **kwargs))
                return EMBEDDED_FONT
        if FALLBACK_FONT not in registered:
            log.warning("no CJK TrueType font found (apt-get install fonts-wqy-microhei); using STSong-Light")
            pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_FONT))
        return FALLBACK_FONT


def build(doc: Any, story: list[Any]) -> None:
    """`doc.build(story)`, one document at a time."""
    with _BUILDING:
        doc.build(story)

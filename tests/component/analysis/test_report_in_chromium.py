"""The HTML report, opened offline in Debian's headless Chromium and screenshotted.

The page is judged by its pixels, not its markup: the screenshot must show the preview line and
the active line in their colours, which only happens if the inline SVG charts were laid out and
painted. Chromium runs with networking features off and a fresh profile; the page references
nothing outside itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from analysis.checks import Side
from analysis.judge import Phase, judge
from analysis.prometheus import Prometheus
from analysis.report import ACTIVE_COLOUR, PREVIEW_COLOUR, html_report
from tests.component.analysis.conftest import WINDOW, System

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]  # fmt: skip


def read_png(data: bytes) -> npt.NDArray[np.uint8]:
    """Pixels (height, width, channels) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError("the screenshot is not a PNG")
    pos, idat, header = 8, bytearray(), b""
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
    depth, colour, interlace = header[8], header[9], header[12]
    if depth != 8 or colour not in (2, 6) or interlace:
        raise AssertionError(f"unexpected PNG format: depth {depth}, colour type {colour}")
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(bytes(idat)), dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.int64)
    previous = np.zeros(stride, dtype=np.int64)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int64)
        if kind == 0:
            row = line
        elif kind == 1:  # Sub: a running sum per channel, modulo 256
            row = np.cumsum(line.reshape(width, bpp), axis=0).reshape(stride) % 256
        elif kind == 2:
            row = (line + previous) % 256
        else:  # Average and Paeth depend on the byte just decoded: one at a time
            row = np.zeros(stride, dtype=np.int64)
            for x in range(stride):
                a = int(row[x - bpp]) if x >= bpp else 0
                b = int(previous[x])
                c = int(previous[x - bpp]) if x >= bpp else 0
                if kind == 3:
                    predictor = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                row[x] = (int(line[x]) + predictor) % 256
        out[y], previous = row, row
    return out.reshape(height, width, bpp)[:, :, :3].astype(np.uint8)


def count_colour(pixels: npt.NDArray[np.uint8], colour: str, *, tolerance: int = 40) -> int:
    target = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int64)
    distance = np.abs(pixels.astype(np.int64) - target).sum(axis=2)
    return int((distance <= tolerance).sum())


def screenshot(page: Path, out: Path, profile: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}",
         "--window-size=1000,1500", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if result.returncode != 0 or not out.exists():
        raise AssertionError(
            f"chromium failed (exit {result.returncode}):\n{result.stderr[-2000:]}"
        )


def test_html_report_renders_preview_and_active_charts(system: System, tmp_path: Path) -> None:
    with Prometheus(system.prometheus_url, timeout=5) as prometheus:
        verdict = judge(prometheus, system.checks(), preview=Side.parse("preview", "1.3.0"),
                        active=Side.parse("active", "1.0.0"), window=WINDOW)
    assert verdict.phase is Phase.FAILED
    page = tmp_path / "report.html"
    page.write_text(html_report(verdict), encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page.read_text())

    shot = tmp_path / "report.png"
    screenshot(page, shot, tmp_path / "profile")
    pixels = read_png(shot.read_bytes())

    # A 2.5 px line across a 680 px plot paints well over a thousand pixels in its colour.
    assert count_colour(pixels, PREVIEW_COLOUR) > 1000
    assert count_colour(pixels, ACTIVE_COLOUR) > 1000
    # The Failed banner is painted too: a large block of its red.
    assert count_colour(pixels, "#c92a2a", tolerance=10) > 5000


def test_png_reader_reads_what_chromium_paints(tmp_path: Path) -> None:
    """A page of three known blocks: the reader must find each colour where it was painted."""
    page = tmp_path / "blocks.html"
    page.write_text(
        '<body style="margin:0;background:#fff">'
        f'<div style="width:200px;height:100px;background:{PREVIEW_COLOUR}"></div>'
        f'<div style="width:300px;height:100px;background:{ACTIVE_COLOUR}"></div></body>'
    )
    shot = tmp_path / "blocks.png"
    screenshot(page, shot, tmp_path / "profile")
    pixels = read_png(shot.read_bytes())
    assert count_colour(pixels, PREVIEW_COLOUR, tolerance=6) == pytest.approx(200 * 100, rel=0.02)
    assert count_colour(pixels, ACTIVE_COLOUR, tolerance=6) == pytest.approx(300 * 100, rel=0.02)

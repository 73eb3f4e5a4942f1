"""Text from page images (scanned PDF pages, png/jpg files) by OCR, offline on the CPU: RapidOCR on
onnxruntime, whose detection, direction and recognition models ship inside its wheel (no download
at run time). Lines are rebuilt from the recognised boxes, and the lines of one paragraph that the
page wrapped are joined again, so that a figure split over two lines ("…参训干部86" / "0人次")
reads whole."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# A scan page is rendered so that its longer side has about this many pixels: RapidOCR's own
# max_side_len (2000) scales anything larger down again, so more pixels only cost time.
RENDER_LONG_SIDE = 2000
# Text is detected on the page scaled down to this long side (recognition still reads the lines at
# full resolution): on the test scans rendered at 2000 pixels, detection at full size took 3.1 s a
# page, at 1280 2.5 s and at 960 1.7 s, all without an error; 1280 keeps 五号 print of an A4 page
# about 16 pixels high for the detector.
DETECT_LONG_SIDE = 1280
# A line ends its paragraph unless it reaches this close (in character heights) to the right edge
# of the page's text: on the test scans, wrapped lines end within 0.1 character heights of the
# edge, and a paragraph's last line at least 3 short of it.
WRAP_SLACK = 1.0
# A line is centred (a title, not wrapped text) when it starts more than this many character heights
# right of the text's left edge and its margins are equal within a character height; an indented
# first line of a paragraph starts 2 heights in, with a right margin as wide as the left one.
CENTRED_INDENT = 1.5
# Words on one line further apart than this many character heights are table cells or columns,
# kept apart by a space; closer ones are one run of text.
CELL_GAP = 1.5


@dataclass(frozen=True)
class OcrLimits:
    max_pages: int = 300  # a scan with more pages is refused (an annual report has 5-40)
    max_seconds: float = 900.0  # OCR of one file stops after this long (0.4-0.5 A4 pages/s on 2 cores: ~400 pages)
    min_confidence: float = 0.8  # mean recognition confidence below which a file is flagged for review


@dataclass(frozen=True)
class OcrPage:
    text: str
    confidence: float  # mean of the lines' recognition scores, weighted by their lengths; 0 when blank
    chars: int


class OcrError(ValueError):
    """OCR cannot run or gave up; the message says why."""


_engine = None
_engine_lock = threading.Lock()


def engine():
    """The OCR engine, loaded once (about a second) and shared: its sessions are thread-safe."""
    global _engine
    with _engine_lock:
        if _engine is None:
            try:
                from rapidocr import RapidOCR
            except ImportError as exc:  # an install without it: say what to install
                raise OcrError(f"OCR is not installed ({exc}); pip install rapidocr onnxruntime") from exc
            _engine = RapidOCR(params={"Global.log_level": "warning", "Det.limit_type": "max",
                                       "Det.limit_side_len": DETECT_LONG_SIDE})
        return _engine


def ocr_image(image) -> OcrPage:
    """The text of one page image (a PIL image or a numpy array)."""
    import numpy as np

    pixels = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else image
    result = engine()(pixels)
    if result.txts is None or not len(result.txts):
        return OcrPage("", 0.0, 0)
    boxes = [(float(min(p[0] for p in b)), float(min(p[1] for p in b)), float(max(p[0] for p in b)),
              float(max(p[1] for p in b)), t, float(s)) for b, t, s in zip(result.boxes, result.txts, result.scores, strict=True)]
    chars = sum(len(b[4]) for b in boxes)
    confidence = sum(len(b[4]) * b[5] for b in boxes) / max(chars, 1)
    return OcrPage(page_text(boxes, pixels.shape[1]), confidence, chars)


def page_text(boxes: list[tuple[float, float, float, float, str, float]], width: float) -> str:
    """Lines of text from recognised boxes (left, top, right, bottom, text, score) on a page
    `width` pixels wide: boxes whose vertical middles lie within each other's heights are one line,
    read left to right; a line that runs to the right edge of the text continues into the next (the
    page wrapped it), unless it is centred (a title)."""
    lines: list[list[tuple]] = []
    for box in sorted(boxes, key=lambda b: (b[1] + b[3]) / 2):
        middle = (box[1] + box[3]) / 2
        if lines and abs(middle - _middle(lines[-1])) <= (box[3] - box[1]) / 2:
            lines[-1].append(box)
        else:
            lines.append([box])
    right, left = max(b[2] for b in boxes), min(b[0] for b in boxes)
    out: list[str] = []
    joined = False
    for line in lines:
        line.sort(key=lambda b: b[0])
        height = sum(b[3] - b[1] for b in line) / len(line)
        text = line[0][4]
        for before, box in zip(line, line[1:], strict=False):
            text += (" " if box[0] - before[2] > CELL_GAP * height else "") + box[4]
        if joined:
            out[-1] += text
        else:
            out.append(text)
        start, end = line[0][0], line[-1][2]
        centred = start - left > CENTRED_INDENT * height and abs(start - (width - end)) <= height
        joined = right - end <= WRAP_SLACK * height and not centred and not text.endswith(("。", "：", ":", "；"))
    return "\n".join(out)


def _middle(line: list[tuple]) -> float:
    return sum((b[1] + b[3]) / 2 for b in line) / len(line)


def ocr_pages(images: Iterable, count: int, limits: OcrLimits, name: str = "",
              progress: Callable[[int, int], None] | None = None) -> list[OcrPage]:
    """OCR of `count` page images, in order, within the limits (OcrError past them). `progress` is
    called with (pages done, count); without it a progress bar shows on stderr when it is a
    terminal."""
    if count > limits.max_pages:
        raise OcrError(f"the scan has {count} pages, more than the {limits.max_pages} OCR reads a file "
                       f"([ocr] max_pages)")
    bar = None
    if progress is None and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=count, unit="page", desc=f"OCR {name}"[:40], file=sys.stderr, leave=False)
    started = time.monotonic()
    pages = []
    try:
        for n, image in enumerate(images, 1):
            pages.append(ocr_image(image))
            if progress:
                progress(n, count)
            if bar:
                bar.update(1)
            if time.monotonic() - started > limits.max_seconds and n < count:
                raise OcrError(f"OCR stopped after {limits.max_seconds:g} s at page {n} of {count} "
                               f"([ocr] max_seconds)")
    finally:
        if bar:
            bar.close()
    return pages

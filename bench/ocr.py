"""OCR speed and accuracy on the test scans (tests/data/scan_page*.png, made by
tests/data/make_fixtures.py): a scanned PDF of --pages pages (the two test pages in turn) is read as
ingest reads it, and pages/s printed; each page's text is compared with the text rendered on it
(character accuracy: 1 - edit distance / length, after NFKC and without spaces), as it is, as an
A4 page scanned at 300 dpi with its text at the size of 五号 print (a PDF page, rendered for OCR at
2000 pixels as ingest does), and degraded (1.5° skew, 0.75 scale, JPEG quality 40).

    python bench/ocr.py [--pages 20]
"""

import argparse
import os
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from retriever.clean import PAGE_BREAK  # noqa: E402
from retriever.ocr import engine  # noqa: E402
from retriever.readers import read_report  # noqa: E402
from tests.data.make_fixtures import PAGES  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def plain(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def as_is(image, path: Path) -> None:
    image.save(path)


def a4_print(image, path: Path) -> None:
    """The page's text at 五号 size (10.5 pt: 44 pixels at 300 dpi; the test pages' characters are
    30 pixels) on an A4 sheet scanned at 300 dpi, as a PDF page."""
    from PIL import Image

    scale = 44 / 30
    text = image.resize((round(image.width * scale), round(image.height * scale)))
    sheet = Image.new("L", (2480, 3508), 246)
    sheet.paste(text, (0, 0))
    sheet.save(path, resolution=300)


def degraded(image, path: Path) -> None:
    image = image.rotate(1.5, expand=True, fillcolor=246)
    image = image.resize((round(image.width * 0.75), round(image.height * 0.75)))
    image.save(path, quality=40)


def full_a4():
    """An A4 sheet at 300 dpi filled with the test pages' lines at 五号 size: ~40 lines, as a
    report's page of body text."""
    from PIL import Image, ImageOps

    scale = 44 / 30
    sheet = Image.new("L", (2480, 3508), 246)
    y = 150
    while True:
        for name in PAGES:
            image = Image.open(DATA / name).convert("L")
            box = ImageOps.invert(image).point(lambda v: 255 if v > 40 else 0).getbbox()
            text = image.crop((0, box[1] - 10, image.width, box[3] + 10))
            text = text.resize((round(text.width * scale), round(text.height * scale)))
            if y + text.height > sheet.height - 150:
                return sheet
            sheet.paste(text, (150, y))
            y += text.height


VARIANTS = [("as is", as_is, ".png"), ("A4 300dpi", a4_print, ".pdf"), ("degraded", degraded, ".jpg")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=20)
    args = ap.parse_args()

    names = list(PAGES)
    truth = {name: plain("".join(text for _, text in PAGES[name])) for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        for variant, make, suffix in VARIANTS:
            for name in names:
                path = Path(tmp) / f"{variant}-{name}{suffix}"
                make(Image.open(DATA / name).convert("L"), path)
                errors = distance(plain(read_report(path).text), truth[name])
                print(f"{variant:>9} {name}: {len(truth[name])} characters, {errors} wrong, "
                      f"character accuracy {1 - errors / len(truth[name]):.4f}")
    engine()  # loaded once per process (~1 s), not counted
    for kind, page, dpi in (("test pages (8-9 lines each)", None, 120), ("full A4 pages of 五号 text", full_a4(), 300)):
        with tempfile.TemporaryDirectory() as tmp:
            pdf = Path(tmp) / "scan.pdf"
            images = [page or Image.open(DATA / names[n % len(names)]).convert("L") for n in range(args.pages)]
            images[0].save(pdf, save_all=True, append_images=images[1:], resolution=dpi)
            started = time.perf_counter()
            text = read_report(pdf).text
            seconds = time.perf_counter() - started
        pages = text.count(PAGE_BREAK)
        print(f"{kind}: {pages} scanned pages in {seconds:.1f} s: {pages / seconds:.2f} pages/s on {os.cpu_count()} "
              f"cores (rendering and OCR), {len(text) // pages} characters a page")


if __name__ == "__main__":
    main()

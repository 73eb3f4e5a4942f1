"""OCR speed and accuracy on the test scans (tests/data/scan_page*.png, made by
tests/data/make_fixtures.py): a scanned PDF of --pages pages (the two test pages in turn) is read as
ingest reads it, and pages/s printed; each page's text is compared with the text rendered on it
(character accuracy: 1 - edit distance / length, after NFKC and without spaces).

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

from retriever.ocr import engine  # noqa: E402
from retriever.readers import PAGE_BREAK, read_report  # noqa: E402
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=20)
    args = ap.parse_args()
    from PIL import Image

    names = list(PAGES)
    truth = {name: plain("".join(text for _, text in PAGES[name])) for name in names}
    for name in names:
        got = plain(read_report(DATA / name).text)
        errors = distance(got, truth[name])
        print(f"{name}: {len(truth[name])} characters, {errors} wrong, character accuracy {1 - errors / len(truth[name]):.4f}")
    engine()  # loaded once per process (~1 s), not counted
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "scan.pdf"
        images = [Image.open(DATA / names[n % len(names)]).convert("L") for n in range(args.pages)]
        images[0].save(pdf, save_all=True, append_images=images[1:], resolution=120)
        started = time.perf_counter()
        text = read_report(pdf).text
        seconds = time.perf_counter() - started
    pages = text.count(PAGE_BREAK)
    print(f"{pages} scanned pages in {seconds:.1f} s: {pages / seconds:.2f} pages/s on {os.cpu_count()} cores "
          f"(rendering and OCR)")


if __name__ == "__main__":
    main()

"""Formats beyond plain text: scanned PDFs and images by OCR (with their pages in citations),
tables in docx and html, .ofd, .doc/.wps, and reports fetched by URL from a server on 127.0.0.1.
The scan images are tests/data/scan_page*.png (made by tests/data/make_fixtures.py)."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

import pytest

from .conftest import ServerThread, load_index

DATA = Path(__file__).resolve().parent / "data"
SCANS = [DATA / "scan_page1.png", DATA / "scan_page2.png"]


def scanned_pdf(path: Path, pages=SCANS) -> Path:
    """A PDF of page images only, as a scanner makes it: no text layer."""
    from PIL import Image

    images = [Image.open(p).convert("L") for p in pages]
    images[0].save(path, save_all=True, append_images=images[1:], resolution=120)
    return path


def answer(config, index, embedder, question):
    from bot.service import open_service

    return open_service(config, index, embedder=embedder).composer.answer(question)


def generation(index):
    return (Path(index) / "CURRENT").read_text(encoding="utf-8").strip()


# ---- OCR ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scan_index(tmp_path_factory, use_embedder):
    from retriever.ingest import ingest

    folder = tmp_path_factory.mktemp("scans")
    scanned_pdf(folder / "青山区司法局2023年报告扫描件.pdf")
    root = tmp_path_factory.mktemp("scan-index")
    result = ingest(root, [folder], use_embedder)
    assert [f.status for f in result.files] == ["added"], result.files
    assert not result.files[0].review  # read with confidence: no review asked
    return root


def test_a_scanned_pdf_is_answered_with_its_figure_and_page(scan_index, config, use_embedder):
    a = answer(config, scan_index, use_embedder, "青山区司法局2023年出具了多少份法律意见书？")
    assert a.found and "95份" in a.text, a.text
    c = a.citations[0]
    assert "出具法律意见书95份" in c.excerpt and c.page == 2 and c.year == 2023
    from bot.render import answer_text

    assert "第2页" in answer_text(a)
    # a figure the page wrapped over two lines ("…参训干部86" / "0人次") is read whole, on page 1
    a = answer(config, scan_index, use_embedder, "青山区司法局2023年参训干部多少人次？")
    assert a.found and "860人次" in a.text and a.citations[0].page == 1
    assert a.to_dict()["citations"][0]["page"] == 1


def test_an_image_is_answered_with_its_figure(tmp_path, config, use_embedder):
    from retriever.ingest import ingest

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "page.png").write_bytes(SCANS[0].read_bytes())
    result = ingest(tmp_path / "idx", [folder], use_embedder)
    assert result.files[0].status == "added" and result.files[0].org == "青山区司法局"
    a = answer(config, tmp_path / "idx", use_embedder, "青山区司法局2023年开展普法主题宣传活动多少场？")
    assert a.found and "46场" in a.text and a.citations[0].page == 1


def test_ocr_text_keeps_lines_and_joins_wrapped_ones():
    from retriever.readers import read_file

    text = read_file(SCANS[1])
    lines = text.splitlines()
    assert "全年办理行政复议案件37件，办理行政应诉案件21件，出具法律意见书95份，行政机关负责人出庭应诉率100%。" in lines
    assert "三、下一步工作" in lines and "2024年1月20日" in lines


def test_bad_scans_fail_alone_and_leave_the_index_intact(scan_index, tmp_path, config, use_embedder):
    import shutil

    from PIL import Image

    from retriever.ingest import ingest
    from retriever.ocr import OcrLimits

    index = tmp_path / "idx"
    shutil.copytree(scan_index, index)
    before = generation(index)
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.new("L", (900, 1200), 250).save(bad / "blank.png")
    scanned_pdf(bad / "blank.pdf", [bad / "blank.png"])
    (bad / "corrupt.png").write_bytes(SCANS[0].read_bytes()[:300])  # cut off: a damaged download
    (bad / "notimage.jpg").write_bytes(b"this is no image")
    scanned_pdf(bad / "long.pdf")
    result = ingest(index, [bad], use_embedder, ocr=OcrLimits(max_pages=1))
    errors = {Path(f.path).name: f.error for f in result.files}
    assert {f.status for f in result.files} == {"failed"}
    assert "no text found" in errors["blank.png"] and "blank scan" in errors["blank.png"]
    assert "no text found" in errors["blank.pdf"] and "OCR read nothing" in errors["blank.pdf"]
    assert "not a readable image" in errors["corrupt.png"] and "damaged" in errors["corrupt.png"]
    assert "not a readable image" in errors["notimage.jpg"]
    assert "2 pages, more than the 1" in errors["long.pdf"] and "max_pages" in errors["long.pdf"]
    assert generation(index) == before
    a = answer(config, index, use_embedder, "青山区司法局2023年出具了多少份法律意见书？")
    assert a.found and "95份" in a.text


def test_low_ocr_confidence_asks_for_review(tmp_path):
    from retriever.ingest import parse_report
    from retriever.ocr import OcrLimits

    path = tmp_path / "page.png"
    path.write_bytes(SCANS[0].read_bytes())
    report = parse_report(path, ocr=OcrLimits(min_confidence=1.0))  # no page reads perfectly
    assert any("OCR" in r and "min_confidence" in r for r in report.review)
    assert not parse_report(path).review


def test_text_pdf_pages_are_kept(tmp_path):
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    from retriever.ingest import parse_report

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    path = tmp_path / "r.pdf"
    c = canvas.Canvas(str(path))
    c.setFont("STSong-Light", 12)
    c.drawString(40, 800, "白石镇2023年法治政府建设年度报告")
    c.drawString(40, 780, "2023年，白石镇人民政府全面推进依法行政。")
    c.showPage()
    c.setFont("STSong-Light", 12)
    c.drawString(40, 800, "全年办理行政复议案件12件。")
    c.save()
    report = parse_report(path)
    assert len(report.pages) == 2
    assert report.page_at(report.text.index("行政复议")) == 2 and report.page_at(0) == 1
    plain = tmp_path / "r.txt"
    plain.write_text("白石镇2023年法治政府建设年度报告\n全年办理行政复议案件12件。", encoding="utf-8")
    assert parse_report(plain).pages == () and parse_report(plain).page_at(5) is None  # a text file has no pages

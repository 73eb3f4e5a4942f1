"""Formats beyond plain text: scanned PDFs and images by OCR (with their pages in citations),
tables in docx and html, .ofd, .doc/.wps, and reports fetched by URL from a server on 127.0.0.1.
The scan images are tests/data/scan_page*.png (made by tests/data/make_fixtures.py)."""

from __future__ import annotations

import asyncio
import os
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
    Image.open(SCANS[0]).crop((0, 0, 1000, 130)).save(bad / "title-only.png")  # a picture with a line of text
    scanned_pdf(bad / "long.pdf")
    result = ingest(index, [bad], use_embedder, ocr=OcrLimits(max_pages=1))
    errors = {Path(f.path).name: f.error for f in result.files}
    assert {f.status for f in result.files} == {"failed"}
    assert "no text found" in errors["blank.png"] and "blank scan" in errors["blank.png"]
    assert "no text found" in errors["blank.pdf"] and "OCR read nothing" in errors["blank.pdf"]
    assert "not a readable image" in errors["corrupt.png"] and "damaged" in errors["corrupt.png"]
    assert "not a readable image" in errors["notimage.jpg"]
    assert "not a report page: OCR read only 21 characters" in errors["title-only.png"]
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


# ---- tables ---------------------------------------------------------------------------------------
TABLE = [["项目", "2022年", "2023年"], ["合同合法性审查", "120份", "146份"], ["规范性文件审查", "18件", "25件"]]
LEAD = ["白石镇2023年法治政府建设年度报告", "2023年，白石镇人民政府全面推进法治政府建设，现将有关情况报告如下。",
        "一、合法性审查情况", "全年合法性审查工作情况如下表："]
TAIL = ["二、下一步工作", "2024年，白石镇将继续提升依法行政水平。"]


def table_docx(path: Path) -> Path:
    from docx import Document

    doc = Document()
    for line in LEAD:
        doc.add_paragraph(line)
    table = doc.add_table(rows=len(TABLE), cols=len(TABLE[0]))
    for r, row in enumerate(TABLE):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    for line in TAIL:
        doc.add_paragraph(line)
    doc.save(path)
    return path


def table_pdf(path: Path) -> Path:
    """The report as a PDF with a text layer, its table ruled (as Word prints one)."""
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    style = ParagraphStyle("zh", fontName="STSong-Light", fontSize=12, leading=18)
    table = Table(TABLE, style=TableStyle([("FONTNAME", (0, 0), (-1, -1), "STSong-Light"),
                                           ("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    SimpleDocTemplate(str(path)).build([Paragraph(line, style) for line in LEAD] + [table]
                                       + [Paragraph(line, style) for line in TAIL])
    return path


def table_html() -> str:
    rows = "".join("<tr>" + "".join(f"<td><p>{c}</p></td>" for c in row) + "</tr>" for row in TABLE)
    body = "".join(f"<p>{line}</p>" for line in LEAD[1:])
    tail = "".join(f"<p>{line}</p>" for line in TAIL)
    return (f"<html><head><meta charset='utf-8'><title>{LEAD[0]}</title></head><body><div class='nav'>首页</div>"
            f"<div class='article'><h1>{LEAD[0]}</h1>{body}<table border='1'>{rows}</table>{tail}</div></body></html>")


def test_table_lines_keep_each_figure_with_its_headings():
    from retriever.readers import table_lines

    assert table_lines(TABLE) == ["项目 2022年 2023年", "合同合法性审查 · 2022年：120份。", "合同合法性审查 · 2023年：146份。",
                                  "规范性文件审查 · 2022年：18件。", "规范性文件审查 · 2023年：25件。"]
    # a caption merged across the columns, an empty cell, a total row without heading
    assert table_lines([["2023年审查情况"] * 3, ["", "件数", "占比"], ["合同", "146份", ""], ["", "200份", "100%"]]) == [
        "2023年审查情况", "件数 占比", "合同 · 件数：146份。", "件数：200份；占比：100%。"]
    # no figures (a form laid out as a table) or one column: rows as the text reads
    assert table_lines([["单位", "青山区司法局"], ["联系人", "张三"]]) == ["单位 青山区司法局", "联系人 张三"]
    assert table_lines([["一、主要工作"], ["二、存在问题"]]) == ["一、主要工作", "二、存在问题"]


def test_docx_pdf_and_html_tables_read_in_place(tmp_path):
    from retriever.readers import read_file

    for made in (table_docx(tmp_path / "r.docx"), table_pdf(tmp_path / "r.pdf")):
        lines = read_file(made).splitlines()
        assert lines.index("全年合法性审查工作情况如下表：") < lines.index("合同合法性审查 · 2023年：146份。") < lines.index(
            "二、下一步工作"), lines
    html = tmp_path / "r.html"
    html.write_text(table_html(), encoding="utf-8")
    lines = read_file(html).splitlines()
    assert "合同合法性审查 · 2023年：146份。" in lines and "规范性文件审查 · 2022年：18件。" in lines


def test_a_layout_table_is_read_as_text(tmp_path):
    from retriever.readers import read_file

    paragraph = "2023年，白石镇人民政府坚持以习近平法治思想为指导，全面推进法治政府建设，全年办理行政复议案件12件，" * 2
    html = tmp_path / "r.html"
    html.write_text(f"<html><body><table><tr><td>导航</td><td><p>{LEAD[0]}</p><p>{paragraph}</p></td></tr>"
                    f"<tr><td></td><td>页脚</td></tr></table></body></html>", encoding="utf-8")
    assert paragraph in read_file(html).splitlines()


@pytest.mark.parametrize("kind", ["docx", "pdf", "html"])
def test_the_asked_years_cell_is_answered(kind, tmp_path, config, use_embedder):
    from retriever.ingest import ingest

    folder = tmp_path / "in"
    folder.mkdir()
    if kind == "docx":
        table_docx(folder / "baishi.docx")
    elif kind == "pdf":
        table_pdf(folder / "baishi.pdf")
    else:
        (folder / "baishi.html").write_text(table_html(), encoding="utf-8")
    index = tmp_path / "idx"
    assert ingest(index, [folder], use_embedder).files[0].status == "added"
    for question, figure, wrong in (("白石镇2023年合同合法性审查多少份？", "146份", "120份"),
                                    ("白石镇2023年审查了多少份合同？", "146份", "120份"),
                                    ("白石镇2023年规范性文件审查多少件？", "25件", "18件")):
        a = answer(config, index, use_embedder, question)
        assert a.found and figure in a.text and wrong not in a.text, (question, a.text)
        c = a.citations[0]
        assert c.excerpt[c.mark[0] : c.mark[1]] == figure and "· 2023年：" + figure in c.excerpt


# ---- reports by URL ---------------------------------------------------------------------------------
REPORT_PAGE = """<html><head><meta charset="utf-8"><title>红星街道办事处2023年法治政府建设年度报告_某区人民政府</title></head>
<body><div class="nav">首页 政务公开</div><div class="article"><h1>红星街道办事处2023年法治政府建设年度报告</h1>
<p>发布时间：2024-01-25</p>
<div class="TRS_Editor"><p>2023年，红星街道办事处坚持以习近平法治思想为指导，全面推进法治政府建设，现将有关情况报告如下。</p>
<p>一、主要工作</p><p>全年开展法治宣传活动{events}场，调解矛盾纠纷310件，调解成功率98%。</p>
<p>街道严格落实重大行政决策程序，全年重大行政决策均经合法性审查，行政规范性文件备案审查率达到100%。</p>
<p>二、下一步工作</p><p>2024年，红星街道办事处将继续推进依法行政，提升基层治理法治化水平。</p></div></div></body></html>"""
WRAPPER_PAGE = """<html><head><meta charset="utf-8"><title>白石镇2023年法治政府建设年度报告</title></head><body>
<div class="article"><h1>白石镇2023年法治政府建设年度报告</h1><p>现将《白石镇2023年法治政府建设年度报告》予以公开。</p>
<p>附件：<a href="/files/%E7%99%BD%E7%9F%B3%E9%95%87%E6%8A%A5%E5%91%8A.docx">白石镇2023年法治政府建设年度报告.docx</a></p>
<p><a href="/files/form.pdf">政府信息公开申请表.pdf</a></p></div></body></html>"""
NEWS_PAGE = """<html><head><meta charset="utf-8"><title>新闻动态</title></head><body><div class="article"><h1>新闻动态</h1>
<p>本周天气晴好，街道组织居民开展春季植树活动，共种植树木二百余株，居民参与热情高涨。</p></div></body></html>"""
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A web site on 127.0.0.1: a report page, a notice wrapping a docx report, a page that is no
    report, a 404, redirects, a slow page, a large file. state["events"] changes the report page."""

    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Route

    docx = table_docx(tmp_path_factory.mktemp("site") / "baishi.docx").read_bytes()
    state = {"events": 28}

    async def slow(request):
        await asyncio.sleep(3)
        return HTMLResponse(REPORT_PAGE.format(events=1))

    routes = [
        Route("/ready", lambda r: PlainTextResponse("ok")),
        Route("/report.html", lambda r: HTMLResponse(REPORT_PAGE.format(events=state["events"]))),
        Route("/notice.html", lambda r: HTMLResponse(WRAPPER_PAGE)),
        Route("/files/白石镇报告.docx", lambda r: Response(docx, media_type=DOCX)),
        Route("/news.html", lambda r: HTMLResponse(NEWS_PAGE)),
        # a report page with a form attached (/files/form.pdf is a 404: following it would fail)
        Route("/with-form.html", lambda r: HTMLResponse(REPORT_PAGE.format(events=28).replace(
            "</body>", '<a href="/files/form.pdf">政府信息公开申请表.pdf</a></body>'))),
        Route("/moved", lambda r: RedirectResponse("/report.html", status_code=302)),
        Route("/loop", lambda r: RedirectResponse("/loop", status_code=302)),
        Route("/slow.html", slow),
        Route("/big.txt", lambda r: PlainTextResponse("报告" * 20_000)),
        Route("/data.bin", lambda r: Response(b"\x00\x01binary", media_type="application/octet-stream")),
    ]
    with ServerThread(Starlette(routes=routes), ready_path="/ready") as server:
        yield server.url, state


LIMITS = {"timeout_seconds": 0.5, "max_seconds": 10, "max_bytes": 50_000, "max_redirects": 3}


def test_url_reports_are_answered_with_their_url_as_source(site, tmp_path, config, use_embedder):
    from retriever.fetch import FetchLimits
    from retriever.ingest import ingest

    base, state = site
    index = tmp_path / "idx"
    urls = [f"{base}/report.html", f"{base}/notice.html"]
    result = ingest(index, urls, use_embedder, fetch=FetchLimits(**LIMITS))
    assert [(f.path, f.status) for f in result.files] == [(u, "added") for u in urls], result.files
    a = answer(config, index, use_embedder, "红星街道办事处2023年开展法治宣传活动多少场？")
    assert a.found and "28场" in a.text
    assert a.citations[0].source == urls[0] and a.citations[0].url == urls[0]
    from bot.render import answer_text

    assert urls[0] in answer_text(a)
    # the notice is followed to its attached report (not the form beside it), a docx with a table
    a = answer(config, index, use_embedder, "白石镇2023年合同合法性审查多少份？")
    assert a.found and "146份" in a.text
    assert a.citations[0].source == urls[1] and a.citations[0].url == f"{base}/files/%E7%99%BD%E7%9F%B3%E9%95%87%E6%8A%A5%E5%91%8A.docx"
    from bot.service import open_service

    assert {r.source for r in open_service(config, index, embedder=use_embedder).index.reports} == set(urls)

    # fetched again unchanged: nothing changes; the page changed: its report is updated
    before = generation(index)
    again = ingest(index, urls, use_embedder, fetch=FetchLimits(**LIMITS))
    assert [f.status for f in again.files] == ["unchanged", "unchanged"] and generation(index) == before
    state["events"] = 30
    try:
        changed = ingest(index, urls, use_embedder, fetch=FetchLimits(**LIMITS))
    finally:
        state["events"] = 28
    assert [f.status for f in changed.files] == ["updated", "unchanged"] and changed.reports == 2
    assert "30场" in answer(config, index, use_embedder, "红星街道办事处2023年开展法治宣传活动多少场？").text


def test_bad_urls_fail_alone_and_leave_the_index_intact(site, tmp_path, use_embedder):
    from retriever.fetch import FetchLimits
    from retriever.ingest import ingest

    base, _ = site
    index = tmp_path / "idx"
    ingest(index, [f"{base}/report.html"], use_embedder, fetch=FetchLimits(**LIMITS))
    before = generation(index)
    bad = {"news": f"{base}/news.html", "missing": f"{base}/missing.html", "slow": f"{base}/slow.html",
           "loop": f"{base}/loop", "big": f"{base}/big.txt", "binary": f"{base}/data.bin",
           "refused": "http://127.0.0.1:9/report.html"}
    result = ingest(index, list(bad.values()), use_embedder, fetch=FetchLimits(**LIMITS))
    errors = {f.path: f.error for f in result.files}
    assert {f.status for f in result.files} == {"failed"} and set(errors) == set(bad.values())
    assert "not a report" in errors[bad["news"]]
    assert "404" in errors[bad["missing"]]
    assert "no answer within 0.5 s" in errors[bad["slow"]] and "timeout_seconds" in errors[bad["slow"]]
    assert "more than 3 redirects" in errors[bad["loop"]]
    assert "larger than" in errors[bad["big"]] and "max_bytes" in errors[bad["big"]]
    assert "not a report file" in errors[bad["binary"]]
    assert "cannot fetch it" in errors[bad["refused"]]
    assert generation(index) == before and result.reports == 1


def test_a_redirected_url_keeps_the_url_given(site, tmp_path, use_embedder):
    from retriever.fetch import FetchLimits
    from retriever.ingest import ingest
    from retriever.store import read_manifest  # noqa: F401  (the index format is the current one)

    base, _ = site
    result = ingest(tmp_path / "idx", [f"{base}/moved"], use_embedder, fetch=FetchLimits(**LIMITS))
    assert result.files[0].status == "added", result.files
    report = load_index(tmp_path / "idx", use_embedder).reports[0]
    assert report.source == f"{base}/moved" and report.url == f"{base}/report.html"


def test_a_report_page_is_not_left_for_a_form_it_attaches(site, tmp_path, use_embedder):
    from retriever.fetch import FetchLimits
    from retriever.ingest import ingest

    base, _ = site
    result = ingest(tmp_path / "idx", [f"{base}/with-form.html"], use_embedder, fetch=FetchLimits(**LIMITS))
    assert result.files[0].status == "added" and result.files[0].org == "红星街道办事处", result.files


def test_govqa_ingest_url_and_reports_show_the_url(site, tmp_path):
    from .test_cli import govqa

    base, _ = site
    index = str(tmp_path / "idx")
    env = {"GOVQA_EMBEDDER__NAME": "hashing", "GOVQA_FETCH__TIMEOUT_SECONDS": "0.5"}
    r = govqa("ingest", f"{base}/report.html", f"{base}/missing.html", "--index", index, env=env)
    assert r.returncode == 1
    assert f"added      {base}/report.html: 红星街道办事处 · 2023年" in r.stdout
    assert f"FAILED     {base}/missing.html: the server answered 404 Not Found" in r.stdout
    r = govqa("reports", "--index", index, env=env)
    assert r.returncode == 0 and r.stdout.rstrip().endswith(f"{base}/report.html")


# ---- .ofd, .doc, .wps -------------------------------------------------------------------------------
OFD_NS = "http://www.ofdspec.org/2016"


def make_ofd(path: Path, pages: list[list[tuple[float, float, str]]]) -> Path:
    """An OFD file: OFD.xml, a document listing its pages, and each page's text objects
    (x mm, y mm, text; lines of a text apart by newlines, as TextCodes one under the other)."""
    doc_pages = "".join(f'<ofd:Page ID="{n + 10}" BaseLoc="Pages/Page_{n}/Content.xml"/>' for n in range(len(pages)))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("OFD.xml", f'<ofd:OFD xmlns:ofd="{OFD_NS}" Version="1.0"><ofd:DocBody>'
                              f"<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>")
        z.writestr("Doc_0/Document.xml", f'<ofd:Document xmlns:ofd="{OFD_NS}"><ofd:Pages>{doc_pages}</ofd:Pages></ofd:Document>')
        for n, objects in enumerate(pages):
            texts = "".join(f'<ofd:TextObject ID="{i}" Boundary="{x} {y} 150 30" Font="1" Size="4">'
                            + "".join(f'<ofd:TextCode X="0" Y="{4 + 6 * n}">{line}</ofd:TextCode>' for n, line in enumerate(t.split("\n")))
                            + "</ofd:TextObject>" for i, (x, y, t) in enumerate(objects))
            z.writestr(f"Doc_0/Pages/Page_{n}/Content.xml", f'<ofd:Page xmlns:ofd="{OFD_NS}"><ofd:Content><ofd:Layer ID="1">'
                                                            f"{texts}</ofd:Layer></ofd:Content></ofd:Page>")
    return path


def test_ofd_text_by_page(tmp_path):
    from retriever.ingest import parse_report

    path = make_ofd(tmp_path / "r.ofd", [
        [(60, 30, "白石镇2023年法治政府建设年度报告"), (25, 45, "2023年，白石镇人民政府全面推进"), (95, 45.5, "法治政府建设。")],
        [(25, 30, "全年办理行政复议案件12件。\n出具法律意见书95份。")],
    ])
    report = parse_report(path)
    assert report.org == "白石镇" and report.year == 2023
    assert "2023年，白石镇人民政府全面推进法治政府建设。" in report.text.splitlines()
    assert report.page_at(report.text.index("行政复议")) == 2
    assert report.text.endswith("全年办理行政复议案件12件。\n出具法律意见书95份。")


def test_bad_ofd_files_say_why(tmp_path):
    from retriever.readers import ReportReadError, read_file

    (tmp_path / "notzip.ofd").write_bytes(b"not a zip at all")
    with pytest.raises(ReportReadError, match="not a readable .ofd file: it is not a ZIP archive"):
        read_file(tmp_path / "notzip.ofd")
    with zipfile.ZipFile(tmp_path / "empty.ofd", "w") as z:
        z.writestr("readme.txt", "x")
    with pytest.raises(ReportReadError, match="OFD.xml is missing"):
        read_file(tmp_path / "empty.ofd")
    with pytest.raises(ReportReadError, match="no text found in the .ofd file"):
        read_file(make_ofd(tmp_path / "scan.ofd", [[]]))


@pytest.mark.parametrize("suffix", [".doc", ".wps"])
def test_legacy_word_files_without_libreoffice_name_what_to_install(suffix, tmp_path, monkeypatch):
    from retriever.readers import ReportReadError, read_file

    monkeypatch.setenv("PATH", str(tmp_path))  # no soffice on it
    path = tmp_path / f"r{suffix}"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504)
    with pytest.raises(ReportReadError, match=rf"reading \{suffix} files needs LibreOffice.*apt-get install libreoffice-writer-nogui"):
        read_file(path)


def test_doc_through_libreoffice(tmp_path):
    import shutil
    import subprocess

    from retriever.readers import ReportReadError, read_file

    office = shutil.which("soffice")
    if office is None and not os.environ.get("GOVQA_REQUIRE_LIBREOFFICE"):  # .ci/run installs it and sets this
        pytest.skip("LibreOffice is not installed (apt-get install libreoffice-writer-nogui)")
    table_docx(tmp_path / "r.docx")
    subprocess.run([office, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless", "--convert-to", "doc",
                    "--outdir", str(tmp_path / "out"), str(tmp_path / "r.docx")], check=True, capture_output=True, timeout=120)
    assert "合同合法性审查 · 2023年：146份。" in read_file(tmp_path / "out" / "r.doc").splitlines()
    # a .wps holding a Word 97-2003 compound file (as WPS Office writes them; no file saved by WPS Office
    # was at hand to check) converts: LibreOffice knows a file by its content, not its name
    (tmp_path / "r.wps").write_bytes((tmp_path / "out" / "r.doc").read_bytes())
    assert "合同合法性审查 · 2023年：146份。" in read_file(tmp_path / "r.wps").splitlines()
    (tmp_path / "bad.doc").write_bytes((tmp_path / "out" / "r.doc").read_bytes()[:600])  # cut off
    with pytest.raises(ReportReadError, match="LibreOffice could not convert the .doc file"):
        read_file(tmp_path / "bad.doc")


def test_a_doc_that_is_no_word_file_is_refused_before_conversion(tmp_path):
    from retriever.readers import ReportReadError, read_file

    (tmp_path / "junk.doc").write_bytes(b"\xd0\xcf\x11\xe0 damaged, and then some text")
    with pytest.raises(ReportReadError, match="neither a Word 97-2003/WPS compound file nor RTF or HTML"):
        read_file(tmp_path / "junk.doc")


def test_ocr_reports_progress_and_stops_at_its_time_limit():
    from PIL import Image

    from retriever.ocr import OcrError, OcrLimits, ocr_pages

    blank = [Image.new("L", (400, 500), 250)] * 2
    seen = []
    assert [p.text for p in ocr_pages(blank, 2, OcrLimits(), progress=lambda done, total: seen.append((done, total)))] == ["", ""]
    assert seen == [(1, 2), (2, 2)]
    with pytest.raises(OcrError, match=r"OCR stopped after 1e-06 s at page 1 of 2 \(\[ocr\] max_seconds\)"):
        ocr_pages(blank, 2, OcrLimits(max_seconds=1e-6))


def test_a_multi_page_tif_is_read_page_by_page_within_the_page_limit(tmp_path):
    from PIL import Image

    from retriever.ingest import parse_report
    from retriever.ocr import OcrLimits
    from retriever.readers import ReportReadError

    path = tmp_path / "scan.tif"
    pages = [Image.open(p).convert("L") for p in SCANS]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    report = parse_report(path)
    assert report.page_at(report.text.index("出具法律意见书95份")) == 2
    with pytest.raises(ReportReadError, match="2 pages, more than the 1"):
        parse_report(path, ocr=OcrLimits(max_pages=1))


def test_equal_cells_apart_are_both_kept():
    from retriever.readers import table_lines

    assert table_lines([["指标", "说明"], ["是", "否"], ["是", "是"]]) == ["指标 说明", "是 否", "是"]
    assert table_lines([["合同", "12件", "审查", "12件"]]) == ["合同 12件 审查 12件"]


def test_a_header_field_table_of_a_page_stays_a_cell_a_line(tmp_path):
    from retriever.ingest import parse_report

    fields = [["索引号", "11330212002966327B/2024-123456", "发布机构", "白石镇人民政府"],
              ["成文日期", "2024-01-22", "发布日期", "2024-01-25"], ["浏览次数", "35", "文号", "无"]]
    rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in fields)
    html = table_html().replace("</h1>", f"</h1><table class='xxgk'>{rows}</table>")
    (tmp_path / "r.html").write_text(html, encoding="utf-8")
    report = parse_report(tmp_path / "r.html")
    assert report.published == "2024-01-25" and report.year == 2023
    assert "合同合法性审查 · 2023年：146份。" in report.text.splitlines()


def test_the_api_adds_reports_by_url_and_cites_scans_by_page(site, tmp_path, config, use_embedder):
    """POST /v1/reports with {"urls": [...]} (admin): each URL's line, the report answerable with its
    URL as the source; an uploaded scan's citation gives its page; bad URL lists are 422 problems."""
    import copy

    import httpx

    from bot.api import Keys, create_app
    from bot.live import LiveService

    base, _ = site
    cfg = copy.deepcopy(config)
    cfg["api"]["rate_per_second"] = 0
    cfg["fetch"] = {**cfg["fetch"], **{k: v for k, v in LIMITS.items() if k != "max_bytes"}, "max_mb": 0.05}
    live = LiveService(cfg, tmp_path / "idx", embedder=use_embedder, poll_seconds=0.5)
    with ServerThread(create_app(cfg, live, Keys(["read"], ["admin"])), ready_path="/healthz") as s, \
            httpx.Client(base_url=s.url, headers={"X-API-Key": "admin"}, timeout=300) as c:
        urls = [f"{base}/report.html", f"{base}/missing.html"]
        r = c.post("/v1/reports", json={"urls": urls})
        assert r.status_code == 200, r.text
        lines = {line["file"]: line for line in r.json()["files"]}
        assert lines[urls[0]]["status"] == "added" and lines[urls[1]]["status"] == "failed"
        assert "404" in lines[urls[1]]["error"]
        a = c.post("/v1/answer", json={"question": "红星街道办事处2023年开展法治宣传活动多少场？"}).json()
        assert "28场" in a["answer"] and a["citations"][0]["source"] == urls[0] == a["citations"][0]["url"]
        assert httpx.post(s.url + "/v1/reports", json={"urls": urls}, headers={"X-API-Key": "read"}).status_code == 403
        for bad in ({"urls": []}, {"urls": ["ftp://example.org/a.pdf"]}, {"url": urls[0]}):
            r = c.post("/v1/reports", json=bad)
            assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", bad
        r = c.post("/v1/reports", json={"urls": [f"{base}/news.html"]})  # no report could be read
        assert r.status_code == 422 and r.json()["files"][0]["status"] == "failed"
        assert c.post("/v1/reports", content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415

        scan = scanned_pdf(tmp_path / "scan.pdf")
        up = c.post("/v1/reports", files=[("files", ("扫描件.pdf", scan.read_bytes(), "application/pdf"))])
        assert up.status_code == 200 and up.json()["files"][0]["status"] == "added", up.text
        cited = c.post("/v1/answer", json={"question": "青山区司法局2023年出具了多少份法律意见书？"}).json()["citations"]
        assert cited and cited[0]["page"] == 2
        listed = {x["source"]: x for x in c.get("/v1/reports").json()["reports"]}
        assert listed["扫描件.pdf"]["pages"] == 2 and listed[urls[0]]["url"] == urls[0]

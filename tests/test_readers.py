import pytest

from retriever.clean import clean_text
from retriever.readers import ReportReadError, read_file

TEXT = "某区司法局2023年法治政府建设年度报告\n2023年，区司法局坚持依法行政。全年办理行政复议案件12件。\n某区司法局\n2024年1月15日\n"


def test_utf8_and_bom(tmp_path):
    plain = tmp_path / "a.txt"
    plain.write_bytes(TEXT.encode("utf-8"))
    bom = tmp_path / "b.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + TEXT.encode("utf-8"))
    assert read_file(plain) == TEXT
    assert read_file(bom) == TEXT


def test_gbk_is_detected_from_content_not_name(tmp_path):
    f = tmp_path / "report.txt"
    f.write_bytes(TEXT.encode("gbk"))
    assert read_file(f) == TEXT


def test_docx(tmp_path):
    from docx import Document

    doc = Document()
    for line in TEXT.strip().split("\n"):
        doc.add_paragraph(line)
    path = tmp_path / "r.docx"
    doc.save(path)
    assert "全年办理行政复议案件12件" in read_file(path)


def test_pdf_text_layer(tmp_path):
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    path = tmp_path / "r.pdf"
    c = canvas.Canvas(str(path))
    c.setFont("STSong-Light", 12)
    for i, line in enumerate(TEXT.strip().split("\n")):
        c.drawString(40, 800 - 20 * i, line)
    c.save()
    text = read_file(path)
    assert "全年办理行政复议案件12件" in text


def test_html_main_text_without_menus_and_debris(tmp_path):
    html = """<html><head><meta charset="gbk"><title>报告_某区政府网</title><script>var x=1;</script></head><body>
    <div class="nav">首页 政务公开 互动交流</div>
    <div class="article"><h1>某区司法局2023年法治政府建设年度报告</h1>
    <p>来源：某区司法局 发布时间：2024-01-20 09:00 浏览次数：35</p>
    <div class="TRS_Editor"><p>2023年，区司法局坚持依法行政。</p><p>全年办理行政复议案件<b>12</b>件。</p></div></div>
    <div class="footer">分享到：微信 打印本页</div></body></html>"""
    path = tmp_path / "r.html"
    path.write_bytes(html.encode("gbk"))
    clean = clean_text(read_file(path))
    assert clean.text.split("\n")[0] == "某区司法局2023年法治政府建设年度报告"
    assert "全年办理行政复议案件12件。" in clean.text
    assert "首页" not in clean.text and "分享到" not in clean.text and "var x" not in clean.text
    assert clean.published == "2024-01-20"
    assert clean.source_unit == "某区司法局"


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("empty.txt", b"", "empty"),
        ("binary.txt", b"\x00\x01\x02\x03" * 100, "binary"),
        ("noise.txt", bytes(range(128, 256)) * 20, "encoding"),
        ("broken.docx", b"PK\x03\x04 not really a zip", ".docx"),
        ("broken.pdf", b"%PDF-1.4 garbage", ".pdf"),
        ("report.xls", b"whatever", "unsupported"),
    ],
)
def test_unreadable_files_say_why(tmp_path, name, data, reason):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ReportReadError, match=reason):
        read_file(path)


def test_debris_lines_removed_and_date_kept():
    raw = "标题2023年工作报告\n来源: 海安高新区 发布时间:2024-03-19 16:22 累计次数: 字体:[ ]\n\n  正文第一段。  \n附件下载:\n分享到:\n"
    clean = clean_text(raw)
    # the header line stays in the text (an answer can cite the date's line); chunking leaves it out
    assert clean.text == "标题2023年工作报告\n来源: 海安高新区 发布时间:2024-03-19 16:22 累计次数: 字体:[ ]\n正文第一段。"
    assert clean.published == "2024-03-19"
    assert clean.source_unit == "海安高新区"


def test_a_files_type_from_its_first_bytes():
    """One reading of a file's first bytes, for uploads without a suffix and for downloads."""
    from retriever.readers import sniff_suffix

    assert sniff_suffix(b"%PDF-1.7\n") == ".pdf"
    assert sniff_suffix(b"PK\x03\x04\x14\x00") == ".docx"
    assert sniff_suffix(b"\x89PNG\r\n\x1a\n") == ".png"
    assert sniff_suffix(b"\xff\xd8\xff\xe0") == ".jpg"
    assert sniff_suffix(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00") == ".doc"
    assert sniff_suffix(b"\xd0\xcf\x11\xe0\x00\x00") is None  # not the whole OLE2 signature
    assert sniff_suffix(b"  \n<!DOCTYPE html><html>") == ".html"
    assert sniff_suffix("区统计局".encode()) is None

"""Reading report files into plain text: txt in any common Chinese encoding, docx, pdf (scanned
pages by OCR), html, images (png, jpg, tif by OCR), ofd, and .doc/.wps through LibreOffice.
Tables (docx, html, ruled tables of a pdf) become one line a figure that names its row and column
("合同合法性审查 · 2023年：146份"); pages open with a PAGE_BREAK line (paged()), so that a
passage's page can be told."""

from __future__ import annotations

import codecs
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from .clean import PAGE_BREAK, TABLE_LABELS
from .ocr import RENDER_LONG_SIDE, OcrError, OcrLimits, OcrPage, ocr_pages

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
LEGACY_SUFFIXES = (".doc", ".wps")  # converted to .docx by LibreOffice, when installed
SUPPORTED_SUFFIXES = (".txt", ".text", ".docx", ".pdf", ".html", ".htm", ".ofd") + LEGACY_SUFFIXES + IMAGE_SUFFIXES
# What a Content-Type says a file is (uploads without a suffix, downloads)
CONTENT_TYPES = {
    "text/html": ".html", "application/xhtml+xml": ".html", "text/plain": ".txt", "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/msword": ".doc", "application/vnd.ms-works": ".wps", "application/kswps": ".wps",
    "application/ofd": ".ofd", "image/png": ".png", "image/jpeg": ".jpg", "image/tiff": ".tif",
}
_LEGACY_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an OLE2 compound file: .doc, and .wps as WPS Office writes it
# A file's first bytes -> its type: %PDF, a PNG's and a JPEG's signatures, a zip (docx), an OLE2
# compound file (doc)
_SIGNATURES = ((b"%PDF", ".pdf"), (b"PK\x03\x04", ".docx"), (b"\x89PNG", ".png"), (b"\xff\xd8\xff", ".jpg"),
               (_LEGACY_MAGIC, ".doc"))


def sniff_suffix(data: bytes) -> str | None:
    """A file's type from its first bytes (_SIGNATURES, or <html / <!doctype html after blanks);
    None when they say nothing."""
    suffix = next((ext for signature, ext in _SIGNATURES if data.startswith(signature)), None)
    if suffix is None and data[:512].lstrip().lower().startswith((b"<!doctype html", b"<html")):
        suffix = ".html"
    return suffix


# A PDF page with fewer characters of text than this is read by OCR (a scanned page; a page number
# or a stamp's text alone is not a text layer)
MIN_PAGE_CHARS = 20
# An image with fewer characters than this is no page of a report but a logo, a photo or a chart
# beside the reports in a folder: the test pages hold 119 and 147 characters, a page of body text ~700
MIN_IMAGE_CHARS = 80
MAX_FILE_BYTES = 50 * 1024 * 1024
# Zip-based formats (.docx) are checked before anything is decompressed, by the sizes the archive
# declares (Python's zipfile never inflates a member past its declared size, so the check holds
# against an archive that lies): at most MAX_EXPANDED_BYTES in all, at most MAX_ZIP_MEMBERS
# members, and no member above ZIP_RATIO_FLOOR bytes that expands more than MAX_ZIP_RATIO times
# its compressed size (real Word XML compresses 5-20 times). Reading a .docx holds its expanded
# parts and their XML trees, about twice the expanded size: with these defaults an ingest's peak
# memory stays some 400 MB above its baseline, where a 2 MB bomb expanding to 2 GB took 4.3 GB.
MAX_EXPANDED_BYTES = 200 * 1024 * 1024
MAX_ZIP_RATIO = 100
ZIP_RATIO_FLOOR = 1024 * 1024
MAX_ZIP_MEMBERS = 10_000

log = logging.getLogger("govqa.readers")


class ReportReadError(ValueError):
    """A file that cannot be read as a report; the message says why."""


def paged(pages: list[str]) -> str:
    """The texts of a file's pages as one text, each page opening with a PAGE_BREAK line."""
    return "".join(f"{PAGE_BREAK}\n{text}\n" for text in pages)


@dataclass(frozen=True)
class ReadResult:
    text: str  # raw text; each page of a paged file opens with a PAGE_BREAK line
    review: tuple[str, ...] = ()  # why a person should check the text against the file (low OCR confidence)


def decode_text(data: bytes) -> str:
    """Decode bytes of a text file, detecting the encoding from the content, not the name."""
    if not data.strip():
        raise ReportReadError("the file is empty")
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(encoding)
    if b"\x00" in data[:4096]:
        text = _utf16_without_bom(data)
        if text is not None:
            return text
        raise ReportReadError("the file looks binary (NUL bytes), not text: not UTF-8, GB18030 or UTF-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Strict GB18030 (a superset of GBK and GB2312) is how most Chinese government sites
    # published before UTF-8; accept it only when most of the text is CJK, because random
    # bytes also decode as GB18030 more often than not.
    try:
        text = data.decode("gb18030")
        if _mostly_readable_chinese(text):
            return text
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None and _mostly_readable_chinese(str(best)):
        return str(best)
    raise ReportReadError("cannot decide the text encoding (not UTF-8, GB18030/GBK or another known one)")


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text written without a byte-order mark (NUL bytes in it are the high bytes of ASCII
    characters): the byte order whose decoding reads as text, if one does."""
    if len(data) % 2:
        return None
    for encoding in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        letters = [c for c in text if not c.isspace()]
        if letters and sum(c.isprintable() for c in letters) / len(letters) >= 0.98 and (
                _mostly_readable_chinese(text) or sum(c.isascii() for c in letters) / len(letters) >= 0.9):
            return text
    return None


def _mostly_readable_chinese(text: str) -> bool:
    letters = [c for c in text if not c.isspace()]
    if not letters:
        return False
    cjk = sum(1 for c in letters if "\u4e00" <= c <= "\u9fff")
    readable = sum(1 for c in letters if c.isprintable())
    return cjk / len(letters) >= 0.3 and readable / len(letters) >= 0.98


def check_zip(path: Path, kind: str, max_expanded: int | None = None, max_ratio: float | None = None) -> None:
    """Refuse a zip-based file (`kind`, e.g. ".docx") that is not a zip archive or would expand
    past the limits above (module constants, read at each call; or these arguments)."""
    import zipfile

    max_expanded = MAX_EXPANDED_BYTES if max_expanded is None else max_expanded
    max_ratio = MAX_ZIP_RATIO if max_ratio is None else max_ratio
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ReportReadError(f"not a readable {kind} file: it is not a ZIP archive, which a {kind} file is "
                              f"({exc}; an older format such as .doc renamed?)") from exc
    except OSError as exc:
        raise ReportReadError(f"cannot read the file: {exc.strerror or exc}") from exc
    if len(members) > MAX_ZIP_MEMBERS:
        raise ReportReadError(f"refused: the {kind} archive has {len(members)} members (more than {MAX_ZIP_MEMBERS})")
    total = sum(m.file_size for m in members)
    if total > max_expanded:
        raise ReportReadError(f"refused: the {kind} file would expand to {total / 2**20:.0f} MiB "
                              f"(more than {max_expanded / 2**20:.0f} MiB; a zip bomb?)")
    for m in members:
        if m.file_size > ZIP_RATIO_FLOOR and m.file_size > max_ratio * max(m.compress_size, 1):
            raise ReportReadError(f"refused: {m.filename} in the {kind} file expands {m.file_size / max(m.compress_size, 1):.0f} "
                                  f"times (more than {max_ratio:g}; a zip bomb?)")


def read_docx(path: Path, max_expanded: int | None = None, max_ratio: float | None = None) -> str:
    import zipfile

    from docx import Document
    from docx.opc.exceptions import PackageNotFoundError

    check_zip(path, ".docx", max_expanded, max_ratio)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    if "word/document.xml" not in names:
        what = "a spreadsheet (.xlsx)" if "xl/workbook.xml" in names else \
            "a presentation (.pptx)" if "ppt/presentation.xml" in names else "not a Word document"
        raise ReportReadError(f"not a readable .docx file: the archive has no word/document.xml ({what})")
    try:
        doc = Document(str(path))
    except zipfile.BadZipFile as exc:
        raise ReportReadError(f"not a readable .docx file: the archive is damaged ({exc})") from exc
    except PackageNotFoundError as exc:
        raise ReportReadError(f"not a readable .docx file: no Word package in the archive ({exc})") from exc
    except KeyError as exc:
        raise ReportReadError(f"not a readable .docx file: a part it refers to is missing from the archive ({exc})") from exc
    except ValueError as exc:  # lxml's XMLSyntaxError is a ValueError too
        raise ReportReadError(f"not a readable .docx file: {exc.__class__.__name__}: {exc}") from exc
    from docx.table import Table

    lines: list[str] = []
    for block in doc.iter_inner_content():  # paragraphs and tables in the order of the document
        if isinstance(block, Table):
            lines += table_lines([[cell.text for cell in row.cells] for row in block.rows])
        else:
            lines.append(block.text)
    return "\n".join(lines)


# a cell that is a figure: 146份, 1.2万元, 95%, 37 (not a heading such as 2023年 or 一季度)
_FIGURE_CELL = re.compile(r"^[-+]?\d[\d,，.]*\s*(?:%|‰|[\u4e00-\u9fff]{1,3})?$")
_YEAR_CELL = re.compile(r"^(?:19|20)\d{2}\s*年度?$")  # a column heading: 2023年, 2023年度
# a heading cell is a short name (2023年, 合同合法性审查); a row with a longer cell is no heading row,
# and the table is read row by row as text
MAX_HEADING_CELL = 30


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _is_figure(cell: str) -> bool:
    return bool(_FIGURE_CELL.match(cell)) and not _YEAR_CELL.match(cell)


def _as_read(row: list[str]) -> str:
    """A row's cells apart by spaces, a cell repeated across merged columns (side by side) given once."""
    return " ".join(c for n, c in enumerate(row) if c and (n == 0 or c != row[n - 1]))


def _heading_row(rows: list[list[str]]) -> tuple[list[list[str]], list[list[str]], bool]:
    """A table's rows (cells cleaned, empty rows dropped) as its captions (rows of one cell's text
    above the heading row), the rest, and whether the first of the rest heads figures: a row of
    short names over rows with figures, in a table that is not a page's header fields (a cell is
    a field label such as 索引号 or 浏览次数)."""
    rows = [row for row in ([_cell(c) for c in row] for row in rows) if any(row)]
    captions = []
    while len(rows) > 1 and len({c for c in rows[0] if c}) == 1:
        captions.append(rows.pop(0))
    header = rows[0] if rows else []
    headed = (len(rows) >= 2 and len(header) >= 2 and any(_is_figure(c) for row in rows[1:] for c in row[1:])
              and not any(_is_figure(c) for c in header[1:]) and all(len(c) <= MAX_HEADING_CELL for c in header)
              and not any(re.sub(r"\s", "", c).rstrip(":：") in TABLE_LABELS for row in rows for c in row))
    return captions, rows, headed


def has_headed_figures(rows: list[list[str]]) -> bool:
    """Whether table_lines() names the headings of this table's figures (a table without, such as a
    page's header fields 索引号 | 发布日期 …, is better read a cell a line)."""
    return _heading_row(rows)[2]


def table_lines(rows: list[list[str]]) -> list[str]:
    """A table as lines of text that keep each figure with its headings: with a heading row whose
    cells are names (not figures), each figure cell becomes "row heading · column heading：figure"
    ("合同合法性审查 · 2023年：146份"); a table without figures, or a single column, gives one line
    a row with its cells apart, as the text reads. Cells merged across columns (repeated by the
    reader) are given once."""
    captions, rows, headed = _heading_row(rows)
    lines = [_as_read(row) for row in captions]
    if not headed:
        return lines + [_as_read(row) for row in rows]
    header = rows[0]
    lines.append(_as_read(header))
    for row in rows[1:]:
        if len(row) != len(header) or len({c for c in row if c}) == 1:  # a caption or a note across the columns
            lines.append(_as_read(row))
            continue
        head = row[0]
        cells = [(header[n], c) for n, c in enumerate(row) if n and c]
        if not head:
            lines.append("；".join(f"{h}：{c}" if h else c for h, c in cells) + "。")
            continue
        for h, c in cells:
            lines.append(f"{head} · {h}：{c}。" if h else f"{head}：{c}。")
    return lines


class _LibraryMessages(logging.Handler):
    """pypdf's warnings ("EOF marker not found", ...): kept off stderr, collected for the file
    being read in this thread (to explain a failure), else logged at debug level."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        found = getattr(self.local, "found", None)
        if found is not None:
            found.append(record.getMessage())
        else:
            log.debug("%s: %s", record.name, record.getMessage())


_pdf_messages = _LibraryMessages()
_pdf_logger = logging.getLogger("pypdf")
_pdf_logger.addHandler(_pdf_messages)
_pdf_logger.propagate = False


def read_pdf(path: Path, ocr: OcrLimits | None = None) -> ReadResult:
    """The text of each page, from its text layer, or by OCR where a page has none (a scan):
    pages marked (paged()); low OCR confidence is a reason to review."""
    import warnings

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    _pdf_messages.local.found = found = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(str(path))
            pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError, TypeError, AttributeError, IndexError) as exc:
        said = "; ".join(dict.fromkeys(found))[:300]
        raise ReportReadError(f"not a readable .pdf file: {exc or exc.__class__.__name__}"
                              + (f" (pypdf: {said})" if said else "")) from exc
    finally:
        _pdf_messages.local.found = None
    if not pages:
        said = "; ".join(dict.fromkeys(found))[:300]
        raise ReportReadError("not a readable .pdf file: no pages found" + (f" (pypdf: {said})" if said else ""))
    scanned = [n for n, text in enumerate(pages) if len(re.sub(r"\s", "", text)) < MIN_PAGE_CHARS]
    for n, text in _pages_with_tables(path, [n for n in range(len(pages)) if n not in scanned]).items():
        pages[n] = text
    review: tuple[str, ...] = ()
    if scanned:
        read = _ocr_pdf_pages(path, scanned, ocr or OcrLimits())
        for n, page in zip(scanned, read, strict=True):
            pages[n] = page.text
        review = _ocr_review(read, ocr or OcrLimits(), f"{len(scanned)} of {len(pages)} pages")
    if not any(text.strip() for text in pages):
        raise ReportReadError(f"no text found: the PDF's {len(pages)} pages have no text layer and OCR read "
                              f"nothing on them (a blank scan?)")
    return ReadResult(paged(pages), review)


def _pages_with_tables(path: Path, numbers: list[int]) -> dict[int, str]:
    """The text of each of these pages that has a ruled table of figures under headings (pdfplumber
    finds tables by their lines): the text above, between and below the tables as it reads, each
    table as table_lines() gives it. Other pages keep pypdf's text; so does a page pdfplumber cannot
    read (logged)."""
    import pdfplumber

    out: dict[int, str] = {}
    try:
        with pdfplumber.open(str(path)) as pdf:
            for n in numbers:
                page = pdf.pages[n]
                tables = sorted(page.find_tables(), key=lambda t: t.bbox[1])
                cells = [[[cell or "" for cell in row] for row in t.extract()] for t in tables]
                if not any(has_headed_figures(rows) for rows in cells):
                    continue  # pypdf's text of the page stands
                x0, top, x1, bottom = page.bbox
                parts, above = [], top
                for table, rows in zip(tables, cells, strict=True):
                    if table.bbox[1] > above:
                        parts.append(page.crop((x0, above, x1, table.bbox[1])).extract_text())
                    parts += table_lines(rows)
                    above = max(above, table.bbox[3])
                if bottom > above:
                    parts.append(page.crop((x0, above, x1, bottom)).extract_text())
                out[n] = "\n".join(parts)
    except Exception as exc:  # the tables are a refinement: pypdf's text of the page stands
        log.debug("tables of %s not read: %s: %s", path.name, exc.__class__.__name__, exc)
    return out


def _ocr_pdf_pages(path: Path, numbers: list[int], limits: OcrLimits) -> list[OcrPage]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise ReportReadError(f"the PDF's pages without text cannot be rendered for OCR: {exc}") from exc

    def images():
        for n in numbers:
            page = pdf[n]
            width, height = page.get_size()
            yield page.render(scale=RENDER_LONG_SIDE / max(width, height, 1), grayscale=True).to_pil()

    try:
        return ocr_pages(images(), len(numbers), limits, path.name)
    except OcrError as exc:
        raise ReportReadError(str(exc)) from exc
    finally:
        pdf.close()


def _ocr_review(pages: list[OcrPage], limits: OcrLimits, what: str) -> tuple[str, ...]:
    chars = sum(p.chars for p in pages)
    confidence = sum(p.confidence * p.chars for p in pages) / max(chars, 1)
    if chars and confidence < limits.min_confidence:
        return (f"read by OCR ({what}) with confidence {confidence:.2f}, below {limits.min_confidence:g} "
                f"([ocr] min_confidence): check its figures against the scan",)
    return ()


def read_image(path: Path, ocr: OcrLimits | None = None) -> ReadResult:
    """The text of a page image (png, jpg; each page of a multi-page tif), by OCR."""
    import warnings

    from PIL import Image, ImageSequence, UnidentifiedImageError

    limits = ocr or OcrLimits()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # frames are decoded one at a time, as OCR reads them
                frames = (frame.convert("L") for frame in ImageSequence.Iterator(image))
                pages = ocr_pages(frames, getattr(image, "n_frames", 1), limits, path.name)
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ReportReadError(f"not a readable image: {exc}") from exc
    except OcrError as exc:
        raise ReportReadError(str(exc)) from exc
    except (OSError, SyntaxError, ValueError) as exc:  # a truncated or damaged image
        raise ReportReadError(f"not a readable image: the file is damaged ({exc})") from exc
    if not any(p.text.strip() for p in pages):
        raise ReportReadError("no text found: OCR read nothing in the image (a blank scan?)")
    chars = sum(p.chars for p in pages)
    if chars < MIN_IMAGE_CHARS:
        raise ReportReadError(f"not a report page: OCR read only {chars} characters in the image (a logo, a photo "
                              f"or a chart?)")
    return ReadResult(paged([p.text for p in pages]),
                      _ocr_review(pages, limits, f"{len(pages)} page{'s' if len(pages) > 1 else ''}"))


_BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "h1", "h2", "h3", "h4",
    "h5", "h6", "title", "header", "footer", "blockquote", "pre", "td", "th", "dd", "dt", "main",
}
_DROP_TAGS = ("script", "style", "noscript", "nav", "iframe", "form", "button", "select", "svg", "aside")
_CONTENT_HINT = re.compile(r"(content|article|TRS_Editor|zoom|detail|text|main|wenzhang|con_)", re.I)


def read_html(data: bytes) -> str:
    """The page's main text, with its title line and the header lines (来源/发布时间) kept for the
    metadata extractor; menus, scripts and footers dropped."""
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    html = _decode_html(data)
    tree = HTMLParser(html)
    for tag in _DROP_TAGS:
        for node in tree.css(tag):
            node.decompose()
    body = tree.body or tree.root
    if body is None:
        raise ReportReadError("the HTML page has no body")
    main = _main_node(body)
    title = ""
    heading = tree.css_first("h1") or tree.css_first("h2")
    if heading is not None and heading.text(strip=True):
        title = heading.text(strip=True)
    elif tree.css_first("title") is not None:
        title = re.split(r"[_|｜-]", tree.css_first("title").text(strip=True))[0]
    text = _block_text(main)
    if title and title not in text[:500]:
        text = title + "\n" + text
    return text


def _decode_html(data: bytes) -> str:
    head = data[:2048].decode("ascii", errors="ignore").lower()
    declared = re.search(r"charset=[\"']?([a-z0-9_-]+)", head)
    if declared:
        name = declared.group(1)
        if name in ("gbk", "gb2312", "gb18030"):
            name = "gb18030"
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(data)


def _main_node(body):
    """The element holding the article: the hinted content container with the most text,
    or the body when no container holds most of the page's text."""
    total = len(body.text(strip=True)) or 1
    best, best_len = body, 0
    for node in body.traverse():
        if node.tag not in ("div", "article", "section", "td", "main"):
            continue
        attrs = " ".join(str(v) for v in (node.attributes or {}).values() if v)
        if not _CONTENT_HINT.search(attrs) and node.tag not in ("article", "main"):
            continue
        length = len(node.text(strip=True))
        if length > best_len and length >= 0.3 * total:
            best, best_len = node, length
    return best


def _block_text(node) -> str:
    parts: list[str] = []

    def walk(n):
        if n.tag == "-text":
            parts.append(n.text_content or "")
            return
        if n.tag == "table" and (rows := _data_table(n)) and has_headed_figures(rows):
            parts.append("\n" + "\n".join(table_lines(rows)) + "\n")
            return
        block = n.tag in _BLOCK_TAGS
        if block:
            parts.append("\n")
        child = n.child
        while child is not None:
            walk(child)
            child = child.next
        if block:
            parts.append("\n")

    walk(node)
    return "".join(parts)


MAX_DATA_CELL = 60  # a data table's cells are names and figures; a layout table's hold paragraphs
MAX_COLSPAN = 50


def _data_table(table) -> list[list[str]] | None:
    """The cells of an HTML table that holds data (rows of short cells, no table inside it), a
    cell spanning columns repeated in each; None for a table that lays out the page."""
    if len(table.css("table")) > 1:  # the table itself, and one inside it: a layout
        return None
    rows = []
    for tr in table.css("tr"):
        row = []
        for cell in tr.iter():
            if cell.tag not in ("td", "th"):
                continue
            text = cell.text(separator=" ", strip=True)
            if len(text) > MAX_DATA_CELL:
                return None
            span = (cell.attributes or {}).get("colspan") or "1"
            row += [text] * min(int(span) if span.isdigit() and int(span) > 0 else 1, MAX_COLSPAN)
        rows.append(row)
    return rows if len(rows) >= 2 and max(len(r) for r in rows) >= 2 else None


def read_file(path: str | Path, max_expanded: int | None = None, ocr: OcrLimits | None = None) -> str:
    """Raw text of a report file (read_report's text)."""
    return read_report(path, max_expanded, ocr).text


def read_report(path: str | Path, max_expanded: int | None = None, ocr: OcrLimits | None = None) -> ReadResult:
    """Raw text of a report file, or ReportReadError with the reason. `max_expanded`: the most a
    zip-based file (.docx, .ofd) may expand to, in bytes (default MAX_EXPANDED_BYTES); `ocr`: the
    limits of OCR for scanned pages and images."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ReportReadError(f"unsupported file type {suffix or '(none)'!r}: use {', '.join(SUPPORTED_SUFFIXES)}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ReportReadError(f"cannot read the file: {exc.strerror}") from exc
    if size == 0:
        raise ReportReadError("the file is empty")
    if size > MAX_FILE_BYTES:
        raise ReportReadError(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    if suffix == ".docx":
        return ReadResult(read_docx(path, max_expanded))
    if suffix == ".pdf":
        return read_pdf(path, ocr)
    if suffix in IMAGE_SUFFIXES:
        return read_image(path, ocr)
    if suffix == ".ofd":
        return ReadResult(read_ofd(path, max_expanded))
    if suffix in LEGACY_SUFFIXES:
        return ReadResult(read_legacy(path, max_expanded))
    data = path.read_bytes()
    if suffix in (".html", ".htm"):
        return ReadResult(read_html(data))
    return ReadResult(decode_text(data))


# ---- OFD (GB/T 33190): a zip of XML pages whose text objects hold the text ---------------------
_OFD_NS = "{http://www.ofdspec.org/2016}"
# a TextObject's Boundary, "x y width height" in millimetres: "25.4 40.1 160 5.2"
_BOUNDARY = re.compile(r"^\s*([-\d.]+)\s+([-\d.]+)")
OFD_LINE_MM = 2.0  # text objects whose tops are this close (mm) are one line (a line of 五号 text is ~3.7 mm)


def read_ofd(path: Path, max_expanded: int | None = None) -> str:
    """The text of an OFD file: the text objects of each page, in the order of the document's page
    list, read line by line (top to bottom, left to right), pages marked (paged()). Text
    drawn only as glyph outlines or images (a scanned OFD) is not read."""
    import posixpath
    import xml.etree.ElementTree as ET
    import zipfile

    check_zip(path, ".ofd", max_expanded)

    def xml(archive, name):
        try:
            return ET.fromstring(archive.read(name))
        except KeyError as exc:
            raise ReportReadError(f"not a readable .ofd file: {name} is missing from the archive") from exc
        except ET.ParseError as exc:
            raise ReportReadError(f"not a readable .ofd file: {name} is not XML ({exc})") from exc

    with zipfile.ZipFile(path) as archive:
        root = xml(archive, "OFD.xml")
        doc_root = root.findtext(f".//{_OFD_NS}DocRoot")
        if not doc_root:
            raise ReportReadError("not a readable .ofd file: OFD.xml names no document (DocRoot)")
        doc_root = doc_root.strip().lstrip("/")
        document = xml(archive, doc_root)
        base = posixpath.dirname(doc_root)
        pages = []
        for page in document.iter(f"{_OFD_NS}Page"):
            loc = (page.get("BaseLoc") or "").strip()
            name = loc.lstrip("/") if loc.startswith("/") else posixpath.normpath(posixpath.join(base, loc))
            pages.append(_ofd_page_text(xml(archive, name)))
    if not pages:
        raise ReportReadError("not a readable .ofd file: its document lists no pages")
    if not any(p.strip() for p in pages):
        raise ReportReadError("no text found in the .ofd file (its pages are images or outlines: a scan?)")
    return paged(pages)


def _ofd_page_text(page) -> str:
    """A page's text: each TextCode placed at its object's Boundary plus its own X and Y (an object
    may hold several lines), then read as lines."""
    pieces = []
    for obj in page.iter(f"{_OFD_NS}TextObject"):
        box = _BOUNDARY.match(obj.get("Boundary") or "")
        if not box:
            continue
        for code in obj.iter(f"{_OFD_NS}TextCode"):
            if code.text:
                pieces.append((float(box.group(2)) + _number(code.get("Y")), float(box.group(1)) + _number(code.get("X")),
                               code.text))
    lines: list[list[tuple[float, float, str]]] = []
    for piece in sorted(pieces):
        if lines and piece[0] - lines[-1][0][0] <= OFD_LINE_MM:
            lines[-1].append(piece)
        else:
            lines.append([piece])
    return "\n".join("".join(t for _, _, t in sorted(line, key=lambda p: p[1])) for line in lines)


def _number(text: str | None) -> float:
    try:
        return float(text or 0)
    except ValueError:
        return 0.0


# ---- .doc and .wps: converted to .docx by LibreOffice ------------------------------------------
LEGACY_TIMEOUT_SECONDS = 120  # a 60-page .doc converts in ~5 s; a hung conversion is stopped
# What a .doc or .wps file starts with: an OLE2 compound file (Word 97-2003, WPS), or RTF or HTML
# that a site saved as .doc. LibreOffice imports any other bytes as text, junk included.
_LEGACY_TEXT_HEADS = (b"{\\rtf", b"<html", b"<!doctype html", b"mime-version:")


def read_legacy(path: Path, max_expanded: int | None = None) -> str:
    """A Word 97-2003 (.doc) or WPS (.wps) file, converted to .docx by LibreOffice in headless mode
    (offline), then read as a .docx."""
    import shutil
    import subprocess
    import tempfile

    with path.open("rb") as f:
        head = f.read(512)
    if not head.startswith(_LEGACY_MAGIC) and not head.lstrip().lower().startswith(_LEGACY_TEXT_HEADS):
        raise ReportReadError(f"not a readable {path.suffix.lower()} file: it is neither a Word 97-2003/WPS "
                              f"compound file nor RTF or HTML saved under that name")
    office = shutil.which("soffice") or shutil.which("libreoffice")
    if office is None:
        raise ReportReadError(f"reading {path.suffix.lower()} files needs LibreOffice, which is not installed "
                              f"(Debian/Ubuntu: apt-get install libreoffice-writer-nogui); or save the file as .docx")
    with tempfile.TemporaryDirectory(prefix="govqa-convert-") as out:
        # a profile of its own: a second conversion running at once, or a user's open LibreOffice,
        # would otherwise hold the default profile's lock and the conversion would silently do nothing
        command = [office, f"-env:UserInstallation=file://{out}/profile", "--headless", "--norestore",
                   "--convert-to", "docx:MS Word 2007 XML", "--outdir", out, str(path.resolve())]
        try:
            done = subprocess.run(command, capture_output=True, timeout=LEGACY_TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ReportReadError(f"LibreOffice did not convert the file within {LEGACY_TIMEOUT_SECONDS} s") from exc
        converted = Path(out) / (path.stem + ".docx")
        if not converted.is_file():
            said = (done.stderr or done.stdout).decode("utf-8", "replace").strip()[-300:]
            raise ReportReadError(f"LibreOffice could not convert the {path.suffix.lower()} file (damaged, or not a "
                                  f"word-processor document?)" + (f": {said}" if said else ""))
        return read_docx(converted, max_expanded)

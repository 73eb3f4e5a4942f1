"""Reading report files into plain text: txt in any common Chinese encoding, docx, pdf, html."""

from __future__ import annotations

import codecs
import logging
import re
import threading
from pathlib import Path

SUPPORTED_SUFFIXES = (".txt", ".text", ".docx", ".pdf", ".html", ".htm")
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
    lines = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            lines.append("\t".join(cell.text for cell in row.cells))
    return "\n".join(lines)


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


def read_pdf(path: Path) -> str:
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
    text = "\n".join(pages)
    if not text.strip():
        said = "; ".join(dict.fromkeys(found))[:300]
        if not reader.pages:
            raise ReportReadError("not a readable .pdf file: no pages found" + (f" (pypdf: {said})" if said else ""))
        raise ReportReadError("the PDF has no text layer (a scan?); OCR it first")
    return text


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


def read_file(path: str | Path, max_expanded: int | None = None) -> str:
    """Raw text of a report file, or ReportReadError with the reason. `max_expanded`: the most a
    zip-based file (.docx) may expand to, in bytes (default MAX_EXPANDED_BYTES)."""
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
        return read_docx(path, max_expanded)
    if suffix == ".pdf":
        return read_pdf(path)
    data = path.read_bytes()
    if suffix in (".html", ".htm"):
        return read_html(data)
    return decode_text(data)

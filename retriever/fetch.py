"""Reports by URL: a report's web page, or the file attached to it, downloaded into a folder of the
index (one file per URL, so fetching an unchanged page again changes nothing), then read as any
report file. A page that only wraps an attachment (a short notice with 附件: …pdf) is followed to
the attachment. Each failure is one clear error for that URL."""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from .clean import clean_text
from .readers import (
    CONTENT_TYPES,
    MAX_FILE_BYTES,
    SUPPORTED_SUFFIXES,
    ReportReadError,
    read_html,
    sniff_suffix,
)

# a URL worth fetching: http(s) and a host, e.g. https://www.gov.cn/zhengce/2024/content_1.htm
URL = re.compile(r"https?://[^\s/?#]+[^\s]*", re.IGNORECASE)
USER_AGENT = "govqa/0.1 (annual report reader)"
ATTACHMENT_SUFFIXES = (".pdf", ".docx", ".doc", ".wps", ".ofd")
# A page with less text than this that links to an attachment is a wrapper around the attachment
# (the notices seen: "现将《…年度报告》予以公开。附件：…pdf", 60-300 characters); the report pages
# themselves run to 2,000-20,000 characters.
WRAPPER_MAX_CHARS = 1000
# A page is a report when its text says one of these (法治政府建设年度报告, 依法行政工作报告 …) and
# has at least MIN_REPORT_CHARS characters (the shortest dev report page has about 600)
_REPORT_WORDS = re.compile(r"报告|法治政府|依法行政")
MIN_REPORT_CHARS = 200


@dataclass(frozen=True)
class FetchLimits:
    timeout_seconds: float = 20.0  # the most to wait for a connection or for the next bytes of an answer
    max_seconds: float = 120.0  # the most one download may take in all
    max_bytes: int = MAX_FILE_BYTES  # a larger file is refused (the readers refuse it anyway)
    max_redirects: int = 5


class FetchError(ValueError):
    """A URL that gave no report; the message says why."""


def is_url(text) -> bool:
    return isinstance(text, str) and bool(URL.fullmatch(text.strip()))


def fetch_report(url: str, folder: Path, limits: FetchLimits | None = None) -> tuple[Path, str]:
    """Download the report at `url` (following a wrapper page to its attachment) into `folder`, as
    a file named after the URL; returns the file and the URL the report was found at. The file is
    rewritten only when its bytes changed."""
    import httpx

    limits = limits or FetchLimits()
    url = url.strip()
    if not is_url(url):
        raise FetchError("not an http(s) address")
    with httpx.Client(follow_redirects=True, max_redirects=limits.max_redirects, headers={"User-Agent": USER_AGENT},
                      timeout=httpx.Timeout(limits.timeout_seconds)) as client:
        data, final, suffix = _download(client, url, limits)
        if suffix == ".html":
            attachment = _attachment(data, final)
            if attachment is not None:
                data, final, suffix = _download(client, attachment, limits)
                if suffix == ".html":
                    raise FetchError(f"the page links to {attachment} as its attachment, but that is a web page too")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha256(url.encode("utf-8")).hexdigest()[:16] + suffix)
    for other in folder.glob(path.stem + ".*"):  # the URL gave another type of file before
        if other != path:
            other.unlink()
    if not (path.is_file() and path.read_bytes() == data):
        staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        staged.write_bytes(data)
        staged.replace(path)
    return path, final


def _download(client, url: str, limits: FetchLimits) -> tuple[bytes, str, str]:
    """The body of `url`, the URL it came from after redirects, and the suffix of its type."""
    import httpx

    started = time.monotonic()
    try:
        with client.stream("GET", url) as response:
            if response.status_code >= 400:
                raise FetchError(f"the server answered {response.status_code} {response.reason_phrase}".rstrip()
                                 + (f" for {response.url}" if str(response.url) != url else ""))
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limits.max_bytes:
                raise FetchError(_too_large(limits))
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limits.max_bytes:
                    raise FetchError(_too_large(limits))
                if time.monotonic() - started > limits.max_seconds:
                    raise FetchError(f"the download took longer than {limits.max_seconds:g} s ([fetch] max_seconds)")
                chunks.append(chunk)
            final = str(response.url)
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    except httpx.TimeoutException as exc:
        raise FetchError(f"no answer within {limits.timeout_seconds:g} s ([fetch] timeout_seconds)") from exc
    except httpx.TooManyRedirects as exc:
        raise FetchError(f"more than {limits.max_redirects} redirects") from exc
    except httpx.InvalidURL as exc:
        raise FetchError(f"not a valid address: {exc}") from exc
    except httpx.HTTPError as exc:  # connection refused, name not found, a redirect to another scheme …
        raise FetchError(f"cannot fetch it: {exc.__class__.__name__}: {exc}") from exc
    data = b"".join(chunks)
    if not data.strip():
        raise FetchError("the server sent an empty answer")
    return data, final, _suffix(content_type, final, data)


def _too_large(limits: FetchLimits) -> str:
    return f"the file is larger than {limits.max_bytes / 2**20:g} MiB ([fetch] max_bytes)"


def _suffix(content_type: str, url: str, data: bytes) -> str:
    """The file type of a download: by its Content-Type (a type not in CONTENT_TYPES says nothing),
    else its URL's suffix, else its first bytes."""
    if content_type in CONTENT_TYPES:
        return CONTENT_TYPES[content_type]
    suffix = Path(unquote(urlsplit(url).path)).suffix.lower()
    if suffix in SUPPORTED_SUFFIXES:
        return suffix
    sniffed = sniff_suffix(data)
    if sniffed is not None:
        return sniffed
    raise FetchError(f"not a report file: the server calls it {content_type or 'nothing'!r} and the address has "
                     f"no known suffix (reports are {', '.join(SUPPORTED_SUFFIXES)})")


def _attachment(data: bytes, base: str) -> str | None:
    """The attachment a wrapper page leads to, or None when the page is the report: on a page with
    little text of its own, the first link to a document file whose text or name says 报告, or the
    first document link of a page that is no report itself (a form beside a report page is not
    followed). FetchError for a page that is no report and attaches none."""
    from selectolax.lexbor import LexborHTMLParser

    try:
        text = clean_text(read_html(data)).text
    except ReportReadError as exc:
        raise FetchError(f"the page cannot be read: {exc}") from exc
    if len(text) >= WRAPPER_MAX_CHARS:
        _check_report_page(text)
        return None
    links = []
    for a in LexborHTMLParser(data).css("a[href]"):
        href = (a.attributes.get("href") or "").strip()
        target = urljoin(base, href)
        if urlsplit(target).scheme in ("http", "https") and \
                Path(unquote(urlsplit(target).path)).suffix.lower() in ATTACHMENT_SUFFIXES:
            links.append((a.text(strip=True) + unquote(href), target))
    named = next((t for said, t in links if "报告" in said), None)
    if named is not None:
        return named
    try:
        _check_report_page(text)
    except FetchError:
        if links:
            return links[0][1]
        raise
    return None


def _check_report_page(text: str) -> None:
    """FetchError unless the page's text reads as a report (_REPORT_WORDS, MIN_REPORT_CHARS)."""
    if not _REPORT_WORDS.search(text):
        raise FetchError("the page is not a report: its text says none of 报告, 法治政府, 依法行政, "
                         "and it links to no report file")
    if len(text) < MIN_REPORT_CHARS:
        raise FetchError(f"the page is not a report: {len(text)} characters of text (a report has at least "
                         f"{MIN_REPORT_CHARS}), and it links to no report file")

"""Outline-aware chunking: headings (一、 （一） 1. …) become the heading path of the content under
them, never passages of their own; passages of about 100-400 characters end at sentence ends,
prefer to start at enumerations (一是/二是 …), and point into the report text by offsets. Page
header fields (索引号, 发布日期 …) and the head of the report (title, unit line, session line,
addressee) are never passages: they stay in the text for citing metadata only."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .clean import is_field_line
from .types import Passage, Report

MIN_CHARS = 100
MAX_CHARS = 400
MAX_HEADING = 60
# Before the first body line, a line this short without sentence punctuation is part of the head
# (title, unit, session line, addressee): the dev reports' head lines are at most 44 characters.
MAX_HEAD_LINE = 60
_HEAD_BREAK = re.compile(r"[。！？；;]")  # sentence punctuation: "2023年，区司法局坚持依法行政。"

_CN_NUM = "一二三四五六七八九十"
HEADING_PATTERNS = (
    (1, re.compile(rf"^[{_CN_NUM}]+\s*[、.．]")),
    (2, re.compile(rf"^[（(]\s*[{_CN_NUM}]+\s*[)）]")),
    (3, re.compile(r"^\d{1,2}\s*[、.．](?!\d)")),
    (4, re.compile(r"^[（(]\s*\d{1,2}\s*[)）]")),
)
_ENUMERATION = re.compile(rf"^(?:[{_CN_NUM}]+是|第[{_CN_NUM}]+[，,、]|其[{_CN_NUM}][，,、])")
_SENTENCE_END = re.compile(r"[。！？!?；;]+[”’」』）)]*")
_CLAUSE_END = re.compile(r"[，,、：:]")


@dataclass
class _Unit:
    start: int
    end: int


def heading_level(line: str) -> int:
    for level, pattern in HEADING_PATTERNS:
        if pattern.match(line):
            return level
    return 0


def _sentences(text: str, start: int, end: int) -> list[_Unit]:
    units, pos = [], start
    for m in _SENTENCE_END.finditer(text, start, end):
        units.append(_Unit(pos, m.end()))
        pos = m.end()
    if pos < end:
        units.append(_Unit(pos, end))
    out: list[_Unit] = []
    for u in units:
        while u.end - u.start > MAX_CHARS:  # one very long sentence: cut at a comma, else hard
            window = text[u.start : u.start + MAX_CHARS]
            cuts = [m.end() for m in _CLAUSE_END.finditer(window) if m.end() >= MAX_CHARS // 2]
            cut = u.start + (cuts[-1] if cuts else MAX_CHARS)
            out.append(_Unit(u.start, cut))
            u = _Unit(cut, u.end)
        out.append(u)
    return [u for u in out if text[u.start : u.end].strip()]


def _passage_id(report_id: str, start: int, text: str) -> str:
    return hashlib.sha1(f"{report_id}:{start}:{text}".encode()).hexdigest()[:16]


def chunk_report(report: Report, skip_title: bool = True) -> list[Passage]:
    text = report.text
    passages: list[Passage] = []
    path: list[tuple[int, str]] = []  # (level, heading text)
    buffer: list[_Unit] = []
    buffer_section = ""

    def flush() -> None:
        nonlocal buffer
        if buffer:
            start, end = buffer[0].start, buffer[-1].end
            body = text[start:end]
            passages.append(
                Passage(
                    id=_passage_id(report.id, start, body), report_id=report.id, section=buffer_section,
                    text=body, start=start, end=end, org=report.org, year=report.year, source=report.source,
                )
            )
        buffer = []

    pos = 0
    in_head = skip_title
    for line in text.split("\n"):
        line_start, line_end = pos, pos + len(line)
        pos = line_end + 1
        if not line.strip() or is_field_line(line):
            continue
        level = heading_level(line)
        if in_head:
            if not level and len(line) <= MAX_HEAD_LINE and not _HEAD_BREAK.search(line):
                continue  # the report's head: title (over one or more lines), unit line, session line
            in_head = False
        # a heading line on its own, or a heading sentence that opens a paragraph of content
        units = _sentences(text, line_start, line_end)
        standalone = level and len(line) <= MAX_HEADING and len(units) == 1
        if not level and len(line) <= 30 and not _SENTENCE_END.search(line) and line.endswith(("：", ":")):
            continue  # an addressee line (区依法治区委员会：)
        if level:
            heading = line if standalone else re.split(r"(?<=[。：:])", line, maxsplit=1)[0]
            heading = heading.rstrip("。：: ")[:MAX_HEADING]
            path = [(lv, h) for lv, h in path if lv < level] + [(level, heading)]
            flush()
            if standalone:
                continue
        section = " > ".join(h for _, h in path)
        if section != buffer_section:
            flush()
            buffer_section = section
        elif sum(u.end - u.start for u in buffer) >= MIN_CHARS:
            flush()  # a paragraph boundary ends a passage that is long enough
        for unit in units:
            size = buffer[-1].end - buffer[0].start if buffer else 0
            starts_item = bool(_ENUMERATION.match(text[unit.start : unit.end]))
            if buffer and (size + unit.end - unit.start > MAX_CHARS or (starts_item and size >= MIN_CHARS)):
                flush()
            buffer.append(unit)
    flush()
    return passages

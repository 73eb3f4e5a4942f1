"""Answers as text for people (terminal); the HTTP and Telegram front ends have their own."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from .answer import MISSING, Answer, Citation, TableRow, year_label

if TYPE_CHECKING:
    from .facts import FactResult

TABLE_HEADER = ("单位", "年份", "数字", "出处")


def marked(c: Citation, left: str = "【", right: str = "】") -> str:
    if not c.mark:
        return c.excerpt
    a, b = c.mark
    return c.excerpt[:a] + left + c.excerpt[a:b] + right + c.excerpt[b:]


# A source worth showing beside unit, year and section: a web address, or a file name a person
# gave. A file name is machine-made, and left out, when a part of it (between _ - . and spaces) is
# a hash or an id (8+ hexadecimal characters with a digit: 000_664a3152b5d6de2d.txt) or when it has
# no word in it (no Chinese character, no run of three letters: 0001.txt, 20240301.pdf).
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)
_HASH_PART = re.compile(r"^(?=[^0-9]*[0-9])[0-9a-f]{8,}$", re.IGNORECASE)
_WORD = re.compile(r"[\u4e00-\u9fff]|[A-Za-z]{3}")


def meaningful_source(source: str) -> bool:
    """Whether a report's source says something to a reader (see _URL, _HASH_PART, _WORD)."""
    source = (source or "").strip()
    if _URL.match(source):
        return True
    stem = PurePosixPath(source.replace("\\", "/")).name
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    parts = [p for p in re.split(r"[_\-.\s]+", stem) if p]
    return bool(parts) and not any(_HASH_PART.match(p) for p in parts) and bool(_WORD.search(stem))


def citation_line(c: Citation) -> str:
    """[n] unit · year · section, then the source where it is a web address or a file name a
    person gave (never a hash-like file name), and the page of a paged file (第2页). A report
    whose unit is not known is named by its title."""
    parts = [c.org or c.title or "单位不明", year_label(c.year)]
    if c.section:
        parts.append(c.section)
    if meaningful_source(c.source):
        parts.append(c.source.strip())
    if c.page:
        parts.append(f"第{c.page}页")
    return f"[{c.n}] " + " · ".join(parts)


# ---- tables ---------------------------------------------------------------------------------------
def width(text: str) -> int:
    """Columns `text` takes in a terminal or a monospaced font: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in text)


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def table_cells(row: TableRow) -> tuple[str, str, str, str]:
    """A comparison row as the cells 单位, 年份, 数字, 出处: a figure the report does not give reads
    未提及, with no citation."""
    missing = row.value == MISSING or not row.value
    cited = f"[{row.citation}]" if row.citation is not None and not missing else ""
    return row.unit, year_label(row.year), MISSING if missing else row.value, cited


def aligned(rows: Sequence[Sequence[str]], gap: str = "  ") -> list[str]:
    """Rows of cells as lines whose columns line up in a terminal (the last column is not padded)."""
    if not rows:
        return []
    widths = [max(width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [gap.join(pad(c, w) if i < len(r) - 1 else c for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
            for r in rows]


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|")


def markdown_table(table: Sequence[TableRow]) -> list[str]:
    """A comparison as a Markdown table: | 单位 | 年份 | 数字 | 出处 |, one line per unit and year."""
    if not table:
        return []
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "| --- | --- | --- | --- |"]
    for row in table:
        lines.append("| " + " | ".join(_md_cell(c) for c in table_cells(row)) + " |")
    return lines


def terminal_table(table: Sequence[TableRow]) -> list[str]:
    """A comparison as a plain table with aligned columns, for the terminal."""
    if not table:
        return []
    return aligned([TABLE_HEADER, *(table_cells(r) for r in table)])


# ---- answers --------------------------------------------------------------------------------------
def answer_text(answer: Answer) -> str:
    lines = [answer.text]
    if answer.table:
        lines += ["", *terminal_table(answer.table)]
    for heading, citations in (("出处：", answer.citations), ("可能相关：", answer.related)):
        if citations:
            lines += ["", heading]
            for c in citations:  # related excerpts carry no mark, so they print as they are
                lines += [citation_line(c), f"    {marked(c)}"]
    return "\n".join(lines)


def chat_text(answer: Answer) -> str:
    """For chat clients (the OpenAI-compatible endpoint): the lead with [n] markers, a comparison's
    figures as a Markdown table, then the sources."""
    markers = "".join(f"[{c.n}]" for c in answer.citations)
    lines = [f"{answer.text} {markers}".rstrip()]
    if answer.table:
        lines += ["", *markdown_table(answer.table)]
    for heading, citations in (("来源：", answer.citations), ("可能相关：", answer.related)):
        if citations:
            lines += ["", heading]
            for c in citations:
                lines += [citation_line(c), f"> {marked(c)}"]
    return "\n".join(lines)


# ---- facts ----------------------------------------------------------------------------------------
FACTS_HEADER = ("单位", "年份", "数字", "说法", "出处")


def facts_text(result: FactResult) -> str:
    """`govqa facts`: one aligned line per figure (unit, year, figure, predicate · object, source),
    then how many; or why nothing was listed."""
    if not result.facts:
        return result.why or "报告中没有找到相关的数字"
    rows = [FACTS_HEADER]
    for found in result.facts:
        f, r = found.fact, found.report
        rows.append((r.org or "单位不明", year_label(r.year), f.text, f.wording or "-", r.source))
    return "\n".join([*aligned(rows), "", f"共 {len(result.facts)} 个数字"])

"""The data that flows through govqa: reports, passages, hits, filters."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Report:
    id: str  # content hash of `text`
    source: str  # file name (or URL) as given
    title: str
    org: str  # the reporting unit, full name where the text gives it
    aliases: tuple[str, ...]  # short names used for the unit (重点区域署, 国资委 ...)
    region: str
    year: int | None  # the year the report covers, not the publication year; None when nothing gives it
    published: str | None  # ISO date, when the text or the web page says it
    text: str  # cleaned text; passages point into it by character offsets
    path: str = ""  # where the file was read from (for pruning reports whose files are gone)
    # why a person should check this report's metadata (unit or year not found in the text, and what
    # was assumed instead); empty when the text stated everything. Shown by ingest and `reports`.
    review: tuple[str, ...] = ()
    # where each field was read from: (field, start, end) offsets in `text` of the line ("title",
    # "org", "year", "published"), for citing it; none for a field a manifest gave
    spans: tuple[tuple[str, int, int], ...] = ()
    url: str = ""  # where the report is published on the web, when known (a manifest's url, or the URL fetched)
    pages: tuple[int, ...] = ()  # where each page starts in `text` (pdf, ofd, scans); () when the file has no pages

    def page_at(self, offset: int) -> int | None:
        """The 1-based page that the text at `offset` is on; None for a file without pages."""
        if not self.pages:
            return None
        return bisect_right(self.pages, offset)


@dataclass(frozen=True)
class Passage:
    id: str
    report_id: str
    section: str  # heading path, " > " between levels
    text: str  # exactly report.text[start:end]
    start: int
    end: int
    org: str
    year: int | None
    source: str


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
    ranks: dict[str, int] = field(default_factory=dict)  # retriever name -> 1-based rank


@dataclass(frozen=True)
class Filters:
    years: tuple[int, ...] = ()
    report_ids: tuple[str, ...] = ()  # units named in the question resolve to their reports
    orgs: tuple[str, ...] = ()  # the unit names as asked, for messages
    # each unit named with its reports, in the order asked: a question about two units answers each
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    unknown: tuple[str, ...] = ()  # units named (by the shape of a unit's name) that no indexed report is
    by_stem: bool = False  # the units were named only by their place's stem (海安那份报告): a weak reading

    @property
    def empty(self) -> bool:
        return not self.years and not self.report_ids

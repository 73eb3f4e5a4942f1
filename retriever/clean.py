"""Cleaning raw report text: whitespace normalised, web-page debris lines removed (their
publication date and source unit kept as metadata)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_DEBRIS_MARKERS = (
    "来源", "信息来源", "文章来源", "发布时间", "发布日期", "发文日期", "累计次数", "浏览次数", "点击数",
    "点击量", "访问量", "阅读次数", "字体", "字号", "附件下载", "分享到", "打印本页", "打印", "关闭窗口",
    "关闭", "责任编辑", "扫一扫", "索引号", "【打印】", "【关闭】", "【字体", "[打印]", "[关闭]", "收藏",
)
_DEBRIS_START = re.compile(
    r"^[【\[]?(?:" + "|".join(re.escape(m) for m in sorted(_DEBRIS_MARKERS, key=len, reverse=True)) + r")[】\]]?\s*(?:[:：]|$|\s|[:：]?\[)"
)
_DATE = re.compile(r"(20\d{2}|19\d{2})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_SOURCE = re.compile(r"(?:信息来源|文章来源|来源)\s*[:：]\s*([\u4e00-\u9fff]{2,30})")
_PUBLISHED = re.compile(r"(?:发布时间|发布日期|发文日期|日期|时间)\s*[:：]\s*(" + _DATE.pattern + ")")
_SPACES = re.compile(r"[ \t\u00a0\u2002\u2003\u3000]+")


@dataclass(frozen=True)
class CleanText:
    text: str  # the report text passages point into
    published: str | None  # ISO date from a 发布时间 header line
    source_unit: str | None  # the unit named by a 来源 header line


def iso_date(match: re.Match) -> str | None:
    year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}"


def is_debris(line: str) -> bool:
    if len(line) > 120:
        return False
    if _DEBRIS_START.match(line):
        return True
    hits = sum(1 for m in ("来源", "发布时间", "累计次数", "浏览次数", "字体", "分享到", "打印", "点击") if m in line)
    return hits >= 2


def clean_text(raw: str) -> CleanText:
    published = source_unit = None
    lines: list[str] = []
    for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = _SPACES.sub(" ", line).strip()
        if not line:
            continue
        if is_debris(line):
            if published is None and (m := _PUBLISHED.search(line)):
                published = iso_date(_DATE.search(m.group(1)))
            if source_unit is None and (m := _SOURCE.search(line)):
                source_unit = m.group(1)
            continue
        lines.append(line)
    return CleanText("\n".join(lines), published, source_unit)

"""Cleaning raw report text: whitespace normalised, web-page debris lines removed (分享到, 打印 …).
Page header fields (索引号, 发布机构, 发布日期, 来源 …) are parsed as fields and kept in the text as
their own lines, so an answer can cite the line a date came from; chunking skips them."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A line of its own before each page of a paged file (pdf, ofd, images; readers.paged()): clean_text
# drops it and records where the page starts.
PAGE_BREAK = "\f"

_DEBRIS_MARKERS = (
    "来源", "信息来源", "文章来源", "发布时间", "发布日期", "发文日期", "累计次数", "浏览次数", "点击数",
    "点击量", "访问量", "阅读次数", "字体", "字号", "附件下载", "分享到", "打印本页", "打印", "关闭窗口",
    "关闭", "责任编辑", "扫一扫", "索引号", "【打印】", "【关闭】", "【字体", "[打印]", "[关闭]", "收藏",
)
# a line that opens with a debris word: "分享到:", "【打印】", "附件下载:", "字体:[ 大 中 小 ]"
_DEBRIS_START = re.compile(
    r"^[【\[]?(?:" + "|".join(re.escape(m) for m in sorted(_DEBRIS_MARKERS, key=len, reverse=True)) + r")[】\]]?\s*(?:[:：]|$|\s|[:：]?\[)"
)
# a date with digits, spaces allowed around the separators: 2024-03-14, 2024- 03- 14, 2024年3月14日
_DATE = re.compile(r"(20\d{2}|19\d{2})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
# full-width digits, as some pages write years and dates (２０２３年): read as digits
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
_SPACES = re.compile(r"[ \t\u00a0\u2002\u2003\u3000]+")

# Labels of a government web page's header fields, by what the value says.
PUBLISHED_LABELS = ("发布日期", "发布时间", "发文日期", "公开日期", "时间", "日期")
WRITTEN_LABELS = ("成文日期", "生成日期")
PUBLISHER_LABELS = ("发布机构", "发文机构", "发文单位", "信息来源", "文章来源", "来源")
FIELD_LABELS = PUBLISHED_LABELS + WRITTEN_LABELS + PUBLISHER_LABELS + (
    "索引号", "组配分类", "主题分类", "发文机关", "体裁分类", "服务对象", "名称", "标题", "发文字号", "文号", "公文时效", "有效性",
    "主题词", "浏览次数", "累计次数", "点击数", "点击量", "访问量", "阅读次数", "作者", "责任编辑", "字体", "字号",
)
# One field label with its colon, its characters possibly spaced ("名 称:"), after a line start,
# a bullet, a space or a bracket: "• 索引号:1495…", " 发布时间:2024-03-28", "来源: 杭州市人民政府门户网站",
# "【发布时间：2024-03-08】【来源：某区党政办公室】"
_LABEL = re.compile(
    r"(?:^|(?<=[\s•·●▪■◆\-*|｜【】\[\]]))(?P<label>"
    + "|".join(r"\s?".join(map(re.escape, label)) for label in sorted(FIELD_LABELS, key=len, reverse=True))
    + r")\s*[:：]"
)
# the bullet or bracket a header field line may open with: "• ", "【"
_LEAD = re.compile(r"^[\s•·●▪■◆\-*【\[]*")
# sentence punctuation: a line that has it is text, not a header field
_SENTENCE = re.compile(r"[。！？；]")
# A header table flattened to one cell a line gives a label alone on its line and its value on the
# next: "索引号" / "11330212002966327B/2024-123456", "发布日期" / "2024-01-25". Only labels no
# body line is made of alone (not 时间, 名称, 作者 …).
TABLE_LABELS = tuple(label for label in FIELD_LABELS if len(label) >= 3) + ("文号", "来源")
MAX_TABLE_VALUE = 60  # a value cell: an index number, a date, a unit's name
MAX_FIELD_LINE = 160  # header lines of the dev pages are at most ~90 characters; body paragraphs are longer


@dataclass(frozen=True)
class HeaderField:
    label: str  # without spaces: 发布日期, 来源 …
    value: str
    start: int  # offsets of the whole line in CleanText.text
    end: int


@dataclass(frozen=True)
class CleanText:
    text: str  # the report text passages point into (header field lines included)
    published: str | None  # ISO date from a 发布日期/发布时间 header field
    source_unit: str | None  # who posted the page (来源/信息来源/发布机构): never the reporting unit's alias
    fields: tuple[HeaderField, ...] = ()
    pages: tuple[int, ...] = ()  # where each page starts in `text` (the first at 0), for a paged file; else ()

    def field(self, labels: tuple[str, ...]) -> HeaderField | None:
        """The first header field with one of these labels, in the order of the labels."""
        for label in labels:
            for f in self.fields:
                if f.label == label and f.value:
                    return f
        return None


def iso_date(match: re.Match | None) -> str | None:
    if match is None:
        return None
    year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}"


def parse_fields(line: str) -> list[tuple[str, str]]:
    """(label, value) of each header field on the line; [] if it is not a header field line. A line
    is one when it opens with a field label, or is short and gives a date field without sentence
    punctuation ("杭州网 发布时间:2025-05-28 14:14:25")."""
    if len(line) > MAX_FIELD_LINE or _SENTENCE.search(line):
        return []
    matches = list(_LABEL.finditer(line))
    if not matches:
        return []
    opens = matches[0].start() <= _LEAD.match(line).end()
    dated = any(re.sub(r"\s", "", m.group("label")) in PUBLISHED_LABELS + WRITTEN_LABELS
                and _DATE.match(line[m.end():].lstrip()) for m in matches)
    if not (opens or dated):
        return []
    out = []
    for m, nxt in zip(matches, matches[1:] + [None], strict=True):
        value = line[m.end() : nxt.start() if nxt else len(line)].strip(" •·●▪■◆|｜[]【】")
        out.append((re.sub(r"\s", "", m.group("label")), value))
    return out


def is_field_line(line: str) -> bool:
    return bool(parse_fields(line.strip()))


def is_debris(line: str) -> bool:
    if len(line) > 120:
        return False
    if _DEBRIS_START.match(line):
        return True
    hits = sum(1 for m in ("来源", "发布时间", "累计次数", "浏览次数", "字体", "分享到", "打印", "点击") if m in line)
    return hits >= 2


def _value_date(value: str) -> str | None:
    return iso_date(_DATE.match(value.strip()))


def clean_text(raw: str) -> CleanText:
    lines: list[str] = []
    fields: list[HeaderField] = []
    pos = 0
    table_label: tuple[str, int, int] | None = None  # a label alone on its line, and the line's span
    pages: list[int] = []
    raw = raw.translate(_FULL_WIDTH_DIGITS)
    for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line == PAGE_BREAK:
            pages.append(pos)
            continue
        line = _SPACES.sub(" ", line).strip()
        if not line:
            continue
        label_cell = re.sub(r"\s", "", line.rstrip(":：")) if len(line) <= 12 else ""
        if table_label and label_cell not in TABLE_LABELS:
            label, start, _ = table_label
            table_label = None
            if len(line) <= MAX_TABLE_VALUE and not _SENTENCE.search(line) and not parse_fields(line):
                lines.append(line)  # the value cell under its label: one field over both lines
                fields.append(HeaderField(label, line, start, pos + len(line)))
                pos += len(line) + 1
                continue
        if label_cell in TABLE_LABELS:
            if table_label:  # the label before had an empty value cell
                fields.append(HeaderField(*table_label[:1], "", *table_label[1:]))
            table_label = (label_cell, pos, pos + len(line))
            lines.append(line)
            pos += len(line) + 1
            continue
        parsed = parse_fields(line)
        if not parsed and is_debris(line):
            continue
        lines.append(line)
        fields += [HeaderField(label, value, pos, pos + len(line)) for label, value in parsed]
        pos += len(line) + 1
    published = next((d for label in PUBLISHED_LABELS for f in fields if f.label == label
                      and (d := _value_date(f.value))), None)
    source = next((f.value for label in PUBLISHER_LABELS for f in fields if f.label == label
                   and re.fullmatch(r"[\u4e00-\u9fff（）()]{2,40}", f.value)), None)
    return CleanText("\n".join(lines), published, source, tuple(fields), tuple(pages))

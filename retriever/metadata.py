"""Report metadata from the text alone (no LLM): title, unit and its short names, region, the year
covered and the publication date, each with the line it was read from. Sources: page header
fields, the title (over one or more lines), a unit line under it, the opening sentence, the
signature block; a manifest entry overrides any field. What cannot be found is left empty and
said in `review`, never guessed silently."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .clean import _DATE, PUBLISHED_LABELS, WRITTEN_LABELS, CleanText, iso_date
from .names import short_forms
from .places import (
    ZONE_SUFFIXES,
    division_names,
    is_place,
    levels,
    place_words,
    region_of,
    split_place,
    stem,
    strip_party,
)

CJK = r"\u4e00-\u9fff"
_YEAR = r"(20\d{2})"
# Words a unit's name ends with. Longer ones first so the regex prefers them.
_ORG_SUFFIXES = (
    "管理委员会", "街道办事处", "委员会", "办公室", "管委会", "工作部", "人民政府", "办事处", "党工委",
    "高新区", "开发区", "经开区", "新区", "园区", "街道", "政府", "中心",
    "署", "委", "局", "办", "部", "厅", "处", "院", "所", "站", "队", "镇", "乡",
)
_ORG_SUFFIX_RE = "(?:" + "|".join(_ORG_SUFFIXES) + ")"
# what a place's name ends with, when a place is the subject of a report (黄石市, 某某县)
_PLACE_SUFFIX_RE = "(?:自治州|自治县|市|区|县|州|盟|旗)"
# Names so generic that every unit of a kind calls itself by them: never a unit filter on their own.
GENERIC_ALIASES = frozenset(
    {"高新区", "开发区", "经开区", "新区", "园区", "管委会", "政府", "人民政府", "区政府", "市政府", "县政府",
     "街道", "办", "部", "局", "委", "署", "办公室", "本区", "我区", "全区", "中心", "党工委", "区委", "市委"}
)
# a subject that speaks of the whole place or of itself, not a unit's name: 全市, 我局, 本区
_NOT_A_UNIT = ("全", "我", "本", "各")
_VERB_AFTER_SUBJECT = (
    "坚持", "在", "认真", "深入", "始终", "紧紧", "紧扣", "围绕", "按照", "全面", "以", "聚焦", "立足", "高度",
    "扎实", "积极", "持续", "牢固", "严格", "切实", "继续", "进一步", "深化", "着力", "贯彻", "把", "对", "结合",
)
_TITLE_WORDS = ("报告", "情况", "总结", "工作要点", "述职")
# A head line longer than this, or with sentence punctuation, is body text: report titles, unit
# lines and session lines of the dev reports are at most 44 characters, their opening paragraphs 90+.
MAX_HEAD_LINE = 60
MAX_TITLE = 80
# the opening phrase before a unit named as the subject: "在区委、区政府的正确领导下,", "一年来,"
_OPENING_PHRASE = re.compile(rf"^(?:在[{CJK}、，,]{{2,30}}?(?:领导|指导|支持|关心)下[，,、]?|一年来[，,]?)")
# a year range is never the year covered: "(2023—2027年)", "2021-2025年", "2021至2025年", "20212025年"
_RANGE = re.compile(r"(?<!\d)(20\d{2})\s*年?\s*(?:[-—–~～至到－]+\s*)?(20\d{2})(?!\d)")
# a single year: "2024年" (not "12024年", not the second half of a range)
_SINGLE_YEAR = re.compile(r"(?<!\d)(20\d{2})\s*年")
# what follows the unit in a title: its year in digits or Chinese numerals, or the report's subject
# when the year comes later or not at all: "某县司法局 2023 年度…", "某县水利局二〇二三年…",
# "某县财政局法治政府建设年度报告（2023年度）"
_TITLE_AFTER_UNIT = r"(?:\s*20\d{2}\s*年|[二][〇零○ＯO][〇零○ＯO一二三四五六七八九]{2}年|法治政府|依法行政)"
# a session line of a report to a people's congress: "(2025年5月29日在杭州市…会议上)"
_SESSION = re.compile(r"^[（(].{0,12}日在.*(?:会议|大会)上?[)）]$")
# a date in Chinese numerals: 二〇二四年一月十日
_CN_DIGITS = {"〇": 0, "零": 0, "○": 0, "Ｏ": 0, "O": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
# a year in Chinese numerals, not that of a date: "二〇二三年度", "二〇二二年" (not "二〇二三年一月十日")
_CN_YEAR = re.compile(r"([二][〇零○ＯO][〇零○ＯO一二三四五六七八九]{2})年(?![一二三四五六七八九十]{1,3}月)")
_CN_DATE = re.compile(r"([〇零○ＯO一二三四五六七八九]{4})年([一二三四五六七八九十]{1,3})月([一二三四五六七八九十]{1,3})日")


@dataclass(frozen=True)
class ReportMeta:
    title: str
    org: str
    aliases: tuple[str, ...]
    region: str
    year: int | None
    published: str | None
    # (field, start, end): the line of the text each field was read from (title, org, year, published)
    spans: tuple[tuple[str, int, int], ...] = ()
    # (field, reason) for what a person should check: a field not found, or assumed from elsewhere
    review: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Line:
    start: int
    end: int
    text: str


def _lines(clean: CleanText) -> list[_Line]:
    """The text's lines with their offsets, without the header field lines (a field of a flattened
    table spans its label's line and its value's)."""
    field_spans = [(f.start, f.end) for f in clean.fields]
    out, pos = [], 0
    for line in clean.text.split("\n"):
        if line.strip() and not any(a <= pos <= b for a, b in field_spans):
            out.append(_Line(pos, pos + len(line), line))
        pos += len(line) + 1
    return out


def _is_body(line: str) -> bool:
    return len(line) > MAX_HEAD_LINE or bool(re.search(r"[。！？；;]", line)) or bool(re.match(r"^[一二三四五六七八九十]+、", line))


def head_lines(lines: list[_Line]) -> list[_Line]:
    """The lines before the body: title, unit line, session line, addressee."""
    out = []
    for line in lines:
        if _is_body(line.text):
            break
        out.append(line)
    return out


def find_title(head: list[_Line]) -> tuple[str, int, int] | None:
    """The title (with its span), joined when it runs over two lines: "静海区卫生健康委2022年度法治" +
    "政府建设情况报告"."""
    for i, line in enumerate(head):
        text = line.text.strip()
        if _SESSION.match(text) or text.endswith(("：", ":")):
            continue
        if any(w in text for w in _TITLE_WORDS) and len(text) <= MAX_TITLE:
            return text, line.start, line.end
        if i + 1 < len(head):
            joined = text + head[i + 1].text.strip()
            if any(w in joined for w in _TITLE_WORDS) and len(joined) <= MAX_TITLE and not _org_like(text):
                return joined, line.start, head[i + 1].end
    return None


def _is_date_line(line: str) -> bool:
    m = _DATE.search(line)
    return (bool(m) and len(line) <= 20 and m.start() <= 2) or bool(_CN_DATE.fullmatch(line.strip()))


def _cn_number(s: str) -> int:
    """一 -> 1, 十 -> 10, 十二 -> 12, 二十 -> 20, 三十一 -> 31."""
    if "十" not in s:
        return _CN_DIGITS[s]
    tens, _, ones = s.partition("十")
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


def line_date(line: str) -> str | None:
    """The ISO date a date line gives, in digits or Chinese numerals (二〇二四年一月十日)."""
    if m := _CN_DATE.search(line):
        year = int("".join(str(_CN_DIGITS[c]) for c in m.group(1)))
        month, day = _cn_number(m.group(2)), _cn_number(m.group(3))
        return f"{year:04d}-{month:02d}-{day:02d}" if 1 <= month <= 12 and 1 <= day <= 31 else None
    return iso_date(_DATE.search(line))


def _org_like(s: str) -> bool:
    return bool(re.fullmatch(rf"[{CJK}（）()]{{2,40}}{_ORG_SUFFIX_RE}", s)) or bool(_joint_unit(s))


def _joint_unit(s: str) -> str | None:
    """The government of a line naming the bodies that issue a report together, its party committee
    first: "中共某镇委员会 某镇人民政府" -> 某镇人民政府."""
    parts = s.split()
    if len(parts) < 2 or not all(re.fullmatch(rf"[{CJK}（）()]{{2,40}}{_ORG_SUFFIX_RE}", p) for p in parts):
        return None
    return next((p for p in reversed(parts) if not p.startswith(("中共", "中国共产党"))), None)


def _unit_line(s: str) -> str:
    """A unit line's unit: the line itself, or the government of a joint line."""
    return _joint_unit(s) or s


def find_signature(lines: list[_Line]) -> tuple[_Line | None, _Line | None]:
    """The unit line and the date line of the signature block at the end of the report."""
    org = date = None
    for line in reversed(lines[-6:]):
        text = line.text.strip()
        if date is None and _is_date_line(text):
            date = line
            continue
        if org is None and len(text) <= 40 and _org_like(text):
            org = line
            break
        if len(text) > 40:
            break
    return org, date


def _opening(lines: list[_Line], head: list[_Line]) -> _Line | None:
    for line in lines[len(head):]:
        if len(line.text) <= 30 and line.text.endswith(("：", ":")):
            continue  # an addressee such as 区依法治区委员会：
        return line
    return None


def find_subject(opening: str) -> str | None:
    """The unit the opening sentence speaks for: '2023年，区党政办坚持…', '现就区国资委2023年度…',
    '2024年以来，在区委、区政府的正确领导下，某区市场监督管理局坚持…', '2024年，某市深入学习…'."""
    verbs = "|".join(_VERB_AFTER_SUBJECT)
    sentence = re.split(r"[。！？]", opening, maxsplit=1)[0]
    sentence = sentence.replace(",", "，")
    # after the year: "2024年，" "2024年以来，" "2023年度" then an optional opening phrase
    m = re.match(rf"^{_YEAR}年(?:度|以来)?[，、\s]*", sentence)
    if m:
        rest = sentence[m.end():]
        rest = rest[(p.end() if (p := _OPENING_PHRASE.match(rest)) else 0):].lstrip("，、 ")
        subject = re.match(rf"(?P<org>[{CJK}]{{2,24}}?(?:{_ORG_SUFFIX_RE}|{_PLACE_SUFFIX_RE}))(?:{verbs})", rest)
        if subject and not subject.group("org").startswith(_NOT_A_UNIT):
            return subject.group("org")
    patterns = (
        rf"(?:现就|现将|关于)(?P<org>[{CJK}]{{2,24}}?{_ORG_SUFFIX_RE}){_YEAR}年",
        rf"^(?P<org>[{CJK}]{{2,24}}?{_ORG_SUFFIX_RE}){_YEAR}年",
    )
    for pattern in patterns:
        m = re.search(pattern, sentence)
        if m and not m.group("org").startswith(_NOT_A_UNIT):
            return m.group("org")
    return None


def title_org(title: str | None) -> str | None:
    """The unit a title names: "某区司法局2023年…", "关于某区司法局2023年…", "某市人民政府关于某市2023年…",
    or a place ("关于某市2024年度…", "某区2023年度…": its government)."""
    if not title:
        return None
    m = re.match(rf"^(?:关于)?(?P<org>[{CJK}（）()]{{2,40}}?{_ORG_SUFFIX_RE})(?:关于[{CJK}]{{0,20}}?)?{_TITLE_AFTER_UNIT}", title)
    if m:
        org = m.group("org")
        return government(org) if _is_division(org) else org  # 浦东新区 is a district, not a zone's name
    m = re.match(rf"^(?:关于)?(?P<place>[{CJK}]{{2,20}}?{_PLACE_SUFFIX_RE}){_TITLE_AFTER_UNIT}", title)
    if m and _is_division(m.group("place")):
        return government(m.group("place"))
    return None


def _is_place_name(name: str) -> bool:
    return "".join(place_words(name)) == name


def _is_division(name: str) -> bool:
    """A province, prefecture or county (not a development zone): its unit is its government."""
    words = place_words(name)
    return bool(words) and "".join(words) == name and all(is_place(w) for w in words)


def government(place: str) -> str:
    """The unit a place speaks as: its people's government (黄石市 -> 黄石市人民政府)."""
    return place + "人民政府"


def _core(short: str) -> str:
    """区重点区域署 -> 重点区域署: the leading 区/市/县 means 'this district'."""
    return short[1:] if len(short) >= 4 and short[0] in "区市县镇省" else short


def find_full_name(text: str, short: str) -> str | None:
    """A longer form of the short name somewhere in the text, with its place prefix:
    重点区域署 -> 深圳市龙岗区重点区域规划建设管理署 (from 《中共深圳市龙岗区重点区域规划建设管理署党组工作规则》)."""
    core = _core(short)
    if len(core) < 3 or core in GENERIC_ALIASES:
        return None
    pattern = "".join(re.escape(c) + f"[{CJK}]{{0,8}}?" for c in core[:-1]) + re.escape(core[-1])
    best = None
    for m in re.finditer(pattern, text):
        body = m.group(0)
        if len(body) > len(core) + 10 or text[m.end() : m.end() + 1] in ("员", "会", "室"):
            continue
        before = text[max(0, m.start() - 16) : m.start()]
        place = next((before[k:] for k in range(len(before) - 1) if split_place(before[k:] + body)[0] == before[k:]), "")
        if not place:
            continue
        full = place + body
        if best is None or len(full) > len(best):
            best = full
    return best


def _place_level(word: str) -> int:
    """0 province, 1 prefecture (a municipality is both: 1), 2 county, -1 unknown."""
    found = levels(word)
    return max(found) if found else -1


def _without_province(region: str) -> str:
    """A unit below the province is named without it: 浙江省杭州市上城区 -> 杭州市上城区."""
    words = place_words(region)
    if len(words) > 1 and _place_level(words[0]) == 0:
        return "".join(words[1:])
    return region


def _stem_region(text: str, level_word: str) -> str:
    """A province or prefecture the text names only by its stem (上海, in 考察上海重要讲话), for a unit
    that calls itself by the level's word alone (市国资委): the most named such place, or ''."""
    counts: Counter[str] = Counter()
    for name in division_names():
        if not name.endswith(level_word) or levels(name) == {2}:
            continue
        s = stem(name)
        if len(s) >= 2 and s in text:
            counts[name] = text.count(s)
    return counts.most_common(1)[0][0] if counts else ""


def qualify(subject: str, text: str, region: str) -> str:
    """A short subject with the place the text names: 区国资委 + 天津市武清区 -> 天津市武清区国资委,
    市国资委 + 上海 (named by its stem only) -> 上海市国资委. Unqualified when no place fits."""
    core = _core(subject)
    if core == subject:
        return subject
    level_word = subject[0]
    words = place_words(region)
    # keep the region's levels down to the one the subject's word names (区 -> a county, 市 -> a city)
    for k in range(len(words), 0, -1):
        if words[k - 1].endswith(level_word) and (level_word != "市" or _place_level(words[k - 1]) <= 1):
            return _without_province("".join(words[:k])) + core
    if level_word in "市省" and (place := _stem_region(text, level_word)):
        return place + core
    return core


def alias_set(names: list[str], region: str) -> tuple[str, ...]:
    """Every short form of the unit's names that a person might type, most specific first. A name
    without a place (区重点区域署) also gets the report's region: 龙岗区重点区域署."""
    out: set[str] = set()
    for name in filter(None, names):
        out |= short_forms(name)
        core = _core(name)
        out.add(core)
        if region and not place_words(core) and not core.startswith(ZONE_SUFFIXES) and not _is_place_name(core):
            out |= short_forms(region + core)
    return tuple(sorted((a for a in out if len(a) >= 2), key=lambda a: (-len(a), a)))


def plain_years(s: str) -> list[re.Match]:
    """The single years in s ("2024年"), not those of a range ("2021-2025年") nor of a full date."""
    ranges = [(m.start(), m.end()) for m in _RANGE.finditer(s)]
    out = []
    for m in _SINGLE_YEAR.finditer(s):
        if any(a <= m.start() < b for a, b in ranges):
            continue
        if re.match(r"\s*\d{1,2}\s*月\s*\d{1,2}\s*日", s[m.end():]):
            continue  # a date (2025年5月29日), not a year covered
        out.append(m)
    return out


def years_in(s: str) -> list[int]:
    """The years covered s names, in order: "2024年" and "二〇二四年" (not a range, not a date)."""
    found = [(m.start(), int(m.group(1))) for m in plain_years(s)]
    found += [(m.start(), int("".join(str(_CN_DIGITS[c]) for c in m.group(1)))) for m in _CN_YEAR.finditer(s)]
    return [year for _, year in sorted(found)]


def find_year(title: tuple[str, int, int] | None, head: list[_Line], opening: _Line | None,
              lines: list[_Line]) -> tuple[int, int, int] | None:
    """(year, start, end of the line it was read from): the title's, the head's, the opening
    sentence's, else the year most often written with 年度 in the first 3,000 characters."""
    if title and (ys := years_in(title[0])):
        return ys[0], title[1], title[2]
    for line in head:
        if not _SESSION.match(line.text.strip()) and (ys := years_in(line.text)):
            return ys[0], line.start, line.end
    if opening and (ys := years_in(re.split(r"[。！？]", opening.text, maxsplit=1)[0])):
        return ys[0], opening.start, opening.end
    found: Counter[int] = Counter()
    first: dict[int, _Line] = {}
    for line in lines:
        if line.start > 3000:
            break
        for m in plain_years(line.text):
            if line.text[m.end():m.end() + 1] == "度":
                year = int(m.group(1))
                found[year] += 1
                first.setdefault(year, line)
    if found:
        year = found.most_common(1)[0][0]
        return year, first[year].start, first[year].end
    return None


def year_from_published(published: str) -> int:
    """Reports on a year come out from its end to the next spring: a date up to April is the
    year before's report."""
    year, month = int(published[:4]), int(published[5:7])
    return year - 1 if month <= 4 else year


def extract_metadata(clean: CleanText) -> ReportMeta:
    text = clean.text
    lines = _lines(clean)
    head = head_lines(lines)
    title = find_title(head)
    opening = _opening(lines, head)
    signature_org, signature_date = find_signature(lines)
    spans: dict[str, tuple[int, int]] = {}
    review: list[tuple[str, str]] = []
    if title:
        spans["title"] = title[1:]

    # publication: the page's 发布日期, else its 成文日期, else the signature's date
    published = None
    if (f := clean.field(PUBLISHED_LABELS)) and (published := iso_date(_DATE.match(f.value.strip()))):
        spans["published"] = (f.start, f.end)
    elif (f := clean.field(WRITTEN_LABELS)) and (published := iso_date(_DATE.match(f.value.strip()))):
        spans["published"] = (f.start, f.end)
    elif signature_date and (published := line_date(signature_date.text)):
        spans["published"] = (signature_date.start, signature_date.end)

    year_found = find_year(title, head, opening, lines)
    year = None
    if year_found:
        year, *span = year_found
        spans["year"] = tuple(span)
    elif published:
        year = year_from_published(published)
        spans["year"] = spans["published"]
        review.append(("year", f"year taken from the publication date ({published})"))
    else:
        review.append(("year", "no year in the text"))

    # the unit: signature, title, a unit line in the head, the opening sentence's subject
    head_org = next((ln for ln in head if _org_like(ln.text.strip()) and (not title or ln.start >= title[2]
                                                                           or ln.end <= title[1])), None)
    subject = find_subject(opening.text) if opening else None
    named = title_org(title[0]) if title else None
    if subject and (_is_division(subject) or re.fullmatch(rf"[{CJK}]{{2,8}}[镇乡]", subject)):
        subject_org = government(subject)  # 2024年，黄石市深入学习… -> 黄石市人民政府
    else:
        subject_org = subject
    full, org_span = None, None
    if signature_org:
        full, org_span = _unit_line(signature_org.text.strip()), (signature_org.start, signature_org.end)
    elif named:
        full, org_span = named, spans["title"]
    elif head_org:
        full, org_span = _unit_line(head_org.text.strip()), (head_org.start, head_org.end)
    elif subject_org:
        org_span = (opening.start, opening.end)
        full = find_full_name(text, subject_org) if subject_org == subject else subject_org
    full = strip_party(full) if full else None
    place, _ = split_place(full) if full else ("", "")
    region = region_of(text, hint=full or "")
    if full is None and subject_org:
        # no long form anywhere: qualify a short name such as 区国资委 ('the district's') by the
        # place the text names: 天津市武清区国资委
        full = qualify(subject_org, text, region)
    org = full or ""
    if not org:
        posted = f" (the page was posted by {clean.source_unit})" if clean.source_unit else ""
        review.append(("org", f"no reporting unit in the text{posted}"))
    elif org_span:
        spans["org"] = org_span
    region = "".join(place_words(org)) or region
    # the text's own names for the unit; never the publisher (来源/发布机构 name who posted the page)
    own = [org, named or "", subject or "", subject_org or ""]
    if head_org:
        own.append(_unit_line(head_org.text.strip()))
    aliases = alias_set(own, region)
    title_text = title[0] if title else (f"{org}{year}年度报告" if org and year else "")
    return ReportMeta(title=title_text, org=org, aliases=aliases, region=region, year=year, published=published,
                      spans=tuple((k, a, b) for k, (a, b) in spans.items()), review=tuple(review))



"""Report metadata from the text alone (no LLM): title, unit and its short names, region, the year
covered and the publication date. Sources: title line, opening sentence, signature block, web
header; a manifest entry overrides any field."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .clean import _DATE, CleanText, iso_date
from .places import ZONE_SUFFIXES, place_words, region_of, split_place, strip_party

CJK = r"\u4e00-\u9fff"
_YEAR = r"(20\d{2})"
# Words a unit's name ends with. Longer ones first so the regex prefers them.
_ORG_SUFFIXES = (
    "管理委员会", "街道办事处", "委员会", "办公室", "管委会", "工作部", "人民政府", "办事处", "党工委",
    "高新区", "开发区", "经开区", "新区", "园区", "街道", "政府", "中心",
    "署", "委", "局", "办", "部", "厅", "处", "院", "所", "站", "队", "镇", "乡",
)
_ORG_SUFFIX_RE = "(?:" + "|".join(_ORG_SUFFIXES) + ")"
# Standard abbreviations of Chinese unit names, applied to full names to get the short names
# people type (珠海高新技术产业开发区党政办公室 -> 珠海高新区党政办).
_ABBREVIATIONS = (
    ("高新技术产业开发区", "高新区"),
    ("经济技术开发区", "经开区"),
    ("国有资产监督管理委员会", "国资委"),
    ("发展和改革委员会", "发改委"),
    ("人力资源和社会保障局", "人社局"),
    ("市场监督管理局", "市场监管局"),
    ("党政办公室", "党政办"),
    ("办公室", "办"),
    ("人民政府", "政府"),
    ("管理委员会", "管委会"),
)
# Names so generic that every unit of a kind calls itself by them: never a unit filter on their own.
GENERIC_ALIASES = frozenset(
    {"高新区", "开发区", "经开区", "新区", "园区", "管委会", "政府", "人民政府", "区政府", "市政府", "县政府",
     "街道", "办", "部", "局", "委", "署", "办公室", "本区", "我区", "全区", "中心", "党工委", "区委", "市委"}
)
_SELF_WORDS = ("我单位", "我部", "我局", "我委", "我办", "我署", "本单位")
_VERB_AFTER_SUBJECT = (
    "坚持", "在", "认真", "深入", "始终", "紧紧", "紧扣", "围绕", "按照", "全面", "以", "聚焦", "立足", "高度",
    "扎实", "积极", "持续", "牢固", "严格", "切实", "继续", "进一步", "深化", "着力", "贯彻", "把", "对", "结合",
)
_TITLE_WORDS = ("报告", "情况", "总结", "工作要点", "述职")


@dataclass(frozen=True)
class ReportMeta:
    title: str
    org: str
    aliases: tuple[str, ...]
    region: str
    year: int | None
    published: str | None


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


def find_title(lines: list[str]) -> str | None:
    if not lines:
        return None
    first = lines[0]
    if len(first) <= 80 and not first.endswith(("。", "：", ":", "；")) and any(w in first for w in _TITLE_WORDS):
        return first
    return None


def _is_date_line(line: str) -> bool:
    m = _DATE.search(line)
    return bool(m) and len(line) <= 20 and m.start() <= 2


def _org_like(s: str) -> bool:
    return bool(re.fullmatch(rf"[{CJK}（）()]{{2,40}}{_ORG_SUFFIX_RE}", s))


def find_signature(lines: list[str]) -> tuple[str | None, str | None]:
    """(unit, ISO date) from the signature block at the end of the report."""
    org = date = None
    for line in reversed(lines[-6:]):
        if date is None and _is_date_line(line):
            date = iso_date(_DATE.search(line))
            continue
        if org is None and len(line) <= 40 and _org_like(line):
            org = line
            break
        if len(line) > 40:
            break
    return org, date


def _opening(lines: list[str], title: str | None) -> str:
    for line in lines[1 if title else 0 :]:
        if len(line) <= 30 and line.endswith(("：", ":")):
            continue  # an addressee such as 区依法治区委员会：
        return line
    return ""


def find_subject(opening: str) -> str | None:
    """The unit the opening sentence speaks for: '2023年，区党政办坚持…', '现就区国资委2023年度…'."""
    verbs = "|".join(_VERB_AFTER_SUBJECT)
    patterns = (
        rf"{_YEAR}年度?[，,、\s]*(?P<org>[{CJK}]{{2,24}}?{_ORG_SUFFIX_RE})(?:{verbs})",
        rf"(?:现就|现将|关于)(?P<org>[{CJK}]{{2,24}}?{_ORG_SUFFIX_RE}){_YEAR}年",
        rf"^(?P<org>[{CJK}]{{2,24}}?{_ORG_SUFFIX_RE}){_YEAR}年",
    )
    sentence = re.split(r"[。！？]", opening, maxsplit=1)[0]
    for pattern in patterns:
        m = re.search(pattern, sentence)
        if m and m.group("org") not in _SELF_WORDS:
            return m.group("org")
    return None


def title_org(title: str | None) -> str | None:
    if not title:
        return None
    m = re.match(rf"^(?:关于)?(?P<org>[{CJK}（）()]{{2,40}}?{_ORG_SUFFIX_RE})(?:关于)?{_YEAR}年", title)
    return m.group("org") if m else None


def _core(short: str) -> str:
    """区重点区域署 -> 重点区域署: the leading 区/市/县 means 'this district'."""
    return short[1:] if len(short) >= 4 and short[0] in "区市县镇" else short


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


def abbreviate(name: str) -> str:
    for long, short in _ABBREVIATIONS:
        name = name.replace(long, short)
    return name


def alias_set(names: list[str], region: str) -> tuple[str, ...]:
    """Every short form of the unit's names that a person might type, most specific first."""
    out: set[str] = set()
    last_region = (place_words(region) or [""])[-1]
    for name in filter(None, names):
        for form in {name, abbreviate(name), _core(name)}:
            out.add(form)
            places = place_words(form)
            department = form[len("".join(places)) :]
            if places and department:
                # the department alone and with the last level of its place: 党政办, 高新区党政办
                for dept in {department, abbreviate(department)}:
                    out.update((dept, abbreviate(places[-1]) + dept))
            elif not places and last_region and form == _core(form) and not form.startswith(ZONE_SUFFIXES):
                out.add(abbreviate(last_region) + form)  # 重点区域署 -> 龙岗区重点区域署
    return tuple(sorted((a for a in out if len(a) >= 2), key=lambda a: (-len(a), a)))


def find_year(title: str | None, opening: str, text: str, published: str | None) -> int | None:
    if title and (m := re.search(_YEAR + "年", title)):
        return int(m.group(1))
    if m := re.search(_YEAR + "年", opening):
        return int(m.group(1))
    years = Counter(int(y) for y in re.findall(_YEAR + r"年度", text[:3000]))
    if years:
        return years.most_common(1)[0][0]
    if published:
        year, month = int(published[:4]), int(published[5:7])
        return year - 1 if month <= 4 else year  # reports on a year come out from its end to spring
    return None


def extract_metadata(clean: CleanText) -> ReportMeta:
    lines = _lines(clean.text)
    title = find_title(lines)
    signature_org, signature_date = find_signature(lines)
    opening = _opening(lines, title)
    published = clean.published or signature_date
    year = find_year(title, opening, clean.text, published)

    subject = find_subject(opening)
    named = title_org(title)
    full = signature_org or named
    if full is None and subject:
        full = find_full_name(clean.text, subject)
    full = strip_party(full) if full else None
    place, _ = split_place(full) if full else ("", "")
    region = region_of(clean.text, hint=full or "")
    if full is None and subject:
        # no long form anywhere: qualify a short name such as 区国资委 ('the district's') by
        # the region the text names: 天津市武清区国资委
        full = (region if _core(subject) != subject else "") + _core(subject)
    org = full or named or subject or clean.source_unit or ""
    region = place or region
    aliases = alias_set([org, named or "", subject or "", clean.source_unit or ""], region)
    if not title:
        title = f"{org}{year}年度报告" if org and year else ""
    return ReportMeta(title=title, org=org, aliases=aliases, region=region, year=year, published=published)

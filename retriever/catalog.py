"""The catalog of an index generation: its reports with their units, short names, places and years,
and the one place that resolves what a question is about (`Catalog.resolve`): which years, which
units (each with the reports that are its), and which units it names that no indexed report is.

Everything that knows what a unit name or a year looks like in a question lives here; the CLI, the
API, the Telegram bot and follow-up questions all ask `resolve`."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .metadata import GENERIC_ALIASES
from .names import spellings
from .places import ZONE_SUFFIXES, is_place, names_place, place_words, split_place, stem
from .types import Filters, Report

# A year as questions write it: 2023年, 2023年度, "2023 年", and a bare 2024 before a Chinese word
# ("天河市场监管2024一窗受理率"); not 2021—2022 ranges, not figures (2024件) — see _bare_year_ok.
_YEAR = re.compile(r"(?<![\d.])((?:19|20)\d{2})(?![\d.])(\s*年度?)?")
# Chinese-numeral years: 二〇二三年, 二零二三年度
_CN_YEAR = re.compile(r"([零〇一二三四五六七八九]{4})年")
_CN_DIGIT = str.maketrans("零〇一二三四五六七八九", "00123456789")
_RANGE_MARKS = "-—–~～至到"
# Quoted names of documents and titles hold years that are not the question's: 《…(2021—2022)》
_QUOTED = re.compile(r"《[^》]*》|“[^”]*”|\"[^\"]*\"")
# What a unit's name ends with after its place (宝安区|司法局, 西湖区|政府, 公义|镇), longest first
UNIT_ENDINGS = (
    "管理委员会", "街道办事处", "人民政府", "委员会", "办公室", "管委会", "工作部", "检察院", "法院", "街道办",
    "高新区", "开发区", "经开区", "新区", "政府", "街道",
    "署", "委", "局", "办", "厅", "镇", "乡", "区", "县", "市", "州", "盟", "旗",
)
# Characters no unit's name holds (particles, verbs of asking): "建成了珠海市", "事项里网上能办" are no
# units. Not 和/与/会/有, which names hold (人力资源和社会保障局, 委员会, 国有资产), nor 能 of 能源局
_NOT_IN_A_NAME = re.compile(r"[了的在是对把被将等及或也都要从向里可就还给让使第个]|能(?!源)")
_ENDING = "|".join(UNIT_ENDINGS)
# A department-shaped name a question opens with, no place needed (财政局2023年…, 小营街道2024年…,
# 龙岗那个署…): up to 20 characters ending in a department word, then a year, a non-Chinese
# character or a verb-like word. Place endings (区, 市 …) are left to the place table.
_LEADING_UNIT = re.compile(
    r"^([\u4e00-\u9fff]{1,20}?(?:街道办事处|委员会|办公室|管委会|工作部|检察院|法院|街道|公司|中心|局|署|委|办|厅|镇|乡))"
    r"(?=\d|[^\u4e00-\u9fff]|今年|去年|全年|在|的|有|共|对|开展|组织|召开|出具|办理|收到|提供|发布|公开|聘请|获得|完成|举办|和|与|及)"
)
# A department after a place: 宝安区|司法局, 嘉兴市|生态环境局, 武汉市|国资委 (the place is found
# with the place table; see _department_length for what may follow it).
_DEPARTMENT_CHARS = 12  # 国有资产监督管理委员会 (11), 城市管理和综合执法局 (10)
# Before a place's stem, a word that makes it part of another (全市中小学 holds 市中 of 市中区)
_WHOLE = frozenset("全本我该各")
# Words that join two names: 钱塘区政府常务会和嘉兴应急局 is two units, not one department
_JOINING = re.compile(r"[和与及、]")
# The bodies that govern a place, which a government's or zone's report speaks for (海安高新区党工委)
_GOVERNING = ("人民政府", "政府", "管委会", "管理委员会", "党工委", "党委", "区委", "市委", "县委")
_ENDING_AT_END = re.compile(rf"(?:{_ENDING})$")
# Question words: a name holding one is a question about units, not a unit (哪些街道, 什么局)
_ASKING = re.compile(r"哪|什么|几|谁|多少")
_FILLER = re.compile(r"那个|这个|哪个|的|那|这")
# Place words that are too common in questions to name a unit on their own (全市 = "the whole city")
_NOT_A_PLACE_MENTION = ("全市", "全区", "全县", "全省", "本市", "本区", "我市", "我区", "市直", "区直", "县直")
# How close an indexed unit's name must be to an unknown mention to be suggested (difflib ratio;
# 嘉兴市生态环境局 vs 嘉兴市应急管理局 is 0.5, unrelated units score below 0.3)
CLOSEST_MIN_RATIO = 0.34
CLOSEST_MAX = 3


def _n(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def parse_years(question: str) -> tuple[int, ...]:
    """The years a question is about: 2023年, 2023年度, 二〇二三年, and a bare 2024 followed by a
    Chinese word; none inside 《》 or quotes, none from a range (2021—2022, 2021-2025年)."""
    text = _QUOTED.sub(" ", _n(question))
    years = set()
    for m in _YEAR.finditer(text):
        after = text[m.end(1) : m.end(1) + 1]
        before = text[m.start(1) - 1 : m.start(1)] if m.start(1) else ""
        before_mark = text[m.start(1) - 2 : m.start(1) - 1] if m.start(1) >= 2 else ""
        after_mark = text[m.end(1) + 1 : m.end(1) + 2]
        if (before and before in _RANGE_MARKS and before_mark.isdigit()) or (
                after and after in _RANGE_MARKS and after_mark.isdigit()):
            continue  # a range of years: a plan's period, not the year asked about
        if m.group(2) or ("\u4e00" <= after <= "\u9fff" and after not in "件个次人项份名条家万亿元"):
            years.add(int(m.group(1)))
    for m in _CN_YEAR.finditer(text):
        years.add(int(m.group(1).translate(_CN_DIGIT)))
    return tuple(sorted(years))


_YEAR_WORDS = re.compile(r"(?<!\d)(?:19|20)\d{2}\s*年度?")  # 2023年, 2023年度: a year as written in a question


def without_years(text: str, by: str = "") -> str:
    """The text with its years as questions write them replaced by `by` (那2022年呢 -> 那呢)."""
    return _YEAR_WORDS.sub(by, text)


# A unit's name on its own (a follow-up "那宝安区司法局的呢"): a name ending in a unit word
_UNIT_NAME = re.compile(rf"[\u4e00-\u9fff]{{1,20}}(?:{_ENDING})")


def looks_like_unit(name: str) -> bool:
    return bool(_UNIT_NAME.fullmatch(name)) and not _NOT_IN_A_NAME.search(name)


# "有哪些街道或者镇的报告": kinds of unit a question lists reports of, by how the unit's name ends
_UNIT_KINDS = {
    "街道": r"街道(?:办事处|办)?$", "镇": r"镇(?:人民政府|政府)?$", "乡": r"乡(?:人民政府|政府)?$",
    "县": r"县(?:人民政府|政府)?$", "区": r"区(?:人民政府|政府)?$", "市": r"市(?:人民政府|政府)?$",
    "局": r"局$", "委": r"委(?:员会)?$", "厅": r"厅$", "开发区": r"(?:开发区|高新区|经开区)(?:管委会|管理委员会)?$",
}
# A question that asks of several units at once: 各区…, 分别, 两个区司法局, 哪些单位, 每个
_EACH_UNIT = re.compile(r"各|分别|[两二三四五六七八九十几]个|哪些|哪几|每个|每家")
_LEVELS = frozenset("省市区县镇乡")
_PLACE_SHAPED = re.compile(r"^([\u4e00-\u9fff]{1,6}?[省市区县镇乡])([\u4e00-\u9fff]{2,})$")  # 青石县|司法局
# Just before a unit's name, words that make it a kind, counted or asked for: 两个|县司法局, 各|区卫健委, 哪个|街道
_COUNTED_KIND = re.compile(r"(?:[两二三四五六七八九十几]个|各|每个|哪些|哪几个|哪个|哪一个|哪家)$")
_KIND_QUESTION = re.compile(r"(?:哪些|哪几|几个|几家|多少)([\u4e00-\u9fff、或和及与者还是]{1,12}?)的?报告")


def asked_unit_kinds(question: str) -> list[re.Pattern]:
    """The kinds of unit a listing question names (哪些街道或者镇的报告 -> 街道, 镇), as patterns."""
    m = _KIND_QUESTION.search(question)
    if not m:
        return []
    words = re.split(r"[、或和及与者还是]+", m.group(1))
    return [re.compile(_UNIT_KINDS[w]) for w in words if w in _UNIT_KINDS]


def _usable(alias: str) -> bool:
    return len(alias) >= 2 and alias not in GENERIC_ALIASES


def match_units(question: str, reports: Iterable[Report]) -> tuple[list[Report], list[str]]:
    """Reports whose unit the question names, by their aliases. A match inside a longer match of
    another report's alias does not count (珠海高新区党群工作部 names 党群工作部, not 珠海高新区…);
    generic names (高新区, 管委会 …) alone never do. The plain definition, a scan of every alias:
    the catalog uses UnitMatcher, which the tests hold to it."""
    text = _n(question)
    spans: list[tuple[int, int, Report, str]] = []
    for report in reports:
        best = None
        for alias in report.aliases:
            if not _usable(alias):
                continue
            at = text.find(_n(alias))
            if at >= 0 and (best is None or len(alias) > best[1] - best[0]):
                best = (at, at + len(alias), alias)
        if best:
            spans.append((best[0], best[1], report, best[2]))
    kept = [s for s in spans if not any(o[0] <= s[0] and s[1] <= o[1] and (o[1] - o[0]) > (s[1] - s[0]) for o in spans)]
    names = sorted({s[3] for s in kept}, key=lambda a: text.find(a))
    return [s[2] for s in kept], names


class UnitMatcher:
    """match_units for one set of reports, by dictionary lookups of the question's substrings
    instead of a scan of every alias of every report: the same result (tested against it), at a
    cost that grows with the question's length, not with the number of reports."""

    def __init__(self, reports: Iterable[Report]):
        self.by_alias: dict[str, list[tuple[int, Report, str]]] = {}
        self.rank: dict[str, int] = {}
        for report in reports:
            self.rank[report.id] = len(self.rank)
            for order, alias in enumerate(report.aliases):
                if _usable(alias):
                    self.by_alias.setdefault(_n(alias), []).append((order, report, alias))
        self.lengths = sorted({len(a) for a in self.by_alias})
        self.heads = {a[:2] for a in self.by_alias}  # most places in a question start no alias

    def spans(self, question: str) -> list[tuple[int, int, Report, str]]:
        """(start, end, report, alias) of each report's longest alias in the question, those inside a
        longer match of another alias left out, in the order of the reports."""
        text = _n(question)
        best: dict[str, tuple[int, int, int, Report, str]] = {}  # report id -> (start, end, order, report, alias)
        seen: set[tuple[str, str]] = set()
        for i in range(len(text)):  # left to right: the first occurrence of an alias is the one found
            if text[i : i + 2] not in self.heads:
                continue
            for n in self.lengths:
                if i + n > len(text):
                    break
                for order, report, alias in self.by_alias.get(text[i : i + n], ()):
                    if (report.id, alias) in seen:
                        continue
                    seen.add((report.id, alias))
                    old = best.get(report.id)
                    # the report's longest alias in the question; between equally long ones, its first
                    if old is None or len(alias) > old[1] - old[0] or (len(alias) == old[1] - old[0] and order < old[2]):
                        best[report.id] = (i, i + len(alias), order, report, alias)
        spans = [(b[0], b[1], b[3], b[4]) for b in best.values()]
        # containment is decided between the few distinct places named, not between every pair of
        # reports (many reports share a place: all years of a unit, all units under a short name)
        places = {(s[0], s[1]) for s in spans}
        inner = {p for p in places if any(o[0] <= p[0] and p[1] <= o[1] and (o[1] - o[0]) > (p[1] - p[0]) for o in places)}
        kept = [s for s in spans if (s[0], s[1]) not in inner]
        kept.sort(key=lambda s: self.rank[s[2].id])  # in the order of the reports, as match_units gives them
        return kept

    def match(self, question: str) -> tuple[list[Report], list[str]]:
        kept = self.spans(question)
        text = _n(question)
        names = sorted({s[3] for s in kept}, key=lambda a: text.find(a))
        return [s[2] for s in kept], names


def leading_unit(question: str) -> str | None:
    """The unit a question opens with (财政局2023年…, 龙岗那个署…), if it opens with one."""
    m = _LEADING_UNIT.match(_n(question).strip())
    return m.group(1) if m else None


def fuzzy_units(mention: str, reports: Iterable[Report]) -> list[Report]:
    """Reports a colloquial unit mention plausibly means: same last character (署, 局 …) and at
    least two more of its characters in the unit's name or region (龙岗那个署 -> 龙岗区…管理署)."""
    core = _FILLER.sub("", mention)
    if len(set(core[:-1])) < 2:
        return []  # "那局": nothing to tell one unit of a kind from another
    out = []
    for report in reports:
        names = report.org + report.region + "".join(report.aliases)
        if report.org.endswith(core[-1]) and sum(c in names for c in set(core[:-1])) >= min(2, len(set(core[:-1]))):
            out.append(report)
    return out


def canonical_place(word: str) -> str:
    """One spelling of a place word: a zone by its standard short name (珠海高新技术产业开发区 and
    珠海高新区 are one place)."""
    return min(spellings(word), key=lambda w: (len(w), w))


def _places_of(name: str) -> set[str]:
    return {canonical_place(w) for w in place_words(name)}


def _own_place(report: Report) -> str:
    """The most specific place of a report's unit (静海区 for 静海区卫生健康委)."""
    places = place_words(report.org) or place_words(report.region)
    return canonical_place(places[-1]) if places else ""


def _place_names(report: Report) -> set[str]:
    """Every place word of a report's unit and region, in full and as a stem (天河区, 天河); a zone
    named after a division also has that division (珠海高新区: 珠海, 珠海市)."""
    words = _places_of(report.org) | _places_of(report.region)
    for word in list(words):
        base = next((word[: -len(z)] for z in ZONE_SUFFIXES if word.endswith(z) and len(word) > len(z) + 1), "")
        if base:
            words |= {base} | {base + level for level in "市县区" if is_place(base + level)}
    return words | {stem(w) for w in words}


@dataclass(frozen=True)
class UnitMention:
    """A unit-shaped name in a question (宝安区司法局, 小营街道) at text[start:end]."""

    name: str
    start: int
    end: int
    places: tuple[str, ...]  # the place words it starts with


def _department_length(text: str, at: int) -> int:
    """How long the department named at text[at:] after a place is: the longest run of up to
    _DEPARTMENT_CHARS Chinese characters that ends in a unit word and holds no particle and no other
    place (武汉市|市场监督管理局, not 武汉市|市; 静海区|卫健委 in 静海区卫健委和静海区); 0 if none."""
    run = re.match(r"[\u4e00-\u9fff]*", text[at : at + _DEPARTMENT_CHARS]).group(0)
    for length in range(len(run), 0, -1):
        name = run[:length]
        if (_ENDING_AT_END.search(name) and not _NOT_IN_A_NAME.search(name)
                and not any(place_words(name[k:]) for k in range(1, length - 1))
                and not any(names_place(name[m.end():]) for m in _JOINING.finditer(name))):
            return length
    return 0


def unit_mentions(question: str) -> list[UnitMention]:
    """Names in a question shaped like a unit's: a known place followed by a department
    (宝安区司法局, 嘉兴市生态环境局, 西湖区政府, 杭州市), or a unit-shaped name the question opens with
    (小营街道2024年…). Used to tell a unit that is not indexed from no unit at all."""
    text = _n(question)
    out: list[UnitMention] = []
    i = 0
    while i < len(text):
        places = place_words(text[i:])
        if not places or text[i : i + 2] in _NOT_A_PLACE_MENTION:
            i += 1
            continue
        end = i + len("".join(places))
        end += _department_length(text, end)
        out.append(UnitMention(text[i:end], i, end, tuple(places)))
        i = end
    lead = leading_unit(text)
    if lead and (_ASKING.search(lead) or _NOT_IN_A_NAME.search(_FILLER.sub("", lead))):
        lead = None  # "库里有哪些街道…" asks about units, it names none; "…事项里网上能办" is no name
    if lead and not any(m.start < len(lead) for m in out) and lead not in GENERIC_ALIASES:
        out.insert(0, UnitMention(lead, 0, len(lead), tuple(place_words(lead))))
    return out


class Catalog:
    """The reports of one index generation and what questions can say of them."""

    def __init__(self, reports: Iterable[Report]):
        self.reports = list(reports)
        self.matcher = UnitMatcher(self.reports)
        self.by_year: dict[int | None, list[Report]] = {}
        for report in self.reports:
            self.by_year.setdefault(report.year, []).append(report)
        self.by_id = {r.id: r for r in self.reports}
        self._places: dict[str, set[str]] | None = None
        self._stems: dict[str, tuple[str, ...]] | None = None

    @property
    def places(self) -> dict[str, set[str]]:
        """Report id -> the place words of its unit (built on first use: at 33k reports it takes
        about a second, and most questions name an alias and never need it)."""
        if self._places is None:
            self._places = {r.id: _place_names(r) for r in self.reports}
        return self._places

    @property
    def rank(self) -> dict[str, int]:
        return self.matcher.rank

    def resolve(self, question: str, years: Iterable[int] = (), orgs: Iterable[str] = ()) -> Filters:
        """What the question is about: its years and units (explicit ones take precedence), each
        unit with its reports; units named by the shape of a unit's name that no indexed report
        is, in `unknown` (the question must then not be answered from another unit's report)."""
        years = tuple(sorted(set(years))) or parse_years(question)
        orgs = tuple(o for o in orgs if o)
        if orgs:
            groups = []
            for org in orgs:
                found = [s[2] for s in self.matcher.spans(org)]
                found += [r for r in self.reports if org in r.org and r not in found]
                groups.append((org, tuple(dict.fromkeys(r.id for r in found))))
            unknown = tuple(org for org, ids in groups if not ids)
            return self._filters(years, [g for g in groups if g[1]], unknown)
        text = _n(question)
        spans = self.matcher.spans(text)
        mentions = unit_mentions(text)
        # an alias inside a longer unit-shaped name of another place is not that unit:
        # 武汉市国资委 does not name 上海市国资委 by its short name 国资委
        kept = []
        for s in spans:
            if len(s[3]) <= 2 and text[max(0, s[0] - 1) : s[0]] in _WHOLE and s[0] > 0:
                continue  # 全市中小学 does not name 市中(区)
            if _COUNTED_KIND.search(text, 0, s[0]):
                continue  # 两个县司法局, 各区卫健委: a kind of unit, counted, not one unit (units_of_kind)
            around = next((m for m in mentions if m.start <= s[0] and s[1] <= m.end), None)
            if around and around.places and not _places_of(around.name) <= self.places[s[2].id] | _places_of(s[3]):
                continue
            if (around and around.places and s[1] < around.end
                    and not around.name.endswith(_GOVERNING) and around.name != "".join(around.places)):
                continue  # 杭州市司法局 names a department of 杭州市, not 杭州市人民政府 (alias 杭州市)
            kept.append(s)
        groups_by_name: dict[str, list[str]] = {}
        for _start, _end, report, alias in sorted(kept, key=lambda s: (s[0], self.rank[s[2].id])):
            groups_by_name.setdefault(alias, []).append(report.id)
        # units named by another alias of the same reports are one unit (杭州市 and 杭州)
        groups: list[tuple[str, tuple[str, ...]]] = []
        for name, ids in groups_by_name.items():
            same = next((g for g in groups if set(g[1]) & set(ids)), None)
            if same:
                groups[groups.index(same)] = (same[0], tuple(dict.fromkeys(same[1] + tuple(ids))))
            else:
                groups.append((name, tuple(ids)))
        covered = [(s[0], s[1]) for s in kept]
        unknown = []
        for m in mentions:
            if any(a < m.end and m.start < b for a, b in covered):
                continue
            named = [i for _, ids in groups for i in ids]
            if m.places and m.name == "".join(m.places) and _places_of(m.name) <= {
                    w for i in named for w in self.places[i]} and not _places_of(m.name) & {_own_place(self.by_id[i]) for i in named}:
                continue  # 珠海高新区建成了珠海市第一个…: a place above a unit named is context, not a unit
            if not m.places or m.name == "".join(m.places):
                # a place alone (天河区…) names the units of that place when its government has no report
                ids = tuple(r.id for r in self.reports if m.places and _places_of(m.name) <= self.places[r.id])
                if ids:
                    groups.append((m.name, ids))
                    continue
                if not m.places:  # a unit-shaped opening: a colloquial name of an indexed unit?
                    fuzzy = fuzzy_units(m.name, self.reports)
                    if fuzzy:
                        groups.append((m.name, tuple(r.id for r in fuzzy)))
                        continue
            unknown.append(m.name)
        if not groups and not unknown:
            # a place by its stem alone (海安那份报告, 天河的个体户): the units of that place
            stems = [(stem_, ids) for stem_, ids in self.place_stems.items()
                     if any(text[max(0, m.start() - 1) : m.start()] not in _WHOLE for m in re.finditer(re.escape(stem_), text))]
            if stems:
                return replace(self._filters(years, stems, ()), by_stem=True)
        return self._filters(years, groups, tuple(unknown))

    @property
    def place_stems(self) -> dict[str, tuple[str, ...]]:
        """The stems of the indexed units' places (海安 of 海安高新区, 天河 of 天河区), each with the
        reports of that place; the most specific place of a report only, so that 广州 names no unit of
        天河区. Built on first use."""
        if self._stems is None:
            stems: dict[str, list[str]] = {}
            for report in self.reports:
                word = _own_place(report)
                if word:
                    for zone in ZONE_SUFFIXES:
                        word = word.removesuffix(zone)
                    word = stem(word)
                    if len(word) >= 2 and word not in GENERIC_ALIASES:
                        stems.setdefault(word, []).append(report.id)
            self._stems = {k: tuple(v) for k, v in stems.items()}
        return self._stems

    def _filters(self, years, groups, unknown) -> Filters:
        ids = tuple(dict.fromkeys(i for _, g in groups for i in g))
        return Filters(years=years, report_ids=ids, orgs=tuple(n for n, _ in groups) + tuple(unknown),
                       groups=tuple(groups), unknown=tuple(unknown))

    def reports_of(self, filters: Filters) -> list[Report]:
        """The reports the filters leave, in index order (without going through every report)."""
        if filters.orgs:
            reports = [self.by_id[i] for i in dict.fromkeys(filters.report_ids) if i in self.by_id]
            if filters.years:
                reports = [r for r in reports if r.year in filters.years]
        elif filters.years:
            reports = [r for y in set(filters.years) for r in self.by_year.get(y, [])]
        else:
            return self.reports
        return sorted(reports, key=lambda r: self.rank[r.id])

    def units_of_kind(self, question: str, filters: Filters, each: bool = False) -> list[Report]:
        """The reports of every unit of the kind a question names when it asks of each of them and
        names none (两个区司法局2022年…分别多少件, 各区卫健委…): units whose department, in any of its
        spellings (卫生健康委员会 / 卫健委), the question says, at the level it says (区司法局: a
        district's); none unless two or more are. `each`: the question is known to ask of several
        (a ranking: 哪个区司法局…最多)."""
        text = _n(question)
        if filters.groups or not (each or _EACH_UNIT.search(text)):
            return []
        out = []
        for report in self.reports_of(filters):
            place, department = split_place(report.org)
            if not place:  # a place the table does not hold: up to its level word (青石县|司法局)
                m = _PLACE_SHAPED.match(report.org)
                place, department = (m.group(1), m.group(2)) if m else ("", report.org)
            if not place or len(department) < 2:
                continue
            at = next((text.find(form) for form in sorted(spellings(department), key=len, reverse=True) if form in text), -1)
            if at < 0:
                continue
            level = text[at - 1 : at] if at else ""
            if level in _LEVELS and not place.endswith(level):
                continue  # 区司法局: not a city's or a county's
            out.append(report)
        return out if len(out) >= 2 else []

    def closest(self, name: str, n: int = CLOSEST_MAX) -> list[str]:
        """Indexed unit names nearest an unknown mention, for the refusal to suggest."""
        orgs = list(dict.fromkeys(r.org for r in self.reports))
        scored = sorted(((difflib.SequenceMatcher(None, name, org).ratio(), org) for org in orgs), reverse=True)
        return [org for ratio, org in scored[:n] if ratio >= CLOSEST_MIN_RATIO]

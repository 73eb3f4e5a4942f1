"""Short names of government units, from general rules: the standard abbreviations of body names
(retriever/abbreviations.tsv) and place prefixes dropped level by level, each place also by its
stem (广州市天河区市场监督管理局 -> 天河区市场监管局, 天河市场监管局, 市场监管局 …). Used for a
report's aliases at ingest and for the units a question names."""

from __future__ import annotations

import itertools
import re
from functools import lru_cache
from importlib import resources

from .places import ZONE_SUFFIXES, autonomous_short, is_place, place_words, stem, strip_party

# Beyond this many spellings of one name the combinations stop (a name with three replaceable
# parts, each with three short forms, has 64; real unit names have one or two such parts).
MAX_VARIANTS = 64
_GOVERNMENT = ("人民政府", "政府")
# what governs a development zone: its committee goes by the zone's name (襄阳高新区管委会 -> 襄阳高新区)
_ZONE_GOVERNMENT = ("管理委员会", "管委会")
# A town or street office inside a unit's name, a place level below the county the division
# table does not list: 公义镇人民政府 -> 公义镇 + 人民政府; 五常街道办事处 -> 五常街道 + 办事处.
_TOWN = re.compile(r"^([\u4e00-\u9fff]{2,5}?(?:镇|乡|街道))(人民政府|政府|办事处|办|)$")
# A zone named after no division (贵安新区管委会 -> 贵安新区 + 管委会), read as a place like a town.
_ZONE = re.compile(r"^([\u4e00-\u9fff]{2,6}?(?:" + "|".join(ZONE_SUFFIXES) + r"))(" + "|".join(_ZONE_GOVERNMENT) + r")$")


@lru_cache(maxsize=1)
def _rows() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(full name, its short forms) in the table's order."""
    rows = []
    for line in resources.files("retriever").joinpath("abbreviations.tsv").read_text("utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        full, shorts = line.split("\t")
        rows.append((full, tuple(s for s in shorts.split(";") if s and s != full)))
    return tuple(rows)


@lru_cache(maxsize=1)
def abbreviations() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(full name, its short forms), longest full name first."""
    return tuple(sorted(_rows(), key=lambda r: -len(r[0])))


@lru_cache(maxsize=1)
def _expansions() -> dict[str, str]:
    """Short form -> the full name it abbreviates; a short form of several full names (卫健委:
    卫生健康委员会, 卫生和健康委员会) stands for the one the table lists first, the standard name."""
    out: dict[str, str] = {}
    for full, shorts in _rows():
        for short in shorts:
            out.setdefault(short, full)
    return out


def spellings(name: str) -> set[str]:
    """The name with each standard full form it contains replaced by its short forms, in every
    combination: 珠海高新技术产业开发区党政办公室 -> 珠海高新区党政办公室, 珠海高新区党政办 …"""
    out, todo = {name}, [name]
    while todo and len(out) < MAX_VARIANTS:
        current = todo.pop()
        for full, shorts in abbreviations():
            if full not in current:
                continue
            for short in shorts:
                variant = current.replace(full, short)
                if variant not in out:
                    out.add(variant)
                    todo.append(variant)
    return out


def full_department(short: str) -> str:
    """A department's full name from its standard short form: 国资委 -> 国有资产监督管理委员会,
    卫生健康委 -> 卫生健康委员会; a name with no known short form ending it comes back as given."""
    table = _expansions()
    if any(short.endswith(full) for full, _ in _rows()):
        return short  # already written out: 人民政府, 司法局办公室
    for n in range(len(short), 1, -1):  # the longest short form the name ends with
        tail = short[-n:]
        if tail in table:
            return short[:-n] + table[tail]
    return short


def full_form(name: str) -> str:
    """The unit's name with its department written out: 天津市武清区国资委 -> 天津市武清区国有资产监督管理委员会."""
    places = "".join(place_words(name))
    return places + full_department(name[len(places):])


def _level_word(place: str) -> str:
    """The level a place name ends with (市, 区, 县 …), which also stands for 'this' place: 市应急管理局."""
    return next((s for s in ("省", "市", "区", "县", "州", "旗", "镇", "乡") if place.endswith(s)), "")


def _place_forms(place: str) -> set[str]:
    """A place as written and as its stem (天河区, 天河), an autonomous one also by its everyday name
    (恩施土家族苗族自治州: 恩施州, 恩施); zones and towns only as written."""
    forms = {place}
    if is_place(place) and len(stem(place)) >= 2:
        forms.add(stem(place))
    if is_place(place) and (short := autonomous_short(place)):
        forms.add(short)
    return forms


def _split(name: str) -> tuple[list[str], str]:
    """Place levels and the rest: 眉山市彭山区公义镇人民政府 -> ([眉山市, 彭山区, 公义镇], 人民政府)."""
    places = place_words(name)
    rest = name[len("".join(places)):]
    if not places and (m := _ZONE.match(rest)):
        return [m.group(1)], m.group(2)
    m = _TOWN.match(rest)
    if m and m.group(2):
        places, rest = places + [m.group(1)], m.group(2)
    elif m and not m.group(2) and not is_place(rest):
        places, rest = places + [m.group(1)], ""
    return places, rest


def short_forms(name: str) -> set[str]:
    """Every name a person may write for the unit: the full name (its department also written out),
    its standard abbreviations, with
    the place prefix dropped level by level and each place also as its stem, the department alone
    and with the word of its level (市应急管理局). A government also goes by its place
    (杭州市人民政府 -> 杭州市, 杭州, 杭州市政府, 杭州政府). Generic forms (政府, 局 …) are included:
    callers filter them (metadata.GENERIC_ALIASES)."""
    name = strip_party(name.strip())
    out: set[str] = set()
    # from the name as written and with its department written out (市国资委 -> 市国有资产监督管理委员会)
    for variant in spellings(name) | spellings(full_form(name)):
        places, rest = _split(variant)
        if not places:
            out.add(variant)
            continue
        zone = next((z for z in ZONE_SUFFIXES if places[-1].endswith(z)), "")
        government = rest in _GOVERNMENT or not rest or (bool(zone) and rest in _ZONE_GOVERNMENT)
        for k in range(len(places) + 1):
            kept = places[k:]
            for combo in itertools.product(*(_place_forms(p) for p in kept)):
                prefix = "".join(combo)
                if rest:
                    out.add(prefix + rest)
                if government and prefix:
                    out.add(prefix)
        if rest:
            out.add(_level_word(places[-1]) + rest)  # 市应急管理局, 区卫健委
        if zone:  # 北京经开区 -> 经开区, 经开区管委会
            out.update({zone, zone + rest})
    return {a for a in out if len(a) >= 2}

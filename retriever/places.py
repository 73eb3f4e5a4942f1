"""Chinese place names (provinces, prefectures, counties) for telling a unit's place prefix from
the rest of its name, and the region a report speaks of."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

# 新区 before 区: a new area that is a county-level division goes by its stem (浦东新区 -> 浦东)
_LEVEL_SUFFIXES = ("特别行政区", "自治区", "自治州", "自治县", "自治旗", "地区", "林区", "新区", "省", "市", "区", "县", "州", "盟",
                   "旗")
# Autonomous divisions are named after their peoples (恩施土家族苗族自治州, 长阳土家族自治县) and
# called by their place name with the level's word: 恩施州, 长阳县; their stem is the place name.
_AUTONOMOUS_SUFFIXES = ("自治区", "自治州", "自治县", "自治旗")
_PEOPLES = (
    "蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜", "满", "侗", "瑶", "白", "土家", "哈尼", "哈萨克",
    "傣", "黎", "傈僳", "佤", "畲", "拉祜", "水", "东乡", "纳西", "景颇", "柯尔克孜", "土", "达斡尔", "仫佬", "羌",
    "布朗", "撒拉", "毛南", "仡佬", "锡伯", "阿昌", "普米", "塔吉克", "怒", "乌孜别克", "俄罗斯", "鄂温克", "德昂",
    "保安", "裕固", "京", "塔塔尔", "独龙", "鄂伦春", "赫哲", "门巴", "珞巴", "基诺", "各",
)
# the peoples a name ends with: "土家族苗族", "蒙古" (恩施|土家族苗族, 博尔塔拉|蒙古); a one-character
# people only with 族 (大理|白族), so that a place's own last character is never taken for one
_PEOPLES_TAIL = re.compile(
    "(?:" + "|".join(sorted((p + "族?" if len(p) > 1 else p + "族") for p in _PEOPLES)[::-1]) + ")+$"
)
ZONE_SUFFIXES = ("高新技术产业开发区", "经济技术开发区", "经济开发区", "高新区", "经开区", "开发区", "新区")


@dataclass(frozen=True)
class Place:
    code: str
    name: str

    @property
    def level(self) -> int:  # 0 province, 1 prefecture, 2 county
        return 0 if self.code[2:] == "0000" else 1 if self.code[4:] == "00" else 2

    @property
    def parent_codes(self) -> tuple[str, ...]:
        return (self.code[:2] + "0000", self.code[:4] + "00")[: self.level]


def stem(name: str) -> str:
    """天河区 -> 天河; 恩施土家族苗族自治州 -> 恩施 (its peoples dropped too); 东乡族自治县 -> 东乡."""
    for suffix in _LEVEL_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            rest = name[: -len(suffix)]
            if suffix in _AUTONOMOUS_SUFFIXES:
                m = _PEOPLES_TAIL.search(rest)
                while m and m.start() < 2:  # the place name keeps 2 characters: 东乡|族, not |东乡族
                    m = _PEOPLES_TAIL.search(rest, m.start() + 1)
                if m and m.start() >= 2:
                    rest = rest[: m.start()]
                elif rest.endswith("族") and len(rest) >= 3:
                    rest = rest[:-1]
            return rest
    return name


def autonomous_short(name: str) -> str:
    """The everyday name of an autonomous prefecture, county or banner: its place name and its
    level's word (恩施土家族苗族自治州 -> 恩施州, 长阳土家族自治县 -> 长阳县); '' for other names."""
    suffix = next((s for s in _AUTONOMOUS_SUFFIXES[1:] if name.endswith(s)), "")
    return stem(name) + suffix[-1] if suffix else ""


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, list[Place]], dict[str, Place], frozenset[str]]:
    by_name: dict[str, list[Place]] = {}
    by_code: dict[str, Place] = {}
    for line in resources.files("retriever").joinpath("places.txt").read_text("utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        code, name = line.split("\t")
        place = Place(code, name)
        by_name.setdefault(name, []).append(place)
        by_code.setdefault(code, place)
    for code, place in list(by_code.items()):  # 恩施州 is 恩施土家族苗族自治州, unless it names another place
        short = autonomous_short(place.name)
        if short and short not in by_name:
            by_name[short] = [Place(code, short)]
    stems = frozenset(stem(n) for n in by_name if len(stem(n)) >= 2)
    return by_name, by_code, stems


@lru_cache(maxsize=1)
def _names_by_opening() -> dict[str, list[str]]:
    """Place names of 3 or more characters, by their first two characters."""
    out: dict[str, list[str]] = {}
    for name in _table()[0]:
        if len(name) >= 3:
            out.setdefault(name[:2], []).append(name)
    return out


def names_in(text: str) -> set[str]:
    """The place names of 3 or more characters the text contains. Only names whose first two
    characters the text has are looked for, not all 3,400 (that scan cost 12 ms a report)."""
    openings = _names_by_opening()
    pairs = {text[i : i + 2] for i in range(len(text) - 1)} & openings.keys()
    return {name for pair in pairs for name in openings[pair] if name in text}


def is_place(name: str) -> bool:
    return name in _table()[0]


def levels(name: str) -> set[int]:
    """The levels a division name is at (0 province, 1 prefecture, 2 county); a municipality such
    as 天津市 is at 0 and 1; empty for a name that is no division."""
    return {p.level for p in _table()[0].get(name, [])}


def division_names() -> list[str]:
    return list(_table()[0])


def _place_at(name: str, i: int) -> int:
    """Length of the place word starting at name[i] (a division name, or a stem plus a zone
    suffix such as 珠海高新技术产业开发区), 0 if none."""
    by_name, _, stems = _table()
    best = 0
    for j in range(min(len(name), i + 12), i + 1, -1):
        word = name[i:j]
        if word in by_name:
            best = max(best, j - i)
            break
    for j in range(i + 2, min(len(name), i + 6) + 1):
        if name[i:j] in stems or name[i:j] in by_name:
            for zone in ZONE_SUFFIXES:
                if name.startswith(zone, j):
                    best = max(best, j - i + len(zone))
    return best


def names_place(text: str) -> bool:
    """Whether text opens with a place, by its full name or its stem (嘉兴市…, 嘉兴应急局)."""
    stems = _table()[2]
    return bool(place_words(text)) or any(text[:n] in stems for n in (2, 3, 4))


def place_words(name: str) -> list[str]:
    """The place words a name starts with: 深圳市龙岗区重点区域署 -> ['深圳市', '龙岗区']."""
    words, i = [], 0
    while i < len(name):
        step = _place_at(name, i)
        if not step:
            break
        words.append(name[i : i + step])
        i += step
    return words


def split_place(name: str) -> tuple[str, str]:
    """('深圳市龙岗区', '重点区域规划建设管理署'); ('', name) when it starts with no place."""
    place = "".join(place_words(name))
    if not place or place == name:
        return "", name
    return place, name[len(place) :]


def region_of(text: str, hint: str = "") -> str:
    """The region a report speaks of: the most specific place it names, with those of its parent
    divisions it also names (天津市武清区). `hint` (the unit's name) counts first."""
    by_name, by_code, _ = _table()
    counts = Counter({name: text.count(name) for name in names_in(text)})
    for name in list(counts):
        if name in hint:
            counts[name] += 1000
    if not counts:
        return ""

    def support(place: Place) -> int:
        return sum(counts[by_code[c].name] for c in place.parent_codes if c in by_code)

    candidates = [p for name in counts for p in by_name[name]]
    best = max(candidates, key=lambda p: (counts[p.name] + support(p), p.level, -text.find(p.name)))
    chain = [by_code[c] for c in best.parent_codes if c in by_code and by_code[c].name in counts]
    names = list(dict.fromkeys(p.name for p in chain if p.name != best.name))
    return "".join(names) + best.name


_STRIP_PARTY = re.compile(r"^(?:中共|中国共产党)")


def strip_party(name: str) -> str:
    return _STRIP_PARTY.sub("", name)

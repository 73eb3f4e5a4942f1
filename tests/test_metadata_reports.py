"""Report metadata on reports nobody tuned for: the dev report openings (../shared/dev_reports, with
SOURCES.tsv giving each one's true unit, short names, year and publication date), the seed reports
unchanged, and each rule on small made-up texts."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from retriever.chunking import chunk_report
from retriever.clean import PUBLISHER_LABELS, clean_text
from retriever.ingest import parse_report
from retriever.metadata import GENERIC_ALIASES
from retriever.names import full_form, short_forms
from retriever.places import place_words
from retriever.readers import read_file

from .conftest import REPORTS, SHARED, needs_shared

DEV_REPORTS = SHARED / "dev_reports"
needs_dev = pytest.mark.skipif(not (DEV_REPORTS / "SOURCES.tsv").is_file(), reason="../shared/dev_reports is absent")
MAX_FLAGGED = 1  # of the 16 dev reports, at most one may still need a person's check

# The seed reports' metadata as indexed before the general rules (govqa reports): unit, year,
# publication date and short names. Unit, year and date must stay; the short names stay among more.
SEEDS = {
    "000_664a3152b5d6de2d.txt": ("珠海高新技术产业开发区党群工作部", 2022, "2022-12-28", {"高新区党群工作部", "区党群工作部", "党群工作部"}),
    "001_a601106507d35663.txt": ("珠海高新技术产业开发区党政办公室", 2023, "2023-11-21", {"党政办公室", "区党政办", "党政办"}),
    "002_cdcfa3983a87bb7e.txt": ("深圳市龙岗区重点区域规划建设管理署", 2023, None, {"龙岗区重点区域署", "区重点区域署", "重点区域署"}),
    "003_c71c3cfda82aea0c.txt": ("海安高新技术产业开发区", 2023, "2024-03-19", {"海安高新技术产业开发区", "海安高新区"}),
    "004_7470bc842f3634e7.txt": ("天津市武清区国资委", 2023, None, {"武清区国资委", "区国资委", "国资委"}),
}


def _sources() -> list[dict]:
    with open(DEV_REPORTS / "SOURCES.tsv", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _canonical(name: str) -> str:
    """One spelling of a unit: the department written out, a government as its place."""
    name = full_form(name.strip())
    return name[: -len("人民政府")] if name.endswith("人民政府") and len(name) > 4 else name


def same_unit(found: str, expected: str) -> bool:
    """The same unit, possibly with higher place levels missing when the text never names them
    (五常街道 for 杭州市余杭区五常街道办事处)."""
    f, e = _canonical(found), _canonical(expected)
    if f == e:
        return True
    prefix = e[: len(e) - len(f)]
    return e.endswith(f) and "".join(place_words(prefix)) == prefix


def _plausible_short_names(cell: str) -> list[str]:
    """The short names of SOURCES.tsv a person would type for the unit: not the report's way of
    saying 'we' (我委, 全局), not a bare kind of body (街道, 区政府, 厅), not the unit's party group
    (厅党组), not a name SOURCES notes as a nickname or as no name at all ("亦庄 (in 亦庄经验)")."""
    out = []
    for name in (n.strip() for n in cell.split(";")):
        if not name or "(" in name or name.startswith(("我", "全", "本")) or name in GENERIC_ALIASES:
            continue
        if len(name) < 2 or name.endswith("党组"):
            continue
        out.append(name)
    return out


@needs_dev
def test_every_dev_report_is_parsed_with_its_unit_and_year():
    flagged, wrong = [], []
    for row in _sources():
        report = parse_report(DEV_REPORTS / row["file"])
        expected = row["organisation"].split(" (")[0]
        if not same_unit(report.org, expected) or report.year != int(row["report_year"]):
            wrong.append((row["file"], report.org, report.year, expected, row["report_year"]))
        if report.review:
            flagged.append((row["file"], report.review))
        date = row["publication_date"]
        if date and "from URL" not in date:  # the page states it: it must be read
            assert report.published == date, row["file"]
    assert not wrong
    assert len(flagged) <= MAX_FLAGGED, flagged


@needs_dev
def test_short_names_people_type_are_aliases_and_publishers_are_not():
    missing, publishers = [], []
    for row in _sources():
        report = parse_report(DEV_REPORTS / row["file"])
        missing += [(row["file"], n) for n in _plausible_short_names(row["short_names"]) if n not in report.aliases]
        clean = clean_text(read_file(DEV_REPORTS / row["file"]))
        posted = {f.value for f in clean.fields if f.label in PUBLISHER_LABELS and f.value}
        publishers += [(row["file"], p) for p in posted if p in report.aliases]
    assert not missing
    assert not publishers


@needs_dev
def test_spans_point_at_the_lines_fields_were_read_from():
    for row in _sources():
        report = parse_report(DEV_REPORTS / row["file"])
        spans = {kind: report.text[a:b] for kind, a, b in report.spans}
        assert str(report.year) in spans["year"], row["file"]
        assert "org" in spans, row["file"]
        if report.published:
            digits = re.sub(r"\D", "", spans["published"])
            assert report.published.replace("-", "") in digits, row["file"]
        if "title" in spans:
            assert spans["title"].replace("\n", "") == report.title


@needs_dev
def test_header_fields_stay_in_the_text_and_are_never_passages():
    for row in _sources():
        report = parse_report(DEV_REPORTS / row["file"])
        field_lines = [ln for ln in report.text.split("\n") if re.search(r"(发布日期|发布时间|索引号|来源)\s*[:：]", ln) and len(ln) < 100]
        passages = chunk_report(report)
        assert passages, row["file"]
        for line in field_lines:
            assert not any(line in p.text for p in passages), (row["file"], line)


@needs_shared()
@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_reports_keep_their_metadata(name):
    org, year, published, aliases = SEEDS[name]
    report = parse_report(REPORTS / name)
    assert (report.org, report.year, report.published) == (org, year, published)
    assert aliases <= set(report.aliases)
    assert report.review == ()


# --- each rule on made-up texts -------------------------------------------------------------

def _parse(tmp_path: Path, text: str):
    path = tmp_path / "r.txt"
    path.write_text(text, encoding="utf-8")
    return parse_report(path)


def test_a_county_as_the_subject_is_its_government(tmp_path):
    report = _parse(tmp_path, "2023年，安吉县深入推进依法行政，全面建设法治政府。\n一、主要成效\n全年办理行政复议案件12件，纠错2件。\n")
    assert report.org == "安吉县人民政府"
    assert {"安吉县", "安吉", "安吉县政府"} <= set(report.aliases)
    assert report.year == 2023


def test_a_town_and_a_unit_after_an_opening_phrase(tmp_path):
    town = _parse(tmp_path, "2022年，新登镇坚持依法行政，扎实推进法治政府建设。全年化解矛盾纠纷86起。\n")
    assert town.org == "新登镇人民政府" and "新登镇" in town.aliases
    bureau = _parse(tmp_path, "2024年以来，在县委、县政府的坚强领导下，桐庐县应急管理局坚持依法行政。全年执法检查310次。\n")
    assert bureau.org == "桐庐县应急管理局"
    assert {"桐庐县应急局", "桐庐应急局", "县应急管理局"} <= set(bureau.aliases)


def test_a_title_over_two_lines(tmp_path):
    text = "永嘉县司法局2023年度法治\n政府建设情况报告\n2023年，县司法局坚持依法行政。全年办理法律援助案件420件。\n"
    report = _parse(tmp_path, text)
    assert report.title == "永嘉县司法局2023年度法治政府建设情况报告"
    assert report.org == "永嘉县司法局" and report.year == 2023
    title_span = next((a, b) for kind, a, b in report.spans if kind == "title")
    assert report.text[slice(*title_span)] == "永嘉县司法局2023年度法治\n政府建设情况报告"
    assert all("政府建设情况报告" not in p.text for p in chunk_report(report))


def test_a_report_to_the_congress_with_its_unit_under_the_session_line(tmp_path):
    text = ("关于宁波市2023年度法治政府建设情况的报告\n（2024年4月25日在宁波市第十六届人民代表大会常务委员会第十八次会议上）\n"
            "宁波市人民政府\n主任、各位副主任、秘书长、各位委员：\n2023年，我市坚持依法行政。全年制定规章3件。\n")
    report = _parse(tmp_path, text)
    assert (report.org, report.year) == ("宁波市人民政府", 2023)
    assert {"宁波市", "宁波", "宁波市政府"} <= set(report.aliases)


def test_header_fields_are_fields_not_title_or_passages(tmp_path):
    text = ("2023年法治政府建设工作报告\n • 索引号:11330100/2024-00012\n • 发布机构:某县人民政府办公室\n"
            " • 名 称:2023年法治政府建设工作报告\n • 成文日期:2024-02-01\n时间: 2024- 02- 05 09: 30 来源: 县政府门户网站 浏览次数:\n"
            "嵊泗县交通运输局\n2023年，局党组坚持依法行政，全面推进法治建设。全年办理行政许可1020件。\n")
    report = _parse(tmp_path, text)
    assert report.title == "2023年法治政府建设工作报告"
    assert (report.org, report.year, report.published) == ("嵊泗县交通运输局", 2023, "2024-02-05")
    assert "嵊泗交通局" in report.aliases
    assert not {"某县人民政府办公室", "县政府门户网站"} & set(report.aliases)  # who posted the page is no name of the unit
    published = next(report.text[a:b] for kind, a, b in report.spans if kind == "published")
    assert published.startswith("时间: 2024- 02- 05")
    assert "索引号:11330100/2024-00012" in report.text  # kept for citing
    assert not any("索引号" in p.text or "来源" in p.text or "成文日期" in p.text for p in chunk_report(report))


def test_a_signature_date_in_chinese_numerals_or_digits(tmp_path):
    body = "德清县财政局2023年法治政府建设年度报告\n2023年，县财政局坚持依法理财。全年审查合同56份。\n"
    report = _parse(tmp_path, body + "德清县财政局\n二〇二四年一月十日\n")
    assert (report.org, report.published) == ("德清县财政局", "2024-01-10")
    assert _parse(tmp_path, body + "德清县财政局\n2024年1月10日\n").published == "2024-01-10"
    assert _parse(tmp_path, body + "德清县财政局\n二〇二三年十二月三十一日\n").published == "2023-12-31"


def test_the_year_is_never_a_plan_range(tmp_path):
    ranged = _parse(tmp_path, "按照《法治政府建设实施纲要（2021—2025年）》和《某县十四五规划（2021-2025年）》要求，"
                              "县水利局坚持依法治水。全年查处河道违法案件9起。\n")
    assert ranged.year is None  # only ranges and no publication date: unknown, and said so
    assert any("no year" in r for r in ranged.review)
    dated = _parse(tmp_path, "发布日期：2024-03-08\n按照《法治政府建设实施纲要（2021—2025年）》要求，县水利局坚持依法治水。"
                             "全年查处河道违法案件9起。\n")
    assert dated.year == 2023 and any("publication date" in r for r in dated.review)
    stated = _parse(tmp_path, "按照《发展规划（2023—2027年）》要求，县水利局扎实推进2024年度法治政府建设。全年查处案件9起。\n")
    assert stated.year == 2024 and not any("year" in r for r in stated.review)


def test_a_short_subject_gets_the_place_the_text_names(tmp_path):
    text = ("2023年，区司法局认真贯彻《江苏省法治政府建设实施方案》和《南京市鼓楼区2023年法治政府建设工作要点》，"
            "全面推进依法行政。全年审查规范性文件14件。\n")
    report = _parse(tmp_path, text)
    assert report.org == "南京市鼓楼区司法局"  # the province is not part of a district bureau's name
    assert {"鼓楼区司法局", "区司法局"} <= set(report.aliases)
    city = _parse(tmp_path, "2023年，市国资委深入学习贯彻总书记考察广州重要讲话精神。全年审查企业合同200份。\n")
    assert city.org == "广州市国资委"  # the city named by its stem only


def test_no_unit_is_indexed_with_a_review_that_names_the_publisher(tmp_path):
    report = _parse(tmp_path, "来源：某区人民政府门户网站\n2023年，全区坚持依法行政。全年办理行政复议案件30件。\n")
    assert report.org == "" and report.year == 2023
    assert any("no reporting unit" in r and "门户网站" in r for r in report.review)


def test_short_forms_by_general_rules():
    market = short_forms("深圳市南山区市场监督管理局")
    assert {"南山区市场监管局", "南山市场监管局", "南山区市场监管", "南山市场监管", "市场监管局"} <= market
    health = short_forms("成都市武侯区卫生健康委员会")
    assert {"武侯区卫健委", "武侯卫健委", "成都武侯卫健委", "区卫健委"} <= health
    assert {"江苏省人社厅", "江苏人社厅", "人社厅"} <= short_forms("江苏省人力资源和社会保障厅")
    assert {"宁波应急管理局", "宁波应急局", "市应急管理局"} <= short_forms("宁波市应急管理局")
    assert {"宁波市", "宁波", "宁波市政府", "宁波政府"} <= short_forms("宁波市人民政府")
    assert {"合肥经开区", "经开区"} <= short_forms("合肥经济技术开发区")
    assert "广州" not in short_forms("广州市司法局")  # a department never goes by its place alone
    assert full_form("武侯区卫健委") == "武侯区卫生健康委员会"
    assert full_form("鼓楼区司法局") == "鼓楼区司法局"


def test_a_report_without_a_year_is_indexed_and_searchable(tmp_path):
    from embeddings import make_embedder
    from retriever.ingest import ingest
    from retriever.search import HybridSearcher

    from .conftest import load_index

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("区统计局坚持依法统计，全面推进法治建设。全年开展统计执法检查15次。\n", encoding="utf-8")
    (folder / "b.txt").write_text("某区司法局2023年法治政府建设年度报告\n2023年，区司法局坚持依法行政。全年办理法律援助案件40件。\n",
                                  encoding="utf-8")
    emb = make_embedder("hashing", dim=64)
    result = ingest(tmp_path / "index", [folder], emb)
    by_name = {Path(f.path).name: f for f in result.files}
    assert not result.failed and by_name["a.txt"].review and not by_name["b.txt"].review
    index = load_index(tmp_path / "index", emb)
    years = {r.source: r.year for r in index.reports}
    assert years == {"a.txt": None, "b.txt": 2023}
    hits = HybridSearcher(index, emb).search("统计执法检查", k=3).hits
    assert hits and hits[0].passage.year is None

"""Report metadata on page layouts the dev reports do not show (tests/data/layouts: made-up
openings in the layouts of real government sites): counties, autonomous prefectures and counties,
banners, provincial departments named by the body only, townships and street offices, zone
committees, titles over three lines or with the year in Chinese numerals, header tables flattened
to one label or value a line, breadcrumbs, a page posted by another body, signature blocks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from retriever.chunking import chunk_report
from retriever.clean import PUBLISHER_LABELS, clean_text
from retriever.ingest import parse_report
from retriever.readers import read_file

from .test_metadata_reports import same_unit

LAYOUTS = Path(__file__).parent / "data" / "layouts"

# file: (unit, short names a person would type, year covered, publication date)
EXPECTED = {
    "l01_county_gov_addressee.txt": ("长兴县人民政府", {"长兴县", "长兴", "长兴县政府"}, 2023, "2024-03-20"),
    "l02_county_bureau_guanyu.txt": ("平阳县司法局", {"平阳县司法局", "县司法局", "平阳司法局"}, 2022, "2023-02-16"),
    "l03_autonomous_prefecture.txt": ("恩施土家族苗族自治州人民政府", {"恩施州", "恩施", "恩施土家族苗族自治州"}, 2023, "2024-03-29"),
    "l04_autonomous_county.txt": ("长阳土家族自治县人民政府", {"长阳县", "长阳", "长阳土家族自治县"}, 2022, "2023-03-25"),
    "l05_banner.txt": ("准格尔旗人民政府", {"准格尔旗", "准格尔"}, 2023, "2024-03-26"),
    "l06_province_department_body_only.txt": ("江西省交通运输厅", {"江西省交通运输厅", "省交通运输厅", "江西省交通厅", "交通运输厅"}, 2023, "2024-02-06"),
    "l07_township_party_gov.txt": ("大陈乡人民政府", {"大陈乡"}, 2023, "2024-01-12"),
    "l08_town_year_cn.txt": ("石门镇人民政府", {"石门镇"}, 2022, "2023-01-31"),
    "l09_street_title.txt": ("杭州市拱墅区米市巷街道办事处", {"米市巷街道"}, 2023, "2024-01-19"),
    "l10_high_tech_zone_committee.txt": ("襄阳高新技术产业开发区管理委员会", {"襄阳高新区", "襄阳高新区管委会"}, 2023, "2024-02-27"),
    "l11_dev_zone_guanyu.txt": ("合肥经济技术开发区管理委员会", {"合肥经开区", "合肥经济技术开发区"}, 2022, "2023-03-15"),
    "l12_new_area_committee.txt": ("贵安新区管理委员会", {"贵安新区", "贵安新区管委会"}, 2023, "2024-03-08"),
    "l13_bureau_to_law_office.txt": ("宜昌市退役军人事务局", {"宜昌市退役军人事务局", "市退役军人事务局", "宜昌市退役军人局", "退役军人事务局"}, 2022, "2023-02-22"),
    "l14_natural_resources_cn_year.txt": ("龙泉市自然资源和规划局", {"市自然资源和规划局", "龙泉市自然资源局"}, 2023, "2024-01-26"),
    "l15_title_three_lines.txt": ("杭州市萧山区城市管理和综合执法局", {"萧山区城管局", "区城市管理和综合执法局", "萧山城管局"}, 2023, "2024-01-18"),
    "l16_table_flattened_header.txt": ("宁波市鄞州区政务服务数据管理局", {"鄞州区政务服务数据管理局", "区政务服务数据管理局", "鄞州区政数局"}, 2023, "2024-01-25"),
    "l17_breadcrumb_other_source.txt": ("望城区市场监督管理局", {"望城区市场监管局", "区市场监督管理局"}, 2023, "2024-03-05"),
    "l18_signature_only.txt": ("晋江市城市管理和综合执法局", {"晋江市城管局", "市城市管理和综合执法局"}, 2023, "2024-01-16"),
    "l19_year_month_range.txt": ("婺源县住房和城乡建设局", {"婺源县住建局", "县住房和城乡建设局"}, 2023, "2024-02-01"),
    "l20_biennial_in_text.txt": ("温州市医疗保障局", {"温州市医保局", "市医疗保障局"}, 2023, "2024-02-28"),
    "l21_half_year.txt": ("苍南县市场监督管理局", {"苍南县市场监管局", "县市场监督管理局"}, 2023, "2023-07-12"),
    "l22_this_year_only_title.txt": ("仙居县应急管理局", {"仙居县应急局", "县应急管理局"}, 2024, "2024-12-26"),
    "l23_cn_year_today_unit_line.txt": ("瑞安市退役军人事务局", {"瑞安市退役军人局", "退役军人事务局"}, 2023, "2024-01-30"),
    "l24_data_bureau_guanyu_district.txt": ("佛山市南海区政务服务数据管理局", {"南海区政务服务数据管理局", "南海区政数局"}, 2022, "2023-01-19"),
    "l25_unit_guanyu_year.txt": ("桐乡市自然资源和规划局", {"桐乡市自然资源和规划局", "市自然资源和规划局"}, 2023, "2024-02-05"),
    "l26_issuing_office_field.txt": ("义乌市住房和城乡建设局", {"义乌市住建局", "市住房和城乡建设局"}, 2023, "2024-02-08"),
    "l27_province_veterans_body_only.txt": ("湖南省退役军人事务厅", {"省退役军人事务厅", "湖南省退役军人厅"}, 2022, "2023-03-15"),
    "l28_health_bureau_cn_field_date.txt": ("和林格尔县卫生健康局", {"和林格尔县卫健局", "县卫生健康局"}, 2023, "2024-02-18"),
    "l29_street_party_office.txt": ("宁波市鄞州区东胜街道办事处", {"东胜街道"}, 2023, "2024-02-02"),
    "l30_district_gov_to_city_docno.txt": ("温州市鹿城区人民政府", {"鹿城区", "鹿城", "鹿城区政府"}, 2023, "2024-03-08"),
}


def test_every_layout_has_its_expectation():
    assert sorted(p.name for p in LAYOUTS.glob("*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_layout_metadata(name):
    org, aliases, year, published = EXPECTED[name]
    report = parse_report(LAYOUTS / name)
    assert same_unit(report.org, org), report.org
    assert report.year == year
    assert report.published == published
    assert aliases <= set(report.aliases), sorted(aliases - set(report.aliases))
    assert report.review == ()
    # who posted the page is no name of the unit, unless it is the unit itself
    clean = clean_text(read_file(LAYOUTS / name))
    posted = {f.value for f in clean.fields if f.label in PUBLISHER_LABELS and f.value}
    assert not {p for p in posted if p in report.aliases and not same_unit(p, org)}


# what a header, title or signature line looks like: never a passage of its own or inside one
_HEADER_LINE = re.compile(r"^(?:首页\s*>|索引号|主题分类|发文机关|成文日期|发布日期|文号|来源|发布时间|【发布时间)")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_layout_header_lines_are_not_passages(name):
    report = parse_report(LAYOUTS / name)
    passages = chunk_report(report)
    assert passages
    lines = report.text.split("\n")
    header = [ln for ln in lines[:16] if _HEADER_LINE.match(ln)]
    # a flattened table gives each label and value its own line: the values are header lines too
    for i, ln in enumerate(lines[:14]):
        if ln in ("索引号", "主题分类", "发文机关", "成文日期", "发布日期", "文号") and i + 1 < len(lines):
            header.append(lines[i + 1])
    for line in header:
        assert not any(line in p.text for p in passages), line
    title_span = next(((a, b) for kind, a, b in report.spans if kind == "title"), None)
    if title_span:
        title_text = report.text[slice(*title_span)]
        assert not any(p.text.strip() == title_text for p in passages)
        assert report.title.replace("\n", "") == title_text.replace("\n", "")


# Title variants, each on a short made-up opening: (title and unit lines, opening sentence's subject,
# expected unit, a short name, year)
_BODY = "一、主要工作\n（一）加强组织领导。专题研究法治建设工作4次，全年办理行政复议案件12件，负责人出庭应诉率100%。\n二、存在问题\n法治队伍力量不足。\n"
TITLES = {
    "full-width digits": ("德清县司法局２０２３年度法治政府建设工作报告", "２０２３年，县司法局", "德清县司法局", "县司法局", 2023),
    "spaced year": ("德清县司法局 2023 年度法治政府建设工作报告", "2023 年，县司法局", "德清县司法局", "德清司法局", 2023),
    "joint party and government": ("中共溪口镇委员会 溪口镇人民政府\n关于2023年度法治政府建设工作情况的报告\n奉化区委、区政府：",
                                   "2023年，溪口镇党委、政府", "溪口镇人民政府", "溪口镇", 2023),
    "year after the subject": ("文成县财政局法治政府建设年度报告（2023年度）", "今年以来，县财政局", "文成县财政局", "县财政局", 2023),
    "Chinese-numeral year, no other": ("新昌县水利局二〇二三年法治政府建设工作总结", "今年以来，县水利局", "新昌县水利局", "新昌水利局", 2023),
    "a new area that is a district": ("浦东新区2023年法治政府建设情况报告", "2023年，浦东新区", "浦东新区人民政府", "浦东新区", 2023),
    "an autonomous prefecture by its everyday name": ("延边州2023年法治政府建设情况报告", "2023年，延边州", "延边州人民政府", "延边州", 2023),
    "year before the place": ("2023年度平湖市法治政府建设情况报告", "2023年，平湖市", "平湖市人民政府", "平湖市", 2023),
}


@pytest.mark.parametrize("case", sorted(TITLES))
def test_title_variants(case, tmp_path):
    head, subject, org, alias, year = TITLES[case]
    path = tmp_path / "r.txt"
    path.write_text(f"{head}\n{subject}坚持以习近平法治思想为指导，全面推进依法行政。\n{_BODY}", encoding="utf-8")
    report = parse_report(path)
    assert same_unit(report.org, org), report.org
    assert report.year == year
    assert alias in report.aliases
    assert report.review == ()

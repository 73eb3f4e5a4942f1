"""Catalog.resolve: what a question is about, on reports made up here (their aliases as metadata
gives them), so each rule is seen on its own."""

import pytest

from retriever.catalog import Catalog, parse_years, unit_mentions
from retriever.types import Report


def report(rid, org, aliases, region, year):
    return Report(id=rid, source=f"{rid}.txt", title=f"{org}{year}年报告", org=org, aliases=tuple(aliases),
                  region=region, year=year, published=None, text="")


REPORTS = [
    report("a", "广州市越秀区司法局", ["越秀区司法局", "越秀司法局", "区司法局"], "广东省广州市越秀区", 2023),
    report("b", "南京市国有资产监督管理委员会", ["南京市国资委", "南京国资委", "国资委", "市国资委"], "江苏省南京市", 2023),
    report("c", "南京市国有资产监督管理委员会", ["南京市国资委", "南京国资委", "国资委", "市国资委"], "江苏省南京市", 2022),
    report("d", "成都市武侯区人民政府", ["武侯区人民政府", "武侯区政府", "武侯区", "武侯"], "四川省成都市武侯区", 2023),
    report("e", "成都市武侯区卫生健康委员会", ["武侯区卫健委", "武侯卫健委", "区卫健委"], "四川省成都市武侯区", 2023),
    report("f", "合肥市蜀山区卫生健康委员会", ["蜀山区卫健委", "蜀山卫健委", "区卫健委"], "安徽省合肥市蜀山区", 2023),
    report("g", "苏州市吴中区市场监督管理局", ["吴中区市场监管局", "吴中市场监管局", "吴中区市场监管", "吴中市场监管"],
           "江苏省苏州市吴中区", 2024),
]


@pytest.fixture(scope="module")
def catalog():
    return Catalog(REPORTS)


def ids(filters):
    return sorted(filters.report_ids)


@pytest.mark.parametrize(
    ("question", "years"),
    [
        ("越秀区司法局2023年办了多少件？", (2023,)),
        ("越秀区司法局2023年度办了多少件？", (2023,)),
        ("吴中市场监管2024一窗受理率是多少？", (2024,)),  # a bare year before a word
        ("二〇二三年越秀区司法局办了多少件？", (2023,)),
        ("到2024年11月底个体户增长了多少？", (2024,)),  # 到 before a year is not a range
        ("在《评估报告(2021—2022)》里排第几？", ()),  # years inside a title are not asked about
        ("按照2021-2025年规划，2023年做了什么？", (2023,)),  # a plan's range is not a year asked about
        ("一共2024件吗", ()),  # a figure, not a year
    ],
)
def test_years(question, years):
    assert parse_years(question) == years


def test_a_unit_by_its_short_name(catalog):
    f = catalog.resolve("越秀司法局2023年办理了多少件法律援助案件？")
    assert ids(f) == ["a"] and f.orgs == ("越秀司法局",) and not f.unknown


def test_all_years_of_a_unit_and_one_year(catalog):
    assert ids(catalog.resolve("南京国资委审核了多少份合同？")) == ["b", "c"]
    f = catalog.resolve("南京国资委2022年审核了多少份合同？")
    assert f.years == (2022,) and [r.id for r in catalog.reports_of(f)] == ["c"]


def test_a_short_name_of_another_place_is_not_that_unit(catalog):
    """国资委 is an alias of 南京市国资委, but 武汉市国资委 is another unit, not indexed."""
    f = catalog.resolve("武汉市国资委2023年明确了多少项履职事项？")
    assert f.report_ids == () and f.unknown == ("武汉市国资委",)


@pytest.mark.parametrize(
    "question,unknown",
    [
        ("宝安区司法局2023年办了多少件法律援助案件？", "宝安区司法局"),  # a place and a department
        ("嘉兴市生态环境局2024年集体学法几次？", "嘉兴市生态环境局"),
        ("小营街道2024年立案查处了多少件？", "小营街道"),  # unit-shaped, no known place
        ("西湖区政府2024年合法性审查了多少件？", "西湖区政府"),
    ],
)
def test_a_unit_that_is_not_indexed_is_unknown_never_dropped(catalog, question, unknown):
    f = catalog.resolve(question)
    assert f.unknown == (unknown,) and f.report_ids == ()
    assert not catalog.reports_of(f)  # nothing is searched: never another unit's report


def test_closest_units_are_suggested_for_an_unknown_one(catalog):
    assert catalog.closest("越秀区财政局")[0] == "广州市越秀区司法局"


def test_two_units_are_two_groups(catalog):
    f = catalog.resolve("越秀区司法局2023年和南京国资委2022年各办了多少件？")
    assert [name for name, _ in f.groups] == ["越秀区司法局", "南京国资委"]
    assert dict(f.groups)["南京国资委"] == ("b", "c")
    assert f.years == (2022, 2023)


def test_a_place_alone_names_its_government_first(catalog):
    f = catalog.resolve("武侯区2023年行政复议案件有多少件？")
    assert ids(f) == ["d"]


def test_a_place_without_a_government_report_names_its_units(catalog):
    f = catalog.resolve("到2024年11月底吴中区个体户增长了多少？")
    assert ids(f) == ["g"] and not f.unknown


def test_a_shared_short_name_names_every_unit_with_it(catalog):
    f = catalog.resolve("区卫健委2023年处理了多少件投诉？")
    assert ids(f) == ["e", "f"]


def test_explicit_units_take_precedence(catalog):
    f = catalog.resolve("办了多少件？", orgs=["越秀区司法局"])
    assert ids(f) == ["a"]
    assert catalog.resolve("办了多少件？", orgs=["某某局"]).unknown == ("某某局",)


def test_no_unit_named(catalog):
    f = catalog.resolve("2023年全市行政复议案件有多少件？")
    assert f.report_ids == () and not f.unknown and f.years == (2023,)
    assert len(catalog.reports_of(f)) == 5


def test_unit_mentions_shape():
    names = [m.name for m in unit_mentions("宝安区司法局和西湖区政府2023年")]
    assert names == ["宝安区司法局", "西湖区政府"]
    assert unit_mentions("在龙岗政府在线公开了多少条信息？") == []


def test_the_place_of_a_unit_named_is_context_not_another_unit(catalog):
    f = catalog.resolve("武侯区卫健委2023年在成都市率先建成了几个平台？")
    assert ids(f) == ["e"] and not f.unknown  # 成都市 is where 武侯区 is
    f = catalog.resolve("越秀区司法局和武侯区2023年各办了多少件？")
    assert [name for name, _ in f.groups] == ["越秀区司法局", "武侯区"]  # another place is another unit


def test_a_place_by_its_stem_alone_is_a_weak_reading(catalog):
    f = catalog.resolve("吴中的个体工商户增长了多少？")
    assert ids(f) == ["g"] and f.by_stem
    assert not catalog.resolve("吴中区市场监管局的个体工商户增长了多少？").by_stem


@pytest.mark.parametrize("question", ["武汉市国有资产监督管理委员会2023年明确了多少项？", "武汉市人力资源和社会保障局2023年办了多少件？"])
def test_a_full_department_name_of_another_place_is_unknown(catalog, question):
    """Department names hold 和, 会, 有: they still make a unit's name, and another city's is not indexed."""
    f = catalog.resolve(question)
    assert f.report_ids == () and f.unknown == (question.split("2023")[0],)


def test_a_stem_inside_another_word_names_no_place():
    c = Catalog([report("m", "济南市市中区人民政府", ["市中区人民政府", "市中区政府", "市中区", "市中"], "山东省济南市市中区", 2023)])
    assert c.resolve("全市中小学2023年有多少所？").report_ids == ()

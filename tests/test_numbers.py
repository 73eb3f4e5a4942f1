import pytest

from bot.numbers import cn_to_int, find_quantities, number_values


@pytest.mark.parametrize("text,value", [("十二", 12), ("两", 2), ("三十", 30), ("一百零五", 105), ("二〇二三", 2023), ("两万三千", 23000)])
def test_chinese_numerals(text, value):
    assert cn_to_int(text) == value


@pytest.mark.parametrize(
    "text,expected",
    [
        ("出具法律意见书79件", [("79件", 79, "件", False)]),
        ("公开信息40余条", [("40余条", 40, "条", True)]),
        ("考试通过率达到100%", [("100%", 100, "%", False)]),
        ("召开会议十二次", [("十二次", 12, "次", False)]),
        ("接访群众150余人次", [("150余人次", 150, "人次", True)]),
        ("３０３２名党员到社区报到", [("３０３２名", 3032, "名", False)]),
        ("三十余人参加", [("三十余人", 30, "人", True)]),
        ("百分之九十五", [("百分之九十五", 95, "%", False)]),
    ],
)
def test_quantities(text, expected):
    got = [(q.text, q.value, q.unit, q.approx) for q in find_quantities(text)]
    assert got == expected


@pytest.mark.parametrize("text", ["2023年", "今年1-11月", "两个确立", "第一责任人", "一是坚持党的领导"])
def test_years_dates_ordinals_and_slogans_are_not_quantities(text):
    assert find_quantities(text) == []


def test_number_values_normalise_full_width_and_chinese():
    assert number_values("７９件和十二次") == {79.0, 12.0}

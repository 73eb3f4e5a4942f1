import re

import pytest

from retriever.numbers import (
    MEASURE_WORDS,
    asked_measure,
    cn_to_int,
    find_quantities,
    number_value,
    number_values,
    split_clauses,
    split_sentences,
)


@pytest.mark.parametrize("text,value", [("十二", 12), ("两", 2), ("三十", 30), ("一百零五", 105), ("二〇二三", 2023), ("两万三千", 23000)])
def test_chinese_numerals(text, value):
    assert cn_to_int(text) == value


@pytest.mark.parametrize(
    "token,value",
    [("1,234", 1234), ("1，234", 1234), ("12,345,678", 12345678), ("３.５", 3.5), ("九十五点六", 95.6),
     ("一点五", 1.5), ("零点五", 0.5), ("十二", 12), ("Infinity", None), ("十二点", None)],
)
def test_number_value(token, value):
    assert number_value(token) == value


# (report phrase, [(figure text, value, unit, kind, approx, high)])
QUANTITY_CASES = [
    ("实行7×24小时工作制", [("7×24小时", 24.0, "小时", "duration", False, None)]),  # a schedule, shown whole
    ("出具法律意见书79件", [("79件", 79, "件", "count", False, None)]),
    ("公开信息40余条", [("40余条", 40, "条", "count", True, None)]),
    ("考试通过率达到100%", [("100%", 100, "%", "percent", False, None)]),
    ("考试通过率达到１００％", [("１００％", 100, "%", "percent", False, None)]),
    ("召开会议十二次", [("十二次", 12, "次", "count", False, None)]),
    ("接访群众150余人次", [("150余人次", 150, "人次", "count", True, None)]),
    ("３０３２名党员到社区报到", [("３０３２名", 3032, "名", "count", False, None)]),
    ("三十余人参加", [("三十余人", 30, "人", "count", True, None)]),
    ("一百零五项", [("一百零五项", 105, "项", "count", False, None)]),
    # thousands separators, ASCII and full-width
    ("全年共计1,234件", [("1,234件", 1234, "件", "count", False, None)]),
    ("全年共计1，234件，同比增长", [("1，234件", 1234, "件", "count", False, None)]),
    ("累计访问量12,345,678次", [("12,345,678次", 12345678, "次", "count", False, None)]),
    # list items are not glued
    ("分别为146家、39家", [("146家", 146, "家", "count", False, None), ("39家", 39, "家", "count", False, None)]),
    ("分别为146家，39家", [("146家", 146, "家", "count", False, None), ("39家", 39, "家", "count", False, None)]),
    ("受理2023，123件", [("123件", 123, "件", "count", False, None)]),  # four digits before the comma: no separator
    # decimals, percentages written out, 万/亿
    ("满意度达95.6%", [("95.6%", 95.6, "%", "percent", False, None)]),
    ("群众满意率为百分之九十五点六", [("百分之九十五点六", 95.6, "%", "percent", False, None)]),
    ("群众满意率为百分之九十五", [("百分之九十五", 95, "%", "percent", False, None)]),
    ("结案率90%以上", [("90%以上", 90, "%", "percent", True, None)]),
    ("同比提高2.3个百分点", [("2.3个百分点", 2.3, "个百分点", "percent", False, None)]),
    ("投入资金1.5亿元", [("1.5亿元", 150_000_000, "亿元", "money", False, None)]),
    ("投入资金一点五亿元", [("一点五亿元", 150_000_000, "亿元", "money", False, None)]),
    ("节约财政资金5000余万元", [("5000余万元", 50_000_000, "万元", "money", True, None)]),
    ("服务群众3.2万人次", [("3.2万人次", 32_000, "万人次", "count", False, None)]),
    ("服务人群约5万余人次", [("约5万余人次", 50_000, "万人次", "count", True, None)]),
    ("覆盖公职人员近5万名", [("近5万名", 50_000, "万名", "count", True, None)]),
    ("累计播放量超471万，点赞", [("超471万", 4_710_000, "万", "count", True, None)]),
    ("办理来文20000余件", [("20000余件", 20000, "件", "count", True, None)]),
    ("参训人员100人左右", [("100人左右", 100, "人", "count", True, None)]),
    ("提供法律咨询超过300次", [("超过300次", 300, "次", "count", True, None)]),
    # ranges: value is the low end, high kept
    ("每季度开展3-5个专项检查", [("3-5个", 3, "个", "count", False, 5)]),
    ("每季度开展3至5个专项检查", [("3至5个", 3, "个", "count", False, 5)]),
    ("每季度开展3～5个专项检查", [("3～5个", 3, "个", "count", False, 5)]),
    ("用三至五年时间", [("三至五年", 3, "年", "duration", False, 5)]),
    ("在两三个街道试点", [("两三个", 2, "个", "count", True, 3)]),
    # Chinese numerals as counts
    ("法治人才培养两个方案", [("两个", 2, "个", "count", False, None)]),
    ("共派出十批次203人次", [("十批次", 10, "批次", "count", False, None), ("203人次", 203, "人次", "count", False, None)]),
    ("召开专题会议一次。", [("一次", 1, "次", "count", False, None)]),
    ("推出5种便民服务", [("5种", 5, "种", "count", False, None)]),
    ("走访企业12家次", [("12家次", 12, "家次", "count", False, None)]),
    # ordinals: a rank, shown with 第
    ("在全市法治政府建设考核中排名第四", [("第四", 4, "", "ordinal", False, None)]),
    ("总分位列全省第二十七名", [("第二十七名", 27, "名", "ordinal", False, None)]),
    ("综合评价位列全国第2，其中", [("第2", 2, "", "ordinal", False, None)]),
    ("排名第一的单位", [("第一", 1, "", "ordinal", False, None)]),
    # durations
    ("数量连续三年居全省首位", [("三年", 3, "年", "duration", False, None)]),
    ("聘期3年", [("3年", 3, "年", "duration", False, None)]),
    ("近三年来", [("近三年", 3, "年", "duration", False, None)]),
    ("在15个工作日内办结", [("15个工作日", 15, "个工作日", "duration", False, None)]),
    # ratios and multiples
    ("按照1:1的比例配备", [("1:1", 1, ":", "ratio", False, None)]),
    ("城乡比例为1∶2", [("1∶2", 0.5, ":", "ratio", False, None)]),
    ("办件量提高1.5倍", [("1.5倍", 1.5, "倍", "ratio", False, None)]),
]


@pytest.mark.parametrize("text,expected", QUANTITY_CASES)
def test_quantities(text, expected):
    got = [(q.text, q.value, q.unit, q.kind, q.approx, q.high) for q in find_quantities(text)]
    assert got == expected
    for q in find_quantities(text):
        assert text[q.start : q.end] == q.text


@pytest.mark.parametrize(
    "text",
    [
        "2023年", "二〇二三年", "2021-2023年", "2023年度", "今年1-11月", "8:30上班",
        "两个确立", "深刻领悟“两个确立”的决定性意义", "增强“四个意识”", "落实“三会一课”制度", "以“五个一”工程为抓手",
        "第一责任人", "落实第一议题制度", "引入第三方评估", "入选第二批示范单位", "第十四届人民代表大会", "第一，坚持党的领导",
        "一是坚持党的领导", "推动工作迈上一个新台阶", "一年来，区党政办", "作为一项重要任务", "这一年的工作", "下一年度",
        "党的二十届三中全会", "省委十五届五次全会", "“一网统管”三年行动圆满收官", "最多跑一次", "实现“一件事”主题服务",
        "5+2工作模式", "1+N制度体系", "12345热线", "几十个单位", "上百人参加", "十万火急",
    ],
)
def test_years_dates_ordinals_names_and_slogans_are_not_quantities(text):
    assert find_quantities(text) == []


NUMBER_VALUE_CASES = [
    ("７９件和十二次", {79, 12}),
    ("全年共计1,234件", {1234}),
    ("全年共计1，234件", {1234}),
    ("一点五亿元", {150_000_000}),
    ("1.5亿元", {150_000_000}),
    ("5000余万元", {50_000_000}),
    ("百分之九十五点六", {95.6}),
    ("提高2.3个百分点", {2.3}),
    ("排名第二", {2}),
    ("连续三年", {3}),
    ("3.2万人次", {32_000}),
]


@pytest.mark.parametrize("text,values", NUMBER_VALUE_CASES)
def test_number_values(text, values):
    assert number_values(text) == {float(v) for v in values}


@pytest.mark.parametrize(
    "body,excerpt,vouched",
    [
        ("234件", "全年共计1,234件", False),  # the clause cut inside the figure does not pass
        ("1,234件", "全年共计1,234件", True),
        ("1，234件", "全年共计1，234件，其中", True),
        ("1,234件", "共234件", False),
        ("第二", "全市排名第2", True),
        ("三年", "连续3年", True),
        ("一点五亿元", "投入1.5亿元", True),
        ("1.5亿元", "投入1.5万元", False),
        ("95.6%", "满意率百分之九十五点六", True),
        ("95%", "满意率百分之九十五点六", False),
    ],
)
def test_every_number_is_cited_check(body, excerpt, vouched):
    assert (number_values(body) <= number_values(excerpt)) == vouched


_OLD_CLAUSE = re.compile(r"[^，,。！？!?；;：:\n]+")
_OLD_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*")


@pytest.mark.parametrize(
    "text,clauses",
    [
        ("全年共计1,234件，其中办结1，200件；", ["全年共计1,234件", "其中办结1，200件"]),
        ("访问量12,345,678次,同比增长", ["访问量12,345,678次", "同比增长"]),
        ("提供7×24小时服务，平均3.5天办结", ["提供7×24小时服务", "平均3.5天办结"]),
        ("按1:1配备：专职人员", ["按1:1配备", "专职人员"]),
        ("分别为146，39家", ["分别为146", "39家"]),  # two digits after the comma: a list
        ("2023,123件", ["2023", "123件"]),  # four digits before it: not a separator
        ("一、总体情况\n（一）坚持党的领导", ["一、总体情况", "（一）坚持党的领导"]),
    ],
)
def test_split_clauses_never_cuts_a_figure(text, clauses):
    assert [text[s:e] for s, e in split_clauses(text)] == clauses


def test_split_clauses_and_sentences_agree_with_plain_punctuation_where_there_are_no_figures():
    text = "一是坚持学法：召开会议十二次，出具法律意见书79件；二是严格执法！群众满意？\n（二）其他。"
    assert split_clauses(text) == [m.span() for m in _OLD_CLAUSE.finditer(text)]
    assert split_sentences(text) == [m.span() for m in _OLD_SENTENCE.finditer(text)]
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "一是坚持学法：召开会议十二次，出具法律意见书79件；", "二是严格执法！", "群众满意？", "（二）其他。"]


def test_split_offsets_are_into_text_with_full_width_characters():
    text = "　全年共计１，２３４件……其中，"
    spans = split_clauses(text)
    assert [text[s:e] for s, e in spans] == ["　全年共计１，２３４件……其中"]


def test_measure_words_longest_first():
    """answer.py builds '(多少|几)(…)' from MEASURE_WORDS in order: 人次 must come before 人."""
    assert MEASURE_WORDS.index("人次") < MEASURE_WORDS.index("人")
    assert MEASURE_WORDS.index("万元") < MEASURE_WORDS.index("元")
    assert all(w in MEASURE_WORDS for w in ("种", "家次", "单", "户次", "万名", "亿元", "个工作日"))


@pytest.mark.parametrize(
    "question,kind,words",
    [
        ("区司法局推出了几种便民服务？", "count", {"种"}),
        ("法律援助中心接待群众多少人次？", "count", {"人次"}),
        ("接访群众有多少万人次？", "count", {"人次"}),
        ("2023年共有多少名干部参加学法考试？", "count", {"人", "名", "位"}),
        ("全年查处了多少宗违法案件？", "count", {"件", "宗", "起"}),
        ("法律顾问费花了多少钱？", "money", {"元", "万元", "亿元"}),
        ("投入了多少资金用于普法宣传？", "money", {"元", "万元", "亿元"}),
        ("普法经费是多少？", "money", {"元", "万元", "亿元"}),
        ("行政复议纠错率是多少？", "percent", {"%"}),
        ("网上办理的比例是多少？", "percent", {"%"}),
        ("资金拨付率达到了多少？", "percent", {"%"}),
        ("群众满意度是多少？", "percent", {"%"}),
        ("结案率提高了多少个百分点？", "percent", {"%", "个百分点"}),
        ("在全市考核中排第几？", "ordinal", set()),
        ("法治政府建设考核得了第几名？", "ordinal", set()),
        ("连续几年获评先进单位？", "duration", {"年"}),
        ("行政许可承诺几个工作日办结？", "duration", {"个工作日"}),
        ("审批时限压缩了多长时间？", "duration", set()),
        ("办件量增长了几倍？", "ratio", {"倍"}),
        ("率先推行了多少项改革？", "count", {"项"}),
        ("设立了多少个资金监管项目？", "count", {"个"}),
        ("罚没款共计多少万元？", "money", {"元", "万元", "亿元"}),
        ("培养了多少年轻干部？", "count", set()),
        ("全年办理了多少行政复议案件？", "count", set()),
        ("2023年1到11月一共发了多少份文件？", "count", {"份"}),
        ("海安高新区依托哪个法治文化公园开展普法？", None, set()),
    ],
)
def test_asked_measure(question, kind, words):
    assert asked_measure(question) == (kind, words)


def test_asked_kind_matches_the_quantity_kind():
    """A figure answers a question when its kind is the asked kind and its unit or measure is asked."""
    cases = [("服务人群多少人次？", "服务人群约5万余人次"), ("投入多少资金？", "投入资金一点五亿元"),
             ("通过率是多少？", "通过率达到百分之九十五点六"), ("排第几？", "排名第四"), ("连续几年？", "连续三年")]
    for question, phrase in cases:
        kind, words = asked_measure(question)
        (q,) = find_quantities(phrase)
        assert q.kind == kind and (not words or q.unit in words or q.measure in words), (question, phrase)


def test_lower_bounds_are_approximate_figures():
    (q,) = find_quantities("全年研究部署法治建设工作不少于2次")
    assert (q.text, q.value, q.approx) == ("不少于2次", 2.0, True)
    (r,) = find_quantities("群众满意率不低于90%")
    assert (r.text, r.approx) == ("不低于90%", True)
    assert [x.text for x in find_quantities("不断推进3项改革")] == ["3项"]

"""Answer quality on material nobody tuned for, with floors: dev2 (16 real report openings govqa was
not written against, ../shared/eval/dev2.jsonl) and our own paraphrases of questions about the five
seed reports (tests/data/paraphrase.jsonl). A change that lowers a figure below its floor fails
here; a change that raises one should raise its floor. Figures measured when each floor was set
are in the comments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import REPO, REPORTS, SHARED

DEV2 = SHARED / "eval" / "dev2.jsonl"
DEV_REPORTS = SHARED / "dev_reports"
PARAPHRASES = REPO / "tests" / "data" / "paraphrase.jsonl"


def _questions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _service(tmp_path_factory, config, embedder, reports: Path):
    from bot.service import open_service
    from retriever.ingest import ingest

    root = tmp_path_factory.mktemp("quality")
    result = ingest(root, [reports], embedder)
    assert not result.failed, [(f.path, f.error) for f in result.failed]
    return open_service(config, root, embedder=embedder)


def _figures(service, questions: list[dict]) -> dict:
    from bot.evaluate import evaluate

    return evaluate(service, questions)


@pytest.fixture(scope="module")
def dev2_service(tmp_path_factory, config, use_embedder):
    if not DEV2.is_file() or not DEV_REPORTS.is_dir():
        pytest.skip("../shared/eval/dev2.jsonl or ../shared/dev_reports is not beside the checkout")
    return _service(tmp_path_factory, config, use_embedder, DEV_REPORTS)


@pytest.fixture(scope="module")
def dev2(dev2_service):
    return _figures(dev2_service, _questions(DEV2))


@pytest.mark.parametrize(
    ("asked", "source"),
    [
        ("嘉兴应急局", "r12.txt"),  # 应急管理局 -> 应急局, 嘉兴市 -> 嘉兴
        ("天河市场监管", "r08.txt"),  # 市场监督管理局 -> 市场监管, 广州市天河区 -> 天河
        ("福建人社厅", "r14.txt"),  # 人力资源和社会保障厅 -> 人社厅
        ("重庆长寿卫健委", "r01.txt"),  # 卫生健康委员会 -> 卫健委, both place levels as stems
        ("上海市国资委", "r03.txt"),  # 市国资委 in the text, 上海 in its body
        ("北京经开区", "r11.txt"),  # 经济技术开发区 -> 经开区
    ],
)
def test_short_names_people_type_resolve_to_the_unit(dev2_service, asked, source):
    filters = dev2_service.searcher.catalog.resolve(f"{asked}的报告里有多少件？")
    assert [dev2_service.index.report_by_id[r].source for r in filters.report_ids] == [source]


def test_a_unit_not_indexed_is_refused_by_name_with_the_closest_ones(dev2_service):
    a = dev2_service.composer.answer("嘉兴市生态环境局2024年集体学法几次？")
    assert not a.found and "嘉兴市生态环境局" in a.text and "嘉兴市应急管理局" in a.text
    assert a.searched["reports"] == 0 and not a.citations


def test_two_units_are_answered_each_from_its_own_report(dev2_service):
    a = dev2_service.composer.answer("公义镇2021年出具法律意见书几次，五常街道2024年出具合法性审查意见书多少份？")
    assert a.found and "1次" in a.text and "124份" in a.text
    assert {c.source for c in a.citations} == {"r07.txt", "r04.txt"}


def test_dev2_every_report_is_indexed_and_none_needs_review(dev2):
    assert dev2["reports_failed"] == 0
    assert dev2["reports_need_review"] <= 1


def test_dev2_floors(dev2):
    """Measured: non-compare answer accuracy 0.955, wrong answers 0.000, false refusals 0.045,
    citation accuracy 0.955 (before this work: 0.468, 0.072, 0.468, 0.495)."""
    f = dev2["non_compare"]
    assert f["answer_accuracy"] >= 0.92
    assert f["wrong_answer_rate"] <= 0.02
    assert f["false_refusal_rate"] <= 0.06
    assert f["citation_accuracy"] >= 0.90
    assert dev2["wrong_answer_rate"] <= 0.04  # compare questions included (measured 0.000)


def test_dev2_compare_floors(dev2):
    """Questions across reports (side by side, two years, the reports of a year or a kind): measured
    answer accuracy 0.950, citation accuracy 0.950, no wrong figure (0.10 answer accuracy and a
    quarter wrong when each was answered as one look-up)."""
    f = dev2["by_kind"]["compare"]
    assert f["answer_accuracy"] >= 0.85
    assert f["citation_accuracy"] >= 0.80
    assert f["wrong_answer_rate"] <= 0.05


@pytest.mark.parametrize(
    ("name", "floors"),
    [
        # written first; measured 0.909 / 0.057 / 0.036 (before this work: 0.746 / 0.086 / 0.218)
        ("paraphrase.jsonl", (0.88, 0.07, 0.06)),
        # written later by another hand, as a check on the first; measured 0.957 / 0.050 / 0.022
        # (0.804 / 0.150 / 0.043 when it was written)
        ("paraphrase_heldout.jsonl", (0.92, 0.07, 0.05)),
    ],
)
def test_paraphrase_floors(seed_service, name, floors):
    """Our own paraphrases of questions about the seed reports: answer accuracy, wrong answers,
    false refusals."""
    f = _figures(seed_service, _questions(PARAPHRASES.parent / name))
    accuracy, wrong, refused = floors
    assert f["answer_accuracy"] >= accuracy
    assert f["wrong_answer_rate"] <= wrong
    assert f["false_refusal_rate"] <= refused


@pytest.fixture(scope="module")
def seed_service(tmp_path_factory, config, use_embedder):
    if not REPORTS.is_dir():
        pytest.skip("../shared/reports is not beside the checkout")
    return _service(tmp_path_factory, config, use_embedder, REPORTS)


@pytest.mark.parametrize(
    "question",
    [
        "武汉市市场监督管理局2024年一窗受理率是多少？",  # another city's bureau; 市场监督管理局 is 天河区's alias too
        "杭州市司法局2024年在全国百城法治政府评估中排名第几？",  # a department of 杭州市, not 杭州市人民政府
        "武汉市国有资产监督管理委员会2023年明确了多少项履职事项？",  # the department written out
        "那局2024年办了多少件？",  # a kind of unit, no unit
        "天河区市场监督管理局2024年办了多少件？",  # a count is not answered by a rate
        "嘉兴应急局2024年有多少件？",  # nothing asked to look for
    ],
)
def test_questions_that_must_not_get_another_figure(dev2_service, question):
    a = dev2_service.composer.answer(question)
    assert not a.found, a.text


def test_a_unit_and_its_place_named_together_are_both_answered(dev2_service):
    a = dev2_service.composer.answer("静海区卫健委和静海区的报告分别是哪一年的？")
    assert a.found and "2022" in a.text and "2023" in a.text

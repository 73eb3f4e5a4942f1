"""A comparison's table in every front end: the API's AnswerOut (JSON and the OpenAPI schema, over
real HTTP on 127.0.0.1 with a real index of the sample reports), the Markdown table of
/v1/chat/completions, the aligned table of `govqa ask`, and the Telegram list, sent through a
fake Bot API on loopback that checks what Telegram checks."""

from __future__ import annotations

import asyncio
import copy

import httpx
import pytest

from bot.answer import MISSING, Answer, Citation, TableRow
from bot.render import answer_text, chat_text, markdown_table, terminal_table, width
from bot.telegram import MAX_CHARS, answer_lines, split_messages, table_lines

from .conftest import HEADLINE, SAMPLES, ServerThread
from .fake_telegram import TOKEN, FakeTelegram, visible_text

QIANTANG = "杭州市钱塘区司法局"
SHANGCHENG = "杭州市上城区司法局"


def _citation(n: int, org: str, year: int, excerpt: str) -> Citation:
    return Citation(n, f"{org}{year}.txt", f"{org}{year}年度报告", org, year, "一、主要工作", excerpt, 100, 100 + len(excerpt),
                    1.0, mark=(0, len(excerpt)))


COMPARISON = Answer(
    question="钱塘区和上城区2024年各出具了多少份法律意见书？",
    text="钱塘区2024年出具法律意见书146份；上城区2024年的报告未提及。",
    found=True,
    citations=(_citation(1, QIANTANG, 2024, "全年出具法律意见书146份"),),
    table=(TableRow(QIANTANG, 2024, "146份", "份", 1, "出具 · 法律意见书"), TableRow(SHANGCHENG, 2024, MISSING)),
)


# ---- chat (Markdown) and terminal ------------------------------------------------------------------
def test_chat_text_has_a_markdown_table_between_lead_and_sources():
    text = chat_text(COMPARISON)
    lines = text.splitlines()
    assert lines[0] == f"{COMPARISON.text} [1]"
    head = lines.index("| 单位 | 年份 | 数字 | 出处 |")
    assert lines[head - 1] == "" and lines[head + 1] == "| --- | --- | --- | --- |"
    assert lines[head + 2] == f"| {QIANTANG} | 2024年 | 146份 | [1] |"
    assert lines[head + 3] == f"| {SHANGCHENG} | 2024年 | 未提及 |  |"  # no citation for a missing figure
    assert lines[head + 4] == "" and lines[head + 5] == "来源："
    assert text.index("| --- |") < text.index("来源：") and "> 【全年出具法律意见书146份】" in text


def test_markdown_cells_cannot_break_the_table():
    table = markdown_table((TableRow("甲|乙\n单位", None, "5件", "件", 2),))
    assert table[2] == "| 甲\\|乙 单位 | 年份不明 | 5件 | [2] |"
    assert markdown_table(()) == []


def test_answers_without_a_table_read_as_before():
    single = Answer(HEADLINE, "重点区域署2023年：出具法律意见书79件。", True,
                    (_citation(1, "深圳市龙岗区重点区域规划建设管理署", 2023, "出具法律意见书79件"),))
    assert "| 单位 |" not in chat_text(single)
    assert not any(line.startswith("单位") for line in answer_text(single).splitlines())
    assert chat_text(single).splitlines()[:3] == ["重点区域署2023年：出具法律意见书79件。 [1]", "", "来源："]


def test_terminal_table_is_aligned_in_the_answer_text():
    text = answer_text(COMPARISON)
    lines = text.splitlines()
    assert lines[0] == COMPARISON.text and lines[1] == ""
    table = lines[2:5]
    assert table == terminal_table(COMPARISON.table)
    assert table[0].split() == ["单位", "年份", "数字", "出处"]
    assert table[1].split() == [QIANTANG, "2024年", "146份", "[1]"]
    assert table[2].split() == [SHANGCHENG, "2024年", MISSING]
    for word in ("年份", "数字"):  # each column starts at the same terminal column on every line
        column = width(table[0][: table[0].index(word)])
        value = {"年份": "2024年", "数字": ("146份", MISSING)}[word]
        for line in table[1:]:
            cell = value if isinstance(value, str) else next(v for v in value if v in line)
            assert width(line[: line.index(cell)]) == column
    assert lines[5] == "" and lines[6] == "出处："


# ---- Telegram --------------------------------------------------------------------------------------
def test_telegram_lists_the_rows_under_the_lead():
    pieces = split_messages(answer_lines(COMPARISON, COMPARISON.question))
    shown = visible_text(pieces[0]).splitlines()
    assert shown[0] == COMPARISON.text
    assert shown[1] == f"• {QIANTANG} 2024年：146份 [1]"
    assert shown[2] == f"• {SHANGCHENG} 2024年：未提及"
    assert shown[3] == "" and shown[4] == "出处："
    # units of different lengths are padded (ideographic spaces) so that the years line up
    rows = table_lines((TableRow("钱塘区", 2024, "146份", "份", 1), TableRow("杭州市上城区", 2023, MISSING)))
    assert [r.text for r in rows] == ["• 钱塘区\u3000\u3000\u3000 2024年：146份 [1]", "• 杭州市上城区 2023年：未提及"]


def test_telegram_table_of_many_rows_is_cut_to_one_message():
    rows = tuple(TableRow(f"某某省某某市某某区第{i}个单位司法局", 2000 + i % 25, f"{i}件", "件", i % 9 + 1)
                 for i in range(400))
    citations = tuple(_citation(n, "某某局", 2024, "出具法律意见书<b>&" * 30) for n in range(1, 10))
    answer = Answer("四百个单位各出具了多少份法律意见书？", "各单位出具法律意见书的数量如下。", True, citations, table=rows)
    pieces = split_messages(answer_lines(answer, answer.question))
    first = visible_text(pieces[0])  # parses as Telegram parses it, or raises
    assert len(first.encode("utf-16-le")) // 2 <= MAX_CHARS
    lines = first.splitlines()
    assert lines[0] == answer.text and lines[1].startswith("• 某某省某某市某某区第0个单位司法局")
    listed = [line for line in lines if line.startswith("• ")]
    assert 20 < len(listed) < 400 and lines[len(listed) + 1] == "…（共400行）"
    assert all(not line.startswith("• ") for p in pieces[1:] for line in visible_text(p).splitlines())
    assert all(len(visible_text(p).encode("utf-16-le")) // 2 <= MAX_CHARS for p in pieces)
    # a lead that takes most of the message leaves room for fewer rows, still in one message
    long_lead = Answer(answer.question, "长" * 3900, True, citations, table=rows)
    first = visible_text(split_messages(answer_lines(long_lead, long_lead.question))[0])
    assert len(first) <= MAX_CHARS and first.splitlines()[-1] in ("…（共400行）", "出处：") and "…（共400行）" in first


def test_telegram_accepts_the_table_messages():
    """The pieces, sent by python-telegram-bot's Bot to the fake Bot API, which refuses what Telegram refuses."""
    from telegram import Bot
    from telegram.constants import ParseMode

    rows = tuple(TableRow(f"第{i}个<单位>&", 2024, f"{i}件" if i % 3 else MISSING, "件", i if i % 3 else None)
                 for i in range(300))
    answer = Answer("问题", "各单位的数量如下。", True, table=rows)
    pieces = split_messages(answer_lines(answer, answer.question))
    fake = FakeTelegram()
    with ServerThread(fake.app) as server:

        async def send():
            async with Bot(TOKEN, base_url=server.url + "/bot") as bot:
                for piece in pieces:
                    await bot.send_message(555, piece, parse_mode=ParseMode.HTML)

        asyncio.run(send())
    assert not fake.rejected and len(fake.sent) == len(pieces) == 1
    text = fake.sent[0]["text"]
    assert "• 第1个<单位>&" in text and "：未提及" in text and text.endswith("…（共300行）")


# ---- end to end: a real index of the sample reports and three reports to compare -----------------------
TEMPLATE = """{unit}{year}年度法治政府建设工作报告

{year}年，{unit}在上级党委、政府的坚强领导下，深入学习贯彻习近平法治思想，扎实推进法治政府建设各项工作，现将有关情况报告如下。

一、主要工作成效
（一）发挥法律顾问作用。全年出具法律意见书{legal}件，审查合同{contracts}份。
（二）开展普法宣传。全年开展普法宣传活动{events}场。

二、存在的不足
一是法治宣传的针对性有待增强；二是执法人员的专业能力还需提升。
"""
TO_COMPARE = {"qingshi_2022.txt": dict(unit="青石县司法局", year=2022, legal=40, contracts=25, events=12),
              "qingshi_2023.txt": dict(unit="青石县司法局", year=2023, legal=52, contracts=31, events=15),
              "baihe_2023.txt": dict(unit="白河县司法局", year=2023, legal=79, contracts=40, events=9)}
# 白河县司法局 has no report of 2022: its row is 未提及
SIDE_BY_SIDE = "青石县司法局2022年和白河县司法局2022年分别出具了多少件法律意见书？"
ROW_40 = "| 青石县司法局 | 2022年 | 40件 | [1] |"
ROW_MISSING = "| 白河县司法局 | 2022年 | 未提及 |  |"


@pytest.fixture(scope="module")
def compare_index(tmp_path_factory, use_embedder):
    import shutil

    from retriever.ingest import ingest

    base = tmp_path_factory.mktemp("table-index")
    folder = base / "reports"
    shutil.copytree(SAMPLES, folder)
    for name, fields in TO_COMPARE.items():
        (folder / name).write_text(TEMPLATE.format(**fields), encoding="utf-8")
    result = ingest(base / "index", [folder], use_embedder)
    assert not result.failed, result.failed
    return base / "index"


@pytest.fixture(scope="module")
def server(config, compare_index, use_embedder):
    from bot.api import Keys, create_app
    from bot.live import LiveService

    config = copy.deepcopy(config)
    config["api"]["rate_per_second"] = 0
    with ServerThread(create_app(config, LiveService(config, compare_index, embedder=use_embedder, poll_seconds=60),
                                 Keys(["read"], []))) as s:
        yield s


def _post(server, path: str, body: dict) -> dict:
    r = httpx.post(server.url + path, json=body, headers={"X-API-Key": "read"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_answer_out_has_the_table(server):
    body = _post(server, "/v1/answer", {"question": SIDE_BY_SIDE})
    table = body["table"]
    assert [(r["unit"], r["year"], r["value"], r["citation"]) for r in table] == [
        ("青石县司法局", 2022, "40件", 1), ("白河县司法局", 2022, MISSING, None)]
    assert all(set(r) == {"unit", "year", "value", "measure", "citation", "wording", "number"} for r in table)
    assert [r["number"] for r in table] == [40, None]  # for a page's chart
    assert table[0]["measure"] == "件" and "40件" in body["citations"][0]["excerpt"]
    single = _post(server, "/v1/answer", {"question": HEADLINE})
    assert single["found"] and "79件" in single["answer"] and single["table"] == []  # one figure: no table
    # the cited figure's place in the answer (shown in bold), not the year or the unit's name
    assert [single["answer"][a:b] for a, b in single["figures"]] == ["79件"]


def test_chat_completion_shows_the_table_in_markdown(server):
    chat = _post(server, "/v1/chat/completions", {"messages": [{"role": "user", "content": SIDE_BY_SIDE}]})
    content = chat["choices"][0]["message"]["content"]
    lines = content.splitlines()
    head = lines.index("| 单位 | 年份 | 数字 | 出处 |")
    assert lines[head + 1:head + 4] == ["| --- | --- | --- | --- |", ROW_40, ROW_MISSING]
    assert 0 < head < lines.index("来源：") and lines[head + 4] == ""
    assert chat["govqa"]["table"][1]["value"] == MISSING
    single = _post(server, "/v1/chat/completions", {"messages": [{"role": "user", "content": HEADLINE}]})
    assert single["govqa"]["table"] == [] and "| 单位 |" not in single["choices"][0]["message"]["content"]


def test_answer_out_table_in_the_openapi_schema(server):
    schemas = httpx.get(server.url + "/openapi.json").json()["components"]["schemas"]
    answer = schemas["AnswerOut"]
    assert "table" in answer["required"] and answer["properties"]["table"]["items"] == {"$ref": "#/components/schemas/TableRowOut"}
    assert answer["properties"]["table"]["description"]
    row = schemas["TableRowOut"]
    assert list(row["properties"]) == ["unit", "year", "value", "measure", "citation", "wording", "number"]
    assert all(p.get("description") for p in row["properties"].values()) and MISSING in row["properties"]["value"]["description"]
    assert list(row["properties"]) == list(TableRow("x", 2024, "1件").to_dict())


def test_govqa_ask_prints_an_aligned_table(compare_index):
    import os
    import subprocess
    import sys

    from .conftest import REPO

    r = subprocess.run([sys.executable, "-m", "bot.cli", "ask", SIDE_BY_SIDE, "--index", str(compare_index)],
                       capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split() == ["单位", "年份", "数字", "出处"])
    assert lines[head + 1].split() == ["青石县司法局", "2022年", "40件", "[1]"]
    assert lines[head + 2].split() == ["白河县司法局", "2022年", MISSING]
    assert lines[head - 1] == "" and lines[head + 3] == "" and head < lines.index("出处：")


def test_telegram_bot_answers_with_the_list(config, compare_index, use_embedder):
    """The real Application, long polling a fake Bot API on loopback, asked the comparison in a private chat."""
    import threading

    from bot.live import LiveService
    from bot.telegram import build_application

    from .conftest import wait_for

    fake = FakeTelegram()
    with ServerThread(fake.app) as tg:
        cfg = {**config, "telegram": {"api_base_url": tg.url + "/bot", "allowed_chats": [555]}}
        live = LiveService(cfg, compare_index, embedder=use_embedder, poll_seconds=60)
        live.reload()
        app = build_application(cfg, live, TOKEN)
        loop = asyncio.new_event_loop()

        def run():
            asyncio.set_event_loop(loop)
            app.run_polling(timeout=1, stop_signals=None)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            msg = fake.message({"id": 555, "type": "private", "first_name": "Analyst"}, SIDE_BY_SIDE)
            (reply,) = wait_for(lambda: [m for m in fake.sent
                                         if (m["reply_parameters"] or {}).get("message_id") == msg["message_id"]], 60)
        finally:
            loop.call_soon_threadsafe(app.stop_running)
            thread.join(timeout=30)
    lines = reply["text"].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("• "))
    assert lines[first:first + 3] == ["• 青石县司法局 2022年：40件 [1]", "• 白河县司法局 2022年：未提及", ""]
    assert "40件" in "".join(lines[:first]) and first < lines.index("出处：")  # under the lead (of several lines), above the sources
    assert reply["html"].startswith("<b>")
    assert "<i>未提及</i>" in reply["html"] and not fake.rejected

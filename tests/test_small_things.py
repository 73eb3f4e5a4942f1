"""Small things users hit: /help examples the index answers (checked at start and after a reload),
short "not found" replies in groups with /more for the rest, citation lines that name unit · year ·
section rather than a hash-like file name, and `govqa ask` / `govqa reports` help with examples.

Real components throughout: an index built from samples/reports (one file renamed to a hash-like
name, as the seed reports are), python-telegram-bot against the fake Bot API on loopback."""

from __future__ import annotations

import shlex
import shutil

import pytest
from click.testing import CliRunner

from bot.answer import Citation
from bot.render import answer_text, citation_line, meaningful_source

from .conftest import NEW_QUESTION, NEW_REPORT, SAMPLES, ServerThread, wait_for
from .fake_telegram import BOT, TOKEN, FakeTelegram
from .test_telegram import GROUP, PRIVATE, BotThread, reply_to

HASHED = "002_cdcfa3983a87bb7e.txt"  # zhongdianquyu_2023.txt under a seed-style name
ORG = "深圳市龙岗区重点区域规划建设管理署"
NOT_FOUND = "重点区域署2022年出具了多少份法律意见书？"  # the unit has no 2022 report
BOTNAME = BOT["username"]


def _ingest(root, folders, embedder, **kwargs):
    from retriever.ingest import ingest

    result = ingest(root, folders, embedder, **kwargs)
    assert not result.failed, result.failed
    return result


@pytest.fixture(scope="module")
def sample_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small-reports")
    for f in SAMPLES.iterdir():
        shutil.copy(f, folder / (HASHED if f.name == "zhongdianquyu_2023.txt" else f.name))
    return folder


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, sample_folder, use_embedder):
    root = tmp_path_factory.mktemp("small-index")
    _ingest(root, [sample_folder], use_embedder)
    return root


@pytest.fixture(scope="module")
def small_service(config, small_index, use_embedder):
    from bot.service import open_service

    return open_service(config, small_index, embedder=use_embedder)


@pytest.fixture(scope="module")
def small_bot(config, small_index, use_embedder):
    from bot.live import LiveService
    from bot.telegram import build_application

    fake = FakeTelegram()
    with ServerThread(fake.app) as server:
        cfg = {**config, "telegram": {"api_base_url": server.url + "/bot",
                                      "allowed_chats": [GROUP["id"], PRIVATE["id"]]}}
        live = LiveService(cfg, small_index, embedder=use_embedder, poll_seconds=60)
        live.reload()
        with BotThread(build_application(cfg, live, TOKEN)):
            wait_for(lambda: fake.called("getUpdates"))
            yield fake


def _examples(help_text: str) -> list[str]:
    return [line[len("/ask "):].strip() for line in help_text.splitlines() if line.startswith("/ask ")]


# ---- citation lines -----------------------------------------------------------------------------
def _citation(source: str, org: str = ORG, section: str = "一、主要工作 > （二）发挥法律顾问作用", year=2023) -> Citation:
    return Citation(1, source, f"{ORG}2023年度报告", org, year, section, "出具法律意见书79件。", 0, 10, 1.0)


def test_citation_line_is_unit_year_section_and_a_source_only_when_it_means_something():
    assert citation_line(_citation(HASHED)) == f"[1] {ORG} · 2023年 · 一、主要工作 > （二）发挥法律顾问作用"
    assert citation_line(_citation("zhongdianquyu_2023.txt")).endswith("（二）发挥法律顾问作用 · zhongdianquyu_2023.txt")
    url = "https://www.haian.gov.cn/hagxq/fzzfjs/content/abc.html"
    assert citation_line(_citation(url)).endswith(f" · {url}")
    assert citation_line(_citation("海安高新区2023年报告.pdf", section="")) == f"[1] {ORG} · 2023年 · 海安高新区2023年报告.pdf"
    # a report whose unit is not known is named by its title; an unknown year says so
    assert citation_line(_citation(HASHED, org="", section="", year=None)) == f"[1] {ORG}2023年度报告 · 年份不明"
    for machine_made in (HASHED, "664a3152b5d6de2d.pdf", "0001.txt", "20240301.pdf",
                         "3f2a9c1e-77b4-4c1a-9a7e-2b1c1d0e9f00.docx", "uploads/000_a601106507d35663.txt", ""):
        assert not meaningful_source(machine_made), machine_made
    for named in ("guoziwei_2023.txt", "haian_2023.html", "法治政府建设报告.docx", "http://example.org/r/1"):
        assert meaningful_source(named), named


def test_answers_in_the_terminal_cite_unit_year_section_not_the_hash_name(small_service):
    text = answer_text(small_service.composer.answer("重点区域署2023年出具了多少份法律意见书？"))
    assert "79件" in text
    line = next(x for x in text.splitlines() if x.startswith("[1] "))
    assert line.startswith(f"[1] {ORG} · 2023年 · 一、") and HASHED not in text
    named = answer_text(small_service.composer.answer("国资委2023年开展了多少次法治培训？"))
    line = next(x for x in named.splitlines() if x.startswith("[1] "))
    assert line.startswith("[1] 天津市武清区国资委 · 2023年 · ") and line.endswith(" · guoziwei_2023.txt")


# ---- govqa ask / reports help ------------------------------------------------------------------
def test_ask_and_reports_help_explain_every_option_with_examples(small_service):
    from bot.cli import main

    for command, options in (("ask", ("--year", "--org", "--index", "--json", "--config")),
                             ("reports", ("--index", "--json", "--config"))):
        result = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
        assert result.exit_code == 0, result.output
        text = result.output
        assert "Examples:" in text and f"govqa {command}" in text.split("Examples:")[1]
        for option in options:  # each option has a help text on its line
            line = next(x for x in text.splitlines() if x.strip().startswith(option))
            assert len(line.split(None, 2)) == 3, line
    # every `govqa ask` example of the help is answered by the sample reports
    epilog = CliRunner().invoke(main, ["ask", "--help"], terminal_width=200).output.split("Examples:")[1]
    asked = 0
    for line in epilog.splitlines():
        if not line.strip().startswith("govqa ask"):
            continue
        words = shlex.split(line, comments=True)[2:]
        question, years, orgs = words[0], [], []
        for flag, value in zip(words[1:], words[2:], strict=False):
            if flag == "--year":
                years.append(int(value))
            elif flag == "--org":
                orgs.append(value)
        answer = small_service.composer.answer(question, years=years, orgs=orgs)
        assert answer.found, (line, answer.text)
        asked += 1
    assert asked >= 3


# ---- Telegram: citations, short "not found" in groups, /more -----------------------------------
def test_telegram_citation_lines_name_unit_year_section(small_bot):
    (answer,) = reply_to(small_bot, small_bot.message(GROUP, f"/ask@{BOTNAME} 重点区域署2023年出具了多少份法律意见书？"))
    assert "79件" in answer["text"].splitlines()[0]
    assert f"[1] {ORG} · 2023年 · 一、" in answer["text"] and HASHED not in answer["text"]
    assert f"<i>[1] {ORG} · 2023年 · " in answer["html"]


def test_not_found_in_a_group_is_short_and_more_shows_the_rest(small_bot, small_service):
    related = small_service.composer.answer(NOT_FOUND).related
    assert not small_service.composer.answer(NOT_FOUND).found and len(related) >= 2
    (short,) = reply_to(small_bot, small_bot.message(GROUP, f"/ask@{BOTNAME} {NOT_FOUND}"))
    text = short["text"]
    assert text.startswith("未找到") and "重点区域署" in text.splitlines()[0] and "2022年" in text.splitlines()[0]
    assert "检索了" in text.splitlines()[0]  # what was searched
    assert text.count("[1] ") == 1 and "[2] " not in text and short["html"].count("<blockquote>") == 1
    assert f"另有{len(related) - 1}条可能相关的摘录" in text and "/more" in text
    # /more as a reply to it: the other related excerpts, numbered as they were
    bot_message = {k: short[k] for k in ("message_id", "date", "chat", "from", "text")}
    (more,) = reply_to(small_bot, small_bot.message(GROUP, "/more", reply_to=bot_message))
    assert f"其余{len(related) - 1}条" in more["text"] and "[1] " not in more["text"]
    for c in related[1:]:
        assert citation_line(c) in more["text"] and c.excerpt[:20] in more["text"]
    assert HASHED not in more["text"] and more["html"].count("<blockquote>") == len(related) - 1
    # /more@bot on its own: the chat's latest shortened reply
    (again,) = reply_to(small_bot, small_bot.message(GROUP, f"/more@{BOTNAME}"))
    assert again["text"] == more["text"]
    assert not small_bot.rejected


def test_not_found_in_a_private_chat_shows_every_related_excerpt(small_bot, small_service):
    related = small_service.composer.answer(NOT_FOUND).related
    (full,) = reply_to(small_bot, small_bot.message(PRIVATE, NOT_FOUND))
    assert all(f"[{c.n}] " in full["text"] for c in related) and "/more" not in full["text"]
    (nothing,) = reply_to(small_bot, small_bot.message(PRIVATE, "/more"))
    assert "没有可以展开的回答" in nothing["text"]
    answered = reply_to(small_bot, small_bot.message(GROUP, "/ask 国资委2023年开展了多少次法治培训？"))[0]
    bot_message = {k: answered[k] for k in ("message_id", "date", "chat", "from", "text")}
    (none_here,) = reply_to(small_bot, small_bot.message(GROUP, "/more", reply_to=bot_message))
    assert "没有可以展开的回答" in none_here["text"]  # a found answer has nothing more


# ---- Telegram: /help examples ------------------------------------------------------------------
def test_help_examples_are_answered_by_the_index(small_bot, small_service):
    from bot.telegram import find_examples

    helped = reply_to(small_bot, small_bot.message(PRIVATE, "/help"))[0]["text"]
    shown = _examples(helped)
    assert len(shown) == 2 and len(set(shown)) == 2
    assert tuple(shown) == find_examples(small_service).questions
    for question in shown:
        assert small_service.composer.answer(question).found, question
    assert "/more" in helped
    # the empty /ask names a checked example too
    empty = reply_to(small_bot, small_bot.message(GROUP, f"/ask@{BOTNAME}"))[0]["text"]
    assert "请在命令后写上问题" in empty and shown[0] in empty


def test_help_examples_follow_the_index_served(tmp_path, config, use_embedder):
    """No index: no examples (and none made up). The samples ingested and reloaded: examples the
    samples answer. The index rebuilt with one other report and reloaded: only its example, none
    of the old ones (which the new index does not answer)."""
    from bot.live import LiveService
    from bot.telegram import build_application

    root = tmp_path / "index"
    fake = FakeTelegram()
    with ServerThread(fake.app) as server:
        cfg = {**config, "telegram": {"api_base_url": server.url + "/bot", "allowed_chats": [PRIVATE["id"]]}}
        live = LiveService(cfg, root, embedder=use_embedder, poll_seconds=60)
        assert live.reload() is None
        app = build_application(cfg, live, TOKEN)
        bot = next(h.callback.__self__ for h in app.handlers[0] if getattr(h, "commands", None) == frozenset({"more"}))
        with BotThread(app):
            wait_for(lambda: fake.called("getUpdates"))
            helped = reply_to(fake, fake.message(PRIVATE, "/help"))[0]["text"]
            assert _examples(helped) == [] and "例如" not in helped and "/reports" in helped
            empty = reply_to(fake, fake.message(PRIVATE, "/ask"))[0]["text"]
            assert "请在命令后写上问题。" in empty and "例如" not in empty

            _ingest(root, [SAMPLES], use_embedder)
            live.reload()
            # checked after the reload without anyone asking for /help
            examples = wait_for(lambda: bot._examples.generation == live.get().generation and bot._examples)
            first = _examples(reply_to(fake, fake.message(PRIVATE, "/help"))[0]["text"])
            assert len(first) == 2 and tuple(first) == examples.questions
            assert all(live.get().composer.answer(q).found for q in first)

            new = tmp_path / "new"
            new.mkdir()
            (new / "qingshi_2024.txt").write_text(NEW_REPORT, encoding="utf-8")
            _ingest(root, [new], use_embedder, rebuild=True)
            live.reload()
            helped = reply_to(fake, fake.message(PRIVATE, "/help"))[0]["text"]
            shown = _examples(helped)
            composer = live.get().composer
            assert len(shown) == 1 and shown[0].startswith("青石县") and "2024年" in shown[0], shown
            assert composer.answer(shown[0]).found and composer.answer(NEW_QUESTION).found
            assert not set(first) & set(shown) and not any(composer.answer(q).found for q in first)
            assert "那2023年呢" in helped

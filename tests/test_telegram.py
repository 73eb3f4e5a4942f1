"""The Telegram bot: the real python-telegram-bot Application, its real HTTP client and long
polling, against a fake Bot API server on 127.0.0.1 (tests/fake_telegram.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from bot.answer import Answer, Citation
from bot.telegram import Line, answer_lines, split_messages

from .conftest import HEADLINE, REPO, ServerThread, needs_shared, wait_for
from .fake_telegram import BOT, TOKEN, FakeTelegram, visible_text

GROUP = {"id": -1001, "type": "supergroup", "title": "法治办"}
OTHER_GROUP = {"id": -2002, "type": "group", "title": "闲聊"}
OLD_GROUP = {"id": -3003, "type": "group", "title": "升级前"}
NEW_GROUP_ID = -1003003
PRIVATE = {"id": 555, "type": "private", "first_name": "Analyst"}
BOTNAME = BOT["username"]


class BotThread:
    """`Application.run_polling`, as `govqa telegram` runs it, in a thread with its own loop."""

    def __init__(self, app):
        self.app = app

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.app.run_polling(timeout=1, stop_signals=None)

    def __enter__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.app.stop_running)
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the bot did not stop"


@pytest.fixture(scope="module")
def telegram(real_index, config, use_embedder):
    from bot.live import LiveService
    from bot.telegram import build_application

    fake = FakeTelegram()
    fake.migrated[OLD_GROUP["id"]] = NEW_GROUP_ID
    with ServerThread(fake.app) as server:
        cfg = {**config, "telegram": {"api_base_url": server.url + "/bot",
                                      "allowed_chats": [GROUP["id"], PRIVATE["id"], OLD_GROUP["id"]]}}
        live = LiveService(cfg, real_index, embedder=use_embedder, poll_seconds=60)
        live.reload()
        with BotThread(build_application(cfg, live, TOKEN)):
            wait_for(lambda: fake.called("getUpdates"))
            yield fake


def reply_to(fake: FakeTelegram, msg: dict, timeout: float = 30.0) -> list[dict]:
    """The bot's messages quoting `msg`, once one has arrived."""
    return wait_for(lambda: [m for m in fake.sent if (m["reply_parameters"] or {}).get("message_id") == msg["message_id"]],
                    timeout, "the bot's reply")


@needs_shared()
def test_ask_addressed_to_the_bot_in_an_allowed_group(telegram):
    msg = telegram.message(GROUP, f"/ask@{BOTNAME} {HEADLINE}")
    (answer,) = reply_to(telegram, msg)
    assert answer["chat"]["id"] == GROUP["id"]
    lead = answer["text"].splitlines()[0]
    assert "79件" in lead and "2023" in lead
    assert answer["html"].startswith("<b>") and "<blockquote>" in answer["html"]
    assert "<u>" in answer["html"]  # the answering clause is marked
    assert "出具法律意见书79件" in answer["text"]  # the cited excerpt
    assert "[1] 深圳市龙岗区重点区域规划建设管理署 · 2023年 · " in answer["text"]
    assert "002_cdcfa3983a87bb7e" not in answer["text"]  # unit · year · section, not the hash-like file name
    assert any(p["chat_id"] == GROUP["id"] and p["action"] == "typing" for p in telegram.called("sendChatAction"))
    assert [c["command"] for c in telegram.called("setMyCommands")[0]["commands"]] == ["ask", "reports", "more", "help"]


@needs_shared()
def test_a_reply_to_the_bot_is_a_follow_up(telegram):
    msg = telegram.message(GROUP, f"/ask {HEADLINE}")
    (first,) = reply_to(telegram, msg)
    bot_message = {k: first[k] for k in ("message_id", "date", "chat", "from", "text")}
    other = telegram.message(GROUP, "在龙岗政府在线公开了多少条信息？", reply_to=bot_message)
    (follow,) = reply_to(telegram, other)
    assert "40余条" in follow["text"].splitlines()[0]
    assert "（按“重点区域署2023年在龙岗政府在线公开了多少条信息？”理解）" in follow["text"]
    year = telegram.message(GROUP, "那2022年呢？", reply_to=bot_message)
    (refusal,) = reply_to(telegram, year)
    assert "2022" in refusal["text"].splitlines()[0] and "79件" not in refusal["text"].splitlines()[0]
    assert "重点区域署2022年出具了多少份法律意见书" in refusal["text"]


@needs_shared()
def test_mentions_and_private_text_are_answered_other_group_talk_is_not(telegram):
    chatter = telegram.message(GROUP, "今天下午开会")
    mention = telegram.message(GROUP, f"@{BOTNAME} {HEADLINE}")
    private = telegram.message(PRIVATE, HEADLINE)
    assert "79件" in reply_to(telegram, mention)[0]["text"]
    assert "79件" in reply_to(telegram, private)[0]["text"]
    time.sleep(0.5)
    assert not [m for m in telegram.sent if (m["reply_parameters"] or {}).get("message_id") == chatter["message_id"]]


@needs_shared()
def test_help_and_reports(telegram):
    helped = reply_to(telegram, telegram.message(PRIVATE, "/start"))[0]["text"]
    assert helped.count("/ask ") >= 2 and f"/ask@{BOTNAME}" in helped and f"chat id：{PRIVATE['id']}" in helped
    listed = reply_to(telegram, telegram.message(GROUP, f"/reports@{BOTNAME}"))[0]["text"]
    assert "已收录 5 份报告" in listed and "天津市武清区国资委 · 2023年" in listed
    filtered = reply_to(telegram, telegram.message(GROUP, "/reports 2022"))[0]["text"]
    assert "相关的 1 份" in filtered and "2022年" in filtered


def test_a_chat_not_on_the_allow_list_is_refused_and_left(telegram):
    telegram.message(OTHER_GROUP, f"/ask@{BOTNAME} {HEADLINE}")
    (refusal,) = wait_for(lambda: telegram.sent_to(OTHER_GROUP["id"]))
    wait_for(lambda: any(p["chat_id"] == OTHER_GROUP["id"] for p in telegram.called("leaveChat")))
    assert "未在此会话启用" in refusal["text"] and str(OTHER_GROUP["id"]) in refusal["text"]
    assert "79件" not in refusal["text"]


@needs_shared()
def test_flood_limit_429_is_waited_out_and_retried(telegram):
    telegram.fail_next("sendMessage", {"error_code": 429, "description": "Too Many Requests: retry after 1",
                                       "parameters": {"retry_after": 1}})
    msg = telegram.message(PRIVATE, HEADLINE)
    started = time.monotonic()
    (answer,) = reply_to(telegram, msg)
    assert "79件" in answer["text"] and time.monotonic() - started >= 1.0


@needs_shared()
def test_a_group_upgraded_to_a_supergroup_gets_the_answer_at_its_new_id(telegram):
    msg = telegram.message(OLD_GROUP, f"/ask@{BOTNAME} {HEADLINE}")
    answer = wait_for(lambda: telegram.sent_to(NEW_GROUP_ID))[0]
    assert "79件" in answer["text"] and msg["chat"]["id"] != NEW_GROUP_ID


@needs_shared()
def test_malformed_updates_do_not_stop_the_bot(telegram):
    telegram.push({"message": "not a message"})
    telegram.push({"message": {"message_id": 1, "chat": {"id": PRIVATE["id"]}}})  # no date, no chat type
    telegram.push({"edited_message": {"message_id": 2, "date": "yesterday", "chat": PRIVATE, "text": "x"}})
    telegram.push({"something_new": {"x": 1}})
    msg = telegram.message(PRIVATE, HEADLINE)
    assert "79件" in reply_to(telegram, msg)[0]["text"]


def test_empty_and_overlong_questions_get_a_clear_reply(telegram):
    empty = reply_to(telegram, telegram.message(GROUP, f"/ask@{BOTNAME}"))[0]["text"]
    assert "请在命令后写上问题" in empty
    long = reply_to(telegram, telegram.message(PRIVATE, "法律意见书" * 200))[0]["text"]
    assert "问题太长" in long
    assert not telegram.rejected


def test_a_long_answer_is_split_into_valid_messages():
    hostile = "5.2%的<案件>&（一）“依法”<b>不是标签</b> "
    excerpt = ("在行政执法中，" + hostile * 40 + "。") * 3
    citations = tuple(Citation(n, f"报告{n}.txt", "标题", "某某局", 2023, "（一）规范执法", excerpt, 0, len(excerpt), 1.0,
                               mark=(10, 400)) for n in range(1, 9))
    answer = Answer("某某局2023年办理了多少件案件？", "某某局2023年：办理案件146件。", True, citations)
    pieces = split_messages(answer_lines(answer, answer.question))
    assert len(pieces) > 2
    shown = [visible_text(p) for p in pieces]  # parses as Telegram parses, or raises
    assert all(len(s.encode("utf-16-le")) // 2 <= 4096 for s in shown)
    assert "".join(shown).count(hostile.strip()) == 8 * 3 * 40  # nothing lost or doubled at the cuts


def test_a_line_longer_than_a_message_is_cut_at_sentence_ends():
    text = "第一句话很长" * 300 + "。" + "第二句" * 500 + "。"
    pieces = split_messages([Line([(text, ("b",))])], limit=2000)
    shown = [visible_text(p) for p in pieces]
    assert "".join(shown) == text and all(len(s) <= 2000 for s in shown)
    assert shown[0].endswith("很长。") and all(p.startswith("<b>") and p.endswith("</b>") for p in pieces)


@needs_shared()
def test_webhook_mode_inside_the_api_server(real_index, config, use_embedder):
    import httpx

    from bot.api import Keys, create_app
    from bot.live import LiveService
    from bot.telegram import WEBHOOK_PATH, TelegramWebhook

    fake, secret = FakeTelegram(), "a-webhook-secret-of-the-tests"
    with ServerThread(fake.app) as tg:
        cfg = {**config, "telegram": {"api_base_url": tg.url + "/bot", "allowed_chats": [PRIVATE["id"]],
                                      "webhook_url": "https://qa.example.org" + WEBHOOK_PATH}}
        live = LiveService(cfg, real_index, embedder=use_embedder, poll_seconds=60)
        with ServerThread(create_app(cfg, live, Keys(["read"], ["admin"]), TelegramWebhook(cfg, live, TOKEN, secret))) as api:
            (hook,) = fake.called("setWebhook")
            assert hook["url"] == "https://qa.example.org/telegram/webhook" and hook["secret_token"] == secret
            msg = fake.make_message(PRIVATE, HEADLINE)
            update = {"update_id": 1, "message": msg}
            wrong = httpx.post(api.url + WEBHOOK_PATH, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"})
            assert wrong.status_code == 403 and wrong.headers["content-type"].startswith("application/problem+json")
            assert httpx.post(api.url + WEBHOOK_PATH, json=update).status_code == 403
            ok = {"X-Telegram-Bot-Api-Secret-Token": secret}
            assert httpx.post(api.url + WEBHOOK_PATH, json={"update_id": 2, "message": "garbage"}, headers=ok).status_code == 200
            assert httpx.post(api.url + WEBHOOK_PATH, json=update, headers=ok).status_code == 200
            assert "79件" in reply_to(fake, msg)[0]["text"]
            assert not fake.called("getUpdates")


@needs_shared()
def test_govqa_telegram_command_runs_against_the_configured_server(real_index, tmp_path):
    """`govqa telegram` as a user starts it: token and server from the environment; SIGINT stops it."""
    fake = FakeTelegram()
    with ServerThread(fake.app) as server:
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "GOVQA_TELEGRAM__API_BASE_URL": server.url + "/bot",
               "GOVQA_TELEGRAM__ALLOWED_CHATS": "[]", "GOVQA_INDEX__DIR": str(real_index)}
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "telegram"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            msg = fake.message(PRIVATE, HEADLINE)
            assert "79件" in reply_to(fake, msg, timeout=120)[0]["text"]
        finally:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "allowed_chats is empty" in out and TOKEN not in out

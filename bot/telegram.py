"""The Telegram group bot (python-telegram-bot v22, long polling).

Triggers: /ask (also /ask@botname), a reply to one of the bot's answers (read as a follow-up of
the question it answered), "@botname question" where the bot receives it, any text in a private
chat; /start, /help, /reports and /more. Answers are the composer's, as the CLI and the API give
them, written in Telegram HTML with every piece of report text escaped, split under the
4096-character limit at line breaks and never inside a tag.

In groups a "not found" reply is short: what was searched and at most one related excerpt; /more
(sent as a reply to it, or on its own for the chat's latest one) shows the other related excerpts.
The example questions of /help are made from the index served and kept only when the index answers
them: computed when the bot starts and again whenever a new index generation is served."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import os
import re
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from telegram import BotCommand, LinkPreviewOptions, Message, ReplyParameters, Update
from telegram.constants import ChatAction, ChatType, MessageEntityType, MessageLimit, ParseMode
from telegram.error import ChatMigrated, NetworkError, TelegramError, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from retriever.backend import BackendUnavailable

from .answer import MAX_QUESTION_CHARS, Answer, Citation, TableRow, year_label
from .config import ConfigError
from .live import LiveService, NotReadyError
from .render import citation_line, table_cells, width

log = logging.getLogger("govqa.telegram")

TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
WEBHOOK_SECRET_ENV = "TELEGRAM_WEBHOOK_SECRET"
WEBHOOK_PATH = "/telegram/webhook"
MAX_CHARS = MessageLimit.MAX_TEXT_LENGTH  # 4096, counted by Telegram in UTF-16 units of visible text
REMEMBERED = 5000  # answers whose question a reply can follow up
MAX_REPORTS_LISTED = 40
GROUP_RELATED = 1  # related excerpts a "not found" reply shows in a group; /more shows the rest
HELP_EXAMPLES = 2  # example questions /help shows, from reports of different units
EXAMPLE_REPORTS_TRIED = 20  # reports an example question is looked for in (newest first)
EXAMPLES_POLL_SECONDS = 2.0  # how often the bot checks whether a new index generation is served


# ---- Telegram HTML, split without cutting tags ------------------------------------------------
@dataclass
class Line:
    """One line of a message: runs of text, each with its tags; `quote` lines go in a blockquote."""

    runs: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    quote: bool = False

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.runs)


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _html(line: Line) -> str:
    out = []
    for text, tags in line.runs:
        if text:
            out.append("".join(f"<{t}>" for t in tags) + html.escape(text, quote=False)
                       + "".join(f"</{t}>" for t in reversed(tags)))
    return "".join(out)


def render(lines: list[Line]) -> str:
    out, i = [], 0
    while i < len(lines):
        j = i + 1
        if lines[i].quote:
            while j < len(lines) and lines[j].quote:
                j += 1
            out.append("<blockquote>" + "\n".join(_html(x) for x in lines[i:j]) + "</blockquote>")
        else:
            out.append(_html(lines[i]))
        i = j
    return "\n".join(out)


def _slice(line: Line, a: int, b: int) -> Line:
    runs, pos = [], 0
    for text, tags in line.runs:
        lo, hi = max(a - pos, 0), min(b - pos, len(text))
        if lo < hi:
            runs.append((text[lo:hi], tags))
        pos += len(text)
    return Line(runs, line.quote)


def _cut(line: Line, limit: int) -> list[Line]:
    """A line longer than `limit` as several, cut after a sentence end, else a comma, else anywhere."""
    pieces = []
    while _units(line.text) > limit:
        text = line.text
        end, used = 0, 0
        while end < len(text) and used + _units(text[end]) <= limit:
            used += _units(text[end])
            end += 1
        window = text[:end]
        cut = max(window.rfind(c) for c in "。；！？!?;") + 1 or max(window.rfind(c) for c in "，、,： ") + 1 or end
        pieces.append(_slice(line, 0, cut))
        line = _slice(line, cut, len(text))
    return pieces + [line]


def split_messages(lines: list[Line], limit: int = MAX_CHARS) -> list[str]:
    """Messages of at most `limit` visible characters, cut only between lines."""
    flat = []
    for line in lines:  # a line holding line breaks becomes one line per break
        start = 0
        text = line.text
        for m in re.finditer("\n", text):
            flat.append(_slice(line, start, m.start()))
            start = m.end()
        flat.append(_slice(line, start, len(text)) if start else line)
    messages: list[list[Line]] = [[]]
    size = 0
    for line in (piece for x in flat for piece in _cut(x, limit)):
        n = _units(line.text) + (1 if messages[-1] else 0)
        if messages[-1] and size + n > limit:
            messages.append([])
            n = _units(line.text)
            size = 0
        if messages[-1] or line.text.strip():  # no message opens with a blank line
            messages[-1].append(line)
            size += n
    return [render(m) for m in messages if m]


def _excerpt(c: Citation) -> Line:
    if not c.mark:
        return Line([(c.excerpt, ())], quote=True)
    a, b = c.mark
    return Line([(c.excerpt[:a], ()), (c.excerpt[a:b], ("u",)), (c.excerpt[b:], ())], quote=True)


def _lines_units(lines: list[Line]) -> int:
    """The visible size of lines sent in one message (a line break between each two)."""
    return sum(_units(x.text) + 1 for x in lines) - 1 if lines else 0


def table_lines(table: tuple[TableRow, ...], budget: int = MAX_CHARS) -> list[Line]:
    """A comparison's rows as a compact list, • 钱塘区 2024年：146份 [1] (未提及 without a marker),
    the units padded with ideographic spaces so that the years line up. At most `budget` visible
    characters: the rows that do not fit give way to a line …（共N行）."""
    cells = [table_cells(r) for r in table]
    widest = max((width(unit) for unit, *_ in cells), default=0)
    lines = []
    for unit, year, value, cited in cells:
        gap = widest - width(unit)
        unit = unit + "\u3000" * (gap // 2) + " " * (gap % 2)
        lines.append(Line([(f"• {unit} {year}：", ()), (value, () if cited else ("i",)),
                           (f" {cited}" if cited else "", ())]))
    if _lines_units(lines) <= budget:
        return lines
    more = Line([(f"…（共{len(lines)}行）", ("i",))])
    kept: list[Line] = []
    while len(kept) < len(lines) and _lines_units([*kept, lines[len(kept)], more]) <= budget:
        kept.append(lines[len(kept)])
    return [*kept, more]


def citation_lines(citations: tuple[Citation, ...] | list[Citation]) -> list[Line]:
    """Each citation's line ([n] unit · year · section) in italics, then its excerpt quoted."""
    lines = []
    for c in citations:
        lines += [Line([(citation_line(c), ("i",))]), _excerpt(c)]
    return lines


def answer_lines(answer: Answer, asked: str, limit: int = MAX_CHARS, max_related: int | None = None) -> list[Line]:
    """The lead in bold, how a follow-up was read, a comparison's figures as a list (cut to fit in
    the first message with the lead), then numbered citations with their excerpts (the answering
    clause underlined); refusals show the possibly related excerpts, at most `max_related` of them
    (None: all) and a line saying how many more /more shows."""
    lines = [Line([(answer.text, ("b",))])]
    if answer.question.strip() != asked.strip():
        lines.append(Line([(f"（按“{answer.question}”理解）", ("i",))]))
    if answer.table:
        lines += table_lines(answer.table, limit - _lines_units(lines) - 1)
    related = answer.related if max_related is None else answer.related[:max_related]
    for heading, citations in (("出处：", answer.citations), ("可能相关：", related)):
        if citations:
            lines += [Line(), Line([(heading, ("b",))]), *citation_lines(citations)]
    hidden = len(answer.related) - len(related)
    if hidden:
        lines += [Line(), Line([(f"另有{hidden}条可能相关的摘录：回复本消息发送 /more 查看。", ("i",))])]
    return lines


# ---- getUpdates that survives a malformed update ---------------------------------------------
class UpdatesRequest(HTTPXRequest):
    """The request behind getUpdates, checking each update on its own. python-telegram-bot parses
    a batch as a whole: one update it cannot parse fails the batch and, as the offset never moves
    past it, every later poll too. Such an update is logged and replaced by an empty one with its
    id, which the bot confirms and ignores."""

    async def do_request(self, url, method, request_data=None, **kwargs):
        code, payload = await super().do_request(url, method, request_data, **kwargs)
        if not 200 <= code <= 299:
            return code, payload
        try:
            body = json.loads(payload)
        except ValueError:
            return code, payload
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, list):
            return code, payload
        clean, changed = [], False
        for item in result:
            try:
                Update.de_json(item, None)
                clean.append(item)
            except Exception as exc:
                changed = True
                update_id = item.get("update_id") if isinstance(item, dict) else None
                log.warning("ignoring an update that cannot be read (%s: %s): %.300r", type(exc).__name__, exc, item)
                if isinstance(update_id, int):
                    clean.append({"update_id": update_id})
        if not changed:
            return code, payload
        body["result"] = clean
        return code, json.dumps(body).encode()


# ---- the bot -----------------------------------------------------------------------------------
def allowed_chats(config: dict) -> set[int]:
    raw = config["telegram"]["allowed_chats"]
    if isinstance(raw, str | int):
        raw = [raw]
    try:
        return {int(c) for c in raw}
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"telegram.allowed_chats must be a list of chat ids (integers), got {raw!r}") from exc


def bot_token(environ=os.environ) -> str:
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(f"{TOKEN_ENV} is not set: create a bot with @BotFather and export its token")
    if not re.fullmatch(r"\d+:[A-Za-z0-9_-]{20,}", token):
        raise ConfigError(f"{TOKEN_ENV} does not look like a bot token (digits, a colon, then 20+ letters)")
    return token


def webhook_secret(environ=os.environ) -> str:
    secret = environ.get(WEBHOOK_SECRET_ENV, "").strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", secret):
        raise ConfigError(f"webhook mode needs {WEBHOOK_SECRET_ENV}: 16-256 characters of A-Z, a-z, 0-9, _ and -")
    return secret


HELP = """<b>govqa：法治政府建设年度报告问答</b>
问一个关于报告的问题，我会给出报告原文中的答案和出处（单位、年份、原文摘录）。报告里没有写的，我会说没有找到，而不会猜。

在群里：<code>/ask@{username} 问题</code>，或回复我的回答继续追问{follow_example}。私聊时直接发问题即可。
{examples}
/reports 列出已收录的报告（可加关键词筛选，如 <code>/reports 2023</code>）
/more 回复我的“未找到”回答，查看其余可能相关的摘录

<i>本会话的 chat id：{chat_id}（管理员配置 telegram.allowed_chats 时使用）</i>"""


@dataclass(frozen=True)
class Examples:
    """The /help example questions for one index generation: each made from a report's figure by
    AnswerComposer.example_question and kept only when that generation's answer gives the figure
    back. `year`: the first example's year (its follow-up example asks about the year before)."""

    generation: str | None
    questions: tuple[str, ...] = ()
    year: int | None = None


def find_examples(service, limit: int = HELP_EXAMPLES, tried: int = EXAMPLE_REPORTS_TRIED) -> Examples:
    """Up to `limit` example questions the service's index answers, from reports of different
    units, newest year first; at most `tried` reports are tried."""
    composer = service.composer
    reports = sorted((r for r in service.index.reports if r.year), key=lambda r: (-r.year, r.org, r.source))
    questions, year, units = [], None, set()
    for r in reports[:tried]:
        if len(questions) >= limit:
            break
        if r.org in units:
            continue
        question = composer.example_question(r)
        if question:
            questions.append(question)
            units.add(r.org)
            year = year or r.year
    return Examples(service.generation, tuple(questions), year)


class GovqaBot:
    def __init__(self, config: dict, live: LiveService):
        self.live = live
        self.allowed = allowed_chats(config)
        self.executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="govqa-tg")
        self.asked: OrderedDict[tuple[int, int], str] = OrderedDict()  # (chat, bot message) -> question read
        # (chat, bot message) of a shortened "not found" reply -> the related excerpts it left out;
        # chat -> its latest such reply, for a /more that replies to nothing
        self.more: OrderedDict[tuple[int, int], tuple[Citation, ...]] = OrderedDict()
        self.latest_more: dict[int, tuple[int, int]] = {}
        self._examples = Examples(None)
        self._examples_lock: asyncio.Lock | None = None
        self._follow: asyncio.Task | None = None

    # -- wiring
    def install(self, app: Application) -> None:
        app.add_handler(TypeHandler(Update, self.gate), group=-1)
        app.add_handler(CommandHandler(["start", "help"], self.help))
        app.add_handler(CommandHandler("ask", self.ask))
        app.add_handler(CommandHandler("reports", self.reports))
        app.add_handler(CommandHandler("more", self.show_more))
        app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, self.migrate))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self.text))
        app.add_error_handler(self.on_error)

    async def post_init(self, app: Application) -> None:
        me = await app.bot.get_me()
        log.info("connected as @%s (id %s)", me.username, me.id)
        if not self.allowed:
            log.warning("telegram.allowed_chats is empty: the bot answers in every chat it is added to")
        await app.bot.set_my_commands([BotCommand("ask", "提问：/ask 问题"), BotCommand("reports", "已收录的报告"),
                                       BotCommand("more", "“未找到”回答的其余相关摘录"),
                                       BotCommand("help", "用法和示例")])
        await self.examples()  # checked before the first /help
        if self._follow is None:
            self._follow = asyncio.create_task(self._follow_generations(), name="govqa-help-examples")

    async def post_shutdown(self, app: Application) -> None:
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
            self._follow = None
        self.executor.shutdown(wait=False, cancel_futures=True)

    # -- /help examples, kept to the generation served
    async def examples(self) -> Examples:
        """The example questions of the generation served now, computed (once per generation)
        when it is not the one they were made for: never examples of another index."""
        try:
            service = self.live.get()
        except NotReadyError:
            return Examples(None)
        if self._examples.generation == service.generation:
            return self._examples
        if self._examples_lock is None:
            self._examples_lock = asyncio.Lock()
        async with self._examples_lock:
            if self._examples.generation != service.generation:
                try:
                    found = await asyncio.get_running_loop().run_in_executor(self.executor, find_examples, service)
                except Exception:  # no examples rather than no /help
                    log.exception("could not compute the help examples")
                    found = Examples(service.generation)
                log.info("help examples for index generation %s: %s", found.generation,
                         " | ".join(found.questions) or "none answered")
                self._examples = found
        return self._examples if self._examples.generation == service.generation else Examples(None)

    async def _follow_generations(self) -> None:
        """Recompute the examples soon after a new generation is served (a reload), so that /help
        need not wait for them."""
        while True:
            await asyncio.sleep(EXAMPLES_POLL_SECONDS)
            await self.examples()

    # -- access
    async def gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None or not self.allowed or chat.id in self.allowed:
            return
        member = update.my_chat_member
        if member is not None and member.new_chat_member.status in ("left", "kicked", "banned"):
            raise ApplicationHandlerStop  # we were removed: nothing to say
        log.warning("chat %s (%s, %r) is not in telegram.allowed_chats: refusing%s", chat.id, chat.type, chat.title,
                    "" if chat.type == ChatType.PRIVATE else " and leaving")
        try:
            await context.bot.send_message(chat.id, f"本机器人未在此会话启用（chat id: {chat.id}）。"
                                                    "如需使用，请管理员把这个 id 加入 telegram.allowed_chats。")
            if chat.type != ChatType.PRIVATE:
                await context.bot.leave_chat(chat.id)
        except TelegramError as exc:
            log.warning("could not refuse chat %s: %s", chat.id, exc)
        raise ApplicationHandlerStop

    async def migrate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        old, new = message.chat_id, message.migrate_to_chat_id
        if new and old in self.allowed:
            self.allowed.add(new)
            log.warning("group %s became supergroup %s: answering there too; add %s to telegram.allowed_chats",
                        old, new, new)

    # -- commands
    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        examples = await self.examples()
        block = ""
        if examples.questions:
            block = "\n例如：\n" + "\n".join(f"<code>/ask {html.escape(q)}</code>" for q in examples.questions) + "\n"
        follow = f"（例如“那{examples.year - 1}年呢？”）" if examples.year else ""
        text = HELP.format(username=html.escape(context.bot.username or "bot"), examples=block,
                           follow_example=follow, chat_id=update.effective_chat.id)
        await self._send(context, update.effective_message, text)

    async def show_more(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/more: the related excerpts a shortened "not found" reply left out: of the reply it
        answers, else of the chat's latest one."""
        message = update.effective_message
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and replied.from_user.id == context.bot.id:
            key = (message.chat_id, replied.message_id)
        else:
            key = self.latest_more.get(message.chat_id)
        rest = self.more.get(key) if key else None
        if not rest:
            await self._send(context, message, "没有可以展开的回答：请回复我的“未找到”回答，发送 /more。")
            return
        lines = [Line([(f"其余{len(rest)}条可能相关的摘录：", ("b",))]), *citation_lines(rest)]
        for piece in split_messages(lines):
            await self._send(context, message, piece)

    async def reports(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        needle = " ".join(context.args or []).strip()
        try:
            reports = self.live.get().index.reports
        except NotReadyError:
            await self._send(context, update.effective_message, "索引还在加载，请稍后再试。")
            return
        chosen = [r for r in reports if not needle or needle in r.org or needle in str(r.year) or needle in r.source]
        chosen.sort(key=lambda r: (-(r.year or 0), r.org))
        head = f"已收录 {len(reports)} 份报告" + (f"，其中与“{needle}”相关的 {len(chosen)} 份" if needle else "") + "："
        lines = [Line([(head, ("b",))])]
        lines += [Line([(f"{r.org} · {year_label(r.year)}" + (f" · {r.published}发布" if r.published else ""), ())])
                  for r in chosen[:MAX_REPORTS_LISTED]]
        if len(chosen) > MAX_REPORTS_LISTED:
            lines.append(Line([(f"……另有 {len(chosen) - MAX_REPORTS_LISTED} 份，可用 /reports 关键词 筛选。", ("i",))]))
        for piece in split_messages(lines):
            await self._send(context, update.effective_message, piece)

    async def ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        command = next((e for e in message.entities if e.type == MessageEntityType.BOT_COMMAND and e.offset == 0), None)
        question = message.text[command.length:] if command else " ".join(context.args or [])
        await self._answer(context, message, question.strip())

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or not message.text:
            return
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and replied.from_user.id == context.bot.id:
            previous = self.asked.get((message.chat_id, replied.message_id))
            await self._answer(context, message, self._without_mention(message, context.bot.username), previous)
        elif message.chat.type == ChatType.PRIVATE:
            await self._answer(context, message, message.text.strip())
        elif self._mentions(message, context.bot.username):
            await self._answer(context, message, self._without_mention(message, context.bot.username))

    @staticmethod
    def _mentions(message: Message, username: str | None) -> bool:
        return bool(username) and any(text.lower() == f"@{username.lower()}"
                                      for text in message.parse_entities([MessageEntityType.MENTION]).values())

    @staticmethod
    def _without_mention(message: Message, username: str | None) -> str:
        text = message.text
        if username:
            text = re.sub(rf"@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE)
        return text.strip(" ,，:：\n")

    # -- answering
    def _compose(self, question: str, previous: str | None) -> Answer:
        composer = self.live.get().composer  # one generation from start to end
        if previous:
            question = composer.follow_up(previous, question)
        return composer.answer(question)

    async def _answer(self, context: ContextTypes.DEFAULT_TYPE, message: Message, question: str,
                      previous: str | None = None) -> None:
        if not question:
            examples = await self.examples()
            example = f"，例如：/ask@{html.escape(context.bot.username or 'bot')} {html.escape(examples.questions[0])}" \
                if examples.questions else "。"
            await self._send(context, message, f"请在命令后写上问题{example}")
            return
        if len(question) > MAX_QUESTION_CHARS:
            await self._send(context, message, f"问题太长了（{len(question)} 字），请控制在 {MAX_QUESTION_CHARS} 字以内。")
            return
        await self._typing(context, message.chat_id, once=True)
        typing = asyncio.create_task(self._typing(context, message.chat_id))
        try:
            answer = await asyncio.get_running_loop().run_in_executor(self.executor, self._compose, question, previous)
        except NotReadyError:
            await self._send(context, message, "索引还在加载，请稍后再问。")
            return
        except BackendUnavailable as exc:  # Milvus went away mid-question: not ready until a poll finds it back
            self.live.unavailable(exc)
            await self._send(context, message, "索引暂时无法访问，请稍后再问。")
            return
        except Exception:
            log.exception("answering %r failed", question)
            await self._send(context, message, "处理这个问题时出错了，已记录，请稍后再试。")
            return
        finally:
            typing.cancel()
        short = not answer.found and message.chat.type != ChatType.PRIVATE and len(answer.related) > GROUP_RELATED
        for piece in split_messages(answer_lines(answer, question, max_related=GROUP_RELATED if short else None)):
            sent = await self._send(context, message, piece)
            if sent is not None:
                key = (sent.chat_id, sent.message_id)
                self.asked[key] = answer.question
                while len(self.asked) > REMEMBERED:
                    self.asked.popitem(last=False)
                if short:
                    self.more[key] = answer.related[GROUP_RELATED:]
                    self.latest_more[sent.chat_id] = key
                    while len(self.more) > REMEMBERED:
                        self.more.popitem(last=False)

    async def _typing(self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, once: bool = False) -> None:
        """"typing…" now (once), or renewed every 4 s (Telegram shows it for 5) until cancelled."""
        with contextlib.suppress(TelegramError):
            while True:
                if not once:
                    await asyncio.sleep(4)
                await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
                if once:
                    return

    async def _send(self, context: ContextTypes.DEFAULT_TYPE, message: Message, text: str) -> Message | None:
        """Send HTML quoting `message`. Flood limits are the rate limiter's (it waits and retries on
        RetryAfter); a group that became a supergroup gets the message at its new id; a network
        failure is retried twice (not a timeout: that message may have arrived)."""
        chat_id, quote = message.chat_id, ReplyParameters(message.message_id, allow_sending_without_reply=True)
        for attempt in range(3):
            try:
                return await context.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML, reply_parameters=quote,
                                                      link_preview_options=LinkPreviewOptions(is_disabled=True))
            except ChatMigrated as exc:
                log.warning("chat %s moved to %s", chat_id, exc.new_chat_id)
                if chat_id in self.allowed:
                    self.allowed.add(exc.new_chat_id)
                chat_id, quote = exc.new_chat_id, None
            except TimedOut:
                raise
            except NetworkError as exc:
                if attempt == 2:
                    raise
                log.warning("sending to %s failed (%s); retrying", chat_id, exc)
                await asyncio.sleep(1 + attempt)
        return None

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        where = f"update {update.update_id}" if isinstance(update, Update) else "the bot"
        log.error("error while handling %s: %s", where, context.error, exc_info=context.error)


def build_application(config: dict, live: LiveService, token: str, polling: bool = True) -> Application:
    bot = GovqaBot(config, live)
    builder = (ApplicationBuilder().token(token)
               .rate_limiter(AIORateLimiter(max_retries=3))
               .concurrent_updates(True)
               .post_init(bot.post_init)
               .post_shutdown(bot.post_shutdown))
    builder = builder.get_updates_request(UpdatesRequest()) if polling else builder.updater(None)
    base_url = (config["telegram"]["api_base_url"] or "").strip()
    if base_url:  # a self-hosted Bot API server; "{token}" in it is replaced, else the token is appended
        builder = builder.base_url(base_url)
    app = builder.build()
    bot.install(app)
    return app


class TelegramWebhook:
    """The bot fed by Telegram's webhook calls to the API server (`govqa serve` with
    telegram.webhook_url set) instead of long polling; the API app mounts `feed` at WEBHOOK_PATH."""

    def __init__(self, config: dict, live: LiveService, token: str, secret: str):
        self.url = config["telegram"]["webhook_url"]
        self.secret = secret
        self.app = build_application(config, live, token, polling=False)

    async def start(self) -> None:
        await self.app.initialize()
        await self.app.post_init(self.app)
        await self.app.start()
        await self.app.bot.set_webhook(self.url, secret_token=self.secret, allowed_updates=Update.ALL_TYPES)
        log.info("Telegram webhook set to %s", self.url)

    async def stop(self) -> None:
        await self.app.stop()
        await self.app.shutdown()
        await self.app.post_shutdown(self.app)

    async def feed(self, data: object) -> None:
        """Queue one update; one that cannot be read is logged and dropped (Telegram would resend
        it forever if the call failed)."""
        try:
            update = Update.de_json(data, self.app.bot)
        except Exception as exc:
            log.warning("ignoring a webhook update that cannot be read (%s: %s): %.300r", type(exc).__name__, exc, data)
            return
        await self.app.update_queue.put(update)

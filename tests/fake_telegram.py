"""A fake Telegram Bot API server for the tests: the methods the bot uses, answered the way
Telegram answers them, on loopback. It checks what Telegram checks before it accepts a message:
the token, HTML that parses (known tags, properly nested, only the entities Telegram knows) and
at most 4096 characters of visible text. Updates are queued by the test; scripted failures (a
429 with retry_after, a migrated chat) are answered once each."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

TOKEN = "123456789:AAHfakeTokenForTheTestsOnly_0123456789"
BOT = {"id": 123456789, "is_bot": True, "first_name": "govqa", "username": "govqa_test_bot",
       "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "blockquote",
        "tg-spoiler", "span", "tg-emoji"}
_TOKEN = re.compile(r"<(/?)([a-zA-Z-]+)((?:\s+[a-z-]+(?:=\"[^\"]*\")?)*)\s*>|&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);|([^<&]+)|(.)", re.S)
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class HTMLError(ValueError):
    pass


def visible_text(text: str) -> str:
    """The text Telegram would show for an HTML message, or HTMLError as Telegram's 400."""
    out, stack = [], []
    for m in _TOKEN.finditer(text):
        closing, tag, _attrs, entity, plain, stray = m.groups()
        if stray is not None:
            raise HTMLError(f"can't parse entities: unsupported start tag or entity at byte offset {m.start()}")
        if plain is not None:
            out.append(plain)
        elif entity is not None:
            out.append(_ENTITIES.get(entity) or chr(int(entity[2:], 16) if entity[1] == "x" else int(entity[1:])))
        elif tag.lower() not in TAGS:
            raise HTMLError(f"can't parse entities: unsupported start tag \"{tag}\" at byte offset {m.start()}")
        elif closing:
            if not stack or stack[-1] != tag.lower():
                raise HTMLError(f"can't parse entities: can't find end tag corresponding to start tag \"{tag}\"")
            stack.pop()
        else:
            stack.append(tag.lower())
    if stack:
        raise HTMLError(f"can't parse entities: can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return "".join(out)


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeTelegram:
    def __init__(self):
        self.lock = threading.Lock()
        self.updates: list[dict] = []
        self.update_ids = itertools.count(1)
        self.message_ids = itertools.count(1000)
        self.sent: list[dict] = []  # accepted sendMessage calls, with the visible text
        self.rejected: list[tuple[str, str]] = []  # (method, Telegram's description)
        self.calls: list[tuple[str, dict]] = []
        self.failures: dict[str, list[dict]] = {}  # method -> scripted error bodies, used once each
        self.migrated: dict[int, int] = {}  # old chat id -> new
        self.app = Starlette(routes=[Route("/readyz", lambda r: PlainTextResponse("ok")),
                                     Route("/bot{token}/{method}", self.handle, methods=["GET", "POST"])])

    # -- what the tests do
    def push(self, update: dict) -> int:
        with self.lock:
            update = {"update_id": next(self.update_ids), **update}
            self.updates.append(update)
            return update["update_id"]

    def message(self, chat: dict, text: str, user_id: int = 555, reply_to: dict | None = None, **extra) -> dict:
        """A message from a user, queued as an update for getUpdates."""
        msg = self.make_message(chat, text, user_id, reply_to, **extra)
        self.push({"message": msg})
        return msg

    def make_message(self, chat: dict, text: str, user_id: int = 555, reply_to: dict | None = None, **extra) -> dict:
        """A message from a user, with entities for commands and mentions as Telegram adds them."""
        entities = [{"type": "bot_command", "offset": m.start(), "length": len(m.group())}
                    for m in re.finditer(r"(?<!\S)/[a-z_]+(?:@\w+)?", text) if m.start() == 0]
        entities += [{"type": "mention", "offset": m.start(), "length": len(m.group())} for m in re.finditer(r"@\w+", text)
                     if not any(e["offset"] <= m.start() < e["offset"] + e["length"] for e in entities)]
        msg = {"message_id": next(self.message_ids), "date": int(time.time()), "chat": chat, "text": text,
               "from": {"id": user_id, "is_bot": False, "first_name": "Analyst"}, **extra}
        if entities:
            msg["entities"] = entities
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        return msg

    def fail_next(self, method: str, body: dict) -> None:
        with self.lock:
            self.failures.setdefault(method, []).append(body)

    def sent_to(self, chat_id: int) -> list[dict]:
        with self.lock:
            return [m for m in self.sent if m["chat"]["id"] == chat_id]

    def called(self, method: str) -> list[dict]:
        with self.lock:
            return [params for name, params in self.calls if name == method]

    # -- the Bot API
    async def handle(self, request: Request):
        if request.path_params["token"] != TOKEN:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
        method = request.path_params["method"]
        params = dict(await request.form()) if request.method == "POST" else dict(request.query_params)
        params = {k: self._value(k, v) for k, v in params.items()}
        with self.lock:
            self.calls.append((method, params))
            failure = self.failures.get(method, []).pop(0) if self.failures.get(method) else None
        if failure is not None:
            return JSONResponse({"ok": False, **failure}, failure["error_code"])
        handler = getattr(self, "m_" + method.lower(), None)
        if handler is None:
            return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found: method not found"}, 404)
        try:
            result = await handler(params)
        except HTMLError as exc:
            with self.lock:
                self.rejected.append((method, str(exc)))
            return JSONResponse({"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}, 400)
        except LookupError as exc:
            return JSONResponse({"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}, 400)
        return result if isinstance(result, JSONResponse) else JSONResponse({"ok": True, "result": result})

    @staticmethod
    def _value(key: str, raw: str):
        if key in ("text", "parse_mode", "action", "description"):
            return raw
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    async def m_getme(self, params):
        return BOT

    async def m_deletewebhook(self, params):
        return True

    async def m_setwebhook(self, params):
        if not str(params.get("url", "")).startswith("https://"):
            raise LookupError("bad webhook: An HTTPS URL must be provided for webhook")
        return True

    async def m_setmycommands(self, params):
        if not isinstance(params.get("commands"), list):
            raise LookupError("commands must be a list")
        return True

    async def m_getupdates(self, params):
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        while True:
            with self.lock:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]  # confirmed ones go
                if self.updates or time.monotonic() >= deadline:
                    return list(self.updates)
            await asyncio.sleep(0.02)

    async def m_sendchataction(self, params):
        return True

    async def m_leavechat(self, params):
        return True

    async def m_sendmessage(self, params):
        chat_id = int(params["chat_id"])
        if chat_id in self.migrated:
            return JSONResponse({"ok": False, "error_code": 400, "parameters": {"migrate_to_chat_id": self.migrated[chat_id]},
                                 "description": "Bad Request: group chat was upgraded to a supergroup chat"}, 400)
        text = params.get("text", "")
        shown = visible_text(text) if params.get("parse_mode") == "HTML" else text
        if not shown.strip():
            raise LookupError("message text is empty")
        if _utf16(shown.strip()) > 4096:
            raise HTMLError("message is too long")
        message = {"message_id": next(self.message_ids), "date": int(time.time()), "from": BOT,
                   "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}, "text": shown}
        with self.lock:
            self.sent.append({**message, "html": text, "reply_parameters": params.get("reply_parameters")})
        return message

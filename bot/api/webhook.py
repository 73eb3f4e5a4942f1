"""Telegram's webhook calls, when `telegram.webhook_url` is set: the bot answers inside `govqa serve`."""

import hmac

from fastapi import APIRouter, Request

from ..telegram import WEBHOOK_PATH
from .deps import Ctx
from .problems import Problem

router = APIRouter(include_in_schema=False)


@router.post(WEBHOOK_PATH)
async def telegram_webhook(request: Request, ctx: Ctx) -> dict:
    telegram = ctx.telegram
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not hmac.compare_digest(given.encode(), telegram.secret.encode()):
        raise Problem(403, "the Telegram secret token header is missing or wrong")
    try:
        data = await request.json()
    except ValueError as exc:
        raise Problem(400, "the body is not JSON") from exc
    await telegram.feed(data)
    return {"ok": True}
